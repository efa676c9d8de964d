//! One Noren server message, parsed with simd-json into a fixed-size [`Update`].
//!
//! simd-json parses in place: the text is copied into a buffer the [`Parser`] owns (with the
//! padding simd-json reads past the end), and its tape and scratch buffers are reused message after
//! message, so once they have grown to the largest message seen nothing is allocated. The tape is
//! walked by hand: a flat object of string values, keys matched by their bytes.
//!
//! Every value is a string (`"lp":"118.55"`). Prices become tickwire's fixed point (10^-7 rupee)
//! straight from the decimal text ([`tickwire_engine::price::parse`]: digits, never a float);
//! quantities and times are unsigned integers. A bare JSON integer is accepted too. An empty string
//! is taken as "no value" and the field is left out. Anything else in a field tickwire uses makes
//! the message a counted error; fields tickwire does not use (`ts`, `pp`, `ti`, `ls`, `pc`, `poi`,
//! `toi`, `lc`, `uc`, `52h`, `52l`, `ltt`, …) are skipped unread.

use simd_json::{Buffers, Node, StaticNode, Tape};
use tickwire_engine::price::{PRICE_DECIMALS, PRICE_SCALE};

use super::keys::{exchange_code, token_number};
use super::{Excerpt, ParseError};

/// Indices of the fields tickwire keeps, into [`Update::vals`].
pub mod field {
    /// `lp`: last traded price.
    pub const LP: usize = 0;
    /// `ltq`: last traded quantity.
    pub const LTQ: usize = 1;
    /// `ap`: average traded price.
    pub const AP: usize = 2;
    /// `v`: volume.
    pub const V: usize = 3;
    /// `tbq`: total buy quantity.
    pub const TBQ: usize = 4;
    /// `tsq`: total sell quantity.
    pub const TSQ: usize = 5;
    /// `o`: open.
    pub const O: usize = 6;
    /// `h`: high.
    pub const H: usize = 7;
    /// `l`: low.
    pub const L: usize = 8;
    /// `c`: previous close.
    pub const C: usize = 9;
    /// `oi`: open interest.
    pub const OI: usize = 10;
    /// `ft`: feed time, epoch seconds.
    pub const FT: usize = 11;
    /// `bp1`..`bp5`: bid prices (5 slots).
    pub const BP: usize = 12;
    /// `bq1`..`bq5`: bid quantities.
    pub const BQ: usize = 17;
    /// `bo1`..`bo5`: bid orders.
    pub const BO: usize = 22;
    /// `sp1`..`sp5`: ask prices.
    pub const SP: usize = 27;
    /// `sq1`..`sq5`: ask quantities.
    pub const SQ: usize = 32;
    /// `so1`..`so5`: ask orders.
    pub const SO: usize = 37;
    /// Number of fields.
    pub const COUNT: usize = 42;
}

/// Field names by index (for errors and the mock).
pub const NAMES: [&str; field::COUNT] = [
    "lp", "ltq", "ap", "v", "tbq", "tsq", "o", "h", "l", "c", "oi", "ft", "bp1", "bp2", "bp3",
    "bp4", "bp5", "bq1", "bq2", "bq3", "bq4", "bq5", "bo1", "bo2", "bo3", "bo4", "bo5", "sp1",
    "sp2", "sp3", "sp4", "sp5", "sq1", "sq2", "sq3", "sq4", "sq5", "so1", "so2", "so3", "so4",
    "so5",
];

/// True for the fields that are prices.
#[inline]
pub const fn is_price(f: usize) -> bool {
    matches!(
        f,
        field::LP | field::AP | field::O | field::H | field::L | field::C
    ) || (f >= field::BP && f < field::BQ)
        || (f >= field::SP && f < field::SQ)
}

/// The index of a field name tickwire keeps.
#[inline]
pub fn field_index(k: &[u8]) -> Option<usize> {
    use field::*;
    Some(match k {
        b"lp" => LP,
        b"ltq" => LTQ,
        b"ap" => AP,
        b"v" => V,
        b"tbq" => TBQ,
        b"tsq" => TSQ,
        b"o" => O,
        b"h" => H,
        b"l" => L,
        b"c" => C,
        b"oi" => OI,
        b"ft" => FT,
        [a, b, d @ b'1'..=b'5'] => {
            let base = match (a, b) {
                (b'b', b'p') => BP,
                (b'b', b'q') => BQ,
                (b'b', b'o') => BO,
                (b's', b'p') => SP,
                (b's', b'q') => SQ,
                (b's', b'o') => SO,
                _ => return None,
            };
            base + (d - b'1') as usize
        }
        _ => return None,
    })
}

