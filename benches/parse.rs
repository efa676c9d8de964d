//! Parse cost per broker format, on the path the feed thread runs: `BrokerProtocol::on_message`
//! on one received message, ticks written into a `TickSink` (here collecting into a reused `Vec`,
//! so the router's cost is not in the figure; `benches/router.rs` has that). Each sample times a
//! batch of 1,000 messages; percentiles are of ns per message and per tick.
//!
//! cargo bench --bench parse            (full run; `cargo test --benches` runs a short smoke pass)
//! cargo bench --bench parse -- dhan    (only the cases whose name contains a given word)

use std::sync::Arc;

use prost::Message as _;
use tickwire_io::brokers::fyers::{self, serve, DataWriter, SnapshotSpec};
use tickwire_io::brokers::upstox::{self, pb};
use tickwire_io::feed::protocol::{Incoming, Request};
use tickwire_io::feed::{BrokerProtocol, TickSink};
use tickwire_io::kite::packet::{Kind, RawLevel, Repr};
use tickwire_io::kite::{self, TokenMap};

/// Timing and printing of one row, and the seam floor.
#[path = "parse/harness.rs"]
mod harness;
use harness::{case, case_as, timed, Floor, BATCH};

/// A Kite frame of `n` packets of `kind`.
fn kite_frame(kind: Kind, n: u32) -> Vec<u8> {
    let mut bodies = Vec::new();
    let mut spans = Vec::new();
    for i in 0..n {
        let level = RawLevel {
            qty: 10 + i,
            price: 80_000 - 5,
            orders: 3,
        };
        let r = Repr {
            token: 1000 + i,
            ltp: 80_000 + i,
            last_qty: 1,
            volume: 1000,
            exchange_ts: 1_700_000_000,
            bids: [level; 5],
            asks: [level; 5],
            ..Repr::default()
        };
        let a = bodies.len();
        r.emit(kind, &mut bodies);
        spans.push((a, bodies.len()));
    }
    let refs: Vec<&[u8]> = spans.iter().map(|&(a, b)| &bodies[a..b]).collect();
    let mut frame = Vec::new();
    kite::frame::emit(&refs, &mut frame);
    frame
}

fn full_feed(ltp: f64) -> pb::Feed {
    let q = pb::Quote {
        bid_q: 10,
        bid_p: ltp - 0.05,
        ask_q: 12,
        ask_p: ltp + 0.05,
    };
    let ff = pb::MarketFullFeed {
        ltpc: Some(pb::Ltpc {
            ltp,
            ltt: 1_700_000_000_000,
            ltq: 5,
            cp: ltp - 1.0,
        }),
        market_level: Some(pb::MarketLevel {
            bid_ask_quote: vec![q; 5],
        }),
        option_greeks: Some(pb::OptionGreeks::default()),
        market_ohlc: Some(pb::MarketOhlc {
            ohlc: ["1d", "I1"]
                .iter()
                .map(|i| pb::Ohlc {
                    interval: (*i).into(),
                    open: ltp - 2.0,
                    high: ltp + 1.0,
                    low: ltp - 3.0,
                    close: ltp,
                    vol: 9,
                    ts: 1_700_000_000_000,
                })
                .collect(),
        }),
        atp: ltp,
        vtt: 123_456,
        oi: 0.0,
        iv: 0.0,
        tbq: 100.0,
        tsq: 120.0,
    };
    pb::Feed {
        request_mode: pb::RequestMode::FullD5 as i32,
        feed_union: Some(pb::feed::FeedUnion::FullFeed(pb::FullFeed {
            full_feed_union: Some(pb::full_feed::FullFeedUnion::MarketFf(ff)),
        })),
    }
}

fn upstox_message(keys: &[String], ltpc_only: bool) -> Vec<u8> {
    let feeds = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let ltp = 800.0 + i as f64 * 0.05;
            let f = if ltpc_only {
                pb::Feed {
                    request_mode: 0,
                    feed_union: Some(pb::feed::FeedUnion::Ltpc(pb::Ltpc {
                        ltp,
                        ltt: 1_700_000_000_000,
                        ltq: 5,
                        cp: 799.0,
                    })),
                }
            } else {
                full_feed(ltp)
            };
            (k.clone(), f)
        })
        .collect();
    pb::FeedResponse {
        r#type: pb::Type::LiveFeed as i32,
        feeds,
        current_ts: 1_700_000_000_000,
        market_info: None,
    }
    .encode_to_vec()
}

