//! `serve --config FILE` and `config check FILE` through the real binary: the example file
//! checks, bad files are refused naming file, line and key, environment variables and flags win
//! over the file, and a gateway configured by a file alone serves the mock broker's ticks.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;

use common::*;

const SECRETS: [&str; 5] = [
    "TICKWIRE_API_KEYS",
    "TICKWIRE_KITE_API_KEY",
    "TICKWIRE_KITE_ACCESS_TOKEN",
    "TICKWIRE_KEYS_FILE",
    "RUST_LOG",
];

/// The binary with none of the variables these tests set inherited from the caller.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    for v in SECRETS {
        c.env_remove(v);
    }
    c
}

fn run(c: &mut Command) -> (Output, String) {
    let out = c.stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

/// A client of the gateway on `port` subscribes to `NSE:symbol` in `mode` and gets its data.
fn streams(port: u16, symbol: &str, mode: u8) {
    let mut ws = authed(port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": symbol, "exchange": "NSE", "mode": mode}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    wait_data(&mut ws, "NSE", symbol, 15);
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tickwire.example.toml")
}

#[test]
fn the_example_file_checks_with_its_credentials_from_the_environment() {
    let (out, err) = run(bin()
        .args(["config", "check"])
        .arg(example())
        .env("TICKWIRE_API_KEYS", "k1")
        .env("TICKWIRE_KITE_API_KEY", "k")
        .env("TICKWIRE_KITE_ACCESS_TOKEN", "t"));
    assert!(out.status.success(), "{err}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("config OK") && said.contains("kite"),
        "{said}"
    );
    // Without them the check says which variable is missing.
    let (out, err) = run(bin()
        .args(["config", "check"])
        .arg(example())
        .env("TICKWIRE_API_KEYS", "k1")
        .env("TICKWIRE_KITE_API_KEY", "k"));
    assert!(!out.status.success());
    assert!(
        err.contains("key feed[0].access_token") && err.contains("TICKWIRE_KITE_ACCESS_TOKEN"),
        "{err}"
    );
}

/// Each bad file, through `config check` and `serve --config`: one message naming the file, the
/// line and the key, and a non-zero exit before anything starts.
#[test]
fn bad_files_are_refused_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "missing.toml",
            "[gateway]\nport = 8765\n\n[[feed]]\nexchanges = [\"NSE\"]\n",
            "line 4, key feed[0].broker: missing field `broker`",
        ),
        (
            "type.toml",
            "[limits]\nmax_subscriptions = \"lots\"\n",
            "line 2, key limits.max_subscriptions: invalid type: string \"lots\"",
        ),
        (
            "unknown.toml",
            "[gateway]\nport = 8765\nmax_pendng = 3\n",
            "line 3, key gateway.max_pendng: unknown field `max_pendng`",
        ),
        (
            "broker.toml",
            "[[feed]]\nbroker = \"sharekhan\"\n",
            "line 2, key feed[0].broker: unknown broker \"sharekhan\"",
        ),
        (
            "idle.toml",
            "[engine]\nidle = \"nap\"\n",
            "line 2, key engine.idle: idle strategy \"nap\"",
        ),
        (
            "twice.toml",
            "[[feed]]\nbroker = \"kite\"\n\n[[feed]]\nbroker = \"kite\"\n",
            "line 5, key feed[1].broker: a second kite feed",
        ),
    ];
    for (name, text, want) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        let check = run(bin().args(["config", "check"]).arg(&f));
        let serve = run(bin().args(["serve", "--config"]).arg(&f));
        for (out, err) in [check, serve] {
            assert!(!out.status.success(), "{name}: {err}");
            let line = format!("config file {}, {want}", f.display());
            assert!(err.contains(&line), "{name}: want {line:?}, got {err}");
            assert_eq!(err.lines().count(), 1, "one message: {err}");
        }
    }
}

/// A gateway whose every setting comes from the file (port, shm, keys, the feed's URL, master
/// and credentials, JSON logs) serves the mock broker's ticks.
#[test]
fn serve_with_a_config_file_alone_serves_ticks() {
    let bport = free_port();
    let _m = mock(bport);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tickwire.toml");
    std::fs::write(
        &f,
        format!(
            r#"[gateway]
listen = "127.0.0.1"
port = {port}

[shm]
path = "ticks"

[log]
format = "json"

# The mock market trades at any hour.
[market]
dev = true

[keys]
api_keys = ["k1"]

[[feed]]
broker = "kite"
exchanges = ["NSE", "NSE_INDEX"]
url = "ws://127.0.0.1:{bport}"
instruments = "http://127.0.0.1:{bport}/instruments"
api_key = "mock_api_key"
access_token = "mock_access_token"
"#
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr");
    let child = bin()
        .args(["serve", "--config"])
        .arg(&f)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _gw = Proc(child);
    streams(port, "SBIN", 2);
    // The shm path is relative to the file's directory; the logs are JSON from the first line.
    assert!(dir.path().join("ticks").exists());
    let stderr = std::fs::read_to_string(&log).unwrap();
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "not JSON: {stderr}"
    );
}

/// The file's token is stale and its port taken by nothing: the environment's token and the
/// command line's port win.
#[test]
fn the_environment_and_flags_win_over_the_file() {
    let bport = free_port();
    let _m = mock(bport);
    let (file_port, port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tickwire.toml");
    std::fs::write(
        &f,
        format!(
            r#"[gateway]
port = {file_port}

[shm]
path = "ticks"

[keys]
api_keys = ["not-this-one"]

[[feed]]
broker = "kite"
url = "ws://127.0.0.1:{bport}"
instruments = "http://127.0.0.1:{bport}/instruments"
api_key = "mock_api_key"
access_token = "yesterdays_token"
"#
        ),
    )
    .unwrap();
    let child = bin()
        .args(["serve", "--config"])
        .arg(&f)
        .args(["--port", &port.to_string(), "--dev"])
        .env("TICKWIRE_KITE_ACCESS_TOKEN", "mock_access_token")
        .env("TICKWIRE_API_KEYS", "k1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _gw = Proc(child);
    streams(port, "RELIANCE", 1);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err(),
        "the file's port is not used when --port is given"
    );
}

/// The example file, as it is in the repository, runs the gateway: its secrets come from the
/// environment (as its comments say), and flags only point the Kite feed at the mock and pick a
/// free port, a private shm file and `--dev` (the mock trades at any hour).
#[test]
fn serve_takes_the_example_file_as_is() {
    let bport = free_port();
    let _m = mock(bport);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = bin()
        .args(["serve", "--config"])
        .arg(example())
        .args(["--port", &port.to_string(), "--dev", "--shm"])
        .arg(dir.path().join("ticks"))
        .args(["--kite-url", &format!("ws://127.0.0.1:{bport}")])
        .args([
            "--kite-instruments",
            &format!("http://127.0.0.1:{bport}/instruments"),
        ])
        .env("TICKWIRE_API_KEYS", "k1")
        .env("TICKWIRE_KITE_API_KEY", "mock_api_key")
        .env("TICKWIRE_KITE_ACCESS_TOKEN", "mock_access_token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _gw = Proc(child);
    streams(port, "INFY", 1);
}
