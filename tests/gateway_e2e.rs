//! End to end on loopback with the real binary: mock Kite broker → feed → router → shm and
//! OpenAlgo-protocol WebSocket clients. Values a client receives are checked against what the mock
//! says it sent (`GET /sent?token=T`), field by field.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickwire_engine::price;
use tickwire_shm::{Event, Reader};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tickwire(args: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tickwire");
    Proc(child)
}

/// Waits for a line containing `needle` on the child's stdout.
fn wait_line(p: &mut Proc, needle: &str) -> String {
    let out = p.0.stdout.as_mut().unwrap();
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            panic!("process ended before printing {needle:?}");
        }
        if line.contains(needle) {
            return line;
        }
    }
}

fn connect(port: u16) -> Ws {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tungstenite::connect(format!("ws://127.0.0.1:{port}")) {
            Ok((mut ws, _)) => {
                if let MaybeTlsStream::Plain(s) = ws.get_mut() {
                    s.set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                }
                return ws;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("connect: {e}"),
        }
    }
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).unwrap();
}

/// Next JSON message within `limit`, or None.
fn recv(ws: &mut Ws, limit: Duration) -> Option<Value> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    None
}

/// The next reply that is not market data.
fn reply(ws: &mut Ws) -> Value {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_secs(1)) {
            if v["type"] != "market_data" {
                return v;
            }
        }
    }
    panic!("no reply");
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::Write;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// What the mock sent for `token`, newest last.
fn sent(mock_port: u16, token: u32) -> Vec<Value> {
    serde_json::from_str(&http_get(mock_port, &format!("/sent?token={token}"))).unwrap()
}

/// A price in a gateway message, as paise (raw Kite units, divisor 100).
fn paise(v: &Value) -> u64 {
    let p = price::parse(&v.to_string()).unwrap_or_else(|| panic!("not an exact decimal: {v}"));
    assert_eq!(p % 100_000, 0, "NSE prices are whole paise: {v}");
    (p / 100_000) as u64
}

/// True when `data` matches one packet the mock sent, in every field the mode carries.
fn matches_sent(data: &Value, mode: u64, s: &Value) -> bool {
    let mut ok = paise(&data["ltp"]) == s["ltp"].as_u64().unwrap();
    if mode >= 2 {
        ok &= data["volume"] == s["volume"]
            && paise(&data["open"]) == s["open"].as_u64().unwrap()
            && paise(&data["high"]) == s["high"].as_u64().unwrap()
            && paise(&data["low"]) == s["low"].as_u64().unwrap()
            && paise(&data["close"]) == s["close"].as_u64().unwrap()
            && data["last_trade_quantity"] == s["last_qty"]
            && paise(&data["average_price"]) == s["avg_price"].as_u64().unwrap()
            && data["total_buy_quantity"] == s["buy_qty"]
            && data["total_sell_quantity"] == s["sell_qty"];
    }
    if mode == 3 {
        for (side, key) in [("buy", "bids"), ("sell", "asks")] {
            for (i, l) in data["depth"][side].as_array().unwrap().iter().enumerate() {
                let w = &s[key][i];
                ok &= paise(&l["price"]) == w[0].as_u64().unwrap()
                    && l["quantity"] == w[1]
                    && l["orders"] == w[2];
            }
        }
    }
    ok
}

