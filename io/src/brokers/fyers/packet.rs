//! Server → client packets: a parser over borrowed bytes that never allocates and never reads out
//! of bounds (the mock's encoders for the same shapes are in [`super::serve`]).
//!
//! Every packet is `u16 BE length, u8 type, …`, one per WebSocket binary frame. The frame is the
//! packet's boundary: the length prefix is not trusted (the SDK never reads it either).
//!
//! - Control replies (types 1, 4, 5, 7, 8, 12, 51) are `u8 field count` then TLV fields
//!   `u8 id, u16 BE length, value` ([`Fields`]).
//! - Market data (type 6) is `u32 BE message number, u16 BE record count` then records back to
//!   back with no lengths: the parser must understand every record to find the next one, so a
//!   record it cannot read ends the packet with an error ([`Records`]). Records:
//!   - `S` snapshot: topic id (2 opaque bytes), `u8` name length + topic name, `u8` value count +
//!     values (`i32 BE`), 2 skipped bytes, `u16 BE` multiplier, `u8` precision, three `u8`-length
//!     strings (exchange, exchange token, symbol);
//!   - `U` update: topic id, `u8` value count + values;
//!   - `L` lite update: topic id, one `i32 BE` (the LTP).
//!
//! `i32::MIN` is "no value / unchanged" ([`ABSENT`]). The topic id is only ever a map key: SDKs
//! disagree on its byte order, so it is kept as the two bytes the server sent.

use super::ParseError;

/// Response types.
pub mod resp {
    /// Auth reply.
    pub const AUTH: u8 = 1;
    /// Subscribe reply.
    pub const SUBSCRIBE: u8 = 4;
    /// Unsubscribe reply.
    pub const UNSUBSCRIBE: u8 = 5;
    /// Market data.
    pub const DATA: u8 = 6;
    /// Channel pause reply.
    pub const PAUSE: u8 = 7;
    /// Channel resume reply.
    pub const RESUME: u8 = 8;
    /// Lite / full mode reply.
    pub const MODE: u8 = 12;
    /// Custom message (errors and notices, e.g. 51001 symbol limit).
    pub const MESSAGE: u8 = 51;
}

/// Record types in a data packet.
pub mod record {
    /// Snapshot.
    pub const SNAPSHOT: u8 = b'S';
    /// Full-mode update.
    pub const UPDATE: u8 = b'U';
    /// Lite-mode update.
    pub const LITE: u8 = b'L';
}

/// "No value" / "unchanged".
pub const ABSENT: i32 = i32::MIN;

/// Custom message code: the plan's symbol limit was exceeded.
pub const SYMBOL_LIMIT_EXCEEDED: i32 = 51001;

/// One server packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerPacket<'a> {
    /// Type 1: `ok` is the status `K`; acks are due every `ack_every` data packets (0: never).
    Auth {
        /// Status `K`.
        ok: bool,
        /// Data packets between acks.
        ack_every: u32,
    },
    /// Types 4, 5, 7, 8, 12: `ok` is the status `K`.
    Status {
        /// Which request this answers ([`resp`]).
        of: u8,
        /// Status `K`.
        ok: bool,
    },
    /// Type 6.
    Data(DataPacket<'a>),
    /// Type 51.
    Message {
        /// Field 1.
        code: i32,
        /// Field 2.
        text: &'a str,
        /// Field 3: the request type it concerns (1, 4, 5, 7, 8), 0 when absent.
        ref_type: u8,
    },
    /// Any other type (11 ping replies, 13 "master data"): ignored.
    Other(u8),
}

