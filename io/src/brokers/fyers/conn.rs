//! What lives and dies with one connection: packets held until the auth reply, the topics this
//! connection subscribed, the topic ids the server's snapshots bound, the ack counter, and the
//! data path (records → ticks).
//!
//! Topic ids are the server's choice per connection, so all of this is dropped on reconnect
//! ([`super::Fyers`] keeps only what outlives a connection: the ticker → topic answers).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tickwire_engine::Tick;
use tungstenite::Message;

use super::packet::{DataPacket, Record};
use super::request;
use super::state::TopicState;
use super::topic::Kind;
use super::{Excerpt, ParseError};
use crate::feed::FeedError;

/// See the module docs.
#[derive(Default)]
pub(super) struct Conn {
    /// The auth reply said `K`.
    pub authed: bool,
    /// Subscriptions made before that, in order.
    pub held: Vec<Message>,
    /// Data packets between acks (0: no acks).
    pub ack_every: u32,
    /// Data packets since the last ack.
    unacked: u32,
    /// Symbols whose topics are subscribed (or held), with the mode they were subscribed in.
    pub subscribed: HashMap<SymbolId, Mode>,
    /// Symbols waiting for their fytoken, with the mode wanted.
    pub waiting: HashMap<SymbolId, Mode>,
    /// Topic name → (symbol, kind), for the names this connection subscribed.
    pub topics: HashMap<Box<str>, (SymbolId, Kind)>,
    /// Topic id → state, bound by snapshots.
    by_id: HashMap<[u8; 2], TopicState>,
    /// Symbols that have had a snapshot.
    pub snapshotted: HashSet<SymbolId>,
    /// The symbols of the latest subscribe packets (what a 51001 refers to).
    pub last_subscribe: Vec<SymbolId>,
    /// Asked-for symbols Fyers already said it does not know: rejected at the next poll.
    pub rejects: Vec<SymbolId>,
    /// A failure found outside `poll` (the resolver thread could not start): reported by it.
    pub error: Option<FeedError>,
}

impl Conn {
    /// Sends `packets` now, or holds them until the auth reply.
    pub fn queue(&mut self, packets: Vec<Vec<u8>>, out: &mut Vec<Message>) {
        let to = if self.authed { out } else { &mut self.held };
        to.extend(packets.into_iter().map(|p| Message::Binary(p.into())));
    }

    /// The auth reply said `K`: what was held goes out.
    pub fn authenticated(&mut self, ack_every: u32, out: &mut Vec<Message>) {
        self.authed = true;
        self.ack_every = ack_every;
        out.append(&mut self.held);
    }

    /// Forgets the topic states of `symbols` (of `kind` only, if given).
    pub fn drop_states(&mut self, symbols: &HashSet<SymbolId>, kind: Option<Kind>) {
        if !symbols.is_empty() {
            self.by_id.retain(|_, st| {
                !(symbols.contains(&st.symbol) && kind.is_none_or(|k| k == st.kind))
            });
        }
    }

    /// Applies one record and returns the state of its topic.
    #[inline]
    fn apply(&mut self, r: Record<'_>) -> Result<&TopicState, ParseError> {
        match r {
            Record::Snapshot(s) => {
                let &(symbol, kind) = self
                    .topics
                    .get(s.name)
                    .ok_or_else(|| ParseError::UnknownTopic(Excerpt::of(s.name.as_bytes())))?;
                let mut st = TopicState::new(symbol, kind, s.multiplier, s.precision)?;
                st.merge(s.values);
                self.snapshotted.insert(symbol);
                Ok(match self.by_id.entry(s.topic_id) {
                    Entry::Occupied(mut o) => {
                        o.insert(st);
                        o.into_mut()
                    }
                    Entry::Vacant(v) => v.insert(st),
                })
            }
            Record::Update { topic_id, values } => {
                let st = self
                    .by_id
                    .get_mut(&topic_id)
                    .ok_or(ParseError::UnknownTopicId(topic_id))?;
                st.merge(values);
                Ok(st)
            }
            Record::Lite { topic_id, ltp } => {
                let st = self
                    .by_id
                    .get_mut(&topic_id)
                    .ok_or(ParseError::UnknownTopicId(topic_id))?;
                st.set_ltp(ltp)?;
                Ok(st)
            }
        }
    }

    /// One data packet: each record's topic's merged tick goes to `on` with its `last` mark (true
    /// for the packet's final tick), a bad record as an error; then the ack goes to `out` if one
    /// is due.
    #[inline]
    pub fn on_data(
        &mut self,
        d: DataPacket<'_>,
        recv_ts_ns: i64,
        out: &mut Vec<Message>,
        mut on: impl FnMut(Result<(Tick, bool), ParseError>),
    ) {
        // One tick is held back so the packet's final tick can be marked `last`.
        let mut held: Option<Tick> = None;
        for r in d.records() {
            match r.and_then(|r| self.apply(r)) {
                Ok(st) => {
                    let mut t = Tick::new(st.symbol);
                    t.recv_ts_ns = recv_ts_ns;
                    st.fill(&mut t);
                    if let Some(prev) = held.replace(t) {
                        on(Ok((prev, false)));
                    }
                }
                Err(e) => on(Err(e)),
            }
        }
        if let Some(t) = held {
            on(Ok((t, true)));
        }
        if self.ack_every > 0 {
            self.unacked += 1;
            if self.unacked >= self.ack_every {
                self.unacked = 0;
                out.push(Message::Binary(request::ack(d.msg_number).into()));
            }
        }
    }
}
