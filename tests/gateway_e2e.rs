//! End to end on loopback with the real binary: mock Kite broker → feed → router → shm and
//! OpenAlgo-protocol WebSocket clients. Values a client receives are checked against what the mock
//! says it sent (`GET /sent?token=T`), field by field.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickwire_shm::{Event, Reader};
use tungstenite::Message;

use common::*;

#[test]
fn demo_serves_clients_and_shm_with_the_mocks_values() {
    demo_serves(&[]); // the router inline on the feed thread (the default)
}

#[test]
fn demo_serves_clients_and_shm_with_the_router_on_its_own_thread() {
    demo_serves(&["--router", "thread"]);
}

fn demo_serves(router: &[&str]) {
    let mut args = vec!["--symbols", "3", "--rate", "300"];
    args.extend_from_slice(router);
    let d = start_demo(&args);
    let (port, bport, shm) = (d.port, d.bport, d.shm.clone());
    let mut ws = connect(port);

    // Before authentication: the documented error, and no data.
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    let r = reply(&mut ws);
    assert_eq!(
        r,
        json!({"status": "error", "code": "NOT_AUTHENTICATED", "message": "You must authenticate first"})
    );
    send(
        &mut ws,
        json!({"action": "authenticate", "api_key": "wrong"}),
    );
    assert_eq!(reply(&mut ws)["code"], "AUTHENTICATION_ERROR");
    assert!(
        recv(&mut ws, Duration::from_millis(500)).is_none(),
        "no data before auth"
    );
    send(&mut ws, json!({"action": "authenticate", "api_key": "k1"}));
    let r = reply(&mut ws);
    assert_eq!(
        (r["type"].as_str(), r["status"].as_str()),
        (Some("auth"), Some("success"))
    );

    // One equity per mode, both subscribe forms, plus an unknown symbol.
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1, "depth": 5}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}], "mode": "Quote"}),
    );
    assert_eq!(reply(&mut ws)["subscriptions"][0]["mode"], "Quote");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE"}, {"symbol": "NOPE", "exchange": "NSE"}], "mode": 3, "request_id": "r1"}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "partial");
    assert_eq!(r["request_id"], "r1");
    assert_eq!(r["subscriptions"][1]["status"], "error");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "NOPE", "exchange": "NSE"}),
    );
    assert_eq!(
        reply(&mut ws)["status"],
        "error",
        "every symbol failed: error, not partial"
    );

    // Collect market data and check each message against the mock's record.
    let mut seen = std::collections::HashMap::<String, u32>::new();
    let end = Instant::now() + Duration::from_secs(20);
    while seen.len() < 3 || seen.values().any(|&n| n < 3) {
        assert!(Instant::now() < end, "market data for every mode: {seen:?}");
        let Some(m) = recv(&mut ws, Duration::from_secs(1)) else {
            continue;
        };
        if m["type"] != "market_data" {
            continue;
        }
        let sym = m["symbol"].as_str().unwrap().to_string();
        let mode = m["mode"].as_u64().unwrap();
        let want_mode = match sym.as_str() {
            "SBIN" => 1,
            "RELIANCE" => 2,
            "INFY" => 3,
            other => panic!("data for {other}, never subscribed"),
        };
        assert_eq!(
            mode, want_mode,
            "mode is the subscribed mode, as an integer"
        );
        assert_eq!(m["exchange"], "NSE");
        assert_eq!(m["broker"], "zerodha");
        let d = &m["data"];
        assert!(
            d["timestamp"].as_i64().unwrap() > 1_600_000_000_000,
            "integer epoch ms"
        );
        if mode == 3 {
            assert_eq!(d["depth"]["buy"].as_array().unwrap().len(), 5);
        }
        if mode == 2 {
            for k in ["avg_trade_price", "change", "change_percent"] {
                assert!(d.get(k).is_some(), "quote carries {k}");
            }
        }
        let history = sent(bport, token_of(&sym));
        assert!(
            history.iter().any(|s| matches_sent(d, mode, s)),
            "{sym} mode {mode}: {d} matches nothing the mock sent"
        );
        *seen.entry(sym).or_default() += 1;
    }

    // The same ticks are in shared memory.
    let mut r = Reader::open(&shm).unwrap();
    let sbin = r.lookup("NSE", "SBIN").unwrap();
    let last = r.last_value(sbin).unwrap().expect("SBIN has a last value");
    let hist = sent(bport, 779521);
    assert!(hist
        .iter()
        .any(|s| (last.ltp / 100_000) as u64 == s["ltp"].as_u64().unwrap()));
    r.seek_oldest();
    let mut checked = 0;
    while let Some(ev) = r.next() {
        if let Event::Tick(t) = ev {
            if t.symbol_id == sbin {
                checked += 1;
                assert!(t.recv_ts_ns > 0 && t.seq > 0);
            }
        }
    }
    assert!(checked > 0, "SBIN ticks in the shm ring");

    // Unsubscribe without a mode removes every mode; then data for it stops.
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE"}]}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        recv(&mut ws, Duration::from_millis(50));
    }
    let quiet = Instant::now() + Duration::from_millis(1500);
    let mut others = 0;
    while Instant::now() < quiet {
        if let Some(m) = recv(&mut ws, Duration::from_millis(100)) {
            assert_ne!(m["symbol"], "INFY", "data after unsubscribe");
            others += 1;
        }
    }
    assert!(others > 0, "the other subscriptions keep flowing");

    // Application ping works and echoes.
    send(
        &mut ws,
        json!({"action": "ping", "timestamp": 123, "_pingId": "p1"}),
    );
    let p = reply(&mut ws);
    assert_eq!(
        (
            p["type"].as_str(),
            p["client_timestamp"].as_i64(),
            p["_pingId"].as_str()
        ),
        (Some("pong"), Some(123), Some("p1"))
    );
}

