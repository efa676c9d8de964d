//! Each recorded connection's broker protocol, driven by the journal's events as the live feed
//! drove it: a connect resets it and lets it send its opening messages, a subscribe or unsubscribe
//! is encoded as the live connection encoded it (so a stateful protocol, such as Noren's merged
//! touchlines, is in the same state), and every frame is parsed by it. What a protocol would send
//! is dropped: a replay never talks to a broker.

use std::collections::HashMap;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::{split_key, SymbolId, SymbolRegistry};
use tungstenite::Message;

use crate::feed::protocol::{BrokerProtocol, Incoming, Request};
use crate::feed::{FeedError, ProtocolFactory, TickSink};

/// One recorded connection.
struct Conn {
    protocol: Box<dyn BrokerProtocol>,
    /// What it carries, and in which mode: a subscribe for a symbol it has is a mode change.
    subscribed: HashMap<SymbolId, Mode>,
}

/// Every connection of one feed.
pub(super) struct FeedConns {
    factory: ProtocolFactory,
    /// By connection id (a frame's lookup is an index: a replay does it per frame).
    conns: Vec<Option<Conn>>,
    /// Messages the protocols would have sent, dropped after each call.
    out: Vec<Message>,
    ids: Vec<SymbolId>,
    changes: Vec<SymbolId>,
}

impl FeedConns {
    pub fn new(factory: ProtocolFactory) -> Self {
        Self {
            factory,
            conns: (0..=u8::MAX).map(|_| None).collect(),
            out: Vec::new(),
            ids: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// The connection opened: a fresh protocol state, as before a live dial.
    pub fn connect(&mut self, c: u8) {
        let conn = conn(&mut self.conns, &self.factory, c);
        conn.protocol.reset();
        conn.subscribed.clear();
        conn.protocol.on_open(&mut self.out);
        self.out.clear();
    }

    /// The connection closed: what it carried is gone.
    pub fn disconnect(&mut self, c: u8) {
        if let Some(conn) = self.conns[c as usize].as_mut() {
            conn.subscribed.clear();
        }
    }

    /// Looks the recorded names up; returns how many were not in the registry.
    fn resolve<'a>(&mut self, reg: &SymbolRegistry, names: impl Iterator<Item = &'a [u8]>) -> u64 {
        self.ids.clear();
        let mut unknown = 0;
        for n in names {
            let id = std::str::from_utf8(n)
                .ok()
                .and_then(split_key)
                .and_then(|(x, s)| reg.lookup(x, s));
            match id {
                Some(id) => self.ids.push(id),
                None => unknown += 1,
            }
        }
        unknown
    }

    /// A recorded subscribe: new symbols are subscribed, ones already carried change mode.
    /// Returns the names not in the registry.
    pub fn subscribe<'a>(
        &mut self,
        c: u8,
        reg: &SymbolRegistry,
        mode: u8,
        names: impl Iterator<Item = &'a [u8]>,
    ) -> u64 {
        let unknown = self.resolve(reg, names);
        let Some(mode) = Mode::from_number(mode) else {
            return unknown + self.ids.len() as u64;
        };
        let mut ids = std::mem::take(&mut self.ids);
        let mut changes = std::mem::take(&mut self.changes);
        let conn = conn(&mut self.conns, &self.factory, c);
        changes.clear();
        ids.retain(|&id| match conn.subscribed.insert(id, mode) {
            None => true,
            Some(_) => {
                changes.push(id);
                false
            }
        });
        if !ids.is_empty() {
            let req = Request::Subscribe {
                mode,
                symbols: &ids,
            };
            conn.protocol.encode(req, &mut self.out);
        }
        if !changes.is_empty() {
            let req = Request::ChangeMode {
                mode,
                symbols: &changes,
            };
            conn.protocol.encode(req, &mut self.out);
        }
        self.out.clear();
        (self.ids, self.changes) = (ids, changes);
        unknown
    }

    /// A recorded unsubscribe. Returns the names not in the registry.
    pub fn unsubscribe<'a>(
        &mut self,
        c: u8,
        reg: &SymbolRegistry,
        names: impl Iterator<Item = &'a [u8]>,
    ) -> u64 {
        let unknown = self.resolve(reg, names);
        let mut ids = std::mem::take(&mut self.ids);
        let conn = conn(&mut self.conns, &self.factory, c);
        ids.retain(|id| conn.subscribed.remove(id).is_some());
        if !ids.is_empty() {
            let req = Request::Unsubscribe { symbols: &ids };
            conn.protocol.encode(req, &mut self.out);
        }
        self.out.clear();
        self.ids = ids;
        unknown
    }

    /// A recorded key the live protocol learned (Fyers' fytoken). Returns 1 when the symbol is
    /// not in the registry.
    pub fn learn(&mut self, c: u8, reg: &SymbolRegistry, name: &[u8], value: Option<&[u8]>) -> u64 {
        if self.resolve(reg, std::iter::once(name)) > 0 {
            return 1;
        }
        let (Some(&id), Some(Ok(value))) = (self.ids.first(), value.map(std::str::from_utf8))
        else {
            return 0;
        };
        let conn = conn(&mut self.conns, &self.factory, c);
        conn.protocol.learn(id, value, &mut self.out);
        self.out.clear();
        0
    }

    /// One recorded frame, parsed into `sink`.
    pub fn frame(
        &mut self,
        c: u8,
        msg: Incoming<'_>,
        recv_ts_ns: i64,
        sink: &mut TickSink<'_>,
    ) -> Result<(), FeedError> {
        let conn = conn(&mut self.conns, &self.factory, c);
        let r = conn
            .protocol
            .on_message(msg, recv_ts_ns, sink, &mut self.out);
        self.out.clear();
        r
    }
}

/// Connection `c`, made with a fresh protocol the first time it is met (a journal read from a
/// segment after its connect).
fn conn<'a>(conns: &'a mut [Option<Conn>], factory: &ProtocolFactory, c: u8) -> &'a mut Conn {
    conns[c as usize].get_or_insert_with(|| Conn {
        protocol: factory(),
        subscribed: HashMap::new(),
    })
}
