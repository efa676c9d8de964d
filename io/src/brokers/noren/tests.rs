//! Golden messages written out by hand from Noren's documentation (the ShoonyaApi-py README's
//! touchline example and field tables), not produced by the mock, so parser and mock cannot drift
//! together; then the protocol's requests, ack handling, merging, and malformed input.

use std::sync::Arc;

use tickwire_engine::router::Mode;
use tickwire_engine::tick::valid;
use tickwire_engine::Tick;
use tungstenite::Message;

use super::wire::{field, Kind, Message as Wire, Parser};
use super::*;
use crate::feed::protocol::{Incoming, Request};
use crate::feed::{Action, BrokerProtocol, TickSink};

/// The README's three touchline messages (NTPC, token 11630), as the server sends them.
const TK: &str = r#"{"t":"tk","e":"NSE","tk":"11630","ts":"NTPC-EQ","pp":"2","ls":"1","ti":"0.05","lp":"118.55","h":"118.65","l":"118.10","ap":"118.39","v":"162220","bp1":"118.45","sp1":"118.50","bq1":"26","sq1":"6325"}"#;
const TF1: &str = r#"{"t":"tf","e":"NSE","tk":"11630","lp":"118.45","ap":"118.40","v":"166637","sp1":"118.55","bq1":"3135","sq1":"30"}"#;
const TF2: &str = r#"{"t":"tf","e":"NSE","tk":"11630","lp":"118.60"}"#;
/// A depth snapshot with every documented field kept (two levels), then an update.
const DK: &str = r#"{"t":"dk","e":"NFO","tk":"35001","ts":"NIFTY30JAN25F","lp":"23550.10","pc":"0.21","v":"1200","o":"23500.00","h":"23600.00","l":"23450.50","c":"23500.55","ap":"23540.25","ltt":"10:15:20","ltq":"75","tbq":"15000","tsq":"16500","bp1":"23550.00","bq1":"150","bo1":"2","bp2":"23549.90","bq2":"75","bo2":"1","sp1":"23550.20","sq1":"225","so1":"3","sp2":"23550.30","sq2":"300","so2":"4","lc":"21000.00","uc":"26000.00","52h":"26277.35","52l":"21281.45","oi":"1234500","poi":"1200000","toi":"9999999","ft":"1737969920"}"#;
const DF: &str =
    r#"{"t":"df","e":"NFO","tk":"35001","lp":"23550.20","bq1":"175","ft":"1737969921"}"#;

fn keys() -> Arc<Keys> {
    Arc::new(Keys::new(&[
        "NSE|11630".into(),
        "NFO|35001".into(),
        "".into(),
        "CDS|1048998".into(),
    ]))
}

fn cfg() -> NorenConfig {
    NorenConfig {
        user: "FA1234".into(),
        token: "tok".into(),
        url: "ws://127.0.0.1:1/NorenWSTP/".into(),
        ..NorenConfig::default()
    }
}

