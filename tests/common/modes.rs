//! The end-to-end check every broker's demo gets: a client subscribes symbols in each mode, every
//! `market_data` message carries the broker's name and matches something the mock sent, and shared
//! memory holds the same values.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickwire_shm::Reader;

use super::{authed, paise, recv, reply, send, sent, start_demo, token_of, Demo};

/// `demo --broker <broker>`; a client subscribes `subs` (`(exchange, symbol, mode)`) and reads until
/// each has had 3 messages (20 s at most). A stock's data must satisfy `matches(data, mode, sent)`
/// for something the mock sent it (its `/sent` history); an index only needs a plausible price.
/// `openalgo` is the `broker` name clients see. Returns the demo for the broker's own checks.
pub fn demo_serves_every_mode(
    broker: &str,
    openalgo: &str,
    subs: &[(&str, &str, u64)],
    matches: impl Fn(&Value, u64, &Value) -> bool,
) -> Demo {
    let d = start_demo(&["--broker", broker, "--symbols", "3", "--rate", "300"]);
    let mut ws = authed(d.port);
    for &(exchange, symbol, mode) in subs {
        send(
            &mut ws,
            json!({"action": "subscribe", "symbol": symbol, "exchange": exchange, "mode": mode}),
        );
        let r = reply(&mut ws);
        assert_eq!(r["status"], "success", "{r}");
        assert_eq!(r["broker"], openalgo);
    }
    let mut seen = HashMap::<String, u32>::new();
    let end = Instant::now() + Duration::from_secs(20);
    while subs
        .iter()
        .any(|(_, s, _)| seen.get(*s).copied().unwrap_or(0) < 3)
    {
        assert!(Instant::now() < end, "market data for every mode: {seen:?}");
        let Some(m) = recv(&mut ws, Duration::from_secs(1)) else {
            continue;
        };
        if m["type"] != "market_data" {
            continue;
        }
        assert_eq!(m["broker"], openalgo, "{m}");
        let sym = m["symbol"].as_str().unwrap().to_string();
        let mode = m["mode"].as_u64().unwrap();
        if m["exchange"]
            .as_str()
            .is_some_and(|x| x.ends_with("_INDEX"))
        {
            assert!(paise(&m["data"]["ltp"]) > 1_000_000, "{m}");
        } else {
            let history = sent(d.bport, token_of(&sym));
            assert!(
                history.iter().any(|s| matches(&m["data"], mode, s)),
                "{sym} mode {mode}: {} matches nothing the mock sent",
                m["data"]
            );
            if mode == 3 {
                assert_eq!(m["data"]["depth"]["buy"].as_array().unwrap().len(), 5);
                assert_eq!(m["data"]["depth"]["sell"].as_array().unwrap().len(), 5);
            }
        }
        *seen.entry(sym).or_default() += 1;
    }
    d
}

/// Shared memory holds a last value of `NSE:<symbol>` whose price the mock sent, and new ticks
/// keep arriving.
pub fn shm_has_sent_values(d: &Demo, symbol: &str) {
    let mut r = Reader::open(&d.shm).unwrap();
    let id = r.lookup("NSE", symbol).unwrap();
    let last = r.last_value(id).unwrap().expect("a last value");
    let hist = sent(d.bport, token_of(symbol));
    assert!(
        hist.iter()
            .any(|s| (last.ltp / 100_000) as u64 == s["ltp"].as_u64().unwrap()),
        "{symbol}'s last price in shm {} is nothing the mock sent",
        last.ltp
    );
    assert!(super::shm_has_new_ticks(&mut r, Duration::from_secs(5)));
}

/// A mock of `broker` on a free port and `serve` (given the mock's port) against it; a client holds
/// NSE:TCS in Depth and NSE:SBIN in LTP; the mock is killed and restarted on the same port: the
/// feed reconnects and both come back in their modes (TCS with 5 levels each side). Returns the
/// gateway, the new mock, its port and the client (still subscribed: dropping it unsubscribes) for
/// the broker's own checks.
pub fn reconnect_restores_modes(
    broker: &str,
    serve: impl Fn(u16) -> super::Served,
) -> (super::Served, super::Proc, u16, super::Ws) {
    use super::{feed_status, free_port, mock_of, wait_data};
    let bport = free_port();
    let m = mock_of(broker, bport, &[]);
    let gw = serve(bport);
    let mut ws = authed(gw.port);
    for (sym, mode) in [("TCS", "depth"), ("SBIN", "ltp")] {
        send(
            &mut ws,
            json!({"action": "subscribe", "symbol": sym, "exchange": "NSE", "mode": mode}),
        );
        assert_eq!(reply(&mut ws)["status"], "success");
    }
    wait_data(&mut ws, "NSE", "TCS", 10);
    drop(m);
    std::thread::sleep(Duration::from_millis(1500));
    while recv(&mut ws, Duration::from_millis(50)).is_some() {}
    let m2 = mock_of(broker, bport, &[]);
    let d = wait_data(&mut ws, "NSE", "TCS", 25);
    assert_eq!(d["mode"], 3, "{d}");
    assert_eq!(d["data"]["depth"]["sell"].as_array().unwrap().len(), 5);
    let s = wait_data(&mut ws, "NSE", "SBIN", 20);
    assert_eq!(s["mode"], 1, "{s}");
    let f = feed_status(gw.port);
    assert!(f["connects"].as_u64().unwrap() >= 2, "{f}");
    (gw, m2, bport, ws)
}
