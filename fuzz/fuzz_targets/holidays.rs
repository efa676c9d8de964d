//! cargo +nightly fuzz run holidays
//! Any text as a holidays file, and any text as an RFC 3339 time (`--market-now`): an error
//! naming the line, or days, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_engine::calendar::{civil, holidays, Days};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut days = Days::new();
        let _ = holidays::parse_into(&mut days, "fuzz.csv", text);
        let _ = civil::parse_rfc3339(text);
        let _ = civil::parse_hhmm(text);
        let _ = civil::parse_date(text);
    }
});