/// A running `tickwire demo` on free loopback ports with its own shm file.
struct Demo {
    _proc: Proc,
    port: u16,
    bport: u16,
    shm: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start_demo(extra: &[&str]) -> Demo {
    let (port, bport) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("ticks");
    let (ps, bps) = (port.to_string(), bport.to_string());
    let mut args = vec![
        "demo",
        "--port",
        &ps,
        "--broker-port",
        &bps,
        "--api-key",
        "k1",
        "--shm",
        shm.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut p = tickwire(&args);
    wait_line(&mut p, "Ctrl-C");
    Demo {
        _proc: p,
        port,
        bport,
        shm,
        _dir: dir,
    }
}

/// A running `tickwire serve` against `url` (a mock broker), on a free port with its own shm file.
struct Served {
    _proc: Proc,
    port: u16,
    shm: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start_serve(url: &str, instruments: &str, extra: &[&str]) -> Served {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("ticks");
    let ps = port.to_string();
    let mut args = vec![
        "serve",
        "--port",
        &ps,
        "--api-key",
        "k1",
        "--broker-url",
        url,
        "--instruments",
        instruments,
        "--kite-api-key",
        "mock_api_key",
        "--kite-access-token",
        "mock_access_token",
        "--shm",
        shm.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Served {
        _proc: tickwire(&args),
        port,
        shm,
        _dir: dir,
    }
}

/// A client connected and authenticated with the test key.
fn authed(port: u16) -> Ws {
    let mut ws = connect(port);
    send(&mut ws, json!({"action": "authenticate", "api_key": "k1"}));
    assert_eq!(reply(&mut ws)["status"], "success");
    ws
}

const TOKENS: [(&str, u32); 3] = [("SBIN", 779521), ("RELIANCE", 738561), ("INFY", 408065)];

fn token_of(sym: &str) -> u32 {
    TOKENS.iter().find(|t| t.0 == sym).unwrap().1
}

#[test]
fn demo_serves_clients_and_shm_with_the_mocks_values() {
    demo_serves(&[]); // the router inline on the feed thread (the default)
}

#[test]
fn demo_serves_clients_and_shm_with_the_router_on_its_own_thread() {
    demo_serves(&["--router", "thread"]);
}

fn demo_serves(router: &[&str]) {
    let mut args = vec!["--symbols", "3", "--rate", "300"];
    args.extend_from_slice(router);
    let d = start_demo(&args);
    let (port, bport, shm) = (d.port, d.bport, d.shm.clone());
    let mut ws = connect(port);

    // Before authentication: the documented error, and no data.
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    let r = reply(&mut ws);
    assert_eq!(
        r,
        json!({"status": "error", "code": "NOT_AUTHENTICATED", "message": "You must authenticate first"})
    );
    send(
        &mut ws,
        json!({"action": "authenticate", "api_key": "wrong"}),
    );
    assert_eq!(reply(&mut ws)["code"], "AUTHENTICATION_ERROR");
    assert!(
        recv(&mut ws, Duration::from_millis(500)).is_none(),
        "no data before auth"
    );
    send(&mut ws, json!({"action": "authenticate", "api_key": "k1"}));
    let r = reply(&mut ws);
    assert_eq!(
        (r["type"].as_str(), r["status"].as_str()),
        (Some("auth"), Some("success"))
    );

    // One equity per mode, both subscribe forms, plus an unknown symbol.
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1, "depth": 5}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}], "mode": "Quote"}),
    );
    assert_eq!(reply(&mut ws)["subscriptions"][0]["mode"], "Quote");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE"}, {"symbol": "NOPE", "exchange": "NSE"}], "mode": 3, "request_id": "r1"}),
    );
    let r = reply(&mut ws);
    assert_eq!(r["status"], "partial");
    assert_eq!(r["request_id"], "r1");
    assert_eq!(r["subscriptions"][1]["status"], "error");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "NOPE", "exchange": "NSE"}),
    );
    assert_eq!(
        reply(&mut ws)["status"],
        "error",
        "every symbol failed: error, not partial"
    );

    // Collect market data and check each message against the mock's record.
    let mut seen = std::collections::HashMap::<String, u32>::new();
    let end = Instant::now() + Duration::from_secs(20);
    while seen.len() < 3 || seen.values().any(|&n| n < 3) {
        assert!(Instant::now() < end, "market data for every mode: {seen:?}");
        let Some(m) = recv(&mut ws, Duration::from_secs(1)) else {
            continue;
        };
        if m["type"] != "market_data" {
            continue;
        }
        let sym = m["symbol"].as_str().unwrap().to_string();
        let mode = m["mode"].as_u64().unwrap();
        let want_mode = match sym.as_str() {
            "SBIN" => 1,
            "RELIANCE" => 2,
            "INFY" => 3,
            other => panic!("data for {other}, never subscribed"),
        };
        assert_eq!(
            mode, want_mode,
            "mode is the subscribed mode, as an integer"
        );
        assert_eq!(m["exchange"], "NSE");
        assert_eq!(m["broker"], "zerodha");
        let d = &m["data"];
        assert!(
            d["timestamp"].as_i64().unwrap() > 1_600_000_000_000,
            "integer epoch ms"
        );
        if mode == 3 {
            assert_eq!(d["depth"]["buy"].as_array().unwrap().len(), 5);
        }
        if mode == 2 {
            for k in ["avg_trade_price", "change", "change_percent"] {
                assert!(d.get(k).is_some(), "quote carries {k}");
            }
        }
        let history = sent(bport, token_of(&sym));
        assert!(
            history.iter().any(|s| matches_sent(d, mode, s)),
            "{sym} mode {mode}: {d} matches nothing the mock sent"
        );
        *seen.entry(sym).or_default() += 1;
    }

    // The same ticks are in shared memory.
    let mut r = Reader::open(&shm).unwrap();
    let sbin = r.lookup("NSE", "SBIN").unwrap();
    let last = r.last_value(sbin).unwrap().expect("SBIN has a last value");
    let hist = sent(bport, 779521);
    assert!(hist
        .iter()
        .any(|s| (last.ltp / 100_000) as u64 == s["ltp"].as_u64().unwrap()));
    r.seek_oldest();
    let mut checked = 0;
    while let Some(ev) = r.next() {
        if let Event::Tick(t) = ev {
            if t.symbol_id == sbin {
                checked += 1;
                assert!(t.recv_ts_ns > 0 && t.seq > 0);
            }
        }
    }
    assert!(checked > 0, "SBIN ticks in the shm ring");

    // Unsubscribe without a mode removes every mode; then data for it stops.
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE"}]}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        recv(&mut ws, Duration::from_millis(50));
    }
    let quiet = Instant::now() + Duration::from_millis(1500);
    let mut others = 0;
    while Instant::now() < quiet {
        if let Some(m) = recv(&mut ws, Duration::from_millis(100)) {
            assert_ne!(m["symbol"], "INFY", "data after unsubscribe");
            others += 1;
        }
    }
    assert!(others > 0, "the other subscriptions keep flowing");

    // Application ping works and echoes.
    send(
        &mut ws,
        json!({"action": "ping", "timestamp": 123, "_pingId": "p1"}),
    );
    let p = reply(&mut ws);
    assert_eq!(
        (
            p["type"].as_str(),
            p["client_timestamp"].as_i64(),
            p["_pingId"].as_str()
        ),
        (Some("pong"), Some(123), Some("p1"))
    );
}

