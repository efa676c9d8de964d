//! Daily credentials rollover and clean shutdown, through the real binary against the mock broker
//! on loopback: a broker token rotated while clients stream (the broker now refuses the old one;
//! the gateway reports it and waits; the new token arrives by SIGHUP or by the file watch alone;
//! data resumes to the same client connections), and `serve` stopping cleanly on SIGTERM.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickwire_shm::Reader;

use common::*;

/// Writes a credentials file holding the mock's API key and `token`, mode 600.
fn write_credentials(path: &Path, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "# broker credentials, rotated daily\nTICKWIRE_KITE_API_KEY=mock_api_key\n\
         TICKWIRE_KITE_ACCESS_TOKEN={token}\n"
    );
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Writes a config file whose Kite feed table holds the mock's URL, API key and `token`.
fn write_config(path: &Path, bport: u16, token: &str) {
    let text = format!(
        "[[feed]]\nbroker = \"kite\"\nurl = \"ws://127.0.0.1:{bport}\"\n\
         instruments = \"http://127.0.0.1:{bport}/instruments\"\n\
         api_key = \"mock_api_key\"\naccess_token = \"{token}\"\n"
    );
    std::fs::write(path, text).unwrap();
}

/// A mock Kite broker on `bport` that accepts only `token`.
fn mock_accepting(bport: u16, token: &str) -> Proc {
    let mut m = mock_with(bport, &["--access-token", token]);
    wait_line(&mut m, "mock Kite broker");
    m
}

/// `serve` with its Kite credentials from `credentials` only, its stderr (the log) in `log`.
fn serve_with_credentials(bport: u16, port: u16, dir: &Path, credentials: &Path) -> Proc {
    serve_from(port, dir, |c| {
        c.args(["--broker-url", &format!("ws://127.0.0.1:{bport}")])
            .args([
                "--instruments",
                &format!("http://127.0.0.1:{bport}/instruments"),
            ])
            .args(["--credentials-file", credentials.to_str().unwrap()]);
    })
}

/// `serve` on `port` with the test key, its shm file and log (stderr) in `dir`, plus `feed`'s flags.
fn serve_from(port: u16, dir: &Path, feed: impl FnOnce(&mut Command)) -> Proc {
    let log = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    // `--dev`: the mock trades at any hour, and these tests are about credentials, not hours.
    c.args([
        "serve",
        "--port",
        &port.to_string(),
        "--api-key",
        "k1",
        "--dev",
    ])
    .args(["--shm", dir.join("ticks").to_str().unwrap()]);
    feed(&mut c);
    Proc(c.stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

/// A client subscribed to `symbol` on NSE in Quote mode, with data flowing.
fn streaming_client(port: u16, symbol: &str) -> Ws {
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": symbol, "exchange": "NSE", "mode": "Quote"}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    wait_data(&mut ws, "NSE", symbol, 10);
    ws
}

/// The next `BROKER_AUTH_FAILED` notice within `secs` (market data and other messages skipped).
fn auth_notice(ws: &mut Ws, secs: u64) -> Option<Value> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_millis(200)) {
            if v["code"] == "BROKER_AUTH_FAILED" {
                return Some(v);
            }
        }
    }
    None
}

fn adapter_status(ws: &mut Ws) -> String {
    send(ws, json!({"action": "get_broker_info"}));
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Some(v) = recv(ws, Duration::from_millis(200)) {
            if v["type"] == "broker_info" {
                return v["adapter_status"].as_str().unwrap().to_string();
            }
        }
    }
    panic!("no broker_info reply");
}

/// How the new token reaches the running gateway.
#[derive(Clone, Copy, PartialEq)]
enum Tell {
    /// The file is rewritten in place with its modification time kept, so only SIGHUP can tell.
    Sighup,
    /// A new file is renamed over the old one (as editors and deploy tools do); no signal.
    FileWatch,
    /// The token is in the config file's feed table (`serve --config`), which is rewritten.
    ConfigFile,
}