/// Angel packets of `mode` (1 LTP, 2 Quote, 3 SnapQuote), one per listed token (`1|2000`…), so the
/// key lookups are not one cached entry.
fn angel_packets(mode: u8, n: u64) -> Vec<Vec<u8>> {
    use tickwire_io::brokers::angel::packet::Fields;
    (0..n as i64)
        .map(|i| {
            let mut best5 = [(0u16, 0i64, 0i64, 0u16); 10];
            for (k, e) in best5.iter_mut().enumerate() {
                let side = k % 2 == 0;
                let off = (k / 2) as i64 * 5;
                *e = (
                    side as u16,
                    100 + k as i64,
                    if side { 80_000 - off } else { 80_005 + off },
                    3,
                );
            }
            let mut b = Vec::new();
            Fields {
                mode,
                exchange: 1,
                token: 2000 + i as u64,
                sequence: i,
                exchange_ts_ms: 1_735_000_000_000 + i,
                ltp: 80_000 + i,
                last_qty: 5,
                avg_price: 79_990,
                volume: 1_000_000 + i,
                buy_qty: 50_000.0,
                sell_qty: 60_000.0,
                open: 79_500,
                high: 80_500,
                low: 79_000,
                close: 79_800,
                last_trade_ts: 1_735_000_000_000,
                oi: 0,
                best5,
                ..Default::default()
            }
            .emit(&mut b);
            b
        })
        .collect()
}

