//! Reading a journal back: [`SegmentReader`] walks one segment's records, [`Segments`] every
//! segment of a journal directory in order (day directories, then sequence numbers). A damaged
//! last record (cut short, a bad CRC, or a zero-filled tail a crash can leave) is a torn tail:
//! skipped and reported. Damage with good records after it is an error naming file and offset.
//! Any bytes at all give records or errors, never a panic (`fuzz/fuzz_targets/journal_read.rs`).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::format::{
    self, Header, HeaderError, Kind, CRC_LEN, RECORD_HEAD, RECORD_MAX, RECORD_MIN,
};

/// Why a journal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The segment header is refused.
    #[error("{path}: {source}")]
    Header {
        /// The segment.
        path: PathBuf,
        /// Why.
        source: HeaderError,
    },
    /// A damaged record with data after it: not a torn tail.
    #[error("{path}: corrupt record at offset {offset}: {why}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the record in the file.
        offset: u64,
        /// What is wrong.
        why: &'static str,
    },
}

/// A torn last record: where it starts and how many bytes were skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Byte offset of the torn record (0: the header itself was cut).
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
}

/// One record, borrowed from the reader until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// What it holds.
    pub kind: Kind,
    /// The feed (appender) id.
    pub feed: u8,
    /// The connection within the feed.
    pub conn: u8,
    /// Flag bits ([`format::FLAG_BINARY`]).
    pub flags: u8,
    /// Receive time (frames) or event time, ns since the epoch.
    pub ts_ns: i64,
    /// Byte offset in its segment.
    pub offset: u64,
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> Record<'a> {
    /// The records a gap record says were dropped.
    pub fn gap_missed(&self) -> Option<u64> {
        match (self.kind, self.payload) {
            (Kind::Gap, [a, b, c, d, e, f, g, h]) => {
                Some(u64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]))
            }
            _ => None,
        }
    }

    /// A frame's binary flag.
    pub fn binary(&self) -> bool {
        self.flags & format::FLAG_BINARY != 0
    }

    /// The symbols of a subscribe or unsubscribe record.
    pub fn symbols(&self) -> impl Iterator<Item = &'a [u8]> {
        let list = match self.kind {
            Kind::Subscribe => self.payload.get(1..).unwrap_or_default(),
            Kind::Unsubscribe => self.payload,
            _ => &[],
        };
        format::symbols(list)
    }

    /// A subscribe record's mode (1 ltp, 2 quote, 3 depth).
    pub fn mode(&self) -> Option<u8> {
        (self.kind == Kind::Subscribe)
            .then(|| self.payload.first().copied())
            .flatten()
    }
}

/// One segment's records, from any reader of its bytes.
pub struct SegmentReader<R> {
    src: R,
    path: PathBuf,
    /// File length: damage that reaches it is a torn tail.
    len: u64,
    pos: u64,
    header: Header,
    buf: Vec<u8>,
    torn: Option<TornTail>,
    done: bool,
}

impl SegmentReader<BufReader<File>> {
    /// Opens a segment file and reads its header.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let io_err = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = File::open(path).map_err(io_err)?;
        let len = f.metadata().map_err(io_err)?.len();
        SegmentReader::new(BufReader::with_capacity(1 << 20, f), path, len)
    }
}

impl<R: Read> SegmentReader<R> {
    /// Reads the header of a segment of `len` bytes from `src`; `path` names it in errors. A
    /// header cut short is a torn tail at offset 0 (the segment has no records).
    pub fn new(mut src: R, path: &Path, len: u64) -> Result<Self, ReadError> {
        let path = path.to_path_buf();
        let mut fixed = [0u8; format::H_FEEDS];
        let got = read_full(&mut src, &mut fixed).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        let empty = Header {
            created_ns: 0,
            feeds: Vec::new(),
            len: 0,
        };
        let header = if got < fixed.len() {
            None
        } else {
            let hlen = format::header_len(&fixed).map_err(|source| ReadError::Header {
                path: path.clone(),
                source,
            })?;
            let mut h = vec![0u8; hlen];
            h[..fixed.len()].copy_from_slice(&fixed);
            let more =
                read_full(&mut src, &mut h[fixed.len()..]).map_err(|source| ReadError::Io {
                    path: path.clone(),
                    source,
                })?;
            if fixed.len() + more < hlen {
                None
            } else {
                match format::decode_header(&h) {
                    Ok(h) => Some(h),
                    // A header whose CRC fails at the very end of the file was being written.
                    Err(HeaderError::Crc) if hlen as u64 >= len => None,
                    Err(source) => return Err(ReadError::Header { path, source }),
                }
            }
        };
        let (header, torn, done) = match header {
            Some(h) => (h, None, false),
            None => (
                empty,
                Some(TornTail {
                    path: path.clone(),
                    offset: 0,
                    bytes: len,
                }),
                true,
            ),
        };
        let pos = if done { len } else { header.len as u64 };
        Ok(SegmentReader {
            src,
            path,
            len,
            pos,
            header,
            buf: Vec::new(),
            torn,
            done,
        })
    }

