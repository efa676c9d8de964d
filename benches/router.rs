//! Router per-tick cost: ring pop + sequence stamp + shm publish (ring slot and last-value merge) +
//! the IO-thread mask lookup + throttle mark (or, at interval 0, the default, one delivery push
//! per client IO thread holding the symbol, whatever its number of clients), with the flushes
//! amortised in. Timed on the router thread itself, per pass of up to 256 ticks, and
//! reported as hdrhistogram percentiles of ns per tick.
//!
//! cargo bench --bench router            (full run; `cargo test --benches` runs a short smoke pass)

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tickwire::synthetic::Synth;
use tickwire_engine::router::{
    Control, Mode, RingEnds, RingSizes, Router, RouterConfig, RouterRings,
};
use tickwire_shm::{Writer, WriterConfig};

const SYMBOLS: u32 = 1000;
/// Symbols that have subscribers; ticks are spread round-robin over all SYMBOLS.
const WATCHED: u32 = 100;

fn case(subs: u32, interval: Duration, ticks: u64) {
    let path = std::env::temp_dir().join(format!("tw-bench-router-{}", std::process::id()));
    let path = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from(format!("/dev/shm/tw-bench-router-{}", std::process::id()))
    } else {
        path
    };
    let reg = tickwire::synthetic::registry(SYMBOLS, SYMBOLS as usize);
    let writer = Writer::create(
        &path,
        &WriterConfig {
            ring_capacity: 1 << 16,
            symbol_capacity: SYMBOLS as u64,
        },
        &reg,
    )
    .expect("create shm file");
    let cfg = RouterConfig {
        symbols: SYMBOLS as usize,
        flush_interval: interval,
        consumers_per_io: 1024,
        batch: 256,
        ..RouterConfig::default()
    };
    let (rings, ends) = RouterRings::one_each(RingSizes {
        feed: 4096,
        upstream: 4096,
        control: 1 << 18,
        deliveries: 1 << 14,
    });
    let RingEnds {
        mut feed,
        upstream: mut up_rx,
        control: mut ctl,
        deliveries: mut del_rx,
    } = ends;
    let mut router = Router::new(cfg, rings, writer, vec![]);
    for s in 0..WATCHED {
        for c in 0..subs {
            ctl.push(Control::Subscribe {
                consumer: c + 1, // id 0 is the pin holder: no deliveries
                symbol: s * (SYMBOLS / WATCHED),
                mode: Mode::Quote,
            })
            .unwrap();
        }
        while router.poll(Instant::now()) > 0 {}
    }
    while up_rx.pop().is_ok() {}
    while del_rx.pop().is_ok() {}

    let synth = Synth::new(SYMBOLS);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000, 3).unwrap();
    let (mut pos, mut timed) = (0u64, Duration::ZERO);
    while pos < ticks {
        while feed.slots() > 0 && pos < ticks {
            pos += 1;
            feed.push(synth.tick(pos)).unwrap();
        }
        let now = Instant::now();
        let t0 = Instant::now();
        let n = router.poll(now);
        let dt = t0.elapsed();
        timed += dt;
        if n > 0 {
            // per-tick cost of this pass, in units of 0.1 ns
            hist.record((dt.as_nanos() as u64 * 10 / n as u64).max(1))
                .unwrap();
        }
        while del_rx.pop().is_ok() {} // the IO thread's work, not timed
    }
    while router.poll(Instant::now()) > 0 {}
    let p = |q: f64| hist.value_at_quantile(q) as f64 / 10.0;
    println!(
        "| {subs:>5} | {:>9} | {:>6.1} | {:>6.1} | {:>7.1} | {:>9.1} |",
        if interval.is_zero() {
            "0 (every)".to_string()
        } else {
            format!("{} ms", interval.as_millis())
        },
        p(0.5),
        p(0.9),
        p(0.99),
        ticks as f64 / timed.as_secs_f64() / 1e6,
    );
    drop(router);
    let _ = std::fs::remove_file(&path);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let ticks = if full { 5_000_000 } else { 20_000 };
    if let Err(e) = tickwire_engine::affinity::pin_current(Some(0)) {
        eprintln!("not pinned: {e}");
    }
    println!(
        "router per-tick cost, {ticks} ticks over {SYMBOLS} symbols, {WATCHED} of them subscribed"
    );
    println!("| subs  | interval  | p50 ns | p90 ns | p99 ns  | M ticks/s |");
    println!("|-------|-----------|--------|--------|---------|-----------|");
    for subs in [1, 10, 1000] {
        for interval in [Duration::from_millis(50), Duration::ZERO] {
            case(subs, interval, ticks);
        }
    }
}
