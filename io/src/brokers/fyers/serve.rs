//! The mock broker's side of the wire: server packets encoded (the shapes [`super::packet`]
//! parses) and client packets parsed (the shapes [`super::request`] encodes). Nothing here runs
//! in tickwire's feed; it lives beside the codec so that the mock in `tools/` and tickwire cannot
//! drift apart, and the golden frames in the tests pin both ends.
//!
//! A client packet's length prefix is ignored: the SDK writes garbage there (0 on the mode packet,
//! a sum including the access token's length on subscribe), so a server must take the boundary
//! from the WebSocket frame, as this parser does.

use super::packet::{put_field, record, resp, Fields};
use super::request::req;
use super::ParseError;

/// Why the mock's encoder refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A value that does not fit its length field (a string over 255 bytes, over 255 values,
    /// over 65,535 records or a packet over 65,535 bytes).
    #[error("{0} does not fit its length field")]
    TooLong(&'static str),
}

/// Starts a packet: length placeholder and type.
fn begin(ty: u8) -> Vec<u8> {
    vec![0, 0, ty]
}

/// Writes the true length into the prefix.
fn seal(mut p: Vec<u8>) -> Result<Vec<u8>, EncodeError> {
    let n = u16::try_from(p.len() - 2).map_err(|_| EncodeError::TooLong("packet"))?;
    p[..2].copy_from_slice(&n.to_be_bytes());
    Ok(p)
}

/// Auth reply: status `K` (or `N`) and the ack interval.
pub fn auth_reply(ok: bool, ack_every: u32) -> Vec<u8> {
    let mut p = begin(resp::AUTH);
    p.push(2);
    put_field(&mut p, 1, if ok { b"K" } else { b"N" });
    put_field(&mut p, 2, &ack_every.to_be_bytes());
    seal(p).unwrap_or_default()
}

/// Reply to a subscribe, unsubscribe, pause, resume or mode request (`of`, a [`resp`] type).
pub fn status_reply(of: u8, ok: bool) -> Vec<u8> {
    let mut p = begin(of);
    p.push(1);
    put_field(&mut p, 1, if ok { b"K" } else { b"N" });
    seal(p).unwrap_or_default()
}

/// A custom message (type 51).
pub fn message(code: i32, text: &str, ref_type: u8) -> Result<Vec<u8>, EncodeError> {
    if text.len() > u16::MAX as usize {
        return Err(EncodeError::TooLong("message text"));
    }
    let mut p = begin(resp::MESSAGE);
    p.push(3);
    put_field(&mut p, 1, &code.to_be_bytes());
    put_field(&mut p, 2, text.as_bytes());
    put_field(&mut p, 3, &[ref_type]);
    seal(p)
}

/// What a snapshot record carries, for [`DataWriter::snapshot`].
#[derive(Clone, Copy, Debug)]
pub struct SnapshotSpec<'a> {
    /// Two bytes the server chooses.
    pub topic_id: [u8; 2],
    /// The topic as the client subscribed it.
    pub name: &'a str,
    /// Values, positional ([`super::packet::ABSENT`] for none).
    pub values: &'a [i32],
    /// Price multiplier.
    pub multiplier: u16,
    /// Price decimals.
    pub precision: u8,
    /// `NSE`.
    pub exchange: &'a str,
    /// `3045`.
    pub exchange_token: &'a str,
    /// `SBIN-EQ`.
    pub symbol: &'a str,
}

/// Builds one data packet (type 6) record by record.
pub struct DataWriter {
    buf: Vec<u8>,
    count: u16,
}

