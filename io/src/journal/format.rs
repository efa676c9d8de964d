//! The on-disk format: a segment header, then records. Every offset is a named constant derived
//! from the one before it and pinned by a `const` assertion; `docs/journal-format.md` draws the
//! same picture. All integers are little-endian; records are byte-packed (no alignment), since
//! they are only ever copied, never cast.
//!
//! ```text
//! segment:  header | record | record | ...
//! header:   magic[8] version:u16 feed_count:u16 header_len:u32 created_ns:i64
//!           (feed:u8 name_len:u8 name[name_len]) × feed_count   crc32c:u32
//! record:   len:u32 kind:u8 feed:u8 conn:u8 flags:u8 ts_ns:i64 payload[len-20] crc32c:u32
//! ```

/// First eight bytes of every segment.
pub const MAGIC: [u8; 8] = *b"TWJRNL\r\n";
/// Format version: a reader refuses any other.
pub const VERSION: u16 = 1;

/// Header: `magic`.
pub const H_MAGIC: usize = 0;
/// Header: `version`.
pub const H_VERSION: usize = H_MAGIC + 8;
/// Header: number of feed entries.
pub const H_FEED_COUNT: usize = H_VERSION + 2;
/// Header: total header bytes, entries and CRC included (where the first record starts).
pub const H_LEN: usize = H_FEED_COUNT + 2;
/// Header: when the segment was opened, ns since the Unix epoch.
pub const H_CREATED: usize = H_LEN + 4;
/// Header: the first feed entry.
pub const H_FEEDS: usize = H_CREATED + 8;
/// The smallest header: no feeds, then the CRC.
pub const HEADER_MIN: usize = H_FEEDS + 4;
/// The largest header: 256 feeds with 255-byte names. A reader refuses a larger `header_len`.
pub const HEADER_MAX: usize = H_FEEDS + 256 * (2 + 255) + 4;
const _: () = assert!(H_FEEDS == 24 && HEADER_MIN == 28);

/// Record: total record bytes, this field and the CRC included.
pub const R_LEN: usize = 0;
/// Record: [`Kind`].
pub const R_KIND: usize = R_LEN + 4;
/// Record: the feed (appender) id.
pub const R_FEED: usize = R_KIND + 1;
/// Record: the connection within the feed.
pub const R_CONN: usize = R_FEED + 1;
/// Record: flag bits ([`FLAG_BINARY`]).
pub const R_FLAGS: usize = R_CONN + 1;
/// Record: receive time (frames) or event time, ns since the Unix epoch.
pub const R_TS: usize = R_FLAGS + 1;
/// Record: the payload.
pub const R_PAYLOAD: usize = R_TS + 8;
/// Bytes of a record before its payload.
pub const RECORD_HEAD: usize = R_PAYLOAD;
/// The CRC32C after the payload, over every byte of the record before it.
pub const CRC_LEN: usize = 4;
/// The smallest record: no payload.
pub const RECORD_MIN: usize = RECORD_HEAD + CRC_LEN;
/// The largest payload the writer accepts and a reader believes (a WebSocket frame is far
/// smaller; a larger `len` is damage, not data).
pub const PAYLOAD_MAX: usize = 16 << 20;
/// The largest record.
pub const RECORD_MAX: usize = RECORD_MIN + PAYLOAD_MAX;
const _: () = assert!(R_TS == 8 && RECORD_HEAD == 16 && RECORD_MIN == 20);

/// Frame flag: the WebSocket frame was binary (else text).
pub const FLAG_BINARY: u8 = 1;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// One upstream frame, byte for byte.
    Frame = 1,
    /// The connection came up. No payload.
    Connect = 2,
    /// The connection went down. Payload: the reason, UTF-8.
    Disconnect = 3,
    /// Payload: mode (1 ltp, 2 quote, 3 depth), then a symbol list.
    Subscribe = 4,
    /// Payload: a symbol list.
    Unsubscribe = 5,
    /// Records the appender dropped because its ring was full. Payload: the count, u64.
    Gap = 6,
    /// A feed registered after the segment opened. Payload: the broker name, UTF-8.
    Feed = 7,
    /// The symbol registry and each symbol's feed and broker key, at the start of every segment
    /// (`super::catalog`).
    Catalog = 8,
    /// An instrument key the protocol learned while running (Fyers' fytoken). Payload: a symbol
    /// list of two entries, the symbol (`NSE:SBIN`) and the value.
    Learned = 9,
}

