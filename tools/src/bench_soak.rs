//! `tickwire bench soak`: hundreds of clients subscribing and unsubscribing at random for minutes
//! while the mock market runs fast, against a `tickwire serve` child process whose resident memory
//! is sampled over time. Bounded (it stops after `--seconds`) and not part of the test suite: it
//! is run by hand, and its report goes into the issue notes.
//!
//! What it records:
//! - the gateway's RSS (and peak) every `--sample-s` seconds, with messages/s received and
//!   clients still open;
//! - every error reply by code, every close by its reason, every failed connect;
//! - isolation: a `market_data` message for a symbol the client does not hold (and has not
//!   dropped in the last 2 s, which a message already in flight may still be) is a violation;
//! - the gateway's warning and error log lines (its stderr goes to a file).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;

use crate::mock::market::Rng;
use crate::mock::{MockBroker, MockConfig};
use crate::wsraw::{authed_socket, client_frame, client_frame_op, field, next_frame};
use crate::wsraw::{CLOSE, PING, PONG, TEXT};

/// `tickwire bench soak` flags.
#[derive(Args, Debug, Clone)]
pub struct SoakArgs {
    /// WebSocket clients.
    #[arg(long, default_value_t = 500)]
    pub clients: u32,
    /// How long to run.
    #[arg(long, default_value_t = 300.0)]
    pub seconds: f64,
    /// Mock market updates per second.
    #[arg(long, default_value_t = 200_000)]
    pub rate: u64,
    /// Synthetic instruments in the mock market.
    #[arg(long, default_value_t = 2_000)]
    pub symbols: u32,
    /// API keys the clients are spread over (per-key client limits apply to each).
    #[arg(long, default_value_t = 5)]
    pub keys: u32,
    /// Subscription requests per client per minute (each a subscribe or unsubscribe of 1–5
    /// symbols, at random times; a client holds 5 to 40 symbols, so the load stays steady).
    #[arg(long, default_value_t = 20)]
    pub requests_per_minute: u32,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10)]
    pub sample_s: u64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Where the gateway's log goes (default: a temporary file, its warnings summarised).
    #[arg(long)]
    pub gateway_log: Option<PathBuf>,
    /// Extra `tickwire serve` arguments (after `--`).
    #[arg(last = true)]
    pub gateway_args: Vec<String>,
}

fn key_of(exchange: &[u8], symbol: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    exchange.hash(&mut h);
    symbol.hash(&mut h);
    h.finish()
}

/// Fewest symbols a client holds before it only subscribes.
const LOW: usize = 5;
/// Most symbols a client holds before it only unsubscribes.
const HIGH: usize = 40;

/// One soak client.
struct Client {
    sock: mio::net::TcpStream,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    held: HashMap<u64, usize>,
    dropped: HashMap<u64, Instant>,
    next_request: Instant,
    open: bool,
}

/// What the soak saw.
#[derive(Default)]
struct Seen {
    messages: u64,
    replies: u64,
    errors: BTreeMap<String, u64>,
    closes: BTreeMap<String, u64>,
    violations: u64,
    write_errors: u64,
}

/// Resident, peak resident and private (heap, stacks: not the mapped shm file) memory of `pid`,
/// KiB.
fn rss_kib(pid: u32) -> (u64, u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"), get("RssAnon:"))
}

