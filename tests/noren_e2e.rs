//! Noren (Shoonya, Flattrade) end to end with the real binary on loopback: the official Python SDK
//! (NorenRestApiPy) against the mock, then mock → gateway (connect message and `ck`, touchline and
//! depth subscriptions, `tk`/`dk` snapshots and `tf`/`df` updates merged per token) → WebSocket
//! clients in each mode and shm, values checked against what the mock sent; a mode change from the
//! touchline to depth; reconnect with the connect message and every subscription re-sent; a refused
//! session token stops the feed after one attempt.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use tickwire::mock::noren::{FEED, MASTERS};

use common::modes::{demo_serves_every_mode, shm_has_sent_values};
use common::*;

fn serve_noren(broker: &str, bport: u16, token: &str) -> Served {
    let base = format!("http://127.0.0.1:{bport}");
    let ws = format!("ws://127.0.0.1:{bport}{FEED}");
    let masters: Vec<String> = MASTERS.iter().map(|p| format!("{base}{p}")).collect();
    let masters = masters.join(",");
    let url_flag = format!("--{broker}-url");
    start_serve_with(&[
        "--broker",
        broker,
        &url_flag,
        &ws,
        "--noren-user",
        "mock_api_key",
        "--noren-token",
        token,
        "--noren-instruments",
        &masters,
    ])
}

/// True when `data` (a touchline-fed Quote or an LTP message) matches a packet the mock sent in
/// the fields Noren's touchline carries: LTP, volume, OHLC, average price. (Last-trade quantity
/// and total buy/sell quantity ride only the depth feed.)
fn matches_touchline(data: &Value, mode: u64, s: &Value) -> bool {
    let mut ok = paise(&data["ltp"]) == s["ltp"].as_u64().unwrap();
    if mode >= 2 {
        ok &= data["volume"] == s["volume"]
            && paise(&data["open"]) == s["open"].as_u64().unwrap()
            && paise(&data["high"]) == s["high"].as_u64().unwrap()
            && paise(&data["low"]) == s["low"].as_u64().unwrap()
            && paise(&data["close"]) == s["close"].as_u64().unwrap()
            && paise(&data["average_price"]) == s["avg_price"].as_u64().unwrap();
    }
    ok
}

/// Noren's official SDK (`NorenRestApiPy`, in the tests' venv) against the mock.
#[test]
fn the_official_noren_sdk_reads_the_mock() {
    let bport = free_port();
    let _m = mock_of("shoonya", bport, &[]);
    python::check_script(
        "noren_sdk_check.py",
        &[
            &format!("http://127.0.0.1:{bport}"),
            "mock_api_key",
            "mock_access_token",
        ],
    );
}

#[test]
fn noren_demo_serves_every_mode_and_shm_with_the_mocks_values() {
    let subs = [
        ("NSE", "SBIN", 1),
        ("NSE", "RELIANCE", 2),
        ("NSE", "INFY", 3),
    ];
    // Quote rides Noren's touchline, which has no last-trade or total buy/sell quantities.
    let d = demo_serves_every_mode("shoonya", "shoonya", &subs, |data, mode, s| match mode {
        3 => matches_sent(data, mode, s),
        _ => matches_touchline(data, mode, s),
    });
    shm_has_sent_values(&d, "SBIN");
}

#[test]
fn noren_touchline_quote_then_depth_and_reconnect_with_modes_restored() {
    let bport = free_port();
    let m = mock_of("shoonya", bport, &[]);
    let gw = serve_noren("shoonya", bport, "mock_access_token");
    let mut ws = authed(gw.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": 2}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    // Quote rides the touchline: the values are the touchline's, checked against the mock.
    let q = wait_data(&mut ws, "NSE", "RELIANCE", 15);
    let hist = sent(bport, token_of("RELIANCE"));
    assert!(
        hist.iter().any(|s| matches_touchline(&q["data"], 2, s)),
        "{q}"
    );
    // Another client wants depth: the gateway moves RELIANCE from the touchline to depth.
    let mut ws2 = authed(gw.port);
    send(
        &mut ws2,
        json!({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": "depth"}),
    );
    assert_eq!(reply(&mut ws2)["status"], "success");
    let has_depth = |v: &Value| {
        v["symbol"] == "RELIANCE" && v["data"]["depth"]["buy"][0]["quantity"].as_u64() > Some(0)
    };
    let d = wait_data_where(&mut ws2, 15, "NSE:RELIANCE with depth", has_depth);
    let hist = sent(bport, token_of("RELIANCE"));
    assert!(hist.iter().any(|s| matches_sent(&d["data"], 3, s)), "{d}");
    // The broker goes away and comes back: connect, ack, depth again.
    drop(m);
    std::thread::sleep(Duration::from_millis(1500));
    while recv(&mut ws2, Duration::from_millis(50)).is_some() {}
    let _m2 = mock_of("shoonya", bport, &[]);
    let d = wait_data_where(
        &mut ws2,
        30,
        "NSE:RELIANCE with depth after reconnect",
        has_depth,
    );
    assert_eq!(d["mode"], 3);
    let f = feed_status(gw.port);
    assert!(f["connects"].as_u64().unwrap() >= 2, "{f}");
    assert_eq!(f["parse_errors"], 0, "{f}");
    let conns = mock_connections(bport);
    assert!(
        conns.iter().any(|c| c["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "NSE:RELIANCE")),
        "re-subscribed after the reconnect: {conns:?}"
    );
}

#[test]
fn a_refused_noren_session_token_is_reported_and_not_redialled() {
    let bport = free_port();
    let _m = mock_of("flattrade", bport, &["--access-token", "another_token"]);
    let gw = serve_noren("flattrade", bport, "mock_access_token");
    let f = wait_feed_state(gw.port, "credentials_rejected", 15);
    assert_eq!(f["attempts"], 1, "{f}");
    let err = f["last_error"].as_str().unwrap();
    assert!(
        err.contains("refused") && err.contains("susertoken"),
        "{err}"
    );
}
