//! No silent stalls, through the real binary: `serve` against the mock Kite broker, whose side
//! channel can mute one instrument (`/mute?token=`) or one connection (`/mute?conn=`).
//!
//! - A muted symbol goes `stale` (in `/status`, in a `status_update` to its clients, in its shm
//!   health byte) while the others stay `live`, and recovers on its next update.
//! - A muted connection (socket and heartbeats up, no data) is found `stalled` and redialed.
//! - Clients are told when the feed disconnects and connects again, and when an exchange's
//!   session changes; `unsubscribe_status` turns that off.
//! - Outside the exchange's session nothing is ever stale.
//! - The official `openalgo` SDK takes the updates in stride.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tickwire_shm::Reader;

/// Stale after 1 s (the mock updates each symbol tens of times a second).
const FAST: [&str; 6] = [
    "--stale-floor-s",
    "1",
    "--stale-factor",
    "4",
    "--stall-floor-s",
    "1.5",
];

fn mock_get(bport: u16, path: &str) -> Value {
    serde_json::from_str(&http_get(bport, path)).unwrap()
}

/// `/status`'s entry for `symbol`.
fn symbol_row(port: u16, symbol: &str) -> Value {
    let s = gateway_status(port);
    s["symbols"]["subscribed"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["symbol"] == symbol).cloned())
        .unwrap_or(Value::Null)
}

fn wait_health(port: u16, symbol: &str, want: &str, secs: u64) -> Value {
    wait_until(secs, &format!("{symbol} {want}"), || {
        let r = symbol_row(port, symbol);
        (r["health"] == want).then_some(r)
    })
}

/// The next `status_update` within `secs` for which `pred` holds (others and market data skipped).
fn wait_update(ws: &mut Ws, secs: u64, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_millis(200)) {
            if v["type"] == "status_update" && pred(&v) {
                return Some(v);
            }
        }
    }
    None
}

fn subscribe_all(ws: &mut Ws) {
    for (sym, _) in TOKENS {
        send(
            ws,
            json!({"action": "subscribe", "symbol": sym, "exchange": "NSE", "mode": 1}),
        );
        assert_eq!(reply(ws)["status"], "success");
    }
}

fn shm_health(r: &mut Reader, symbol: &str) -> u8 {
    let id = r
        .lookup("NSE", symbol)
        .expect("symbol in the shm directory");
    r.health(id)
}

