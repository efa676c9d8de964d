//! cargo +nightly fuzz run noren_frame fuzz/seeds/noren_frame
//! Any bytes as a Noren text message, handled the way the feed does (acked, tokens subscribed in
//! touchline and depth, snapshots merged): never a panic; at most one tick, the final one, is
//! marked as the message's last. A refused ack may stop; the protocol is then reset.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tickwire_engine::router::Mode;
use tickwire_io::brokers::noren::{Keys, Noren, NorenConfig};
use tickwire_io::feed::protocol::Request;
use tickwire_io::feed::BrokerProtocol;

fuzz_target!(|data: &[u8]| {
    let keys: Vec<Box<str>> = ["NSE|11630", "NFO|35001"].iter().map(|k| Box::from(*k)).collect();
    let cfg = NorenConfig {
        user: "U".into(),
        token: "T".into(),
        ..NorenConfig::default()
    };
    let mut p = Noren::new(cfg, Arc::new(Keys::new(&keys)));
    let mut out = Vec::new();
    p.encode(
        Request::Subscribe {
            mode: Mode::Quote,
            symbols: &[0],
        },
        &mut out,
    );
    p.encode(
        Request::Subscribe {
            mode: Mode::Depth,
            symbols: &[1],
        },
        &mut out,
    );
    for m in [
        &br#"{"t":"ck","s":"OK"}"#[..],
        br#"{"t":"tk","e":"NSE","tk":"11630","lp":"1.00"}"#,
        br#"{"t":"dk","e":"NFO","tk":"35001","lp":"1.00","bp1":"0.95"}"#,
    ] {
        let _ = p.on_text(m, 0, &mut out, |_| {});
    }
    let mut lasts = Vec::new();
    let _ = p.on_text(data, 0, &mut out, |r| {
        if let Ok((_, last)) = r {
            lasts.push(last);
        }
    });
    let marked = lasts.iter().filter(|&&l| l).count();
    assert!(marked <= 1 && (marked == 0 || lasts.last() == Some(&true)));
});