    /// The header (empty when the header itself was torn).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The torn tail, once the records before it were read.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    /// The segment's name in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next record; `Ok(None)` at the end (or at a torn tail, then in [`Self::torn_tail`]).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        Ok(if self.advance()? { self.last() } else { None })
    }

    /// Reads the next record into the buffer; false at the end or a torn tail.
    fn advance(&mut self) -> Result<bool, ReadError> {
        if self.done {
            return Ok(false);
        }
        let offset = self.pos;
        let mut lenb = [0u8; 4];
        let got = self.read(&mut lenb)?;
        if got == 0 {
            self.done = true;
            return Ok(false);
        }
        if got < 4 {
            return self.torn(offset);
        }
        let len = u32::from_le_bytes(lenb) as usize;
        if !(RECORD_MIN..=RECORD_MAX).contains(&len) {
            // A crash can leave a zero-filled tail; other junk with data after it is damage.
            return if offset + len.max(4) as u64 >= self.len || self.rest_is_zero()? {
                self.torn(offset)
            } else {
                self.corrupt(offset, "length out of range")
            };
        }
        if offset + len as u64 > self.len {
            // Past the end: cut by a crash (checked before allocating for a bogus length).
            return self.torn(offset);
        }
        self.buf.clear();
        self.buf.resize(len, 0);
        self.buf[..4].copy_from_slice(&lenb);
        let got = self.read_buf(4)?;
        if 4 + got < len {
            return self.torn(offset);
        }
        let crc = format::u32_at(&self.buf, len - CRC_LEN);
        if crc32c::crc32c(&self.buf[..len - CRC_LEN]) != crc {
            return if offset + len as u64 >= self.len || self.rest_is_zero()? {
                self.torn(offset)
            } else {
                self.corrupt(offset, "checksum mismatch")
            };
        }
        if Kind::from_u8(self.buf[format::R_KIND]).is_none() {
            return self.corrupt(offset, "unknown record kind");
        }
        Ok(true)
    }

    fn read(&mut self, out: &mut [u8]) -> Result<usize, ReadError> {
        let n = read_full(&mut self.src, out).map_err(|source| ReadError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.pos += n as u64;
        Ok(n)
    }

    fn read_buf(&mut self, from: usize) -> Result<usize, ReadError> {
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.read(&mut buf[from..]);
        self.buf = buf;
        r
    }

    /// Reads to the end: true if every byte left is zero.
    fn rest_is_zero(&mut self) -> Result<bool, ReadError> {
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.read(&mut chunk)?;
            if n == 0 {
                return Ok(true);
            }
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
        }
    }

    fn torn(&mut self, offset: u64) -> Result<bool, ReadError> {
        self.done = true;
        self.buf.clear();
        let bytes = self.len.saturating_sub(offset);
        self.torn = Some(TornTail {
            path: self.path.clone(),
            offset,
            bytes,
        });
        Ok(false)
    }

    fn corrupt(&mut self, offset: u64, why: &'static str) -> Result<bool, ReadError> {
        self.buf.clear();
        self.done = true;
        Err(ReadError::Corrupt {
            path: self.path.clone(),
            offset,
            why,
        })
    }
}

