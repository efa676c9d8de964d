//! Golden frames for Dhan's packets, written out byte by byte from the SDK's `struct` formats
//! (`<BHBIfI` ticker and previous close, `<BHBIfHIfIIIffff` quote, `<BHBII` OI,
//! `<BHBIfHIfIIIIIIffff100s` full with `<IIHHff` levels, `<BHBIf100s` depth, `<BHBIH` disconnect)
//! by Python's `struct.pack`, not by this crate's writers, so parser and mock cannot drift together.

use std::sync::Arc;

use tickwire_engine::price::Px;
use tickwire_engine::router::Mode;
use tickwire_engine::tick::valid;
use tickwire_engine::Tick;
use tungstenite::Message;

use super::packet::{self, emit, parse_message, Entry, Instruments, Said, SymState};
use super::{parse_key, table, Dhan, DhanConfig};
use crate::feed::protocol::{BrokerProtocol, Incoming, Request};
use crate::feed::{Action, TickSink};

// struct.pack('<BHBIfI', 2, 16, 1, 3045, 800.05, 1700000000)
const TICKER: [u8; 16] = [
    0x02, 0x10, 0x00, 0x01, 0xe5, 0x0b, 0x00, 0x00, 0x33, 0x03, 0x48, 0x44, 0x00, 0xf1, 0x53, 0x65,
];
// struct.pack('<BHBIfI', 6, 16, 1, 3045, 795.5, 0)
const PREV_CLOSE: [u8; 16] = [
    0x06, 0x10, 0x00, 0x01, 0xe5, 0x0b, 0x00, 0x00, 0x00, 0xe0, 0x46, 0x44, 0x00, 0x00, 0x00, 0x00,
];
// struct.pack('<BHBIfHIfIIIffff', 4, 50, 1, 3045, 800.05, 25, 1700000001, 799.9, 123456, 4000,
//             5000, 798.0, 801.0, 802.35, 797.1)
const QUOTE: [u8; 50] = [
    0x04, 0x32, 0x00, 0x01, 0xe5, 0x0b, 0x00, 0x00, 0x33, 0x03, 0x48, 0x44, 0x19, 0x00, 0x01, 0xf1,
    0x53, 0x65, 0x9a, 0xf9, 0x47, 0x44, 0x40, 0xe2, 0x01, 0x00, 0xa0, 0x0f, 0x00, 0x00, 0x88, 0x13,
    0x00, 0x00, 0x00, 0x80, 0x47, 0x44, 0x00, 0x40, 0x48, 0x44, 0x66, 0x96, 0x48, 0x44, 0x66, 0x46,
    0x47, 0x44,
];
// struct.pack('<BHBII', 5, 12, 2, 35005, 1500)
const OI: [u8; 12] = [
    0x05, 0x0c, 0x00, 0x02, 0xbd, 0x88, 0x00, 0x00, 0xdc, 0x05, 0x00, 0x00,
];
// struct.pack('<BHBIfHIfIIIIIIffff', 8, 162, 2, 35005, 24000.0, 75, 1700000002, 23990.55, 9000,
//             700, 800, 1500, 1600, 1400, 23900.0, 23950.0, 24010.1, 23880.2) + five levels
// struct.pack('<IIHHff', 100+k, 200+k, 3+k, 4+k, 24000-0.1*(k+1), 24000+0.1*(k+1))
const FULL: [u8; 162] = [
    0x08, 0xa2, 0x00, 0x02, 0xbd, 0x88, 0x00, 0x00, 0x00, 0x80, 0xbb, 0x46, 0x4b, 0x00, 0x02, 0xf1,
    0x53, 0x65, 0x1a, 0x6d, 0xbb, 0x46, 0x28, 0x23, 0x00, 0x00, 0xbc, 0x02, 0x00, 0x00, 0x20, 0x03,
    0x00, 0x00, 0xdc, 0x05, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00, 0x78, 0x05, 0x00, 0x00, 0x00, 0xb8,
    0xba, 0x46, 0x00, 0x1c, 0xbb, 0x46, 0x33, 0x94, 0xbb, 0x46, 0x66, 0x90, 0xba, 0x46, 0x64, 0x00,
    0x00, 0x00, 0xc8, 0x00, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0xcd, 0x7f, 0xbb, 0x46, 0x33, 0x80,
    0xbb, 0x46, 0x65, 0x00, 0x00, 0x00, 0xc9, 0x00, 0x00, 0x00, 0x04, 0x00, 0x05, 0x00, 0x9a, 0x7f,
    0xbb, 0x46, 0x66, 0x80, 0xbb, 0x46, 0x66, 0x00, 0x00, 0x00, 0xca, 0x00, 0x00, 0x00, 0x05, 0x00,
    0x06, 0x00, 0x66, 0x7f, 0xbb, 0x46, 0x9a, 0x80, 0xbb, 0x46, 0x67, 0x00, 0x00, 0x00, 0xcb, 0x00,
    0x00, 0x00, 0x06, 0x00, 0x07, 0x00, 0x33, 0x7f, 0xbb, 0x46, 0xcd, 0x80, 0xbb, 0x46, 0x68, 0x00,
    0x00, 0x00, 0xcc, 0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00, 0x7f, 0xbb, 0x46, 0x00, 0x81,
    0xbb, 0x46,
];
// struct.pack('<BHBIf', 3, 112, 2, 35005, 24000.0) + the same five levels
const DEPTH: [u8; 112] = [
    0x03, 0x70, 0x00, 0x02, 0xbd, 0x88, 0x00, 0x00, 0x00, 0x80, 0xbb, 0x46, 0x64, 0x00, 0x00, 0x00,
    0xc8, 0x00, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0xcd, 0x7f, 0xbb, 0x46, 0x33, 0x80, 0xbb, 0x46,
    0x65, 0x00, 0x00, 0x00, 0xc9, 0x00, 0x00, 0x00, 0x04, 0x00, 0x05, 0x00, 0x9a, 0x7f, 0xbb, 0x46,
    0x66, 0x80, 0xbb, 0x46, 0x66, 0x00, 0x00, 0x00, 0xca, 0x00, 0x00, 0x00, 0x05, 0x00, 0x06, 0x00,
    0x66, 0x7f, 0xbb, 0x46, 0x9a, 0x80, 0xbb, 0x46, 0x67, 0x00, 0x00, 0x00, 0xcb, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x07, 0x00, 0x33, 0x7f, 0xbb, 0x46, 0xcd, 0x80, 0xbb, 0x46, 0x68, 0x00, 0x00, 0x00,
    0xcc, 0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00, 0x7f, 0xbb, 0x46, 0x00, 0x81, 0xbb, 0x46,
];
// struct.pack('<BHBIH', 50, 10, 0, 0, 807)
const DISCONNECT: [u8; 10] = [0x32, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27, 0x03];
// struct.pack('<BHBIfI', 2, 16, 3, 8080, 84.2525, 1700000000)
const USDINR_TICKER: [u8; 16] = [
    0x02, 0x10, 0x00, 0x03, 0x90, 0x1f, 0x00, 0x00, 0x48, 0x81, 0xa8, 0x42, 0x00, 0xf1, 0x53, 0x65,
];

