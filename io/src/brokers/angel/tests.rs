//! Golden packets written out byte by byte from the documented layout (broker-formats §3b; the
//! bytes came from Python's `struct.pack('<BB25sqqq…')`, not from [`super::packet::Fields`] or the
//! mock), malformed and mutated packets (counted errors, never a panic), and the protocol's
//! requests, headers and error handling.

use std::sync::Arc;

use tickwire_engine::router::Mode;
use tickwire_engine::tick::valid;
use tungstenite::Message;

use super::packet::{self, parse, KeyMap, ParseError};
use super::protocol::Angel;
use super::{tables, AngelConfig};
use crate::feed::protocol::{BrokerProtocol, Incoming, Request};
use crate::feed::{Action, TickSink};

const LTP: [u8; 51] = [
    0x01, 0x01, 0x33, 0x30, 0x34, 0x35, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x39, 0x30, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x7b, 0x06, 0x0f, 0xf6, 0x93, 0x01, 0x00, 0x00, 0xb2, 0x38, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00,
];

const QUOTE: [u8; 123] = [
    0x02, 0x01, 0x33, 0x30, 0x34, 0x35, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x30, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xc8, 0x07, 0x0f, 0xf6, 0x93, 0x01, 0x00, 0x00, 0xb7, 0x38, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8a, 0x38, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x40, 0xe2, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x88, 0xb3, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x70, 0xb7, 0x40, 0x1c, 0x38, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x48, 0x39, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb8, 0x37, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x4e, 0x38, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
];

const SNAP: [u8; 379] = [
    0x03, 0x02, 0x33, 0x35, 0x30, 0x30, 0x33, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x15, 0x09, 0x0f, 0xf6, 0x93, 0x01, 0x00, 0x00, 0x6a, 0xef, 0x23, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x4b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x42, 0xef, 0x23, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x94, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40,
    0x70, 0xc7, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0xc9, 0x40, 0xa0, 0xb4, 0x23, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xc0, 0x02, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x90, 0x8d, 0x23, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x28, 0xc8, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0xbc, 0x08, 0x0f, 0xf6, 0x93,
    0x01, 0x00, 0x00, 0x06, 0x12, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x96, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x38, 0xef, 0x23,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x4b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x9c, 0xef, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x2c, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0xd4, 0xee, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00,
    0x00, 0xe1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x23, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x04, 0x00, 0x00, 0x00, 0x58, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0xf0, 0x23,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x01, 0x00, 0xc2, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x70, 0xee, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x01, 0x00, 0x0d, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0xee, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
    0x00, 0xa3, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, 0xf0, 0x23, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x08, 0x00, 0x01, 0x00, 0x84, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa8, 0xed, 0x23,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x1a, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x2c, 0xf1, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x30, 0x85, 0x27, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x40, 0x59, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0xac, 0x27, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x20, 0x0b, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00,
];

const CDS_LTP: [u8; 51] = [
    0x01, 0x0d, 0x31, 0x30, 0x34, 0x38, 0x39, 0x39, 0x38, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x06, 0x0f, 0xf6, 0x93, 0x01, 0x00, 0x00, 0xa0, 0x87, 0x37, 0x32, 0x00,
    0x00, 0x00, 0x00,
];

/// Symbol ids: 0 SBIN (1|3045), 1 NIFTY future (2|35003), 2 USDINR future (13|1048998), 3 unlisted.
fn keys() -> Vec<Box<str>> {
    vec![
        "1|3045".into(),
        "2|35003".into(),
        "13|1048998".into(),
        "".into(),
    ]
}

fn map() -> KeyMap {
    tables(&keys()).0
}

const RUPEE: i64 = 10_000_000;
const PAISA: i64 = 100_000;

#[test]
fn ltp_packet() {
    let t = parse(&LTP, 7, &map()).unwrap();
    assert_eq!(t.symbol_id, 0);
    assert_eq!(t.valid, valid::LTP);
    assert_eq!(t.recv_ts_ns, 7);
    assert_eq!(t.ltp, 800 * RUPEE + 50 * PAISA);
    assert_eq!(t.exchange_ts_ns, 1_735_000_000_123_000_000);
}

