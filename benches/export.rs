//! Export rows/s: `tickwire::store::writer` writing 1,000,000 synthetic ticks to Parquet and to CSV,
//! a mix like a live session's (60 % LTP only, 30 % quote + OI, 10 % quote + OI + five-level depth)
//! over 500 symbols. Each format is run three times into a temporary file; the time includes
//! `finish` (footer, fsync, rename), so it is the wall time of an export minus the journal reading.
//!
//!     cargo bench --bench export
//!
//! `EXPORT_BENCH_ROWS` changes the row count. Prints best and median rows/s and the file size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tickwire::store::writer::{create, Format};
use tickwire_engine::tick::{valid, DEPTH_LEVELS};
use tickwire_engine::Tick;

const SYMBOLS: usize = 500;
const RUNS: usize = 3;
/// 2026-12-03T09:15:00 IST in ns.
const T0: i64 = 1_796_269_500_000_000_000;

/// Names and a template tick per symbol.
struct Universe {
    names: Vec<(&'static str, String)>,
    templates: Vec<Tick>,
}

impl Universe {
    fn new() -> Self {
        let mut names = Vec::new();
        let mut templates = Vec::new();
        for s in 0..SYMBOLS {
            let ex = if s % 5 == 0 { "NFO" } else { "NSE" };
            names.push((ex, format!("SYM{s:04}")));
            let mut t = Tick::new(s as u32);
            let base = 1_000_000_000 + s as i64 * 3_250_000;
            t.ltp = base;
            t.last_qty = 50;
            t.avg_price = base - 1_500_000;
            t.volume = 1_234_567;
            t.total_buy_qty = 45_000;
            t.total_sell_qty = 52_000;
            t.open = base - 5_000_000;
            t.high = base + 7_500_000;
            t.low = base - 9_000_000;
            t.close = base - 2_000_000;
            t.oi = 1_500_000;
            t.oi_day_high = 1_600_000;
            t.oi_day_low = 1_400_000;
            for l in 0..DEPTH_LEVELS {
                let step = (l as i64 + 1) * 500_000;
                t.bids[l].price = base - step;
                t.bids[l].qty = 100 * (l as u32 + 1);
                t.bids[l].orders = l as u32 + 3;
                t.asks[l].price = base + step;
                t.asks[l].qty = 90 * (l as u32 + 1);
                t.asks[l].orders = l as u32 + 2;
            }
            templates.push(t);
        }
        Universe { names, templates }
    }

    /// The `i`th tick of the session and its symbol's names.
    #[inline]
    fn tick(&self, i: usize) -> (&str, &str, Tick) {
        let s = (i * 7919) % SYMBOLS;
        let mut t = self.templates[s];
        t.valid = match i % 10 {
            0..=5 => valid::LTP,
            6..=8 => valid::LTP | valid::QUOTE | valid::OI,
            _ => valid::LTP | valid::QUOTE | valid::OI | valid::DEPTH,
        };
        t.seq = (i / SYMBOLS) as u64 + 1;
        t.recv_ts_ns = T0 + i as i64 * 20_000;
        t.exchange_ts_ns = t.recv_ts_ns - 1_000_000;
        t.ltp += ((i % 41) as i64 - 20) * 50_000;
        t.volume += i as u64;
        let (ex, sym) = &self.names[s];
        (ex, sym.as_str(), t)
    }
}

fn run(u: &Universe, format: Format, rows: usize) -> (Duration, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.out");
    let start = Instant::now();
    let mut w = create(format, &path).expect("create");
    for i in 0..rows {
        let (ex, sym, t) = u.tick(i);
        w.write(ex, sym, &t).expect("write");
    }
    assert_eq!(w.finish().expect("finish"), rows as u64);
    let took = start.elapsed();
    let bytes = std::fs::metadata(&path).expect("metadata").len();
    (took, bytes)
}

fn main() {
    let rows: usize = std::env::var("EXPORT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let u = Universe::new();

    // What making the ticks alone costs, so it can be told apart from the writers.
    let start = Instant::now();
    for i in 0..rows {
        black_box(u.tick(i));
    }
    let gen = start.elapsed();
    println!(
        "making {rows} ticks alone: {:.1} ms ({:.1} ns/tick)",
        gen.as_secs_f64() * 1e3,
        gen.as_nanos() as f64 / rows as f64
    );

    for format in [Format::Parquet, Format::Csv] {
        let mut rates = Vec::new();
        let mut size = 0;
        for _ in 0..RUNS {
            let (took, bytes) = run(&u, format, rows);
            rates.push(rows as f64 / took.as_secs_f64());
            size = bytes;
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{format:?}: {rows} rows, best {:.0} rows/s, median {:.0} rows/s (runs: {}), \
             file {:.1} MB ({:.1} bytes/row)",
            rates[RUNS - 1],
            rates[RUNS / 2],
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            size as f64 / 1e6,
            size as f64 / rows as f64
        );
    }
}