fn shm_has_new_ticks(r: &mut Reader, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(Event::Tick(_)) = r.next() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn mock(bport: u16) -> Proc {
    let mut m = mock_with(bport, &[]);
    wait_line(&mut m, "mock Kite broker");
    m
}

/// `tickwire mock-broker` on `bport` with a small market, plus `extra` flags.
fn mock_with(bport: u16, extra: &[&str]) -> Proc {
    let ps = bport.to_string();
    let mut args = vec![
        "mock-broker",
        "--broker",
        "kite",
        "--port",
        &ps,
        "--symbols",
        "3",
        "--rate",
        "300",
    ];
    args.extend_from_slice(extra);
    tickwire(&args)
}

#[test]
fn the_gateway_reconnects_when_the_broker_restarts() {
    let bport = free_port();
    let m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let gw = start_serve(&url, &format!("http://127.0.0.1:{bport}/instruments"), &[]);
    let (port, shm) = (gw.port, gw.shm.clone());
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "TCS", "exchange": "NSE", "mode": "depth"}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let wait_data = |ws: &mut Ws, secs: u64| {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if let Some(m) = recv(ws, Duration::from_millis(200)) {
                if m["type"] == "market_data" && m["symbol"] == "TCS" {
                    return m;
                }
            }
        }
        panic!("no TCS data within {secs} s");
    };
    wait_data(&mut ws, 10);
    let mut r = Reader::open(&shm).unwrap();
    assert!(shm_has_new_ticks(&mut r, Duration::from_secs(5)));

    drop(m); // kill the broker mid-stream
    std::thread::sleep(Duration::from_millis(1500));
    while recv(&mut ws, Duration::from_millis(50)).is_some() {}
    r.seek_latest();
    assert!(
        !shm_has_new_ticks(&mut r, Duration::from_millis(500)),
        "no ticks while the broker is down"
    );

    let _m2 = mock(bport);
    // Same client connection, same shm reader: data flows again after the gateway reconnects and
    // re-subscribes in depth mode.
    let m = wait_data(&mut ws, 20);
    assert_eq!(m["mode"], 3);
    assert_eq!(
        m["data"]["depth"]["sell"].as_array().unwrap().len(),
        5,
        "mode was set again after reconnect"
    );
    assert!(shm_has_new_ticks(&mut r, Duration::from_secs(5)));
    assert!(Path::new(&shm).exists());
}

