//! cargo +nightly fuzz run angel_instruments
//! Any bytes as Angel's JSON scrip master: an error or rows, never a panic; every row maps to an
//! OpenAlgo name and a key or is skipped, and a key always parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::angel::instruments::{listing_key, openalgo_name, parse};
use tickwire_io::brokers::angel::parse_key;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = parse("fuzz", data) {
        for r in &rows {
            let _ = openalgo_name(r);
            if let Some(k) = listing_key(r) {
                assert!(parse_key(&k).is_some(), "{k}");
            }
        }
    }
});
