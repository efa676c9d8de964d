//! The mock broker as a test peer in its own right: credentials, the instrument master, Kite's
//! framing read by a plain WebSocket client and by the official `kiteconnect` KiteTicker, and the
//! WebSocket closing handshake.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::Message;

use common::*;

#[test]
fn the_mock_checks_credentials_and_serves_the_master() {
    let bport = free_port();
    let _m = mock(bport);
    let csv = http_get(bport, "/instruments");
    assert!(csv.starts_with("instrument_token,exchange_token,tradingsymbol"));
    for name in [
        "SBIN",
        "RELIANCE",
        "INFY",
        "TCS",
        "NIFTY 50",
        "NIFTY26DECFUT",
        "USDINR26DECFUT",
    ] {
        assert!(csv.contains(name), "{name} in the master");
    }
    let bad = tungstenite::connect(format!("ws://127.0.0.1:{bport}/?api_key=x&access_token=y"));
    match bad {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| ())),
    }
    // Kite's framing from the mock, read with a plain WebSocket client: subscribe, set full mode,
    // get a 184-byte packet for the token, and a 1-byte heartbeat within ~1 s.
    let (mut ws, _) = tungstenite::connect(format!(
        "ws://127.0.0.1:{bport}/?api_key=mock_api_key&access_token=mock_access_token"
    ))
    .unwrap();
    ws.send(Message::Text(r#"{"a":"subscribe","v":[779521]}"#.into()))
        .unwrap();
    ws.send(Message::Text(
        r#"{"a":"mode","v":["full",[779521]]}"#.into(),
    ))
    .unwrap();
    let (mut full, mut heartbeat) = (false, false);
    let end = Instant::now() + Duration::from_secs(5);
    while !(full && heartbeat) && Instant::now() < end {
        if let Message::Binary(b) = ws.read().unwrap() {
            if b.len() == 1 {
                heartbeat = true;
            } else if b.len() >= 4 && u16::from_be_bytes([b[2], b[3]]) == 184 {
                assert_eq!(u32::from_be_bytes([b[4], b[5], b[6], b[7]]), 779521);
                full = true;
            }
        }
    }
    assert!(
        full && heartbeat,
        "full packet {full}, heartbeat {heartbeat}"
    );
    ws.send(Message::Text("not json".into())).unwrap();
    loop {
        if let Message::Text(t) = ws.read().unwrap() {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(v["type"], "error");
            break;
        }
    }
}

/// The official `kiteconnect` KiteTicker against the mock, run by the tests' venv
/// (`tests/common/python.rs`).
#[test]
fn the_official_kite_ticker_reads_the_mock() {
    let bport = free_port();
    let _m = mock(bport);
    python::check_script(
        "kite_ticker_check.py",
        &[&format!("ws://127.0.0.1:{bport}")],
    );
}

/// A clean close from the client gets the closing handshake back (RFC 6455 §5.5.1): the mock
/// echoes the client's 1000 and flushes it before dropping the connection.
#[test]
fn a_client_closing_with_1000_gets_1000_back() {
    let bport = free_port();
    let _m = mock(bport);
    let (mut ws, _) = tungstenite::connect(format!(
        "ws://127.0.0.1:{bport}/?api_key=mock_api_key&access_token=mock_access_token"
    ))
    .unwrap();
    ws.send(Message::Text(r#"{"a":"subscribe","v":[779521]}"#.into()))
        .unwrap();
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    let code = loop {
        assert!(Instant::now() < end, "no close frame back");
        match ws.read() {
            Ok(Message::Close(Some(f))) => break u16::from(f.code),
            Ok(Message::Close(None)) => panic!("close frame without a code"),
            Ok(_) => {} // ticks queued before the close
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    };
    assert_eq!(code, 1000);
    // …and then the connection ends cleanly.
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
}

/// `/outage?secs=N` stops the broker for N seconds: the open connection ends without a close
/// frame, upgrades meanwhile are closed unanswered while plain HTTP keeps answering, and then
/// upgrades succeed again.
#[test]
fn an_outage_drops_connections_and_refuses_upgrades_for_a_while() {
    let bport = free_port();
    let _m = mock(bport);
    let url =
        format!("ws://127.0.0.1:{bport}/?api_key=mock_api_key&access_token=mock_access_token");
    let (mut ws, _) = tungstenite::connect(&url).unwrap();
    let out: Value = serde_json::from_str(&http_get(bport, "/outage?secs=3")).unwrap();
    let started = Instant::now();
    assert_eq!(out["dropped"], 1, "{out}");
    assert_eq!(out["secs"], 3);
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < end, "the connection was not dropped");
        match ws.read() {
            Ok(Message::Close(_)) => panic!("an outage sends no close frame"),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let refused = tungstenite::connect(&url);
    assert!(refused.is_err(), "an upgrade during the outage is refused");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "checked within the outage"
    );
    assert_eq!(http_get(bport, "/connections"), "[]", "HTTP still answers");
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    let end = Instant::now() + Duration::from_secs(5);
    while tungstenite::connect(&url).is_err() {
        assert!(
            Instant::now() < end,
            "upgrades still refused after the outage"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
