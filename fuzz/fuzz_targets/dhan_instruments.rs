//! cargo +nightly fuzz run dhan_instruments
//! Any text as Dhan's scrip master: a parse error or rows, never a panic; rows map to names and
//! listing keys that parse back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::dhan::{instruments, listing_key, parse_key};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(rows) = instruments::parse(text) {
            for r in &rows {
                let _ = instruments::openalgo_name(r);
                if let Some(seg) = instruments::feed_segment(r) {
                    let key = listing_key(seg, r.security_id, instruments::tick_units(r));
                    assert_eq!(parse_key(&key).is_some(), r.security_id != 0, "{key}");
                }
            }
        }
    }
});
