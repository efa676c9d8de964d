//! The mock broker's network side, the same for every broker: one listener serving the broker's
//! WebSocket and plain HTTP on the same port. What is broker-specific (endpoints, credentials,
//! requests, the wire format) is the [`Dialect`] chosen by [`MockConfig::broker`]; `GET
//! /sent?token=T` (the recent values sent for an instrument, by its Kite token) is the mock's own
//! side channel for tests, in every dialect.
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
use tickwire_io::http::{self, Head};
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::Repr;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::config::{MockConfig, MockStats};
use super::dialect::{Ctx, Dialect, Reply, Session};
use super::market::Market;

const HISTORY: usize = 256;

pub(super) struct Shared {
    cfg: MockConfig,
    pub(super) addr: SocketAddr,
    dialect: Box<dyn Dialect>,
    pub(super) rows: Vec<Instrument>,
    market: Mutex<Market>,
    pub(super) token_index: HashMap<u32, usize>,
    pub(super) history: Mutex<Vec<VecDeque<Repr>>>,
    pub(super) conns: Mutex<Vec<Arc<Conn>>>,
    /// Per instrument: wall-clock ns when its latest packet was handed to a socket.
    send_ns: Arc<Vec<AtomicI64>>,
    stats: Arc<MockStats>,
    stop: AtomicBool,
    /// Client messages ignored so far ([`MockConfig::ignore_requests`]).
    ignored: AtomicU64,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Per instrument: `/mute`d, its updates are not made (the others go on).
    pub(super) muted: Vec<AtomicBool>,
    /// Wall-clock ns until which the broker is "down" (`/outage`); 0: never was.
    pub(super) outage_until_ns: AtomicI64,
}

impl Shared {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            cfg: &self.cfg,
            addr: self.addr,
            tls: self.tls.is_some(),
            rows: &self.rows,
        }
    }
}

/// Messages for one connection, and the instruments whose values they carry.
struct Out {
    msgs: Vec<Message>,
    insts: Vec<u32>,
}

pub(super) struct Conn {
    /// Accept order, from 1: the id `/connections` and `/drop` use.
    pub(super) id: u64,
    pub(super) session: Mutex<Box<dyn Session>>,
    tx: SyncSender<Out>,
    pub(super) thread: Thread,
    pub(super) closed: AtomicBool,
    /// Set by `/drop` and `/outage`: the session ends without a closing handshake (a TCP close, as a broker
    /// whose server dies).
    pub(super) kill: AtomicBool,
    /// Set by `/mute?conn=`: no market data is sent on it (heartbeats still are), as a broker
    /// connection that stalls while the socket stays up.
    pub(super) muted: AtomicBool,
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
            addr,
            dialect: cfg.broker.dialect(&rows),
            token_index: rows.iter().enumerate().map(|(i, r)| (r.token, i)).collect(),
            history: Mutex::new(vec![VecDeque::new(); n]),
            rows,
            market: Mutex::new(market),
            conns: Mutex::new(Vec::new()),
            send_ns: Arc::new((0..n).map(|_| AtomicI64::new(0)).collect()),
            stats: Arc::default(),
            stop: AtomicBool::new(false),
            ignored: AtomicU64::new(0),
            muted: (0..n).map(|_| AtomicBool::new(false)).collect(),
            outage_until_ns: AtomicI64::new(0),
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

    /// The OpenAlgo `(exchange, symbol)` of every instrument, in market order (the order of
    /// [`MockBroker::send_times`]); the same names in every dialect.
    pub fn names(&self) -> Vec<(String, String)> {
        self.shared
            .rows
            .iter()
            .map(tickwire_io::kite::instruments::openalgo_name)
            .collect()
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

/// Most updates one market step makes.
const MAX_STEP: u64 = 20_000;

fn market_loop(s: &Shared) {
    pin(s);
    let start = Instant::now();
    let mut done = 0u64;
    let mut updated: Vec<(usize, Repr)> = Vec::new();
    let mut picks: Vec<(usize, Repr)> = Vec::new();
    while !s.stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * s.cfg.rate as f64) as u64;
        // More than a second behind (a rate this thread cannot produce): drop the arrears rather
        // than owe them forever.
        done = done.max(due.saturating_sub(s.cfg.rate));
        // Bounded steps: memory stays small and `stop` is seen within a step at any rate.
        let n = due
            .saturating_sub(done)
            .min(s.cfg.rate / 100 + 1)
            .min(MAX_STEP);
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
                updated.push((i, m.insts[i].state));
            }
        }
        updated.retain(|&(i, _)| !s.muted[i].load(Ordering::Relaxed));
        if let Ok(mut h) = s.history.lock() {
            for &(i, r) in &updated {
                remember(&mut h[i], r);
            }
        }
        let conns: Vec<Arc<Conn>> = s.conns.lock().map(|c| c.clone()).unwrap_or_default();
        for c in conns.iter().filter(|c| !c.muted.load(Ordering::Relaxed)) {
            let Ok(mut session) = c.session.lock() else {
                continue;
            };
            picks.clear();
            picks.extend(updated.iter().filter(|(i, _)| session.wants(*i).is_some()));
            send_updates(s, c, &mut **session, &picks, false);
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
        tracing::error!("mock broker: {e}");
    }
}

/// Appends to an instrument's send history, keeping the newest `HISTORY` entries.
fn remember(q: &mut VecDeque<Repr>, r: Repr) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(r);
}

