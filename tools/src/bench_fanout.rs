//! `tickwire bench fanout`: mock broker → gateway → many WebSocket clients, in one process. The
//! clients are raw sockets read by one thread (pinned with `--peers-core`) that parses WebSocket
//! frame headers and two JSON fields by hand, so what is measured is the gateway, not the clients.
//!
//! Every client subscribes to every instrument, so each market update is one message per client:
//! delivered messages/s = update rate × clients. Latency is the mock's socket write of an
//! instrument's packet (its side channel, as in `bench e2e`) to the client's read of the message;
//! exact while an instrument's updates are further apart than the latency (100 instruments at
//! 1,000 updates/s: 100 ms apart). `--stalled P` makes P % of the clients subscribe and never read.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use tickwire_engine::clock::now_ns;

use crate::gateway_cmd::{self, EngineArgs};
use crate::mock::MockConfig;
use crate::wsraw::{authed_socket, field, next_frame, TEXT};

/// `tickwire bench fanout` flags.
#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    /// WebSocket clients, each subscribed to every instrument.
    #[arg(long, default_value_t = 1000)]
    pub clients: u32,
    /// Synthetic instruments in the mock market besides the named ones.
    #[arg(long, default_value_t = 93)]
    pub symbols: u32,
    /// Mock market updates per second (all instruments together).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Measurement length (under the gateway's 20 s ping interval: the clients answer no pings).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// The mode every client subscribes in.
    #[arg(long, value_enum, default_value_t = FanMode::Ltp)]
    pub mode: FanMode,
    /// Percent of the clients that subscribe and then never read.
    #[arg(long, default_value_t = 0)]
    pub stalled: u32,
    /// CPU for the stand-ins for other machines: the mock's threads and the clients' reader.
    #[arg(long)]
    pub peers_core: Option<usize>,
    /// Client WebSocket port.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `--mode`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// LTP.
    Ltp,
    /// Quote.
    Quote,
    /// Depth.
    Depth,
}

fn key_of(exchange: &[u8], symbol: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    exchange.hash(&mut h);
    symbol.hash(&mut h);
    h.finish()
}

/// CPU seconds (user + system) of this process's threads whose name starts with one of `names`.
fn thread_cpu(names: &[&str]) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !names.iter().any(|n| comm.trim().starts_with(n)) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th.
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            total += (num(11) + num(12)) / tick;
        }
    }
    total
}

/// Private resident memory of this process, KiB.
fn rss_anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Parses the complete frames at the start of `buf`, recording each market-data message; returns
/// the bytes consumed.
fn parse_frames(
    buf: &[u8],
    measure: bool,
    inst_of: &HashMap<u64, usize>,
    send_ns: &[AtomicI64],
    r: &mut Reader,
) -> usize {
    let now = now_ns();
    let mut at = 0;
    while let Some((op, hdr, len)) = next_frame(&buf[at..]) {
        let payload = &buf[at + hdr..at + hdr + len];
        at += hdr + len;
        if op != TEXT || !measure {
            continue;
        }
        let (Some(x), Some(s)) = (
            field(payload, b"\"exchange\":\""),
            field(payload, b"\"symbol\":\""),
        ) else {
            continue;
        };
        if let Some(&inst) = inst_of.get(&key_of(x, s)) {
            let sent = send_ns[inst].load(Ordering::Relaxed);
            let _ = r.hist.record((now - sent).max(1) as u64);
            r.messages += 1;
            r.bytes += (hdr + len) as u64;
        }
    }
    at
}

struct Reader {
    hist: Histogram<u64>,
    messages: u64,
    bytes: u64,
}

