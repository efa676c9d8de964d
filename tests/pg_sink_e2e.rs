//! `serve --sink postgres://…` against a real PostgreSQL server (a throwaway cluster,
//! `tests/common/pg.rs`): while the mock broker's ticks flow the server is restarted, then stopped
//! for a while and started again; afterwards every tick the gateway published to shm is in the
//! table exactly once, with its values, and the sink's status tells of its reconnects.

mod common;
#[path = "common/pg.rs"]
mod pg;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tickwire::store::pg::lanes::Lane;
use tickwire_engine::tick::valid;
use tickwire_shm::{Event, OpenOptions, Reader};

/// The sink's `/status` object (Null while the gateway is not up).
fn sink(port: u16) -> Value {
    gateway_status(port)["sink"].clone()
}

/// Waits until the sink has committed `rows` rows and is connected.
fn wait_rows(port: u16, rows: u64, what: &str) -> Value {
    wait_until(60, what, || {
        let s = sink(port);
        (s["rows"].as_u64() >= Some(rows) && s["connected"] == true).then_some(s)
    })
}

/// A price at 10^7 as PostgreSQL prints `numeric(19,7)`.
fn numeric_text(v: i64) -> String {
    let a = v.unsigned_abs();
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:07}", a / 10_000_000, a % 10_000_000)
}

