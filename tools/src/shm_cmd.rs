//! `tickwire shm …`: a synthetic writer, a tail that prints JSON lines, a header dump, and removal
//! of files no writer holds.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use tickwire_engine::clock::{now_ns, rfc3339_utc as utc};
use tickwire_engine::idle::{IdleStrategy, Idler};
use tickwire_engine::symbols::split_key;
use tickwire_engine::Px;
use tickwire_shm::{
    Event, OpenOptions, Reader, Removed, ShmError, Writer, WriterConfig, WriterStatus,
};

use crate::{json, synthetic};

/// `tickwire shm` subcommands.
#[derive(Subcommand, Debug)]
pub enum ShmCmd {
    /// Publish synthetic ticks (every field a function of the ring position) for tests and benchmarks.
    WriteSynthetic(WriteArgs),
    /// Print ticks from a shm file as JSON lines (exact decimal prices).
    Tail(TailArgs),
    /// Print the header, capacities, writer position and symbols of a shm file.
    #[command(after_help = STAT_EXIT_CODES)]
    Stat(StatArgs),
    /// Remove a shm file no writer holds (a closed file, or one a killed writer left behind).
    #[command(after_help = RM_HELP)]
    Rm(RmArgs),
}

/// `shm stat`'s exit status: describing a file is not a failure, whatever its writer did.
const STAT_EXIT_CODES: &str = "\
Exit status:
  0  the file was described: its writer is live, or closed it cleanly
  1  the file cannot be read (missing, not a tickwire shm file, other version, ...)
  3  the writer died without closing the file (nobody holds it; killed or crashed)
  4  the writer holds the file but has not heartbeat for 5 s (stopped or hung)";

/// Exit status of `shm stat` for a writer that died without closing the file.
pub const EXIT_WRITER_DEAD: i32 = 3;
/// Exit status of `shm stat` for a writer that holds the file but stopped heartbeating.
pub const EXIT_WRITER_STALE: i32 = 4;

const RM_HELP: &str = "\
Refused, with a non-zero exit, when a writer holds the file (live, or stopped but still running:
stop it first), for a directory, FIFO or other non-file, and for a regular file that is not a
tickwire shm file unless --force is given (then still refused if any process holds a lock on it,
as a writer does on the <path>.tmp.<pid> file it is building).";

/// `shm write-synthetic` flags.
#[derive(Args, Debug)]
pub struct WriteArgs {
    /// The shm file to create (replaced if it exists).
    #[arg(long, default_value = tickwire_shm::DEFAULT_PATH)]
    pub path: PathBuf,
    /// Number of symbols, ticked round-robin.
    #[arg(long, default_value_t = 1000)]
    pub symbols: u32,
    /// Ticks per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 100_000)]
    pub rate: u64,
    /// How long to run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Ring slots (a power of two).
    #[arg(long, default_value_t = 1 << 16)]
    pub ring_capacity: u64,
    /// Core to pin the writer to.
    #[arg(long)]
    pub core: Option<usize>,
    /// Publish to the ring only, not the last-value table (to measure the ring alone; the
    /// router always does both).
    #[arg(long)]
    pub ring_only: bool,
    /// Between batches: `spin` (exact pacing, a whole core: for latency benchmarks) or `sleep`
    /// (50 µs naps, batches of up to 64 ticks: a feed thread's share of a core, for benchmarks
    /// of what shares the host with the gateway, such as the database sink).
    #[arg(long, value_enum, default_value_t = Pace::Spin)]
    pub pace: Pace,
}

/// How `write-synthetic` waits for the next tick to be due.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Busy-wait.
    Spin,
    /// Sleep 50 µs at a time.
    Sleep,
}

/// `shm tail` flags.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// The shm file.
    #[arg(long, default_value = tickwire_shm::DEFAULT_PATH)]
    pub path: PathBuf,
    /// Only this symbol, as EXCHANGE:SYMBOL (e.g. NSE:SBIN).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Exit after printing this many ticks (0 = run until the writer stops).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Start from the oldest tick still in the ring instead of the next new one.
    #[arg(long)]
    pub from_oldest: bool,
    /// Wait up to this many seconds for the file and a live writer to appear.
    #[arg(long, default_value_t = 0.0)]
    pub wait: f64,
}

/// `shm stat` flags.
#[derive(Args, Debug)]
pub struct StatArgs {
    /// The shm file.
    #[arg(long, default_value = tickwire_shm::DEFAULT_PATH)]
    pub path: PathBuf,
    /// How many directory entries to list.
    #[arg(long, default_value_t = 20)]
    pub list: u32,
}

/// `shm rm` flags.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// The shm file to remove.
    pub path: PathBuf,
    /// Also remove a regular file that is not a tickwire shm file (a leftover temporary file, a
    /// file from another layout version), unless a process holds a lock on it.
    #[arg(long)]
    pub force: bool,
}