/// Parses one packet (one WebSocket binary frame).
pub fn parse(frame: &[u8]) -> Result<ServerPacket<'_>, ParseError> {
    let short = ParseError::Short { len: frame.len() };
    let &ty = frame.get(2).ok_or(short)?;
    match ty {
        resp::DATA => DataPacket::new(frame).map(ServerPacket::Data),
        resp::AUTH => {
            let (mut ok, mut ack_every) = (false, 0);
            for f in Fields::of(frame)? {
                match f? {
                    (1, v) => ok = v == b"K",
                    (2, v) => ack_every = be_u32(v).unwrap_or(0),
                    _ => {}
                }
            }
            Ok(ServerPacket::Auth { ok, ack_every })
        }
        resp::SUBSCRIBE | resp::UNSUBSCRIBE | resp::PAUSE | resp::RESUME | resp::MODE => {
            let mut ok = false;
            for f in Fields::of(frame)? {
                if let (1, v) = f? {
                    ok = v == b"K";
                }
            }
            Ok(ServerPacket::Status { of: ty, ok })
        }
        resp::MESSAGE => {
            let (mut code, mut text, mut ref_type) = (0, "", 0);
            for f in Fields::of(frame)? {
                match f? {
                    (1, v) => code = be_u32(v).map_or(0, |c| c as i32),
                    (2, v) => text = std::str::from_utf8(v).map_err(|_| ParseError::NotUtf8)?,
                    (3, [r]) => ref_type = *r,
                    _ => {}
                }
            }
            Ok(ServerPacket::Message {
                code,
                text,
                ref_type,
            })
        }
        other => Ok(ServerPacket::Other(other)),
    }
}

fn be_u32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

/// The TLV fields of a control packet: `(id, value)`, or an error (then nothing more) when a field
/// runs past the end.
pub struct Fields<'a> {
    rest: &'a [u8],
    left: u8,
}

impl<'a> Fields<'a> {
    /// The fields of `packet` (length, type and field count at 0..4).
    pub fn of(packet: &'a [u8]) -> Result<Self, ParseError> {
        match packet {
            [_, _, _, n, rest @ ..] => Ok(Self { rest, left: *n }),
            _ => Err(ParseError::Short { len: packet.len() }),
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u8, &'a [u8]), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let [id, a, b, rest @ ..] = self.rest else {
            self.left = 0;
            let id = self.rest.first().copied().unwrap_or(0);
            return Some(Err(ParseError::FieldPastEnd { id }));
        };
        let n = u16::from_be_bytes([*a, *b]) as usize;
        if rest.len() < n {
            self.left = 0;
            return Some(Err(ParseError::FieldPastEnd { id: *id }));
        }
        let (v, rest) = rest.split_at(n);
        self.rest = rest;
        Some(Ok((*id, v)))
    }
}

/// A type-6 packet's header; [`DataPacket::records`] walks its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataPacket<'a> {
    /// What an ack acknowledges.
    pub msg_number: u32,
    /// Records declared.
    pub count: u16,
    body: &'a [u8],
}

impl<'a> DataPacket<'a> {
    /// Reads the header of a data packet.
    pub fn new(frame: &'a [u8]) -> Result<Self, ParseError> {
        match frame {
            [_, _, _, m0, m1, m2, m3, c0, c1, body @ ..] => Ok(Self {
                msg_number: u32::from_be_bytes([*m0, *m1, *m2, *m3]),
                count: u16::from_be_bytes([*c0, *c1]),
                body,
            }),
            _ => Err(ParseError::Short { len: frame.len() }),
        }
    }

    /// The records.
    pub fn records(&self) -> Records<'a> {
        Records {
            rest: self.body,
            index: 0,
            count: self.count,
        }
    }
}

/// A record's `i32 BE` values, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Values<'a>(&'a [u8]);

