//! Dhan live market feed v2: JSON requests, binary little-endian responses with an 8-byte header.
//!
//! | file | what |
//! |---|---|
//! | [`packet`] | the response packets: a checked reader into ticks, and writers for the mock |
//! | [`grid`] | the instrument table and the tick-grid rule for f32 prices |
//! | [`protocol`] | [`Dhan`]: the broker seam (URL, requests, keepalive, disconnect reasons) |
//! | [`instruments`] | the scrip master CSV and OpenAlgo names |
//!
//! A listing's key is `SEGMENT|SECURITY_ID|TICK` (`NSE_EQ|3045|500000`): the request's segment
//! name, the security id, and the tick size in price units (10^-7 rupee; 0 when the master gives
//! none), which the parser needs to put f32 prices on the tick grid (`docs/brokers.md`).

pub mod grid;
pub mod instruments;
pub mod packet;
pub mod protocol;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use packet::{Instruments, ParseError};
pub use protocol::{Dhan, DhanConfig};

use super::Listing;
use crate::feed::{BrokerProtocol, ProtocolFactory};

/// The listing key for an instrument.
pub fn listing_key(segment: u8, security_id: u32, tick: i64) -> String {
    format!(
        "{}|{security_id}|{tick}",
        packet::segment::name(segment).unwrap_or("?")
    )
}

/// `NSE_EQ|3045|500000` → an entry; `None` for anything else.
pub fn parse_key(key: &str) -> Option<packet::Entry> {
    let mut it = key.split('|');
    let seg = packet::segment::code(it.next()?)?;
    let id = it.next()?.parse::<u32>().ok().filter(|&i| i != 0)?;
    let tick = it.next().map_or(Some(0), |t| t.parse::<i64>().ok())?;
    it.next()
        .is_none()
        .then(|| packet::Entry::new(seg, id, tick))
}

/// Loads Dhan's scrip master CSV (URL or file) as OpenAlgo listings (rows of segments the feed does
/// not carry are dropped).
pub fn listings(source: &str) -> Result<Vec<Listing>, String> {
    let rows = instruments::load(source).map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let (exchange, symbol) = instruments::openalgo_name(r)?;
            let seg = instruments::feed_segment(r)?;
            Some(Listing {
                exchange: exchange.to_string(),
                symbol,
                key: listing_key(seg, r.security_id, instruments::tick_units(r)),
            })
        })
        .collect())
}

/// The instrument table for the broker keys by symbol id (`""`: not listed).
pub fn table(keys: &[Box<str>]) -> Instruments {
    let mut t = Instruments::with_symbols(keys.len());
    for (id, k) in keys.iter().enumerate() {
        if let Some(e) = parse_key(k) {
            t.insert(id as u32, e);
        }
    }
    t
}

/// One protocol value per connection over the broker keys by symbol id.
pub fn factory(cfg: &DhanConfig, keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
    let (cfg, table) = (cfg.clone(), Arc::new(table(&keys)));
    Box::new(move || Box::new(Dhan::new(cfg.clone(), table.clone())) as Box<dyn BrokerProtocol>)
}
