//! cargo +nightly fuzz run angel_frame fuzz/seeds/angel_frame
//! Any bytes as one Angel SmartAPI 2.0 binary message: never a panic; a tick only for a listed
//! token, carrying the groups of its mode, or one counted error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_engine::tick::valid;
use tickwire_io::brokers::angel::{packet, tables};

fuzz_target!(|data: &[u8]| {
    // The golden packets' tokens, so mutated packets reach the field decoding, not just the lookup.
    let keys: Vec<Box<str>> = vec!["1|3045".into(), "2|35003".into(), "13|1048998".into()];
    let (map, _) = tables(&keys);
    if let Ok(t) = packet::parse(data, 0, &map) {
        assert!(t.symbol_id < 3 && t.has(valid::LTP));
        assert_eq!(t.has(valid::QUOTE), data[0] >= 2);
        assert_eq!(t.has(valid::DEPTH), data[0] == 3);
    }
});
