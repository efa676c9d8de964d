//! What one metric update costs on the tick path: tickwire's own histogram
//! ([`tickwire_engine::hist::Histogram::record`], single writer, Relaxed load + store) and the
//! per-batch accumulator the router and the client IO thread use, against the `prometheus`
//! crate's `IntCounter::inc` and `Histogram::observe` (atomic read-modify-writes), and a plain
//! `AtomicU64::fetch_add` (what the crate's counter is underneath). Single thread, values spread
//! over the buckets so the branch predictor does not learn one bucket. It decided between a
//! hand-written `/metrics` and the crate (`docs/decisions.md`). It also times the per-tick health
//! bookkeeping (`SymbolHealth::touch`).
//!
//! cargo bench -p tickwire-engine --bench metrics   (`cargo test --benches` runs a smoke pass)

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tickwire_engine::hist::{upper_bound, Batch, Histogram, BUCKETS};

/// A latency-like value for step `i`: 100 ns to ~1 ms, scattered.
#[inline]
fn value(i: u64) -> u64 {
    100 + (i.wrapping_mul(2_654_435_761) % 1_000_000)
}

/// ns per call of `f` over `n` calls (best of three runs: the machine is shared).
fn time(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for i in 0..n {
            f(black_box(i));
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 20_000_000 } else { 10_000 };
    println!("one update, single thread, {n} calls (best of 3), ns per call");
    println!("| what | ns |");
    println!("|---|---|");

    let h = Histogram::default();
    let ours = time(n, |i| h.record(value(i)));
    println!("| tickwire hist::Histogram::record | {ours:.2} |");

    // The router's way: a tick notes its receive time; one flush per batch of 64 ticks.
    let h2 = Histogram::default();
    let mut b = Batch::default();
    let batched = time(n, |i| {
        b.add(1_000_000 + (i / 8) as i64); // 8 ticks per broker message share their stamp
        if i % 64 == 63 {
            b.flush(&h2, 2_000_000 + i as i64);
        }
    });
    println!("| tickwire hist::Batch::add (+ flush per 64) | {batched:.2} |");

    let a = AtomicU64::new(0);
    let faa = time(n, |i| {
        a.fetch_add(i & 1, Ordering::Relaxed);
    });
    println!("| AtomicU64::fetch_add (Relaxed) | {faa:.2} |");

    let c = prometheus::IntCounter::new("c", "c").unwrap();
    let inc = time(n, |_| c.inc());
    println!("| prometheus IntCounter::inc | {inc:.2} |");

    // The same bucket bounds as ours, in seconds.
    let bounds: Vec<f64> = (0..BUCKETS).map(|i| upper_bound(i) as f64 / 1e9).collect();
    let ph =
        prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("h", "h").buckets(bounds))
            .unwrap();
    let obs = time(n, |i| ph.observe(value(i) as f64 / 1e9));
    println!("| prometheus Histogram::observe (28 buckets) | {obs:.2} |");

    // Per tick, every feed also teaches the symbol's health slot its update (`SymbolHealth::touch`,
    // docs/health.md): 2,000 live symbols, one new receive time per 4 ticks (a broker message).
    let health = tickwire_engine::health::SymbolHealth::new(2_000);
    for id in 0..2_000 {
        health.set_state(id, tickwire_engine::health::state::LIVE, 1);
    }
    let touch = time(n, |i| {
        health.touch((value(i) % 2_000) as u32, 1_000 + (i / 4) as i64)
    });
    println!("| tickwire health::SymbolHealth::touch | {touch:.2} |");

    let s = h.snapshot();
    assert_eq!(s.count(), 3 * n, "every record counted");
    assert_eq!(ph.get_sample_count(), 3 * n);
    black_box((a.load(Ordering::Relaxed), h2.snapshot().count()));
}
