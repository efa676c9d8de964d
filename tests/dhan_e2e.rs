//! Dhan end to end with the real binary on loopback: the mock's Dhan endpoints (the scrip master,
//! the v2 WebSocket with its query credentials, JSON requests, one binary packet per message,
//! disconnect packet 50 for refused credentials and a sixth connection), then mock → gateway →
//! WebSocket clients in each mode and shm, values checked against what the mock sent; reconnect
//! with modes restored; an expired token stops the feed after one attempt, and the mock sees no
//! further connection; the official SDK reads the mock.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickwire_shm::Reader;
use tungstenite::Message;

use common::modes::{demo_serves_every_mode, reconnect_restores_modes};
use common::*;

const MASTER: &str = "/api-data/api-scrip-master.csv";

fn get(port: u16, path: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    (head, all[split + 4..].to_vec())
}

fn feed_url(bport: u16, token: &str, client: &str) -> String {
    format!("ws://127.0.0.1:{bport}/?version=2&token={token}&clientId={client}&authType=2")
}

/// The next binary message on a raw WebSocket to the mock (None: closed).
fn next_packet(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Text(t)) => panic!("text from the mock: {t}"),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn f32_le(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_le(b, at))
}

fn sub(code: u32, seg: &str, id: &str) -> Message {
    Message::Text(
        json!({"RequestCode": code, "InstrumentCount": 1,
               "InstrumentList": [{"ExchangeSegment": seg, "SecurityId": id}]})
        .to_string()
        .into(),
    )
}

/// A raw WebSocket to the mock's feed, reads bounded to 5 s (a test fails, never hangs).
fn dial(bport: u16, token: &str, client: &str) -> Ws {
    let (mut ws, _) = tungstenite::connect(feed_url(bport, token, client)).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    ws
}

/// The disconnect reason the mock answers an upgrade with, or None when it sends data.
fn refusal(bport: u16, token: &str, client: &str) -> Option<u16> {
    let mut ws = dial(bport, token, client);
    ws.send(sub(15, "NSE_EQ", "3045")).unwrap();
    let p = next_packet(&mut ws)?;
    if p[0] != 50 {
        return None;
    }
    assert_eq!((p.len(), u16::from_le_bytes([p[1], p[2]])), (10, 10));
    let reason = u16::from_le_bytes([p[8], p[9]]);
    assert!(
        next_packet(&mut ws).is_none(),
        "the mock closes after packet 50"
    );
    Some(reason)
}