/// A market-data message's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `tk`: touchline snapshot (all fields).
    Tk,
    /// `tf`: touchline update (changed fields only).
    Tf,
    /// `dk`: depth snapshot.
    Dk,
    /// `df`: depth update.
    Df,
}

impl Kind {
    /// A snapshot (`tk`/`dk`) rather than an update.
    #[inline]
    pub fn is_snapshot(self) -> bool {
        matches!(self, Kind::Tk | Kind::Dk)
    }

    /// A depth message (`dk`/`df`).
    #[inline]
    pub fn is_depth(self) -> bool {
        matches!(self, Kind::Dk | Kind::Df)
    }
}

/// One market-data message: the fields it carried (`set`, bit i for [`field`] index i) and their
/// values (prices in fixed point, the rest as integers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// Which message.
    pub kind: Kind,
    /// Exchange code ([`super::keys::EXCHANGES`]).
    pub exchange: u8,
    /// Token number.
    pub token: u32,
    /// Which of `vals` the message carried.
    pub set: u64,
    /// Values by [`field`] index.
    pub vals: [i64; field::COUNT],
}

impl Update {
    /// Value `f` if the message carried it.
    #[inline]
    pub fn get(&self, f: usize) -> Option<i64> {
        (self.set >> f & 1 == 1).then_some(self.vals[f])
    }
}

/// One parsed server message; a market-data update is lent from the parser (no copy of its
/// values per message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// `ck`: the connect ack; `ok` when `s` is `OK`.
    Ack {
        /// `s` said OK.
        ok: bool,
    },
    /// `tk`, `tf`, `dk`, `df`.
    Data(&'a Update),
    /// Any other type (`om` order updates, `uk`/`udk` unsubscribe acks, …): not market data.
    Other,
}

/// The parse state kept between messages (see the module docs).
pub struct Parser {
    buf: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
    /// The update being parsed (only the values its `set` names are meaningful).
    update: Update,
}

impl Default for Parser {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(2048),
            buffers: Buffers::new(2048),
            tape: Some(Tape::null().reset()),
            update: Update {
                kind: Kind::Tf,
                exchange: 0,
                token: 0,
                set: 0,
                vals: [0; field::COUNT],
            },
        }
    }
}

