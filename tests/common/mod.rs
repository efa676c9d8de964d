//! Helpers the end-to-end tests share: the real binary on free loopback ports, WebSocket and
//! HTTP clients, the mock broker, and checks of values against what the mock says it sent.
#![allow(dead_code)]

pub mod modes;
pub mod python;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickwire_engine::price;
use tickwire_shm::{Event, Reader};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn tickwire(args: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tickwire");
    Proc(child)
}

/// Waits for a line containing `needle` on the child's stdout.
pub fn wait_line(p: &mut Proc, needle: &str) -> String {
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

/// A client connected to the gateway on `port`, retried while it starts (loading masters, on a
/// busy 2-core CI machine, has taken over 20 s once: the patience is generous, a failure is not).
pub fn connect(port: u16) -> Ws {
    let deadline = Instant::now() + Duration::from_secs(60);
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

pub fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).unwrap();
}

/// Next JSON message within `limit`, or None.
pub fn recv(ws: &mut Ws, limit: Duration) -> Option<Value> {
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

/// The next reply that is not market data or a status update.
pub fn reply(ws: &mut Ws) -> Value {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_secs(1)) {
            if v["type"] != "market_data" && v["type"] != "status_update" {
                return v;
            }
        }
    }
    panic!("no reply");
}

pub fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::Write;
    // The test key: `/status` needs one (the mock ignores it).
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: k1\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// What the mock sent for `token`, newest last.
pub fn sent(mock_port: u16, token: u32) -> Vec<Value> {
    serde_json::from_str(&http_get(mock_port, &format!("/sent?token={token}"))).unwrap()
}

/// A price in a gateway message, as paise (raw Kite units, divisor 100).
pub fn paise(v: &Value) -> u64 {
    let p = price::parse(&v.to_string()).unwrap_or_else(|| panic!("not an exact decimal: {v}"));
    assert_eq!(p % 100_000, 0, "NSE prices are whole paise: {v}");
    (p / 100_000) as u64
}

/// True when `data` matches one packet the mock sent, in every field the mode carries.
pub fn matches_sent(data: &Value, mode: u64, s: &Value) -> bool {
    matches_sent_with(data, mode, s, true)
}

/// [`matches_sent`] for a broker whose depth has no order counts (`orders`: false).
pub fn matches_sent_with(data: &Value, mode: u64, s: &Value, orders: bool) -> bool {
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
                    && (!orders || l["orders"] == w[2]);
            }
        }
    }
    ok
}

/// A running `tickwire demo` on free loopback ports with its own shm file.
pub struct Demo {
    pub _proc: Proc,
    pub port: u16,
    pub bport: u16,
    pub shm: std::path::PathBuf,
    pub _dir: tempfile::TempDir,
}

