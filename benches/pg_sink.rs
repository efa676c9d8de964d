//! The PostgreSQL sink's throughput: `tickwire shm write-synthetic` publishes full ticks (every
//! field group: 54 non-null columns, the heaviest row) at a fixed rate into a shm file, and the
//! sink (`tickwire::store::pg`, the code `serve --sink` runs) stores them in a throwaway
//! PostgreSQL cluster (`tests/common/pg.rs`, fsync on). Per rate: rows committed per second
//! while publishing, the largest lag seen (ticks published, not committed), gaps (ticks the ring
//! overwrote first: not keeping up), and the time to drain after the writer stops.
//!
//! The writer paces itself with short sleeps (`--pace sleep`), about what a feed thread costs
//! at that rate, rather than spinning on a core the database needs.
//!
//! First, the floor: 4,000,000 of the same full rows (the volume of a 20 s run at 200,000/s, so
//! the server meets the same page cache writeback), encoded beforehand, `COPY`d from memory by
//! 1, 2 and 3 connections at once in 10,000-row transactions (`synchronous_commit = off`, as the
//! sink), with nothing else running. It is what this host's server takes at all.
//!
//! cargo bench --bench pg_sink                    (floor, then 200,000 ticks/s for 20 s with 1, 2
//!                                                 and 3 lanes)
//! cargo bench --bench pg_sink -- RATE SECS [LANES] (one run; 2 lanes by default)
//! cargo bench --bench pg_sink -- floor CONNS       (the floor alone)

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/pg.rs"]
mod pg;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tickwire::store::pg::schema::TableName;
use tickwire::store::pg::{Sink, SinkConfig};

/// Rows of each floor run: 20 s at 200,000/s, the volume of the sink runs, so that the floor
/// meets the same page cache writeback.
const FLOOR_ROWS: u64 = 4_000_000;

/// Ring slots: 1.3 s of ticks at 200,000/s.
const RING: u64 = 1 << 18;

fn run(db: &pg::Cluster, rate: u64, secs: f64, lanes: usize, table: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let mut writer = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["shm", "write-synthetic", "--symbols", "1000"])
        .args(["--rate", &rate.to_string(), "--seconds", &secs.to_string()])
        .args([
            "--ring-capacity",
            &RING.to_string(),
            "--pace",
            "sleep",
            "--path",
        ])
        .arg(&path)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start tickwire shm write-synthetic");
    let never = std::sync::atomic::AtomicBool::new(false);
    drop(tickwire::shm_cmd::open_waiting(&path, 10.0, &never).unwrap_or_else(|e| panic!("{e}")));
    let cfg = SinkConfig {
        db: db.url().parse().unwrap(),
        table: TableName::parse(table).unwrap(),
        shm: path.clone(),
        batch_rows: 10_000,
        flush: Duration::from_millis(200),
        lanes,
        journal: None,
    };
    let sink = Sink::start(cfg).unwrap_or_else(|e| panic!("{e}"));
    let stats = sink.stats();
    let reader = tickwire_shm::Reader::open_with(
        &path,
        tickwire_shm::OpenOptions {
            require_live: false,
            ..Default::default()
        },
    )
    .unwrap();
    let start = Instant::now();
    let mut max_lag = 0;
    let mut per_s = Vec::new();
    let mut lag_per_s = Vec::new();
    while writer.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(100));
        max_lag = max_lag.max(stats.lag_ticks(reader.write_position()));
        if per_s.len() < start.elapsed().as_secs() as usize {
            per_s.push(stats.rows_per_s.load(Ordering::Relaxed));
            lag_per_s.push(stats.lag_ticks(reader.write_position()));
        }
    }
    let published = reader.write_position();
    let stopped = Instant::now();
    let publish_s = (stopped - start).as_secs_f64();
    sink.stop(Duration::from_secs(120));
    let drain = stopped.elapsed();
    let rows = stats.rows.load(Ordering::Relaxed);
    let total_s = start.elapsed().as_secs_f64();
    // The first second includes connecting and creating the table.
    let steady: Vec<u64> = per_s.iter().skip(1).copied().collect();
    let mean = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    println!(
        "rate {rate}/s, {lanes} lane(s), for {publish_s:.1} s: published {published}, stored {rows} rows \
         ({:.0} rows/s overall incl. drain), steady {mean:.0} rows/s (min {} max {}), \
         max lag {max_lag} ticks, gaps {} (lost {}), drain after the writer stopped {} ms",
        rows as f64 / total_s,
        steady.iter().min().unwrap_or(&0),
        steady.iter().max().unwrap_or(&0),
        stats.gaps.load(Ordering::Relaxed),
        stats.lost.load(Ordering::Relaxed),
        drain.as_millis(),
    );
    let lags: Vec<String> = lag_per_s.iter().map(|l| format!("{}k", l / 1000)).collect();
    println!(
        "  per second: rows/s {:?}; lag at each second {}",
        per_s,
        lags.join(" ")
    );
    let mut c = db.client();
    let n: i64 = c
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(
        n as u64 + stats.lost.load(Ordering::Relaxed),
        published,
        "rows + lost = published"
    );
    c.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}