#[test]
fn the_mock_checks_credentials_and_serves_the_master() {
    let bport = free_port();
    let _m = mock(bport);
    let csv = http_get(bport, "/instruments");
    assert!(csv.starts_with("instrument_token,exchange_token,tradingsymbol"));
    for name in [
        "SBIN",
        "RELIANCE",
        "INFY",
        "TCS",
        "NIFTY 50",
        "NIFTY26DECFUT",
        "USDINR26DECFUT",
    ] {
        assert!(csv.contains(name), "{name} in the master");
    }
    let bad = tungstenite::connect(format!("ws://127.0.0.1:{bport}/?api_key=x&access_token=y"));
    match bad {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| ())),
    }
    // Kite's framing from the mock, read with a plain WebSocket client: subscribe, set full mode,
    // get a 184-byte packet for the token, and a 1-byte heartbeat within ~1 s.
    let (mut ws, _) = tungstenite::connect(format!(
        "ws://127.0.0.1:{bport}/?api_key=mock_api_key&access_token=mock_access_token"
    ))
    .unwrap();
    ws.send(Message::Text(r#"{"a":"subscribe","v":[779521]}"#.into()))
        .unwrap();
    ws.send(Message::Text(
        r#"{"a":"mode","v":["full",[779521]]}"#.into(),
    ))
    .unwrap();
    let (mut full, mut heartbeat) = (false, false);
    let end = Instant::now() + Duration::from_secs(5);
    while !(full && heartbeat) && Instant::now() < end {
        if let Message::Binary(b) = ws.read().unwrap() {
            if b.len() == 1 {
                heartbeat = true;
            } else if b.len() >= 4 && u16::from_be_bytes([b[2], b[3]]) == 184 {
                assert_eq!(u32::from_be_bytes([b[4], b[5], b[6], b[7]]), 779521);
                full = true;
            }
        }
    }
    assert!(
        full && heartbeat,
        "full packet {full}, heartbeat {heartbeat}"
    );
    ws.send(Message::Text("not json".into())).unwrap();
    loop {
        if let Message::Text(t) = ws.read().unwrap() {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(v["type"], "error");
            break;
        }
    }
}

/// The README's Python client (standard `websockets` package) against the demo. Needs python3 with
/// websockets, so it runs when TICKWIRE_PYTHON_TESTS=1 (`.ci/run` installs websockets and sets it).
#[test]
fn the_readme_python_client_works() {
    if std::env::var_os("TICKWIRE_PYTHON_TESTS").is_none() {
        eprintln!("skipped: set TICKWIRE_PYTHON_TESTS=1 (needs python3 with websockets)");
        return;
    }
    let d = start_demo(&[]);
    let port = d.port;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/openalgo_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("ws://127.0.0.1:{port}"))
        .arg("k1")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["type"], "auth");
    assert_eq!(lines[1]["status"], "success");
    for m in &lines[2..] {
        assert_eq!(
            (m["type"].as_str(), m["symbol"].as_str(), m["mode"].as_u64()),
            (Some("market_data"), Some("SBIN"), Some(2))
        );
    }
}

