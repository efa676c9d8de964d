//! Client limits and isolation, end to end through the real binary on loopback: each limit
//! (instruments per client, subscription changes per minute, frame size, idle timeout, clients
//! per key and in total), a per-key override, and that clients of two keys only ever get their
//! own subscriptions in their own modes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use common::*;

/// A client authenticated with `key`.
fn authed_with(port: u16, key: &str) -> Ws {
    let mut ws = connect(port);
    send(&mut ws, json!({"action": "authenticate", "api_key": key}));
    let r = reply(&mut ws);
    assert_eq!(r["status"], "success", "{key}: {r}");
    ws
}

/// [`until_close`] for a close that must carry a frame: (code, reason, messages before it).
fn closed_with<S: Read + Write>(ws: &mut WebSocket<S>, secs: u64) -> (u16, String, Vec<Value>) {
    match until_close(ws, secs) {
        (Some((code, reason)), got) => (code, reason, got),
        (None, got) => panic!("a close without a code after {got:?}"),
    }
}

/// `/status`'s `clients.limits` counters.
fn limit_counts(port: u16) -> Value {
    gateway_status(port)["clients"]["limits"].clone()
}

/// Subscribes NSE `symbols` in `mode` (a subscribe request has one mode for all its entries).
fn subscribe(ws: &mut Ws, mode: u64, symbols: &[&str]) -> Value {
    let symbols: Vec<Value> = symbols
        .iter()
        .map(|s| json!({"symbol": s, "exchange": "NSE"}))
        .collect();
    send(
        ws,
        json!({"action": "subscribe", "symbols": symbols, "mode": mode}),
    );
    reply(ws)
}

/// `serve` against a mock Kite broker, with the keys `k1` (`api-key-1`) and `k2` (`api-key-2`).
fn two_keys(extra: &[&str]) -> (Proc, Served) {
    let bport = free_port();
    let m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let inst = format!("http://127.0.0.1:{bport}/instruments");
    let mut args = vec!["--api-key", "k2"];
    args.extend_from_slice(extra);
    (m, start_serve(&url, &inst, &args))
}

#[test]
fn instruments_past_the_limit_fail_per_entry_and_the_client_keeps_what_it_has() {
    let d = start_demo(&[
        "--symbols",
        "3",
        "--rate",
        "300",
        "--max-subscriptions",
        "2",
    ]);
    let mut ws = authed(d.port);
    let r = subscribe(&mut ws, 1, &["SBIN", "RELIANCE", "INFY"]);
    assert_eq!(r["status"], "partial", "{r}");
    let subs = r["subscriptions"].as_array().unwrap();
    assert_eq!(subs[0]["status"], "success");
    assert_eq!(subs[1]["status"], "success");
    assert_eq!(subs[2]["status"], "error");
    assert_eq!(subs[2]["code"], "SUBSCRIPTION_LIMIT");
    assert_eq!(subs[2]["symbol"], "INFY");
    assert_eq!(
        subs[2]["message"],
        "Subscription limit reached: a client holds at most 2 instruments"
    );
    // Another mode of an instrument it holds is not a new instrument.
    let r = subscribe(&mut ws, 3, &["SBIN"]);
    assert_eq!(r["status"], "success", "{r}");
    // It keeps what it has, in every mode it asked for.
    wait_data_where(&mut ws, 10, "SBIN depth", |v| {
        v["symbol"] == "SBIN" && v["mode"] == 3
    });
    wait_data(&mut ws, "NSE", "RELIANCE", 10);
    // Room again after an unsubscribe.
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbol": "RELIANCE", "exchange": "NSE"}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    assert_eq!(subscribe(&mut ws, 1, &["INFY"])["status"], "success");
    assert_eq!(limit_counts(d.port)["subscription_limit"], 1);
}