impl Parser {
    /// Parses one text message: each message in it (an object, or each object of an array) goes to
    /// `on`, in order.
    #[inline]
    pub fn parse(&mut self, text: &[u8], mut on: impl FnMut(Result<Message<'_>, ParseError>)) {
        let len = text.len();
        self.buf.clear();
        self.buf.extend_from_slice(text);
        self.buf.resize(len + simd_json::INPUT_PADDING, 0);
        let mut tape: Tape<'_> = self.tape.take().unwrap_or_else(Tape::null).reset();
        match simd_json::fill_tape_padded(&mut self.buf, len, &mut self.buffers, &mut tape) {
            Err(_) => on(Err(ParseError::Json(Excerpt::of(text)))),
            Ok(()) => match tape.0.first() {
                Some(Node::Object { .. }) => {
                    let r = object(&tape.0, text, &mut self.update);
                    on(r.map(|m| m.lend(&self.update)))
                }
                Some(&Node::Array { len: n, .. }) => {
                    let mut i = 1;
                    for _ in 0..n {
                        let Some(node) = tape.0.get(i) else { break };
                        let width = width(node);
                        match node {
                            Node::Object { .. } => {
                                let r = object(&tape.0[i..], text, &mut self.update);
                                on(r.map(|m| m.lend(&self.update)))
                            }
                            _ => on(Err(ParseError::NotObject(Excerpt::of(text)))),
                        }
                        i += width;
                    }
                }
                _ => on(Err(ParseError::NotObject(Excerpt::of(text)))),
            },
        }
        self.tape = Some(tape.reset());
    }
}

/// Nodes a value takes on the tape, itself included.
#[inline]
fn width(n: &Node<'_>) -> usize {
    match n {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// What [`object`] found; `Data` means `u` holds it.
#[derive(Clone, Copy)]
enum Found {
    Ack(bool),
    Data,
    Other,
}

impl Found {
    #[inline]
    fn lend(self, u: &Update) -> Message<'_> {
        match self {
            Found::Ack(ok) => Message::Ack { ok },
            Found::Data => Message::Data(u),
            Found::Other => Message::Other,
        }
    }
}

/// The object starting at `nodes[0]`, its market data into `u`.
#[inline]
fn object(nodes: &[Node<'_>], text: &[u8], u: &mut Update) -> Result<Found, ParseError> {
    let Some(&Node::Object { len, .. }) = nodes.first() else {
        return Err(ParseError::NotObject(Excerpt::of(text)));
    };
    let (mut t, mut s, mut e, mut tk): (&[u8], &[u8], &[u8], &[u8]) = (b"", b"", b"", b"");
    u.set = 0;
    let mut i = 1;
    for _ in 0..len {
        let (Some(Node::String(key)), Some(v)) = (nodes.get(i), nodes.get(i + 1)) else {
            return Err(ParseError::NotObject(Excerpt::of(text)));
        };
        i += 1 + width(v);
        let key = key.as_bytes();
        match key {
            b"t" => t = str_of(v),
            b"s" => s = str_of(v),
            b"e" => e = str_of(v),
            b"tk" => tk = str_of(v),
            _ => {
                if let Some(f) = field_index(key) {
                    if let Some(x) = value(f, v)? {
                        u.vals[f] = x;
                        u.set |= 1 << f;
                    }
                }
            }
        }
    }
    u.kind = match t {
        b"tk" => Kind::Tk,
        b"tf" => Kind::Tf,
        b"dk" => Kind::Dk,
        b"df" => Kind::Df,
        b"ck" => return Ok(Found::Ack(s.eq_ignore_ascii_case(b"ok"))),
        b"" => return Err(ParseError::NoType),
        _ => return Ok(Found::Other),
    };
    u.exchange = exchange_code(e);
    u.token = token_number(tk).ok_or(ParseError::NoToken(Excerpt::of(text)))?;
    if u.exchange == 0 {
        return Err(ParseError::UnknownToken {
            exchange: Excerpt::of(e),
            token: u.token,
        });
    }
    Ok(Found::Data)
}

#[inline]
fn str_of<'a>(v: &Node<'a>) -> &'a [u8] {
    match v {
        Node::String(s) => s.as_bytes(),
        _ => b"",
    }
}

/// Field `f`'s value: `None` for an empty string (no value).
#[inline]
fn value(f: usize, v: &Node<'_>) -> Result<Option<i64>, ParseError> {
    let bad = |b: &[u8]| ParseError::BadValue {
        field: NAMES[f],
        value: Excerpt::of(b),
    };
    match v {
        Node::String("") => Ok(None),
        Node::String(s) if is_price(f) => decimal(s.as_bytes()).map(Some).ok_or(bad(s.as_bytes())),
        Node::String(s) => integer(s.as_bytes()).map(Some).ok_or(bad(s.as_bytes())),
        Node::Static(StaticNode::I64(n)) if *n >= 0 || is_price(f) => scaled(f, *n).ok_or(bad(b"")),
        Node::Static(StaticNode::U64(n)) => {
            let n = i64::try_from(*n).map_err(|_| bad(b""))?;
            scaled(f, n).ok_or(bad(b""))
        }
        _ => Err(bad(b"(not a string)")),
    }
}

fn scaled(f: usize, n: i64) -> Option<Option<i64>> {
    if is_price(f) {
        n.checked_mul(PRICE_SCALE).map(Some)
    } else {
        Some(Some(n))
    }
}

/// A non-negative integer from its decimal text; a fraction of zeros (`"75.00"`) is accepted.
#[inline]
pub fn integer(b: &[u8]) -> Option<i64> {
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(p) => (&b[..p], &b[p + 1..]),
        None => (b, &b[..0]),
    };
    if int.is_empty() || int.len() > 18 || frac.iter().any(|&c| c != b'0') {
        return None;
    }
    let mut v: i64 = 0;
    for &c in int {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// A decimal price (`"118.55"`, `"-0.5"`, `"84.2525"`) in fixed point, in one pass over the
/// bytes: exactly what [`tickwire_engine::price::parse`] accepts (sign, digits, at most 7
/// decimals; nothing else), a few times faster on the 5–10 prices of every message.
#[inline]
pub fn decimal(b: &[u8]) -> Option<i64> {
    let (neg, b) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut int, mut i) = (0i64, 0);
    while i < b.len() && b[i] != b'.' {
        let d = b[i].wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        int = int.checked_mul(10)?.checked_add(d as i64)?;
        i += 1;
    }
    let int_digits = i;
    let mut frac = 0i64;
    let mut n = 0u32;
    if i < b.len() {
        i += 1; // the point
        while i < b.len() {
            let d = b[i].wrapping_sub(b'0');
            if d > 9 || n >= PRICE_DECIMALS {
                return None;
            }
            frac = frac * 10 + d as i64;
            n += 1;
            i += 1;
        }
    }
    if int_digits == 0 && n == 0 {
        return None;
    }
    const POW: [i64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
    let v = int
        .checked_mul(PRICE_SCALE)?
        .checked_add(frac * POW[(PRICE_DECIMALS - n) as usize])?;
    Some(if neg { -v } else { v })
}