/// Symbol 0: NSE_EQ 3045 (tick 0.05); 1: NSE_FNO 35005 (tick 0.10); 2: NSE_CURRENCY 8080 (tick
/// 0.0025); 3: IDX_I 13 (no tick in the master); 4: not a Dhan instrument.
fn keys() -> Vec<Box<str>> {
    [
        "NSE_EQ|3045|500000",
        "NSE_FNO|35005|1000000",
        "NSE_CURRENCY|8080|25000",
        "IDX_I|13|0",
        "",
    ]
    .iter()
    .map(|&k| k.into())
    .collect()
}

fn instruments() -> Instruments {
    table(&keys())
}

fn parse(msgs: &[&[u8]]) -> (Vec<(Tick, bool)>, Vec<packet::ParseError>, Vec<Said>) {
    let t = instruments();
    let mut st = vec![SymState::default(); t.of_id.len()];
    let (mut ticks, mut errs, mut said) = (Vec::new(), Vec::new(), Vec::new());
    for m in msgs {
        said.push(parse_message(m, 7, &t, &mut st, |r| match r {
            Ok(x) => ticks.push(x),
            Err(e) => errs.push(e),
        }));
    }
    (ticks, errs, said)
}

fn px(t: i64) -> String {
    Px(t).to_string()
}

