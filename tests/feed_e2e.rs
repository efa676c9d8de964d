//! The upstream side end to end, with the real binary against the mock broker on loopback:
//! reconnecting after the broker restarts (modes restored), wss:// through rustls, dead-connection
//! detection, and a broker that refuses the credentials.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tickwire_shm::Reader;

use common::*;

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
    wait_data(&mut ws, "NSE", "TCS", 10);
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

    // A client subscribing meanwhile is told the truth: the feed is down, since when, and how old
    // the snapshot it gets is.
    let mut late = authed(port);
    send(
        &mut late,
        json!({"action": "subscribe", "symbol": "TCS", "exchange": "NSE", "mode": "ltp"}),
    );
    let r2 = reply(&mut late);
    let e = &r2["subscriptions"][0];
    assert_eq!(e["upstream"], "disconnected", "{r2}");
    assert!(
        e["upstream_down_since"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{r2}"
    );
    assert!(
        e["snapshot_age_ms"].as_u64().is_some_and(|a| a >= 1000),
        "{r2}"
    );
    let down = feed_status(port);
    assert!(down["last_error"].as_str().is_some(), "{down}");
    assert!(down["last_error_at"].as_str().is_some(), "{down}");

    let _m2 = mock(bport);
    // Same client connection, same shm reader: data flows again after the gateway reconnects and
    // re-subscribes in depth mode.
    let m = wait_data(&mut ws, "NSE", "TCS", 20);
    assert_eq!(m["mode"], 3);
    assert_eq!(
        m["data"]["depth"]["sell"].as_array().unwrap().len(),
        5,
        "mode was set again after reconnect"
    );
    assert!(shm_has_new_ticks(&mut r, Duration::from_secs(5)));
    assert!(Path::new(&shm).exists());
    // Recovered: the error no longer shows as current, but stays visible with both times.
    let up = wait_feed_state(port, "open", 10);
    assert!(up["last_error"].is_null(), "{up}");
    let rec = &up["recovered_error"];
    assert!(
        rec["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{up}"
    );
    assert!(rec["recovered_at"].as_str() >= rec["at"].as_str(), "{up}");
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
            // Kite's quote-mode snapshot can come first (subscribe, then the mode message): its
            // depth message has empty sides until the book arrives.
            if m["type"] == "market_data"
                && m["data"]["depth"]["buy"].as_array().unwrap().len() == 5
            {
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

/// A broker that refuses the credentials (Kite answers the upgrade with 403) stops the feed with a
/// clear status: one attempt, not a redial every few seconds for the rest of the day.
#[test]
fn refused_credentials_stop_the_feed_instead_of_redialling() {
    let bport = free_port();
    let mut m = mock_with(bport, &["--access-token", "another_token"]);
    wait_line(&mut m, "mock Kite broker");
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let log = dir.path().join("stderr");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args([
            "serve",
            "--dev",
            "--port",
            &port.to_string(),
            "--api-key",
            "k1",
        ])
        .args(["--shm", dir.path().join("ticks").to_str().unwrap()])
        .args(["--broker-url", &format!("ws://127.0.0.1:{bport}")])
        .args([
            "--instruments",
            &format!("http://127.0.0.1:{bport}/instruments"),
        ])
        .args(["--kite-api-key", "mock_api_key", "--kite-access-token", "t"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _gw = Proc(child);
    wait_feed_state(port, "stopped", 15);
    std::thread::sleep(Duration::from_secs(2));
    // Said at once on stderr, once, not only in /status.
    let stderr = std::fs::read_to_string(&log).unwrap();
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("HTTP 403")).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("stopped, not retrying"), "{stderr}");
    let f = feed_status(port);
    assert_eq!(f["attempts"], 1, "{f}");
    assert_eq!(f["connected"], false);
    let err = f["last_error"].as_str().unwrap();
    assert!(
        err.contains("HTTP 403") && err.contains("credentials"),
        "{err}"
    );
}

/// Secrets can come from the environment or a secrets file, out of the process table; an empty
/// API key is refused at start-up instead of starting a gateway no client can use.
#[test]
fn secrets_come_from_the_environment_or_a_file_and_an_empty_api_key_is_refused() {
    for from_file in [false, true] {
        secrets_case(from_file);
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("secrets");
    std::fs::write(&bad, "TICKWIRE_KITE_TOKEN=x\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--secrets-file", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("line 1: unknown name \"TICKWIRE_KITE_TOKEN\""),
        "{err}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--api-key", "", "--port", "0"])
        .args(["--kite-api-key", "a", "--kite-access-token", "b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--api-key must not be empty"), "{err}");
}

/// `serve` with its API keys and Kite credentials from the environment or a secrets file.
fn secrets_case(from_file: bool) {
    let bport = free_port();
    let _m = mock(bport);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("ticks");
    let (ps, url, inst) = (
        port.to_string(),
        format!("ws://127.0.0.1:{bport}"),
        format!("http://127.0.0.1:{bport}/instruments"),
    );
    let args = [
        "serve",
        "--dev",
        "--port",
        &ps,
        "--shm",
        shm.to_str().unwrap(),
        "--broker-url",
        &url,
        "--instruments",
        &inst,
    ];
    let secrets = [
        ("TICKWIRE_API_KEYS", "another-key,k1"),
        ("TICKWIRE_KITE_API_KEY", "mock_api_key"),
        ("TICKWIRE_KITE_ACCESS_TOKEN", "mock_access_token"),
    ];
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"));
    cmd.args(args).stdout(std::process::Stdio::null());
    if from_file {
        let f = dir.path().join("secrets");
        let lines: Vec<String> = secrets.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&f, format!("# tickwire secrets\n{}", lines.concat())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        cmd.arg("--secrets-file").arg(&f);
    } else {
        cmd.envs(secrets);
    }
    let child = cmd.spawn().unwrap();
    let p = Proc(child);
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    wait_data(&mut ws, "NSE", "SBIN", 10);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", p.0.id())).unwrap();
    let has = |s: &[u8]| cmdline.windows(s.len()).any(|w| w == s);
    assert!(
        !has(b"mock_access_token") && !has(b"another-key"),
        "secrets in the process table"
    );
}

/// With no subscriptions the feed thread sleeps until there is work: a few wake-ups a second (the
/// router's heartbeat, the broker's), not one a millisecond.
#[test]
fn an_idle_gateway_sleeps() {
    let bport = free_port();
    let _m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let gw = start_serve(&url, &format!("http://127.0.0.1:{bport}/instruments"), &[]);
    wait_feed_state(gw.port, "open", 10);
    std::thread::sleep(Duration::from_secs(1));
    let pid = gw._proc.0.id();
    let switches = || -> u64 {
        let dir = format!("/proc/{pid}/task");
        for t in std::fs::read_dir(&dir).unwrap().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.starts_with("tickwire-feed") {
                let st = std::fs::read_to_string(t.path().join("status")).unwrap();
                return st
                    .lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap();
            }
        }
        panic!("no feed thread in {dir}");
    };
    let before = switches();
    std::thread::sleep(Duration::from_secs(3));
    let n = switches() - before;
    println!("feed thread: {n} wake-ups in 3 s idle");
    assert!(n < 150, "{n} wake-ups in 3 s: the idle feed thread polls");
}
