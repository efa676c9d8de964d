//! The mock Kite broker's network side: one listener serving the ticker WebSocket (Kite's protocol
//! byte for byte) and plain HTTP (`GET /instruments`, `GET /sent?token=T`) on the same port.
//!
//! A test peer, not part of the gateway: it uses a thread per connection and locks freely. Latency
//! still matters for benchmarks, so the market thread wakes a connection (`unpark`) as soon as it
//! queues a frame for it.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use tickwire_engine::clock::now_ns;
use tickwire_engine::router::Mode;
use tickwire_io::http::{self, Head};
use tickwire_io::kite::packet::{Kind, Repr};
use tickwire_io::kite::{self, instruments};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::market::Market;

/// Mock broker settings (`tickwire mock-broker` flags).
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Port on 127.0.0.1 (0 = any free port).
    pub port: u16,
    /// Synthetic instruments beyond the named ones.
    pub symbols: u32,
    /// Total market updates per second.
    pub rate: u64,
    /// Random-walk seed.
    pub seed: u64,
    /// Accepted `api_key`.
    pub api_key: String,
    /// Accepted `access_token`.
    pub access_token: String,
    /// Serve wss:// and https:// with this certificate chain and key (PEM files).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Pin the market and connection threads to this CPU (OS number). A benchmark uses it to keep
    /// the mock where it wants the load; `None` leaves placement to the scheduler.
    pub core: Option<usize>,
    /// How long the market thread sleeps when nothing is due: the updates due by then share a
    /// frame. The OS adds its timer slack (~50 µs) to short sleeps.
    pub frame_interval: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            port: 0,
            symbols: 100,
            rate: 1000,
            seed: 1,
            api_key: "mock_api_key".into(),
            access_token: "mock_access_token".into(),
            tls: None,
            core: None,
            frame_interval: Duration::from_micros(100),
        }
    }
}

/// Counters, for logs and tests.
#[derive(Debug, Default)]
pub struct MockStats {
    /// Packets queued to connections.
    pub packets: AtomicU64,
    /// Frames a slow connection could not take (its queue was full).
    pub dropped_frames: AtomicU64,
    /// WebSocket connections accepted.
    pub connections: AtomicU64,
}

const HISTORY: usize = 256;

struct Shared {
    cfg: MockConfig,
    market: Mutex<Market>,
    csv: String,
    token_index: HashMap<u32, usize>,
    history: Mutex<Vec<VecDeque<(Kind, Repr)>>>,
    conns: Mutex<Vec<Arc<Conn>>>,
    /// Per instrument: wall-clock ns when its latest packet was handed to a socket.
    send_ns: Arc<Vec<AtomicI64>>,
    stats: Arc<MockStats>,
    stop: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
}

struct Out {
    frame: Vec<u8>,
    insts: Vec<u32>,
}

struct Conn {
    subs: Mutex<HashMap<usize, Mode>>,
    tx: SyncSender<Out>,
    thread: Thread,
    closed: AtomicBool,
}

