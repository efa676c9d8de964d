//! `tickwire replay`: a journal (`docs/journal-format.md`) back through today's parsers and the
//! router, into the shm file and the WebSocket gateway, as if live. Clients and shm readers see the
//! live run's symbols (same ids), ticks and per-symbol sequence numbers; `/status` says
//! `"mode": "replay"` and each feed's state `replay`.
//!
//! The replay thread runs the router inline (each parsed tick straight into the tick path, as on a
//! live feed thread with one feed), paces frames by their recorded receive times (`--speed 1` as
//! recorded, `10` ten times faster, `max` as fast as the engine goes), and drains the demand the
//! router sends the feeds (a replay subscribes nothing: it plays what was recorded).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tickwire_engine::calendar::civil;
use tickwire_engine::router::{FeedEnds, Inline};
use tickwire_io::feed::FeedStatus;
use tickwire_io::replay::{Out, PlayStats, Player, Progress, Window};

use crate::gateway_cmd::{replay_core, EngineArgs, ReplayCore};

/// `tickwire replay` flags.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Replay from this time on (earlier frames only bring the parsers up to date): RFC 3339
    /// (`2026-12-03T09:15:00+05:30`), `YYYY-MM-DDTHH:MM[:SS]` in IST, or `HH:MM[:SS]` in IST on
    /// the journal's first day.
    #[arg(long)]
    pub from: Option<String>,
    /// Stop after this time (same forms as --from).
    #[arg(long)]
    pub to: Option<String>,
    /// Pace: `1` as recorded, `10` ten times faster (any positive factor), `max` as fast as the
    /// engine goes (ticks/s reported at the end).
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    pub speed: Speed,
    /// WebSocket port for clients (OpenAlgo protocol, as `serve`).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// API keys clients authenticate with (comma-separated).
    #[arg(
        long = "api-key",
        env = "TICKWIRE_API_KEYS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub api_keys: Vec<String>,
    /// Start only once this many clients are connected and their subscriptions have settled
    /// (no new demand for 200 ms), so that they see the replay from its first tick.
    #[arg(long, default_value_t = 0)]
    pub wait_clients: u64,
    /// Keep serving (last values, status) after the last record, until SIGINT or SIGTERM;
    /// without it the replay exits when done.
    #[arg(long)]
    pub hold: bool,
    /// Gateway and shm settings as for `serve`; `--journal DIR` names the journal to replay.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `--speed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// Recorded time runs this many times faster than wall time.
    Factor(f64),
    /// No pacing.
    Max,
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s == "max" {
        return Ok(Speed::Max);
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
        _ => Err(format!(
            "{s:?}: expected 1, 10, max or another positive factor"
        )),
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Factor(x) => write!(f, "{x}"),
            Speed::Max => f.write_str("max"),
        }
    }
}

/// The IST day of a journal's first segment (its directory's name), for `HH:MM` times.
fn first_day(dir: &Path) -> Option<civil::Day> {
    let first = tickwire_io::journal::read::segment_paths(dir).ok()?;
    let name = first.first()?.parent()?.file_name()?.to_str()?;
    civil::parse_date(name)
}

/// A `--from`/`--to` value → ns since the epoch.
pub fn parse_time(s: &str, journal: &Path) -> Result<i64, String> {
    if let Some(ns) = civil::parse_rfc3339(s) {
        return Ok(ns);
    }
    let bad = || {
        format!(
            "{s:?}: expected RFC 3339 (2026-12-03T09:15:00+05:30), YYYY-MM-DDTHH:MM[:SS] or \
             HH:MM[:SS] (IST)"
        )
    };
    let (day, hhmm) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (civil::parse_date(d).ok_or_else(bad)?, t),
        None => {
            let day =
                first_day(journal).ok_or_else(|| format!("{s:?}: no journal day to put it on"))?;
            (day, s)
        }
    };
    let secs = civil::parse_hhmm(hhmm).ok_or_else(bad)?;
    Ok(civil::unix_of(day, secs) * 1_000_000_000)
}

/// `--from` and `--to` as a window.
pub fn window(from: Option<&str>, to: Option<&str>, journal: &Path) -> Result<Window, String> {
    let w = Window {
        from_ns: from.map(|s| parse_time(s, journal)).transpose()?,
        to_ns: to.map(|s| parse_time(s, journal)).transpose()?,
    };
    if let (Some(f), Some(t)) = (w.from_ns, w.to_ns) {
        if t < f {
            return Err("--to is before --from".into());
        }
    }
    Ok(w)
}

