//! Golden Kite frames, written out as bytes from Kite's published packet tables (`docs/brokers.md`;
//! built by a separate script with Python's `struct.pack`, not by our encoder), so the parser and
//! the mock's encoder cannot drift together.

use tickwire_engine::tick::valid;
use tickwire_engine::Px;

use super::packet::{RawLevel, FULL_LEN, INDEX_FULL_LEN, INDEX_QUOTE_LEN, LTP_LEN, QUOTE_LEN};
use super::*;

// LTP: token 408065 (NSE), last price 142405 paise = 1424.05
// CDS_LTP: token 268043523 (segment 3, divisor 10^7), 832512345 = 83.2512345
// INDEX_QUOTE: token 256265 (segment 9), ltp 2350055, high 2360010, low 2340000, open 2345000,
//   close 2344000, change 6055
// INDEX_FULL: the same + exchange timestamp 1795484484
// QUOTE: token 779521, ltp 80015, ltq 25, atp 80002, volume 1234567, buy 5000, sell 7000,
//   open 79900, high 80500, low 79500, close 79800
// FULL: the same + ltt 1795484480, oi 0/0/0, exchange ts 1795484484, bids (qty 100+i,
//   price 80010-5i, orders 3+i), asks (qty 200+i, price 80020+5i, orders 4+i)
// MULTI_FRAME: count 4, then LTP, CDS_LTP, INDEX_FULL, FULL each with a u16 length
const LTP_PACKET: [u8; 8] = [0x00, 0x06, 0x3a, 0x01, 0x00, 0x02, 0x2c, 0x45];
const CDS_LTP_PACKET: [u8; 8] = [0x0f, 0xfa, 0x05, 0x03, 0x31, 0x9f, 0x21, 0x59];
const INDEX_QUOTE_PACKET: [u8; 28] = [
    0x00, 0x03, 0xe9, 0x09, 0x00, 0x23, 0xdb, 0xe7, 0x00, 0x24, 0x02, 0xca, 0x00, 0x23, 0xb4, 0xa0,
    0x00, 0x23, 0xc8, 0x28, 0x00, 0x23, 0xc4, 0x40, 0x00, 0x00, 0x17, 0xa7,
];
const INDEX_FULL_PACKET: [u8; 32] = [
    0x00, 0x03, 0xe9, 0x09, 0x00, 0x23, 0xdb, 0xe7, 0x00, 0x24, 0x02, 0xca, 0x00, 0x23, 0xb4, 0xa0,
    0x00, 0x23, 0xc8, 0x28, 0x00, 0x23, 0xc4, 0x40, 0x00, 0x00, 0x17, 0xa7, 0x6b, 0x04, 0xeb, 0x44,
];
const QUOTE_PACKET: [u8; 44] = [
    0x00, 0x0b, 0xe5, 0x01, 0x00, 0x01, 0x38, 0x8f, 0x00, 0x00, 0x00, 0x19, 0x00, 0x01, 0x38, 0x82,
    0x00, 0x12, 0xd6, 0x87, 0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x1b, 0x58, 0x00, 0x01, 0x38, 0x1c,
    0x00, 0x01, 0x3a, 0x74, 0x00, 0x01, 0x36, 0x8c, 0x00, 0x01, 0x37, 0xb8,
];
const FULL_PACKET: [u8; 184] = [
    0x00, 0x0b, 0xe5, 0x01, 0x00, 0x01, 0x38, 0x8f, 0x00, 0x00, 0x00, 0x19, 0x00, 0x01, 0x38, 0x82,
    0x00, 0x12, 0xd6, 0x87, 0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x1b, 0x58, 0x00, 0x01, 0x38, 0x1c,
    0x00, 0x01, 0x3a, 0x74, 0x00, 0x01, 0x36, 0x8c, 0x00, 0x01, 0x37, 0xb8, 0x6b, 0x04, 0xeb, 0x40,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6b, 0x04, 0xeb, 0x44,
    0x00, 0x00, 0x00, 0x64, 0x00, 0x01, 0x38, 0x8a, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x65,
    0x00, 0x01, 0x38, 0x85, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x00, 0x01, 0x38, 0x80,
    0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x67, 0x00, 0x01, 0x38, 0x7b, 0x00, 0x06, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x68, 0x00, 0x01, 0x38, 0x76, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8,
    0x00, 0x01, 0x38, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc9, 0x00, 0x01, 0x38, 0x99,
    0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0xca, 0x00, 0x01, 0x38, 0x9e, 0x00, 0x06, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xcb, 0x00, 0x01, 0x38, 0xa3, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcc,
    0x00, 0x01, 0x38, 0xa8, 0x00, 0x08, 0x00, 0x00,
];
const MULTI_FRAME: [u8; 242] = [
    0x00, 0x04, 0x00, 0x08, 0x00, 0x06, 0x3a, 0x01, 0x00, 0x02, 0x2c, 0x45, 0x00, 0x08, 0x0f, 0xfa,
    0x05, 0x03, 0x31, 0x9f, 0x21, 0x59, 0x00, 0x20, 0x00, 0x03, 0xe9, 0x09, 0x00, 0x23, 0xdb, 0xe7,
    0x00, 0x24, 0x02, 0xca, 0x00, 0x23, 0xb4, 0xa0, 0x00, 0x23, 0xc8, 0x28, 0x00, 0x23, 0xc4, 0x40,
    0x00, 0x00, 0x17, 0xa7, 0x6b, 0x04, 0xeb, 0x44, 0x00, 0xb8, 0x00, 0x0b, 0xe5, 0x01, 0x00, 0x01,
    0x38, 0x8f, 0x00, 0x00, 0x00, 0x19, 0x00, 0x01, 0x38, 0x82, 0x00, 0x12, 0xd6, 0x87, 0x00, 0x00,
    0x13, 0x88, 0x00, 0x00, 0x1b, 0x58, 0x00, 0x01, 0x38, 0x1c, 0x00, 0x01, 0x3a, 0x74, 0x00, 0x01,
    0x36, 0x8c, 0x00, 0x01, 0x37, 0xb8, 0x6b, 0x04, 0xeb, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6b, 0x04, 0xeb, 0x44, 0x00, 0x00, 0x00, 0x64, 0x00, 0x01,
    0x38, 0x8a, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x65, 0x00, 0x01, 0x38, 0x85, 0x00, 0x04,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x00, 0x01, 0x38, 0x80, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x67, 0x00, 0x01, 0x38, 0x7b, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x00, 0x01,
    0x38, 0x76, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, 0x00, 0x01, 0x38, 0x94, 0x00, 0x04,
    0x00, 0x00, 0x00, 0x00, 0x00, 0xc9, 0x00, 0x01, 0x38, 0x99, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xca, 0x00, 0x01, 0x38, 0x9e, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcb, 0x00, 0x01,
    0x38, 0xa3, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcc, 0x00, 0x01, 0x38, 0xa8, 0x00, 0x08,
    0x00, 0x00,
];

