//! `tickwire bench e2e`: mock broker + gateway + readers in one process, latency from the mock's
//! socket write to (a) a shm reader holding the tick and (b) a WebSocket client holding the JSON
//! message, as hdrhistogram percentiles, plus throughput and loss accounting.
//!
//! Send times travel by side channel: the mock records, per instrument, the wall clock at which it
//! handed that instrument's latest packet to its socket (`MockBroker::send_times`); a reader looks
//! up the instrument of what it received. Exact while an instrument's packets are further apart
//! than the end-to-end latency (at 100,000 updates/s over 100 instruments: 1 ms apart).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use tickwire_engine::clock::now_ns;
use tickwire_shm::{Event, Reader};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

use crate::gateway_cmd::{self, EngineArgs};
use crate::mock::{BrokerKind, MockConfig};

/// `tickwire bench e2e` flags.
#[derive(Args, Debug, Clone)]
pub struct E2eArgs {
    /// Mock market updates per second (1 to 10,000,000).
    #[arg(long, default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=gateway_cmd::MAX_RATE))]
    pub rate: u64,
    /// Measurement length.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// WebSocket clients, each subscribed to every instrument.
    #[arg(long, default_value_t = 1)]
    pub clients: u32,
    /// Synthetic instruments besides the named ones.
    #[arg(long, default_value_t = 93)]
    pub symbols: u32,
    /// Client WebSocket port.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Write `shm.hgrm` and `ws.hgrm` (percentile distributions) into this directory.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// CPU for the shm reader thread.
    #[arg(long)]
    pub reader_core: Option<usize>,
    /// The mock's market thread sleeps this long between batches (µs): the updates due meanwhile
    /// share one frame, so this sets the packets per frame (~13 at 100 µs and 100 k/s).
    #[arg(long, default_value_t = 100)]
    pub frame_us: u64,
    /// CPU for the benchmark's stand-ins for other machines: the mock broker's threads and the
    /// WebSocket clients.
    #[arg(long)]
    pub peers_core: Option<usize>,
    /// The wire format between the mock and the gateway.
    #[arg(long, value_enum, default_value_t = BrokerKind::Kite)]
    pub broker: BrokerKind,
    /// Measure in four alternating phases, without a journal and with one in this directory,
    /// and report both (the journal's cost on the same host in the same run).
    #[arg(long)]
    pub compare_journal: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// What one measurement gathered.
struct Measured {
    wire: Histogram<u64>,
    internal: Histogram<u64>,
    ws: Histogram<u64>,
    secs: f64,
    instruments: usize,
    /// Mock packets, feed ticks, router ticks, shm reads in the window.
    packets: u64,
    ticks: u64,
    routed: u64,
    read: u64,
    lost: u64,
    dropped: u64,
    parse_errors: u64,
    ring_waits: u64,
}

impl Measured {
    fn add(&mut self, o: Measured) -> Result<(), String> {
        for (a, b) in [
            (&mut self.wire, &o.wire),
            (&mut self.internal, &o.internal),
            (&mut self.ws, &o.ws),
        ] {
            a.add(b).map_err(|e| format!("{e:?}"))?;
        }
        self.secs += o.secs;
        self.packets += o.packets;
        self.ticks += o.ticks;
        self.routed += o.routed;
        self.read += o.read;
        self.lost += o.lost;
        self.dropped += o.dropped;
        self.parse_errors += o.parse_errors;
        self.ring_waits += o.ring_waits;
        Ok(())
    }
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

fn row(name: &str, h: &Histogram<u64>) -> String {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        h.len(),
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1000.0
    )
}

fn write_hgrm(dir: &std::path::Path, name: &str, h: &Histogram<u64>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::File::create(dir.join(name))?;
    writeln!(
        f,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    for v in h.iter_quantiles(1) {
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:.2}", 1.0 / (1.0 - q))
        } else {
            "inf".into()
        };
        writeln!(
            f,
            "{:>12.3} {:>14.12} {:>10} {:>14}",
            v.value_iterated_to() as f64 / 1000.0,
            q,
            v.count_since_last_iteration(),
            inv
        )?;
    }
    writeln!(
        f,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    )?;
    writeln!(
        f,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / 1000.0,
        h.len()
    )?;
    writeln!(f, "#[Unit: microseconds]")
}

/// The engine flags with the shm path moved off the default one (a running gateway's) to a file of
/// this benchmark's own, `/dev/shm/tickwire-<name>-<pid>`, unless one was given; and market hours
/// off (`--dev`): a benchmark's mock market trades at any hour.
pub(crate) fn private_shm(engine: &EngineArgs, name: &str) -> EngineArgs {
    let mut e = engine.clone();
    e.dev = true;
    if e.shm == std::path::Path::new(tickwire_shm::DEFAULT_PATH) {
        e.shm = PathBuf::from(format!("/dev/shm/tickwire-{name}-{}", std::process::id()));
    }
    e
}