#[test]
fn a_slow_client_never_stalls_the_others() {
    let d = start_demo(&["--symbols", "10", "--rate", "20000", "--flush-ms", "0"]);
    let port = d.port;
    let all: Vec<Value> = ["SBIN", "RELIANCE", "INFY", "TCS"]
        .iter()
        .map(|s| json!({"symbol": s, "exchange": "NSE"}))
        .chain((1..=10).map(|i| json!({"symbol": format!("SYN{i:05}"), "exchange": "NSE"})))
        .collect();
    // The slow client subscribes to everything in depth mode and never reads again.
    let mut slow = connect(port);
    send(
        &mut slow,
        json!({"action": "authenticate", "api_key": "k1"}),
    );
    assert_eq!(reply(&mut slow)["status"], "success");
    send(
        &mut slow,
        json!({"action": "subscribe", "symbols": all, "mode": 3}),
    );
    assert_eq!(reply(&mut slow)["status"], "success");
    std::thread::sleep(Duration::from_secs(2)); // its socket buffers fill up

    let mut fast = connect(port);
    send(
        &mut fast,
        json!({"action": "authenticate", "api_key": "k1"}),
    );
    assert_eq!(reply(&mut fast)["status"], "success");
    send(
        &mut fast,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    assert_eq!(reply(&mut fast)["status"], "success");
    // SBIN ticks ~20000/14 ≈ 1400 times a second; the fast client must keep seeing them in every
    // half-second window while the slow one is stuck.
    for window in 0..6 {
        let end = Instant::now() + Duration::from_millis(500);
        let mut n = 0;
        while Instant::now() < end {
            if recv(&mut fast, Duration::from_millis(50))
                .is_some_and(|m| m["type"] == "market_data")
            {
                n += 1;
            }
        }
        assert!(
            n >= 20,
            "window {window}: only {n} messages for the fast client"
        );
    }
    drop(slow);
}

/// The official `kiteconnect` KiteTicker against the mock (needs python3 with kiteconnect; runs when
/// TICKWIRE_PYTHON_TESTS=1, which `.ci/run` sets after installing it).
#[test]
fn the_official_kite_ticker_reads_the_mock() {
    if std::env::var_os("TICKWIRE_PYTHON_TESTS").is_none() {
        eprintln!("skipped: set TICKWIRE_PYTHON_TESTS=1 (needs python3 with kiteconnect)");
        return;
    }
    let bport = free_port();
    let _m = mock(bport);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/kite_ticker_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("ws://127.0.0.1:{bport}"))
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn protocol_errors_and_replies_match_openalgo() {
    let d = start_demo(&[]);
    let port = d.port;
    let mut ws = connect(port);
    ws.send(Message::Text("not json".into())).unwrap();
    assert_eq!(
        reply(&mut ws),
        json!({"status": "error", "code": "INVALID_JSON", "message": "Invalid JSON message"})
    );
    ws.send(Message::Text("[1,2]".into())).unwrap();
    assert_eq!(reply(&mut ws)["code"], "SERVER_ERROR");
    send(&mut ws, json!({"foo": 1}));
    assert_eq!(reply(&mut ws)["message"], "Invalid action: None");
    send(&mut ws, json!({"action": "dance"}));
    assert_eq!(reply(&mut ws)["message"], "Invalid action: dance");
    // ping and broker list work before auth; a binary frame holding JSON is accepted
    ws.send(Message::Binary(br#"{"action":"ping"}"#.to_vec().into()))
        .unwrap();
    assert_eq!(reply(&mut ws)["type"], "pong");
    send(&mut ws, json!({"action": "get_supported_brokers"}));
    assert_eq!(reply(&mut ws)["type"], "supported_brokers");
    send(&mut ws, json!({"type": "auth", "apikey": "k1"}));
    assert_eq!(
        reply(&mut ws)["type"],
        "auth",
        "`type` as verb, `apikey` as key"
    );
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 4}),
    );
    assert_eq!(
        reply(&mut ws),
        json!({"status": "error", "code": "INVALID_MODE", "message": "Invalid mode 4; expected 1 (LTP), 2 (Quote), or 3 (Depth)"})
    );
    send(&mut ws, json!({"action": "subscribe", "mode": 1}));
    assert_eq!(reply(&mut ws)["code"], "INVALID_PARAMETERS");
    send(&mut ws, json!({"action": "unsubscribe"}));
    assert_eq!(
        reply(&mut ws)["message"],
        "Either symbols or unsubscribe_all is required"
    );
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "TCS", "exchange": "NSE"}], "mode": "ltp"}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 1}, {"symbol": "TCS", "exchange": "NSE", "mode": 9}], "request_id": 7}),
    );
    let r = reply(&mut ws);
    assert_eq!(
        (r["status"].as_str(), r["request_id"].as_i64()),
        (Some("partial"), Some(7))
    );
    assert_eq!(
        r["failed"][0]["message"],
        "Invalid mode 9; expected 1 (LTP), 2 (Quote), or 3 (Depth)"
    );
    send(&mut ws, json!({"action": "unsubscribe_all"}));
    let r = reply(&mut ws);
    assert_eq!(
        (r["type"].as_str(), r["status"].as_str()),
        (Some("unsubscribe"), Some("success"))
    );
    assert_eq!(
        r["successful"].as_array().unwrap().len(),
        1,
        "TCS was still held"
    );
    // The feed connects in the background; broker_info tells the truth about it.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        send(&mut ws, json!({"action": "get_broker_info"}));
        let r = reply(&mut ws);
        assert_eq!(r["broker"], "zerodha");
        if r["adapter_status"] == "connected" {
            break;
        }
        assert_eq!(r["adapter_status"], "disconnected");
        assert!(Instant::now() < end, "feed never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_shuts_the_demo_down_cleanly() {
    ctrl_c_case(&[]);
}

