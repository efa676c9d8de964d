//! The Kite feed thread: mio + tungstenite client over ws:// or wss://.
//!
//! State machine: `Idle(retry at)` → (`Resolving` a host name on a helper thread) → TCP connect →
//! WebSocket handshake (query `api_key`, `access_token`, header `X-Kite-Version: 3`) → `Open`,
//! where every binary frame is parsed straight into ticks. No data (not even a heartbeat) for `dead_after` → drop and reconnect with
//! backoff; on every (re)connect, subscribe every wanted token **and set its mode again** (Kite
//! forgets both with the connection).
//!
//! Ticks leave either through the SPSC ring to the router thread (whose doorbell is rung once per
//! frame) or, when the router runs inline on this thread, straight into the router's tick path,
//! with a router pass after every frame and every wake-up; the router's doorbell then wakes this
//! thread's poller (`WAKE`).

use std::collections::BTreeMap;
use std::io;
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use tickwire_engine::clock::now_ns;
use tickwire_engine::doorbell::Doorbell;
use tickwire_engine::router::{Inline, Mode, Upstream};
use tickwire_engine::Tick;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{ClientHandshake, Message, WebSocket};

use super::backoff::Backoff;
use super::stream::Stream;
use super::{upstream_state, FeedStatus};
use crate::kite::{self, TokenMap};

const SOCK: Token = Token(0);
/// Most bytes tungstenite asks the socket for per read. It zero-fills that much of its buffer before
/// every read (tungstenite 0.30, `FrameCodec::read_in`), so its 128 KiB default cost ~1 µs a read,
/// on every frame's path; 16 KiB still takes a 1 M ticks/s frame (~24 KB) in two reads.
/// `bench e2e` at 100 k/s: mock send → shm p50 7.5 → 6.7 µs.
const READ_CHUNK: usize = 16 * 1024;
/// Longest wait for a host name's address before the attempt counts as failed.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The inline router's doorbell wakes the poller through this token.
const WAKE: Token = Token(1);

/// Kite feed settings.
#[derive(Clone, Debug)]
pub struct KiteFeedConfig {
    /// `wss://ws.kite.trade` for Kite; `ws://127.0.0.1:PORT` for the mock.
    pub url: String,
    /// Kite API key.
    pub api_key: String,
    /// Kite access token.
    pub access_token: String,
    /// No data for this long → reconnect.
    pub dead_after: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Largest WebSocket message accepted.
    pub max_message: usize,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Extra CA certificates (PEM) trusted for wss:// besides the Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for KiteFeedConfig {
    fn default() -> Self {
        Self {
            url: "wss://ws.kite.trade".into(),
            api_key: String::new(),
            access_token: String::new(),
            dead_after: Duration::from_secs(5),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            max_message: 4 << 20,
            core: None,
            ca_file: None,
        }
    }
}

/// What the thread is given.
pub struct KiteFeed {
    /// Settings.
    pub cfg: KiteFeedConfig,
    /// Token → symbol id.
    pub tokens: TokenMap,
    /// Symbol id → token (0 = not a Kite symbol).
    pub token_of: Vec<u32>,
    /// Ticks to the router (unused when the router runs inline).
    pub ticks: rtrb::Producer<Tick>,
    /// Demand changes from the router.
    pub upstream: rtrb::Consumer<Upstream>,
    /// Shared status.
    pub status: Arc<FeedStatus>,
    /// Rung after each frame's ticks are pushed, so a parked router wakes at once.
    pub router_bell: Option<Arc<Doorbell>>,
    /// The router, when it runs on this thread ([`Inline`]): a pass runs after every frame and
    /// after every wake-up, and its doorbell wakes this thread's poller.
    pub inline_router: Option<Box<dyn Inline>>,
}

enum Conn {
    Idle {
        retry_at: Instant,
    },
    /// A host name being resolved on a helper thread: `getaddrinfo` blocks (seconds, when a DNS
    /// server does not answer), and this thread may be running the router inline.
    Resolving {
        rx: std::sync::mpsc::Receiver<io::Result<std::net::SocketAddr>>,
        host: String,
        tls: bool,
        since: Instant,
    },
    Connecting {
        tcp: Option<mio::net::TcpStream>,
        host: String,
        tls: bool,
        since: Instant,
    },
    Handshaking(MidHandshake<ClientHandshake<Stream>>, Instant),
    Open {
        ws: WebSocket<Stream>,
        last_data: Instant,
    },
}

