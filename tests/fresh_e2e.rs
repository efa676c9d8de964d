//! Fresh by default, end to end with the real binary: at the default settings a client that keeps
//! up gets every update of its symbols, in order (checked against what the mock sent); a client
//! that stops reading is conflated, costs the others nothing and holds bounded memory, and when it
//! reads again it gets the latest values and then every update again.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

/// The volumes the mock sent for `token` (newest last), repeats (snapshots) dropped: the mock's
/// volume grows with every trade, so it names an update.
fn sent_volumes(bport: u16, token: u32) -> Vec<u64> {
    let mut v: Vec<u64> = sent(bport, token)
        .iter()
        .map(|s| s["volume"].as_u64().unwrap())
        .collect();
    v.dedup();
    v
}

/// Reads `ws` for `dur`, returning the volumes of `symbol`'s market data in arrival order.
fn volumes_for(ws: &mut Ws, symbol: &str, dur: Duration) -> Vec<u64> {
    let end = Instant::now() + dur;
    let mut got = Vec::new();
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_millis(50)) {
            if v["type"] == "market_data" && v["symbol"] == symbol {
                got.push(v["data"]["volume"].as_u64().unwrap());
            }
        }
    }
    got
}

/// Asserts `got` is a gap-free run of `sent`: where their windows overlap, update for update.
fn assert_sequence_complete(got: &[u64], sent: &[u64], what: &str) {
    let first = sent
        .iter()
        .position(|v| got.contains(v))
        .unwrap_or_else(|| panic!("{what}: nothing received is in the mock's history"));
    let start = got.iter().position(|v| *v == sent[first]).unwrap();
    let overlap: Vec<(u64, u64)> = got[start..]
        .iter()
        .copied()
        .zip(sent[first..].iter().copied())
        .collect();
    assert!(
        overlap.len() >= 10,
        "{what}: too little overlap to judge ({})",
        overlap.len()
    );
    for (i, (g, s)) in overlap.iter().enumerate() {
        assert_eq!(
            g, s,
            "{what}: update {i} of the overlap differs: got {got:?}\nsent {sent:?}"
        );
    }
}

fn subscribe(ws: &mut Ws, symbols: &[&str]) {
    let list: Vec<Value> = symbols
        .iter()
        .map(|s| json!({"exchange": "NSE", "symbol": s}))
        .collect();
    send(
        ws,
        json!({"action": "subscribe", "mode": 2, "symbols": list}),
    );
    assert_eq!(reply(ws)["status"], "success");
}

#[test]
fn a_client_that_keeps_up_gets_every_update_in_order() {
    let d = start_demo(&["--symbols", "3", "--rate", "30000"]);
    let mut ws = authed(d.port);
    subscribe(&mut ws, &["SBIN"]);
    wait_data(&mut ws, "NSE", "SBIN", 10);
    // ~150 updates/s for SBIN; the mock remembers its last 256.
    let got = volumes_for(&mut ws, "SBIN", Duration::from_millis(800));
    let sent = sent_volumes(d.bport, token_of("SBIN"));
    assert_sequence_complete(&got, &sent, "SBIN at the default settings");
}

/// The process's private resident memory (the shm file's pages, touched as the ring fills, are
/// shared memory and not counted).
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_stalled_client_is_conflated_costs_the_others_nothing_and_catches_up() {
    // Fast enough that a client that stops reading fills the socket buffers in about a second.
    let d = start_demo(&["--symbols", "3", "--rate", "30000"]);
    let pid = d._proc.0.id();
    let mut fast = authed(d.port);
    subscribe(&mut fast, &["SBIN"]);
    let mut stalled = authed(d.port);
    subscribe(&mut stalled, &["SBIN", "RELIANCE", "INFY"]);
    wait_data(&mut fast, "NSE", "SBIN", 10);
    wait_data(&mut stalled, "NSE", "SBIN", 10);
    let rss_before = rss_kib(pid);

    // `stalled` reads nothing for 4 s; `fast` keeps up, update for update.
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(4) {
        n += volumes_for(&mut fast, "SBIN", Duration::from_millis(500)).len();
    }
    assert!(n > 1000, "the reading client kept getting updates: {n}");
    let got = volumes_for(&mut fast, "SBIN", Duration::from_millis(100));
    assert_sequence_complete(
        &got,
        &sent_volumes(d.bport, token_of("SBIN")),
        "the reading client, beside a stalled one",
    );
    let st = gateway_status(d.port);
    assert!(
        st["clients"]["conflated"].as_u64().unwrap() > 0,
        "the stalled client was conflated: {st}"
    );
    let grown = rss_kib(pid).saturating_sub(rss_before);
    assert!(
        grown < 32 << 10,
        "gateway memory grew {grown} KiB while a client stalled"
    );

    // It reads again: what the socket buffers held, the latest values of its symbols, then every
    // update again.
    volumes_for(&mut stalled, "SBIN", Duration::from_millis(1500));
    for sym in ["RELIANCE", "INFY"] {
        wait_data(&mut stalled, "NSE", sym, 10);
    }
    let got = volumes_for(&mut stalled, "SBIN", Duration::from_millis(100));
    assert_sequence_complete(
        &got,
        &sent_volumes(d.bport, token_of("SBIN")),
        "the stalled client after it resumed",
    );
}