#[test]
fn changes_past_the_rate_are_refused_and_a_client_hammering_on_is_closed() {
    // 3 changes a minute (bursts of 3: the instrument limit is lower).
    let d = start_demo(&[
        "--symbols",
        "3",
        "--max-subscriptions",
        "2",
        "--max-subscription-changes-per-minute",
        "3",
    ]);
    let mut ws = authed(d.port);
    assert_eq!(subscribe(&mut ws, 1, &["SBIN"])["status"], "success");
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbol": "SBIN", "exchange": "NSE"}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let r = subscribe(&mut ws, 2, &["SBIN", "RELIANCE"]);
    assert_eq!(
        r["status"], "partial",
        "the third change passes, the fourth not: {r}"
    );
    let e = &r["subscriptions"][1];
    assert_eq!(e["code"], "RATE_LIMITED");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Too many subscription changes: at most 3 a minute; retry in "),
        "{msg}"
    );
    // Unsubscribes are changes too; unsubscribe_all never fails.
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbol": "SBIN", "exchange": "NSE"}),
    );
    let r = reply(&mut ws);
    assert_eq!(
        (r["status"].as_str(), r["failed"][0]["code"].as_str()),
        (Some("error"), Some("RATE_LIMITED"))
    );
    send(&mut ws, json!({"action": "unsubscribe_all"}));
    assert_eq!(reply(&mut ws)["status"], "success");
    // The client is still served while it only went over a little.
    send(&mut ws, json!({"action": "ping"}));
    assert_eq!(reply(&mut ws)["type"], "pong");
    assert_eq!(limit_counts(d.port)["rate_limited"], 2);

    // Hammering on: refused changes past twice its allowance (6) close it with 4429.
    for _ in 0..3 {
        send(
            &mut ws,
            json!({"action": "subscribe", "symbols": [
            {"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "RELIANCE", "exchange": "NSE"}]}),
        );
    }
    let (code, reason, before) = closed_with(&mut ws, 10);
    assert_eq!(code, 4429, "{reason}");
    assert_eq!(
        reason,
        "rate limit: far more than 3 subscription changes a minute"
    );
    assert!(before.iter().all(|r| r["status"] == "error"), "{before:?}");
    let counts = limit_counts(d.port);
    assert_eq!(counts["rate_abuse_closed"], 1, "{counts}");
    // Others are still served.
    let mut other = authed(d.port);
    assert_eq!(subscribe(&mut other, 1, &["SBIN"])["status"], "success");
}

#[test]
fn a_message_over_the_size_limit_is_answered_then_closed_with_1009() {
    let d = start_demo(&["--max-message-bytes", "1024"]);
    let mut ws = authed(d.port);
    let pad = |n: usize| json!({"action": "ping", "pad": "x".repeat(n)});
    send(&mut ws, pad(900));
    assert_eq!(reply(&mut ws)["type"], "pong", "under the limit");
    send(&mut ws, pad(2000));
    let (code, reason, before) = closed_with(&mut ws, 10);
    assert_eq!(
        (code, reason.as_str()),
        (1009, "message too big: the limit is 1024 bytes")
    );
    assert_eq!(
        before,
        vec![json!({"status": "error", "code": "MESSAGE_TOO_BIG",
            "message": "message too big: the limit is 1024 bytes"})]
    );
    assert_eq!(limit_counts(d.port)["message_too_big"], 1);
}

/// A socket whose writes vanish once `mute` is set: a WebSocket client on it reads everything
/// but answers nothing (not even the server's Pings), as a hung client would.
struct Muted {
    tcp: TcpStream,
    mute: Arc<AtomicBool>,
}

impl Read for Muted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Muted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.mute.load(Ordering::Relaxed) {
            true => Ok(buf.len()),
            false => self.tcp.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// An authenticated client that goes silent (see [`Muted`]).
fn silent_client(port: u16) -> WebSocket<Muted> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mute = Arc::new(AtomicBool::new(false));
    let stream = Muted {
        tcp,
        mute: mute.clone(),
    };
    let (mut ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}"), stream).unwrap();
    ws.send(Message::Text(
        json!({"action": "authenticate", "api_key": "k1"})
            .to_string()
            .into(),
    ))
    .unwrap();
    loop {
        if let Ok(Message::Text(t)) = ws.read() {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(v["status"], "success", "{v}");
            break;
        }
    }
    mute.store(true, Ordering::Relaxed);
    ws
}

#[test]
fn a_silent_client_is_closed_one_answering_pings_is_not() {
    let d = start_demo(&["--idle-timeout-s", "2"]);
    let mut silent = silent_client(d.port);
    let mut alive = authed(d.port);
    // `alive` reads (so its WebSocket answers the server's Pings) and sends nothing else.
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        let _ = recv(&mut alive, Duration::from_millis(200));
    }
    send(&mut alive, json!({"action": "ping"}));
    assert_eq!(
        reply(&mut alive)["type"],
        "pong",
        "not idle: it answered the Pings"
    );
    // `silent` answered nothing, not even a Ping.
    let (code, reason, before) = closed_with(&mut silent, 10);
    assert_eq!(
        (code, reason.as_str()),
        (4408, "idle timeout: no message or pong for 2 s")
    );
    assert_eq!(before.last().unwrap()["code"], "IDLE_TIMEOUT");
    assert_eq!(limit_counts(d.port)["idle_timeout"], 1);
}

#[test]
fn clients_per_key_and_in_total_are_capped_and_places_come_back() {
    let (_m, s) = two_keys(&["--max-clients", "3", "--max-clients-per-key", "2"]);
    let a1 = authed_with(s.port, "k1");
    let _a2 = authed_with(s.port, "k1");
    // A third client of k1: told why, then closed.
    let mut a3 = connect(s.port);
    send(&mut a3, json!({"action": "authenticate", "api_key": "k1"}));
    let (code, reason, before) = closed_with(&mut a3, 10);
    let msg = "Too many clients for this API key (api-key-1): at most 2 at once";
    assert_eq!((code, reason.as_str()), (1013, msg));
    assert_eq!(
        before,
        vec![json!({"status": "error", "code": "KEY_CLIENT_LIMIT", "message": msg})]
    );
    // k2 is not held back by k1's cap, only by the total.
    let _b1 = authed_with(s.port, "k2");
    let mut b2 = connect(s.port);
    send(&mut b2, json!({"action": "authenticate", "api_key": "k2"}));
    let (code, reason, before) = closed_with(&mut b2, 10);
    let msg = "Too many clients: the gateway serves at most 3 at once; retry later";
    assert_eq!((code, reason.as_str()), (1013, msg));
    assert_eq!(before[0]["code"], "TOO_MANY_CLIENTS");
    let st = gateway_status(s.port);
    assert_eq!(st["clients"]["authenticated"], 3, "{st}");
    assert_eq!(st["clients"]["limits"]["key_client_limit"], 1);
    assert_eq!(st["clients"]["limits"]["too_many_clients"], 1);
    // A client leaving gives its place back.
    drop(a1);
    wait_until(10, "a place freed", || {
        (gateway_status(s.port)["clients"]["authenticated"] == 2).then_some(())
    });
    let _b2 = authed_with(s.port, "k2");
}

#[test]
fn a_per_key_override_applies_to_its_key_only() {
    let (_m, s) = two_keys(&["--limit-override", "api-key-2:max_subscriptions=1"]);
    let mut a = authed_with(s.port, "k1");
    let mut b = authed_with(s.port, "k2");
    assert_eq!(
        subscribe(&mut a, 1, &["SBIN", "RELIANCE"])["status"],
        "success"
    );
    let r = subscribe(&mut b, 1, &["SBIN", "RELIANCE"]);
    assert_eq!(r["status"], "partial", "{r}");
    assert_eq!(r["subscriptions"][1]["code"], "SUBSCRIPTION_LIMIT");
    assert_eq!(
        r["subscriptions"][1]["message"],
        "Subscription limit reached: a client holds at most 1 instruments"
    );
}

#[test]
fn a_bad_limit_override_stops_the_start_with_a_clear_message() {
    for (flag, want) in [
        ("api-key-2:max_subs=1", "unknown per-key limit \"max_subs\""),
        (
            "api-key-2:idle_timeout_s=0",
            "idle_timeout_s must be 1 to 86400, got 0",
        ),
        ("api-key-2", "expected KEYNAME:field=value"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
            .args(["demo", "--port", "0", "--limit-override", flag])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--limit-override") && err.contains(want),
            "{flag}: {err}"
        );
    }
}

/// Every market-data message within `secs`, as (symbol, mode).
fn collect(ws: &mut Ws, secs: f64) -> Vec<(String, u64)> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut got = Vec::new();
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_millis(100)) {
            if v["type"] == "market_data" {
                got.push((
                    v["symbol"].as_str().unwrap().to_string(),
                    v["mode"].as_u64().unwrap(),
                ));
            }
        }
    }
    got
}

