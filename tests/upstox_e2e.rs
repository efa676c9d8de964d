//! Upstox end to end with the real binary on loopback: the mock's Upstox endpoints (authorize,
//! the single-use URI, the redirect, binary requests, protobuf frames, the gzip master), then
//! mock → gateway → WebSocket clients in each mode and shm, values checked against what the mock
//! sent; reconnect with modes restored; a refused token stops the feed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use prost::Message as _;
use serde_json::{json, Value};
use tickwire_io::brokers::upstox::pb;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use common::modes::{demo_serves_every_mode, reconnect_restores_modes, shm_has_sent_values};
use common::*;

const MASTER: &str = "/market-quote/instruments/exchange/complete.json.gz";
const SBIN_KEY: &str = "NSE_EQ|INE062A01020";

/// A plain HTTP GET with headers: (status line, headers, body bytes).
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let (status, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
    (
        status.to_string(),
        rest.to_string(),
        all[split + 4..].to_vec(),
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Next protobuf `FeedResponse` on a raw WebSocket to the mock.
fn next_feed(ws: &mut Ws) -> pb::FeedResponse {
    loop {
        match ws.read().unwrap() {
            Message::Binary(b) => return pb::FeedResponse::decode(&b[..]).unwrap(),
            Message::Text(t) => panic!("text from the mock: {t}"),
            _ => {}
        }
    }
}

#[test]
fn the_mock_speaks_upstox_authorize_redirect_and_protobuf() {
    let bport = free_port();
    let _m = mock_of("upstox", bport, &[]);
    // The gzip JSON master, rows in Upstox's shape.
    let (st, _, gz) = get(bport, MASTER, &[]);
    assert!(st.contains("200"), "{st}");
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut json)
        .unwrap();
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    let sbin = rows.iter().find(|r| r["trading_symbol"] == "SBIN").unwrap();
    assert_eq!(sbin["instrument_key"], SBIN_KEY);
    assert_eq!(sbin["segment"], "NSE_EQ");
    assert!(rows
        .iter()
        .any(|r| r["instrument_key"] == "NSE_INDEX|Nifty 50" && r["trading_symbol"] == "NIFTY"));
    assert!(rows
        .iter()
        .any(|r| r["trading_symbol"] == "NIFTY FUT 29 DEC 26" && r["segment"] == "NSE_FO"));

    // authorize: a bad token is 401 Unauthorized (the SDK's stop signal), a good one a single-use URI.
    let auth = "/v3/feed/market-data-feed/authorize";
    let (st, _, _) = get(bport, auth, &[("Authorization", &bearer("nope"))]);
    assert_eq!(st, "HTTP/1.1 401 Unauthorized");
    let (st, _, body) = get(
        bport,
        auth,
        &[("Authorization", &bearer("mock_access_token"))],
    );
    assert!(st.contains("200"), "{st}");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "success");
    let uri = v["data"]["authorized_redirect_uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(v["data"]["authorizedRedirectUri"], uri.as_str());
    assert!(uri.starts_with(&format!("ws://127.0.0.1:{bport}/v3/feed/market-data-feed?")));

    // The direct endpoint answers with a redirect to a fresh single-use URI.
    let mut req = format!("ws://127.0.0.1:{bport}/v3/feed/market-data-feed")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        bearer("mock_access_token").parse().unwrap(),
    );
    match tungstenite::client::connect_with_config(req.clone(), None, 0) {
        Err(tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 302);
            let loc = r.headers()["location"].to_str().unwrap();
            assert!(loc.contains("code="), "{loc}");
        }
        other => panic!("expected a 302, got {:?}", other.map(|_| ())),
    }
    // …which a client that follows redirects (as the SDK's does) lands on.
    let (mut ws, _) = tungstenite::connect(req).unwrap();
    assert_eq!(next_feed(&mut ws).r#type, pb::Type::MarketInfo as i32);
    drop(ws);

    // The URI works once: market_info first, then the snapshot and live frames in protobuf.
    let (mut ws, _) = tungstenite::connect(uri.as_str()).unwrap();
    let first = next_feed(&mut ws);
    assert_eq!(first.r#type, pb::Type::MarketInfo as i32);
    assert_eq!(
        first.market_info.unwrap().segment_status["NSE_EQ"],
        pb::MarketStatus::NormalOpen as i32
    );
    let sub = json!({"guid": "g1", "method": "sub", "data": {"mode": "full", "instrumentKeys": [SBIN_KEY]}});
    ws.send(Message::Binary(sub.to_string().into_bytes().into()))
        .unwrap();
    let snap = next_feed(&mut ws);
    assert_eq!(snap.r#type, pb::Type::InitialFeed as i32);
    let feed = &snap.feeds[SBIN_KEY];
    assert_eq!(feed.request_mode, pb::RequestMode::FullD5 as i32);
    let Some(pb::feed::FeedUnion::FullFeed(ff)) = &feed.feed_union else {
        panic!("{feed:?}")
    };
    let Some(pb::full_feed::FullFeedUnion::MarketFf(m)) = &ff.full_feed_union else {
        panic!()
    };
    assert_eq!(m.market_level.as_ref().unwrap().bid_ask_quote.len(), 5);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "no live feed");
        if next_feed(&mut ws).r#type == pb::Type::LiveFeed as i32 {
            break;
        }
    }
    // A text request is refused in Upstox's error shape, the connection stays.
    ws.send(Message::Text("{}".into())).unwrap();
    loop {
        if let Message::Text(t) = ws.read().unwrap() {
            assert!(t.contains("\"status\":\"failed\""), "{t}");
            break;
        }
    }
    drop(ws);
    match tungstenite::connect(uri.as_str()) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403, "single use"),
        other => panic!("a used URI was accepted: {:?}", other.map(|_| ())),
    }
}