/// Reads until `out` is full or the end; returns the bytes read.
fn read_full(src: &mut impl Read, out: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < out.len() {
        match src.read(&mut out[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The segment files of a journal directory, in order: day directories (`YYYY-MM-DD`, which
/// sort as dates), then `NNNNNN.twj` by number. Other files are ignored.
pub fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    fn io_err(path: &Path) -> impl Fn(io::Error) -> ReadError + '_ {
        move |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    let mut days: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name();
        let is_day = name
            .to_str()
            .is_some_and(|n| n.len() == 10 && n.as_bytes()[4] == b'-' && n.as_bytes()[7] == b'-');
        if is_day && e.path().is_dir() {
            days.push(e.path());
        }
    }
    days.sort();
    let mut out = Vec::new();
    for day in days {
        let mut segs: Vec<(u64, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(&day).map_err(io_err(&day))? {
            let e = e.map_err(io_err(&day))?;
            let name = e.file_name();
            if let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".twj"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                segs.push((seq, e.path()));
            }
        }
        segs.sort();
        out.extend(segs.into_iter().map(|(_, p)| p));
    }
    Ok(out)
}

/// The segments of `dir` written by one gateway run: those whose catalog (the records every
/// segment starts with, `super::catalog`) is stamped `catalog_ts`. A run stamps its catalog once,
/// at start, so the stamp names the run; a segment that cannot be opened or has no catalog is
/// not the run's.
pub fn run_paths(dir: &Path, catalog_ts: i64) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = segment_paths(dir)?;
    out.retain(|p| {
        SegmentReader::open(p)
            .ok()
            .and_then(|mut r| match r.next_record() {
                Ok(Some(rec)) => Some(rec.kind == Kind::Catalog && rec.ts_ns == catalog_ts),
                _ => None,
            })
            .unwrap_or(false)
    });
    Ok(out)
}

/// Every record of a journal directory, segment after segment, torn tails skipped and kept.
pub struct Segments {
    paths: Vec<PathBuf>,
    next: usize,
    cur: Option<SegmentReader<BufReader<File>>>,
    torn: Vec<TornTail>,
}

impl Segments {
    /// Lists the segments of `dir` (opened one at a time as reading reaches them).
    pub fn open(dir: &Path) -> Result<Segments, ReadError> {
        Ok(Segments::from_paths(segment_paths(dir)?))
    }

    /// Reads these segment files, in this order.
    pub fn from_paths(paths: Vec<PathBuf>) -> Segments {
        Segments {
            paths,
            next: 0,
            cur: None,
            torn: Vec::new(),
        }
    }

    /// The segment files, in reading order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Torn tails met so far.
    pub fn torn_tails(&self) -> &[TornTail] {
        &self.torn
    }

    /// The segment being read (its header: the feeds' broker names).
    pub fn current(&self) -> Option<&SegmentReader<BufReader<File>>> {
        self.cur.as_ref()
    }

    /// The next record of the journal; `Ok(None)` after the last segment.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        if !self.advance()? {
            return Ok(None);
        }
        Ok(self.cur.as_ref().and_then(SegmentReader::last))
    }

    /// [`Segments::next_record`] without a copy: the next checked record's whole bytes are
    /// swapped into `whole` (the reader keeps `whole`'s old buffer for the one after); read its
    /// fields with [`record_in`]. False after the last segment.
    pub fn next_swapped(&mut self, whole: &mut Vec<u8>) -> Result<bool, ReadError> {
        if !self.advance()? {
            return Ok(false);
        }
        match self.cur.as_mut() {
            Some(cur) => std::mem::swap(&mut cur.buf, whole),
            None => return Ok(false),
        }
        Ok(true)
    }

    /// Moves to the next record (in the current segment's buffer); false after the last.
    fn advance(&mut self) -> Result<bool, ReadError> {
        loop {
            if self.cur.is_none() {
                let Some(p) = self.paths.get(self.next) else {
                    return Ok(false);
                };
                self.next += 1;
                self.cur = Some(SegmentReader::open(p)?);
            }
            let Some(cur) = self.cur.as_mut() else {
                continue;
            };
            if cur.advance()? {
                return Ok(true);
            }
            if let Some(t) = cur.torn_tail() {
                self.torn.push(t.clone());
            }
            self.cur = None;
        }
    }
}

impl<R> SegmentReader<R> {
    /// The record the last `next_record` returned (still in the buffer).
    fn last(&self) -> Option<Record<'_>> {
        record_in(&self.buf, self.pos - self.buf.len() as u64)
    }
}

/// The fields of a record from its whole bytes as read and checked (length, CRC), found at
/// `offset` in its segment; `None` if too short or of an unknown kind.
pub fn record_in(b: &[u8], offset: u64) -> Option<Record<'_>> {
    let len = b.len();
    if len < RECORD_MIN {
        return None;
    }
    Some(Record {
        kind: Kind::from_u8(b[format::R_KIND])?,
        feed: b[format::R_FEED],
        conn: b[format::R_CONN],
        flags: b[format::R_FLAGS],
        ts_ns: i64::from_le_bytes(
            b[format::R_TS..format::R_TS + 8]
                .try_into()
                .unwrap_or([0; 8]),
        ),
        offset,
        payload: &b[RECORD_HEAD..len - CRC_LEN],
    })
}
