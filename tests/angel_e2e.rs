//! Angel One end to end with the real binary on loopback: the mock's Angel endpoints (the scrip
//! master, the header-checked upgrade, text JSON requests, ping/pong, one little-endian packet per
//! binary message, E1002 past 1,000 tokens), then mock → gateway → WebSocket clients in each mode
//! and shm, values checked against what the mock sent; reconnect with modes restored; refused
//! credentials stop the feed; the official SmartAPI SDK reads the mock.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use common::modes::{demo_serves_every_mode, reconnect_restores_modes, shm_has_sent_values};
use common::*;

const MASTER: &str = "/OpenAPI_File/files/OpenAPIScripMaster.json";

/// A raw WebSocket to the mock's feed with these header values (None: header left out).
fn dial(bport: u16, auth: Option<&str>, key: &str, feed: &str) -> Result<Ws, tungstenite::Error> {
    let mut req = format!("ws://127.0.0.1:{bport}/smart-stream")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    if let Some(a) = auth {
        h.insert("Authorization", a.parse().unwrap());
    }
    h.insert("x-api-key", key.parse().unwrap());
    h.insert("x-client-code", "A123".parse().unwrap());
    h.insert("x-feed-token", feed.parse().unwrap());
    tungstenite::connect(req).map(|(ws, _)| ws)
}

fn next_msg(ws: &mut Ws) -> Message {
    loop {
        if let m @ (Message::Binary(_) | Message::Text(_)) = ws.read().unwrap() {
            return m;
        }
    }
}