impl<'a> Values<'a> {
    /// How many values.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Value `i` as sent ([`ABSENT`] included); `None` past the end.
    pub fn raw(&self, i: usize) -> Option<i32> {
        let b = self.0.get(i * 4..i * 4 + 4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Every value as sent, in order.
    pub fn iter(&self) -> impl Iterator<Item = i32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// An `S` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot<'a> {
    /// The id later updates use.
    pub topic_id: [u8; 2],
    /// The topic as subscribed (`sf|nse_cm|3045`).
    pub name: &'a str,
    /// Values, positional.
    pub values: Values<'a>,
    /// Prices are `raw / (10^precision × multiplier)`.
    pub multiplier: u16,
    /// See `multiplier`.
    pub precision: u8,
    /// `NSE`.
    pub exchange: &'a str,
    /// `3045`.
    pub exchange_token: &'a str,
    /// `SBIN-EQ`.
    pub symbol: &'a str,
}

/// One record of a data packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// `S`.
    Snapshot(Snapshot<'a>),
    /// `U`: values positional from field 0.
    Update {
        /// Bound by an earlier snapshot.
        topic_id: [u8; 2],
        /// Values ([`ABSENT`]: unchanged).
        values: Values<'a>,
    },
    /// `L`: a new LTP.
    Lite {
        /// Bound by an earlier snapshot.
        topic_id: [u8; 2],
        /// Raw LTP.
        ltp: i32,
    },
}

impl Record<'_> {
    /// The record's topic id.
    pub fn topic_id(&self) -> [u8; 2] {
        match self {
            Record::Snapshot(s) => s.topic_id,
            Record::Update { topic_id, .. } | Record::Lite { topic_id, .. } => *topic_id,
        }
    }
}

/// The records of a data packet. After an error it yields nothing more: with no record lengths,
/// nothing after a record that cannot be read can be found.
pub struct Records<'a> {
    rest: &'a [u8],
    index: u16,
    count: u16,
}

impl Records<'_> {
    /// Records declared and not yet read (0 after the last one, or after an error).
    pub fn remaining(&self) -> u16 {
        self.count - self.index
    }
}

/// A cursor over one record's bytes; every read is checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn id(&mut self) -> Option<[u8; 2]> {
        let b = self.take(2)?;
        Some([b[0], b[1]])
    }

    fn u16(&mut self) -> Option<u16> {
        self.id().map(u16::from_be_bytes)
    }

    /// `u8` length + bytes.
    fn short_bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }

    /// `u8` count + that many `i32`.
    fn values(&mut self) -> Option<Values<'a>> {
        let n = self.u8()? as usize;
        self.take(n * 4).map(Values)
    }
}

fn text(b: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(b).map_err(|_| ParseError::NotUtf8)
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let cut = ParseError::Truncated {
            index: self.index,
            count: self.count,
        };
        let mut c = Cursor(self.rest);
        let res = (|| {
            let ty = c.u8().ok_or(cut)?;
            let topic_id = c.id().ok_or(cut)?;
            Ok(match ty {
                record::SNAPSHOT => {
                    let name = text(c.short_bytes().ok_or(cut)?)?;
                    let values = c.values().ok_or(cut)?;
                    c.take(2).ok_or(cut)?;
                    let multiplier = c.u16().ok_or(cut)?;
                    let precision = c.u8().ok_or(cut)?;
                    let exchange = c.short_bytes().ok_or(cut)?;
                    let exchange_token = c.short_bytes().ok_or(cut)?;
                    let symbol = c.short_bytes().ok_or(cut)?;
                    Record::Snapshot(Snapshot {
                        topic_id,
                        name,
                        values,
                        multiplier,
                        precision,
                        exchange: text(exchange)?,
                        exchange_token: text(exchange_token)?,
                        symbol: text(symbol)?,
                    })
                }
                record::UPDATE => Record::Update {
                    topic_id,
                    values: c.values().ok_or(cut)?,
                },
                record::LITE => {
                    let b = c.take(4).ok_or(cut)?;
                    Record::Lite {
                        topic_id,
                        ltp: i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    }
                }
                other => return Err(ParseError::UnknownRecord(other)),
            })
        })();
        match res {
            Ok(r) => {
                self.index += 1;
                self.rest = c.0;
                Some(Ok(r))
            }
            Err(e) => {
                self.index = self.count;
                Some(Err(e))
            }
        }
    }
}

/// Appends a TLV field (both directions write them; a value is cut at 64 KiB).
pub(crate) fn put_field(p: &mut Vec<u8>, id: u8, v: &[u8]) {
    p.push(id);
    p.extend_from_slice(&(v.len().min(u16::MAX as usize) as u16).to_be_bytes());
    p.extend_from_slice(&v[..v.len().min(u16::MAX as usize)]);
}