/// Dhan: one packet per message (as Dhan sends them), cycled over 100 instruments so the lookups
/// are not one cached entry; ticker (16 bytes), quote (50) and full (162) packets.
fn dhan_cases(samples: usize) {
    use tickwire_io::brokers::dhan::{self, packet::emit};
    let keys: Vec<Box<str>> = (0..100)
        .map(|i| format!("NSE_EQ|{}|500000", 1000 + i).into())
        .collect();
    let mut dh = dhan::Dhan::new(dhan::DhanConfig::default(), Arc::new(dhan::table(&keys)));
    let q = |i: u32| emit::Quote {
        ltp: 800.0 + i as f32 * 0.05,
        ltq: 5,
        ltt: 1_700_000_000,
        avg: 799.5,
        volume: 10_000 + i,
        sell_qty: 100,
        buy_qty: 120,
        open: 798.0,
        close: 797.0,
        high: 805.0,
        low: 795.0,
    };
    let level = |i: u32| emit::Level {
        bid_qty: 10,
        ask_qty: 12,
        bid_orders: 1,
        ask_orders: 2,
        bid: 799.95 + i as f32 * 0.05,
        ask: 800.05 + i as f32 * 0.05,
    };
    let make = |f: &dyn Fn(&mut Vec<u8>, u32)| -> Vec<Vec<u8>> {
        (0..100u32)
            .map(|i| {
                let mut p = Vec::new();
                f(&mut p, i);
                p
            })
            .collect()
    };
    let ticker = make(&|p, i| emit::ticker(p, 1, 1000 + i, q(i).ltp, 1_700_000_000));
    let quote = make(&|p, i| emit::quote(p, 1, 1000 + i, &q(i)));
    let full = make(&|p, i| emit::full(p, 1, 1000 + i, &q(i), [0; 3], &[level(i); 5]));
    case("dhan ticker packet", &mut dh, &ticker, samples);
    case("dhan quote packet", &mut dh, &quote, samples);
    case("dhan full packet (5 levels)", &mut dh, &full, samples);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let samples = if full { 2_000 } else { 20 };
    if let Err(e) = tickwire_engine::affinity::pin_current(Some(0)) {
        eprintln!("not pinned: {e}");
    }
    println!("parse cost per message, {samples} samples of {BATCH} messages (ns)");
    println!("| format                             | ticks | p50 /msg | p90 /msg | p99 /msg | p50 /tick |");
    println!("|------------------------------------|------:|---------:|---------:|---------:|----------:|");

    let tokens: TokenMap = (0..100u32).map(|i| (1000 + i, i)).collect();
    let mut kite = kite::Kite::new(
        kite::KiteConfig::default(),
        Arc::new(tokens),
        Arc::new((1000..1100).collect()),
    );
    for (kind, label) in [
        (Kind::Ltp, "ltp"),
        (Kind::Quote, "quote"),
        (Kind::Full, "full"),
    ] {
        for n in [1, 13] {
            let name = format!("kite {label}, {n} packet{}", if n > 1 { "s" } else { "" });
            case(&name, &mut kite, &[kite_frame(kind, n)], samples);
        }
    }

    let keys: Vec<String> = (0..100).map(|i| format!("NSE_EQ|INE{i:07}T1")).collect();
    let mut k = upstox::Keys::default();
    for (i, key) in keys.iter().enumerate() {
        k.insert(i as u32, key);
    }
    let mut up = upstox::Upstox::new(upstox::UpstoxConfig::default(), Arc::new(k));
    // One message per instrument, cycled, so the key lookups are not one cached entry.
    let one_full: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| upstox_message(std::slice::from_ref(k), false))
        .collect();
    let one_ltpc: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| upstox_message(std::slice::from_ref(k), true))
        .collect();
    case(
        "upstox FeedResponse, 1 full feed",
        &mut up,
        &one_full,
        samples,
    );
    case(
        "upstox FeedResponse, 1 ltpc feed",
        &mut up,
        &one_ltpc,
        samples,
    );
    case(
        "upstox FeedResponse, 13 full feeds",
        &mut up,
        &[upstox_message(&keys[..13], false)],
        samples,
    );

    // Fyers: a connection authenticated and subscribed (13 symbols, Quote: the sf topics), topics
    // snapshotted; then packets of `U` updates carrying the fields that change on a trade.
    let tickers: Vec<Box<str>> = (0..13).map(|i| format!("NSE:S{i}-EQ").into()).collect();
    let cfg = fyers::FyersConfig {
        access_token: fyers::auth::mock_token("k", 4_102_444_800),
        ..fyers::FyersConfig::default()
    };
    let mut fy = fyers::Fyers::new(cfg, Arc::new(tickers));
    let ids: Vec<u32> = (0..13).collect();
    for &i in &ids {
        fy.seed(i, &format!("101000000030{i:02}")).expect("fytoken");
    }
    let mut out = Vec::new();
    fy.encode(
        Request::Subscribe {
            mode: tickwire_engine::router::Mode::Quote,
            symbols: &ids,
        },
        &mut out,
    );
    let mut ticks = Vec::new();
    let mut feed = |fy: &mut fyers::Fyers, b: &[u8]| {
        fy.on_message(
            Incoming::Binary(b),
            1,
            &mut TickSink::collect(&mut ticks),
            &mut out,
        )
        .expect("clean input");
    };
    feed(&mut fy, &serve::auth_reply(true, 0));
    let mut snap = DataWriter::new(1);
    let values = [80_000i32; 21];
    let names: Vec<String> = (0..13).map(|i| format!("sf|nse_cm|30{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        snap.snapshot(&SnapshotSpec {
            topic_id: (i as u16 + 1).to_be_bytes(),
            name,
            values: &values,
            multiplier: 1,
            precision: 2,
            exchange: "NSE",
            exchange_token: "30",
            symbol: "S",
        })
        .expect("snapshot");
    }
    feed(&mut fy, &snap.finish().expect("packet"));
    assert_eq!(ticks.len(), 13, "snapshots bound");
    let update = |n: usize, k: i32| {
        let mut w = DataWriter::new(2 + k as u32);
        // ltp, volume, feed time, last qty, totals, average: the fields a trade changes
        let mut v = [fyers::packet::ABSENT; 12];
        v[0] = 80_000 + k;
        v[1] = 1_000 + k;
        v[3] = 1_700_000_000 + k;
        v[8] = 5;
        v[9] = 100 + k;
        v[10] = 120 + k;
        v[11] = 79_990 + k;
        for i in 0..n {
            w.update((i as u16 + 1).to_be_bytes(), &v).expect("update");
        }
        w.finish().expect("packet")
    };
    let one: Vec<Vec<u8>> = (0..64).map(|k| update(1, k)).collect();
    let thirteen: Vec<Vec<u8>> = (0..64).map(|k| update(13, k)).collect();
    case("fyers data packet, 1 U update", &mut fy, &one, samples);
    case(
        "fyers data packet, 13 U updates",
        &mut fy,
        &thirteen,
        samples,
    );

    // Angel: one packet per binary message, 100 listed tokens cycled.
    use tickwire_io::brokers::angel;
    let keys: Vec<Box<str>> = (0..100).map(|i| format!("1|{}", 2000 + i).into()).collect();
    let mut an = angel::factory(&angel::AngelConfig::default(), Arc::new(keys))();
    for (mode, label) in [
        (1, "LTP, 51 B"),
        (2, "Quote, 123 B"),
        (3, "SnapQuote, 379 B"),
    ] {
        case(
            &format!("angel packet, {label}"),
            &mut *an,
            &angel_packets(mode, 100),
            samples,
        );
    }

    noren(samples);
    dhan_cases(samples);
    case(
        "seam floor: Tick::new to the sink",
        &mut Floor,
        &[vec![0]],
        samples,
    );
}