/// The gateway child process; stopped with SIGTERM (a clean shutdown) when dropped.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl Client {
    /// Queues a random subscribe (1–5 symbols, a random mode) or unsubscribe (of held symbols).
    fn request(&mut self, rng: &mut Rng, names: &[(String, String)]) {
        let k = rng.range(1, 5) as usize;
        // A random walk around a steady load: a client holds between `LOW` and `HIGH` symbols
        // most of the time, so memory growth over the run means a leak, not more work.
        let subscribe = match self.held.len() {
            n if n < LOW => true,
            n if n > HIGH => false,
            _ => rng.range(0, 1) == 0,
        };
        let mut list = Vec::with_capacity(k);
        if subscribe {
            for _ in 0..k {
                let i = rng.range(0, names.len() as i64 - 1) as usize;
                let (x, s) = &names[i];
                self.held.insert(key_of(x.as_bytes(), s.as_bytes()), i);
                list.push(serde_json::json!({"exchange": x, "symbol": s}));
            }
        } else {
            let mut victims: Vec<(u64, usize)> =
                self.held.iter().map(|(&h, &i)| (h, i)).take(k).collect();
            victims.sort_unstable();
            for (h, i) in victims {
                self.held.remove(&h);
                self.dropped.insert(h, Instant::now());
                let (x, s) = &names[i];
                list.push(serde_json::json!({"exchange": x, "symbol": s}));
            }
        }
        // An unsubscribe names no mode: every mode of the symbol goes.
        let req = if subscribe {
            serde_json::json!({"action": "subscribe", "symbols": list, "mode": rng.range(1, 3)})
        } else {
            serde_json::json!({"action": "unsubscribe", "symbols": list})
        };
        self.outbox
            .extend_from_slice(&client_frame(req.to_string().as_bytes()));
    }

    /// Reads what the socket holds and handles every complete frame.
    fn read(&mut self, chunk: &mut [u8], seen: &mut Seen) {
        loop {
            match self.sock.read(chunk) {
                Ok(0) => {
                    self.finish(seen, "eof without close frame");
                    return;
                }
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.finish(seen, &format!("read error: {e}"));
                    return;
                }
            }
        }
        let mut at = 0;
        while let Some((op, hdr, len)) = next_frame(&self.inbox[at..]) {
            let payload = self.inbox[at + hdr..at + hdr + len].to_vec();
            at += hdr + len;
            match op {
                TEXT => self.text(&payload, seen),
                PING => self
                    .outbox
                    .extend_from_slice(&client_frame_op(PONG, &payload)),
                CLOSE => {
                    let code = payload
                        .get(..2)
                        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
                    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or(&[]));
                    self.finish(seen, &format!("{code} {reason}"));
                    return;
                }
                _ => {}
            }
        }
        self.inbox.drain(..at);
    }

    fn text(&mut self, payload: &[u8], seen: &mut Seen) {
        if payload.windows(13).any(|w| w == b"\"market_data\"") {
            seen.messages += 1;
            let (Some(x), Some(s)) = (
                field(payload, b"\"exchange\":\""),
                field(payload, b"\"symbol\":\""),
            ) else {
                return;
            };
            let h = key_of(x, s);
            let recent = self
                .dropped
                .get(&h)
                .is_some_and(|t| t.elapsed() < Duration::from_secs(2));
            if !self.held.contains_key(&h) && !recent {
                seen.violations += 1;
            }
            return;
        }
        seen.replies += 1;
        let mut rest = payload;
        // Every error code in the reply (entries of a partial reply carry their own).
        while let Some(at) = rest.windows(9).position(|w| w == b"\"code\":\"") {
            let code = field(&rest[at..], b"\"code\":\"").unwrap_or_default();
            *seen
                .errors
                .entry(String::from_utf8_lossy(code).into_owned())
                .or_default() += 1;
            rest = &rest[at + 9..];
        }
    }

    fn flush(&mut self, seen: &mut Seen) {
        while !self.outbox.is_empty() {
            match self.sock.write(&self.outbox) {
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    seen.write_errors += 1;
                    self.finish(seen, &format!("write error: {e}"));
                    return;
                }
            }
        }
    }

    fn finish(&mut self, seen: &mut Seen, why: &str) {
        if self.open {
            self.open = false;
            *seen.closes.entry(why.to_string()).or_default() += 1;
        }
    }
}