pub fn start_demo(extra: &[&str]) -> Demo {
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
pub struct Served {
    pub _proc: Proc,
    pub port: u16,
    pub shm: std::path::PathBuf,
    pub _dir: tempfile::TempDir,
}

pub fn start_serve(url: &str, instruments: &str, extra: &[&str]) -> Served {
    let mut args = vec![
        "--broker-url",
        url,
        "--instruments",
        instruments,
        "--kite-api-key",
        "mock_api_key",
        "--kite-access-token",
        "mock_access_token",
    ];
    args.extend_from_slice(extra);
    start_serve_with(&args)
}

/// `tickwire serve` with the test key, a free port and its own shm file, plus `broker_args`.
pub fn start_serve_with(broker_args: &[&str]) -> Served {
    // `--dev`: these tests are about the feed, not market hours (tests/market_e2e.rs is), and
    // must pass at any hour.
    serve_on_hours(broker_args, true)
}

/// `tickwire serve` against the mock Kite broker on `bport` following the market calendar (no
/// `--dev`), plus `extra`.
pub fn start_serve_by_the_calendar(bport: u16, extra: &[&str]) -> Served {
    let (url, inst) = (
        format!("ws://127.0.0.1:{bport}"),
        format!("http://127.0.0.1:{bport}/instruments"),
    );
    let mut args = vec![
        "--broker-url",
        &url,
        "--instruments",
        &inst,
        "--kite-api-key",
        "mock_api_key",
        "--kite-access-token",
        "mock_access_token",
    ];
    args.extend_from_slice(extra);
    serve_on_hours(&args, false)
}

fn serve_on_hours(broker_args: &[&str], dev: bool) -> Served {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("ticks");
    let ps = port.to_string();
    // Each gateway journals (as `serve` does by default) into its own directory.
    let journal = dir.path().join("journal");
    let mut args = vec![
        "serve",
        "--port",
        &ps,
        "--api-key",
        "k1",
        "--shm",
        shm.to_str().unwrap(),
    ];
    if !broker_args.contains(&"--no-journal") {
        args.extend(["--journal", journal.to_str().unwrap()]);
    }
    if dev {
        args.push("--dev");
    }
    args.extend_from_slice(broker_args);
    Served {
        _proc: tickwire(&args),
        port,
        shm,
        _dir: dir,
    }
}

/// Sends SIGTERM to a gateway (or replay, or demo) and asserts it exits cleanly within 30 s.
pub fn stop_cleanly(p: &mut Proc) {
    let pid = p.0.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = p.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a clean stop: {status:?}");
}

/// A client connected and authenticated with the test key.
pub fn authed(port: u16) -> Ws {
    let mut ws = connect(port);
    send(&mut ws, json!({"action": "authenticate", "api_key": "k1"}));
    assert_eq!(reply(&mut ws)["status"], "success");
    ws
}

pub const TOKENS: [(&str, u32); 3] = [("SBIN", 779521), ("RELIANCE", 738561), ("INFY", 408065)];

pub fn token_of(sym: &str) -> u32 {
    TOKENS.iter().find(|t| t.0 == sym).unwrap().1
}

pub fn shm_has_new_ticks(r: &mut Reader, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(Event::Tick(_)) = r.next() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// `tickwire mock-broker --broker BROKER` on `bport` with a small market, ready.
pub fn mock_of(broker: &str, bport: u16, extra: &[&str]) -> Proc {
    let ps = bport.to_string();
    let mut args = vec!["mock-broker", "--broker", broker, "--port", &ps];
    // Small and slow unless `extra` says otherwise (clap refuses a flag given twice).
    for (flag, default) in [("--symbols", "3"), ("--rate", "300")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend_from_slice(extra);
    let mut m = tickwire(&args);
    wait_line(&mut m, "mock ");
    m
}

/// The gateway's `GET /status` feed object (Null while it is not up).
pub fn feed_status(port: u16) -> Value {
    let body = http_get(port, "/status");
    serde_json::from_str::<Value>(&body).map_or(Value::Null, |v| v["feed"].clone())
}

/// Waits until the feed's `state` is `want`.
pub fn wait_feed_state(port: u16, want: &str, secs: u64) -> Value {
    drop(connect(port)); // the gateway is listening
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let f = feed_status(port);
        if f["state"] == want {
            return f;
        }
        assert!(Instant::now() < end, "feed never became {want}: {f}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn mock(bport: u16) -> Proc {
    let mut m = mock_with(bport, &[]);
    wait_line(&mut m, "mock Kite broker");
    m
}

/// `tickwire mock-broker` on `bport` with a small market, plus `extra` flags.
pub fn mock_with(bport: u16, extra: &[&str]) -> Proc {
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

/// The next `market_data` message for `exchange:symbol` within `secs` (other messages are skipped).
pub fn wait_data(ws: &mut Ws, exchange: &str, symbol: &str, secs: u64) -> Value {
    wait_data_where(ws, secs, &format!("{exchange}:{symbol}"), |v| {
        v["exchange"] == exchange && v["symbol"] == symbol
    })
}

/// The next `market_data` message that `pred` accepts within `secs`; fails naming `what`.
pub fn wait_data_where(ws: &mut Ws, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_millis(200)) {
            if v["type"] == "market_data" && pred(&v) {
                return v;
            }
        }
    }
    panic!("no market data for {what} within {secs} s");
}

/// Polls `f` every 100 ms until it gives a value; fails after `secs` naming `what`.
pub fn wait_until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The gateway's whole `GET /status` (Null while it is not up).
pub fn gateway_status(port: u16) -> Value {
    serde_json::from_str(&http_get(port, "/status")).unwrap_or(Value::Null)
}

/// The mock broker's open connections and what each carries (`GET /connections`).
pub fn mock_connections(bport: u16) -> Vec<Value> {
    serde_json::from_str(&http_get(bport, "/connections")).unwrap_or_default()
}

/// Reads until the server's Close frame, within `secs`: its (code, reason) (None: a Close without
/// a frame) and the JSON messages before it that are not market data. Panics if the connection
/// ends without a Close or none comes in time.
pub fn until_close<S: Read + Write>(
    ws: &mut WebSocket<S>,
    secs: u64,
) -> (Option<(u16, String)>, Vec<Value>) {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] != "market_data" {
                    got.push(v);
                }
            }
            Ok(Message::Close(f)) => {
                return (f.map(|f| (u16::from(f.code), f.reason.to_string())), got)
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("connection ended without a close frame: {e}; got {got:?}"),
        }
    }
    panic!("no close frame within {secs} s; got {got:?}");
}