/// Runs `tickwire replay`.
pub fn run(a: ReplayArgs, stop: &Arc<AtomicBool>) -> Result<(), String> {
    let dir: PathBuf = a
        .engine
        .journal
        .dir
        .clone()
        .ok_or("replay needs --journal DIR: the journal to replay")?;
    if a.api_keys.iter().any(|k| k.trim().is_empty()) {
        return Err("--api-key must not be empty: no client could authenticate".into());
    }
    let w = window(a.from.as_deref(), a.to.as_deref(), &dir)?;
    let player = Player::open(&dir, w).map_err(|e| e.to_string())?;
    let progress = Arc::new(Progress {
        journal: dir.display().to_string(),
        speed: a.speed.to_string(),
        ..Progress::default()
    });
    let core = replay_core(
        &player,
        a.port,
        a.api_keys.clone(),
        &a.engine,
        progress.clone(),
    )?;
    println!(
        "tickwire replay: {} ({} instruments, feeds {}) at speed {}",
        dir.display(),
        player.registry().len(),
        player
            .feeds()
            .iter()
            .map(|f| f.broker.as_str())
            .collect::<Vec<_>>()
            .join(" + "),
        a.speed
    );
    println!("  WebSocket (OpenAlgo protocol): ws://{}", core.addr);
    println!(
        "  shared memory:                 {}",
        a.engine.shm.display()
    );
    let opts = Pace {
        speed: a.speed,
        wait_clients: a.wait_clients,
        hold: a.hold,
    };
    // The replay thread does a feed thread's work (parse, route): it takes the feed's core.
    if let Err(e) = tickwire_engine::affinity::pin_current(a.engine.feed_core.first().copied()) {
        tracing::warn!("replay: {e}; running unpinned");
    }
    let t0 = Instant::now();
    let r = play(player, core, &opts, &progress, stop);
    let secs = t0.elapsed().as_secs_f64();
    let (stats, torn) = r?;
    println!(
        "tickwire replay: {} frames, {} ticks in {secs:.3} s ({:.0} ticks/s); {} parse errors, {} gaps ({} records the live run missed), {} torn tails",
        stats.frames,
        stats.ticks,
        stats.ticks as f64 / secs.max(1e-9),
        stats.parse_errors,
        stats.gaps,
        stats.missed,
        torn
    );
    Ok(())
}

/// How the replay thread paces itself.
struct Pace {
    speed: Speed,
    wait_clients: u64,
    hold: bool,
}

/// Everything the replay thread drives.
struct Driver<'a> {
    router: Box<dyn Inline>,
    statuses: &'a [Arc<FeedStatus>],
    ends: Vec<FeedEnds>,
    /// When demand from clients last changed.
    demand_at: Option<Instant>,
}

impl Driver<'_> {
    /// A router pass (client demand, flushes, heartbeat), and the feeds' demand drained.
    fn pass(&mut self) {
        self.router.pass();
        for e in &mut self.ends {
            while e.upstream.pop().is_ok() {
                self.demand_at = Some(Instant::now());
            }
        }
    }

    /// Passes until `until`, sleeping in between (at most a millisecond at a time).
    fn idle_until(&mut self, until: Instant, stop: &AtomicBool) {
        loop {
            self.pass();
            let now = Instant::now();
            if now >= until || stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(1)));
        }
    }
}

/// Frames between router passes at `--speed max` (a pass takes client demand and heartbeats).
const PASS_EVERY: u32 = 64;

fn play(
    mut player: Player,
    core: ReplayCore,
    pace: &Pace,
    progress: &Progress,
    stop: &Arc<AtomicBool>,
) -> Result<(PlayStats, usize), String> {
    let ReplayCore {
        router,
        statuses,
        feed_ends,
        gateway,
        clients,
        router_bell,
        stop: gw_stop,
        sink,
        ..
    } = core;
    let gw = gateway
        .spawn(gw_stop.clone(), router_bell)
        .map_err(|e| e.to_string())?;
    for s in &statuses {
        s.set_replaying();
    }
    let mut d = Driver {
        router,
        statuses: &statuses,
        ends: feed_ends,
        demand_at: None,
    };
    // Clients first, if asked: connected, and their subscriptions settled.
    while clients.open.load(Ordering::Relaxed) < pace.wait_clients
        || (pace.wait_clients > 0
            && d.demand_at
                .is_none_or(|t| t.elapsed() < Duration::from_millis(200)))
    {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        d.idle_until(Instant::now() + Duration::from_millis(10), stop);
    }
    let start = Instant::now();
    let mut first: Option<i64> = None;
    let mut n = 0u32;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let ts = match player.peek_ts() {
            Ok(Some(ts)) => ts,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.to_string()),
        };
        if let Speed::Factor(f) = pace.speed {
            let t0 = *first.get_or_insert(ts);
            let due = start + Duration::from_secs_f64(((ts - t0).max(0) as f64 / 1e9) / f);
            if due > Instant::now() {
                d.idle_until(due, stop);
            }
        }
        let mut out = Out::Router {
            router: &mut *d.router,
            statuses: d.statuses,
        };
        if let Err(e) = player.step(&mut out) {
            break Err(e.to_string());
        }
        n += 1;
        if n.is_multiple_of(PASS_EVERY) || pace.speed != Speed::Max {
            d.pass();
            let st = player.stats();
            progress.frames.store(st.frames, Ordering::Relaxed);
            progress.ticks.store(st.ticks, Ordering::Relaxed);
            progress.at_ns.store(ts, Ordering::Relaxed);
        }
    };
    d.pass();
    let st = player.stats().clone();
    progress.frames.store(st.frames, Ordering::Relaxed);
    progress.ticks.store(st.ticks, Ordering::Relaxed);
    progress.done.store(true, Ordering::Relaxed);
    if pace.hold && result.is_ok() {
        tracing::info!("tickwire replay: done; serving until stopped (--hold)");
        while !stop.load(Ordering::Relaxed) {
            d.idle_until(Instant::now() + Duration::from_millis(50), stop);
        }
    }
    // The gateway thread stops; the router's file is marked closed.
    gw_stop.store(true, Ordering::Relaxed);
    let _ = gw.join();
    d.router.finish();
    if let Some(s) = sink {
        // What the ring still holds is stored before the replay exits.
        s.stop(Duration::from_secs(10));
    }
    result.map(|()| (st, player.torn_tails().len()))
}