#[test]
fn quote_packet() {
    let t = parse(&QUOTE, 0, &map()).unwrap();
    assert_eq!(t.valid, valid::LTP | valid::QUOTE);
    assert_eq!(t.ltp, 80055 * PAISA);
    assert_eq!(t.last_qty, 10);
    assert_eq!(t.avg_price, 80010 * PAISA);
    assert_eq!(t.volume, 123456);
    assert_eq!((t.total_buy_qty, t.total_sell_qty), (5000, 6000));
    assert_eq!(
        (t.open, t.high, t.low, t.close),
        (79900 * PAISA, 80200 * PAISA, 79800 * PAISA, 79950 * PAISA)
    );
    assert_eq!(t.exchange_ts_ns, 1_735_000_000_456_000_000);
}

#[test]
fn snap_quote_packet_sides_by_flag_not_position() {
    let t = parse(&SNAP, 0, &map()).unwrap();
    assert_eq!(t.symbol_id, 1);
    assert_eq!(
        t.valid,
        valid::LTP | valid::QUOTE | valid::OI | valid::DEPTH
    );
    assert_eq!(t.ltp, 2355050 * PAISA);
    assert_eq!(t.last_qty, 75);
    assert_eq!(t.volume, 4500);
    assert_eq!((t.total_buy_qty, t.total_sell_qty), (12000, 13000));
    assert_eq!(t.close, 2345000 * PAISA);
    assert_eq!(t.oi, 987654);
    // Entries alternate and then bunch up on the wire; flag 1 = buy, 0 = sell, in wire order.
    let bids: Vec<_> = t
        .bids
        .iter()
        .map(|l| (l.qty, l.price / PAISA, l.orders))
        .collect();
    let asks: Vec<_> = t
        .asks
        .iter()
        .map(|l| (l.qty, l.price / PAISA, l.orders))
        .collect();
    assert_eq!(
        bids,
        vec![
            (150, 2355000, 3),
            (300, 2354900, 5),
            (450, 2354800, 6),
            (525, 2354700, 7),
            (900, 2354600, 10)
        ]
    );
    assert_eq!(
        asks,
        vec![
            (75, 2355100, 2),
            (225, 2355200, 4),
            (600, 2355300, 9),
            (675, 2355400, 8),
            (1050, 2355500, 11)
        ]
    );
}

#[test]
fn currency_prices_are_in_ten_millionths() {
    let t = parse(&CDS_LTP, 0, &map()).unwrap();
    assert_eq!(t.symbol_id, 2);
    assert_eq!(t.ltp, 84 * RUPEE + RUPEE / 4); // 84.25
}

#[test]
fn malformed_packets_are_errors() {
    let m = map();
    assert_eq!(
        parse(&[], 0, &m).unwrap_err(),
        ParseError::Length { mode: 0, len: 0 }
    );
    assert_eq!(
        parse(&LTP[..50], 0, &m).unwrap_err(),
        ParseError::Length { mode: 1, len: 50 }
    );
    // A Quote-mode byte on an LTP-sized packet, a mode-3 byte on a Quote packet.
    let mut b = LTP;
    b[0] = 2;
    assert!(matches!(
        parse(&b, 0, &m),
        Err(ParseError::Length { mode: 2, .. })
    ));
    let mut q = QUOTE;
    q[0] = 3;
    assert!(matches!(
        parse(&q, 0, &m),
        Err(ParseError::Length { mode: 3, .. })
    ));
    b[0] = 4; // Depth20: never subscribed by tickwire
    assert_eq!(parse(&b, 0, &m).unwrap_err(), ParseError::UnknownMode(4));
    let mut b = LTP;
    b[3] = b'x';
    assert_eq!(parse(&b, 0, &m).unwrap_err(), ParseError::BadToken);
    let mut b = LTP;
    b[2] = 0;
    assert_eq!(parse(&b, 0, &m).unwrap_err(), ParseError::BadToken);
    // A token with every byte a digit (no NUL) reads all 25: too many digits.
    let mut b = LTP;
    b[2..27].fill(b'9');
    assert_eq!(parse(&b, 0, &m).unwrap_err(), ParseError::BadToken);
    // The right token on the wrong exchange is not that instrument.
    let mut b = LTP;
    b[1] = 3;
    assert_eq!(
        parse(&b, 0, &m).unwrap_err(),
        ParseError::UnknownToken {
            exchange: 3,
            token: 3045
        }
    );
    let mut b = LTP;
    b[43..51].copy_from_slice(&i64::MAX.to_le_bytes());
    assert_eq!(parse(&b, 0, &m).unwrap_err(), ParseError::BadPrice);
    let mut q = QUOTE;
    q[75..83].copy_from_slice(&f64::NAN.to_le_bytes());
    assert_eq!(parse(&q, 0, &m).unwrap_err(), ParseError::BadQty);
    let mut q = QUOTE;
    q[67..75].copy_from_slice(&(-1i64).to_le_bytes());
    assert_eq!(parse(&q, 0, &m).unwrap_err(), ParseError::BadQty);
    let mut s = SNAP;
    s[147] = 2;
    assert_eq!(parse(&s, 0, &m).unwrap_err(), ParseError::BadFlag(2));
}