/// A protocol that is authenticated, with `symbols` subscribed in `mode`.
fn ready(symbols: &[u32], mode: Mode) -> (Noren, Vec<Message>) {
    let mut p = Noren::new(cfg(), keys());
    let mut out = Vec::new();
    p.on_open(&mut out);
    p.encode(Request::Subscribe { mode, symbols }, &mut out);
    let (ticks, _) = feed(&mut p, r#"{"t":"ck","s":"OK","uid":"FA1234"}"#, &mut out);
    assert!(ticks.is_empty() && p.authenticated());
    (p, out)
}

fn feed(p: &mut Noren, text: &str, out: &mut Vec<Message>) -> (Vec<(Tick, bool)>, Vec<ParseError>) {
    let (mut ticks, mut errs) = (Vec::new(), Vec::new());
    p.on_text(text.as_bytes(), 7, out, |r| match r {
        Ok(t) => ticks.push(t),
        Err(e) => errs.push(e),
    })
    .unwrap();
    (ticks, errs)
}

fn texts(out: &[Message]) -> Vec<String> {
    out.iter()
        .map(|m| match m {
            Message::Text(t) => t.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

const fn px(rupees: i64, paise: i64) -> i64 {
    rupees * 10_000_000 + paise * 100_000
}

#[test]
fn the_documented_touchline_parses_field_by_field() {
    let mut parser = Parser::default();
    let mut got = Vec::new();
    parser.parse(TK.as_bytes(), |r| match r.unwrap() {
        Wire::Data(u) => got.push(*u),
        other => panic!("{other:?}"),
    });
    let [u] = got[..] else { panic!("{got:?}") };
    assert_eq!((u.kind, u.exchange, u.token), (Kind::Tk, 1, 11630));
    assert_eq!(u.get(field::LP), Some(px(118, 55)));
    assert_eq!(u.get(field::H), Some(px(118, 65)));
    assert_eq!(u.get(field::L), Some(px(118, 10)));
    assert_eq!(u.get(field::AP), Some(px(118, 39)));
    assert_eq!(u.get(field::V), Some(162_220));
    assert_eq!(u.get(field::BP), Some(px(118, 45)));
    assert_eq!(u.get(field::SP), Some(px(118, 50)));
    assert_eq!(u.get(field::BQ), Some(26));
    assert_eq!(u.get(field::SQ), Some(6325));
    assert_eq!(u.get(field::O), None, "not in the message");
    assert_eq!(u.set.count_ones(), 9);
}

#[test]
fn decimals_parse_exactly_as_the_engine_does() {
    use super::wire::decimal;
    for t in [
        "118.55",
        "0.05",
        "-0.5",
        "+3",
        "84.2525",
        "83.2512345",
        "0",
        "7.",
        ".5",
        "922337203685",
        "",
        "-",
        ".",
        "1.12345678",
        "1..2",
        "1e5",
        "12a",
        " 1",
        "999999999999999999",
        "9223372036854775807",
        "00000000000000000001",
    ] {
        assert_eq!(
            decimal(t.as_bytes()),
            tickwire_engine::price::parse(t),
            "{t:?}"
        );
    }
}

#[test]
fn updates_merge_into_whole_ticks() {
    let (mut p, mut out) = ready(&[0], Mode::Quote);
    let (t, e) = feed(&mut p, TK, &mut out);
    assert!(e.is_empty());
    assert_eq!(t.len(), 1);
    assert!(t[0].1, "the message's only tick is its last");
    let (t, _) = feed(&mut p, TF1, &mut out);
    let tick = t[0].0;
    assert_eq!(tick.symbol_id, 0);
    assert_eq!(tick.recv_ts_ns, 7);
    assert_eq!(tick.ltp, px(118, 45));
    assert_eq!(tick.avg_price, px(118, 40));
    assert_eq!(tick.volume, 166_637);
    assert_eq!(tick.high, px(118, 65), "kept from the snapshot");
    assert_eq!(tick.low, px(118, 10));
    assert!(tick.has(valid::LTP | valid::QUOTE));
    assert!(!tick.has(valid::DEPTH) && !tick.has(valid::OI));
    let (t, _) = feed(&mut p, TF2, &mut out);
    let tick = t[0].0;
    assert_eq!(tick.ltp, px(118, 60));
    assert_eq!(tick.avg_price, px(118, 40));
    assert_eq!(tick.volume, 166_637);
}

#[test]
fn depth_messages_fill_the_book_and_the_quote() {
    let (mut p, mut out) = ready(&[1], Mode::Depth);
    let (t, e) = feed(&mut p, DK, &mut out);
    assert!(e.is_empty(), "{e:?}");
    let tick = t[0].0;
    assert!(tick.has(valid::LTP | valid::QUOTE | valid::DEPTH | valid::OI));
    assert_eq!(tick.symbol_id, 1);
    assert_eq!(tick.ltp, px(23550, 10));
    assert_eq!(tick.close, px(23500, 55));
    assert_eq!(tick.open, px(23500, 0));
    assert_eq!(tick.last_qty, 75);
    assert_eq!((tick.total_buy_qty, tick.total_sell_qty), (15_000, 16_500));
    assert_eq!(tick.oi, 1_234_500);
    assert_eq!(tick.exchange_ts_ns, 1_737_969_920_000_000_000);
    assert_eq!(
        (tick.bids[1].price, tick.bids[1].qty, tick.bids[1].orders),
        (px(23549, 90), 75, 1)
    );
    assert_eq!(
        (tick.asks[0].price, tick.asks[0].qty, tick.asks[0].orders),
        (px(23550, 20), 225, 3)
    );
    assert_eq!(tick.bids[2].price, 0, "levels not sent stay empty");
    let (t, _) = feed(&mut p, DF, &mut out);
    let tick = t[0].0;
    assert_eq!(tick.ltp, px(23550, 20));
    assert_eq!(tick.bids[0].qty, 175);
    assert_eq!(tick.bids[1].qty, 75, "kept");
    assert_eq!(tick.exchange_ts_ns, 1_737_969_921_000_000_000);
}

#[test]
fn requests_wait_for_the_ack_and_batch_keys() {
    let mut p = Noren::new(cfg(), keys());
    let mut out = Vec::new();
    p.on_open(&mut out);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&texts(&out)[0]).unwrap(),
        serde_json::json!({"t":"c","uid":"FA1234","actid":"FA1234","susertoken":"tok","source":"API"})
    );
    out.clear();
    p.encode(
        Request::Subscribe {
            mode: Mode::Ltp,
            symbols: &[0, 2, 3],
        },
        &mut out,
    );
    assert!(out.is_empty(), "held until the ack");
    assert!(!p.knows(2) && p.knows(3));
    feed(&mut p, r#"{"t":"ck","s":"OK","uid":"FA1234"}"#, &mut out);
    assert_eq!(texts(&out), [r#"{"t":"t","k":"NSE|11630#CDS|1048998"}"#]);
    out.clear();
    // The feed's retry of an unconfirmed symbol is a subscribe again: it goes out again.
    p.encode(
        Request::Subscribe {
            mode: Mode::Quote,
            symbols: &[3],
        },
        &mut out,
    );
    assert_eq!(texts(&out), [r#"{"t":"t","k":"CDS|1048998"}"#]);
    out.clear();
    // Quote rides the touchline too: no message. Depth: off the touchline, onto depth.
    p.encode(
        Request::ChangeMode {
            mode: Mode::Quote,
            symbols: &[0],
        },
        &mut out,
    );
    assert!(out.is_empty());
    p.encode(
        Request::ChangeMode {
            mode: Mode::Depth,
            symbols: &[0, 3],
        },
        &mut out,
    );
    assert_eq!(
        texts(&out),
        [
            r#"{"t":"u","k":"NSE|11630#CDS|1048998"}"#,
            r#"{"t":"d","k":"NSE|11630#CDS|1048998"}"#
        ]
    );
    out.clear();
    p.encode(
        Request::ChangeMode {
            mode: Mode::Ltp,
            symbols: &[3],
        },
        &mut out,
    );
    p.encode(Request::Unsubscribe { symbols: &[0, 3] }, &mut out);
    assert_eq!(
        texts(&out),
        [
            r#"{"t":"ud","k":"CDS|1048998"}"#,
            r#"{"t":"t","k":"CDS|1048998"}"#,
            r#"{"t":"u","k":"CDS|1048998"}"#,
            r#"{"t":"ud","k":"NSE|11630"}"#
        ]
    );
    // Data for an unsubscribed token is counted, not merged.
    let (t, e) = feed(&mut p, TK, &mut out);
    assert!(t.is_empty());
    assert_eq!(e, [ParseError::NotSubscribed(11630)]);
    // A reconnect forgets the ack, the subscriptions and the merged values.
    p.reset();
    assert!(!p.authenticated());
    // Waiting for an ack that does not come: fine for a while.
    p.on_open(&mut out);
    assert!(p.poll(&mut out).is_ok());
}

#[test]
fn a_refused_session_stops_the_feed() {
    let mut p = Noren::new(cfg(), keys());
    let mut out = Vec::new();
    let e = p
        .on_text(br#"{"t":"ck","s":"NOT_OK"}"#, 1, &mut out, |_| {})
        .unwrap_err();
    assert_eq!(e.action, Action::CredentialsRejected);
    assert!(e.reason.contains("susertoken"), "{}", e.reason);
    // No credentials: the dial never happens.
    let p = Noren::new(NorenConfig::default(), keys());
    assert_eq!(
        (p.connect_job())().unwrap_err().action,
        Action::CredentialsRejected
    );
    let lv = Noren::new(cfg(), keys()).liveness();
    let (every, msgs) = lv.keepalive.unwrap();
    assert_eq!(every, std::time::Duration::from_secs(3));
    assert_eq!(msgs, [Message::Ping(br#"{"t":"h"}"#.to_vec().into())]);
}

#[test]
fn bad_messages_are_counted_never_a_panic() {
    let (mut p, mut out) = ready(&[0, 1], Mode::Depth);
    let cases: &[(&str, usize)] = &[
        ("", 1),
        ("{", 1),
        ("[1,2]", 2),
        ("\"tk\"", 1),
        (r#"{"e":"NSE","tk":"11630"}"#, 1),
        (r#"{"t":"tk","e":"NSE"}"#, 1),
        (r#"{"t":"tk","e":"XXX","tk":"1"}"#, 1),
        (r#"{"t":"tk","e":"NSE","tk":"999"}"#, 1),
        (r#"{"t":"tk","e":"NSE","tk":"11630","lp":"1.2.3"}"#, 1),
        (r#"{"t":"tk","e":"NSE","tk":"11630","v":"-5"}"#, 1),
        (r#"{"t":"tk","e":"NSE","tk":"11630","lp":[1]}"#, 1),
        (r#"{"t":"tk","e":"NSE","tk":"11630","lp":"1.123456789"}"#, 1),
        (r#"{"t":"df","e":"NFO","tk":"35001","lp":"1"}"#, 1),
    ];
    for (text, errors) in cases {
        let (t, e) = feed(&mut p, text, &mut out);
        assert!(t.is_empty(), "{text}");
        assert_eq!(e.len(), *errors, "{text}: {e:?}");
    }
    // Tolerated: other message types, empty values, bare integers, zero fractions.
    let (t, e) = feed(&mut p, r#"{"t":"om","norenordno":"1"}"#, &mut out);
    assert!(t.is_empty() && e.is_empty());
    let (t, e) = feed(
        &mut p,
        r#"{"t":"tk","e":"NSE","tk":"11630","lp":118,"v":"10.00","oi":""}"#,
        &mut out,
    );
    assert!(e.is_empty(), "{e:?}");
    assert_eq!((t[0].0.ltp, t[0].0.volume), (px(118, 0), 10));
    // An array of messages: each parsed, only the final tick marked last.
    let arr = format!("[{TK},{DK}]");
    let (t, e) = feed(&mut p, &arr, &mut out);
    assert!(e.is_empty());
    assert_eq!(t.iter().map(|x| x.1).collect::<Vec<_>>(), [false, true]);
}

#[test]
fn on_message_feeds_the_sink() {
    let (mut p, mut out) = ready(&[0], Mode::Ltp);
    let mut ticks = Vec::new();
    let mut sink = TickSink::collect(&mut ticks);
    p.on_message(Incoming::Text(TK), 3, &mut sink, &mut out)
        .unwrap();
    p.on_message(Incoming::Text("nope"), 3, &mut sink, &mut out)
        .unwrap();
    p.on_message(Incoming::Binary(b"\x00"), 3, &mut sink, &mut out)
        .unwrap();
    // The bad text and the binary message: each a counted error.
    assert_eq!((sink.ticks(), sink.errors()), (1, 2));
    assert_eq!(ticks[0].ltp, px(118, 55));
}

/// The fuzz property, bounded and in-tree (cargo-fuzz needs nightly): documented messages mutated
/// byte by byte by a fixed-seed generator never panic, and every outcome is a tick or a counted
/// error.
#[test]
fn mutated_messages_never_panic() {
    let (mut p, mut out) = ready(&[0, 1], Mode::Depth);
    let seeds = [TK, TF1, TF2, DK, DF, r#"{"t":"ck","s":"OK"}"#];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..100_000u32 {
        let mut b = seeds[i as usize % seeds.len()].as_bytes().to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % b.len();
            match next() % 3 {
                0 => b[at] = next() as u8,
                1 => {
                    b.remove(at);
                }
                _ => b.insert(at, b"\"{}[],:0.-#|"[next() as usize % 12]),
            }
            if b.is_empty() {
                break;
            }
        }
        let (mut n, mut lasts) = (0, 0);
        let r = p.on_text(&b, 1, &mut out, |r| {
            n += 1;
            if let Ok((_, true)) = r {
                lasts += 1;
            }
        });
        assert!(lasts <= 1);
        if r.is_err() {
            // A mutated ack that is no longer OK stops; a new connection starts again.
            p.reset();
            out.clear();
            let (q, o) = ready(&[0, 1], Mode::Depth);
            (p, out) = (q, o);
            for s in [TK, DK] {
                feed(&mut p, s, &mut out);
            }
        }
        let _ = n;
    }
}

/// Parse cost on `on_text` (simd-json tape, merge, tick), for a quick figure without the
/// workspace's bench harness: `cargo test --release -p tickwire-io --lib noren_parse_cost --
/// --ignored --nocapture`. `benches/parse.rs` has the project's table.
#[test]
#[ignore]
fn noren_parse_cost() {
    let (mut p, mut out) = ready(&[0, 1], Mode::Depth);
    feed(&mut p, TK, &mut out);
    feed(&mut p, DK, &mut out);
    {
        let n = 200_000u32;
        let mut buf = TK.as_bytes().to_vec();
        let len = buf.len();
        buf.resize(len + simd_json::INPUT_PADDING, 0);
        let mut buffers = simd_json::Buffers::new(2048);
        let mut tape = simd_json::Tape::null();
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            let mut b = buf.clone();
            let mut t = tape.reset();
            simd_json::fill_tape_padded(&mut b, len, &mut buffers, &mut t).unwrap();
            tape = t.reset();
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "simd-json fill_tape_padded alone (+ a clone): {ns:.0} ns ({:?})",
            simd_json::Deserializer::algorithm()
        );
        let mut parser = Parser::default();
        let t0 = std::time::Instant::now();
        let mut k = 0;
        for _ in 0..n {
            parser.parse(TK.as_bytes(), |r| k += r.is_ok() as u32);
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        println!("Parser::parse tk: {ns:.0} ns");
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            for v in ["118.55", "118.65", "118.10", "118.39", "118.45", "118.50"] {
                k += std::hint::black_box(tickwire_engine::price::parse(std::hint::black_box(v)))
                    .is_some() as u32;
            }
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        println!("6 x price::parse: {ns:.0} ns {k}");
    }
    for (name, msg) in [
        ("tk touchline (whole)", TK),
        ("tf (1 field)", TF2),
        ("df", DF),
        ("dk", DK),
    ] {
        let n = 200_000u32;
        let mut ticks = 0u64;
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            p.on_text(msg.as_bytes(), 1, &mut out, |r| ticks += r.is_ok() as u64)
                .unwrap();
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(ticks, n as u64);
        println!("noren {name}: {ns:.0} ns/message ({} bytes)", msg.len());
    }
}
