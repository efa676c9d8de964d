//! cargo +nightly fuzz run fyers_frame fuzz/seeds/fyers_frame
//! Any bytes as a Fyers server packet, handled the way the feed does (topics seeded, auth done):
//! never a panic; at most one tick, the final one, is marked as the packet's last. The mock's
//! client-packet parser gets the same bytes.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tickwire_io::brokers::fyers::{auth, packet, serve, Fyers, FyersConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = FyersConfig {
        access_token: auth::mock_token("k", 4_102_444_800),
        ..FyersConfig::default()
    };
    let tickers: Vec<Box<str>> = ["NSE:SBIN-EQ", "NSE:NIFTY50-INDEX"]
        .iter()
        .map(|t| Box::from(*t))
        .collect();
    let mut fy = Fyers::new(cfg, Arc::new(tickers));
    let _ = fy.seed(0, "10100000003045");
    let _ = fy.seed(1, "101000000026000");
    let mut lasts = Vec::new();
    let mut out = Vec::new();
    let _ = fy.on_frame(data, 0, &mut out, |r| {
        if let Ok((_, last)) = r {
            lasts.push(last);
        }
    });
    let marked = lasts.iter().filter(|&&l| l).count();
    assert!(marked <= 1 && (marked == 0 || lasts.last() == Some(&true)));
    if let Ok(packet::ServerPacket::Data(d)) = packet::parse(data) {
        for _ in d.records() {}
    }
    if let Ok(serve::ClientPacket::Topics { topics, .. }) = serve::parse_client(data) {
        for _ in topics.iter() {}
    }
});