/// Encodes `updates` (already filtered to what `c` wants) in chunks of up to 500 and queues the
/// messages for `c`'s connection thread.
fn send_updates(
    s: &Shared,
    c: &Conn,
    session: &mut dyn Session,
    updates: &[(usize, Repr)],
    snapshot: bool,
) {
    let ctx = s.ctx();
    for chunk in updates.chunks(500) {
        let mut msgs = Vec::new();
        session.encode(chunk, snapshot, &ctx, &mut msgs);
        if msgs.is_empty() {
            continue;
        }
        s.stats
            .packets
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let insts = chunk.iter().map(|&(i, _)| i as u32).collect();
        match c.tx.try_send(Out { msgs, insts }) {
            Ok(()) => c.thread.unpark(),
            Err(TrySendError::Full(_)) => {
                s.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => c.closed.store(true, Ordering::Relaxed),
        }
    }
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
                                tracing::warn!("mock-broker: connection: {e}");
                            }
                        }
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => {
                tracing::warn!("mock-broker: accept: {e}");
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
    let (head, mut leftover) = read_head(&mut stream)?;
    let ctx = s.ctx();
    if !head.upgrade {
        // A request body (Fyers' symbol-token POST): what came with the head, then the rest.
        let want = head.content_length().min(1 << 20);
        while leftover.len() < want {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            leftover.extend_from_slice(&chunk[..n]);
        }
        let reply = super::side::http(s, &head)
            .or_else(|| s.dialect.http(&head, &leftover, &ctx))
            .unwrap_or_else(|| Reply::new("404 Not Found", "text/plain", "not found\n"));
        stream.write_all(&reply.to_bytes())?;
        return stream.flush();
    }
    if super::side::refusing(s) {
        return Ok(()); // `/outage`: dropping the stream closes the TCP connection unanswered
    }
    if let Err(reply) = s.dialect.upgrade(&head, &ctx) {
        stream.write_all(&reply.to_bytes())?;
        return stream.flush();
    }
    let Some(key) = head.ws_key.clone() else {
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
    let mut session = s.dialect.session(&head, &ctx);
    let mut opening = Vec::new();
    session.on_open(&ctx, &mut opening);
    for m in opening {
        write(&mut ws, m)?;
    }
    let id = s.stats.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let conn = Arc::new(Conn {
        id,
        session: Mutex::new(session),
        tx,
        thread: thread::current(),
        closed: AtomicBool::new(false),
        kill: AtomicBool::new(false),
        muted: AtomicBool::new(false),
    });
    if let Ok(mut v) = s.conns.lock() {
        v.push(conn.clone());
    }
    let res = run_session(&mut ws, &rx, &conn, s);
    conn.closed.store(true, Ordering::Relaxed);
    res
}

fn ws_err(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        e => io::Error::other(e.to_string()),
    }
}

fn run_session<S: Read + Write>(
    ws: &mut WebSocket<S>,
    rx: &Receiver<Out>,
    conn: &Conn,
    s: &Shared,
) -> io::Result<()> {
    let mut last_beat = Instant::now();
    let heartbeat = s.dialect.heartbeat();
    let (mut replies, mut fresh) = (Vec::new(), Vec::new());
    while !s.stop.load(Ordering::Relaxed) {
        // `/drop`, or `/outage` (also for a session that was still in its handshake then).
        if conn.kill.load(Ordering::Relaxed) || super::side::refusing(s) {
            return Ok(()); // dropping the socket closes the TCP connection, no close frame
        }
        let mut busy = false;
        loop {
            match ws.read() {
                Ok(Message::Close(_)) => {
                    finish_close(ws);
                    return Ok(());
                }
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                    busy = true;
                    if s.ignored.fetch_add(1, Ordering::Relaxed) < s.cfg.ignore_requests {
                        continue;
                    }
                    if let Ok(mut session) = conn.session.lock() {
                        session.on_message(&msg, &s.ctx(), &mut replies, &mut fresh);
                    }
                    for m in replies.drain(..) {
                        write(ws, m)?;
                    }
                    if !fresh.is_empty() {
                        snapshot(s, conn, &mut fresh);
                    }
                }
                Ok(_) => busy = true, // pings are answered by tungstenite
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
            for m in out.msgs {
                match ws.write(m) {
                    Ok(()) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(tungstenite::Error::WriteBufferFull(_)) => {
                        s.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(ws_err(e)),
                }
            }
        }
        if let Some(beat) = &heartbeat {
            if last_beat.elapsed() >= Duration::from_secs(1) {
                last_beat = Instant::now();
                write(ws, beat.clone())?;
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

/// The current values of instruments a client just subscribed to (or re-moded), queued behind any
/// update already queued, as brokers send a snapshot after a subscribe.
fn snapshot(s: &Shared, conn: &Conn, fresh: &mut Vec<usize>) {
    let values: Vec<(usize, Repr)> = {
        let Ok(m) = s.market.lock() else { return };
        fresh.drain(..).map(|i| (i, m.insts[i].state)).collect()
    };
    if let Ok(mut h) = s.history.lock() {
        for &(i, r) in &values {
            remember(&mut h[i], r);
        }
    }
    if let Ok(mut session) = conn.session.lock() {
        send_updates(s, conn, &mut **session, &values, true);
    }
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

/// Queues one message (a full socket buffer is not an error: tungstenite keeps it).
fn write<S: Read + Write>(ws: &mut WebSocket<S>, msg: Message) -> io::Result<()> {
    match ws.write(msg) {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(ws_err(e)),
    }
}
