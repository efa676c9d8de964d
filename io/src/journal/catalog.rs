//! The catalog: what a replay needs besides the frames to turn them back into the same ticks. Every
//! segment starts with it (right after the header): the gateway's symbol registry in id order, and
//! for each symbol the feed that serves it and that broker's key for it (Kite's instrument token,
//! Upstox's instrument key). A replay rebuilds the same registry (so symbol ids, and the shm
//! directory, are the live run's) and each broker's lookup tables from the keys, without the
//! instrument masters, which change every day.
//!
//! Record kind 8, payload (little-endian), cut into records of at most [`CHUNK_BYTES`]:
//!
//! ```text
//! offset  size  field
//!      0     4  total u32     symbols in the registry
//!      4     4  capacity u32  the registry's capacity (the shm directory's size)
//!      8     4  first u32     id of this record's first entry
//!     12     4  count u32     entries in this record
//!     16     …  count entries: feed u8, then exchange, symbol, key, each len u8 + UTF-8 bytes
//! ```

use tickwire_engine::symbols::SymbolRegistry;

use super::format::{self, Kind};

/// Payload bytes per catalog record at most (a 100,000-symbol master is a few records).
pub const CHUNK_BYTES: usize = 1 << 20;
/// The fixed part of a catalog payload.
pub const CATALOG_HEAD: usize = 16;
const _: () = assert!(CATALOG_HEAD + 4 * 256 < CHUNK_BYTES && CHUNK_BYTES <= format::PAYLOAD_MAX);

/// One symbol as the catalog holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The feed (journal appender id) that serves it.
    pub feed: u8,
    /// OpenAlgo exchange.
    pub exchange: String,
    /// OpenAlgo symbol.
    pub symbol: String,
    /// The broker's key ("" when its feed's broker does not list it).
    pub key: String,
}

/// Encodes `reg` as whole catalog records (CRC included) stamped `ts_ns`; `feed_of[id]` is the
/// feed serving each symbol.
pub fn encode(reg: &SymbolRegistry, feed_of: &[u16], ts_ns: i64) -> Vec<Vec<u8>> {
    let total = reg.len() as u32;
    let capacity = reg.capacity().min(u32::MAX as usize) as u32;
    let mut records = Vec::new();
    let mut body = Vec::new();
    let (mut first, mut count) = (0u32, 0u32);
    let flush = |body: &mut Vec<u8>, first: u32, count: u32, records: &mut Vec<Vec<u8>>| {
        let mut p = Vec::with_capacity(CATALOG_HEAD + body.len());
        for v in [total, capacity, first, count] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p.append(body);
        records.push(format::encode_record(Kind::Catalog, 0, 0, 0, ts_ns, &p));
    };
    for (id, info) in reg.iter() {
        let feed = feed_of.get(id as usize).copied().unwrap_or(0).min(255) as u8;
        let names = [&info.exchange, &info.symbol, &info.broker_token];
        let need = 1 + names.iter().map(|n| 1 + n.len().min(255)).sum::<usize>();
        if CATALOG_HEAD + body.len() + need > CHUNK_BYTES {
            flush(&mut body, first, count, &mut records);
            (first, count) = (id, 0);
        }
        body.push(feed);
        for n in names {
            // The registry holds names to 32 bytes and keys to 64: never cut in practice.
            let b = &n.as_bytes()[..n.len().min(255)];
            body.push(b.len() as u8);
            body.extend_from_slice(b);
        }
        count += 1;
    }
    flush(&mut body, first, count, &mut records);
    records
}

/// Why a catalog record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Shorter than its fixed part, an entry cut short, or a name not UTF-8.
    #[error("catalog record malformed: {0}")]
    Malformed(&'static str),
    /// A record that does not continue the ones before it.
    #[error("catalog record out of order: entries from {got}, expected {want}")]
    OutOfOrder {
        /// Its first id.
        got: u32,
        /// The next id expected.
        want: u32,
    },
}

/// A catalog being read back record by record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// The registry's capacity.
    pub capacity: u32,
    /// Symbols the catalog says there are.
    pub total: u32,
    /// Entries read so far, in id order.
    pub entries: Vec<Entry>,
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