impl Kind {
    /// The kind for a byte, `None` for an unknown one.
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Frame,
            2 => Kind::Connect,
            3 => Kind::Disconnect,
            4 => Kind::Subscribe,
            5 => Kind::Unsubscribe,
            6 => Kind::Gap,
            7 => Kind::Feed,
            8 => Kind::Catalog,
            9 => Kind::Learned,
            _ => return None,
        })
    }

    /// Lower-case name, for tools.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Frame => "frame",
            Kind::Connect => "connect",
            Kind::Disconnect => "disconnect",
            Kind::Subscribe => "subscribe",
            Kind::Unsubscribe => "unsubscribe",
            Kind::Gap => "gap",
            Kind::Feed => "feed",
            Kind::Catalog => "catalog",
            Kind::Learned => "learned",
        }
    }
}

/// Most symbols one list holds (the count is a u16); the rest are not recorded.
pub const SYMBOLS_MAX: usize = u16::MAX as usize;

/// Bytes of a symbol list: count:u16, then per symbol len:u8 and the bytes. Symbols longer than
/// 255 bytes are cut (no exchange symbol comes close), lists past [`SYMBOLS_MAX`] too.
pub fn symbols_len(symbols: &[&str]) -> usize {
    2 + symbols
        .iter()
        .take(SYMBOLS_MAX)
        .map(|s| 1 + s.len().min(255))
        .sum::<usize>()
}

/// The symbols of a list written by [`symbols_len`]'s layout; stops at the first malformed entry.
pub fn symbols(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (count, mut rest) = match payload {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => (0, &[][..]),
    };
    (0..count).map_while(move |_| {
        let (&n, tail) = rest.split_first()?;
        let s = tail.get(..usize::from(n))?;
        rest = &tail[usize::from(n)..];
        Some(s)
    })
}

/// Encodes a segment header for `feeds` (id, broker name; names cut to 255 bytes).
pub fn encode_header(created_ns: i64, feeds: &[(u8, String)]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_MIN + feeds.len() * 16);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&(feeds.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0; 4]); // header_len, below
    h.extend_from_slice(&created_ns.to_le_bytes());
    for (id, name) in feeds {
        let name = &name.as_bytes()[..name.len().min(255)];
        h.push(*id);
        h.push(name.len() as u8);
        h.extend_from_slice(name);
    }
    let len = (h.len() + CRC_LEN) as u32;
    h[H_LEN..H_LEN + 4].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// A decoded segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// When the segment was opened, ns since the Unix epoch.
    pub created_ns: i64,
    /// Feed ids and broker names.
    pub feeds: Vec<(u8, String)>,
    /// Header bytes: where the first record starts.
    pub len: usize,
}

/// Why a header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than the header needs (a segment cut while being created).
    #[error("short header ({0} bytes)")]
    Short(usize),
    /// Not a journal segment.
    #[error("not a tickwire journal segment (bad magic)")]
    Magic,
    /// A version this reader does not know.
    #[error("journal format version {0}, this build reads {VERSION}")]
    Version(u16),
    /// Inconsistent lengths or entries.
    #[error("malformed header: {0}")]
    Malformed(&'static str),
    /// The header's CRC does not match.
    #[error("header checksum mismatch")]
    Crc,
}

/// The header length a header's fixed part declares, once [`H_FEEDS`] bytes are known.
pub fn header_len(fixed: &[u8]) -> Result<usize, HeaderError> {
    if fixed.len() < H_FEEDS {
        return Err(HeaderError::Short(fixed.len()));
    }
    if fixed[H_MAGIC..H_MAGIC + 8] != MAGIC {
        return Err(HeaderError::Magic);
    }
    let version = u16::from_le_bytes([fixed[H_VERSION], fixed[H_VERSION + 1]]);
    if version != VERSION {
        return Err(HeaderError::Version(version));
    }
    let len = u32_at(fixed, H_LEN) as usize;
    if !(HEADER_MIN..=HEADER_MAX).contains(&len) {
        return Err(HeaderError::Malformed("header_len out of range"));
    }
    Ok(len)
}