/// Reads every client socket until `done`, recording latencies while `measuring`.
fn read_clients(
    socks: Vec<TcpStream>,
    inst_of: HashMap<u64, usize>,
    send_ns: Arc<Vec<AtomicI64>>,
    measuring: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
) -> Result<Reader, String> {
    let mut poll = mio::Poll::new().map_err(|e| e.to_string())?;
    let mut events = mio::Events::with_capacity(1024);
    let mut conns: Vec<(mio::net::TcpStream, Vec<u8>)> = Vec::new();
    for (i, s) in socks.into_iter().enumerate() {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut m = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(&mut m, mio::Token(i), mio::Interest::READABLE)
            .map_err(|e| e.to_string())?;
        conns.push((m, Vec::with_capacity(1 << 16)));
    }
    let mut r = Reader {
        hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?,
        messages: 0,
        bytes: 0,
    };
    let mut chunk = vec![0u8; 1 << 16];
    let mut ready: Vec<usize> = (0..conns.len()).collect();
    while !done.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .map_err(|e| e.to_string())?;
        ready.extend(events.iter().map(|e| e.token().0));
        for i in ready.drain(..) {
            let (sock, buf) = &mut conns[i];
            // Parse after every read, so a client's buffer stays one read plus a partial frame.
            loop {
                match sock.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.to_string()),
                }
                let measure = measuring.load(Ordering::Relaxed);
                let consumed = parse_frames(buf, measure, &inst_of, &send_ns, &mut r);
                buf.drain(..consumed);
            }
        }
    }
    Ok(r)
}

/// The floor: ns per `write` of one `len`-byte message to one of `n` loopback TCP sockets in
/// turn, with a reader draining them on `core` (the same kernel work the gateway does per message
/// when each write carries one message), measured in this run.
fn write_floor(n: usize, len: usize, core: Option<usize>) -> Result<f64, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..n {
        let w = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        w.set_nodelay(true).map_err(|e| e.to_string())?;
        let (r, _) = l.accept().map_err(|e| e.to_string())?;
        writers.push(w);
        readers.push(r);
    }
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let reader = std::thread::spawn(move || -> Result<(), String> {
        let _ = tickwire_engine::affinity::pin_current(core);
        let mut poll = mio::Poll::new().map_err(|e| e.to_string())?;
        let mut events = mio::Events::with_capacity(1024);
        let mut socks: Vec<mio::net::TcpStream> = Vec::new();
        for (i, r) in readers.into_iter().enumerate() {
            r.set_nonblocking(true).map_err(|e| e.to_string())?;
            let mut m = mio::net::TcpStream::from_std(r);
            poll.registry()
                .register(&mut m, mio::Token(i), mio::Interest::READABLE)
                .map_err(|e| e.to_string())?;
            socks.push(m);
        }
        let mut buf = vec![0u8; 1 << 16];
        while !d.load(Ordering::Relaxed) {
            poll.poll(&mut events, Some(Duration::from_millis(10)))
                .map_err(|e| e.to_string())?;
            for ev in events.iter() {
                while let Ok(k) = socks[ev.token().0].read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                }
            }
        }
        Ok(())
    });
    let msg = vec![b'x'; len];
    let rounds = (200_000 / n.max(1)).max(1);
    let t0 = Instant::now();
    for _ in 0..rounds {
        for w in &mut writers {
            w.write_all(&msg).map_err(|e| e.to_string())?;
        }
    }
    let ns = t0.elapsed().as_nanos() as f64 / (rounds * n) as f64;
    done.store(true, Ordering::Relaxed);
    reader
        .join()
        .map_err(|_| "floor reader panicked".to_string())??;
    Ok(ns)
}