/// Noren: acked, 100 tokens subscribed (touchline and depth), snapshots merged; then the
/// documented message shapes: a whole `tk` touchline (what the issue's 500 ns target is about), a
/// `tf` with three changed fields, and a `df` depth update with ten.
fn noren(samples: usize) {
    use tickwire_io::brokers::noren;
    let keys: Vec<Box<str>> = (0..100)
        .map(|i| format!("NSE|{}", 1000 + i).into())
        .collect();
    let cfg = noren::NorenConfig {
        user: "U".into(),
        token: "T".into(),
        ..noren::NorenConfig::default()
    };
    let mut nr = noren::Noren::new(cfg, Arc::new(noren::Keys::new(&keys)));
    let (mut out, mut ticks) = (Vec::new(), Vec::new());
    let touch: Vec<u32> = (0..50).collect();
    let depth: Vec<u32> = (50..100).collect();
    for (mode, symbols) in [
        (tickwire_engine::router::Mode::Quote, &touch),
        (tickwire_engine::router::Mode::Depth, &depth),
    ] {
        nr.encode(Request::Subscribe { mode, symbols }, &mut out);
    }
    let tk = |i: u32, p: u32| {
        format!(
            r#"{{"t":"tk","e":"NSE","tk":"{}","ts":"SYM{i}-EQ","pp":"2","ls":"1","ti":"0.05","lp":"{}.{:02}","pc":"0.52","v":"162220","o":"118.00","h":"119.65","l":"117.10","c":"117.90","ap":"118.39","bp1":"118.45","sp1":"118.50","bq1":"26","sq1":"6325"}}"#,
            1000 + i,
            100 + p % 50,
            p % 100
        )
        .into_bytes()
    };
    let mut feed = |nr: &mut noren::Noren, m: &[u8]| {
        let t = std::str::from_utf8(m).expect("text");
        nr.on_message(
            Incoming::Text(t),
            1,
            &mut TickSink::collect(&mut ticks),
            &mut out,
        )
        .expect("clean input");
    };
    feed(&mut nr, br#"{"t":"ck","s":"OK","uid":"U"}"#);
    for i in 0..50 {
        feed(&mut nr, &tk(i, i));
    }
    for i in 50..100 {
        let dk = String::from_utf8(tk(i, i))
            .expect("utf8")
            .replace(r#""t":"tk""#, r#""t":"dk""#);
        feed(&mut nr, dk.as_bytes());
    }
    let tks: Vec<Vec<u8>> = (0..64).map(|k| tk(k % 50, k)).collect();
    let tfs: Vec<Vec<u8>> = (0..64)
        .map(|k| {
            format!(
                r#"{{"t":"tf","e":"NSE","tk":"{}","lp":"118.{:02}","v":"{}","ap":"118.40"}}"#,
                1000 + k % 50,
                k,
                166_637 + k
            )
            .into_bytes()
        })
        .collect();
    let dfs: Vec<Vec<u8>> = (0..64)
        .map(|k| {
            format!(
                r#"{{"t":"df","e":"NSE","tk":"{}","lp":"118.{:02}","v":"{}","ltq":"5","tbq":"1200","tsq":"1300","bp1":"118.45","bq1":"{}","sp1":"118.50","sq1":"30","ft":"{}"}}"#,
                1050 + k % 50,
                k,
                166_637 + k,
                10 + k,
                1_700_000_000 + k
            )
            .into_bytes()
        })
        .collect();
    // The floor under the Noren rows: simd-json's own two stages on the same messages (copy into a
    // padded buffer, build the tape), with nothing of tickwire's on top.
    let mut buf = Vec::new();
    let mut buffers = simd_json::Buffers::new(4096);
    let mut tape = Some(simd_json::Tape::null().reset());
    timed("simd-json tape alone, tk (floor)", &tks, samples, |m| {
        buf.clear();
        buf.extend_from_slice(m);
        buf.resize(m.len() + simd_json::INPUT_PADDING, 0);
        let mut t = tape.take().unwrap_or_else(simd_json::Tape::null).reset();
        let ok = simd_json::fill_tape_padded(&mut buf, m.len(), &mut buffers, &mut t).is_ok();
        std::hint::black_box((ok, t.0.len()));
        tape = Some(t.reset());
    });
    case_as(
        "noren tk touchline JSON (whole)",
        &mut nr,
        &tks,
        samples,
        true,
    );
    case_as(
        "noren tf touchline JSON (3 fields)",
        &mut nr,
        &tfs,
        samples,
        true,
    );
    case_as(
        "noren df depth JSON (10 fields)",
        &mut nr,
        &dfs,
        samples,
        true,
    );
}