fn tokens() -> TokenMap {
    [(408065, 0), (268043523, 1), (256265, 2), (779521, 3)]
        .into_iter()
        .collect()
}

fn parse_one(bytes: &[u8]) -> Tick {
    let mut t = Tick::new(u32::MAX);
    Packet::new_checked(bytes).unwrap().fill(&mut t).unwrap();
    t
}

#[test]
fn ltp_packets_and_divisors() {
    let t = parse_one(&LTP_PACKET);
    assert_eq!(Px(t.ltp).to_string(), "1424.05");
    assert_eq!(t.valid, valid::LTP);
    let t = parse_one(&CDS_LTP_PACKET);
    assert_eq!(
        Px(t.ltp).to_string(),
        "83.2512345",
        "CDS keeps all 7 decimals"
    );
    assert_eq!(packet::divisor(0x0000_0106), 10_000, "BCD");
    assert_eq!(packet::divisor(0x0000_010c), 10_000, "NCO");
}

#[test]
fn index_packets() {
    let t = parse_one(&INDEX_QUOTE_PACKET);
    assert_eq!(Px(t.ltp).to_string(), "23500.55");
    assert_eq!(
        (Px(t.high).to_string(), Px(t.low).to_string()),
        ("23600.1".into(), "23400.0".into())
    );
    assert_eq!(
        (Px(t.open).to_string(), Px(t.close).to_string()),
        ("23450.0".into(), "23440.0".into())
    );
    assert_eq!(t.exchange_ts_ns, 0);
    let t = parse_one(&INDEX_FULL_PACKET);
    assert_eq!(t.exchange_ts_ns, 1_795_484_484_000_000_000);
    assert!(t.has(valid::LTP | valid::QUOTE) && !t.has(valid::DEPTH));
}