/// Runs the benchmark and prints the report.
pub fn e2e(a: E2eArgs, stop: &AtomicBool) -> Result<(), String> {
    let engine = private_shm(&a.engine, "bench");
    let Some(dir) = a.compare_journal.clone() else {
        let m = measure(&a, &engine, a.seconds, stop)?;
        return report(&a, &engine, &m, "", "");
    };
    // Alternated, so that a host's drift over the run falls on both alike.
    let mut without: Option<Measured> = None;
    let mut with: Option<Measured> = None;
    for phase in 0..4 {
        let mut e = engine.clone();
        e.journal.dir = (phase % 2 == 1).then(|| dir.clone());
        e.journal.no_journal = phase % 2 == 0;
        let m = measure(&a, &e, a.seconds / 4.0, stop)?;
        let acc = if phase % 2 == 1 {
            &mut with
        } else {
            &mut without
        };
        match acc {
            Some(x) => x.add(m)?,
            None => *acc = Some(m),
        }
    }
    let (Some(without), Some(with)) = (without, with) else {
        return Ok(());
    };
    report(
        &a,
        &engine,
        &without,
        " — without the journal (phases 1 and 3)",
        "-without-journal",
    )?;
    println!();
    report(
        &a,
        &engine,
        &with,
        &format!(" — with the journal in {} (phases 2 and 4)", dir.display()),
        "-with-journal",
    )
}

