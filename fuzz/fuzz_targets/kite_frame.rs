//! cargo +nightly fuzz run kite_frame fuzz/seeds/kite_frame
//! Any bytes as a Kite binary frame: never a panic, and every packet is a tick or a counted error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::kite::{parse_frame, TokenMap};

fuzz_target!(|data: &[u8]| {
    // Tokens of the golden frames, so mutated packets reach the field decoding, not just the lookup.
    let tokens: TokenMap = [(408065u32, 0u32), (268043523, 1), (256265, 2), (779521, 3)]
        .into_iter()
        .collect();
    let (mut ok, mut bad) = (0u32, 0u32);
    let st = parse_frame(data, 0, &tokens, |_| ok += 1, |_| bad += 1);
    assert_eq!((st.ticks, st.errors), (ok, bad));
});
