//! cargo +nightly fuzz run noren_instruments fuzz/seeds/noren_instruments
//! Any bytes as a Noren symbol master (zip or CSV text): an error or rows, never a panic; every row
//! maps to an OpenAlgo name or is skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::noren::instruments::{openalgo_name, parse, unpack};

fuzz_target!(|data: &[u8]| {
    if let Ok(files) = unpack(data.to_vec(), "fuzz") {
        for f in files {
            if let Ok(rows) = parse(&f, "fuzz") {
                for r in &rows {
                    let _ = openalgo_name(r);
                }
            }
        }
    }
});