/// A small fixed-seed generator (xorshift*), so the "fuzz-like" run is the same every time.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The cargo-fuzz target's property, in tree and bounded (100k cases): mutated golden packets and
/// random bytes never panic, and a packet either yields one tick of its own symbol or one counted
/// error through the protocol.
#[test]
fn fuzz_like_mutations_never_panic() {
    let m = map();
    let mut p = protocol();
    let mut rng = Rng(0x0005_eeda_46e1);
    let seeds: [&[u8]; 4] = [&LTP, &QUOTE, &SNAP, &CDS_LTP];
    for case in 0..100_000u32 {
        let mut b = seeds[case as usize % 4].to_vec();
        match rng.next() % 4 {
            0 => {
                for _ in 0..1 + rng.next() % 8 {
                    let i = (rng.next() as usize) % b.len();
                    b[i] = rng.next() as u8;
                }
            }
            1 => b.truncate((rng.next() as usize) % (b.len() + 1)),
            2 => b.extend((0..rng.next() % 300).map(|_| rng.next() as u8)),
            _ => b = (0..rng.next() % 400).map(|_| rng.next() as u8).collect(),
        }
        if let Ok(t) = parse(&b, 0, &m) {
            assert!(t.symbol_id < 3 && t.has(valid::LTP));
        }
        let mut ticks = Vec::new();
        let mut sink = TickSink::collect(&mut ticks);
        p.on_message(Incoming::Binary(&b), 0, &mut sink, &mut Vec::new())
            .unwrap();
        assert_eq!(sink.ticks() + sink.errors(), 1);
    }
}

fn protocol() -> Angel {
    let (map, of_id) = tables(&keys());
    Angel::new(
        AngelConfig {
            url: "ws://127.0.0.1:1/smart-stream".into(),
            api_key: "key".into(),
            client_code: "C1".into(),
            jwt: "eyJ.jwt".into(),
            feed_token: "feed".into(),
        },
        Arc::new(map),
        Arc::new(of_id),
    )
}

fn texts(out: &[Message]) -> Vec<String> {
    out.iter()
        .map(|m| m.to_text().unwrap().to_string())
        .collect()
}

#[test]
fn connects_with_the_four_headers() {
    let req = protocol().connect_job()().unwrap();
    assert_eq!(req.url, "ws://127.0.0.1:1/smart-stream");
    let h: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        h,
        vec![
            ("Authorization", "Bearer eyJ.jwt"),
            ("x-api-key", "key"),
            ("x-client-code", "C1"),
            ("x-feed-token", "feed"),
        ]
    );
    assert_eq!(super::protocol::authorization("Bearer x"), "Bearer x");
    let l = protocol().liveness();
    assert_eq!(l.dead_after.as_secs(), 20);
    let (every, msgs) = l.keepalive.unwrap();
    assert_eq!(every.as_secs(), 10);
    assert_eq!(msgs, vec![Message::Text("ping".into())]);
}

