//! Market hours through the real binary: `serve` against a mock Kite broker with the calendar's
//! clock started at a chosen instant (`--market-now`), never the wall clock. The mock's master
//! lists NSE, NSE_INDEX, NFO and CDS instruments, so the feed is wanted from 08:45 IST (15 min
//! before NSE's pre-open and CDS's open) to 17:05 (5 min after CDS closes).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn market_hours(port: u16) -> Value {
    gateway_status(port)["market_hours"].clone()
}

/// Saturday: the feed never dials; `/status` says closed for market hours, with when it will
/// connect (Monday 08:45 IST), and every exchange's session is closed.
#[test]
fn on_a_saturday_the_feed_does_not_connect_and_status_says_closed() {
    let bport = free_port();
    let _m = mock(bport);
    let gw = start_serve_by_the_calendar(bport, &["--market-now", "2026-12-05T10:00:00+05:30"]);
    let port = gw.port;
    let f = wait_feed_state(port, "closed", 15);
    assert_eq!(f["closed_reason"], "market hours", "{f}");
    assert_eq!(
        f["reconnect_at"], "2026-12-07T03:15:00.000Z",
        "Monday 08:45 IST: {f}"
    );
    assert_eq!(f["connected"], false);
    assert_eq!(f["last_error"], Value::Null, "closed is not a failure: {f}");
    std::thread::sleep(Duration::from_secs(2));
    let f = feed_status(port);
    assert_eq!(f["attempts"], 0, "{f}");
    assert_eq!(f["state"], "closed");
    assert!(mock_connections(bport).is_empty());
    let m = market_hours(port);
    assert_eq!(m["dev"], false);
    assert!(
        m["now"].as_str().unwrap().starts_with("2026-12-05T04:3"),
        "{m}"
    );
    for (x, s) in m["exchanges"].as_object().unwrap() {
        assert_eq!(s["session"], "closed", "{x}: {m}");
    }
    assert_eq!(
        m["exchanges"]["NSE"]["next_open"], "2026-12-07T03:30:00.000Z",
        "Monday's pre-open, 09:00 IST"
    );

    // A client still subscribes; the reply says why no data flows.
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["subscriptions"][0]["upstream"], "market_closed", "{r}");
}

/// 09:14 IST on a weekday is NSE's pre-open: the feed is connected and data flows.
#[test]
fn at_0914_on_a_weekday_the_feed_connects_for_the_preopen() {
    let bport = free_port();
    let _m = mock(bport);
    let gw = start_serve_by_the_calendar(bport, &["--market-now", "2026-12-03T09:14:00+05:30"]);
    let port = gw.port;
    wait_feed_state(port, "open", 15);
    let m = market_hours(port);
    assert_eq!(m["exchanges"]["NSE"]["session"], "preopen", "{m}");
    assert_eq!(m["exchanges"]["NSE_INDEX"]["session"], "preopen", "{m}");
    assert_eq!(m["exchanges"]["NFO"]["session"], "closed", "{m}");
    assert_eq!(m["exchanges"]["CDS"]["session"], "open", "{m}");
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    wait_data(&mut ws, "NSE", "SBIN", 10);
}

/// A few seconds before the disconnect point (17:05 IST, CDS's close plus 5 minutes): the feed is
/// open, then closes by itself; a client subscribing afterwards still gets the last value.
#[test]
fn after_the_close_the_feed_disconnects_after_the_margin_and_last_values_remain() {
    let bport = free_port();
    let _m = mock(bport);
    let gw = start_serve_by_the_calendar(bport, &["--market-now", "2026-12-03T17:04:50+05:30"]);
    let port = gw.port;
    wait_feed_state(port, "open", 8);
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let before = wait_data(&mut ws, "NSE", "SBIN", 5);
    assert_eq!(market_hours(port)["exchanges"]["NSE"]["session"], "closed");

    let f = wait_feed_state(port, "closed", 20);
    assert_eq!(f["closed_reason"], "market hours", "{f}");
    assert_eq!(
        f["reconnect_at"], "2026-12-04T03:15:00.000Z",
        "Friday 08:45 IST: {f}"
    );
    wait_until(10, "the mock to see the feed go", || {
        mock_connections(bport).is_empty().then_some(())
    });

    // Outside hours a new client still gets the last value on subscribe.
    let mut late = authed(port);
    send(
        &mut late,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    let r = reply(&mut late);
    assert_eq!(r["subscriptions"][0]["upstream"], "market_closed", "{r}");
    let last = wait_data(&mut late, "NSE", "SBIN", 5);
    assert!(last["data"]["ltp"].is_number(), "{last}");
    assert!(before["data"]["ltp"].is_number());
}

/// `--dev` ignores the calendar: the feed connects on a Saturday.
#[test]
fn dev_connects_whatever_the_time() {
    let bport = free_port();
    let _m = mock(bport);
    let gw = start_serve_by_the_calendar(
        bport,
        &["--dev", "--market-now", "2026-12-05T03:00:00+05:30"],
    );
    let port = gw.port;
    wait_feed_state(port, "open", 15);
    let m = market_hours(port);
    assert_eq!(m["dev"], true);
    assert_eq!(m["exchanges"]["NSE"]["session"], "open", "{m}");
}

/// A holiday from a `--holidays` file keeps a weekday closed; a bad file stops `serve` with the
/// file, line and reason.
#[test]
fn a_holiday_from_the_holidays_file_keeps_the_feed_closed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("2026.csv");
    std::fs::write(
        &file,
        "# date,exchanges,description[,session]\n\
         2026-12-03,NSE BSE NFO BFO CDS BCD,A test holiday\n",
    )
    .unwrap();
    let bport = free_port();
    let _m = mock(bport);
    let holidays = dir.path().to_str().unwrap().to_string(); // the directory form
    let gw = start_serve_by_the_calendar(
        bport,
        &[
            "--holidays",
            &holidays,
            "--market-now",
            "2026-12-03T10:00:00+05:30",
        ],
    );
    let port = gw.port;
    let f = wait_feed_state(port, "closed", 15);
    assert_eq!(f["reconnect_at"], "2026-12-04T03:15:00.000Z", "{f}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(feed_status(port)["attempts"], 0);
    let m = market_hours(port);
    assert_eq!(m["exchanges"]["NSE"]["session"], "closed", "{m}");
    assert_eq!(m["exchanges"]["MCX"]["session"], "open", "not listed: {m}");

    std::fs::write(&file, "2026-12-03,NSE_INDEX,Indices follow NSE\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--api-key", "k1", "--port", "0"])
        .args(["--kite-api-key", "a", "--kite-access-token", "b"])
        .args(["--holidays", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2026.csv:1: NSE_INDEX follows NSE"), "{err}");
}

/// Just before 08:45 IST the feed waits; at 08:45 (15 min before NSE's pre-open) it dials by
/// itself.
#[test]
fn before_the_connect_margin_the_feed_waits_then_dials() {
    let bport = free_port();
    let _m = mock(bport);
    let gw = start_serve_by_the_calendar(bport, &["--market-now", "2026-12-03T08:44:54+05:30"]);
    let port = gw.port;
    let f = wait_feed_state(port, "closed", 5);
    assert_eq!(f["reconnect_at"], "2026-12-03T03:15:00.000Z", "{f}");
    assert_eq!(f["attempts"], 0, "{f}");
    let f = wait_feed_state(port, "open", 20);
    assert_eq!(f["closed_reason"], Value::Null, "{f}");
    assert_eq!(f["reconnect_at"], Value::Null, "{f}");
    assert_eq!(mock_connections(bport).len(), 1);
}
