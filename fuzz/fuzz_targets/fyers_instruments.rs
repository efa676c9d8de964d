//! cargo +nightly fuzz run fyers_instruments
//! Any bytes as a Fyers symbol master CSV: an error or rows, never a panic; every row maps to an
//! OpenAlgo name or is skipped; rows written back parse to the same rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::fyers::instruments::{openalgo_name, parse, to_csv};

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = parse("fuzz", data) {
        for r in &rows {
            let _ = openalgo_name(r);
        }
        let again = parse("fuzz", &to_csv(&rows)).expect("our own CSV parses");
        assert_eq!(again, rows);
    }
});