/// The health of `symbol` as the Python shm reader (`shm/python/tickwire_shm.py`) reads it.
fn py_health(shm: &std::path::Path, symbol: &str) -> String {
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shm/python");
    let code = format!(
        "import sys; sys.path.insert(0, {m:?}); import tickwire_shm as t; r = t.Reader({p:?}); \
         print(t.HEALTH_NAMES[r.health(r.lookup('NSE', {symbol:?}))])",
        m = module.to_str().unwrap(),
        p = shm.to_str().unwrap(),
    );
    let out = std::process::Command::new(python::python())
        .args(["-c", &code])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A mock broker on a free port, `serve` against it with `extra`, and a client holding every
/// symbol of `TOKENS`.
fn streaming(extra: &[&str]) -> (u16, Proc, Served, Ws) {
    let bport = free_port();
    let m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let inst = format!("http://127.0.0.1:{bport}/instruments");
    let gw = start_serve(&url, &inst, extra);
    let mut ws = authed(gw.port);
    subscribe_all(&mut ws);
    (bport, m, gw, ws)
}

#[test]
fn a_quiet_symbol_goes_stale_while_the_others_stay_live_and_recovers() {
    let (bport, _m, gw, mut ws) = streaming(&FAST);
    let port = gw.port;
    for (sym, _) in TOKENS {
        wait_until(30, &format!("{sym}'s usual interval"), || {
            symbol_row(port, sym)["usual_interval_ms"].as_i64()
        });
    }
    let mut shm = Reader::open(&gw.shm).unwrap();
    assert_eq!(shm_health(&mut shm, "SBIN"), 2, "live in shm");

    mock_get(bport, &format!("/mute?token={}", token_of("SBIN")));
    let up = wait_update(&mut ws, 15, |v| {
        v["scope"] == "symbol" && v["state"] == "stale"
    })
    .expect("a stale update");
    assert_eq!(up["symbol"], "SBIN", "{up}");
    assert_eq!(up["exchange"], "NSE");
    assert_eq!(up["broker"], "zerodha");
    assert!(up["quiet_ms"].as_i64().unwrap() >= 1000, "{up}");
    assert!(up.get("status").is_none(), "no top-level status: {up}");
    let row = wait_health(port, "SBIN", "stale", 10);
    assert!(row["age_ms"].as_i64().unwrap() >= 1000, "{row}");
    // The others keep flowing and stay live, everywhere.
    for sym in ["RELIANCE", "INFY"] {
        assert_eq!(symbol_row(port, sym)["health"], "live", "{sym}");
        wait_data(&mut ws, "NSE", sym, 10);
    }
    wait_until(5, "stale in shm", || {
        (shm_health(&mut shm, "SBIN") == 3).then_some(())
    });
    assert_eq!(shm_health(&mut shm, "RELIANCE"), 2);
    assert_eq!(
        py_health(&gw.shm, "SBIN"),
        "stale",
        "the Python reader agrees"
    );
    assert_eq!(py_health(&gw.shm, "RELIANCE"), "live");
    let feed = feed_status(port);
    assert_eq!(feed["symbols_by_health"]["stale"], 1, "{feed}");
    // The feed is degraded while a symbol is stale, and clients holding it are told so.
    let deg = wait_update(&mut ws, 10, |v| v["scope"] == "feed").expect("a feed update");
    assert_eq!(deg["state"], "degraded", "{deg}");
    assert!(deg["reason"].as_str().unwrap().contains("1 stale"), "{deg}");

    mock_get(bport, &format!("/unmute?token={}", token_of("SBIN")));
    let up = wait_update(&mut ws, 15, |v| {
        v["scope"] == "symbol" && v["symbol"] == "SBIN"
    })
    .expect("a live update");
    assert_eq!(up["state"], "live", "{up}");
    wait_health(port, "SBIN", "live", 10);
    wait_until(5, "live in shm", || {
        (shm_health(&mut shm, "SBIN") == 2).then_some(())
    });
    let back = wait_update(&mut ws, 10, |v| v["scope"] == "feed").expect("a feed update");
    assert_eq!(back["state"], "connected", "{back}");
}

#[test]
fn a_stalled_connection_is_reconnected() {
    let (bport, _m, gw, mut ws) = streaming(&FAST);
    let port = gw.port;
    wait_until(30, "the connection's interval learned", || {
        symbol_row(port, "SBIN")["usual_interval_ms"].as_i64()
    });
    let conns = mock_connections(bport);
    assert_eq!(conns.len(), 1, "{conns:?}");
    let id = conns[0]["id"].as_u64().unwrap();
    // Data stops; the socket and the 1 s heartbeats go on.
    assert_eq!(mock_get(bport, &format!("/mute?conn={id}"))["done"], true);
    let f = wait_until(20, "a stall", || {
        let f = feed_status(port);
        (f["stalls"].as_u64() >= Some(1)).then_some(f)
    });
    assert_eq!(f["connections"][0]["stalls"], 1, "{f}");
    // Redialed: a new connection, not muted, and data flows again.
    wait_until(30, "a new connection", || {
        let c = mock_connections(bport);
        (c.len() == 1 && c[0]["id"].as_u64() != Some(id)).then_some(())
    });
    wait_data(&mut ws, "NSE", "SBIN", 15);
    let f = wait_feed_state(port, "open", 15);
    let err = format!("{}{}", f["last_error"], f["recovered_error"]);
    assert!(err.contains("stalled: no data for"), "{f}");
}

#[test]
fn clients_are_told_when_the_broker_goes_and_comes_back() {
    let (bport, m, gw, mut ws) = streaming(&[]);
    let port = gw.port;
    wait_data(&mut ws, "NSE", "SBIN", 15);
    let mut quiet = authed(port);
    send(&mut quiet, json!({"action": "unsubscribe_status"}));
    let r = reply(&mut quiet);
    assert_eq!(
        (r["type"].as_str(), r["status"].as_str()),
        (Some("unsubscribe_status"), Some("success"))
    );
    subscribe_all(&mut quiet);
    // Each session compares the feed with what it last told every 100 ms: let it see `connected`
    // before the broker goes (a client that subscribes while the feed is down learns that from
    // the subscribe reply, not from an update).
    wait_feed_state(port, "open", 15);
    std::thread::sleep(Duration::from_millis(500));

    drop(m);
    let down = wait_update(&mut ws, 15, |v| v["scope"] == "feed").expect("a feed update");
    assert_eq!(down["state"], "disconnected", "{down}");
    assert_eq!(down["broker"], "zerodha");
    assert_eq!(down["connections"]["open"], 0, "{down}");

    let _m = mock(bport);
    let up = wait_update(&mut ws, 60, |v| {
        v["scope"] == "feed" && v["state"] == "connected"
    })
    .expect("connected again");
    assert_eq!(
        up["connections"]["open"], up["connections"]["total"],
        "{up}"
    );
    wait_data(&mut ws, "NSE", "SBIN", 15);
    // The client that opted out heard none of it, but still gets data.
    assert!(wait_update(&mut quiet, 1, |_| true).is_none());
    wait_data(&mut quiet, "NSE", "SBIN", 15);
}

/// 08:59:30 IST on a Monday: the feed is connected (from 08:45) but no exchange is open. A
/// muted symbol is never stale, and at 09:00 NSE's pre-open is told to its clients (30 s of the
/// calendar's clock to start `serve` and subscribe, on a slow machine).
#[test]
fn nothing_is_stale_while_the_exchange_is_shut_and_sessions_are_told() {
    let bport = free_port();
    let _m = mock(bport);
    let mut extra = FAST.to_vec();
    extra.extend(["--market-now", "2026-12-07T08:59:30+05:30"]);
    let gw = start_serve_by_the_calendar(bport, &extra);
    let port = gw.port;
    wait_feed_state(port, "open", 30);
    let mut ws = authed(port);
    subscribe_all(&mut ws);
    mock_get(bport, &format!("/mute?token={}", token_of("SBIN")));
    let row = wait_health(port, "SBIN", "closed", 10);
    assert_eq!(row["upstream"], "live", "{row}");
    let pre = wait_update(&mut ws, 60, |v| v["scope"] == "market").expect("a session update");
    assert_eq!(pre["exchange"], "NSE", "{pre}");
    assert_eq!(pre["state"], "pre_open", "{pre}");
    // Still shut for trading (pre-open is not judged) and never stale: no update says so.
    assert!(wait_update(&mut ws, 3, |v| v["state"] == "stale").is_none());
    assert_eq!(symbol_row(port, "SBIN")["health"], "closed");
}

#[test]
fn the_openalgo_sdk_takes_status_updates_in_stride() {
    let bport = free_port();
    let _m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let inst = format!("http://127.0.0.1:{bport}/instruments");
    let gw = start_serve(&url, &inst, &FAST);
    drop(connect(gw.port));
    let out = python::check_script_in(
        python::openalgo_python(),
        "openalgo_status_check.py",
        &[&gw.port.to_string(), &bport.to_string()],
    );
    assert!(out.contains("\"stale\""), "{out}");
}
