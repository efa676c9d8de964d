//! The HTTP endpoints on the client port through the real binary against the mock broker on
//! loopback: `/health` (200 while connected, 503 with a reason once the broker is gone), the data
//! endpoints' API key (401 without, 200 with either header), `/status`'s latency, shm and mode
//! figures, `/subscriptions`' client counts, `/ticks/latest` against what the mock sent, and
//! `/metrics` read by the official Prometheus client's parser (`tests/python/metrics_check.py`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use common::*;

/// One request with `headers` (each line ending in `\r\n`): (status code, body).
fn http(port: u16, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n"
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let code = all
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = all.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_string())
}

fn json_of(port: u16, path: &str) -> Value {
    let (code, body) = http(port, "GET", path, "X-API-Key: k1\r\n");
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The value of the unlabelled or labelled sample `series` (e.g. `name{broker="zerodha"}`).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

fn subscribe(ws: &mut Ws, symbol: &str, mode: &str) {
    send(
        ws,
        json!({"action": "subscribe", "symbol": symbol, "exchange": "NSE", "mode": mode}),
    );
    assert_eq!(reply(ws)["status"], "success");
}

#[test]
fn every_endpoint_through_the_real_binary() {
    let bport = free_port();
    let m = mock(bport);
    let gw = start_serve(
        &format!("ws://127.0.0.1:{bport}"),
        &format!("http://127.0.0.1:{bport}/instruments"),
        &[],
    );
    let port = gw.port;
    wait_feed_state(port, "open", 30);
    let mut a = authed(port);
    subscribe(&mut a, "SBIN", "Quote");
    subscribe(&mut a, "INFY", "Depth");
    let mut b = authed(port);
    subscribe(&mut b, "SBIN", "LTP");
    wait_data(&mut a, "NSE", "SBIN", 10);
    wait_data(&mut a, "NSE", "INFY", 10);
    wait_data(&mut b, "NSE", "SBIN", 10);

    // /health: no key needed; 200 and "ok" while the feed is connected; HEAD has no body.
    let (code, body) = http(port, "GET", "/health", "");
    assert_eq!(code, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["reasons"], json!([]));
    let (code, body) = http(port, "HEAD", "/health", "");
    assert_eq!((code, body.as_str()), (200, ""));

    // The data endpoints: 401 without a key or with a wrong one, 200 with either header form.
    for path in [
        "/status",
        "/subscriptions",
        "/ticks/latest?symbols=NSE:SBIN",
    ] {
        let (code, body) = http(port, "GET", path, "");
        assert_eq!(code, 401, "{path} without a key: {body}");
        let (code, _) = http(port, "GET", path, "X-API-Key: wrong\r\n");
        assert_eq!(code, 401, "{path} with a wrong key");
        let (code, body) = http(port, "GET", path, "X-API-Key: k1\r\n");
        assert_eq!(code, 200, "{path} with X-API-Key: {body}");
        let (code, body) = http(port, "GET", path, "Authorization: Bearer k1\r\n");
        assert_eq!(code, 200, "{path} with Bearer: {body}");
    }
    let (code, body) = http(port, "GET", "/", "");
    assert_eq!(code, 200, "/ is the dashboard, no key needed");
    assert!(body.contains("<html"), "{body}");
    let (code, _) = http(port, "GET", "/nothing-here", "");
    assert_eq!(code, 404);

    // /status: latency histograms, the shm file, subscriptions by mode.
    let st = wait_until(10, "wire → client figures in /status", || {
        let st = json_of(port, "/status");
        (st["latency"]["wire_to_client"]["count"].as_u64() > Some(0)).then_some(st)
    });
    for h in ["wire_to_shm", "wire_to_client", "router_pass"] {
        let v = &st["latency"][h];
        let count = v["count"].as_u64().unwrap();
        assert!(count > 0, "{h}: {v}");
        let buckets = v["buckets"].as_array().unwrap();
        assert!(buckets.len() > 10, "{h}: {v}");
        let last = buckets.last().unwrap()[1].as_u64().unwrap();
        assert!(last <= count, "{h}: cumulative buckets end under the count");
        let (p50, p99, max) = (
            v["p50_ns"].as_u64().unwrap(),
            v["p99_ns"].as_u64().unwrap(),
            v["max_ns"].as_u64().unwrap(),
        );
        assert!(p50 <= p99 && p99 <= max && max > 0, "{h}: {v}");
        assert!(v["sum_ns"].as_u64().unwrap() > 0 && v["p999_ns"].is_u64());
    }
    let shm = &st["shm"];
    assert_eq!(shm["path"], gw.shm.to_str().unwrap());
    assert!(shm["ring_capacity"].as_u64().unwrap() >= 1024, "{shm}");
    assert!(shm["symbol_capacity"].as_u64().unwrap() >= 3, "{shm}");
    assert!(shm["write_pos"].as_u64().unwrap() > 0, "{shm}");
    assert_eq!(
        st["subscriptions_by_mode"],
        json!({"ltp": 1, "quote": 1, "depth": 1})
    );

    // /subscriptions: SBIN held by two clients (highest mode Quote), INFY by one (Depth).
    let subs = json_of(port, "/subscriptions");
    let find = |sym: &str| {
        subs["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["symbol"] == sym)
            .cloned()
            .unwrap_or_else(|| panic!("{sym} not in {subs}"))
    };
    let sbin = find("SBIN");
    assert_eq!(
        (&sbin["clients"], &sbin["mode"], &sbin["upstream"]),
        (&json!(2), &json!("Quote"), &json!("live")),
        "{sbin}"
    );
    assert_eq!(
        (&sbin["exchange"], &sbin["broker"]),
        (&json!("NSE"), &json!("zerodha"))
    );
    assert_eq!(sbin["connection"], 0);
    let infy = find("INFY");
    assert_eq!(
        (&infy["clients"], &infy["mode"]),
        (&json!(1), &json!("Depth"))
    );
    assert!(
        subs["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["symbol"] != "RELIANCE"),
        "RELIANCE is wanted by nobody: {subs}"
    );

    // /ticks/latest: the last values, as the mock sent them; unknown symbols in `errors`.
    let t = json_of(
        port,
        "/ticks/latest?symbols=NSE:SBIN,NSE%3AINFY,NSE:NOSUCH&mode=depth",
    );
    assert_eq!(t["status"], "partial", "{t}");
    assert_eq!(
        t["errors"],
        json!([{"symbol": "NSE:NOSUCH", "error": "unknown symbol"}])
    );
    let data = t["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{t}");
    for d in data {
        assert_eq!(
            (&d["type"], &d["exchange"], &d["mode"]),
            (&json!("market_data"), &json!("NSE"), &json!(3))
        );
        let sym = d["symbol"].as_str().unwrap();
        let sent = sent(bport, token_of(sym));
        assert!(
            sent.iter().any(|s| matches_sent(&d["data"], 3, s)),
            "{sym}: {d} is not among what the mock sent"
        );
    }
    let q = json_of(port, "/ticks/latest?symbols=NSE:SBIN");
    assert_eq!(q["data"][0]["mode"], 2, "Quote by default: {q}");
    assert!(q["data"][0]["data"]["depth"].is_null());
    let (code, _) = http(port, "GET", "/ticks/latest", "X-API-Key: k1\r\n");
    assert_eq!(code, 400, "symbols= is required");

    // /metrics: no key (a scraper has none); the Prometheus parser checks families and labels.
    // The feed counts its symbols by health four times a second: wait for a count.
    wait_until(5, "symbols counted by health", || {
        let st = json_of(port, "/status");
        (st["feed"]["symbols_by_health"]["live"].as_u64() >= Some(2)).then_some(())
    });
    let (code, text) = http(port, "GET", "/metrics", "");
    assert_eq!(code, 200, "{text}");
    assert!(sample(&text, "tickwire_feed_ticks_total{broker=\"zerodha\"}") > 0.0);
    assert!(sample(&text, "tickwire_wire_to_shm_seconds_count") > 0.0);
    assert!(sample(&text, "tickwire_wire_to_client_seconds_count") > 0.0);
    assert!(sample(&text, "tickwire_router_pass_seconds_count") > 0.0);
    assert!(sample(&text, "tickwire_bytes_out_total") > 0.0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    python::check_script("metrics_check.py", &[file.to_str().unwrap(), "zerodha"]);
    // The counters move between scrapes.
    let before = sample(&text, "tickwire_feed_ticks_total{broker=\"zerodha\"}");
    wait_until(10, "ticks counted", || {
        let (_, t) = http(port, "GET", "/metrics", "");
        (sample(&t, "tickwire_feed_ticks_total{broker=\"zerodha\"}") > before).then_some(())
    });

    // The broker goes away: /health says 503 and why.
    drop(m);
    let h = wait_until(20, "/health 503", || {
        let (code, body) = http(port, "GET", "/health", "");
        (code == 503).then(|| serde_json::from_str::<Value>(&body).unwrap())
    });
    assert_eq!(h["status"], "unhealthy");
    let reasons = h["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("feed zerodha: ")),
        "{h}"
    );
    let (code, body) = http(port, "HEAD", "/health", "");
    assert_eq!((code, body.as_str()), (503, ""));
    let (_, text) = http(port, "GET", "/metrics", "");
    assert_eq!(sample(&text, "tickwire_feed_up{broker=\"zerodha\"}"), 0.0);
}