impl DataWriter {
    /// A packet with message number `msg_number`.
    pub fn new(msg_number: u32) -> Self {
        let mut buf = begin(resp::DATA);
        buf.extend_from_slice(&msg_number.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        Self { buf, count: 0 }
    }

    /// Records so far.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True before any record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Checked before a record is written, so a refused record leaves no bytes behind.
    fn room(&self) -> Result<(), EncodeError> {
        if self.count == u16::MAX {
            return Err(EncodeError::TooLong("record count"));
        }
        Ok(())
    }

    fn counted(&mut self) -> Result<&mut Self, EncodeError> {
        self.count += 1;
        Ok(self)
    }

    fn short(&mut self, s: &[u8], what: &'static str) -> Result<(), EncodeError> {
        let n = u8::try_from(s.len()).map_err(|_| EncodeError::TooLong(what))?;
        self.buf.push(n);
        self.buf.extend_from_slice(s);
        Ok(())
    }

    fn values(&mut self, v: &[i32]) -> Result<(), EncodeError> {
        let n = u8::try_from(v.len()).map_err(|_| EncodeError::TooLong("values"))?;
        self.buf.push(n);
        for x in v {
            self.buf.extend_from_slice(&x.to_be_bytes());
        }
        Ok(())
    }

    /// Appends an `S` record.
    pub fn snapshot(&mut self, s: &SnapshotSpec<'_>) -> Result<&mut Self, EncodeError> {
        self.room()?;
        let mark = self.buf.len();
        let res = (|| {
            self.buf.push(record::SNAPSHOT);
            self.buf.extend_from_slice(&s.topic_id);
            self.short(s.name.as_bytes(), "topic name")?;
            self.values(s.values)?;
            self.buf.extend_from_slice(&[0, 0]);
            self.buf.extend_from_slice(&s.multiplier.to_be_bytes());
            self.buf.push(s.precision);
            self.short(s.exchange.as_bytes(), "exchange")?;
            self.short(s.exchange_token.as_bytes(), "exchange token")?;
            self.short(s.symbol.as_bytes(), "symbol")
        })();
        if let Err(e) = res {
            self.buf.truncate(mark);
            return Err(e);
        }
        self.counted()
    }

    /// Appends a `U` record.
    pub fn update(&mut self, topic_id: [u8; 2], values: &[i32]) -> Result<&mut Self, EncodeError> {
        self.room()?;
        let mark = self.buf.len();
        self.buf.push(record::UPDATE);
        self.buf.extend_from_slice(&topic_id);
        if let Err(e) = self.values(values) {
            self.buf.truncate(mark);
            return Err(e);
        }
        self.counted()
    }

    /// Appends an `L` record.
    pub fn lite(&mut self, topic_id: [u8; 2], ltp: i32) -> Result<&mut Self, EncodeError> {
        self.room()?;
        self.buf.push(record::LITE);
        self.buf.extend_from_slice(&topic_id);
        self.buf.extend_from_slice(&ltp.to_be_bytes());
        self.counted()
    }

    /// The packet, with its true length and record count.
    pub fn finish(mut self) -> Result<Vec<u8>, EncodeError> {
        self.buf[7..9].copy_from_slice(&self.count.to_be_bytes());
        seal(self.buf)
    }
}

/// One client packet, as the mock reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientPacket<'a> {
    /// Type 1.
    Auth {
        /// Field 1.
        hsm_key: &'a str,
        /// Field 4.
        source: &'a str,
    },
    /// Type 12.
    Mode {
        /// Field 1: `1 << channel`.
        channel_bits: u64,
        /// Field 2: [`super::request::FULL`] or [`super::request::LITE`].
        mode: u8,
    },
    /// Type 4 (`subscribe` true) or 5.
    Topics {
        /// Subscribe, not unsubscribe.
        subscribe: bool,
        /// Field 2.
        channel: u8,
        /// Field 1.
        topics: TopicList<'a>,
    },
    /// Type 3.
    Ack {
        /// The message number acknowledged.
        msg_number: u32,
    },
    /// Type 11.
    Ping,
    /// Anything else (7/8 channel pause/resume).
    Other(u8),
}

/// The topic names of a subscribe or unsubscribe packet, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicList<'a> {
    /// Topics declared.
    pub count: u16,
    list: &'a [u8],
}

impl<'a> TopicList<'a> {
    /// The names; a name cut short or not UTF-8 ends the list with an error.
    pub fn iter(&self) -> impl Iterator<Item = Result<&'a str, ParseError>> + 'a {
        let mut rest = self.list;
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let Some((&n, tail)) = rest.split_first().filter(|(n, t)| t.len() >= **n as usize)
            else {
                left = 0;
                return Some(Err(ParseError::Malformed(
                    "topic list in a subscribe packet",
                )));
            };
            let (name, tail) = tail.split_at(n as usize);
            rest = tail;
            Some(std::str::from_utf8(name).map_err(|_| ParseError::NotUtf8))
        })
    }
}

/// Parses one client packet (one WebSocket binary frame), ignoring its length prefix.
pub fn parse_client(frame: &[u8]) -> Result<ClientPacket<'_>, ParseError> {
    let &ty = frame.get(2).ok_or(ParseError::Short { len: frame.len() })?;
    let text = |v| std::str::from_utf8(v).map_err(|_| ParseError::NotUtf8);
    match ty {
        req::PING => Ok(ClientPacket::Ping),
        req::AUTH => {
            let (mut hsm_key, mut source) = (None, "");
            for f in Fields::of(frame)? {
                match f? {
                    (1, v) => hsm_key = Some(text(v)?),
                    (4, v) => source = text(v)?,
                    _ => {}
                }
            }
            let hsm_key = hsm_key.ok_or(ParseError::Malformed("auth packet"))?;
            Ok(ClientPacket::Auth { hsm_key, source })
        }
        req::MODE => {
            let (mut channel_bits, mut mode) = (None, None);
            for f in Fields::of(frame)? {
                match f? {
                    (1, v) => channel_bits = v.try_into().ok().map(u64::from_be_bytes),
                    (2, [m]) => mode = Some(*m),
                    _ => {}
                }
            }
            match (channel_bits, mode) {
                (Some(channel_bits), Some(mode)) => Ok(ClientPacket::Mode { channel_bits, mode }),
                _ => Err(ParseError::Malformed("mode packet")),
            }
        }
        req::SUBSCRIBE | req::UNSUBSCRIBE => {
            let (mut topics, mut channel) = (None, None);
            for f in Fields::of(frame)? {
                match f? {
                    (1, [c0, c1, list @ ..]) => {
                        topics = Some(TopicList {
                            count: u16::from_be_bytes([*c0, *c1]),
                            list,
                        })
                    }
                    (2, [c]) => channel = Some(*c),
                    _ => {}
                }
            }
            match (topics, channel) {
                (Some(topics), Some(channel)) => Ok(ClientPacket::Topics {
                    subscribe: ty == req::SUBSCRIBE,
                    channel,
                    topics,
                }),
                _ => Err(ParseError::Malformed("subscribe packet")),
            }
        }
        req::ACK => {
            for f in Fields::of(frame)? {
                if let (1, v) = f? {
                    if let Ok(b) = <[u8; 4]>::try_from(v) {
                        return Ok(ClientPacket::Ack {
                            msg_number: u32::from_be_bytes(b),
                        });
                    }
                }
            }
            Err(ParseError::Malformed("ack packet"))
        }
        other => Ok(ClientPacket::Other(other)),
    }
}
