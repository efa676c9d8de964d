//! cargo +nightly fuzz run kite_frame fuzz/seeds/kite_frame
//! Any bytes as a Kite binary frame: never a panic, every packet is a tick or a counted error, and
//! at most one tick, the final one, is marked as the frame's last.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::kite::{parse_frame_marked, TokenMap};

fuzz_target!(|data: &[u8]| {
    // Tokens of the golden frames, so mutated packets reach the field decoding, not just the lookup.
    let tokens: TokenMap = [(408065u32, 0u32), (268043523, 1), (256265, 2), (779521, 3)]
        .into_iter()
        .collect();
    let (mut ok, mut bad) = (0u32, 0u32);
    let mut lasts = Vec::new();
    let st = parse_frame_marked(
        data,
        0,
        &tokens,
        |_, last| {
            ok += 1;
            lasts.push(last);
        },
        |_| bad += 1,
    );
    assert_eq!((st.ticks, st.errors), (ok, bad));
    let marked = lasts.iter().filter(|&&l| l).count();
    assert!(marked <= 1 && (marked == 0 || lasts.last() == Some(&true)));
});