#[test]
fn ticker_puts_the_f32_on_the_tick_grid() {
    let (ticks, errs, _) = parse(&[&TICKER, &USDINR_TICKER]);
    assert!(errs.is_empty(), "{errs:?}");
    let (t, last) = ticks[0];
    assert!(last);
    assert_eq!((t.symbol_id, t.valid, t.recv_ts_ns), (0, valid::LTP, 7));
    assert_eq!(px(t.ltp), "800.05", "not 800.0499878");
    assert_eq!(t.exchange_ts_ns, 1_700_000_000_000_000_000);
    assert_eq!(px(ticks[1].0.ltp), "84.2525");
}

#[test]
fn quote_carries_the_previous_close_once_packet_6_came() {
    let (ticks, errs, _) = parse(&[&QUOTE, &PREV_CLOSE, &QUOTE]);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(ticks.len(), 2, "packet 6 only updates state");
    let t = ticks[0].0;
    assert_eq!(t.valid, valid::LTP | valid::QUOTE);
    assert_eq!(px(t.ltp), "800.05");
    assert_eq!(t.last_qty, 25);
    assert_eq!(t.exchange_ts_ns, 1_700_000_001_000_000_000);
    assert_eq!(px(t.avg_price), "799.9");
    assert_eq!(
        (t.volume, t.total_sell_qty, t.total_buy_qty),
        (123_456, 4000, 5000)
    );
    assert_eq!(
        [px(t.open), px(t.high), px(t.low), px(t.close)],
        ["798.0", "802.35", "797.1", "801.0"],
        "before packet 6 the packet's own close"
    );
    assert_eq!(px(ticks[1].0.close), "795.5", "then the previous close");
}

#[test]
fn full_has_quote_oi_and_five_levels_and_oi_packets_reach_later_ticks() {
    let (ticks, errs, _) = parse(&[&FULL, &OI, &DEPTH]);
    assert!(errs.is_empty(), "{errs:?}");
    let t = ticks[0].0;
    assert_eq!(t.symbol_id, 1);
    assert_eq!(
        t.valid,
        valid::LTP | valid::QUOTE | valid::DEPTH | valid::OI
    );
    assert_eq!(px(t.ltp), "24000.0");
    assert_eq!((t.last_qty, t.volume), (75, 9000));
    assert_eq!((t.total_sell_qty, t.total_buy_qty), (700, 800));
    assert_eq!((t.oi, t.oi_day_high, t.oi_day_low), (1500, 1600, 1400));
    assert_eq!(px(t.avg_price), "23990.55");
    assert_eq!(
        [px(t.open), px(t.close), px(t.high), px(t.low)],
        ["23900.0", "23950.0", "24010.1", "23880.2"]
    );
    for k in 0..5 {
        let (b, a) = (t.bids[k], t.asks[k]);
        assert_eq!(
            (b.qty, b.orders, a.qty, a.orders),
            (100 + k as u32, 3 + k as u32, 200 + k as u32, 4 + k as u32)
        );
        assert_eq!(px(b.price), format!("23999.{}", 9 - k), "bid {k}");
        assert_eq!(px(a.price), format!("24000.{}", 1 + k), "ask {k}");
    }
    // The depth packet: LTP and book only.
    let d = ticks[1].0;
    assert_eq!(d.valid, valid::LTP | valid::DEPTH);
    assert_eq!(d.bids, t.bids);
}

#[test]
fn disconnect_is_reported_not_parsed_past() {
    let mut msg = DISCONNECT.to_vec();
    msg.extend_from_slice(&TICKER);
    let (ticks, errs, said) = parse(&[&msg]);
    assert!(ticks.is_empty() && errs.is_empty());
    assert_eq!(said, vec![Said::Disconnect(807)]);
}

#[test]
fn packets_back_to_back_mark_only_the_last_tick() {
    let mut msg = TICKER.to_vec();
    msg.extend_from_slice(&PREV_CLOSE);
    msg.extend_from_slice(&QUOTE);
    msg.extend_from_slice(&[7, 8, 0, 1, 0, 0, 0, 0]); // market status: nothing
    let (ticks, errs, _) = parse(&[&msg]);
    assert!(errs.is_empty());
    assert_eq!(ticks.iter().map(|t| t.1).collect::<Vec<_>>(), [false, true]);
    assert_eq!(px(ticks[1].0.close), "795.5");
}