/// The README's Python client (standard `websockets` package) against the demo, run by the tests'
/// venv (`tests/common/python.rs`).
#[test]
fn the_readme_python_client_works() {
    let d = start_demo(&[]);
    let port = d.port;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/openalgo_client.py");
    let out = Command::new(python::python())
        .arg(script)
        .arg(format!("ws://127.0.0.1:{port}"))
        .arg("k1")
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["type"], "auth");
    assert_eq!(lines[1]["status"], "success");
    for m in &lines[2..] {
        assert_eq!(
            (m["type"].as_str(), m["symbol"].as_str(), m["mode"].as_u64()),
            (Some("market_data"), Some("SBIN"), Some(2))
        );
    }
}

#[test]
fn a_slow_client_never_stalls_the_others() {
    let d = start_demo(&["--symbols", "10", "--rate", "20000", "--flush-ms", "0"]);
    let port = d.port;
    let all: Vec<Value> = ["SBIN", "RELIANCE", "INFY", "TCS"]
        .iter()
        .map(|s| json!({"symbol": s, "exchange": "NSE"}))
        .chain((1..=10).map(|i| json!({"symbol": format!("SYN{i:05}"), "exchange": "NSE"})))
        .collect();
    // The slow client subscribes to everything in depth mode and never reads again.
    let mut slow = connect(port);
    send(
        &mut slow,
        json!({"action": "authenticate", "api_key": "k1"}),
    );
    assert_eq!(reply(&mut slow)["status"], "success");
    send(
        &mut slow,
        json!({"action": "subscribe", "symbols": all, "mode": 3}),
    );
    assert_eq!(reply(&mut slow)["status"], "success");
    std::thread::sleep(Duration::from_secs(2)); // its socket buffers fill up

    let mut fast = connect(port);
    send(
        &mut fast,
        json!({"action": "authenticate", "api_key": "k1"}),
    );
    assert_eq!(reply(&mut fast)["status"], "success");
    send(
        &mut fast,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    assert_eq!(reply(&mut fast)["status"], "success");
    // SBIN ticks ~20000/14 ≈ 1400 times a second; the fast client must keep seeing them in every
    // half-second window while the slow one is stuck.
    for window in 0..6 {
        let end = Instant::now() + Duration::from_millis(500);
        let mut n = 0;
        while Instant::now() < end {
            if recv(&mut fast, Duration::from_millis(50))
                .is_some_and(|m| m["type"] == "market_data")
            {
                n += 1;
            }
        }
        assert!(
            n >= 20,
            "window {window}: only {n} messages for the fast client"
        );
    }
    drop(slow);
}

#[test]
fn protocol_errors_and_replies_match_openalgo() {
    let d = start_demo(&[]);
    let port = d.port;
    let mut ws = connect(port);
    ws.send(Message::Text("not json".into())).unwrap();
    assert_eq!(
        reply(&mut ws),
        json!({"status": "error", "code": "INVALID_JSON", "message": "Invalid JSON message"})
    );
    ws.send(Message::Text("[1,2]".into())).unwrap();
    assert_eq!(reply(&mut ws)["code"], "SERVER_ERROR");
    send(&mut ws, json!({"foo": 1}));
    assert_eq!(reply(&mut ws)["message"], "Invalid action: None");
    send(&mut ws, json!({"action": "dance"}));
    assert_eq!(reply(&mut ws)["message"], "Invalid action: dance");
    // ping and broker list work before auth; a binary frame holding JSON is accepted
    ws.send(Message::Binary(br#"{"action":"ping"}"#.to_vec().into()))
        .unwrap();
    assert_eq!(reply(&mut ws)["type"], "pong");
    send(&mut ws, json!({"action": "get_supported_brokers"}));
    assert_eq!(reply(&mut ws)["type"], "supported_brokers");
    send(&mut ws, json!({"type": "auth", "apikey": "k1"}));
    assert_eq!(
        reply(&mut ws)["type"],
        "auth",
        "`type` as verb, `apikey` as key"
    );
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 4}),
    );
    assert_eq!(
        reply(&mut ws),
        json!({"status": "error", "code": "INVALID_MODE", "message": "Invalid mode 4; expected 1 (LTP), 2 (Quote), or 3 (Depth)"})
    );
    send(&mut ws, json!({"action": "subscribe", "mode": 1}));
    assert_eq!(reply(&mut ws)["code"], "INVALID_PARAMETERS");
    // Malformed entries each get an error entry; with no usable entry the request is an error.
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [1, 2, 3], "mode": 1}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["subscriptions"].as_array().unwrap().len(), 3, "{r}");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": 123, "exchange": "NSE", "mode": 1}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(
        r["subscriptions"][0]["message"],
        "symbol must be a non-empty string, got 123"
    );
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "TCS"}], "mode": 1}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "partial", "{r}");
    assert_eq!(r["subscriptions"][1]["message"], "exchange is required");
    // Unsubscribing what was never subscribed is not a success.
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbol": "INFY", "exchange": "NSE"}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["failed"][0]["message"], "Not subscribed to INFY on NSE");
    send(&mut ws, json!({"action": "unsubscribe"}));
    assert_eq!(
        reply(&mut ws)["message"],
        "Either symbols or unsubscribe_all is required"
    );
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "TCS", "exchange": "NSE"}], "mode": "ltp"}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 1}, {"symbol": "TCS", "exchange": "NSE", "mode": 9}], "request_id": 7}),
    );
    let r = reply(&mut ws);
    assert_eq!(
        (r["status"].as_str(), r["request_id"].as_i64()),
        (Some("partial"), Some(7))
    );
    assert_eq!(
        r["failed"][0]["message"],
        "Invalid mode 9; expected 1 (LTP), 2 (Quote), or 3 (Depth)"
    );
    send(&mut ws, json!({"action": "unsubscribe_all"}));
    let r = reply(&mut ws);
    assert_eq!(
        (r["type"].as_str(), r["status"].as_str()),
        (Some("unsubscribe"), Some("success"))
    );
    assert_eq!(
        r["successful"].as_array().unwrap().len(),
        1,
        "TCS was still held"
    );
    // The feed connects in the background; broker_info tells the truth about it.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        send(&mut ws, json!({"action": "get_broker_info"}));
        let r = reply(&mut ws);
        assert_eq!(r["broker"], "zerodha");
        if r["adapter_status"] == "connected" {
            break;
        }
        assert_eq!(r["adapter_status"], "disconnected");
        assert!(Instant::now() < end, "feed never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_shuts_the_demo_down_cleanly() {
    ctrl_c_case(&[]);
}