#[test]
fn upstox_demo_serves_every_mode_and_shm_with_the_mocks_values() {
    let subs = [
        ("NSE", "SBIN", 1),
        ("NSE", "RELIANCE", 2),
        ("NSE", "INFY", 3),
        ("NSE_INDEX", "NIFTY", 2),
    ];
    let d = demo_serves_every_mode("upstox", "upstox", &subs, |data, mode, s| {
        matches_sent_with(data, mode, s, false)
    });
    shm_has_sent_values(&d, "SBIN");
    // The broker's market status reached /status.
    assert_eq!(feed_status(d.port)["market"]["NSE_EQ"], "NORMAL_OPEN");
}

fn serve_upstox(bport: u16, token: &str) -> Served {
    let api = format!("http://127.0.0.1:{bport}");
    let master = format!("{api}{MASTER}");
    start_serve_with(&[
        "--broker",
        "upstox",
        "--broker-url",
        &api,
        "--upstox-access-token",
        token,
        "--instruments",
        &master,
    ])
}

#[test]
fn upstox_reconnects_after_the_broker_restarts_with_modes_restored() {
    reconnect_restores_modes("upstox", |bport| serve_upstox(bport, "mock_access_token"));
}

#[test]
fn a_refused_upstox_token_is_reported_and_not_redialled() {
    let bport = free_port();
    let _m = mock_of("upstox", bport, &[]);
    let gw = serve_upstox(bport, "expired_token");
    wait_feed_state(gw.port, "credentials_rejected", 15);
    std::thread::sleep(Duration::from_secs(2));
    let f = feed_status(gw.port);
    assert_eq!(f["attempts"], 1, "never retried: {f}");
    let err = f["last_error"].as_str().unwrap();
    assert!(err.contains("401") && err.contains("token"), "{err}");
}

/// Upstox's official Python SDK (`upstox-python-sdk`, in the tests' venv) against the mock: REST
/// authorize, then MarketDataStreamerV3 decoding the mock's protobuf; and a bad token stopping it.
#[test]
fn the_official_upstox_sdk_reads_the_mock() {
    let bport = free_port();
    let _m = mock_of("upstox", bport, &[]);
    let base = format!("http://127.0.0.1:{bport}");
    for extra in [None, Some("bad-token")] {
        let mut args = vec![base.as_str()];
        args.extend(extra);
        python::check_script("upstox_sdk_check.py", &args);
    }
}
