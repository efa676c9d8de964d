//! The client port under attack and misuse, against the real binary on loopback: a connection
//! flood, slow readers of a megabyte `/status`, `/status` without a key, foreign browser origins,
//! unsupported WebSocket versions, and frames that break RFC 6455.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const UPGRADE: &str =
    "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Sends `req` on a new connection and returns the whole response (the server closes after it).
fn raw(port: u16, req: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A raw WebSocket connection, handshake done (the test writes frames byte by byte).
fn upgraded(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// A masked client frame: `first` is FIN/RSV/opcode.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let mask = [1u8, 2, 3, 4];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => f.push(m | n as u8),
        n => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    if masked {
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Sends `bytes` and returns the close code of the server's close frame (None: no close frame
/// before the connection ended).
fn close_code_after(port: u16, bytes: &[u8]) -> Option<u16> {
    let mut s = upgraded(port);
    s.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    // Server frames are unmasked; skip anything before the close frame (a ping, say).
    let mut at = 0;
    while at + 2 <= got.len() {
        let (op, len) = (got[at] & 0x0f, (got[at + 1] & 0x7f) as usize);
        if op == 0x8 {
            return got
                .get(at + 2..at + 4)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
        at += 2 + len;
    }
    None
}

#[test]
fn protocol_violations_get_the_rfc_close_codes() {
    let d = start_demo(&[]);
    let text = |p: &[u8]| frame(0x81, p, true);
    assert_eq!(
        close_code_after(d.port, &text(b"{\"a\":\"\xff\xfe\"}")),
        Some(1007),
        "bad UTF-8"
    );
    assert_eq!(
        close_code_after(d.port, &frame(0x81, b"{}", false)),
        Some(1002),
        "unmasked"
    );
    assert_eq!(
        close_code_after(d.port, &frame(0x83, b"{}", true)),
        Some(1002),
        "reserved opcode"
    );
    assert_eq!(
        close_code_after(d.port, &frame(0xC1, b"{}", true)),
        Some(1002),
        "RSV1 set"
    );
    assert_eq!(
        close_code_after(d.port, &frame(0x89, &[0; 126], true)),
        Some(1002),
        "big ping"
    );
    // The gateway is unharmed.
    let mut ws = authed(d.port);
    send(&mut ws, json!({"action": "ping"}));
    assert_eq!(reply(&mut ws)["type"], "pong");
}

#[test]
fn upgrade_checks_status_key_and_origins() {
    let d = start_demo(&["--allow-origin", "https://desk.example"]);
    let v8 = raw(
        d.port,
        &format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}Sec-WebSocket-Version: 8\r\n\r\n"),
    );
    assert!(v8.starts_with("HTTP/1.1 426"), "{v8}");
    assert!(v8.contains("Sec-WebSocket-Version: 13\r\n"), "{v8}");
    let no_key = raw(
        d.port,
        concat!(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n",
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ),
    );
    assert!(no_key.starts_with("HTTP/1.1 400"), "{no_key}");

    let v13 = |origin: &str| {
        raw(d.port, &format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{UPGRADE}Sec-WebSocket-Version: 13\r\n{origin}\r\n", d.port))
    };
    assert!(
        v13("").starts_with("HTTP/1.1 101"),
        "no Origin: not a browser"
    );
    assert!(v13("Origin: https://desk.example\r\n").starts_with("HTTP/1.1 101"));
    let own = format!("Origin: http://127.0.0.1:{}\r\n", d.port);
    assert!(
        v13(&own).starts_with("HTTP/1.1 101"),
        "the gateway's own origin"
    );
    let evil = v13("Origin: https://evil.example\r\n");
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");

    let status = |hdr: &str| {
        raw(
            d.port,
            &format!("GET /status HTTP/1.1\r\nHost: x\r\n{hdr}\r\n"),
        )
    };
    let anon = status("");
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
    assert!(
        !anon.contains("subscribed"),
        "no data without a key: {anon}"
    );
    assert!(status("X-API-Key: wrong\r\n").starts_with("HTTP/1.1 401"));
    assert!(status("Authorization: Bearer k1\r\n").starts_with("HTTP/1.1 200"));
    assert!(status("X-API-Key: k1\r\n").starts_with("HTTP/1.1 200"));
}

/// `/status` with 20,000 instruments (9,000 of them subscribed: Kite's 3 connections × 3,000) is
/// ~0.9 MB, a dozen socket buffers: readers that take their time still get all of it.
#[test]
fn slow_readers_get_the_whole_status() {
    let d = start_demo(&["--symbols", "20000", "--subscribe-all", "--rate", "100"]);
    wait_until(30, "9,000 instruments subscribed", || {
        let n = gateway_status(d.port)["symbols"]["subscribed"]
            .as_array()?
            .len();
        (n >= 9_000).then_some(())
    });
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let port = d.port;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                write!(
                    s,
                    "GET /status HTTP/1.1\r\nHost: x\r\nX-API-Key: k1\r\n\r\n"
                )
                .unwrap();
                // Let the response fill the socket buffers before reading any of it.
                std::thread::sleep(Duration::from_millis(1500));
                let mut r = BufReader::new(s);
                let mut len = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = Vec::new();
                let mut chunk = [0u8; 16 << 10];
                loop {
                    let n = r.read(&mut chunk).unwrap();
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                    std::thread::sleep(Duration::from_millis(2));
                }
                (len, body)
            })
        })
        .collect();
    for h in readers {
        let (len, body) = h.join().unwrap();
        assert!(
            len > 500_000,
            "Content-Length {len}: 9,000 instruments listed"
        );
        assert_eq!(body.len(), len, "the whole body arrived");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["symbols"]["subscribed"].as_array().unwrap().len() >= 9_000);
    }
}