#[test]
fn requests_group_by_exchange_and_a_mode_change_ends_the_old_mode() {
    let mut p = protocol();
    assert!(p.knows(0) && p.knows(2) && !p.knows(3) && !p.knows(9));
    let mut out = Vec::new();
    p.encode(
        Request::Subscribe {
            mode: Mode::Quote,
            symbols: &[0, 1, 2, 3],
        },
        &mut out,
    );
    p.encode(
        Request::ChangeMode {
            mode: Mode::Depth,
            symbols: &[1],
        },
        &mut out,
    );
    p.encode(Request::Unsubscribe { symbols: &[0, 1] }, &mut out);
    assert_eq!(
        texts(&out),
        vec![
            r#"{"correlationID":"tw00000001","action":1,"params":{"mode":2,"tokenList":[{"exchangeType":1,"tokens":["3045"]},{"exchangeType":2,"tokens":["35003"]},{"exchangeType":13,"tokens":["1048998"]}]}}"#,
            r#"{"correlationID":"tw00000002","action":1,"params":{"mode":3,"tokenList":[{"exchangeType":2,"tokens":["35003"]}]}}"#,
            r#"{"correlationID":"tw00000003","action":0,"params":{"mode":2,"tokenList":[{"exchangeType":2,"tokens":["35003"]}]}}"#,
            r#"{"correlationID":"tw00000004","action":0,"params":{"mode":2,"tokenList":[{"exchangeType":1,"tokens":["3045"]}]}}"#,
            r#"{"correlationID":"tw00000005","action":0,"params":{"mode":3,"tokenList":[{"exchangeType":2,"tokens":["35003"]}]}}"#,
        ]
    );
    // Every request is valid JSON in the SDK's shape.
    for t in texts(&out) {
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert!(v["params"]["tokenList"].is_array());
    }
    // After a reset (a new connection) nothing is held: an unsubscribe sends nothing.
    p.reset();
    let mut out = Vec::new();
    p.encode(Request::Unsubscribe { symbols: &[2] }, &mut out);
    assert!(out.is_empty());
}

#[test]
fn pong_is_quiet_and_e1002_rejects_that_requests_symbols() {
    let mut p = protocol();
    let mut out = Vec::new();
    p.encode(
        Request::Subscribe {
            mode: Mode::Ltp,
            symbols: &[0],
        },
        &mut out,
    );
    p.encode(
        Request::Subscribe {
            mode: Mode::Ltp,
            symbols: &[1, 2],
        },
        &mut out,
    );
    let mut ticks = Vec::new();
    let mut sink = TickSink::collect(&mut ticks);
    let mut on = |t: &str| p.on_message(Incoming::Text(t), 0, &mut sink, &mut Vec::new());
    assert!(on("pong").is_ok());
    let e = on(r#"{"correlationID":"tw00000002","errorCode":"E1002","errorMessage":"Invalid Request. Subscription Limit Exceeded"}"#).unwrap_err();
    assert_eq!(e.action, Action::Refuse(vec![1, 2]));
    assert!(e.reason.contains("E1002"), "{}", e.reason);
    let e = on(
        r#"{"correlationID":"x","errorCode":"E1001","errorMessage":"Invalid Request Payload."}"#,
    )
    .unwrap_err();
    assert_eq!(e.action, Action::Reject(vec![]));
    assert!(!e.drops_connection());
    assert_eq!(on("garbage").unwrap_err().action, Action::Reject(vec![]));
}

#[test]
fn an_encoded_packet_reads_back() {
    // The encoder the mock and the benchmarks use agrees with the golden bytes.
    let f = packet::Fields {
        mode: 1,
        exchange: 1,
        token: 3045,
        sequence: 12345,
        exchange_ts_ms: 1735000000123,
        ltp: 80050,
        ..Default::default()
    };
    let mut out = Vec::new();
    f.emit(&mut out);
    assert_eq!(out, LTP);
}