impl Catalog {
    /// Adds one record's payload. A record with `first` 0 starts the catalog over (each segment
    /// repeats it).
    pub fn add(&mut self, payload: &[u8]) -> Result<(), CatalogError> {
        if payload.len() < CATALOG_HEAD {
            return Err(CatalogError::Malformed("shorter than its head"));
        }
        let (total, capacity) = (u32_at(payload, 0), u32_at(payload, 4));
        let (first, count) = (u32_at(payload, 8), u32_at(payload, 12));
        if first == 0 {
            *self = Catalog {
                capacity,
                total,
                entries: Vec::with_capacity(total.min(1 << 22) as usize),
            };
        }
        let want = self.entries.len() as u32;
        if first != want || total != self.total {
            return Err(CatalogError::OutOfOrder { got: first, want });
        }
        let mut rest = &payload[CATALOG_HEAD..];
        for _ in 0..count {
            let (&feed, tail) = rest
                .split_first()
                .ok_or(CatalogError::Malformed("entry cut short"))?;
            rest = tail;
            let mut names = [String::new(), String::new(), String::new()];
            for n in &mut names {
                let (&len, tail) = rest
                    .split_first()
                    .ok_or(CatalogError::Malformed("name cut short"))?;
                let b = tail
                    .get(..len as usize)
                    .ok_or(CatalogError::Malformed("name cut short"))?;
                *n = std::str::from_utf8(b)
                    .map_err(|_| CatalogError::Malformed("name not UTF-8"))?
                    .to_owned();
                rest = &tail[len as usize..];
            }
            let [exchange, symbol, key] = names;
            self.entries.push(Entry {
                feed,
                exchange,
                symbol,
                key,
            });
        }
        if self.entries.len() as u32 > self.total {
            return Err(CatalogError::Malformed("more entries than its total"));
        }
        Ok(())
    }

    /// True once every entry has been read.
    pub fn complete(&self) -> bool {
        self.entries.len() as u32 == self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(n: usize) -> SymbolRegistry {
        let mut reg = SymbolRegistry::with_capacity(n + 5);
        for i in 0..n {
            reg.register("NSE", &format!("SYM{i}"), &format!("{}", 1000 + i))
                .unwrap();
        }
        reg
    }

    fn payload(record: &[u8]) -> &[u8] {
        &record[format::RECORD_HEAD..record.len() - format::CRC_LEN]
    }

    #[test]
    fn round_trips_in_one_record_and_in_many() {
        for n in [0, 3, 100_000] {
            let reg = registry(n);
            let feed_of: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
            let recs = encode(&reg, &feed_of, 7);
            assert_eq!(
                recs.len() > 1,
                n == 100_000,
                "{n} symbols: {} records",
                recs.len()
            );
            let mut c = Catalog::default();
            for r in &recs {
                assert!(r.len() <= format::RECORD_MIN + CHUNK_BYTES);
                c.add(payload(r)).unwrap();
            }
            assert!(c.complete());
            assert_eq!(c.capacity as usize, n + 5);
            for (id, info) in reg.iter() {
                let e = &c.entries[id as usize];
                assert_eq!(
                    (&e.exchange, &e.symbol, &e.key),
                    (&info.exchange, &info.symbol, &info.broker_token)
                );
                assert_eq!(e.feed as u16, feed_of[id as usize]);
            }
            // A second copy (the next segment's) starts over.
            c.add(payload(&recs[0])).unwrap();
            assert_eq!(c.complete(), recs.len() == 1);
        }
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let reg = registry(3);
        let rec = encode(&reg, &[0, 0, 0], 1).remove(0);
        let p = payload(&rec);
        for cut in 0..p.len() {
            let mut c = Catalog::default();
            let _ = c.add(&p[..cut]);
        }
        let mut c = Catalog::default();
        assert!(matches!(c.add(&p[..10]), Err(CatalogError::Malformed(_))));
        let mut later = p.to_vec();
        later[8] = 1; // first = 1 on an empty catalog
        assert_eq!(
            c.add(&later),
            Err(CatalogError::OutOfOrder { got: 1, want: 0 })
        );
    }
}