/// ~1,100 idle connections, renewed as they are dropped, must not lock out clients with a key;
/// the refusals are logged as a count, not a line each.
#[test]
fn a_connection_flood_does_not_lock_out_clients_with_a_key() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("ticks");
    let log = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["demo", "--port", &port.to_string(), "--api-key", "k1"])
        .args(["--shm", shm.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _proc = Proc(child);
    wait_until(20, "the gateway listens", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });

    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conns: Vec<Option<TcpStream>> = (0..1100).map(|_| None).collect();
            let mut opened = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for c in conns.iter_mut() {
                    let alive = c.as_mut().is_some_and(|s| {
                        let mut b = [0u8; 64];
                        matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                    });
                    if !alive {
                        let addr = ([127, 0, 0, 1], port).into();
                        let short = Duration::from_millis(100);
                        *c = TcpStream::connect_timeout(&addr, short).ok().inspect(|s| {
                            s.set_nonblocking(true).unwrap();
                        });
                        opened += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            opened
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    for i in 0..40 {
        // A client retries a refused or dropped attempt, as OpenAlgo's SDK does.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(ws) = try_authed(port) {
                drop(ws);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "client {i} could not get in for 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let took = start.elapsed();
    let st = gateway_status(port);
    assert_eq!(st["status"], "ok", "/status answers during the flood");
    stop.store(true, Ordering::Relaxed);
    let opened = flood.join().unwrap();
    assert!(st["clients"]["evicted"].as_u64().unwrap() > 0, "{st}");
    println!("40 clients in {took:?} during a flood that opened {opened} connections");
    let stderr = std::fs::read_to_string(&log).unwrap();
    let lines = stderr.lines().filter(|l| l.contains("refused")).count();
    assert!(
        lines <= 5,
        "refusals are rate-limited: {lines} lines\n{stderr}"
    );
}

/// Connect + authenticate, or None if the gateway dropped the attempt.
fn try_authed(port: u16) -> Option<Ws> {
    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}")).ok()?;
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    }
    let auth = json!({"action": "authenticate", "api_key": "k1"}).to_string();
    ws.send(tungstenite::Message::Text(auth.into())).ok()?;
    match ws.read().ok()? {
        tungstenite::Message::Text(t) => t.contains("\"success\"").then_some(ws),
        _ => None,
    }
}

/// Flags out of range are refused at start with the range; a demo at the highest rate stays
/// small and stops on Ctrl-C.
#[test]
fn absurd_rates_are_refused_and_ctrl_c_stops_the_demo_at_full_rate() {
    for rate in ["4294967296", "1e12", "0"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
            .args(["demo", "--port", "0", "--rate", rate])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--rate {rate} accepted");
        assert!(err.contains("--rate"), "--rate {rate}: {err}");
    }
    let d = start_demo(&["--rate", "10000000", "--symbols", "1000"]);
    std::thread::sleep(Duration::from_secs(3));
    let pid = d._proc.0.id();
    let rss_kb = |pid: u32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    };
    let rss = rss_kb(pid);
    assert!(rss < 512 << 10, "RSS {rss} kB at 10 M updates/s");
    let mut d = d;
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(st) = d._proc.0.try_wait().unwrap() {
            println!("stopped with {st} in under 15 s");
            break;
        }
        assert!(Instant::now() < end, "the demo ignored Ctrl-C at full rate");
        std::thread::sleep(Duration::from_millis(100));
    }
}
