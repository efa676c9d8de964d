//! Shared memory between two processes on two cores: `tickwire shm write-synthetic` pinned to core 0
//! publishes (ring + last-value table), this process pinned to core 1 reads. Reports the
//! publish → read latency (writer's stamp to the reader holding the copied tick, CLOCK_REALTIME in
//! both processes) as hdrhistogram percentiles, then the sustained throughput at full speed.
//!
//! cargo bench --bench shm               (full run; `cargo test --benches` runs a short smoke pass)

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use hdrhistogram::Histogram;
use tickwire_engine::clock::now_ns;
use tickwire_shm::{Event, Reader};

fn spawn_writer(path: &Path, rate: u64, seconds: f64, ring_only: bool) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["shm", "write-synthetic", "--core", "0", "--symbols", "1000"])
        .args(ring_only.then_some("--ring-only"))
        .args([
            "--rate",
            &rate.to_string(),
            "--seconds",
            &seconds.to_string(),
            "--path",
        ])
        .arg(path)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tickwire shm write-synthetic")
}

fn open(path: &Path) -> Reader {
    let never = std::sync::atomic::AtomicBool::new(false);
    tickwire::shm_cmd::open_waiting(path, 10.0, &never).unwrap_or_else(|e| panic!("{e}"))
}

struct Run {
    hist: Histogram<u64>,
    read: u64,
    lost: u64,
    secs: f64,
    writer_says: String,
}

/// With `timed`, every tick read is timestamped into the histogram; without, the reader only
/// copies and counts (a throughput run: two clock reads a tick would be most of its budget).
fn run(path: &Path, rate: u64, seconds: f64, ring_only: bool, timed: bool) -> Run {
    let mut child = spawn_writer(path, rate, seconds, ring_only);
    let mut r = open(path);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let (mut read, mut lost) = (0u64, 0u64);
    let mut idle_checks = 0u32;
    const CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
    let start = Instant::now();
    let mut last_check = start;
    loop {
        match r.next() {
            Some(Event::Tick(t)) => {
                if timed {
                    let lat = now_ns() - t.recv_ts_ns;
                    hist.record(lat.max(1) as u64).unwrap();
                } else {
                    std::hint::black_box(&t);
                }
                read += 1;
            }
            Some(Event::Lagged { lost: n }) => lost += n,
            None => {
                // Is the writer done? At most every 100 ms: the check stats /proc/<pid>, and a
                // syscall every few hundred microseconds was itself a visible share of the p99.
                idle_checks += 1;
                if idle_checks.is_multiple_of(4096) && last_check.elapsed() >= CHECK_EVERY {
                    last_check = Instant::now();
                    if r.writer_status() != tickwire_shm::WriterStatus::Live {
                        break;
                    }
                }
                std::hint::spin_loop();
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    child.wait().unwrap();
    let mut writer_says = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut writer_says)
        .unwrap();
    let writer_says = writer_says.lines().last().unwrap_or("").to_string();
    Run {
        hist,
        read,
        lost,
        secs,
        writer_says,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let secs = if full { 5.0 } else { 0.5 };
    if let Err(e) = tickwire_engine::affinity::pin_current(Some(1)) {
        eprintln!("reader not pinned: {e}");
    }
    let dir = if Path::new("/dev/shm").is_dir() {
        Path::new("/dev/shm").to_owned()
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("tw-bench-shm-{}", std::process::id()));

    println!("shm publish → read latency across processes (writer core 0, reader core 1), ns");
    println!("| rate ticks/s | p50 | p90 | p99 | p99.9 | max | read | lost |");
    println!("|---|---|---|---|---|---|---|---|");
    for rate in [100_000u64, 1_000_000] {
        let r = run(&path, rate, secs, false, true);
        let q = |x: f64| r.hist.value_at_quantile(x);
        println!(
            "| {rate} | {} | {} | {} | {} | {} | {} | {} |",
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            r.hist.max(),
            r.read,
            r.lost
        );
    }
    println!();
    for (ring_only, what) in [(false, "ring + last-value table"), (true, "ring only")] {
        let r = run(&path, 0, secs, ring_only, false);
        println!(
            "sustained, writer at full speed, {what}: writer: {}",
            r.writer_says
        );
        println!(
            "  reader: {:.1} M ticks/s read, {} lost of {} ({:.1} %)",
            r.read as f64 / r.secs / 1e6,
            r.lost,
            r.read + r.lost,
            100.0 * r.lost as f64 / (r.read + r.lost).max(1) as f64
        );
    }
    let _ = std::fs::remove_file(&path);
}
