//! [`Fyers`] driven through the broker seam with the golden frames of `tests.rs`: open → auth
//! reply → subscriptions released → snapshots → updates with holes → lite → ticks with their values,
//! valid bits and `last` marks → acks every N packets; mode changes and unsubscribes on the wire;
//! 51001; symbol resolution on the helper thread (with a fake resolver: the HTTP call itself is
//! tested in `resolve.rs`); the token checked before a dial.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_engine::price;
use tickwire_engine::router::Mode;
use tickwire_engine::tick::valid;
use tickwire_engine::Tick;
use tungstenite::Message;

use super::auth;
use super::golden::*;
use super::protocol::{Fyers, FyersConfig};
use super::request;
use super::resolve::{Reply, ResolveFn};
use super::serve::{self, ClientPacket};
use super::ParseError;
use crate::feed::protocol::{BrokerProtocol, Incoming, Request};
use crate::feed::{Action, FeedError, TickSink};

const SBIN: u32 = 0;
const NIFTY: u32 = 1;
const NOT_FYERS: u32 = 2;
const RELIANCE: u32 = 3;
const NOPE: u32 = 4;

fn symbols() -> Arc<Vec<Box<str>>> {
    let t = [
        "NSE:SBIN-EQ",
        "NSE:NIFTY50-INDEX",
        "",
        "NSE:RELIANCE-EQ",
        "NSE:NOPE-EQ",
    ];
    Arc::new(t.iter().map(|&s| Box::from(s)).collect())
}

fn cfg(exp: i64) -> FyersConfig {
    FyersConfig {
        access_token: format!("XB12345678-100:{}", auth::mock_token("HSMKEY123", exp)),
        ws_url: "ws://127.0.0.1:1/hsm/v1-5/prod".into(),
        api_base: "http://127.0.0.1:1".into(),
    }
}

/// A resolver answering RELIANCE and refusing NOPE, counting its calls.
fn fake_resolver(calls: Arc<AtomicUsize>) -> ResolveFn {
    Arc::new(move |tickers: &[&str]| {
        calls.fetch_add(1, Ordering::SeqCst);
        let mut r = Reply::default();
        for &t in tickers {
            match t {
                "NSE:RELIANCE-EQ" => {
                    r.valid.insert(t.into(), "10100000002885".into());
                }
                _ => r.invalid.push(t.into()),
            }
        }
        Ok(r)
    })
}

/// SBIN and NIFTY already resolved (seeded, as if `symbol-token` had answered).
fn fyers() -> (Fyers, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut f = Fyers::with_resolver(
        cfg(auth::now_s() + 3600),
        symbols(),
        fake_resolver(calls.clone()),
    );
    f.seed(SBIN, "10100000003045").unwrap();
    f.seed(NIFTY, "101000000026000").unwrap();
    (f, calls)
}

fn bins(out: &mut Vec<Message>) -> Vec<Vec<u8>> {
    out.drain(..)
        .map(|m| match m {
            Message::Binary(b) => b.to_vec(),
            m => panic!("not binary: {m:?}"),
        })
        .collect()
}

type Seen = (Vec<(Tick, bool)>, Vec<ParseError>, Result<(), FeedError>);

fn frame(f: &mut Fyers, bytes: &[u8], out: &mut Vec<Message>) -> Seen {
    let (mut ticks, mut errs) = (Vec::new(), Vec::new());
    let res = f.on_frame(bytes, 42, out, |r| match r {
        Ok(t) => ticks.push(t),
        Err(e) => errs.push(e),
    });
    (ticks, errs, res)
}

fn sub(mode: Mode, symbols: &[u32]) -> Request<'_> {
    Request::Subscribe { mode, symbols }
}

fn change(mode: Mode, symbols: &[u32]) -> Request<'_> {
    Request::ChangeMode { mode, symbols }
}

fn unsub(symbols: &[u32]) -> Request<'_> {
    Request::Unsubscribe { symbols }
}

fn px(rupees: &str) -> i64 {
    price::parse(rupees).unwrap()
}

