//! Every broker's protocol on the feed thread's path: frames in each broker's wire format through
//! `BrokerProtocol::on_message` into the inline router ([`super::broker_path_allocs`]), counting
//! allocations once warm.

use super::*;

/// Every broker's protocol, on the feed thread's path.
pub(super) fn every_broker_parses_without_allocating() {
    const WARM: u32 = 2_000;
    const MEASURED: u32 = 20_000;
    let mut tokens = TokenMap::default();
    for (i, &t) in TOKENS.iter().enumerate() {
        tokens.insert(t, i as u32);
    }
    let kite = tickwire_io::kite::Kite::new(
        tickwire_io::kite::KiteConfig::default(),
        std::sync::Arc::new(tokens),
        std::sync::Arc::new(TOKENS.to_vec()),
    );
    broker_path_allocs(
        "kite",
        Box::new(kite),
        wire(WARM + MEASURED),
        (WARM, MEASURED),
        3,
    );

    let keys = ["NSE_EQ|INE062A01020", "NSE_EQ|INE002A01018", "NSE_FO|35005"];
    let mut k = upstox::Keys::default();
    for (i, key) in keys.iter().enumerate() {
        k.insert(i as u32, key);
    }
    let up = upstox::Upstox::new(upstox::UpstoxConfig::default(), std::sync::Arc::new(k));
    broker_path_allocs(
        "upstox",
        Box::new(up),
        upstox_wire(&keys, WARM + MEASURED),
        (WARM, MEASURED),
        3,
    );

    // Fyers: authenticated, 3 symbols subscribed in Depth (sf + dp topics), snapshots bound; then
    // data packets of `U` updates for every topic.
    use tickwire_io::brokers::fyers::{self, serve, DataWriter, SnapshotSpec};
    use tickwire_io::feed::protocol::Request;
    let tickers: Vec<Box<str>> = (0..3).map(|i| format!("NSE:S{i}-EQ").into()).collect();
    let cfg = fyers::FyersConfig {
        access_token: fyers::auth::mock_token("k", 4_102_444_800),
        ..fyers::FyersConfig::default()
    };
    let mut fy = fyers::Fyers::new(cfg, std::sync::Arc::new(tickers));
    for i in 0..3u32 {
        fy.seed(i, &format!("101000000030{i:02}")).unwrap();
    }
    let (mut out, mut sink_ticks) = (Vec::new(), Vec::new());
    fy.encode(
        Request::Subscribe {
            mode: Mode::Depth,
            symbols: &[0, 1, 2],
        },
        &mut out,
    );
    let mut feed = |fy: &mut fyers::Fyers, b: &[u8]| {
        fy.on_message(
            Incoming::Binary(b),
            1,
            &mut TickSink::collect(&mut sink_ticks),
            &mut out,
        )
        .unwrap();
    };
    feed(&mut fy, &serve::auth_reply(true, 0));
    let mut snap = DataWriter::new(1);
    let (sf, dp) = ([80_000i32; 21], [80_000i32; 30]);
    let names: Vec<(String, u16, bool)> = (0..3u16)
        .flat_map(|i| {
            [
                (format!("sf|nse_cm|30{i:02}"), 2 * i + 1, true),
                (format!("dp|nse_cm|30{i:02}"), 2 * i + 2, false),
            ]
        })
        .collect();
    for (name, id, is_sf) in &names {
        snap.snapshot(&SnapshotSpec {
            topic_id: id.to_be_bytes(),
            name,
            values: if *is_sf { &sf } else { &dp },
            multiplier: 1,
            precision: 2,
            exchange: "NSE",
            exchange_token: "30",
            symbol: "S",
        })
        .unwrap();
    }
    feed(&mut fy, &snap.finish().unwrap());
    assert_eq!(sink_ticks.len(), 6, "snapshots bound");
    let mut fy_wire = Vec::new();
    for f in 0..(4 * WARM + MEASURED) as i32 {
        let mut w = DataWriter::new(2 + f as u32);
        for (_, id, is_sf) in &names {
            let n = if *is_sf { 21 } else { 30 };
            let mut v = vec![fyers::packet::ABSENT; n];
            v[0] = 80_000 + f % 100;
            v[1] = 1_000 + f;
            w.update(id.to_be_bytes(), &v).unwrap();
        }
        ws_frame(&w.finish().unwrap(), &mut fy_wire);
    }
    // A longer warm-up: with 2,000 frames of ~700 bytes one allocation (tungstenite's read buffer
    // growing once more) still fell inside the measured window; after it, none.
    broker_path_allocs("fyers", Box::new(fy), fy_wire, (4 * WARM, MEASURED), 6);

    // Noren: acked, 3 symbols subscribed in Depth, `dk` snapshots merged; then text frames of
    // `df` and `tf` updates carrying only changed fields (simd-json parses each in the protocol's
    // reused buffer and tape).
    use tickwire_io::brokers::noren;
    let keys: Vec<Box<str>> = ["NSE|22", "NSE|2885", "NFO|35001"]
        .iter()
        .map(|&k| k.into())
        .collect();
    let cfg = noren::NorenConfig {
        user: "U".into(),
        token: "T".into(),
        ..noren::NorenConfig::default()
    };
    let mut nr = noren::Noren::new(cfg, std::sync::Arc::new(noren::Keys::new(&keys)));
    let (mut out, mut sink_ticks) = (Vec::new(), Vec::new());
    nr.encode(
        Request::Subscribe {
            mode: Mode::Depth,
            symbols: &[0, 1, 2],
        },
        &mut out,
    );
    let mut feed = |nr: &mut noren::Noren, t: &str| {
        nr.on_message(
            Incoming::Text(t),
            1,
            &mut TickSink::collect(&mut sink_ticks),
            &mut out,
        )
        .unwrap();
    };
    feed(&mut nr, r#"{"t":"ck","s":"OK","uid":"U"}"#);
    for k in &keys {
        let (e, tk) = k.split_once('|').unwrap();
        feed(
            &mut nr,
            &format!(
                r#"{{"t":"dk","e":"{e}","tk":"{tk}","lp":"800.05","v":"10","o":"799.00","h":"801.00","l":"798.50","c":"799.95","ap":"800.01","ltq":"5","tbq":"100","tsq":"120","bp1":"800.00","bq1":"10","bo1":"2","sp1":"800.10","sq1":"12","so1":"3","ft":"1700000000"}}"#
            ),
        );
    }
    assert_eq!(sink_ticks.len(), 3, "snapshots merged");
    let mut nr_wire = Vec::new();
    for f in 0..(4 * WARM + MEASURED) {
        let (e, tk) = keys[f as usize % 3].split_once('|').unwrap();
        let t = if f % 2 == 0 { "df" } else { "tf" };
        let msg = format!(
            r#"{{"t":"{t}","e":"{e}","tk":"{tk}","lp":"{}.{:02}","v":"{}","bq1":"{}","ft":"{}"}}"#,
            800 + f % 7,
            f % 100,
            10 + f,
            1 + f % 50,
            1_700_000_000 + f
        );
        ws_frame_op(0x81, msg.as_bytes(), &mut nr_wire);
    }
    // The same longer warm-up as Fyers' (tungstenite's read buffer grows once more late).
    broker_path_allocs("noren", Box::new(nr), nr_wire, (4 * WARM, MEASURED), 1);
    // Angel: one packet per binary message, the three modes in turn over three symbols.
    use tickwire_io::brokers::angel;
    let keys: Vec<Box<str>> = vec!["1|3045".into(), "1|2885".into(), "2|35003".into()];
    let an = angel::factory(&angel::AngelConfig::default(), std::sync::Arc::new(keys))();
    let mut an_wire = Vec::new();
    for f in 0..(WARM + MEASURED) as i64 {
        let (exchange, token) = [(1, 3045), (1, 2885), (2, 35003)][f as usize % 3];
        let mut best5 = [(0u16, 0i64, 0i64, 0u16); 10];
        for (k, e) in best5.iter_mut().enumerate() {
            *e = ((k % 2 == 0) as u16, 10 + k as i64, 80_000 + k as i64, 1);
        }
        let mut p = Vec::new();
        angel::packet::Fields {
            mode: (f % 3 + 1) as u8,
            exchange,
            token,
            sequence: f,
            exchange_ts_ms: 1_735_000_000_000 + f,
            ltp: 80_000 + f % 100,
            last_qty: 1,
            avg_price: 80_000,
            volume: 1_000 + f,
            buy_qty: 5.0,
            sell_qty: 6.0,
            open: 80_000,
            high: 80_100,
            low: 79_900,
            close: 80_000,
            oi: 7,
            best5,
            ..Default::default()
        }
        .emit(&mut p);
        ws_frame(&p, &mut an_wire);
    }
    broker_path_allocs("angel", an, an_wire, (WARM, MEASURED), 1);
    // Dhan: one packet per message, rotating ticker, quote and full over three NSE equities.
    use tickwire_io::brokers::dhan::{self, packet::emit};
    let keys: Vec<Box<str>> = (0..3)
        .map(|i| format!("NSE_EQ|{}|500000", 3045 + i).into())
        .collect();
    let dh = dhan::Dhan::new(
        dhan::DhanConfig::default(),
        std::sync::Arc::new(dhan::table(&keys)),
    );
    let mut dh_wire = Vec::new();
    let mut p = Vec::new();
    for f in 0..4 * WARM + MEASURED {
        let (id, ltp) = (3045 + f % 3, 500.0 + (f % 100) as f32 * 0.05);
        let q = emit::Quote {
            ltp,
            ltq: 5,
            ltt: 1_700_000_000 + f,
            avg: ltp,
            volume: 1000 + f,
            sell_qty: 10,
            buy_qty: 12,
            open: 498.0,
            close: 499.0,
            high: 510.0,
            low: 490.0,
        };
        let level = emit::Level {
            bid_qty: 10,
            ask_qty: 12,
            bid_orders: 1,
            ask_orders: 2,
            bid: ltp - 0.05,
            ask: ltp + 0.05,
        };
        p.clear();
        match f % 3 {
            0 => emit::ticker(&mut p, 1, id, ltp, q.ltt),
            1 => emit::quote(&mut p, 1, id, &q),
            _ => emit::full(&mut p, 1, id, &q, [0; 3], &[level; 5]),
        }
        ws_frame(&p, &mut dh_wire);
    }
    // The longer warm-up, as for Fyers: tungstenite's read buffer grows once more after 2,000.
    broker_path_allocs("dhan", Box::new(dh), dh_wire, (4 * WARM, MEASURED), 1);
}

/// `frames` Upstox frames, each a `FeedResponse` with a full market feed (5 levels, OHLC) for
/// every key, prices moving.
fn upstox_wire(keys: &[&str], frames: u32) -> Vec<u8> {
    use prost::Message as _;
    let mut out = Vec::new();
    for f in 0..frames {
        let feeds = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let ltp = 500.0 + f as f64 * 0.05 + i as f64;
                let q = pb::Quote {
                    bid_q: 10,
                    bid_p: ltp - 0.05,
                    ask_q: 12,
                    ask_p: ltp + 0.05,
                };
                let ff = pb::MarketFullFeed {
                    ltpc: Some(pb::Ltpc {
                        ltp,
                        ltt: 1_700_000_000_000 + f as i64,
                        ltq: 5,
                        cp: 499.0,
                    }),
                    market_level: Some(pb::MarketLevel {
                        bid_ask_quote: vec![q; 5],
                    }),
                    option_greeks: Some(pb::OptionGreeks::default()),
                    market_ohlc: Some(pb::MarketOhlc {
                        ohlc: vec![pb::Ohlc {
                            interval: "1d".into(),
                            open: 498.0,
                            high: ltp,
                            low: 497.0,
                            close: ltp,
                            vol: 9,
                            ts: 0,
                        }],
                    }),
                    atp: ltp,
                    vtt: 1000 + f as i64,
                    oi: 0.0,
                    iv: 0.0,
                    tbq: 100.0,
                    tsq: 120.0,
                };
                let feed = pb::Feed {
                    request_mode: pb::RequestMode::FullD5 as i32,
                    feed_union: Some(pb::feed::FeedUnion::FullFeed(pb::FullFeed {
                        full_feed_union: Some(pb::full_feed::FullFeedUnion::MarketFf(ff)),
                    })),
                };
                (k.to_string(), feed)
            })
            .collect();
        let r = pb::FeedResponse {
            r#type: pb::Type::LiveFeed as i32,
            feeds,
            current_ts: 1,
            market_info: None,
        };
        ws_frame(&r.encode_to_vec(), &mut out);
    }
    out
}
