//! Fyers end to end with the real binary on loopback: the official Python SDK against the mock,
//! then mock → gateway (symbols resolved to topics over the mock's `symbol-token`, auth, full mode,
//! `S` snapshots and `U` updates merged per topic) → WebSocket clients in each mode and shm, values
//! checked against what the mock sent; reconnect with modes restored; refused and expired tokens
//! stop the feed.

mod common;

use std::time::Duration;

use serde_json::json;
use tickwire::mock::fyers::{token_for, FEED, MASTERS};

use common::modes::{demo_serves_every_mode, shm_has_sent_values};
use common::*;

fn serve_fyers(bport: u16, token: &str) -> Served {
    let base = format!("http://127.0.0.1:{bport}");
    let ws = format!("ws://127.0.0.1:{bport}{FEED}");
    let masters: Vec<String> = MASTERS.iter().map(|p| format!("{base}{p}")).collect();
    let masters = masters.join(",");
    start_serve_with(&[
        "--broker",
        "fyers",
        "--broker-url",
        &ws,
        "--fyers-api-url",
        &base,
        "--fyers-access-token",
        token,
        "--instruments",
        &masters,
    ])
}

/// Fyers' official SDK (`fyers-apiv3`, in the tests' venv) against the mock.
#[test]
fn the_official_fyers_sdk_reads_the_mock() {
    let bport = free_port();
    let _m = mock_of("fyers", bport, &[]);
    python::check_script(
        "fyers_sdk_check.py",
        &[
            &format!("http://127.0.0.1:{bport}"),
            &token_for("mock_access_token"),
        ],
    );
}

#[test]
fn fyers_demo_serves_every_mode_and_shm_with_the_mocks_values() {
    let subs = [
        ("NSE", "SBIN", 1),
        ("NSE", "RELIANCE", 2),
        ("NSE", "INFY", 3),
    ];
    let d = demo_serves_every_mode("fyers", "fyers", &subs, |data, mode, s| {
        matches_sent_with(data, mode, s, true)
    });
    shm_has_sent_values(&d, "SBIN");
}

#[test]
fn fyers_reconnects_after_the_broker_restarts_with_modes_restored() {
    let bport = free_port();
    let m = mock_of("fyers", bport, &[]);
    let gw = serve_fyers(bport, &token_for("mock_access_token"));
    let mut ws = authed(gw.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "TCS", "exchange": "NSE", "mode": "depth"}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let wait_depth = |ws: &mut Ws, secs: u64| {
        wait_data_where(ws, secs, "NSE:TCS with depth", |m| {
            m["symbol"] == "TCS" && m["data"]["depth"]["buy"][0]["quantity"].as_u64() > Some(0)
        })
    };
    wait_depth(&mut ws, 10);
    drop(m);
    std::thread::sleep(Duration::from_millis(1500));
    while recv(&mut ws, Duration::from_millis(50)).is_some() {}
    let _m2 = mock_of("fyers", bport, &[]);
    // New connection, new topic ids and snapshots: depth flows again.
    let d = wait_depth(&mut ws, 25);
    assert_eq!(d["mode"], 3);
    let f = feed_status(gw.port);
    assert!(f["connects"].as_u64().unwrap() >= 2, "{f}");
}

#[test]
fn refused_or_expired_fyers_tokens_are_reported_and_not_redialled() {
    let bport = free_port();
    let _m = mock_of("fyers", bport, &["--access-token", "another_key"]);
    // The mock knows another hsm_key: auth is refused (and symbol-token answers 401).
    let gw = serve_fyers(bport, &token_for("mock_access_token"));
    let f = wait_feed_state(gw.port, "credentials_rejected", 15);
    assert_eq!(f["attempts"], 1, "{f}");
    // An expired token never dials at all.
    let expired = tickwire_io::brokers::fyers::auth::mock_token("another_key", 1_600_000_000);
    let gw2 = serve_fyers(bport, &expired);
    let f = wait_feed_state(gw2.port, "credentials_rejected", 15);
    let err = f["last_error"].as_str().unwrap();
    assert!(err.contains("expired"), "{err}");
}