/// Runs a `shm` subcommand; `stop` is set by Ctrl-C. `shm stat` exits itself with
/// [`EXIT_WRITER_DEAD`] or [`EXIT_WRITER_STALE`] after describing such a file.
pub fn run(cmd: ShmCmd, stop: &AtomicBool) -> Result<(), String> {
    match cmd {
        ShmCmd::WriteSynthetic(a) => write_synthetic(a, stop),
        ShmCmd::Tail(a) => tail(a, stop),
        ShmCmd::Stat(a) => {
            let code = stat(a)?;
            if code != 0 {
                // Not an error to report through main's path (exit 1): the status is the answer.
                std::process::exit(code);
            }
            Ok(())
        }
        ShmCmd::Rm(a) => rm(a),
    }
}

fn write_synthetic(a: WriteArgs, stop: &AtomicBool) -> Result<(), String> {
    if a.symbols == 0 {
        return Err("--symbols must be at least 1".into());
    }
    if !(a.seconds.is_finite() && a.seconds > 0.0) {
        return Err(format!("--seconds must be positive, got {}", a.seconds));
    }
    tickwire_engine::affinity::pin_current(a.core)?;
    let reg = synthetic::registry(a.symbols, a.symbols as usize);
    let cfg = WriterConfig {
        ring_capacity: a.ring_capacity,
        symbol_capacity: a.symbols as u64,
    };
    let mut w = Writer::create(&a.path, &cfg, &reg).map_err(|e| e.to_string())?;
    eprintln!(
        "writing {} symbols at {} to {}",
        a.symbols,
        if a.rate == 0 {
            "full speed".to_string()
        } else {
            format!("{} ticks/s", a.rate)
        },
        a.path.display()
    );
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.seconds);
    let mut last_beat = start;
    let mut pos = 0u64;
    let synth = synthetic::Synth::new(a.symbols);
    // Pace in batches of up to 64 ticks: the clocks are read once per batch, not per tick, and every
    // tick of a batch carries the batch's receive stamp (the latency probe readers subtract).
    'run: loop {
        let now = Instant::now();
        if now >= end || stop.load(Ordering::Relaxed) {
            break;
        }
        if now.duration_since(last_beat) >= Duration::from_millis(100) {
            w.heartbeat(now_ns());
            last_beat = now;
        }
        let due = if a.rate == 0 {
            pos + 64
        } else {
            (now.duration_since(start).as_secs_f64() * a.rate as f64) as u64
        };
        if due <= pos {
            if a.pace == Pace::Sleep {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        let stamp = now_ns();
        let batch = (due - pos).min(64);
        for i in 0..batch {
            let mut t = synth.tick(pos + 1);
            t.recv_ts_ns = stamp;
            match (a.ring_only, i + 1 == batch) {
                (true, false) => w.publish_ring(&t),
                (true, true) => w.publish_ring_last(&t),
                (false, false) => w.publish(&t),
                (false, true) => w.publish_last(&t),
            }
            pos += 1;
            if pos == u64::MAX {
                break 'run;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {pos} ticks in {secs:.2} s ({:.0} ticks/s)",
        pos as f64 / secs
    );
    w.close();
    Ok(())
}

/// Opens `path`, waiting up to `wait` seconds for the file and a live writer to appear (a reader
/// started just before its writer). Other errors return at once.
pub fn open_waiting(path: &Path, wait: f64, stop: &AtomicBool) -> Result<Reader, ShmError> {
    let deadline = Instant::now() + Duration::from_secs_f64(wait.max(0.0));
    loop {
        match Reader::open(path) {
            Ok(r) => return Ok(r),
            // Not there yet, or not ready yet: wait within --wait.
            Err(
                ShmError::Missing { .. } | ShmError::NotLive { .. } | ShmError::BadMagic { .. },
            ) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

fn tail(a: TailArgs, stop: &AtomicBool) -> Result<(), String> {
    let mut r = open_waiting(&a.path, a.wait, stop).map_err(|e| e.to_string())?;
    let filter = match &a.symbol {
        None => None,
        Some(key) => {
            let (e, s) = split_key(key)
                .ok_or_else(|| format!("--symbol {key:?}: expected EXCHANGE:SYMBOL"))?;
            Some(
                r.lookup(e, s)
                    .ok_or_else(|| format!("symbol {key} is not in {}", a.path.display()))?,
            )
        }
    };
    if a.from_oldest {
        r.seek_oldest();
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut names: Vec<Option<(String, String)>> = Vec::new();
    let mut printed = 0u64;
    let mut idler = Idler::new(IdleStrategy::Park {
        spins: 1000,
        park: Duration::from_micros(100),
    });
    let mut idle_since: Option<Instant> = None;
    let mut writer_gone: Option<WriterStatus> = None;
    let res: io::Result<Result<(), String>> = (|| {
        loop {
            if a.count > 0 && printed >= a.count {
                return Ok(Ok(()));
            }
            let pos = r.position();
            match r.next() {
                Some(Event::Tick(t)) => {
                    idle_since = None;
                    idler.reset();
                    if filter.is_some_and(|f| f != t.symbol_id) {
                        continue;
                    }
                    let id = t.symbol_id as usize;
                    if names.len() <= id {
                        names.resize(id + 1, None);
                    }
                    if names[id].is_none() {
                        names[id] = r.symbol(t.symbol_id).map(|n| (n.exchange, n.symbol));
                    }
                    let (e, s) = names[id]
                        .as_ref()
                        .map_or(("?", "?"), |(e, s)| (e.as_str(), s.as_str()));
                    json::write_tick(&mut out, &t, Some(pos), e, s)?;
                    out.write_all(b"\n")?;
                    printed += 1;
                }
                Some(Event::Lagged { lost }) => {
                    writeln!(out, "{{\"lagged\":{lost},\"resume\":{}}}", r.position())?;
                }
                None => {
                    out.flush()?;
                    if stop.load(Ordering::Relaxed) {
                        return Ok(Ok(()));
                    }
                    if let Some(st) = writer_gone {
                        // Everything published before the writer went away has been printed.
                        let want = if a.count > 0 {
                            format!(" of {}", a.count)
                        } else {
                            String::new()
                        };
                        return Ok(Err(format!(
                            "{}: {st}; printed {printed}{want} ticks",
                            a.path.display()
                        )));
                    }
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_millis(200) {
                        idle_since = Some(Instant::now());
                        let st = r.writer_status();
                        if st != WriterStatus::Live {
                            // Drain once more: the writer may have published just before it stopped.
                            writer_gone = Some(st);
                            continue;
                        }
                    }
                    idler.idle();
                }
            }
        }
    })();
    let _ = out.flush();
    match res {
        Ok(r) => r,
        // The reader of our stdout went away (`| head`): not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing output: {e}")),
    }
}

/// Describes the file; returns the exit status ([`STAT_EXIT_CODES`]).
fn stat(a: StatArgs) -> Result<i32, String> {
    let opts = OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    };
    let r = Reader::open_with(&a.path, opts).map_err(|e| e.to_string())?;
    let i = r.info();
    let g = i.geometry;
    let age_ms = (now_ns() - i.heartbeat_ns).max(0) / 1_000_000;
    println!("path            {}", a.path.display());
    println!("layout version  {}.{}", i.version.0, i.version.1);
    println!(
        "tick size       {} B (record {} B)",
        i.tick_size, i.record_size
    );
    println!(
        "ring            {} slots at offset {}",
        g.ring_capacity, g.ring_offset
    );
    println!(
        "symbols         {} of {} (last values at offset {})",
        i.symbol_count, g.symbol_capacity, g.lvt_offset
    );
    println!("file size       {} B", g.file_size);
    println!("writer pid      {}", i.writer_pid);
    println!("writer position {}", i.write_pos);
    println!("heartbeat       {age_ms} ms ago");
    match i.status {
        // The writer stamps the heartbeat when it closes the file.
        WriterStatus::Closed => println!("writer status   closed at {}", utc(i.heartbeat_ns)),
        st => println!("writer status   {st}"),
    }
    for id in 0..i.symbol_count.min(a.list as u64) as u32 {
        let Some(n) = r.symbol(id) else { break };
        let last = match r.last_value(id) {
            Ok(Some(t)) => format!("seq {} ltp {}", t.seq, Px(t.ltp)),
            Ok(None) => "no ticks".into(),
            Err(e) => e.to_string(),
        };
        println!(
            "  {id:>6}  {}:{}  token {}  {last}",
            n.exchange, n.symbol, n.token
        );
    }
    if i.symbol_count > a.list as u64 {
        println!("  … {} more", i.symbol_count - a.list as u64);
    }
    let code = match i.status {
        WriterStatus::Live | WriterStatus::Closed => return Ok(0),
        WriterStatus::Dead { .. } => EXIT_WRITER_DEAD,
        WriterStatus::Stale { .. } => EXIT_WRITER_STALE,
    };
    eprintln!(
        "tickwire: {}: no live writer: {}",
        a.path.display(),
        i.status
    );
    Ok(code)
}

fn rm(a: RmArgs) -> Result<(), String> {
    let p = a.path.display();
    match tickwire_shm::remove(&a.path, a.force) {
        Ok(Removed::Closed { closed_at_ns }) => {
            println!(
                "removed {p} (its writer closed it at {})",
                utc(closed_at_ns)
            );
        }
        Ok(Removed::Dead { pid }) => {
            println!("removed {p} (its writer, pid {pid}, died without closing it)");
        }
        Ok(Removed::Forced(why)) => println!("removed {p} (--force; {why})"),
        Err(
            e @ (ShmError::Truncated { .. }
            | ShmError::Undersized { .. }
            | ShmError::BadCapacity { .. }
            | ShmError::BadMagic { .. }
            | ShmError::Version { .. }
            | ShmError::Layout { .. }),
        ) => return Err(format!("{e}; not removed (--force removes it anyway)")),
        Err(e) => return Err(e.to_string()),
    }
    Ok(())
}
