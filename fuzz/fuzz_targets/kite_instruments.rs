//! cargo +nightly fuzz run kite_instruments
//! Any text as an instrument master: a parse error or rows, never a panic; rows map to names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::kite::instruments;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(rows) = instruments::parse(text) {
            for r in &rows {
                let _ = instruments::openalgo_name(r);
            }
        }
    }
});