#[test]
fn clients_of_two_keys_get_only_their_own_subscriptions_in_their_own_modes() {
    let (_m, s) = two_keys(&["--flush-ms", "0"]);
    let mut a = authed_with(s.port, "k1");
    let mut b = authed_with(s.port, "k2");
    // Overlapping on SBIN, in different modes.
    assert_eq!(subscribe(&mut a, 1, &["SBIN"])["status"], "success");
    assert_eq!(subscribe(&mut a, 2, &["RELIANCE"])["status"], "success");
    assert_eq!(subscribe(&mut b, 3, &["SBIN"])["status"], "success");
    assert_eq!(subscribe(&mut b, 1, &["INFY"])["status"], "success");
    let (ga, gb) = (collect(&mut a, 3.0), collect(&mut b, 0.5));
    let want_a = [("SBIN", 1), ("RELIANCE", 2)];
    let want_b = [("SBIN", 3), ("INFY", 1)];
    let only = |got: &[(String, u64)], want: &[(&str, u64)]| {
        for g in got {
            assert!(
                want.iter().any(|w| w.0 == g.0 && w.1 == g.1),
                "unexpected {g:?} in {got:?}"
            );
        }
        for w in want {
            assert!(
                got.iter().any(|g| g.0 == w.0 && g.1 == w.1),
                "no {w:?} in {got:?}"
            );
        }
    };
    only(&ga, &want_a);
    let gb2 = collect(&mut b, 2.5);
    only(&[gb, gb2].concat(), &want_b);

    // B cannot touch A's RELIANCE; A drops SBIN (every mode): B keeps its SBIN depth.
    send(
        &mut b,
        json!({"action": "unsubscribe", "symbol": "RELIANCE", "exchange": "NSE"}),
    );
    let r = reply(&mut b);
    assert_eq!(
        r["failed"][0]["message"], "Not subscribed to RELIANCE on NSE",
        "{r}"
    );
    send(
        &mut a,
        json!({"action": "unsubscribe", "symbol": "SBIN", "exchange": "NSE"}),
    );
    assert_eq!(reply(&mut a)["status"], "success");
    let (ga, gb) = (collect(&mut a, 3.0), collect(&mut b, 3.0));
    only(&ga, &[("RELIANCE", 2)]);
    only(&gb, &want_b);

    // unsubscribe_all on B leaves A's stream alone.
    send(&mut b, json!({"action": "unsubscribe_all"}));
    assert_eq!(reply(&mut b)["status"], "success");
    let _ = collect(&mut b, 0.5); // what was already on the way
    let (ga, gb) = (collect(&mut a, 2.0), collect(&mut b, 1.0));
    only(&ga, &[("RELIANCE", 2)]);
    assert!(gb.is_empty(), "B holds nothing: {gb:?}");
}