#[test]
fn the_mock_speaks_dhan_v2() {
    let bport = free_port();
    let _m = mock_of("dhan", bport, &[]);
    // The scrip master in Dhan's columns, SBIN under its NSE token, NIFTY as index 13.
    let (head, csv) = get(bport, MASTER);
    assert!(head.contains("200"), "{head}");
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.starts_with("SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,"),
        "{csv}"
    );
    assert!(csv.contains("\nNSE,E,3045,EQUITY,0,SBIN,1.0,"), "{csv}");
    assert!(csv.contains("\nNSE,I,13,INDEX,"), "{csv}");
    assert!(csv.contains(",NIFTY-Dec2026-FUT,75.0,"), "{csv}");

    // Full mode for SBIN: the previous close first, then 162-byte full packets, one per message.
    let mut ws = dial(bport, "mock_access_token", "mock_api_key");
    ws.send(sub(21, "NSE_EQ", "3045")).unwrap();
    let pc = next_packet(&mut ws).unwrap();
    assert_eq!((pc[0], pc.len(), pc[3], u32_le(&pc, 4)), (6, 16, 1, 3045));
    let hist = sent(bport, token_of("SBIN"));
    let close = hist.last().unwrap()["close"].as_u64().unwrap();
    assert_eq!((f32_le(&pc, 8) as f64 * 100.0).round() as u64, close);
    let full = next_packet(&mut ws).unwrap();
    assert_eq!(
        (full[0], full.len(), u16::from_le_bytes([full[1], full[2]])),
        (8, 162, 162)
    );
    let ltp = (f32_le(&full, 8) as f64 * 100.0).round() as u64;
    let hist = sent(bport, token_of("SBIN"));
    assert!(hist
        .iter()
        .any(|s| s["ltp"] == ltp && s["volume"] == u32_le(&full, 22)));
    // Ticker for the index: 16 bytes, segment 0.
    ws.send(sub(15, "IDX_I", "13")).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "no index ticker");
        let p = next_packet(&mut ws).unwrap();
        if p[0] == 2 && p[3] == 0 {
            assert_eq!((p.len(), u32_le(&p, 4)), (16, 13));
            break;
        }
    }
    // The SDK's close sequence is accepted; the connection stays usable until the client closes.
    ws.send(Message::Text(r#"{"RequestCode":12}"#.into()))
        .unwrap();
    let mut header = vec![12u8, 83, 0];
    header.extend_from_slice(&[0u8; 80]);
    ws.send(Message::Binary(header.into())).unwrap();
    ws.send(sub(22, "NSE_EQ", "3045")).unwrap();
    ws.send(sub(16, "IDX_I", "13")).unwrap();
    ws.send(sub(17, "NSE_EQ", "2885")).unwrap();
    loop {
        let p = next_packet(&mut ws).expect("RELIANCE's packets after the close sequence");
        if u32_le(&p, 4) == 2885 {
            assert!(p[0] == 6 || p[0] == 4, "prev close, then quote: {}", p[0]);
            break;
        }
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}

    // Refusals come as packet 50 after the upgrade, then a close.
    assert_eq!(refusal(bport, "expired_token", "mock_api_key"), Some(807));
    assert_eq!(refusal(bport, "nope", "mock_api_key"), Some(809));
    assert_eq!(refusal(bport, "mock_access_token", "someone"), Some(808));
    // Five connections per client id; the sixth is told 805.
    let five: Vec<_> = (0..5)
        .map(|_| dial(bport, "mock_access_token", "mock_api_key"))
        .collect();
    assert_eq!(
        refusal(bport, "mock_access_token", "mock_api_key"),
        Some(805)
    );
    drop(five);
    let (_, body) = get(bport, "/mock/dhan-upgrades");
    let n: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(n["upgrades"], 10);
}

#[test]
fn dhan_demo_serves_every_mode_and_shm_with_the_mocks_values() {
    let subs = [
        ("NSE", "SBIN", 1),
        ("NSE", "RELIANCE", 2),
        ("NSE", "INFY", 3),
        ("NSE_INDEX", "NIFTY", 2),
    ];
    let d = demo_serves_every_mode("dhan", "dhan", &subs, matches_sent);
    // The same values in shared memory, prices exact on the tick grid.
    let mut r = Reader::open(&d.shm).unwrap();
    let infy = r.lookup("NSE", "INFY").unwrap();
    let last = r.last_value(infy).unwrap().expect("INFY has a last value");
    assert_eq!(last.ltp % 1_000_000, 0, "INFY's tick is 0.10: {}", last.ltp);
    let hist = sent(d.bport, token_of("INFY"));
    assert!(hist.iter().any(
        |s| (last.ltp / 100_000) as u64 == s["ltp"].as_u64().unwrap()
            && (last.bids[0].price / 100_000) as u64 == s["bids"][0][0].as_u64().unwrap()
    ));
    assert_eq!(feed_status(d.port)["parse_errors"], 0);
}

fn serve_dhan(bport: u16, token: &str) -> Served {
    let url = format!("ws://127.0.0.1:{bport}");
    let master = format!("http://127.0.0.1:{bport}{MASTER}");
    start_serve_with(&[
        "--broker",
        "dhan",
        "--dhan-url",
        &url,
        "--dhan-client-id",
        "mock_api_key",
        "--dhan-access-token",
        token,
        "--dhan-instruments",
        &master,
    ])
}

#[test]
fn dhan_reconnects_after_the_broker_restarts_with_modes_restored() {
    let (_gw, _m2, bport, _client) =
        reconnect_restores_modes("dhan", |bport| serve_dhan(bport, "mock_access_token"));
    // One connection to the new mock, carrying exactly the two symbols.
    let conns = mock_connections(bport);
    assert_eq!(conns.len(), 1, "{conns:?}");
    let mut syms: Vec<&str> = conns[0]["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    syms.sort();
    assert_eq!(syms, ["NSE:SBIN", "NSE:TCS"]);
}

#[test]
fn an_expired_dhan_token_is_reported_and_not_redialled() {
    let bport = free_port();
    let _m = mock_of("dhan", bport, &[]);
    let gw = serve_dhan(bport, "expired_token");
    let f = wait_feed_state(gw.port, "credentials_rejected", 15);
    let err = f["last_error"].as_str().unwrap();
    assert!(err.contains("807") && err.contains("expired"), "{err}");
    // The official SDK would redial every second; tickwire must not.
    std::thread::sleep(Duration::from_secs(3));
    let f = feed_status(gw.port);
    assert_eq!(f["attempts"], 1, "never retried: {f}");
    assert_eq!(f["state"], "credentials_rejected");
    let (_, body) = get(bport, "/mock/dhan-upgrades");
    let n: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(n["upgrades"], 1, "the mock saw one connection only");
}

/// Dhan's official Python SDK (`dhanhq`, in the tests' venv) against the mock: MarketFeed v2 parses
/// the mock's ticker, quote and full packets into the values it sent, its close sequence is
/// accepted; with an expired token it reads packet 50 (807).
#[test]
fn the_official_dhan_sdk_reads_the_mock() {
    let bport = free_port();
    let _m = mock_of("dhan", bport, &[]);
    let base = format!("http://127.0.0.1:{bport}");
    for extra in [None, Some("expired-token")] {
        let mut args = vec![base.as_str()];
        args.extend(extra);
        python::check_script("dhan_sdk_check.py", &args);
    }
}

/// Five connections already open for the client id: the gateway's is told 805 and backs off for
/// minutes (reason in `/status`), rather than redialling at once or stopping.
#[test]
fn dhan_805_backs_off_long_and_says_why() {
    let bport = free_port();
    let _m = mock_of("dhan", bport, &[]);
    let five: Vec<_> = (0..5)
        .map(|_| dial(bport, "mock_access_token", "mock_api_key"))
        .collect();
    let gw = serve_dhan(bport, "mock_access_token");
    drop(connect(gw.port)); // the gateway is listening
    let f = wait_until(15, "an 805 in /status", || {
        let f = feed_status(gw.port);
        f["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("805"))
            .then_some(f)
    });
    assert!(
        f["last_error"].as_str().unwrap().contains("too many"),
        "{f}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let f = feed_status(gw.port);
    assert_eq!(f["attempts"], 1, "no redial within the back-off: {f}");
    assert_ne!(
        f["state"], "credentials_rejected",
        "805 is not a credentials error: {f}"
    );
    drop(five);
}