/// Runs the soak and prints its report.
pub fn soak(a: SoakArgs, stop: &AtomicBool) -> Result<(), String> {
    let mock = MockBroker::start(MockConfig {
        symbols: a.symbols,
        rate: a.rate,
        ..MockConfig::default()
    })
    .map_err(|e| format!("mock broker: {e}"))?;
    let names = mock.names();
    let maddr = mock.addr();
    let port = free_port()?;
    let keys: Vec<String> = (1..=a.keys.max(1))
        .map(|i| format!("soak-key-{i}"))
        .collect();
    let dir = std::env::temp_dir().join(format!("tickwire-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let log = a
        .gateway_log
        .clone()
        .unwrap_or_else(|| dir.join("gateway.log"));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let shm = dir.join("ticks");
    let child = Command::new(exe)
        .args(["serve", "--port", &port.to_string(), "--shm"])
        .arg(&shm)
        // The soak is about clients; at 200,000 updates/s a journal would write gigabytes
        // (benches/journal.rs measures its cost).
        .arg("--no-journal")
        .args(["--api-key", &keys.join(",")])
        .args(["--broker-url", &format!("ws://{maddr}")])
        .args(["--instruments", &format!("http://{maddr}/instruments")])
        .args(["--kite-api-key", "mock_api_key"])
        .args(["--kite-access-token", "mock_access_token"])
        // The mock market trades at any hour.
        .arg("--dev")
        .args(&a.gateway_args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("tickwire serve: {e}"))?;
    let pid = child.id();
    let gateway = Gateway(child);
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if t0.elapsed() > Duration::from_secs(60) || stop.load(Ordering::Relaxed) {
            return Err(format!(
                "the gateway did not listen within 60 s; see {}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut rng = Rng::new(a.seed);
    let mut poll = mio::Poll::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    let mut seen = Seen::default();
    let mean_ms = 60_000 / a.requests_per_minute.max(1) as i64;
    for i in 0..a.clients {
        let key = &keys[i as usize % keys.len()];
        match authed_socket(addr, key, None) {
            Ok(s) => {
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
                let mut sock = mio::net::TcpStream::from_std(s);
                poll.registry()
                    .register(
                        &mut sock,
                        mio::Token(clients.len()),
                        mio::Interest::READABLE,
                    )
                    .map_err(|e| e.to_string())?;
                clients.push(Client {
                    sock,
                    inbox: Vec::new(),
                    outbox: Vec::new(),
                    held: HashMap::new(),
                    dropped: HashMap::new(),
                    next_request: Instant::now()
                        + Duration::from_millis(rng.range(0, mean_ms) as u64),
                    open: true,
                });
            }
            Err(e) => *seen.closes.entry(format!("connect: {e}")).or_default() += 1,
        }
    }
    println!(
        "bench soak: {} clients on {} keys, {} instruments at {} updates/s, {} requests/min \
         each, {:.0} s; gateway pid {pid}, log {}",
        clients.len(),
        keys.len(),
        names.len(),
        a.rate,
        a.requests_per_minute,
        a.seconds,
        log.display()
    );
    println!("| t s | gateway RSS MiB | peak MiB | private MiB | clients open | messages/s | replies | errors | closes | isolation violations |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut events = mio::Events::with_capacity(1024);
    let mut chunk = vec![0u8; 1 << 16];
    let start = Instant::now();
    let (mut last_sample, mut last_messages) = (start, 0u64);
    let row = |t: f64, seen: &Seen, open: usize, rate: f64| {
        let (rss, peak, private) = rss_kib(pid);
        println!(
            "| {t:.0} | {:.1} | {:.1} | {:.1} | {open} | {rate:.0} | {} | {} | {} | {} |",
            rss as f64 / 1024.0,
            peak as f64 / 1024.0,
            private as f64 / 1024.0,
            seen.replies,
            seen.errors.values().sum::<u64>(),
            seen.closes.values().sum::<u64>(),
            seen.violations
        );
    };
    row(0.0, &seen, clients.len(), 0.0);
    while start.elapsed().as_secs_f64() < a.seconds && !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let c = &mut clients[ev.token().0];
            if c.open {
                c.read(&mut chunk, &mut seen);
            }
        }
        let now = Instant::now();
        for c in clients.iter_mut().filter(|c| c.open) {
            if now >= c.next_request {
                c.request(&mut rng, &names);
                c.next_request = now + Duration::from_millis(rng.range(1, 2 * mean_ms) as u64);
                c.dropped
                    .retain(|_, t| now.duration_since(*t) < Duration::from_secs(2));
            }
            c.flush(&mut seen);
        }
        if now.duration_since(last_sample) >= Duration::from_secs(a.sample_s.max(1)) {
            let dt = now.duration_since(last_sample).as_secs_f64();
            let open = clients.iter().filter(|c| c.open).count();
            row(
                start.elapsed().as_secs_f64(),
                &seen,
                open,
                (seen.messages - last_messages) as f64 / dt,
            );
            (last_sample, last_messages) = (now, seen.messages);
        }
    }
    let open = clients.iter().filter(|c| c.open).count();
    let secs = start.elapsed().as_secs_f64();
    let dt = last_sample.elapsed().as_secs_f64().max(1e-9);
    row(
        secs,
        &seen,
        open,
        (seen.messages - last_messages) as f64 / dt,
    );
    drop(clients);
    drop(gateway);
    mock.stop();
    println!(
        "messages received: {} ({:.0}/s); replies: {}; isolation violations: {}; write errors: {}",
        seen.messages,
        seen.messages as f64 / secs,
        seen.replies,
        seen.violations,
        seen.write_errors
    );
    println!("error codes: {:?}", seen.errors);
    println!("closes: {:?}", seen.closes);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let worrying: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    println!(
        "gateway log: {} lines, {} warnings/errors",
        text.lines().count(),
        worrying.len()
    );
    for l in worrying.iter().take(20) {
        println!("  {l}");
    }
    Ok(())
}