impl KiteFeed {
    /// Starts the thread; it runs until `stop` is set.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("tickwire-feed-kite".into())
            .spawn(move || {
                if let Err(e) = tickwire_engine::affinity::pin_current(self.cfg.core) {
                    eprintln!("kite feed: {e}; running unpinned");
                }
                let mut me = self;
                if let Err(e) = me.run(&stop) {
                    eprintln!("kite feed: stopped: {e}");
                }
            })
    }

    fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(64);
        let inline_bell = match &self.inline_router {
            Some(r) => {
                let waker = mio::Waker::new(poll.registry(), WAKE)?;
                r.set_wake(Box::new(move || {
                    let _ = waker.wake();
                }));
                Some(r.doorbell())
            }
            None => None,
        };
        let mut wanted: BTreeMap<u32, Mode> = BTreeMap::new();
        let mut backoff = Backoff::new(self.cfg.backoff_min, self.cfg.backoff_max, now_ns() as u64);
        let mut conn = Conn::Idle {
            retry_at: Instant::now(),
        };
        while !stop.load(Ordering::Relaxed) {
            let timeout = match conn {
                Conn::Idle { retry_at } => retry_at
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(5)),
                _ => Duration::from_millis(1),
            };
            match (&mut self.inline_router, &inline_bell) {
                (Some(router), Some(bell)) => {
                    // Announce the sleep, then look once more (see `Doorbell`): a control pushed
                    // before the announcement is seen here, one pushed after it wakes the poller.
                    // Demand the last pass produced is sent before sleeping, too.
                    bell.will_sleep();
                    let t = if router.has_input() || !self.upstream.is_empty() {
                        Duration::ZERO
                    } else {
                        timeout
                    };
                    let r = poll.poll(&mut events, Some(t));
                    bell.awake();
                    r?;
                }
                _ => poll.poll(&mut events, Some(timeout))?,
            }
            // Demand changes: apply to `wanted`, and tell the broker now if connected.
            let mut subs: Vec<u32> = Vec::new();
            let mut unsubs: Vec<u32> = Vec::new();
            let mut modes: BTreeMap<Mode, Vec<u32>> = BTreeMap::new();
            while let Ok(cmd) = self.upstream.pop() {
                let (sym, mode) = match cmd {
                    Upstream::Subscribe { symbol, mode } => (symbol, Some(mode)),
                    Upstream::Unsubscribe { symbol } => (symbol, None),
                };
                let token = self.token_of.get(sym as usize).copied().unwrap_or(0);
                if token == 0 {
                    self.set_state(sym, upstream_state::REJECTED);
                    continue;
                }
                match mode {
                    Some(m) => {
                        if wanted.insert(token, m).is_none() {
                            subs.push(token);
                        }
                        modes.entry(m).or_default().push(token);
                        if self.status.symbol_state(sym) != upstream_state::LIVE {
                            self.set_state(sym, upstream_state::PENDING);
                        }
                    }
                    None => {
                        wanted.remove(&token);
                        unsubs.push(token);
                        self.set_state(sym, upstream_state::NONE);
                    }
                }
            }
            if let Conn::Open { ws, .. } = &mut conn {
                let r = send_demand(ws, &subs, &unsubs, &modes);
                if let Err(e) = r {
                    conn = self.fail(&mut poll, conn, format!("send: {e}"), &mut backoff);
                }
            }
            conn = match conn {
                Conn::Idle { retry_at } if Instant::now() >= retry_at => {
                    match self.connect(&mut poll) {
                        Ok(c) => c,
                        Err(e) => self.retry_later(format!("connect: {e}"), &mut backoff),
                    }
                }
                Conn::Resolving {
                    rx,
                    host,
                    tls,
                    since,
                } => match rx.try_recv() {
                    Ok(Ok(addr)) => match self.dial(&mut poll, addr, host, tls) {
                        Ok(c) => c,
                        Err(e) => self.retry_later(format!("connect: {e}"), &mut backoff),
                    },
                    Ok(Err(e)) => self.retry_later(format!("resolve {host}: {e}"), &mut backoff),
                    Err(std::sync::mpsc::TryRecvError::Empty)
                        if since.elapsed() < RESOLVE_TIMEOUT =>
                    {
                        Conn::Resolving {
                            rx,
                            host,
                            tls,
                            since,
                        }
                    }
                    Err(_) => self.retry_later(
                        format!("resolve {host}: no answer within {RESOLVE_TIMEOUT:?}"),
                        &mut backoff,
                    ),
                },
                Conn::Connecting {
                    mut tcp,
                    host,
                    tls,
                    since,
                } => {
                    let sock = tcp.as_mut().expect("present until handshake");
                    match sock.peer_addr() {
                        Ok(_) => {
                            let stream = tcp.take().expect("present");
                            self.start_handshake(stream, &host, tls, &mut backoff, &wanted)
                        }
                        Err(e)
                            if e.kind() == io::ErrorKind::NotConnected
                                && since.elapsed() < Duration::from_secs(5) =>
                        {
                            Conn::Connecting {
                                tcp,
                                host,
                                tls,
                                since,
                            }
                        }
                        Err(e) => self.fail(
                            &mut poll,
                            Conn::Connecting {
                                tcp,
                                host,
                                tls,
                                since,
                            },
                            format!("connect: {e}"),
                            &mut backoff,
                        ),
                    }
                }
                Conn::Handshaking(mid, since) => match mid.handshake() {
                    Ok((ws, resp)) => self.opened(ws, resp, &wanted),
                    Err(HandshakeError::Interrupted(mid))
                        if since.elapsed() < Duration::from_secs(10) =>
                    {
                        Conn::Handshaking(mid, since)
                    }
                    Err(HandshakeError::Interrupted(_)) => {
                        self.retry_later("handshake timed out".into(), &mut backoff)
                    }
                    Err(HandshakeError::Failure(e)) => {
                        self.retry_later(handshake_error(e), &mut backoff)
                    }
                },
                Conn::Open {
                    mut ws,
                    mut last_data,
                } => match self.read_frames(&mut ws, &mut last_data) {
                    Ok(()) if last_data.elapsed() > self.cfg.dead_after => {
                        let msg = format!(
                            "no data for {:?}: connection presumed dead",
                            self.cfg.dead_after
                        );
                        self.fail(&mut poll, Conn::Open { ws, last_data }, msg, &mut backoff)
                    }
                    Ok(()) => {
                        if last_data.elapsed() < Duration::from_millis(10) {
                            backoff.reset();
                        }
                        Conn::Open { ws, last_data }
                    }
                    Err(e) => self.fail(&mut poll, Conn::Open { ws, last_data }, e, &mut backoff),
                },
                other => other,
            };
            // The inline router's pass over controls, flush and heartbeat comes after the frames:
            // a frame that woke the poller is read first (each frame has had its own pass).
            if let Some(r) = &mut self.inline_router {
                r.pass();
            }
        }
        if let Conn::Open { mut ws, .. } = conn {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        self.status.connected.store(false, Ordering::Relaxed);
        if let Some(r) = self.inline_router.take() {
            r.finish();
        }
        Ok(())
    }

    fn set_state(&self, sym: u32, st: u8) {
        if let Some(s) = self.status.symbols.get(sym as usize) {
            s.store(st, Ordering::Relaxed);
        }
    }

    fn connect(&mut self, poll: &mut Poll) -> io::Result<Conn> {
        let url = &self.cfg.url;
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(io::Error::other(format!(
                "feed url {url:?} must start with ws:// or wss://"
            )));
        };
        let hostport = rest.split(['/', '?']).next().unwrap_or(rest);
        let host = hostport
            .rsplit_once(':')
            .map_or(hostport, |(h, _)| h)
            .to_string();
        let with_port = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:{}", if tls { 443 } else { 80 })
        };
        // An address literal needs no lookup; a name is resolved on a helper thread (it blocks).
        if let Ok(addr) = with_port.parse::<std::net::SocketAddr>() {
            return self.dial(poll, addr, host, tls);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("tickwire-resolve".into())
            .spawn(move || {
                // The first IPv4 address if there is one: brokers publish IPv4, and a host
                // whose name also maps to ::1 (localhost) may listen on IPv4 only.
                let r = with_port.to_socket_addrs().and_then(|a| {
                    let all: Vec<_> = a.collect();
                    all.iter()
                        .find(|a| a.is_ipv4())
                        .or(all.first())
                        .copied()
                        .ok_or_else(|| io::Error::other(format!("{with_port}: no address")))
                });
                let _ = tx.send(r); // the feed may have given up waiting
            })?;
        Ok(Conn::Resolving {
            rx,
            host,
            tls,
            since: Instant::now(),
        })
    }

    /// Starts a non-blocking TCP connect to `addr`.
    fn dial(
        &mut self,
        poll: &mut Poll,
        addr: std::net::SocketAddr,
        host: String,
        tls: bool,
    ) -> io::Result<Conn> {
        let mut tcp = mio::net::TcpStream::connect(addr)?;
        poll.registry()
            .register(&mut tcp, SOCK, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn::Connecting {
            tcp: Some(tcp),
            host,
            tls,
            since: Instant::now(),
        })
    }

    fn start_handshake(
        &mut self,
        tcp: mio::net::TcpStream,
        host: &str,
        tls: bool,
        backoff: &mut Backoff,
        wanted: &BTreeMap<u32, Mode>,
    ) -> Conn {
        let _ = tcp.set_nodelay(true);
        let stream = if tls {
            match Stream::tls(tcp, host, self.cfg.ca_file.as_deref()) {
                Ok(s) => s,
                Err(e) => return self.retry_later(format!("tls: {e}"), backoff),
            }
        } else {
            Stream::Plain(tcp)
        };
        let sep = if self.cfg.url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{sep}api_key={}&access_token={}",
            self.cfg.url, self.cfg.api_key, self.cfg.access_token
        );
        let mut req = match url.into_client_request() {
            Ok(r) => r,
            Err(e) => return self.retry_later(format!("request: {e}"), backoff),
        };
        req.headers_mut().insert(
            "X-Kite-Version",
            tungstenite::http::HeaderValue::from_static("3"),
        );
        let cfg = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            .max_message_size(Some(self.cfg.max_message))
            .max_frame_size(Some(self.cfg.max_message));
        match tungstenite::client::client_with_config(req, stream, Some(cfg)) {
            Ok((ws, resp)) => self.opened(ws, resp, wanted),
            Err(HandshakeError::Interrupted(mid)) => Conn::Handshaking(mid, Instant::now()),
            Err(HandshakeError::Failure(e)) => self.retry_later(handshake_error(e), backoff),
        }
    }

    fn opened(
        &mut self,
        mut ws: WebSocket<Stream>,
        _resp: Response,
        wanted: &BTreeMap<u32, Mode>,
    ) -> Conn {
        self.status.connected.store(true, Ordering::Relaxed);
        self.status.connects.fetch_add(1, Ordering::Relaxed);
        // Re-subscribe and re-set modes: a new connection starts with nothing.
        let subs: Vec<u32> = wanted.keys().copied().collect();
        let mut modes: BTreeMap<Mode, Vec<u32>> = BTreeMap::new();
        for (&t, &m) in wanted {
            modes.entry(m).or_default().push(t);
        }
        for &t in wanted.keys() {
            if let Some(&id) = self.tokens.get(&t) {
                self.set_state(id, upstream_state::PENDING);
            }
        }
        if let Err(e) = send_demand(&mut ws, &subs, &[], &modes) {
            self.status.set_error(format!("resubscribe: {e}"));
        }
        Conn::Open {
            ws,
            last_data: Instant::now(),
        }
    }

    /// Drops the connection, records why, schedules the next attempt.
    fn fail(&mut self, poll: &mut Poll, conn: Conn, why: String, backoff: &mut Backoff) -> Conn {
        match conn {
            Conn::Connecting {
                tcp: Some(mut t), ..
            } => {
                let _ = poll.registry().deregister(&mut t);
            }
            Conn::Open { mut ws, .. } => {
                let _ = poll.registry().deregister(ws.get_mut().tcp());
            }
            _ => {}
        }
        self.retry_later(why, backoff)
    }

    /// Records why the connection (or the attempt) ended and schedules the next attempt.
    fn retry_later(&mut self, why: String, backoff: &mut Backoff) -> Conn {
        if self.status.connected.swap(false, Ordering::Relaxed) {
            eprintln!("kite feed: disconnected: {why}");
        }
        self.status.set_error(why);
        Conn::Idle {
            retry_at: Instant::now() + backoff.next_delay(),
        }
    }

    /// Reads until the socket would block. Returns an error text when the connection must go.
    fn read_frames(
        &mut self,
        ws: &mut WebSocket<Stream>,
        last_data: &mut Instant,
    ) -> Result<(), String> {
        loop {
            match ws.read() {
                Ok(Message::Binary(frame)) => {
                    *last_data = Instant::now();
                    self.status.frames.fetch_add(1, Ordering::Relaxed);
                    self.on_frame(&frame);
                }
                Ok(Message::Text(t)) => {
                    *last_data = Instant::now();
                    self.on_text(t.as_str());
                }
                Ok(Message::Close(c)) => return Err(format!("closed by broker: {c:?}")),
                Ok(_) => *last_data = Instant::now(),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        match ws.flush() {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(format!("flush: {e}")),
        }
    }

    fn on_frame(&mut self, frame: &[u8]) {
        let recv = now_ns();
        let (ticks, status, inline) = (&mut self.ticks, &self.status, &mut self.inline_router);
        let live = |id: u32| {
            if let Some(s) = status.symbols.get(id as usize) {
                if s.load(Ordering::Relaxed) == upstream_state::PENDING {
                    s.store(upstream_state::LIVE, Ordering::Relaxed);
                }
            }
        };
        let st = kite::parse_frame_marked(
            frame,
            recv,
            &self.tokens,
            |t, last| {
                live(t.symbol_id);
                let mut t = t;
                // Inline, the tick goes straight into the router's tick path: the reader can take
                // it while the rest of the frame is still being parsed.
                if let Some(r) = inline {
                    r.tick(t, last);
                    return;
                }
                // Bounded and lossless: if the router is behind, wait for room (TCP pushes back
                // on the broker) rather than drop; count the waits.
                loop {
                    match ticks.push(t) {
                        Ok(()) => break,
                        Err(rtrb::PushError::Full(back)) => {
                            t = back;
                            status.ring_waits.fetch_add(1, Ordering::Relaxed);
                            std::thread::yield_now();
                        }
                    }
                }
            },
            |e| {
                if status.parse_errors.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("kite feed: bad packet: {e}");
                }
            },
        );
        self.status
            .ticks
            .fetch_add(st.ticks as u64, Ordering::Relaxed);
        if st.ticks > 0 {
            if let Some(r) = &mut self.inline_router {
                r.pass();
            } else if let Some(b) = &self.router_bell {
                b.ring();
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        // Order updates and messages are account-scoped, not market data; errors are counted and
        // any pending tokens they name are marked rejected.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        if v.get("type").and_then(|t| t.as_str()) != Some("error") {
            return;
        }
        self.status.broker_errors.fetch_add(1, Ordering::Relaxed);
        let data = v.get("data").map(|d| d.to_string()).unwrap_or_default();
        eprintln!("kite feed: broker error: {data}");
        for num in data
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok())
        {
            if let Some(&id) = self.tokens.get(&num) {
                if self.status.symbol_state(id) == upstream_state::PENDING {
                    self.set_state(id, upstream_state::REJECTED);
                }
            }
        }
    }
}

fn handshake_error(e: tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) if resp.status() == 403 => {
            "broker refused the api_key/access_token (HTTP 403)".into()
        }
        e => format!("handshake: {e}"),
    }
}

fn send_demand(
    ws: &mut WebSocket<Stream>,
    subs: &[u32],
    unsubs: &[u32],
    modes: &BTreeMap<Mode, Vec<u32>>,
) -> Result<(), tungstenite::Error> {
    let mut msgs = Vec::new();
    if !unsubs.is_empty() {
        msgs.push(kite::control("unsubscribe", unsubs));
    }
    if !subs.is_empty() {
        msgs.push(kite::control("subscribe", subs));
    }
    for (m, toks) in modes {
        if !toks.is_empty() {
            msgs.push(kite::mode_message(*m, toks));
        }
    }
    for m in msgs {
        match ws.write(Message::Text(m.into())) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    match ws.flush() {
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        r => r,
    }
}
