//! `tickwire replay`: a journal recorded by `serve` against the mock broker, played back into a
//! fresh shm file, gives tick for tick the same ring (values, per-symbol sequence numbers, receive
//! times) and last values as the live run; `--from`/`--to` cut it by receive time; clients of a
//! replay get its ticks over the OpenAlgo protocol and `/status` says `replay`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;
use tickwire_engine::Tick;
use tickwire_shm::{Event, OpenOptions, Reader};

/// Opens a file whose writer has closed it.
fn closed_ok() -> OpenOptions {
    OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    }
}

/// Every tick still in the ring of the shm file at `path`, oldest first (the test sizes the ring
/// so that nothing was overwritten).
fn ring(path: &Path) -> Vec<Tick> {
    let mut r = Reader::open_with(path, closed_ok()).unwrap();
    r.seek_oldest();
    let mut out = Vec::new();
    while let Some(ev) = r.next() {
        match ev {
            Event::Tick(t) => out.push(t),
            Event::Lagged { lost } => panic!("{}: ring lapped, {lost} ticks lost", path.display()),
        }
    }
    out
}

/// Every symbol's last value.
fn last_values(path: &Path) -> Vec<Option<Tick>> {
    let r = Reader::open_with(path, closed_ok()).unwrap();
    (0..r.symbol_count() as u32)
        .map(|s| r.last_value(s).unwrap())
        .collect()
}

/// Runs `tickwire replay` on `journal` into `shm` to its end; returns its stdout.
fn replay(journal: &Path, shm: &Path, extra: &[&str]) -> String {
    let port = free_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args([
            "replay",
            "--journal",
            journal.to_str().unwrap(),
            "--speed",
            "max",
        ])
        .args([
            "--port",
            &port,
            "--api-key",
            "k1",
            "--shm",
            shm.to_str().unwrap(),
        ])
        .args(["--ring-capacity", "262144"])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "replay {extra:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// RFC 3339 (UTC, milliseconds) of `ns`, rounded down, and that instant in ns.
fn ms_time(ns: i64) -> (String, i64) {
    let ms = ns.div_euclid(1_000_000) * 1_000_000;
    (tickwire_engine::clock::rfc3339_utc(ms), ms)
}

/// Ticks with their sequence numbers cleared (a replay from `--from` numbers from 1).
fn unsequenced(ticks: &[Tick]) -> Vec<Tick> {
    ticks.iter().map(|t| Tick { seq: 0, ..*t }).collect()
}

#[test]
fn replay_reproduces_the_live_ring_tick_for_tick() {
    let bport = free_port();
    // Up and listening before serve asks it for the master.
    let _m = mock_of("kite", bport, &["--symbols", "6", "--rate", "2000"]);
    let url = format!("ws://127.0.0.1:{bport}");
    let inst = format!("http://127.0.0.1:{bport}/instruments");
    let mut gw = start_serve(&url, &inst, &["--ring-capacity", "262144"]);
    // A client's demand drives the subscriptions the journal records: a subscribe in LTP, a
    // change to depth, a second symbol, an unsubscribe.
    let mut ws = authed(gw.port);
    let sub = |ws: &mut Ws, sym: &str, mode: u64| {
        send(
            ws,
            json!({"action": "subscribe", "symbol": sym, "exchange": "NSE", "mode": mode}),
        );
        assert_eq!(reply(ws)["status"], "success");
    };
    sub(&mut ws, "SBIN", 1);
    for _ in 0..20 {
        wait_data(&mut ws, "NSE", "SBIN", 10);
    }
    sub(&mut ws, "SBIN", 3);
    sub(&mut ws, "INFY", 2);
    for _ in 0..50 {
        wait_data(&mut ws, "NSE", "INFY", 10);
    }
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 3}),
    );
    std::thread::sleep(Duration::from_millis(500));
    drop(ws);
    stop_cleanly(&mut gw._proc);

    let journal = gw._dir.path().join("journal");
    let live = ring(&gw.shm);
    assert!(
        live.len() > 100,
        "the live run published {} ticks",
        live.len()
    );
    let modes: std::collections::BTreeSet<u32> = live.iter().map(|t| t.valid).collect();
    assert!(
        modes.len() > 1,
        "more than one mode was recorded: {modes:?}"
    );

    let out = gw._dir.path().join("replayed");
    let text = replay(&journal, &out, &[]);
    assert!(text.contains(&format!("{} ticks", live.len())), "{text}");
    let again = ring(&out);
    assert_eq!(again.len(), live.len());
    for (i, (a, b)) in live.iter().zip(&again).enumerate() {
        assert_eq!(a, b, "tick {i} of the ring differs");
    }
    assert_eq!(last_values(&gw.shm), last_values(&out), "last values");

    // A window: --to keeps what was received up to it, --from what was received from it.
    let (mid, mid_ns) = ms_time(live[live.len() / 2].recv_ts_ns);
    let until = gw._dir.path().join("until");
    replay(&journal, &until, &["--to", &mid]);
    let want: Vec<Tick> = live
        .iter()
        .filter(|t| t.recv_ts_ns <= mid_ns)
        .copied()
        .collect();
    assert_eq!(ring(&until), want, "--to {mid}");
    let from = gw._dir.path().join("from");
    replay(&journal, &from, &["--from", &mid]);
    let want: Vec<Tick> = live
        .iter()
        .filter(|t| t.recv_ts_ns >= mid_ns)
        .copied()
        .collect();
    assert_eq!(
        unsequenced(&ring(&from)),
        unsequenced(&want),
        "--from {mid}"
    );
}