#[test]
fn every_tick_is_stored_exactly_once_across_server_restarts() {
    let db = pg::Cluster::start();
    let bport = free_port();
    let _mock = mock_of("kite", bport, &["--symbols", "20", "--rate", "2000"]);
    let url = db.url();
    let mut gw = start_serve(
        &format!("ws://127.0.0.1:{bport}"),
        &format!("http://127.0.0.1:{bport}/instruments"),
        &[
            "--subscribe-all",
            "--ring-capacity",
            "131072",
            "--sink",
            &url,
            "--sink-batch-rows",
            "500",
            "--sink-flush-ms",
            "50",
        ],
    );
    drop(connect(gw.port)); // listening
    let s = wait_rows(gw.port, 2_000, "the sink's first 2000 rows");
    assert_eq!(s["table"], "ticks");

    // A restart mid-stream: connections cut, a COPY or commit in flight fails and rolls back.
    db.restart();
    let before = s["rows"].as_u64().unwrap();
    let s = wait_until(60, "a reconnect after the restart", || {
        let s = sink(gw.port);
        (s["reconnects"].as_u64() >= Some(1) && s["rows"].as_u64() > Some(before + 1_000))
            .then_some(s)
    });
    // An outage: the sink retries with backoff while ticks pile up in the ring.
    db.stop();
    std::thread::sleep(Duration::from_millis(1_500));
    let down = sink(gw.port);
    assert_eq!(down["connected"], false, "{down}");
    assert!(down["lag_ticks"].as_u64() > Some(0), "{down}");
    db.start_again();
    let rows = s["rows"].as_u64().unwrap();
    wait_until(60, "a reconnect after the outage", || {
        let s = sink(gw.port);
        (s["reconnects"].as_u64() >= Some(2) && s["rows"].as_u64() > Some(rows + 2_000))
            .then_some(s)
    });
    let m = http_get(gw.port, "/metrics");
    assert!(m.contains("tickwire_sink_rows_total "), "{m}");
    assert!(m.contains("tickwire_sink_gaps_total 0\n"), "{m}");
    assert!(m.contains("tickwire_sink_lag_ticks "), "{m}");
    assert!(m.contains("tickwire_sink_reconnects_total "), "{m}");

    // A clean stop: the sink stores what the ring still holds.
    stop_cleanly(&mut gw._proc);

    // Every tick of the ring, in order: the file is closed, nothing more arrives.
    let opts = OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    };
    let mut r = Reader::open_with(&gw.shm, opts).unwrap();
    let instance = r.instance();
    r.seek(1);
    let mut shm = HashMap::new();
    let mut names = HashMap::new();
    while let Some(ev) = r.next() {
        let Event::Tick(t) = ev else {
            panic!("the test ring lapped: make it bigger")
        };
        let n = names
            .entry(t.symbol_id)
            .or_insert_with(|| r.symbol(t.symbol_id).unwrap())
            .clone();
        let ltp = (t.valid & valid::LTP != 0).then(|| numeric_text(t.ltp));
        let key = (n.exchange, n.symbol, t.seq as i64);
        let recv_us = t.recv_ts_ns.div_euclid(1000);
        assert!(
            shm.insert(key, (ltp, recv_us)).is_none(),
            "seq twice in shm"
        );
    }
    let published = r.write_position();
    assert_eq!(shm.len() as u64, published, "every position read");
    assert!(published > 6_000, "ticks flowed: {published}");

    let mut c = db.client();
    let row = c
        .query_one(
            "SELECT count(*), count(DISTINCT (exchange, symbol, seq)) FROM ticks",
            &[],
        )
        .unwrap();
    let (n, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(n, distinct, "a tick stored twice");
    assert_eq!(n as u64, published, "rows vs ticks published");
    // Per symbol, sequences 1..=count: no hole from the first to the last.
    let holes = c
        .query(
            "SELECT exchange, symbol, min(seq), max(seq), count(*) FROM ticks \
             GROUP BY exchange, symbol HAVING min(seq) <> 1 OR max(seq) <> count(*)",
            &[],
        )
        .unwrap();
    assert!(holes.is_empty(), "{} symbols with holes", holes.len());
    // Values: exact decimals, times to the µs.
    let rows = c
        .query(
            "SELECT exchange, symbol, seq, ltp::text, \
             (extract(epoch FROM recv_ts) * 1000000)::bigint FROM ticks",
            &[],
        )
        .unwrap();
    for row in &rows {
        let key: (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        let got: (Option<String>, i64) = (row.get(3), row.get(4));
        let want = shm
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in shm"));
        assert_eq!(&got, want, "{key:?}");
    }
    // One state row per lane (the default is 2): this file's instance, and a position past
    // which the lane has none of its positions left to store.
    let lanes = tickwire::store::pg::DEFAULT_LANES;
    for index in 0..lanes {
        let lane = Lane {
            index,
            count: lanes,
        };
        let key = lane.state_key("ticks");
        let st = c
            .query_one(
                "SELECT shm_instance, position FROM tickwire_sink_state WHERE table_name = $1",
                &[&key],
            )
            .unwrap();
        assert_eq!(st.get::<_, i64>(0), instance, "{key}");
        let next = st.get::<_, i64>(1) as u64;
        assert!(next <= published + 1, "{key}: {next}");
        assert_eq!(
            lane.owned_in(next, published),
            0,
            "{key}: {next} of {published}"
        );
    }
}

/// Runs the mock into `serve --sink` with a 1,024-slot ring (half a second of ticks), stops the
/// server for 2.5 s so the ring laps the sink, and returns, after a clean stop: the sink's final
/// status, the ticks published to shm, and a client on the table.
fn lap_the_sink(extra: &[&str]) -> (Value, u64, postgres::Client, pg::Cluster) {
    let db = pg::Cluster::start();
    let bport = free_port();
    let _mock = mock_of("kite", bport, &["--symbols", "20", "--rate", "2000"]);
    let url = db.url();
    let mut args = vec![
        "--subscribe-all",
        "--ring-capacity",
        "1024",
        "--sink",
        &url,
        "--sink-flush-ms",
        "50",
    ];
    args.extend_from_slice(extra);
    let mut gw = start_serve(
        &format!("ws://127.0.0.1:{bport}"),
        &format!("http://127.0.0.1:{bport}/instruments"),
        &args,
    );
    drop(connect(gw.port));
    wait_rows(gw.port, 1_000, "the sink's first 1000 rows");
    db.stop();
    std::thread::sleep(Duration::from_millis(2_500));
    db.start_again();
    let s = wait_until(60, "the gap reported and the sink caught up", || {
        let s = sink(gw.port);
        (s["gaps"].as_u64() >= Some(1)
            && s["connected"] == true
            && s["lag_ticks"].as_u64() < Some(500))
        .then_some(s)
    });
    let (from, to) = (
        s["last_gap"]["from"].as_u64().unwrap(),
        s["last_gap"]["to"].as_u64().unwrap(),
    );
    assert!(from <= to, "{s}");
    let m = http_get(gw.port, "/metrics");
    assert!(!m.contains("tickwire_sink_gaps_total 0\n"), "{m}");
    // Every gap handled (filled or given up) while the gateway runs, not only at its stop.
    let s = wait_until(60, "every gap handled", || {
        let s = sink(gw.port);
        let lost = s["lost"].as_u64()?;
        (s["backfill_pending"] == 0 && s["backfilled"].as_u64()? + s["unfilled"].as_u64()? == lost)
            .then_some(s)
    });
    stop_cleanly(&mut gw._proc);
    let opts = OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    };
    let published = Reader::open_with(&gw.shm, opts).unwrap().write_position();
    let c = db.client();
    (s, published, c, db)
}