/// A running mock broker.
pub struct MockBroker {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl MockBroker {
    /// Binds 127.0.0.1:`port` and starts the market and accept threads.
    pub fn start(cfg: MockConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", cfg.port))?;
        let addr = listener.local_addr()?;
        let market = Market::new(cfg.symbols, cfg.seed);
        let rows = market.rows();
        let n = rows.len();
        let shared = Arc::new(Shared {
            csv: instruments::to_csv(&rows),
            token_index: rows.iter().enumerate().map(|(i, r)| (r.token, i)).collect(),
            history: Mutex::new(vec![VecDeque::new(); n]),
            market: Mutex::new(market),
            conns: Mutex::new(Vec::new()),
            send_ns: Arc::new((0..n).map(|_| AtomicI64::new(0)).collect()),
            stats: Arc::default(),
            stop: AtomicBool::new(false),
            tls: cfg
                .tls
                .as_ref()
                .map(|(c, k)| tls_config(c, k))
                .transpose()?,
            cfg,
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(
            thread::Builder::new()
                .name("mock-market".into())
                .spawn(move || market_loop(&s))?,
        );
        let s = shared.clone();
        listener.set_nonblocking(true)?;
        threads.push(
            thread::Builder::new()
                .name("mock-accept".into())
                .spawn(move || accept_loop(listener, &s))?,
        );
        Ok(Self {
            addr,
            shared,
            threads,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters.
    pub fn stats(&self) -> Arc<MockStats> {
        self.shared.stats.clone()
    }

    /// Per-instrument send times (ns since the epoch) and the instrument tokens in the same order:
    /// the latency benchmark's side channel.
    pub fn send_times(&self) -> (Arc<Vec<AtomicI64>>, Vec<u32>) {
        let tokens = self
            .shared
            .market
            .lock()
            .map(|m| m.insts.iter().map(|i| i.row.token).collect())
            .unwrap_or_default();
        (self.shared.send_ns.clone(), tokens)
    }

    /// Stops every thread and closes every connection.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Ok(conns) = self.shared.conns.lock() {
            for c in conns.iter() {
                c.thread.unpark();
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, p: &std::path::Path, e: &dyn std::fmt::Display| {
        io::Error::other(format!("{what} {}: {e}", p.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("certificate", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(cfg))
}

fn market_loop(s: &Shared) {
    pin(s);
    let start = Instant::now();
    let mut done = 0u64;
    let mut updated: Vec<(usize, Kind, Repr, bool)> = Vec::new();
    while !s.stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * s.cfg.rate as f64) as u64;
        let n = due.saturating_sub(done).min(s.cfg.rate / 100 + 1);
        if n == 0 {
            // Every update due since the last wake-up goes out in one frame, as Kite batches.
            thread::sleep(s.cfg.frame_interval);
            continue;
        }
        done += n;
        updated.clear();
        {
            let Ok(mut m) = s.market.lock() else { return };
            for _ in 0..n {
                let i = m.step();
                updated.push((i, Kind::Full, m.insts[i].state, m.insts[i].index));
            }
        }
        if let Ok(mut h) = s.history.lock() {
            for &(i, k, r, _) in &updated {
                remember(&mut h[i], k, r);
            }
        }
        let conns: Vec<Arc<Conn>> = s.conns.lock().map(|c| c.clone()).unwrap_or_default();
        for c in conns {
            let Ok(subs) = c.subs.lock() else { continue };
            let picks = updated.iter().filter_map(|&(i, _, r, index)| {
                subs.get(&i).map(|&m| (i, packet_kind(m, index), r))
            });
            send_packets(s, &c, picks);
        }
        s.conns
            .lock()
            .map(|mut v| v.retain(|c| !c.closed.load(Ordering::Relaxed)))
            .ok();
    }
}

/// Pins the calling mock thread where the config says; a failure is logged, not fatal.
fn pin(s: &Shared) {
    if let Err(e) = tickwire_engine::affinity::pin_current(s.cfg.core) {
        eprintln!("mock broker: {e}");
    }
}

/// Appends to an instrument's send history, keeping the newest `HISTORY` entries.
fn remember(q: &mut VecDeque<(Kind, Repr)>, k: Kind, r: Repr) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back((k, r));
}

fn packet_kind(mode: Mode, index: bool) -> Kind {
    match (mode, index) {
        (Mode::Ltp, _) => Kind::Ltp,
        (Mode::Quote, false) => Kind::Quote,
        (Mode::Quote, true) => Kind::IndexQuote,
        (Mode::Depth, false) => Kind::Full,
        (Mode::Depth, true) => Kind::IndexFull,
    }
}

/// Builds frames of up to 500 packets and queues them for `c`.
fn send_packets(s: &Shared, c: &Conn, picks: impl Iterator<Item = (usize, Kind, Repr)>) {
    let mut bodies: Vec<u8> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut insts = Vec::new();
    let flush = |bodies: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>, insts: &mut Vec<u32>| {
        if spans.is_empty() {
            return;
        }
        let refs: Vec<&[u8]> = spans.iter().map(|&(a, b)| &bodies[a..b]).collect();
        let mut frame = Vec::with_capacity(bodies.len() + 2 * refs.len() + 2);
        kite::frame::emit(&refs, &mut frame);
        s.stats
            .packets
            .fetch_add(refs.len() as u64, Ordering::Relaxed);
        match c.tx.try_send(Out {
            frame,
            insts: std::mem::take(insts),
        }) {
            Ok(()) => c.thread.unpark(),
            Err(TrySendError::Full(_)) => {
                s.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => c.closed.store(true, Ordering::Relaxed),
        }
        bodies.clear();
        spans.clear();
    };
    for (i, kind, r) in picks {
        let a = bodies.len();
        r.emit(kind, &mut bodies);
        spans.push((a, bodies.len()));
        insts.push(i as u32);
        if spans.len() == 500 {
            flush(&mut bodies, &mut spans, &mut insts);
        }
    }
    flush(&mut bodies, &mut spans, &mut insts);
}

fn accept_loop(listener: TcpListener, s: &Arc<Shared>) {
    while !s.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let s = s.clone();
                let _ = thread::Builder::new()
                    .name("mock-conn".into())
                    .spawn(move || {
                        pin(&s);
                        if let Err(e) = serve(stream, &s) {
                            if e.kind() != io::ErrorKind::ConnectionReset
                                && e.kind() != io::ErrorKind::BrokenPipe
                            {
                                eprintln!("mock-broker: connection: {e}");
                            }
                        }
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => {
                eprintln!("mock-broker: accept: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn read_head(stream: &mut impl Read) -> io::Result<(Head, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        match http::parse_head(&buf) {
            Ok(Some((head, len))) => return Ok((head, buf.split_off(len))),
            Ok(None) => continue,
            Err(e) => return Err(io::Error::other(e)),
        }
    }
}

fn serve(tcp: TcpStream, s: &Arc<Shared>) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_nodelay(true)?;
    // `sock` stays a handle on the socket for switching it to non-blocking once the stream is wrapped.
    let sock = tcp.try_clone()?;
    match &s.tls {
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg.clone()).map_err(io::Error::other)?;
            serve_stream(rustls::StreamOwned::new(conn, tcp), &sock, s)
        }
        None => serve_stream(tcp, &sock, s),
    }
}

fn serve_stream<S: Read + Write>(
    mut stream: S,
    sock: &TcpStream,
    s: &Arc<Shared>,
) -> io::Result<()> {
    let (head, leftover) = read_head(&mut stream)?;
    if !head.upgrade {
        return match head.path.as_str() {
            "/instruments" => http::respond(&mut stream, "200 OK", "text/csv", &s.csv),
            "/sent" => {
                let body = sent_json(s, head.query.get("token").and_then(|t| t.parse().ok()));
                http::respond(&mut stream, "200 OK", "application/json", &body)
            }
            _ => http::respond(&mut stream, "404 Not Found", "text/plain", "not found\n"),
        };
    }
    let (k, t) = (head.query.get("api_key"), head.query.get("access_token"));
    if k != Some(&s.cfg.api_key) || t != Some(&s.cfg.access_token) {
        // What Kite answers to a bad key or token: 403 before any upgrade.
        let body = r#"{"status":"error","message":"Invalid `api_key` or `access_token`.","error_type":"TokenException"}"#;
        return http::respond(&mut stream, "403 Forbidden", "application/json", body);
    }
    let Some(key) = head.ws_key else {
        return http::respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "missing Sec-WebSocket-Key\n",
        );
    };
    stream.write_all(http::switching_protocols(&key).as_bytes())?;
    stream.flush()?;
    sock.set_nonblocking(true)?;
    let cfg = WebSocketConfig::default().max_write_buffer_size(64 << 20);
    let mut ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(cfg));
    let (tx, rx) = sync_channel(4096);
    let conn = Arc::new(Conn {
        subs: Mutex::default(),
        tx,
        thread: thread::current(),
        closed: AtomicBool::new(false),
    });
    s.stats.connections.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut v) = s.conns.lock() {
        v.push(conn.clone());
    }
    let res = session(&mut ws, &rx, &conn, s);
    conn.closed.store(true, Ordering::Relaxed);
    res
}

fn ws_err(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        e => io::Error::other(e.to_string()),
    }
}

fn session<S: Read + Write>(
    ws: &mut WebSocket<S>,
    rx: &Receiver<Out>,
    conn: &Conn,
    s: &Shared,
) -> io::Result<()> {
    let mut last_beat = Instant::now();
    while !s.stop.load(Ordering::Relaxed) {
        let mut busy = false;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    busy = true;
                    on_text(ws, t.as_str(), conn, s)?;
                }
                Ok(Message::Binary(_)) => {
                    busy = true;
                    text(
                        ws,
                        r#"{"type":"error","data":"binary messages are not accepted"}"#,
                    )?;
                }
                Ok(Message::Close(_)) => {
                    finish_close(ws);
                    return Ok(());
                }
                Ok(_) => busy = true,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(())
                }
                Err(e) => return Err(ws_err(e)),
            }
        }
        while let Ok(out) = rx.try_recv() {
            busy = true;
            let now = now_ns();
            for &i in &out.insts {
                s.send_ns[i as usize].store(now, Ordering::Relaxed);
            }
            match ws.write(Message::Binary(out.frame.into())) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(tungstenite::Error::WriteBufferFull(_)) => {
                    s.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(ws_err(e)),
            }
        }
        if last_beat.elapsed() >= Duration::from_secs(1) {
            last_beat = Instant::now();
            // Kite's heartbeat: a 1-byte binary frame about every second.
            match ws.write(Message::Binary(vec![0u8].into())) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(ws_err(e)),
            }
        }
        match ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(ws_err(e)),
        }
        if busy {
            // A real broker is another machine. This one may share a CPU with the gateway it
            // feeds (the benchmark pins both to one), so give the CPU up once the bytes are in
            // the kernel: the receiver runs now rather than when this loop next parks.
            thread::yield_now();
        }
        if !busy {
            thread::park_timeout(Duration::from_millis(1));
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
    Ok(())
}