/// Every broker's parser replays its own recording (Fyers' from the fytokens its feed learned
/// and journaled): `demo` (every instrument in depth) against
/// each mock, journaled, then replayed ring for ring.
#[test]
fn every_broker_replays_tick_for_tick() {
    for broker in ["kite", "upstox", "fyers", "angel", "dhan", "shoonya"] {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal");
        let mut d = start_demo(&[
            "--broker",
            broker,
            "--symbols",
            "6",
            "--rate",
            "3000",
            "--ring-capacity",
            "262144",
            "--journal",
            journal.to_str().unwrap(),
        ]);
        let mut r = Reader::open(&d.shm).unwrap();
        assert!(
            shm_has_new_ticks(&mut r, Duration::from_secs(10)),
            "{broker}: no ticks"
        );
        std::thread::sleep(Duration::from_millis(1500));
        drop(r);
        stop_cleanly(&mut d._proc);
        let live = ring(&d.shm);
        assert!(live.len() > 100, "{broker}: {} ticks", live.len());
        let out = dir.path().join("replayed");
        replay(&journal, &out, &[]);
        let again = ring(&out);
        assert_eq!(again.len(), live.len(), "{broker}");
        for (i, (a, b)) in live.iter().zip(&again).enumerate() {
            assert_eq!(a, b, "{broker}: tick {i} of the ring differs");
        }
        assert_eq!(
            last_values(&d.shm),
            last_values(&out),
            "{broker}: last values"
        );
    }
}

#[test]
fn clients_of_a_replay_get_its_ticks_and_status_says_replay() {
    let bport = free_port();
    let _m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let inst = format!("http://127.0.0.1:{bport}/instruments");
    let mut gw = start_serve(&url, &inst, &["--subscribe", "NSE:SBIN"]);
    let mut ws = authed(gw.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 2}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    for _ in 0..10 {
        wait_data(&mut ws, "NSE", "SBIN", 10);
    }
    drop(ws);
    stop_cleanly(&mut gw._proc);

    // Paced as recorded, waiting for one client before it starts.
    let port = free_port();
    let ps = port.to_string();
    let journal = gw._dir.path().join("journal");
    let shm = gw._dir.path().join("replayed");
    let mut rp = tickwire(&[
        "replay",
        "--journal",
        journal.to_str().unwrap(),
        "--speed",
        "1",
        "--wait-clients",
        "1",
        "--hold",
        "--port",
        &ps,
        "--api-key",
        "k1",
        "--shm",
        shm.to_str().unwrap(),
    ]);
    wait_line(&mut rp, "WebSocket");
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 2}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let d = wait_data(&mut ws, "NSE", "SBIN", 20);
    assert!(d["data"]["ltp"].as_f64().unwrap() > 0.0, "{d}");
    let st = gateway_status(port);
    assert_eq!(st["mode"], "replay", "{st}");
    assert_eq!(st["feed"]["state"], "replay", "{st}");
    assert_eq!(st["feed"]["broker"], "zerodha", "{st}");
    assert_eq!(st["replay"]["speed"], "1", "{st}");
    stop_cleanly(&mut rp);
}

#[test]
fn bad_replays_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
            .arg("replay")
            .args(args)
            .args(["--port", "0", "--api-key", "k1"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("nope");
    let e = run(&["--journal", missing.to_str().unwrap()]);
    assert!(e.contains("nope"), "{e}");
    let e = run(&[]);
    assert!(e.contains("--journal"), "{e}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = run(&["--journal", empty.to_str().unwrap()]);
    assert!(e.contains("no journal segments"), "{e}");
    let e = run(&["--journal", empty.to_str().unwrap(), "--speed", "0"]);
    assert!(e.contains("positive"), "{e}");
    let e = run(&[
        "--journal",
        empty.to_str().unwrap(),
        "--from",
        "2026-12-03T10:00",
        "--to",
        "2026-12-03T09:00",
    ]);
    assert!(e.contains("before"), "{e}");
}