/// Open, subscribe SBIN in depth and NIFTY in quote, auth reply: the subscriptions go out after it.
fn opened() -> (Fyers, Vec<Message>) {
    let (mut f, calls) = fyers();
    let mut out = Vec::new();
    f.reset();
    f.on_open(&mut out);
    assert_eq!(
        bins(&mut out),
        vec![request::auth("HSMKEY123"), request::mode(11, b'F')]
    );
    f.encode(sub(Mode::Depth, &[SBIN]), &mut out);
    f.encode(sub(Mode::Quote, &[NIFTY, NOT_FYERS]), &mut out);
    assert!(out.is_empty(), "held until the auth reply");
    let (t, e, r) = frame(&mut f, AUTH_REPLY, &mut out);
    assert!(t.is_empty() && e.is_empty() && r.is_ok());
    assert_eq!(
        bins(&mut out),
        vec![
            request::subscribe(&["sf|nse_cm|3045", "dp|nse_cm|3045"], 11).remove(0),
            request::subscribe(&["if|nse_cm|Nifty 50"], 11).remove(0),
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "seeded: no resolution");
    (f, out)
}

#[test]
fn snapshots_and_updates_become_ticks_and_acks_follow_the_interval() {
    let (mut f, mut out) = opened();
    // sf snapshot
    let (t, e, _) = frame(&mut f, SNAP_SF, &mut out);
    assert!(e.is_empty(), "{e:?}");
    let [(sf, true)] = t[..] else { panic!("{t:?}") };
    assert_eq!((sf.symbol_id, sf.recv_ts_ns), (SBIN, 42));
    assert_eq!(sf.valid, valid::LTP | valid::QUOTE | valid::OI);
    assert_eq!(sf.ltp, px("731.5"));
    assert_eq!((sf.volume, sf.last_qty), (1_234_567, 25));
    assert_eq!(
        sf.exchange_ts_ns, 1_767_225_601_000_000_000,
        "exch_feed_time, s → ns"
    );
    assert_eq!((sf.total_buy_qty, sf.total_sell_qty), (100_000, 120_000));
    assert_eq!(sf.avg_price, px("730.8"));
    assert_eq!(sf.oi, 0, "absent");
    assert_eq!(
        (sf.open, sf.high, sf.low, sf.close),
        (px("728"), px("735"), px("725"), px("729"))
    );
    assert!(out.is_empty(), "no ack after one packet");
    // if snapshot: the second data packet is acked (interval 2) with its message number
    let (t, _, _) = frame(&mut f, SNAP_IF, &mut out);
    let [(ix, true)] = t[..] else { panic!("{t:?}") };
    assert_eq!((ix.symbol_id, ix.valid), (NIFTY, valid::LTP | valid::QUOTE));
    assert_eq!((ix.ltp, ix.close), (px("24310.55"), px("24200")));
    assert_eq!(
        (ix.open, ix.high, ix.low),
        (px("24250"), px("24350.5"), px("24190.25"))
    );
    assert_eq!(ix.exchange_ts_ns, 1_767_225_602_000_000_000);
    assert_eq!(bins(&mut out), vec![request::ack(1002)]);
    // dp snapshot
    let (t, _, _) = frame(&mut f, SNAP_DP, &mut out);
    let [(dp, true)] = t[..] else { panic!("{t:?}") };
    assert_eq!((dp.symbol_id, dp.valid), (SBIN, valid::DEPTH));
    for i in 0..5 {
        assert_eq!(dp.bids[i].price, px("731.45") - i as i64 * px("0.05"));
        assert_eq!(dp.asks[i].price, px("731.55") + i as i64 * px("0.05"));
        assert_eq!(
            (dp.bids[i].qty, dp.asks[i].qty),
            (100 + i as u32, 200 + i as u32)
        );
        assert_eq!(
            (dp.bids[i].orders, dp.asks[i].orders),
            (1 + i as u32, 6 + i as u32)
        );
    }
    // an update with holes: only what it carries changes
    let (t, _, _) = frame(&mut f, UPDATE_HOLES, &mut out);
    let [(u, true)] = t[..] else { panic!("{t:?}") };
    assert_eq!((u.ltp, u.volume, u.last_qty), (px("732"), 1_234_600, 10));
    assert_eq!(u.exchange_ts_ns, 1_767_225_605_000_000_000);
    assert_eq!(
        (u.open, u.high, u.low, u.close),
        (sf.open, sf.high, sf.low, sf.close)
    );
    assert_eq!(
        (u.avg_price, u.total_buy_qty),
        (sf.avg_price, sf.total_buy_qty)
    );
    assert_eq!(bins(&mut out), vec![request::ack(1004)]);
    // lite on the index
    let (t, _, _) = frame(&mut f, LITE, &mut out);
    let [(l, true)] = t[..] else { panic!("{t:?}") };
    assert_eq!(
        (l.symbol_id, l.ltp, l.close),
        (NIFTY, px("24320"), px("24200"))
    );
    // several records: one tick each, only the final one marked last
    let (t, e, _) = frame(&mut f, MULTI, &mut out);
    assert!(e.is_empty(), "{e:?}");
    let marks: Vec<_> = t.iter().map(|(t, l)| (t.symbol_id, t.valid, *l)).collect();
    assert_eq!(
        marks,
        vec![
            (NIFTY, valid::LTP | valid::QUOTE, false),
            (SBIN, valid::LTP | valid::QUOTE | valid::OI, false),
            (SBIN, valid::DEPTH, true),
        ]
    );
    assert_eq!(t[0].0.ltp, px("24330"));
    assert_eq!((t[1].0.ltp, t[1].0.volume), (px("732.5"), 1_234_600));
    assert_eq!(
        (t[2].0.bids[0].price, t[2].0.bids[1].price),
        (px("731.5"), px("731.4"))
    );
    assert_eq!(bins(&mut out), vec![request::ack(1006)]);
    // the golden update: topic 00 01, ltp 731.50
    let (t, _, _) = frame(&mut f, GOLDEN_UPDATE, &mut out);
    assert_eq!((t[0].0.ltp, t[0].1), (px("731.5"), true));
}

#[test]
fn unknown_topics_are_counted_and_the_rest_of_the_packet_still_used() {
    let (mut f, mut out) = opened();
    // before any snapshot every update is for an unknown id
    let (t, e, _) = frame(&mut f, GOLDEN_UPDATE, &mut out);
    assert!(t.is_empty() && e == vec![ParseError::UnknownTopicId([0, 1])]);
    frame(&mut f, SNAP_SF, &mut out).2.unwrap();
    let (t, e, _) = frame(&mut f, UNKNOWN_THEN_GOOD, &mut out);
    assert_eq!(e, vec![ParseError::UnknownTopicId([0, 9])]);
    let [(good, true)] = t[..] else {
        panic!("{t:?}")
    };
    assert_eq!((good.symbol_id, good.ltp), (SBIN, px("733")));
    // a snapshot for a topic this connection never subscribed
    let mut other = SNAP_SF.to_vec();
    let at = other.windows(4).position(|w| w == b"3045").unwrap();
    other[at..at + 4].copy_from_slice(b"9999");
    let (t, e, _) = frame(&mut f, &other, &mut out);
    assert!(
        t.is_empty()
            && matches!(e[..], [ParseError::UnknownTopic(n)] if n.as_bytes() == b"sf|nse_cm|9999")
    );
    // a bad scale
    let mut scale = SNAP_SF.to_vec();
    let p = scale.len() - 18; // precision: before the 17 bytes of "NSE", "3045", "SBIN-EQ"
    assert_eq!(scale[p], 2);
    scale[p] = 9;
    let (_, e, _) = frame(&mut f, &scale, &mut out);
    assert_eq!(
        e,
        vec![ParseError::BadScale {
            multiplier: 1,
            precision: 9
        }]
    );
    // through the seam: counted in the sink
    let mut ticks = Vec::new();
    let mut sink = TickSink::collect(&mut ticks);
    f.on_message(Incoming::Binary(UNKNOWN_THEN_GOOD), 1, &mut sink, &mut out)
        .unwrap();
    assert_eq!((sink.ticks(), sink.errors()), (1, 1));
    f.on_message(Incoming::Text("{}"), 1, &mut sink, &mut out)
        .unwrap();
}

#[test]
fn truncated_and_garbage_frames_never_panic_the_protocol() {
    let (mut f, mut out) = opened();
    frame(&mut f, SNAP_SF, &mut out).2.unwrap();
    frame(&mut f, SNAP_IF, &mut out).2.unwrap();
    for g in [
        SNAP_SF,
        SNAP_IF,
        SNAP_DP,
        UPDATE_HOLES,
        LITE,
        MULTI,
        UNKNOWN_THEN_GOOD,
        GOLDEN_UPDATE,
        LIMIT_51001,
        SUB_OK,
    ] {
        for n in 0..g.len() {
            let (t, _, _) = frame(&mut f, &g[..n], &mut out);
            assert!(t.iter().filter(|(_, l)| *l).count() <= 1);
        }
    }
    // a lite record for a depth topic
    frame(&mut f, SNAP_DP, &mut out).2.unwrap();
    let mut lite_dp = LITE.to_vec();
    lite_dp[11] = 3;
    let (t, e, _) = frame(&mut f, &lite_dp, &mut out);
    assert!(t.is_empty() && e == vec![ParseError::LiteForDepth]);
}

#[test]
fn mode_changes_and_unsubscribes_go_on_the_wire() {
    let (mut f, mut out) = opened();
    for s in [SNAP_SF, SNAP_IF, SNAP_DP] {
        frame(&mut f, s, &mut out).2.unwrap();
    }
    out.clear();
    f.encode(change(Mode::Quote, &[SBIN]), &mut out);
    assert_eq!(
        bins(&mut out),
        request::unsubscribe(&["dp|nse_cm|3045"], 11)
    );
    // the depth topic's state is gone: its updates are now unknown
    let (_, e, _) = frame(&mut f, MULTI, &mut out);
    assert_eq!(e, vec![ParseError::UnknownTopicId([0, 3])]);
    assert_eq!(
        bins(&mut out),
        vec![request::ack(1006)],
        "the 4th data packet"
    );
    f.encode(change(Mode::Depth, &[SBIN, NIFTY]), &mut out);
    assert_eq!(
        bins(&mut out),
        request::subscribe(&["dp|nse_cm|3045"], 11),
        "an index has no depth"
    );
    f.encode(change(Mode::Ltp, &[NIFTY]), &mut out);
    assert!(out.is_empty(), "LTP and quote share the topic");
    f.encode(unsub(&[SBIN, NIFTY]), &mut out);
    assert_eq!(
        bins(&mut out),
        request::unsubscribe(
            &["sf|nse_cm|3045", "dp|nse_cm|3045", "if|nse_cm|Nifty 50"],
            11
        )
    );
    let (t, e, _) = frame(&mut f, GOLDEN_UPDATE, &mut out);
    assert!(t.is_empty() && e.len() == 1);
    f.encode(unsub(&[SBIN]), &mut out);
    assert!(out.is_empty(), "nothing left to unsubscribe");
}

#[test]
fn the_symbol_limit_rejects_the_latest_subscribe_without_snapshots() {
    let (mut f, mut out) = opened();
    frame(&mut f, SNAP_SF, &mut out).2.unwrap();
    let (_, _, r) = frame(&mut f, LIMIT_51001, &mut out);
    assert_eq!(r.unwrap_err().action, Action::Reject(vec![NIFTY]));
    let other = serve::message(11011, "subscription failed", 4).unwrap();
    let e = frame(&mut f, &other, &mut out).2.unwrap_err();
    assert_eq!(e.action, Action::Reject(vec![]));
    assert!(e.reason.contains("subscription failed"), "{e}");
    let e = frame(&mut f, &serve::status_reply(4, false), &mut out)
        .2
        .unwrap_err();
    assert_eq!(e.action, Action::Reject(vec![]));
}

#[test]
fn a_refused_auth_stops_the_feed() {
    let (mut f, _) = fyers();
    let mut out = Vec::new();
    f.on_open(&mut out);
    let e = frame(&mut f, AUTH_REFUSED, &mut out).2.unwrap_err();
    assert_eq!(e.action, Action::CredentialsRejected);
    assert!(e.reason.contains("refused the access token"), "{e}");
}

#[test]
fn the_token_is_checked_before_a_dial() {
    let (f, _) = fyers();
    let req = f.connect_job()().unwrap();
    assert_eq!(
        (req.url.as_str(), req.headers.len()),
        ("ws://127.0.0.1:1/hsm/v1-5/prod", 0)
    );
    let expired = Fyers::new(cfg(1_700_000_000), symbols());
    let e = expired.connect_job()().unwrap_err();
    assert_eq!(e.action, Action::CredentialsRejected);
    assert!(e.reason.contains("expired"), "{e}");
    let garbage = Fyers::new(
        FyersConfig {
            access_token: "nope".into(),
            ..FyersConfig::default()
        },
        symbols(),
    );
    assert_eq!(
        garbage.connect_job()().unwrap_err().action,
        Action::CredentialsRejected
    );
    assert_eq!(
        (f.name(), f.limits().per_message, f.limits().connections),
        ("fyers", 1500, 1)
    );
    let l = f.liveness();
    let (every, msgs) = l.keepalive.unwrap();
    assert_eq!(
        (l.dead_after, every),
        (Duration::from_secs(30), Duration::from_secs(10))
    );
    assert_eq!(msgs[0], Message::Binary(vec![0, 1, 11].into()));
    assert!(matches!(msgs[1], Message::Ping(_)));
    assert!(f.knows(SBIN) && f.knows(RELIANCE) && !f.knows(NOT_FYERS) && !f.knows(99));
}

/// Polls until `f` has something to say (the helper thread answers asynchronously).
fn poll_until(
    f: &mut Fyers,
    out: &mut Vec<Message>,
    done: impl Fn(&Result<(), FeedError>, &[Message]) -> bool,
) -> Result<(), FeedError> {
    let start = Instant::now();
    loop {
        let r = f.poll(out);
        if done(&r, out) || start.elapsed() > Duration::from_secs(10) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn unknown_symbols_are_resolved_off_the_feed_thread_and_kept_across_reconnects() {
    let (mut f, calls) = fyers();
    let mut out = Vec::new();
    f.on_open(&mut out);
    frame(&mut f, AUTH_REPLY, &mut out).2.unwrap();
    out.clear();
    f.encode(sub(Mode::Quote, &[RELIANCE, NOPE]), &mut out);
    assert!(out.is_empty(), "nothing to send before the answer");
    let r = poll_until(&mut f, &mut out, |r, out| r.is_err() || !out.is_empty());
    assert_eq!(bins(&mut out), request::subscribe(&["sf|nse_cm|2885"], 11));
    let r = match r {
        Ok(()) => poll_until(&mut f, &mut out, |r, _| r.is_err()),
        e => e,
    };
    let e = r.unwrap_err();
    assert_eq!(e.action, Action::Reject(vec![NOPE]));
    assert!(e.reason.contains("NSE:NOPE-EQ"), "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one call for both");
    // reconnect: topic ids are forgotten, the answers are not
    f.reset();
    f.on_open(&mut out);
    out.clear();
    f.encode(sub(Mode::Depth, &[RELIANCE, NOPE]), &mut out);
    frame(&mut f, AUTH_REPLY, &mut out).2.unwrap();
    assert_eq!(
        bins(&mut out),
        request::subscribe(&["sf|nse_cm|2885", "dp|nse_cm|2885"], 11)
    );
    assert_eq!(
        f.poll(&mut out).unwrap_err().action,
        Action::Reject(vec![NOPE]),
        "known invalid: at once"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no second call");
    assert_eq!(
        f.topics_of(RELIANCE).unwrap().main.as_ref(),
        "sf|nse_cm|2885"
    );
}

#[test]
fn a_refused_resolution_stops_the_feed() {
    let refuse: ResolveFn = Arc::new(|_: &[&str]| Err(FeedError::credentials("refused")));
    let mut f = Fyers::with_resolver(cfg(auth::now_s() + 60), symbols(), refuse);
    let mut out = Vec::new();
    f.encode(sub(Mode::Ltp, &[RELIANCE]), &mut out);
    let e = poll_until(&mut f, &mut out, |r, _| r.is_err()).unwrap_err();
    assert_eq!(e.action, Action::CredentialsRejected);
}

#[test]
fn the_mock_reads_what_the_protocol_sends() {
    let (mut f, _) = fyers();
    let mut out = Vec::new();
    f.on_open(&mut out);
    let sent = bins(&mut out);
    assert_eq!(
        serve::parse_client(&sent[0]),
        Ok(ClientPacket::Auth {
            hsm_key: "HSMKEY123",
            source: "tickwire"
        })
    );
    assert_eq!(
        serve::parse_client(&sent[1]),
        Ok(ClientPacket::Mode {
            channel_bits: 1 << 11,
            mode: b'F'
        })
    );
}