/// Completes the closing handshake a client started: tungstenite queued the reply to its Close
/// frame; flush it until tungstenite reports the handshake done (bounded: a peer that stopped
/// reading gets 1 s). Dropping the TCP connection instead makes clients report an unclean close
/// (1006), as the official KiteTicker did.
fn finish_close<S: Read + Write>(ws: &mut WebSocket<S>) {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        match ws.flush() {
            Ok(()) => match ws.read() {
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1))
                }
                Ok(_) => {}
                Err(_) => return, // ConnectionClosed: the reply went out
            },
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1))
            }
            Err(_) => return,
        }
    }
}

fn text<S: Read + Write>(ws: &mut WebSocket<S>, msg: &str) -> io::Result<()> {
    match ws.write(Message::Text(msg.into())) {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(ws_err(e)),
    }
}

fn tokens_of(v: &serde_json::Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok()))
        .collect()
}

/// Applies a client's text message: subscribe, unsubscribe, mode; anything else gets Kite's error
/// shape. Newly subscribed or re-moded tokens get their current value at once, as Kite does.
fn on_text<S: Read + Write>(
    ws: &mut WebSocket<S>,
    msg: &str,
    conn: &Conn,
    s: &Shared,
) -> io::Result<()> {
    let err = |ws: &mut WebSocket<S>, m: String| {
        let j = serde_json::json!({"type": "error", "data": m});
        text(ws, &j.to_string())
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(msg) else {
        return err(ws, format!("invalid message: {msg}"));
    };
    let action = v.get("a").and_then(|a| a.as_str()).unwrap_or("");
    let (mode, list) = match action {
        "subscribe" | "unsubscribe" => (None, v.get("v").and_then(tokens_of)),
        "mode" => {
            let arr = v.get("v").and_then(|x| x.as_array());
            let m = arr
                .and_then(|a| a.first())
                .and_then(|m| m.as_str())
                .and_then(kite::mode_from_name);
            match m {
                Some(m) => (Some(m), arr.and_then(|a| a.get(1)).and_then(tokens_of)),
                None => return err(ws, format!("invalid mode in {msg}")),
            }
        }
        _ => return err(ws, format!("invalid action in {msg}")),
    };
    let Some(list) = list else {
        return err(ws, format!("invalid token list in {msg}"));
    };
    let mut fresh = Vec::new();
    let mut unknown = Vec::new();
    if let Ok(mut subs) = conn.subs.lock() {
        for t in list {
            let Some(&i) = s.token_index.get(&t) else {
                unknown.push(t.to_string());
                continue;
            };
            match action {
                "subscribe" => {
                    subs.entry(i).or_insert(Mode::Quote);
                    fresh.push(i);
                }
                "unsubscribe" => {
                    subs.remove(&i);
                }
                _ => {
                    if let (Some(m), Some(cur)) = (mode, subs.get_mut(&i)) {
                        *cur = m;
                        fresh.push(i);
                    }
                }
            }
        }
    }
    if !unknown.is_empty() {
        err(
            ws,
            format!("invalid instrument tokens: {}", unknown.join(",")),
        )?;
    }
    if !fresh.is_empty() {
        let snapshot: Vec<(usize, Kind, Repr)> = {
            let (Ok(m), Ok(subs)) = (s.market.lock(), conn.subs.lock()) else {
                return Ok(());
            };
            fresh
                .iter()
                .filter_map(|&i| {
                    subs.get(&i)
                        .map(|&md| (i, packet_kind(md, m.insts[i].index), m.insts[i].state))
                })
                .collect()
        };
        if let Ok(mut h) = s.history.lock() {
            for &(i, k, r) in &snapshot {
                remember(&mut h[i], k, r);
            }
        }
        send_packets(s, conn, snapshot.into_iter());
    }
    Ok(())
}

/// `GET /sent?token=T`: the recent values sent for an instrument (newest last), raw wire integers.
fn sent_json(s: &Shared, token: Option<u32>) -> String {
    let Some(&i) = token.and_then(|t| s.token_index.get(&t)) else {
        return "[]".into();
    };
    let Ok(h) = s.history.lock() else {
        return "[]".into();
    };
    let items: Vec<serde_json::Value> = h[i]
        .iter()
        .map(|(_, r)| {
            serde_json::json!({
                "token": r.token, "ltp": r.ltp, "last_qty": r.last_qty, "avg_price": r.avg_price,
                "volume": r.volume, "buy_qty": r.buy_qty, "sell_qty": r.sell_qty, "open": r.open,
                "high": r.high, "low": r.low, "close": r.close, "oi": r.oi, "exchange_ts": r.exchange_ts,
                "bids": r.bids.iter().map(|l| [l.price, l.qty, l.orders as u32]).collect::<Vec<_>>(),
                "asks": r.asks.iter().map(|l| [l.price, l.qty, l.orders as u32]).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}