/// `[limits.per_key.NAME]` in a config file reaches the gateway (and `--limit-override` goes over
/// it); `config check` refuses a value out of range, naming the key.
#[test]
fn per_key_limits_from_the_config_file_and_the_flag_over_them() {
    let bport = free_port();
    let _m = mock(bport);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tickwire.toml");
    let text = |k2_idle: u64| {
        format!(
            r#"[gateway]
port = {port}

[shm]
path = "ticks"

[keys]
api_keys = ["k1", "k2"]

[limits]
max_subscriptions = 3

[limits.per_key.api-key-2]
max_subscriptions = 1
idle_timeout_s = {k2_idle}

[[feed]]
broker = "kite"
url = "ws://127.0.0.1:{bport}"
instruments = "http://127.0.0.1:{bport}/instruments"
api_key = "mock_api_key"
access_token = "mock_access_token"
"#
        )
    };
    std::fs::write(&f, text(0)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["config", "check"])
        .arg(&f)
        .env_remove("TICKWIRE_API_KEYS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("limits.per_key.api-key-2")
            && err.contains("idle_timeout_s must be 1 to 86400, got 0"),
        "{err}"
    );

    std::fs::write(&f, text(300)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--config"])
        .arg(&f)
        .args(["--limit-override", "api-key-1:max_subscriptions=2"])
        // About limits, not market hours: the mock trades at any hour.
        .arg("--dev")
        .env_remove("TICKWIRE_API_KEYS")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _gw = Proc(child);
    let mut a = authed_with(port, "k1");
    let mut b = authed_with(port, "k2");
    let r = subscribe(&mut a, 1, &["SBIN", "RELIANCE", "INFY"]);
    assert_eq!(
        r["subscriptions"][2]["code"], "SUBSCRIPTION_LIMIT",
        "the flag's 2: {r}"
    );
    assert_eq!(r["subscriptions"][1]["status"], "success");
    let r = subscribe(&mut b, 1, &["SBIN", "RELIANCE"]);
    assert_eq!(
        r["subscriptions"][1]["code"], "SUBSCRIPTION_LIMIT",
        "the file's 1: {r}"
    );
}