#[test]
fn quote_and_full_packets() {
    let t = parse_one(&QUOTE_PACKET);
    assert_eq!(Px(t.ltp).to_string(), "800.15");
    assert_eq!(
        (t.last_qty, t.volume, t.total_buy_qty, t.total_sell_qty),
        (25, 1_234_567, 5000, 7000)
    );
    assert_eq!(Px(t.avg_price).to_string(), "800.02");
    assert_eq!(Px(t.close).to_string(), "798.0");
    assert!(!t.has(valid::DEPTH));
    let t = parse_one(&FULL_PACKET);
    assert!(t.has(valid::LTP | valid::QUOTE | valid::DEPTH | valid::OI));
    assert_eq!(t.exchange_ts_ns, 1_795_484_484_000_000_000);
    for i in 0..5 {
        assert_eq!(t.bids[i].qty, 100 + i as u32);
        assert_eq!(t.bids[i].price, (80_010 - 5 * i as i64) * 100_000);
        assert_eq!(t.bids[i].orders, 3 + i as u32);
        assert_eq!(t.asks[i].qty, 200 + i as u32);
        assert_eq!(t.asks[i].price, (80_020 + 5 * i as i64) * 100_000);
        assert_eq!(t.asks[i].orders, 4 + i as u32);
    }
}

fn full_repr() -> Repr {
    Repr {
        token: 779521,
        ltp: 80015,
        last_qty: 25,
        avg_price: 80002,
        volume: 1_234_567,
        buy_qty: 5000,
        sell_qty: 7000,
        open: 79900,
        high: 80500,
        low: 79500,
        close: 79800,
        last_trade_time: 1_795_484_480,
        exchange_ts: 1_795_484_484,
        bids: std::array::from_fn(|i| RawLevel {
            qty: 100 + i as u32,
            price: 80010 - 5 * i as u32,
            orders: 3 + i as u16,
        }),
        asks: std::array::from_fn(|i| RawLevel {
            qty: 200 + i as u32,
            price: 80020 + 5 * i as u32,
            orders: 4 + i as u16,
        }),
        ..Repr::default()
    }
}

#[test]
fn the_encoder_emits_the_golden_bytes() {
    let r = full_repr();
    let mut out = vec![];
    r.emit(Kind::Full, &mut out);
    assert_eq!(out, FULL_PACKET);
    out.clear();
    r.emit(Kind::Quote, &mut out);
    assert_eq!(out, QUOTE_PACKET);
    let idx = Repr {
        token: 256265,
        ltp: 2350055,
        high: 2360010,
        low: 2340000,
        open: 2345000,
        close: 2344000,
        change: 6055,
        exchange_ts: 1795484484,
        ..Repr::default()
    };
    out.clear();
    idx.emit(Kind::IndexFull, &mut out);
    assert_eq!(out, INDEX_FULL_PACKET);
    out.clear();
    idx.emit(Kind::IndexQuote, &mut out);
    assert_eq!(out, INDEX_QUOTE_PACKET);
    let mut f = vec![];
    frame::emit(
        &[
            &LTP_PACKET,
            &CDS_LTP_PACKET,
            &INDEX_FULL_PACKET,
            &FULL_PACKET,
        ],
        &mut f,
    );
    assert_eq!(f, MULTI_FRAME);
    assert_eq!(
        (
            LTP_LEN,
            INDEX_QUOTE_LEN,
            INDEX_FULL_LEN,
            QUOTE_LEN,
            FULL_LEN
        ),
        (8, 28, 32, 44, 184)
    );
}

