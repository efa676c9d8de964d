//! Pools and several feeds, end to end with the real binary on loopback: a feed opens another
//! upstream connection when one is full, losing one connection gaps only its symbols, a symbol the
//! broker never confirms is asked for again, and two brokers feed one gateway (on one feed thread
//! or two).

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

fn symbols_of(conn: &Value) -> Vec<String> {
    conn["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn kite_serve(bport: u16, extra: &[&str]) -> Served {
    let url = format!("ws://127.0.0.1:{bport}");
    let inst = format!("http://127.0.0.1:{bport}/instruments");
    let mut args = vec!["--flush-ms", "0"];
    args.extend_from_slice(extra);
    start_serve(&url, &inst, &args)
}

#[test]
fn a_full_connection_opens_another_and_losing_one_gaps_only_its_symbols() {
    let bport = free_port();
    let _m = mock_of("kite", bport, &[]);
    let g = kite_serve(bport, &["--upstream-symbols-per-connection", "2"]);
    let mut ws = authed(g.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "mode": 2, "symbols": [
            {"exchange": "NSE", "symbol": "SBIN"},
            {"exchange": "NSE", "symbol": "RELIANCE"},
            {"exchange": "NSE", "symbol": "INFY"}]}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");

    // Two instruments fill the first connection; the third opens a second one.
    let conns = wait_until(15, "two upstream connections carrying 2 + 1", || {
        let c = mock_connections(bport);
        let mut sizes: Vec<usize> = c.iter().map(|c| symbols_of(c).len()).collect();
        sizes.sort();
        (sizes == [1, 2]).then_some(c)
    });
    let lonely = conns
        .iter()
        .find(|c| symbols_of(c).len() == 1)
        .unwrap()
        .clone();
    let gone = symbols_of(&lonely)[0].clone();
    let (gx, gs) = gone.split_once(':').unwrap();
    let st = wait_until(15, "both connections open and every symbol live", || {
        let s = gateway_status(g.port);
        let f = &s["feed"];
        let live = s["symbols"]["subscribed"]
            .as_array()
            .is_some_and(|l| l.len() == 3 && l.iter().all(|x| x["upstream"] == "live"));
        (f["state"] == "open" && f["connections"].as_array().map(Vec::len) == Some(2) && live)
            .then_some(s)
    });
    let conn_of = |s: &Value, sym: &str| {
        s["symbols"]["subscribed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["symbol"] == sym)
            .unwrap()["connection"]
            .as_u64()
            .unwrap() as usize
    };
    let (c_gone, c_kept) = (
        conn_of(&st, gs),
        conn_of(&st, "SBIN").max(conn_of(&st, "RELIANCE")),
    );
    assert_ne!(c_gone, c_kept, "{st}");
    let kept: Vec<&str> = ["SBIN", "RELIANCE", "INFY"]
        .into_iter()
        .filter(|s| *s != gs)
        .collect();

    // Kill the connection that carries one symbol: the other connection never notices, its
    // symbols keep coming, and the lost one comes back on a new connection with its mode.
    let r = http_get(bport, &format!("/drop?conn={}", lonely["id"]));
    assert!(r.contains("true"), "{r}");
    let t0 = Instant::now();
    let mut seen_kept = std::collections::BTreeSet::new();
    while seen_kept.len() < kept.len() && t0.elapsed() < Duration::from_secs(5) {
        if let Some(v) = recv(&mut ws, Duration::from_millis(200)) {
            if v["type"] == "market_data" && kept.contains(&v["symbol"].as_str().unwrap_or("")) {
                seen_kept.insert(v["symbol"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(
        seen_kept.len(),
        kept.len(),
        "the other connection's symbols kept coming"
    );
    let st = wait_until(15, "the dropped connection back", || {
        let s = gateway_status(g.port);
        let c = &s["feed"]["connections"];
        (c[c_gone]["connects"] == 2 && c[c_gone]["state"] == "open").then_some(s)
    });
    let c = &st["feed"]["connections"];
    assert_eq!(
        c[c_kept]["connects"], 1,
        "the other connection never dropped: {st}"
    );
    assert_eq!(c[c_kept]["attempts"], 1, "{st}");
    assert_eq!(c[c_gone]["symbols"], 1);
    let v = wait_data(&mut ws, gx, gs, 10);
    assert!(v["data"]["ltp"].as_f64().unwrap() > 0.0);
    assert!(
        v["data"].get("open").is_some(),
        "resubscribed in quote mode: {v}"
    );
    wait_until(10, "the lost symbol on a new upstream connection", || {
        let c = mock_connections(bport);
        (c.len() == 2
            && c.iter()
                .any(|c| c["id"] != lonely["id"] && symbols_of(c) == [gone.clone()]))
        .then_some(())
    });
}

#[test]
fn a_subscription_the_broker_never_confirms_is_asked_for_again() {
    let bport = free_port();
    // The mock loses the first two requests: Kite's subscribe and its mode message.
    let _m = mock_of("kite", bport, &["--ignore-requests", "2"]);
    let g = kite_serve(bport, &["--upstream-confirm-ms", "700"]);
    // Connected first: a subscribe before the feed is up is `disconnected`, not `pending` (on a
    // busy machine the client can get there first).
    wait_feed_state(g.port, "open", 30);
    let mut ws = authed(g.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["subscriptions"][0]["upstream"], "pending", "{r}");
    let v = wait_data(&mut ws, "NSE", "SBIN", 15);
    assert!(v["data"]["ltp"].as_f64().unwrap() > 0.0);
    let s = gateway_status(g.port);
    assert!(s["feed"]["resubscribes"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["symbols"]["subscribed"][0]["upstream"], "live", "{s}");
}

#[test]
fn two_brokers_feed_one_gateway() {
    two_brokers(&[]);
}

#[test]
fn two_brokers_on_two_feed_threads() {
    two_brokers(&["--feed-threads", "2"]);
}

/// Equities from Kite, F&O from Upstox, one gateway.
fn two_brokers(extra: &[&str]) {
    let (kp, up) = (free_port(), free_port());
    let _k = mock_of("kite", kp, &[]);
    let _u = mock_of("upstox", up, &[]);
    let urls = [
        format!("ws://127.0.0.1:{kp}"),
        format!("http://127.0.0.1:{kp}/instruments"),
        format!("http://127.0.0.1:{up}"),
        format!("http://127.0.0.1:{up}/market-quote/instruments/exchange/complete.json.gz"),
    ];
    let mut args = vec![
        "--feed",
        "kite:NSE,NSE_INDEX",
        "--feed",
        "upstox:NFO,CDS",
        "--kite-url",
        &urls[0],
        "--kite-instruments",
        &urls[1],
        "--kite-api-key",
        "mock_api_key",
        "--kite-access-token",
        "mock_access_token",
        "--upstox-url",
        &urls[2],
        "--upstox-instruments",
        &urls[3],
        "--upstox-access-token",
        "mock_access_token",
        "--flush-ms",
        "0",
    ];
    args.extend_from_slice(extra);
    let g = start_serve_with(&args);
    let mut ws = authed(g.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "mode": 2, "symbols": [
            {"exchange": "NSE", "symbol": "SBIN"},
            {"exchange": "NFO", "symbol": "NIFTY29DEC26FUT"}]}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["subscriptions"][0]["broker"], "zerodha");
    assert_eq!(r["subscriptions"][1]["broker"], "upstox");
    let v = wait_data(&mut ws, "NSE", "SBIN", 15);
    assert_eq!(v["broker"], "zerodha", "{v}");
    let v = wait_data(&mut ws, "NFO", "NIFTY29DEC26FUT", 15);
    assert_eq!(v["broker"], "upstox", "{v}");
    assert!(v["data"]["ltp"].as_f64().unwrap() > 0.0);

    // Each broker was asked for its own symbol only.
    let only = |port: u16, sym: &str| {
        let c = mock_connections(port);
        c.len() == 1 && symbols_of(&c[0]) == [sym.to_string()]
    };
    wait_until(5, "each mock carrying its own symbol", || {
        (only(kp, "NSE:SBIN") && only(up, "NFO:NIFTY29DEC26FUT")).then_some(())
    });
    let s = gateway_status(g.port);
    let brokers: Vec<&str> = s["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["broker"].as_str().unwrap())
        .collect();
    assert_eq!(brokers, ["zerodha", "upstox"], "{s}");
    assert!(s["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["state"] == "open"));
    send(&mut ws, json!({"action": "get_supported_brokers"}));
    assert_eq!(reply(&mut ws)["count"], 2);
}