fn rotation(tell: Tell) {
    let bport = free_port();
    let m = mock_accepting(bport, "token_day_1");
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    let config = dir.path().join("tickwire.toml");
    let port = free_port();
    let gw = if tell == Tell::ConfigFile {
        write_config(&config, bport, "token_day_1");
        serve_from(port, dir.path(), |c| {
            c.arg("--config").arg(&config);
        })
    } else {
        write_credentials(&credentials, "token_day_1");
        serve_with_credentials(bport, port, dir.path(), &credentials)
    };
    let mut a = streaming_client(port, "SBIN");
    let mut b = streaming_client(port, "INFY");
    let before = feed_status(port);
    assert_eq!(before["state"], "open", "{before}");

    // The next day: the broker accepts only the new token. The gateway's reconnect is refused.
    drop(m);
    let _m = mock_accepting(bport, "token_day_2");
    let f = wait_feed_state(port, "credentials_rejected", 30);
    assert_eq!(f["connected"], false, "{f}");
    let err = f["last_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("HTTP 403") && err.contains("credentials"),
        "{f}"
    );
    // Each client is told once, stays connected and keeps its subscriptions.
    for ws in [&mut a, &mut b] {
        let n = auth_notice(ws, 10).expect("a BROKER_AUTH_FAILED notice");
        assert_eq!(n["status"], "error", "{n}");
        assert_eq!(n["broker"], "zerodha", "{n}");
        assert!(
            n["message"].as_str().unwrap().contains("credentials"),
            "{n}"
        );
        assert_eq!(adapter_status(ws), "credentials_rejected");
    }
    // Not redialled in a loop: no new attempt while the credentials stay refused.
    let attempts = feed_status(port)["attempts"].clone();
    std::thread::sleep(Duration::from_secs(3));
    let f = feed_status(port);
    assert_eq!(
        f["attempts"], attempts,
        "redialled with refused credentials: {f}"
    );
    assert_eq!(f["state"], "credentials_rejected", "{f}");
    assert!(auth_notice(&mut a, 1).is_none(), "told once");
    // Said once in the log, not once per attempt.
    let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    let said = log
        .lines()
        .filter(|l| l.contains("refused the credentials"))
        .count();
    assert_eq!(said, 1, "{log}");

    // The operator puts the new token in the file; the gateway picks it up and reconnects.
    match tell {
        Tell::Sighup => {
            let old = std::fs::metadata(&credentials).unwrap().modified().unwrap();
            write_credentials(&credentials, "token_day_2");
            let f = std::fs::File::options()
                .write(true)
                .open(&credentials)
                .unwrap();
            f.set_modified(old).unwrap();
            drop(f);
            // Unchanged to the file watch (same size, inode and time): only the signal tells.
            std::thread::sleep(Duration::from_millis(2500));
            assert_eq!(feed_status(port)["state"], "credentials_rejected");
            let pid = gw.0.id().to_string();
            assert!(Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success());
        }
        Tell::FileWatch => {
            let next = dir.path().join("credentials.new");
            write_credentials(&next, "token_day_2");
            std::fs::rename(&next, &credentials).unwrap();
        }
        Tell::ConfigFile => {
            let next = dir.path().join("tickwire.toml.new");
            write_config(&next, bport, "token_day_2");
            std::fs::rename(&next, &config).unwrap();
        }
    }
    // Data resumes on the same client connections, in the modes they held.
    let d = wait_data(&mut a, "NSE", "SBIN", 20);
    assert_eq!(d["mode"], 2, "{d}");
    wait_data(&mut b, "NSE", "INFY", 10);
    let f = wait_feed_state(port, "open", 10);
    assert!(f["last_error"].is_null(), "{f}");
    assert_eq!(adapter_status(&mut a), "connected");
    let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(log.contains("reconnecting"), "{log}");
    assert!(!log.contains("token_day"), "a token in the log: {log}");
    println!("{log}");
}

#[test]
fn a_token_rotated_while_clients_stream_is_taken_on_sighup() {
    rotation(Tell::Sighup);
}

#[test]
fn a_token_rotated_while_clients_stream_is_taken_from_the_rewritten_file() {
    rotation(Tell::FileWatch);
}

#[test]
fn a_token_rotated_in_the_config_file_is_taken_too() {
    rotation(Tell::ConfigFile);
}

/// A reload whose file is broken changes nothing: the feed keeps streaming with what it has.
#[test]
fn a_broken_credentials_file_is_refused_and_the_feed_keeps_streaming() {
    let bport = free_port();
    let _m = mock_accepting(bport, "token_day_1");
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    write_credentials(&credentials, "token_day_1");
    let port = free_port();
    let _gw = serve_with_credentials(bport, port, dir.path(), &credentials);
    let mut ws = streaming_client(port, "SBIN");
    let connects = feed_status(port)["connects"].clone();
    std::fs::write(&credentials, "TICKWIRE_KITE_TOKEN=typo\n").unwrap();
    wait_until(10, "the reload error in the log", || {
        let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
        log.contains("unknown name").then_some(())
    });
    wait_data(&mut ws, "NSE", "SBIN", 5);
    let f = feed_status(port);
    assert_eq!(
        (f["state"].clone(), f["connects"].clone()),
        (json!("open"), connects)
    );
}

fn sigterm_case(extra: &[&str]) {
    let bport = free_port();
    let _m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let mut gw = start_serve(
        &url,
        &format!("http://127.0.0.1:{bport}/instruments"),
        extra,
    );
    let _ws = streaming_client(gw.port, "SBIN");
    let pid = gw._proc.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = gw._proc.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "serve did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit: {status:?}");
    let opts = tickwire_shm::OpenOptions {
        require_live: false,
        ..Default::default()
    };
    let r = Reader::open_with(&gw.shm, opts).unwrap();
    assert_eq!(
        r.writer_status(),
        tickwire_shm::WriterStatus::Closed,
        "shm header marked closed"
    );
}

#[test]
fn sigterm_stops_serve_cleanly_with_the_inline_router() {
    sigterm_case(&[]);
}

#[test]
fn sigterm_stops_serve_cleanly_with_the_router_on_its_own_thread() {
    sigterm_case(&["--router", "thread"]);
}