#[test]
fn the_mock_speaks_smartapi_2() {
    let bport = free_port();
    // 1,000 synthetic symbols, so one connection can ask for more than Angel's 1,000.
    let ps = bport.to_string();
    let mut m = tickwire(&[
        "mock-broker",
        "--broker",
        "angel",
        "--port",
        &ps,
        "--symbols",
        "1000",
        "--rate",
        "300",
    ]);
    wait_line(&mut m, "mock ");
    // The scrip master: Angel's row shape, all values strings.
    let rows: Value = serde_json::from_str(&http_get(bport, MASTER)).unwrap();
    let rows = rows.as_array().unwrap();
    let sbin = rows.iter().find(|r| r["symbol"] == "SBIN-EQ").unwrap();
    assert_eq!(sbin["token"], "3045");
    assert_eq!(sbin["exch_seg"], "NSE");
    assert_eq!(sbin["tick_size"], "5.000000");
    assert!(rows
        .iter()
        .any(|r| r["symbol"] == "Nifty 50" && r["instrumenttype"] == "AMXIDX"));
    assert!(rows.iter().any(|r| r["symbol"] == "NIFTY29DEC26FUT"
        && r["exch_seg"] == "NFO"
        && r["expiry"] == "29DEC2026"));

    // Wrong or missing credentials: 401 before any upgrade.
    for (auth, key, feed) in [
        (Some("Bearer nope"), "mock_api_key", "mock_access_token"),
        (
            Some("Bearer mock_access_token"),
            "other",
            "mock_access_token",
        ),
        (Some("Bearer mock_access_token"), "mock_api_key", "nope"),
        (None, "mock_api_key", "mock_access_token"),
    ] {
        match dial(bport, auth, key, feed) {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
            other => panic!("{auth:?} {key} {feed}: {:?}", other.map(|_| ())),
        }
    }
    // The JWT is accepted bare too (the SDK passes whatever it is given).
    drop(
        dial(
            bport,
            Some("mock_access_token"),
            "mock_api_key",
            "mock_access_token",
        )
        .unwrap(),
    );

    let mut ws = dial(
        bport,
        Some("Bearer mock_access_token"),
        "mock_api_key",
        "mock_access_token",
    )
    .unwrap();
    ws.send(Message::Text("ping".into())).unwrap();
    assert_eq!(next_msg(&mut ws), Message::Text("pong".into()));
    // A WebSocket PING (the Python SDK's heartbeat) is answered with a PONG.
    ws.send(Message::Ping(b"ping".to_vec().into())).unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < end, "no pong");
        if let Message::Pong(p) = ws.read().unwrap() {
            assert_eq!(&p[..], b"ping");
            break;
        }
    }
    // SnapQuote for SBIN: 379-byte little-endian packets, token NUL-terminated.
    let sub = json!({"correlationID": "abcde12345", "action": 1,
        "params": {"mode": 3, "tokenList": [{"exchangeType": 1, "tokens": ["3045"]}]}});
    ws.send(Message::Text(sub.to_string().into())).unwrap();
    let Message::Binary(b) = next_msg(&mut ws) else {
        panic!("no packet")
    };
    assert_eq!(b.len(), 379);
    assert_eq!((b[0], b[1]), (3, 1));
    assert_eq!(&b[2..7], b"3045\0");
    let ltp = i64::from_le_bytes(b[43..51].try_into().unwrap());
    assert!(ltp > 0);
    let flags: Vec<u16> = (0..10)
        .map(|e| u16::from_le_bytes([b[147 + e * 20], b[148 + e * 20]]))
        .collect();
    assert_eq!(flags.iter().filter(|&&f| f == 1).count(), 5, "{flags:?}");
    // Angel holds a token per mode: SBIN in LTP too gets a packet in each mode; after the
    // SnapQuote subscription ends and a Quote one starts, LTP and Quote only.
    let req = |action: u8, mode: u8| {
        json!({"correlationID": "m", "action": action,
            "params": {"mode": mode, "tokenList": [{"exchangeType": 1, "tokens": ["3045"]}]}})
        .to_string()
    };
    // Sizes of the binary messages that arrive within `ms` (live updates included).
    let sizes = |ws: &mut Ws, ms: u64| {
        let mut v = std::collections::BTreeSet::new();
        let end = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < end {
            match ws.read() {
                Ok(Message::Binary(b)) => {
                    v.insert(b.len());
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        v.into_iter().collect::<Vec<_>>()
    };
    if let tungstenite::stream::MaybeTlsStream::Plain(t) = ws.get_mut() {
        t.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    ws.send(Message::Text(req(1, 1).into())).unwrap();
    assert_eq!(sizes(&mut ws, 500), vec![51, 379]);
    ws.send(Message::Text(req(0, 3).into())).unwrap();
    ws.send(Message::Text(req(1, 2).into())).unwrap();
    sizes(&mut ws, 200); // what was on the way
    ws.send(Message::Text(req(1, 2).into())).unwrap(); // a fresh snapshot in the modes held now
    assert_eq!(sizes(&mut ws, 1000), vec![51, 123]);
    ws.send(Message::Text(req(0, 1).into())).unwrap();
    ws.send(Message::Text(req(0, 2).into())).unwrap();
    sizes(&mut ws, 200);
    if let tungstenite::stream::MaybeTlsStream::Plain(t) = ws.get_mut() {
        // From here a missing reply fails the test instead of hanging it.
        t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    // A malformed request: E1001 in Angel's error shape, the connection stays.
    ws.send(Message::Text("{}".into())).unwrap();
    loop {
        if let Message::Text(t) = next_msg(&mut ws) {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["errorCode"], "E1001", "{t}");
            break;
        }
    }
    // Past 1,000 tokens on one connection: E1002 names the request, nothing of it is applied.
    let mut many: Vec<String> = (0..1000).map(|i| (200_000 + i).to_string()).collect();
    many.push("3045".into());
    let sub = json!({"correlationID": "toomany001", "action": 1,
        "params": {"mode": 1, "tokenList": [{"exchangeType": 1, "tokens": many}]}});
    ws.send(Message::Text(sub.to_string().into())).unwrap();
    loop {
        if let Message::Text(t) = next_msg(&mut ws) {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["errorCode"], "E1002", "{t}");
            assert_eq!(v["correlationID"], "toomany001");
            break;
        }
    }
}

#[test]
fn angel_demo_serves_every_mode_and_shm_with_the_mocks_values() {
    let subs = [
        ("NSE", "SBIN", 1),
        ("NSE", "RELIANCE", 2),
        ("NSE", "INFY", 3),
        ("NSE_INDEX", "NIFTY", 2),
    ];
    let d = demo_serves_every_mode("angel", "angel", &subs, matches_sent);
    shm_has_sent_values(&d, "SBIN");
    let f = feed_status(d.port);
    assert_eq!(f["parse_errors"], 0, "{f}");
}

fn serve_angel(bport: u16, token: &str) -> Served {
    serve_angel_with(bport, token, &[])
}

fn serve_angel_with(bport: u16, token: &str, extra: &[&str]) -> Served {
    let url = format!("ws://127.0.0.1:{bport}/smart-stream");
    let master = format!("http://127.0.0.1:{bport}{MASTER}");
    let mut args = vec![
        "--broker",
        "angel",
        "--broker-url",
        &url,
        "--instruments",
        &master,
        "--angel-api-key",
        "mock_api_key",
        "--angel-client-code",
        "A123",
        "--angel-jwt",
        token,
        "--angel-feed-token",
        token,
    ];
    args.extend_from_slice(extra);
    start_serve_with(&args)
}

/// Past the plan's limit Angel answers `E1002` for the whole request: those symbols turn
/// `rejected` for good. The feed must not ask for them again (the issue: "rejected, not
/// retried"), unlike a symbol that is merely slow to confirm.
#[test]
fn angel_e1002_rejects_symbols_without_retrying_them() {
    let bport = free_port();
    let _m = mock_of("angel", bport, &["--symbols", "1100", "--rate", "20000"]);
    // Room on one connection for more than Angel's 1,000, so the mock's limit is what refuses.
    let gw = serve_angel_with(
        bport,
        "mock_access_token",
        &[
            "--upstream-symbols-per-connection",
            "1200",
            "--upstream-confirm-ms",
            "1000",
            // One client asks for all of them: past the default 1,000 instruments per client.
            "--max-subscriptions",
            "1100",
        ],
    );
    let mut ws = authed(gw.port);
    let symbols: Vec<Value> = (1..=1050)
        .map(|i| json!({"symbol": format!("SYN{i:05}"), "exchange": "NSE"}))
        .collect();
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": symbols, "mode": "ltp"}),
    );
    let count = |state: &str| {
        gateway_status(gw.port)["symbols"]["subscribed"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["upstream"] == state)
            .count()
    };
    let rejected = wait_until(20, "symbols past the limit rejected", || {
        let n = count("rejected");
        (n > 0 && count("live") + n == 1050).then_some(n)
    });
    assert!(rejected >= 50, "{rejected}");
    // Several retry delays later: nothing asked again, the same symbols still rejected.
    std::thread::sleep(Duration::from_secs(5));
    let f = feed_status(gw.port);
    assert_eq!(f["resubscribes"], 0, "{f}");
    assert_eq!(count("rejected"), rejected);
}

#[test]
fn angel_reconnects_after_the_broker_restarts_with_modes_restored() {
    reconnect_restores_modes("angel", |bport| serve_angel(bport, "mock_access_token"));
}

#[test]
fn refused_angel_credentials_are_reported_and_not_redialled() {
    let bport = free_port();
    let _m = mock_of("angel", bport, &[]);
    let gw = serve_angel(bport, "expired_jwt");
    wait_feed_state(gw.port, "credentials_rejected", 15);
    std::thread::sleep(Duration::from_secs(2));
    let f = feed_status(gw.port);
    assert_eq!(f["attempts"], 1, "never retried: {f}");
    let err = f["last_error"].as_str().unwrap();
    assert!(err.contains("401"), "{err}");
}

/// Angel's official Python SDK (`smartapi-python`'s SmartWebSocketV2, in the tests' venv) against
/// the mock: it sends its WebSocket PINGs and subscribes in every mode, and must parse the mock's
/// packets into the values the mock sent; with a bad token it must get the 401 and receive nothing.
#[test]
fn the_official_smartapi_sdk_reads_the_mock() {
    let bport = free_port();
    let _m = mock_of("angel", bport, &[]);
    let base = format!("http://127.0.0.1:{bport}");
    for extra in [None, Some("bad-token")] {
        let mut args = vec![base.as_str()];
        args.extend(extra);
        let text = python::check_script("angel_sdk_check.py", &args);
        if extra.is_none() {
            // Every SBIN packet the SDK parsed matches one the mock says it sent.
            let hist = sent(bport, token_of("SBIN"));
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("SBIN ")).collect();
            assert!(!lines.is_empty(), "{text}");
            for line in lines {
                let v: Value = serde_json::from_str(&line[5..]).unwrap();
                assert!(
                    hist.iter().any(|s| s["ltp"] == v["last_traded_price"]),
                    "{line}"
                );
            }
            // INFY's book as the SDK split it by flag is the book the mock sent, level by level.
            let hist = sent(bport, token_of("INFY"));
            for line in text.lines().filter(|l| l.starts_with("INFY ")) {
                let v: Value = serde_json::from_str(&line[5..]).unwrap();
                let same = |s: &Value| {
                    (0..5).all(|k| {
                        let (b, a) = (&v["best_5_buy_data"][k], &v["best_5_sell_data"][k]);
                        b["price"] == s["bids"][k][0]
                            && b["quantity"] == s["bids"][k][1]
                            && b["no of orders"] == s["bids"][k][2]
                            && a["price"] == s["asks"][k][0]
                            && a["quantity"] == s["asks"][k][1]
                    }) && v["last_traded_price"] == s["ltp"]
                        && v["open_interest"] == s["oi"]
                };
                assert!(hist.iter().any(same), "{line}");
            }
        }
    }
}
