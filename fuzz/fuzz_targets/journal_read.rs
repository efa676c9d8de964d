//! cargo +nightly fuzz run journal_read
//! Any bytes as a journal segment: records, a torn tail or an error naming the offset, never a
//! panic, and never an allocation past the record limit.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tickwire_io::journal::read::SegmentReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = SegmentReader::new(data, Path::new("fuzz.twj"), data.len() as u64) {
        let _ = r.header().feeds.len();
        while let Ok(Some(rec)) = r.next_record() {
            let _ = (rec.gap_missed(), rec.symbols().count(), rec.mode(), rec.binary());
        }
        let _ = r.torn_tail();
    }
});