/// One measurement of `seconds`: mock, gateway, readers started, warmed up, measured, stopped.
fn measure(
    a: &E2eArgs,
    engine: &EngineArgs,
    seconds: f64,
    stop: &AtomicBool,
) -> Result<Measured, String> {
    let mcfg = MockConfig {
        broker: a.broker,
        symbols: a.symbols,
        rate: a.rate,
        core: a.peers_core,
        frame_interval: Duration::from_micros(a.frame_us),
        ..MockConfig::default()
    };
    let key = "bench".to_string();
    let (mock, run) = gateway_cmd::start_with_mock(mcfg, a.port, vec![key.clone()], engine)?;
    let (send_ns, _) = mock.send_times();
    // symbol id → instrument index in the mock, by name (the same in every dialect)
    let mock_names = mock.names();
    let inst_of: Arc<Vec<usize>> = Arc::new(
        run.registry
            .iter()
            .map(|(_, s)| {
                mock_names
                    .iter()
                    .position(|(x, y)| *x == s.exchange && *y == s.symbol)
                    .unwrap_or(0)
            })
            .collect(),
    );
    let names: Vec<(String, String)> = run
        .registry
        .iter()
        .map(|(_, s)| (s.exchange.clone(), s.symbol.clone()))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));

    // WebSocket clients: each subscribes to every instrument in Quote mode.
    let mut clients = Vec::new();
    for _ in 0..a.clients {
        let (url, key, names, reg, send_ns, inst_of) = (
            format!("ws://{}", run.addr),
            key.clone(),
            names.clone(),
            run.registry.clone(),
            send_ns.clone(),
            inst_of.clone(),
        );
        let (done, measuring) = (done.clone(), measuring.clone());
        let core = a.peers_core;
        clients.push(std::thread::spawn(
            move || -> Result<Histogram<u64>, String> {
                let _ = tickwire_engine::affinity::pin_current(core);
                let (mut ws, _) = tungstenite::connect(url).map_err(|e| e.to_string())?;
                if let MaybeTlsStream::Plain(s) = ws.get_mut() {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                }
                let auth = serde_json::json!({"action": "authenticate", "api_key": key});
                ws.send(Message::Text(auth.to_string().into()))
                    .map_err(|e| e.to_string())?;
                let syms: Vec<_> = names
                    .iter()
                    .map(|(e, s)| serde_json::json!({"exchange": e, "symbol": s}))
                    .collect();
                let sub = serde_json::json!({"action": "subscribe", "symbols": syms, "mode": 2});
                ws.send(Message::Text(sub.to_string().into()))
                    .map_err(|e| e.to_string())?;
                let mut h = hist();
                while !done.load(Ordering::Relaxed) {
                    match ws.read() {
                        Ok(Message::Text(t)) => {
                            let now = now_ns();
                            if !measuring.load(Ordering::Relaxed) {
                                continue;
                            }
                            let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str())
                            else {
                                continue;
                            };
                            if v["type"] != "market_data" {
                                continue;
                            }
                            let (Some(e), Some(s)) = (v["exchange"].as_str(), v["symbol"].as_str())
                            else {
                                continue;
                            };
                            if let Some(id) = reg.lookup(e, s) {
                                let sent = send_ns[inst_of[id as usize]].load(Ordering::Relaxed);
                                if sent > 0 {
                                    let _ = h.record((now - sent).max(1) as u64);
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e))
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(h)
            },
        ));
    }

    // The shm reader.
    let reader = {
        let (path, send_ns, inst_of, done, measuring) = (
            engine.shm.clone(),
            send_ns.clone(),
            inst_of.clone(),
            done.clone(),
            measuring.clone(),
        );
        let core = a.reader_core;
        std::thread::spawn(
            move || -> Result<(Histogram<u64>, Histogram<u64>, u64, u64), String> {
                let _ = tickwire_engine::affinity::pin_current(core);
                let mut r = Reader::open(&path).map_err(|e| e.to_string())?;
                let (mut wire, mut internal) = (hist(), hist());
                let (mut read, mut lost) = (0u64, 0u64);
                let mut idle = 0u32;
                while !done.load(Ordering::Relaxed) {
                    match r.next() {
                        Some(Event::Tick(t)) => {
                            idle = 0;
                            let now = now_ns();
                            if !measuring.load(Ordering::Relaxed) {
                                continue;
                            }
                            read += 1;
                            let sent =
                                send_ns[inst_of[t.symbol_id as usize]].load(Ordering::Relaxed);
                            if sent > 0 {
                                let _ = wire.record((now - sent).max(1) as u64);
                            }
                            let _ = internal.record((now - t.recv_ts_ns).max(1) as u64);
                        }
                        Some(Event::Lagged { lost: n }) => lost += n,
                        None => {
                            // A strategy reader polls; sleeping here would measure the nap, not
                            // the pipeline. Yielding returns at once when nothing else wants the
                            // CPU, so the reader can share a core with the gateway's threads.
                            idle += 1;
                            if idle > 1_000 {
                                std::thread::yield_now();
                            } else {
                                std::hint::spin_loop();
                            }
                        }
                    }
                }
                Ok((wire, internal, read, lost))
            },
        )
    };

    // Warm up until the feed has data, then measure.
    let warm = Instant::now();
    while run.feed.ticks.load(Ordering::Relaxed) == 0 && warm.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (p0, t0, r0) = (
        mock.stats().packets.load(Ordering::Relaxed),
        run.feed.ticks.load(Ordering::Relaxed),
        run.router.ticks.load(Ordering::Relaxed),
    );
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    measuring.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let (p1, t1, r1) = (
        mock.stats().packets.load(Ordering::Relaxed),
        run.feed.ticks.load(Ordering::Relaxed),
        run.router.ticks.load(Ordering::Relaxed),
    );
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    let (wire, internal, read, lost) = reader.join().map_err(|_| "reader panicked")??;
    let mut ws_h = hist();
    for c in clients {
        let h = c.join().map_err(|_| "client panicked")??;
        ws_h.add(&h).map_err(|e| format!("{e:?}"))?;
    }
    let dropped = mock.stats().dropped_frames.load(Ordering::Relaxed);
    let parse_errors = run.feed.parse_errors.load(Ordering::Relaxed);
    let ring_waits = run.feed.ring_waits.load(Ordering::Relaxed);
    run.shutdown();
    mock.stop();
    let _ = std::fs::remove_file(&engine.shm);

    Ok(Measured {
        wire,
        internal,
        ws: ws_h,
        secs,
        instruments: names.len(),
        packets: p1 - p0,
        ticks: t1 - t0,
        routed: r1 - r0,
        read,
        lost,
        dropped,
        parse_errors,
        ring_waits,
    })
}

/// Prints one measurement's table; `what` says which one.
/// `tag` goes into the `--hgrm` file names.
fn report(
    a: &E2eArgs,
    engine: &EngineArgs,
    m: &Measured,
    what: &str,
    tag: &str,
) -> Result<(), String> {
    let secs = m.secs;
    println!(
        "tickwire bench e2e: {} updates/s requested, {:.1} s, {} instruments, {} WebSocket client(s), flush {} ms, router {}{what}",
        a.rate,
        secs,
        m.instruments,
        a.clients,
        engine.flush_ms,
        match engine.router {
            gateway_cmd::RouterPlacement::Inline => "inline",
            gateway_cmd::RouterPlacement::Thread => "thread",
        }
    );
    println!("| path | samples | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |");
    println!("|---|---|---|---|---|---|---|");
    println!("{}", row("mock send → shm read", &m.wire));
    println!("{}", row("feed receive → shm read", &m.internal));
    println!("{}", row("mock send → WebSocket client", &m.ws));
    println!();
    println!(
        "throughput: mock sent {:.0} packets/s; feed parsed {:.0} ticks/s; router published {:.0} ticks/s; shm reader read {:.0} ticks/s",
        m.packets as f64 / secs,
        m.ticks as f64 / secs,
        m.routed as f64 / secs,
        m.read as f64 / secs
    );
    println!(
        "loss: mock frames dropped {}; packets sent {} vs ticks parsed {} (window edges blur this by a batch); parse errors {}; shm reader lapped, lost {}; feed waited on a full ring {} times",
        m.dropped, m.packets, m.ticks, m.parse_errors, m.lost, m.ring_waits
    );
    if let Some(dir) = &a.hgrm {
        let (shm, ws) = (format!("shm{tag}.hgrm"), format!("ws{tag}.hgrm"));
        write_hgrm(dir, &shm, &m.wire).map_err(|e| e.to_string())?;
        write_hgrm(dir, &ws, &m.ws).map_err(|e| e.to_string())?;
        println!("wrote {}/{shm} and {ws}", dir.display());
    }
    Ok(())
}