#[test]
fn ctrl_c_shuts_the_demo_down_cleanly_with_the_router_on_its_own_thread() {
    ctrl_c_case(&["--router", "thread"]);
}

fn ctrl_c_case(extra: &[&str]) {
    let mut d = start_demo(extra);
    let pid = d._proc.0.id().to_string();
    let st = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(st.success());
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = d._proc.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "demo did not exit on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit: {status:?}");
    let opts = tickwire_shm::OpenOptions {
        require_live: false,
        ..Default::default()
    };
    let r = Reader::open_with(&d.shm, opts).unwrap();
    assert_eq!(
        r.writer_status(),
        tickwire_shm::WriterStatus::Closed,
        "shm header marked closed"
    );
}

#[test]
fn status_and_health_over_plain_http_on_the_client_port() {
    let d = start_demo(&[]);
    // JSON with the reasons (docs/observability.md); "ok" once the demo's feed is connected.
    let h = wait_until(30, "/health ok", || {
        serde_json::from_str::<serde_json::Value>(&http_get(d.port, "/health"))
            .ok()
            .filter(|v| v["status"] == "ok")
    });
    assert_eq!(h["reasons"], json!([]));
    assert!(http_get(d.port, "/nope").starts_with("not found"));
    // HEAD /health, as load balancers send it: 200, no body.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        write!(s, "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut head = String::new();
        s.read_to_string(&mut head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    // Depth on an index (no order book): empty sides, not five zero-priced levels.
    {
        let mut ws = authed(d.port);
        send(
            &mut ws,
            json!({"action": "subscribe", "symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 3}),
        );
        assert_eq!(reply(&mut ws)["status"], "success");
        let v = wait_data(&mut ws, "NSE_INDEX", "NIFTY", 10);
        assert_eq!(v["data"]["depth"], json!({"buy": [], "sell": []}), "{v}");
    }
    // Any path upgrades (nginx proxies OpenAlgo at /ws).
    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{}/ws", d.port)).unwrap();
    send(&mut ws, json!({"action": "authenticate", "api_key": "k1"}));
    assert_eq!(reply(&mut ws)["status"], "success");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "TCS", "exchange": "NSE", "mode": 2}),
    );
    let r = reply(&mut ws);
    assert!(["pending", "live"].contains(&r["subscriptions"][0]["upstream"].as_str().unwrap()));
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let st: Value = serde_json::from_str(&http_get(d.port, "/status")).unwrap();
        let subs = st["symbols"]["subscribed"].as_array().unwrap().clone();
        assert!(Instant::now() < end, "TCS never went live: {subs:?}");
        // Absent until the router has passed the demand to the feed, then pending, then live.
        let Some(tcs) = subs.iter().find(|s| s["symbol"] == "TCS") else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if tcs["upstream"] == "live" {
            assert_eq!(st["feed"]["connected"], true);
            assert!(st["clients"]["open"].as_u64().unwrap() >= 1);
            break;
        }
        assert_eq!(tcs["upstream"], "pending", "not live yet means pending");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_oversized_client_message_closes_with_1009() {
    let d = start_demo(&[]);
    let mut ws = connect(d.port);
    let big = format!(
        "{{\"action\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let _ = ws.send(Message::Text(big.into()));
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "no close frame");
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1009);
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("expected a 1009 close, got {e}"),
        }
    }
    // The gateway is still serving others.
    let mut ws2 = connect(d.port);
    send(&mut ws2, json!({"action": "ping"}));
    assert_eq!(reply(&mut ws2)["type"], "pong");
}

/// WebSocket output reads the router's last values in process, not the shm file: removing the
/// file (a tmpfs cleaner, an operator) does not stop client data.
#[test]
fn clients_get_data_after_the_shm_file_is_removed() {
    let d = start_demo(&["--symbols", "3", "--rate", "300"]);
    std::fs::remove_file(&d.shm).unwrap();
    let mut ws = authed(d.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 2}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while got < 3 && Instant::now() < deadline {
        if let Some(v) = recv(&mut ws, Duration::from_secs(1)) {
            if v["type"] == "market_data" && v["symbol"] == "SBIN" {
                assert!(v["data"]["ltp"].as_f64().unwrap() > 0.0, "{v}");
                got += 1;
            }
        }
    }
    assert_eq!(got, 3, "market data keeps coming without the shm file");
}
