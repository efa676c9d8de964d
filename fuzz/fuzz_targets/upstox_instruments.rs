//! cargo +nightly fuzz run upstox_instruments
//! Any bytes as Upstox's JSON instrument master: an error or rows, never a panic; every row maps to
//! an OpenAlgo name or is skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::upstox::instruments::{openalgo_name, parse, spaced_date};

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = parse("fuzz", data) {
        for r in &rows {
            let _ = openalgo_name(r);
            if let Some(e) = r.expiry {
                let _ = spaced_date(e);
            }
        }
    }
});