#[test]
fn ctrl_c_shuts_the_demo_down_cleanly_with_the_router_on_its_own_thread() {
    ctrl_c_case(&["--router", "thread"]);
}

fn ctrl_c_case(extra: &[&str]) {
    let mut d = start_demo(extra);
    let pid = d._proc.0.id().to_string();
    let st = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(st.success());
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = d._proc.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "demo did not exit on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit: {status:?}");
    let opts = tickwire_shm::OpenOptions {
        require_live: false,
        ..Default::default()
    };
    let r = Reader::open_with(&d.shm, opts).unwrap();
    assert_eq!(
        r.writer_status(),
        tickwire_shm::WriterStatus::Closed,
        "shm header marked closed"
    );
}

/// wss:// end to end: the mock serves TLS with a certificate made here, the gateway's feed trusts
/// it through --broker-ca-file (besides the Mozilla roots), and ticks arrive over rustls.
#[test]
fn the_feed_speaks_wss_through_rustls() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    // The instrument master, from a plain mock with the same market.
    let plain = free_port();
    let csv = {
        let _m = mock(plain);
        http_get(plain, "/instruments")
    };
    let master = dir.path().join("instruments.csv");
    std::fs::write(&master, csv).unwrap();
    let bport = free_port();
    let mut m = mock_with(
        bport,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(wait_line(&mut m, "mock Kite broker").contains("wss://"));
    // A host name, not an address: the feed resolves it on its helper thread (IPv4 first).
    let url = format!("wss://localhost:{bport}");
    let gw = start_serve(
        &url,
        master.to_str().unwrap(),
        &["--broker-ca-file", cert.to_str().unwrap()],
    );
    let mut ws = authed(gw.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 3}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < end, "no data over wss");
        if let Some(m) = recv(&mut ws, Duration::from_millis(200)) {
            if m["type"] == "market_data" {
                assert_eq!(m["data"]["depth"]["buy"].as_array().unwrap().len(), 5);
                break;
            }
        }
    }
}

