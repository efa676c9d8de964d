//! What a replay at `--speed max` costs, split by stage, all in one run on one recording:
//!
//! 1. reading the journal (segments, CRC checks, the merge across feeds) and nothing else;
//! 2. that plus parsing every frame with its broker's parser into ticks (what `tickwire export`
//!    does before writing rows);
//! 3. that plus the router's tick path into a shm file (what `tickwire replay --speed max` does,
//!    less the gateway thread, which has no clients here).
//!
//! Stages 1 and 2 are the floors of stage 3 on this host. The recording: the mock Kite broker at
//! `RATE` updates/s over `SYMBOLS` instruments, every one subscribed in full mode, through a real
//! gateway with a journal, for `SECONDS` (or a journal given as `TICKWIRE_REPLAY_JOURNAL=DIR`).
//!
//! cargo bench --bench replay   (`cargo test --benches` runs a smoke pass)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tickwire::gateway_cmd::{start_with_mock, EngineArgs};
use tickwire::mock::{BrokerKind, MockConfig};
use tickwire_engine::router::{RingSizes, Router, RouterConfig, RouterRings};
use tickwire_engine::Tick;
use tickwire_io::feed::FeedStatus;
use tickwire_io::replay::merge::Merge;
use tickwire_io::replay::{Out, Player, Window};
use tickwire_shm::{Writer, WriterConfig};

const RATE: u64 = 500_000;
const SYMBOLS: u32 = 1_000;

fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    match shm.is_dir() {
        true => tempfile::tempdir_in(shm),
        false => tempfile::tempdir(),
    }
    .expect("temp dir")
}

/// Records `seconds` of the mock market through a gateway into `dir/journal`.
fn record(dir: &std::path::Path, seconds: f64) -> PathBuf {
    let journal = dir.join("journal");
    let mut engine = <Flags as clap::Parser>::parse_from([
        "x",
        "--dev",
        "--subscribe-all",
        "--journal",
        journal.to_str().unwrap(),
        "--shm",
        dir.join("live").to_str().unwrap(),
    ])
    .engine;
    engine.dev = true;
    let mcfg = MockConfig {
        broker: BrokerKind::Kite,
        symbols: SYMBOLS,
        rate: RATE,
        ..MockConfig::default()
    };
    let (mock, run) = start_with_mock(mcfg, 0, vec!["k".into()], &engine).expect("gateway");
    std::thread::sleep(Duration::from_secs_f64(seconds));
    run.shutdown();
    mock.stop();
    journal
}

/// The flags `record` parses (the engine's, as `serve` takes them).
#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    engine: EngineArgs,
}

fn rate(n: u64, t: Duration) -> String {
    format!("{:.2} M/s", n as f64 / t.as_secs_f64() / 1e6)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let tmp = scratch();
    let journal = match std::env::var_os("TICKWIRE_REPLAY_JOURNAL") {
        Some(d) => PathBuf::from(d),
        None => record(tmp.path(), if full { 6.0 } else { 0.5 }),
    };
    let runs = if full { 3 } else { 1 };
    println!(
        "replay stages over {} (best of {runs} runs each)",
        journal.display()
    );
    println!("| stage | frames | ticks | time | ticks/s |");
    println!("|---|---|---|---|---|");

    // 1. Read and merge only.
    let mut best = Duration::MAX;
    let mut frames = 0u64;
    for _ in 0..runs {
        let t = Instant::now();
        let mut m = Merge::open(&journal).expect("journal");
        let mut n = 0u64;
        while let Some(r) = m.next_record().expect("read") {
            n += 1;
            m.recycle(r);
        }
        best = best.min(t.elapsed());
        frames = n;
    }
    println!("| read + merge | {frames} records | | {best:.2?} | |");

    // 2. Read and parse into ticks.
    let (mut best, mut ticks) = (Duration::MAX, 0u64);
    for _ in 0..runs {
        let mut p = Player::open(&journal, Window::default()).expect("journal");
        let mut v: Vec<Tick> = Vec::with_capacity(4096);
        let t = Instant::now();
        while p.step(&mut Out::Collect(&mut v)).expect("replay") {
            v.clear();
        }
        best = best.min(t.elapsed());
        ticks = p.stats().ticks;
        frames = p.stats().frames;
    }
    println!(
        "| + parse | {frames} | {ticks} | {best:.2?} | {} |",
        rate(ticks, best)
    );

    // 3. Read, parse, route into a shm file.
    let mut best = Duration::MAX;
    for i in 0..runs {
        let mut p = Player::open(&journal, Window::default()).expect("journal");
        let reg = p.registry().clone();
        let shm = tmp.path().join(format!("replayed-{i}"));
        let wcfg = WriterConfig {
            ring_capacity: 1 << 16,
            symbol_capacity: reg.capacity() as u64,
        };
        let writer = Writer::create(&shm, &wcfg, &reg).expect("shm");
        let (rings, _ends) = RouterRings::one_each(RingSizes {
            feed: 16,
            upstream: 1 << 10,
            control: 1 << 10,
            deliveries: 1 << 10,
        });
        let cfg = RouterConfig {
            symbols: reg.capacity(),
            ..RouterConfig::default()
        };
        let mut router = Router::new(cfg, rings, writer, p.feed_of().to_vec());
        let statuses: Vec<_> = (0..p.feeds().len())
            .map(|_| std::sync::Arc::new(FeedStatus::default()))
            .collect();
        let t = Instant::now();
        let mut n = 0u32;
        loop {
            let mut out = Out::Router {
                router: &mut router,
                statuses: &statuses,
            };
            if !p.step(&mut out).expect("replay") {
                break;
            }
            n += 1;
            if n.is_multiple_of(64) {
                tickwire_engine::router::Inline::pass(&mut router);
            }
        }
        tickwire_engine::router::Inline::pass(&mut router);
        best = best.min(t.elapsed());
        ticks = p.stats().ticks;
    }
    println!(
        "| + router → shm | {frames} | {ticks} | {best:.2?} | {} |",
        rate(ticks, best)
    );
}