/// Rows, distinct `(exchange, symbol, seq)`, and the holes in the per-symbol sequences.
fn count_rows(c: &mut postgres::Client) -> (u64, u64, u64) {
    let row = c
        .query_one(
            "SELECT count(*), count(DISTINCT (exchange, symbol, seq)) FROM ticks",
            &[],
        )
        .unwrap();
    let (n, distinct): (i64, i64) = (row.get(0), row.get(1));
    let holes: i64 = c
        .query_one(
            "SELECT sum(max_seq - n)::bigint FROM (SELECT max(seq) AS max_seq, count(*) AS n \
             FROM ticks GROUP BY exchange, symbol) s",
            &[],
        )
        .unwrap()
        .get(0);
    (n as u64, distinct as u64, holes as u64)
}

#[test]
fn an_outage_longer_than_the_ring_is_filled_from_the_journal_exactly_once() {
    let (s, published, mut c, _db) = lap_the_sink(&[]);
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost > 0, "{s}");
    assert_eq!(s["backfilled"].as_u64(), Some(lost), "{s}");
    assert_eq!(s["unfilled"], 0, "{s}");
    let (n, distinct, holes) = count_rows(&mut c);
    assert_eq!(n, distinct, "a tick stored twice");
    assert_eq!(n, published, "every published tick is in the table");
    assert_eq!(holes, 0, "no hole in any symbol's sequence");
    // The filled rows are the ticks themselves: a replayed tick's receive time and price are the
    // live one's, so they sit in order among their neighbours.
    let disorder: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT recv_ts, lag(recv_ts) OVER (PARTITION BY exchange, \
             symbol ORDER BY seq) AS prev FROM ticks) t WHERE recv_ts < prev",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(disorder, 0, "receive times run with the sequence numbers");
}

#[test]
fn without_a_journal_an_outage_longer_than_the_ring_is_a_reported_gap_stored_nowhere_twice() {
    let (s, published, mut c, _db) = lap_the_sink(&["--no-journal"]);
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost > 0, "{s}");
    assert_eq!(s["unfilled"].as_u64(), Some(lost), "{s}");
    assert_eq!(s["backfilled"], 0, "{s}");
    let (n, distinct, holes) = count_rows(&mut c);
    assert_eq!(n, distinct, "a tick stored twice");
    assert_eq!(n + lost, published, "rows + reported lost = published");
    assert_eq!(
        holes, lost,
        "the holes in the sequences are the ticks reported lost"
    );
}

#[test]
fn a_refused_connection_at_start_is_retried_and_reported_not_fatal() {
    // Nothing listens on this port: serve starts anyway, the sink reports and retries.
    let dead = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{dead}/postgres");
    let bport = free_port();
    let _mock = mock_of("kite", bport, &[]);
    let gw = start_serve(
        &format!("ws://127.0.0.1:{bport}"),
        &format!("http://127.0.0.1:{bport}/instruments"),
        &["--subscribe-all", "--sink", &url],
    );
    drop(connect(gw.port));
    let s = wait_until(30, "the sink's connection error in /status", || {
        let s = sink(gw.port);
        s["last_error"].as_str().is_some().then_some(s)
    });
    assert_eq!(s["connected"], false, "{s}");
    assert!(
        s["last_error"].as_str().unwrap().contains("database"),
        "{s}"
    );
    // No --ring-capacity with a sink: the ring is sized for a database's pauses.
    let shm = &gateway_status(gw.port)["shm"];
    assert_eq!(shm["ring_capacity"], 1 << 19, "{shm}");
}

#[test]
fn a_bad_sink_url_is_a_start_up_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args([
            "serve",
            "--api-key",
            "k1",
            "--dev",
            "--no-journal",
            "--sink",
            "mysql://nobody@127.0.0.1/x",
            "--broker-url",
            "ws://127.0.0.1:1",
            "--instruments",
            "/nonexistent",
            "--kite-api-key",
            "k",
            "--kite-access-token",
            "t",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sink"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
