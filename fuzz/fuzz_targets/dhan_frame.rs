//! cargo +nightly fuzz run dhan_frame fuzz/seeds/dhan_frame
//! Any bytes as one Dhan WebSocket message: never a panic; at most one tick, the final one, is
//! marked as the message's last; state kept across messages (previous close, OI) stays usable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::dhan::packet::{parse_message, SymState};
use tickwire_io::brokers::dhan::table;

fuzz_target!(|data: &[u8]| {
    // The instruments of the golden frames, so mutated packets reach the field decoding.
    let keys: Vec<Box<str>> = [
        "NSE_EQ|3045|500000",
        "NSE_FNO|35005|1000000",
        "NSE_CURRENCY|8080|25000",
        "IDX_I|13|0",
    ]
    .iter()
    .map(|&k| k.into())
    .collect();
    let t = table(&keys);
    let mut st = vec![SymState::default(); t.of_id.len()];
    // The input twice: the second pass runs on the state the first one left.
    for _ in 0..2 {
        let mut lasts = Vec::new();
        parse_message(data, 0, &t, &mut st, |r| {
            if let Ok((_, last)) = r {
                lasts.push(last);
            }
        });
        let marked = lasts.iter().filter(|&&l| l).count();
        assert!(marked <= 1 && (marked == 0 || lasts.last() == Some(&true)));
    }
});