#[test]
fn a_multi_packet_frame_yields_every_tick_with_its_symbol() {
    let mut got = vec![];
    let st = parse_frame(
        &MULTI_FRAME,
        42,
        &tokens(),
        |t| got.push(t),
        |e| panic!("{e}"),
    );
    assert_eq!(
        st,
        FrameStats {
            ticks: 4,
            errors: 0
        }
    );
    assert_eq!(
        got.iter().map(|t| t.symbol_id).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(got.iter().all(|t| t.recv_ts_ns == 42));
}

#[test]
fn only_the_frames_final_packet_is_marked_last() {
    let mut lasts = vec![];
    parse_frame_marked(
        &MULTI_FRAME,
        0,
        &tokens(),
        |_, last| lasts.push(last),
        |e| panic!("{e}"),
    );
    assert_eq!(lasts, [false, false, false, true]);
}

#[test]
fn heartbeats_produce_nothing() {
    assert!(matches!(split(&[0x00]), Frame::Heartbeat));
    assert!(matches!(split(&[]), Frame::Heartbeat));
    let st = parse_frame(
        &[0],
        0,
        &tokens(),
        |_| panic!("no tick"),
        |_| panic!("no error"),
    );
    assert_eq!(st, FrameStats::default());
}

#[test]
fn malformed_frames_are_counted_errors() {
    let toks = tokens();
    let errs = |frame: &[u8]| {
        let mut v = vec![];
        let mut n = 0;
        parse_frame(frame, 0, &toks, |_| n += 1, |e| v.push(e));
        (n, v)
    };
    // count says 2, only one packet present
    let mut f = vec![0, 2, 0, 8];
    f.extend_from_slice(&LTP_PACKET);
    assert_eq!(
        errs(&f),
        (
            1,
            vec![ParseError::Truncated {
                declared: 1,
                remaining: 0
            }]
        )
    );
    // a length that runs past the end
    let f = [0, 1, 0, 184, 1, 2, 3];
    assert_eq!(
        errs(&f),
        (
            0,
            vec![ParseError::LyingLength {
                length: 184,
                remaining: 3
            }]
        )
    );
    // an unknown packet size, then a good packet: the good one still counts
    let mut f = vec![0, 2, 0, 3, 9, 9, 9, 0, 8];
    f.extend_from_slice(&LTP_PACKET);
    assert_eq!(errs(&f), (1, vec![ParseError::UnknownPacketLength(3)]));
    // trailing garbage
    let mut f = vec![0, 1, 0, 8];
    f.extend_from_slice(&LTP_PACKET);
    f.push(7);
    assert_eq!(errs(&f), (1, vec![ParseError::TrailingBytes(1)]));
    // an unknown token
    let f = [0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 5];
    assert_eq!(errs(&f), (0, vec![ParseError::UnknownToken(1)]));
    // a negative depth quantity
    let mut p = FULL_PACKET;
    p[64] = 0x80;
    let mut f = vec![0, 1, 0, 184];
    f.extend_from_slice(&p);
    assert_eq!(errs(&f), (0, vec![ParseError::BadPrice]));
}

/// A small deterministic fuzz: golden frames with bytes flipped, cut and extended, plus random
/// frames. The parser must never panic, and every packet must be a tick or a counted error.
#[test]
fn mutated_frames_never_panic() {
    let toks = tokens();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..200_000 {
        let mut f = MULTI_FRAME.to_vec();
        match i % 4 {
            0 => {
                for _ in 0..1 + rnd() % 4 {
                    let k = (rnd() as usize) % f.len();
                    f[k] = rnd() as u8;
                }
            }
            1 => f.truncate((rnd() as usize) % f.len()),
            2 => f.extend((0..rnd() % 64).map(|_| rnd() as u8)),
            _ => f = (0..rnd() % 300).map(|_| rnd() as u8).collect(),
        }
        let (mut ok, mut bad) = (0u32, 0u32);
        let st = parse_frame(&f, 0, &toks, |_| ok += 1, |_| bad += 1);
        assert_eq!((st.ticks, st.errors), (ok, bad));
    }
}
