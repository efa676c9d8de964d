//! cargo +nightly fuzz run upstox_frame fuzz/seeds/upstox_frame
//! Any bytes as an Upstox `FeedResponse`: never a panic; every feed entry is a tick or a counted
//! error; at most one tick, the final one, is marked as the message's last.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::upstox::decode::decode;

fuzz_target!(|data: &[u8]| {
    // Keys of the golden frames, so mutated feeds reach the field decoding, not just the lookup.
    let lookup = |k: &[u8]| match k {
        b"NSE_EQ|INE062A01020" => Some(0),
        b"NSE_INDEX|Nifty 50" => Some(1),
        b"NSE_FO|43650" => Some(2),
        _ => None,
    };
    let (mut ok, mut bad) = (0u32, 0u32);
    let mut lasts = Vec::new();
    let d = decode(
        data,
        0,
        lookup,
        |r| match r {
            Ok((_, last)) => {
                ok += 1;
                lasts.push(last);
            }
            Err(_) => bad += 1,
        },
        |_, _| {},
    );
    assert_eq!((d.ticks, d.errors), (ok, bad));
    let marked = lasts.iter().filter(|&&l| l).count();
    assert!(marked <= 1 && (marked == 0 || lasts.last() == Some(&true)));
});