/// A broker that goes silent without closing (stopped process: no data, no heartbeats, the socket
/// still open) is declared dead after 5 s; when it comes back, the feed reconnects and data flows.
#[test]
fn a_silent_broker_is_detected_dead_and_the_feed_recovers() {
    let bport = free_port();
    let m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let gw = start_serve(&url, &format!("http://127.0.0.1:{bport}/instruments"), &[]);
    let port = gw.port;
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    let adapter = |ws: &mut Ws| {
        send(ws, json!({"action": "get_broker_info"}));
        reply(ws)["adapter_status"].as_str().unwrap().to_string()
    };
    let wait_for = |ws: &mut Ws, want: &str, secs: u64| {
        let end = Instant::now() + Duration::from_secs(secs);
        while adapter(ws) != want {
            assert!(Instant::now() < end, "adapter never became {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(&mut ws, "connected", 10);
    let pid = m.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now();
    wait_for(&mut ws, "disconnected", 12);
    assert!(
        stopped.elapsed() >= Duration::from_secs(4),
        "declared dead only after the 5 s silence"
    );
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    wait_for(&mut ws, "connected", 30);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "no data after recovery");
        if recv(&mut ws, Duration::from_millis(200)).is_some_and(|m| m["type"] == "market_data") {
            break;
        }
    }
    drop(m);
}

#[test]
fn status_and_health_over_plain_http_on_the_client_port() {
    let d = start_demo(&[]);
    assert_eq!(http_get(d.port, "/health"), "ok\n");
    assert!(http_get(d.port, "/nope").starts_with("not found"));
    // Any path upgrades (nginx proxies OpenAlgo at /ws).
    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{}/ws", d.port)).unwrap();
    send(&mut ws, json!({"action": "authenticate", "api_key": "k1"}));
    assert_eq!(reply(&mut ws)["status"], "success");
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "TCS", "exchange": "NSE", "mode": 2}),
    );
    let r = reply(&mut ws);
    assert!(["pending", "live"].contains(&r["subscriptions"][0]["upstream"].as_str().unwrap()));
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let st: Value = serde_json::from_str(&http_get(d.port, "/status")).unwrap();
        let subs = st["symbols"]["subscribed"].as_array().unwrap().clone();
        assert!(Instant::now() < end, "TCS never went live: {subs:?}");
        // Absent until the router has passed the demand to the feed, then pending, then live.
        let Some(tcs) = subs.iter().find(|s| s["symbol"] == "TCS") else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if tcs["upstream"] == "live" {
            assert_eq!(st["feed"]["connected"], true);
            assert!(st["clients"]["open"].as_u64().unwrap() >= 1);
            break;
        }
        assert_eq!(tcs["upstream"], "pending", "not live yet means pending");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_oversized_client_message_closes_with_1009() {
    let d = start_demo(&[]);
    let mut ws = connect(d.port);
    let big = format!(
        "{{\"action\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let _ = ws.send(Message::Text(big.into()));
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "no close frame");
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1009);
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("expected a 1009 close, got {e}"),
        }
    }
    // The gateway is still serving others.
    let mut ws2 = connect(d.port);
    send(&mut ws2, json!({"action": "ping"}));
    assert_eq!(reply(&mut ws2)["type"], "pong");
}