/// Runs the benchmark and prints the report.
pub fn fanout(a: FanoutArgs, stop: &AtomicBool) -> Result<(), String> {
    let mcfg = MockConfig {
        symbols: a.symbols,
        rate: a.rate,
        core: a.peers_core,
        ..MockConfig::default()
    };
    let engine = crate::bench_cmd::private_shm(&a.engine, "fanout");
    let key = "bench".to_string();
    let (mock, run) = gateway_cmd::start_with_mock(mcfg, a.port, vec![key.clone()], &engine)?;
    let (send_ns, _) = mock.send_times();
    let names = mock.names();
    let inst_of: HashMap<u64, usize> = names
        .iter()
        .enumerate()
        .map(|(i, (x, s))| (key_of(x.as_bytes(), s.as_bytes()), i))
        .collect();
    let mode = match a.mode {
        FanMode::Ltp => 1,
        FanMode::Quote => 2,
        FanMode::Depth => 3,
    };
    let list: Vec<_> = names
        .iter()
        .map(|(x, s)| serde_json::json!({"exchange": x, "symbol": s}))
        .collect();
    let sub = serde_json::json!({"action": "subscribe", "symbols": list, "mode": mode}).to_string();
    let stalled_n = (a.clients as u64 * a.stalled.min(100) as u64 / 100) as u32;
    let (mut reading, mut stalled) = (Vec::new(), Vec::new());
    for i in 0..a.clients {
        let c = authed_socket(run.addr, &key, Some(sub.as_bytes()))?;
        if i < stalled_n {
            stalled.push(c);
        } else {
            reading.push(c);
        }
    }
    let (measuring, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let reader = {
        let (m, d, s, core) = (
            measuring.clone(),
            done.clone(),
            send_ns.clone(),
            a.peers_core,
        );
        std::thread::spawn(move || {
            let _ = tickwire_engine::affinity::pin_current(core);
            read_clients(reading, inst_of, s, m, d)
        })
    };
    // Warm-up: every client has its first values and the stalled ones have filled their sockets.
    std::thread::sleep(Duration::from_secs(2));
    let gateway_threads = ["tickwire-client", "tickwire-feed", "tickwire-router"];
    let (cpu0, rss0, t0) = (thread_cpu(&gateway_threads), rss_anon_kib(), Instant::now());
    measuring.store(true, Ordering::Relaxed);
    while t0.elapsed().as_secs_f64() < a.seconds && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss1) = (thread_cpu(&gateway_threads), rss_anon_kib());
    done.store(true, Ordering::Relaxed);
    let r = reader
        .join()
        .map_err(|_| "client reader panicked".to_string())??;
    let stats = run.clients.clone();
    let conflated = stats.conflated.load(Ordering::Relaxed);
    drop(stalled);
    run.shutdown();
    mock.stop();
    let _ = std::fs::remove_file(&engine.shm);

    let avg_len = r.bytes.checked_div(r.messages).unwrap_or(150) as usize;
    let floor_ns = write_floor(a.clients as usize, avg_len, a.peers_core)?;
    let us = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
    let msgs = r.messages as f64 / secs;
    let cpu = cpu1 - cpu0;
    println!(
        "bench fanout: {} clients ({} stalled), {} instruments, {} updates/s, mode {:?}, {:.1} s",
        a.clients,
        stalled_n,
        names.len(),
        a.rate,
        a.mode,
        secs
    );
    println!("| messages/s delivered | MB/s | p50 µs | p90 | p99 | p99.9 | max | gateway CPU s per M messages |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3} |",
        msgs,
        r.bytes as f64 / secs / 1e6,
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        r.hist.max() as f64 / 1000.0,
        if r.messages > 0 {
            cpu / (r.messages as f64 / 1e6)
        } else {
            0.0
        }
    );
    println!(
        "gateway threads: {:.2} CPU s over {:.1} s ({:.0} % of a core); private memory {} → {} KiB; \
         updates conflated for slow clients: {conflated}",
        cpu,
        secs,
        cpu / secs * 100.0,
        rss0,
        rss1
    );
    println!(
        "floor, this run: one {avg_len}-byte write to one of {} loopback sockets in turn takes \
         {floor_ns:.0} ns ({:.0} writes/s on one core); the gateway spent {:.0} ns of CPU per \
         message delivered",
        a.clients,
        1e9 / floor_ns,
        if r.messages > 0 {
            cpu * 1e9 / r.messages as f64
        } else {
            0.0
        }
    );
    Ok(())
}
