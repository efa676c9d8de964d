//! What makes the mock speak one broker: a [`Dialect`] (its HTTP endpoints and how it accepts an
//! upgrade) and, per WebSocket connection, a [`Session`] (what the client asked for and how the
//! market's updates go on the wire). The server (`server.rs`) and the market (`market.rs`) are the
//! same for every broker.

use std::net::SocketAddr;

use tickwire_engine::router::Mode;
use tickwire_io::http::Head;
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::Repr;
use tungstenite::Message;

use super::config::MockConfig;

/// What a dialect may read about the mock: its settings, address and instruments.
pub struct Ctx<'a> {
    /// Settings (credentials, rate).
    pub cfg: &'a MockConfig,
    /// The mock's own address (for redirect and authorize URIs).
    pub addr: SocketAddr,
    /// `wss://` and `https://`.
    pub tls: bool,
    /// Every instrument's master row, in market order (an instrument's index is its position).
    pub rows: &'a [Instrument],
}

impl Ctx<'_> {
    /// `ws://127.0.0.1:P` or `wss://…`.
    pub fn ws_base(&self) -> String {
        format!("{}://{}", if self.tls { "wss" } else { "ws" }, self.addr)
    }

    /// `http://127.0.0.1:P` or `https://…`.
    pub fn http_base(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// True for an index row.
    pub fn is_index(&self, i: usize) -> bool {
        self.rows.get(i).is_some_and(|r| r.segment == "INDICES")
    }
}

/// A complete HTTP response.
#[derive(Clone, Debug)]
pub struct Reply {
    /// `200 OK`, `302 Found`, …
    pub status: &'static str,
    /// Content type of `body`.
    pub content_type: &'static str,
    /// Extra headers (`Location`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A response with no extra headers.
    pub fn new(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The bytes on the wire (the connection closes after it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// One broker's way of speaking (see the module docs).
pub trait Dialect: Send + Sync {
    /// `kite`, `upstox`.
    fn name(&self) -> &'static str;
    /// Answers a plain HTTP request (`None`: not this dialect's: 404).
    fn http(&self, head: &Head, body: &[u8], ctx: &Ctx<'_>) -> Option<Reply>;
    /// Accepts an upgrade (`Ok`) or answers it instead (refusal, redirect).
    fn upgrade(&self, head: &Head, ctx: &Ctx<'_>) -> Result<(), Reply>;
    /// The state of a connection [`Dialect::upgrade`] accepted, from its request (Dhan accepts
    /// every well-formed upgrade and refuses bad credentials inside the socket, by packet 50).
    fn session(&self, head: &Head, ctx: &Ctx<'_>) -> Box<dyn Session>;
    /// Sent about every second on every connection (Kite's 1-byte heartbeat).
    fn heartbeat(&self) -> Option<Message> {
        None
    }
}

/// One WebSocket connection's broker-side state.
pub trait Session: Send {
    /// Messages sent right after the upgrade (Upstox's `market_info`).
    fn on_open(&mut self, _ctx: &Ctx<'_>, _out: &mut Vec<Message>) {}
    /// The mode the client wants instrument `i` in, if any.
    fn wants(&self, i: usize) -> Option<Mode>;
    /// Applies a client message: replies go to `out`; instruments whose current value must be sent
    /// at once (a snapshot after a subscribe or a mode change) go to `fresh`.
    fn on_message(
        &mut self,
        msg: &Message,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
        fresh: &mut Vec<usize>,
    );
    /// Encodes updates `(instrument, state)` of instruments this session wants; `snapshot` is true
    /// for the values sent right after a subscribe.
    fn encode(
        &mut self,
        updates: &[(usize, Repr)],
        snapshot: bool,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
    );
}