/// Stores `rows` full rows, encoded beforehand, through `conns` connections at once (each its
/// share in 10,000-row transactions) into `table`; prints and returns rows/s.
fn floor(db: &pg::Cluster, rows: u64, conns: usize, table: &str) -> f64 {
    use std::io::Write;
    use tickwire::store::pg::copy::{Batch, HEADER, TRAILER};
    use tickwire::store::pg::schema;
    const TX_ROWS: u64 = 10_000;
    let t = TableName::parse(table).unwrap();
    schema::ensure(&mut db.client(), &t).unwrap();
    let synth = tickwire::synthetic::Synth::new(1000);
    // One encoded transaction per 10,000 rows, dealt round robin to the connections.
    let mut work: Vec<Vec<Vec<u8>>> = vec![Vec::new(); conns];
    let mut pos = 1;
    let mut k = 0;
    while pos <= rows {
        let mut b = Batch::new();
        for p in pos..(pos + TX_ROWS).min(rows + 1) {
            let mut tick = synth.tick(p);
            tick.recv_ts_ns = 1_790_000_000_000_000_000 + p as i64;
            b.push("NSE", "SYM", &tick);
        }
        work[k % conns].push(b.unsent().to_vec());
        pos += TX_ROWS;
        k += 1;
    }
    let sql = schema::copy_sql(&t);
    let start = Instant::now();
    std::thread::scope(|s| {
        for txs in &work {
            let (url, sql) = (db.url(), &sql);
            s.spawn(move || {
                let mut c: postgres::Client =
                    postgres::Client::connect(&url, postgres::NoTls).unwrap();
                // As the sink's sessions run.
                c.batch_execute("SET synchronous_commit = off").unwrap();
                for body in txs {
                    let mut tx = c.transaction().unwrap();
                    let mut w = tx.copy_in(sql.as_str()).unwrap();
                    w.write_all(&HEADER).unwrap();
                    for chunk in body.chunks(256 << 10) {
                        w.write_all(chunk).unwrap();
                    }
                    w.write_all(&TRAILER).unwrap();
                    w.finish().unwrap();
                    tx.commit().unwrap();
                }
            });
        }
    });
    let r = rows as f64 / start.elapsed().as_secs_f64();
    // Gigabytes a run: not kept for the next.
    db.client()
        .batch_execute(&format!("DROP TABLE {table}"))
        .unwrap();
    println!(
        "floor: {rows} full rows from memory through {conns} connection(s) at once: {r:.0} rows/s"
    );
    r
}

fn main() {
    // `cargo test --benches` passes --bench-less flags; a smoke pass there.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let smoke = !std::env::args().any(|a| a == "--bench");
    // TICKWIRE_PG_SETTINGS="name=value …": server settings on top of the defaults.
    let settings = std::env::var("TICKWIRE_PG_SETTINGS").unwrap_or_default();
    let settings: Vec<&str> = settings.split_whitespace().collect();
    let db = pg::Cluster::start_durable_with(&settings);
    if let ["floor", conns] = &args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        floor(&db, FLOOR_ROWS, conns.parse().unwrap(), "floor");
    } else if let [rate, secs, rest @ ..] = &args[..] {
        let lanes = rest.first().map_or(2, |l| l.parse().unwrap());
        run(
            &db,
            rate.parse().unwrap(),
            secs.parse().unwrap(),
            lanes,
            "ticks",
        );
    } else if smoke {
        floor(&db, 20_000, 2, "floor_smoke");
        run(&db, 20_000, 1.0, 1, "ticks_smoke");
    } else {
        for conns in 1..=3 {
            floor(&db, FLOOR_ROWS, conns, &format!("floor_{conns}"));
        }
        for lanes in [1, 2, 3] {
            run(&db, 200_000, 20.0, lanes, &format!("ticks_200k_{lanes}"));
        }
    }
}