#[test]
fn malformed_packets_are_counted_errors() {
    use packet::ParseError as E;
    let mut unknown = TICKER;
    unknown[4] = 0x99; // security id not in the master
    let mut nan = TICKER;
    nan[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut huge = TICKER;
    huge[8..12].copy_from_slice(&f32::MAX.to_le_bytes());
    let (ticks, errs, _) = parse(&[
        &TICKER[..10],
        &[99, 0, 0],
        &unknown,
        &nan,
        &huge,
        &QUOTE[..49],
        &[],
    ]);
    assert!(ticks.is_empty());
    assert_eq!(
        errs,
        vec![
            E::Short {
                code: 2,
                need: 16,
                have: 10
            },
            E::UnknownCode(99),
            E::UnknownInstrument {
                segment: 1,
                security_id: 0x0b99
            },
            E::BadPrice,
            E::BadPrice,
            E::Short {
                code: 4,
                need: 50,
                have: 49
            },
        ]
    );
    // A good packet after a bad one in the same message is still used.
    let mut msg = unknown.to_vec();
    msg.extend_from_slice(&TICKER);
    let (ticks, errs, _) = parse(&[&msg]);
    assert_eq!((ticks.len(), errs.len()), (1, 1));
    assert!(ticks[0].1);
}

#[test]
fn the_writers_produce_the_golden_bytes() {
    let mut out = Vec::new();
    emit::ticker(&mut out, 1, 3045, 800.05, 1_700_000_000);
    assert_eq!(out, TICKER);
    out.clear();
    emit::prev_close(&mut out, 1, 3045, 795.5, 0);
    assert_eq!(out, PREV_CLOSE);
    out.clear();
    emit::oi(&mut out, 2, 35005, 1500);
    assert_eq!(out, OI);
    out.clear();
    emit::disconnect(&mut out, 807);
    assert_eq!(out, DISCONNECT);
    let q = emit::Quote {
        ltp: 800.05,
        ltq: 25,
        ltt: 1_700_000_001,
        avg: 799.9,
        volume: 123_456,
        sell_qty: 4000,
        buy_qty: 5000,
        open: 798.0,
        close: 801.0,
        high: 802.35,
        low: 797.1,
    };
    out.clear();
    emit::quote(&mut out, 1, 3045, &q);
    assert_eq!(out, QUOTE);
    let f = emit::Quote {
        ltp: 24000.0,
        ltq: 75,
        ltt: 1_700_000_002,
        avg: 23990.55,
        volume: 9000,
        sell_qty: 700,
        buy_qty: 800,
        open: 23900.0,
        close: 23950.0,
        high: 24010.1,
        low: 23880.2,
    };
    let levels = std::array::from_fn(|k| emit::Level {
        bid_qty: 100 + k as u32,
        ask_qty: 200 + k as u32,
        bid_orders: 3 + k as u16,
        ask_orders: 4 + k as u16,
        bid: (24000.0 - 0.1 * (k as f64 + 1.0)) as f32,
        ask: (24000.0 + 0.1 * (k as f64 + 1.0)) as f32,
    });
    out.clear();
    emit::full(&mut out, 2, 35005, &f, [1500, 1600, 1400], &levels);
    assert_eq!(out, FULL);
}

#[test]
fn grid_rounding_is_exact_for_every_tick_of_a_range() {
    // Every 0.05 step from 0.05 to 20,000: the f32 of the decimal comes back as that decimal.
    let e = Entry::new(1, 1, 500_000);
    for n in 1..=400_000i64 {
        let p = n * 500_000;
        let f = (p as f64 / 1e7) as f32;
        assert_eq!(packet::grid_price(f, &e), Some(p), "{}", Px(p));
    }
    // Currency: 0.0025 steps around 84.
    let c = Entry::new(3, 1, 25_000);
    for n in 0..40_000i64 {
        let p = 800_000_000 + n * 25_000;
        assert_eq!(packet::grid_price((p as f64 / 1e7) as f32, &c), Some(p));
    }
    assert_eq!(
        packet::grid_price(-12.35, &e),
        Some(-123_500_000),
        "negative prices (MCX 2020)"
    );
    assert_eq!(packet::grid_price(f32::INFINITY, &e), None);
}

#[test]
fn keys_parse_and_unknown_keys_are_not_listed() {
    assert_eq!(
        parse_key("NSE_EQ|3045|500000"),
        Some(Entry::new(1, 3045, 500_000))
    );
    assert_eq!(parse_key("IDX_I|13|0").unwrap().tick, packet::DEFAULT_TICK);
    for bad in [
        "",
        "NSE|1|1",
        "NSE_EQ|x|1",
        "NSE_EQ|0|1",
        "NSE_EQ|1|1|1",
        "NSE_EQ|1|y",
    ] {
        assert_eq!(parse_key(bad), None, "{bad}");
    }
    let t = instruments();
    assert!(t.entry(3).is_some() && t.entry(4).is_none() && t.entry(99).is_none());
}

fn dhan() -> Dhan {
    Dhan::new(
        DhanConfig {
            url: "ws://127.0.0.1:1".into(),
            client_id: "1000000001".into(),
            access_token: "tok".into(),
        },
        Arc::new(instruments()),
    )
}

fn texts(out: &[Message]) -> Vec<String> {
    out.iter()
        .map(|m| m.to_text().unwrap().to_string())
        .collect()
}

#[test]
fn connects_with_the_credentials_in_the_query() {
    let req = dhan().connect_job()().unwrap();
    assert_eq!(
        req.url,
        "ws://127.0.0.1:1/?version=2&token=tok&clientId=1000000001&authType=2"
    );
    assert!(req.headers.is_empty());
    let l = dhan().limits();
    assert_eq!(
        (l.per_message, l.per_connection, l.connections),
        (100, 5000, 5)
    );
    let live = dhan().liveness();
    assert!(matches!(live.keepalive, Some((_, ref m)) if matches!(m[..], [Message::Ping(_)])));
}

#[test]
fn requests_name_segment_and_id_and_a_mode_change_unsubscribes_the_old_code() {
    let mut d = dhan();
    assert!(d.knows(0) && d.knows(3) && !d.knows(4));
    let mut out = Vec::new();
    d.encode(
        Request::Subscribe {
            mode: Mode::Ltp,
            symbols: &[0, 1, 4],
        },
        &mut out,
    );
    d.encode(
        Request::ChangeMode {
            mode: Mode::Depth,
            symbols: &[0],
        },
        &mut out,
    );
    d.encode(
        Request::Subscribe {
            mode: Mode::Quote,
            symbols: &[3],
        },
        &mut out,
    );
    d.encode(
        Request::Unsubscribe {
            symbols: &[0, 1, 3],
        },
        &mut out,
    );
    assert_eq!(
        texts(&out),
        vec![
            r#"{"RequestCode":15,"InstrumentCount":2,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"3045"},{"ExchangeSegment":"NSE_FNO","SecurityId":"35005"}]}"#,
            r#"{"RequestCode":16,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"3045"}]}"#,
            r#"{"RequestCode":21,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"3045"}]}"#,
            r#"{"RequestCode":17,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"IDX_I","SecurityId":"13"}]}"#,
            r#"{"RequestCode":16,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_FNO","SecurityId":"35005"}]}"#,
            r#"{"RequestCode":18,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"IDX_I","SecurityId":"13"}]}"#,
            r#"{"RequestCode":22,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"3045"}]}"#,
        ]
    );
    // After a reconnect nothing is remembered: the full resubscription is plain subscribes.
    d.reset();
    out.clear();
    d.encode(
        Request::Subscribe {
            mode: Mode::Quote,
            symbols: &[0],
        },
        &mut out,
    );
    assert_eq!(out.len(), 1);
    for m in &out {
        let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        assert_eq!(v["RequestCode"], 17);
    }
}

#[test]
fn disconnect_reasons_stop_or_back_off() {
    let mut d = dhan();
    let mut ticks = Vec::new();
    let mut sink = TickSink::collect(&mut ticks);
    let mut on = |reason: u16| {
        let mut m = Vec::new();
        emit::disconnect(&mut m, reason);
        d.on_message(Incoming::Binary(&m), 0, &mut sink, &mut Vec::new())
            .unwrap_err()
    };
    let e = on(805);
    assert!(
        matches!(e.action, Action::RetryAfter(d) if d.as_secs() >= 60),
        "{e:?}"
    );
    for (r, word) in [
        (806, "Data APIs"),
        (807, "expired"),
        (808, "client id"),
        (809, "authentication"),
    ] {
        let e = on(r);
        assert_eq!(e.action, Action::CredentialsRejected, "{r}");
        assert!(
            e.reason.contains(word) && e.reason.contains(&r.to_string()),
            "{}",
            e.reason
        );
    }
    assert_eq!(on(999).action, Action::Retry);
    // Data passes through the sink, the final tick marked last.
    assert!(d
        .on_message(Incoming::Binary(&QUOTE), 5, &mut sink, &mut Vec::new())
        .is_ok());
    assert!(d
        .on_message(Incoming::Text("hello"), 5, &mut sink, &mut Vec::new())
        .is_ok());
    assert_eq!((sink.ticks(), sink.errors()), (1, 1));
}

/// xorshift64*, fixed seed: the fuzz property in plain `cargo test` (cargo-fuzz needs nightly).
fn rng(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn mutated_messages_never_panic_and_add_up() {
    let t = instruments();
    let mut st = vec![SymState::default(); t.of_id.len()];
    let seeds: [&[u8]; 8] = [
        &TICKER,
        &PREV_CLOSE,
        &QUOTE,
        &OI,
        &FULL,
        &DEPTH,
        &DISCONNECT,
        &USDINR_TICKER,
    ];
    let mut s = 0x5eed_u64;
    let mut buf = Vec::new();
    for _ in 0..100_000 {
        buf.clear();
        for _ in 0..=rng(&mut s) % 3 {
            buf.extend_from_slice(seeds[(rng(&mut s) % seeds.len() as u64) as usize]);
        }
        for _ in 0..rng(&mut s) % 6 {
            let r = rng(&mut s);
            let at = (r >> 8) as usize % buf.len().max(1);
            match r % 4 {
                0 if !buf.is_empty() => buf[at] = (r >> 32) as u8,
                1 => buf.truncate(at),
                2 => buf.push((r >> 24) as u8),
                _ if !buf.is_empty() => buf[at] ^= 1 << (r % 8),
                _ => {}
            }
        }
        let mut lasts = Vec::new();
        parse_message(&buf, 0, &t, &mut st, |r| {
            if let Ok((_, last)) = r {
                lasts.push(last);
            }
        });
        let marked = lasts.iter().filter(|&&l| l).count();
        assert!(
            marked <= 1 && (marked == 0 || lasts.last() == Some(&true)),
            "{buf:?}"
        );
    }
}

/// The protocol's one-packet fast path (`parse_single`) and the general loop must agree: the same
/// ticks, errors and disconnects for every message, valid or mutated.
#[test]
fn the_single_packet_path_agrees_with_the_general_one() {
    let t = instruments();
    let mut st = vec![SymState::default(); t.of_id.len()];
    let mut d = dhan();
    let seeds: [&[u8]; 8] = [
        &TICKER,
        &PREV_CLOSE,
        &QUOTE,
        &OI,
        &FULL,
        &DEPTH,
        &DISCONNECT,
        &USDINR_TICKER,
    ];
    let mut s = 0xfa57_u64;
    let mut buf = Vec::new();
    let (mut via_proto, mut out) = (Vec::new(), Vec::new());
    for i in 0..50_000 {
        buf.clear();
        // Mostly one packet per message, the case the fast path takes.
        for _ in 0..=(rng(&mut s) % 4).saturating_sub(2) {
            buf.extend_from_slice(seeds[(rng(&mut s) % seeds.len() as u64) as usize]);
        }
        if i % 2 == 1 {
            let r = rng(&mut s);
            let at = (r >> 8) as usize % buf.len().max(1);
            match r % 3 {
                0 if !buf.is_empty() => buf[at] = (r >> 32) as u8,
                1 => buf.truncate(at),
                _ if !buf.is_empty() => buf[at] ^= 1 << (r % 8),
                _ => {}
            }
        }
        let (mut ticks, mut errs) = (Vec::new(), 0);
        let said = parse_message(&buf, 9, &t, &mut st, |r| match r {
            Ok(x) => ticks.push(x.0),
            Err(_) => errs += 1,
        });
        via_proto.clear();
        let mut sink = TickSink::collect(&mut via_proto);
        let r = d.on_message(Incoming::Binary(&buf), 9, &mut sink, &mut out);
        assert_eq!(sink.errors(), errs, "{buf:?}");
        assert_eq!(r.is_err(), matches!(said, Said::Disconnect(_)), "{buf:?}");
        assert_eq!(via_proto, ticks, "{buf:?}");
    }
}