/// Decodes a whole header (`bytes` holds exactly [`header_len`] bytes).
pub fn decode_header(bytes: &[u8]) -> Result<Header, HeaderError> {
    let len = header_len(bytes)?;
    if bytes.len() != len {
        return Err(HeaderError::Short(bytes.len()));
    }
    let body = &bytes[..len - CRC_LEN];
    if crc32c::crc32c(body) != u32_at(bytes, len - CRC_LEN) {
        return Err(HeaderError::Crc);
    }
    let count = u16::from_le_bytes([bytes[H_FEED_COUNT], bytes[H_FEED_COUNT + 1]]);
    let created_ns =
        i64::from_le_bytes(bytes[H_CREATED..H_CREATED + 8].try_into().unwrap_or([0; 8]));
    let mut rest = &body[H_FEEDS..];
    let mut feeds = Vec::with_capacity(usize::from(count).min(256));
    for _ in 0..count {
        let [id, n, tail @ ..] = rest else {
            return Err(HeaderError::Malformed("feed entry past the end"));
        };
        let name = tail
            .get(..usize::from(*n))
            .ok_or(HeaderError::Malformed("feed name past the end"))?;
        feeds.push((*id, String::from_utf8_lossy(name).into_owned()));
        rest = &tail[usize::from(*n)..];
    }
    if !rest.is_empty() {
        return Err(HeaderError::Malformed("bytes after the feed entries"));
    }
    Ok(Header {
        created_ns,
        feeds,
        len,
    })
}

/// The u32 at `at` (the caller checked the bounds).
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes the 16-byte record head: `len` is the whole record on disk, CRC included.
pub fn record_head(
    len: u32,
    kind: Kind,
    feed: u8,
    conn: u8,
    flags: u8,
    ts_ns: i64,
) -> [u8; RECORD_HEAD] {
    let mut h = [0u8; RECORD_HEAD];
    h[R_LEN..R_LEN + 4].copy_from_slice(&len.to_le_bytes());
    h[R_KIND] = kind as u8;
    h[R_FEED] = feed;
    h[R_CONN] = conn;
    h[R_FLAGS] = flags;
    h[R_TS..R_TS + 8].copy_from_slice(&ts_ns.to_le_bytes());
    h
}

/// A whole record with its CRC (the writer's own records and tests; appenders leave the CRC to
/// the writer thread).
pub fn encode_record(
    kind: Kind,
    feed: u8,
    conn: u8,
    flags: u8,
    ts_ns: i64,
    payload: &[u8],
) -> Vec<u8> {
    let len = RECORD_MIN + payload.len();
    let mut r = Vec::with_capacity(len);
    r.extend_from_slice(&record_head(len as u32, kind, feed, conn, flags, ts_ns));
    r.extend_from_slice(payload);
    let crc = crc32c::crc32c(&r);
    r.extend_from_slice(&crc.to_le_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let feeds = vec![(0, "kite".to_string()), (3, "upstox".to_string())];
        let h = encode_header(42, &feeds);
        let d = decode_header(&h).unwrap();
        assert_eq!(
            d,
            Header {
                created_ns: 42,
                feeds,
                len: h.len()
            }
        );
    }

    #[test]
    fn header_damage_is_named() {
        let mut h = encode_header(1, &[(1, "x".into())]);
        let n = h.len();
        h[n - 6] ^= 1;
        assert_eq!(decode_header(&h), Err(HeaderError::Crc));
        h[0] = b'X';
        assert_eq!(header_len(&h), Err(HeaderError::Magic));
        assert_eq!(header_len(&h[..10]), Err(HeaderError::Short(10)));
    }

    #[test]
    fn symbol_lists_round_trip_and_survive_truncation() {
        let mut p = vec![2, 0, 8];
        p.extend_from_slice(b"NSE:SBIN");
        p.push(3);
        p.extend_from_slice(b"BSE");
        assert_eq!(symbols_len(&["NSE:SBIN", "BSE"]), p.len());
        let got: Vec<_> = symbols(&p).collect();
        assert_eq!(got, vec![&b"NSE:SBIN"[..], b"BSE"]);
        assert_eq!(symbols(&p[..5]).count(), 0);
        assert_eq!(symbols(&[]).count(), 0);
    }

    #[test]
    fn record_crc_covers_everything_before_it() {
        let r = encode_record(Kind::Frame, 1, 2, FLAG_BINARY, -5, b"abc");
        assert_eq!(r.len(), RECORD_MIN + 3);
        assert_eq!(u32_at(&r, 0) as usize, r.len());
        assert_eq!(crc32c::crc32c(&r[..r.len() - 4]), u32_at(&r, r.len() - 4));
    }
}
