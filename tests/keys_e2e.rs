//! API keys end to end, with the real binary on loopback: `tickwire keys add|list|revoke`, the
//! gateway accepting keys-file keys (and `--api-key` ones), live reload on change and on SIGHUP
//! closing revoked sessions while others stream, the per-address failure limit, the
//! per-connection attempt limit, and a wrong pepper or a bad file failing clearly.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

use common::*;

/// `tickwire keys ARGS --keys-file FILE` with `pepper` in the environment (None: unset).
fn keys(file: &Path, pepper: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    c.arg("keys").args(args).arg("--keys-file").arg(file);
    c.env_remove("TICKWIRE_API_KEY_PEPPER")
        .env_remove("TICKWIRE_KEYS_FILE");
    if let Some(p) = pepper {
        c.env("TICKWIRE_API_KEY_PEPPER", p);
    }
    c.output().expect("run tickwire keys")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `keys add NAME`: the printed key.
fn add(file: &Path, pepper: &str, name: &str) -> String {
    let out = keys(file, Some(pepper), &["add", name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_string();
    assert!(key.starts_with("tw_") && !key.contains('\n'), "{key:?}");
    key
}

/// A mock broker and `serve` with the test key `k1` and the keys file, plus `extra`.
struct Gw {
    _mock: Proc,
    served: Served,
}

fn serve(file: &Path, pepper: &str, extra: &[&str]) -> Gw {
    let bport = free_port();
    let m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let mut args = vec![
        "--keys-file",
        file.to_str().unwrap(),
        "--api-key-pepper",
        pepper,
    ];
    args.extend_from_slice(extra);
    let served = start_serve(
        &url,
        &format!("http://127.0.0.1:{bport}/instruments"),
        &args,
    );
    drop(connect(served.port)); // listening
    Gw { _mock: m, served }
}

fn auth(ws: &mut Ws, key: &str) -> Value {
    send(ws, json!({"action": "authenticate", "api_key": key}));
    reply(ws)
}

/// Subscribes to NSE:TCS and waits for its data.
fn streaming(ws: &mut Ws) {
    send(
        ws,
        json!({"action": "subscribe", "symbol": "TCS", "exchange": "NSE", "mode": 1}),
    );
    assert_eq!(reply(ws)["status"], "success");
    wait_data(ws, "NSE", "TCS", 10);
}

/// `key` with its last character changed: the right id, a wrong secret (an Argon2 run that fails).
fn tamper(key: &str) -> String {
    let last = if key.ends_with('A') { 'B' } else { 'A' };
    format!("{}{last}", &key[..key.len() - 1])
}

/// The status line of `GET /status` with `key`.
fn status_code(port: u16, key: &str) -> String {
    status_line(port, "/status", key)
}

/// The status line of `GET path` with `key`.
fn status_line(port: u16, path: &str, key: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines().next().unwrap_or_default().to_string()
}

fn keys_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("keys.toml");
    (dir, f)
}

#[test]
fn keys_add_list_revoke_and_a_revoked_client_is_closed_while_others_stream() {
    let (_dir, file) = keys_file();
    let k1 = add(&file, "pep", "desk-1");
    let k2 = add(&file, "pep", "desk-2");
    assert_ne!(k1, k2);
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(!stored.contains(&k1) && !stored.contains(&k2), "{stored}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "keys file mode");

    let list = |want_used: bool| {
        let out = keys(&file, None, &["list"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains("tw_") && !all.contains("argon2"), "{all}");
        let line = all
            .lines()
            .find(|l| l.starts_with("desk-1 "))
            .map(str::to_string);
        assert!(!want_used || line.is_some(), "{all}");
        (all.clone(), line)
    };
    let (all, _) = list(false);
    assert!(
        all.contains("desk-1") && all.contains("desk-2") && all.contains("never"),
        "{all}"
    );

    let gw = serve(&file, "pep", &[]);
    let port = gw.served.port;
    // Requests sent right behind `authenticate` wait for its verdict: replies stay in order.
    let mut a = connect(port);
    send(&mut a, json!({"action": "authenticate", "api_key": k1}));
    send(&mut a, json!({"action": "ping"}));
    let first = reply(&mut a);
    assert_eq!(first["type"], "auth", "{first}");
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(reply(&mut a)["type"], "pong");
    streaming(&mut a);
    let mut b = connect(port);
    assert_eq!(auth(&mut b, &k2)["status"], "success");
    streaming(&mut b);
    // The plain `--api-key` keeps working beside the file.
    let mut c = connect(port);
    assert_eq!(auth(&mut c, "k1")["status"], "success");
    // A reconnect with the same key (served from the cache) and a wrong one.
    let mut again = connect(port);
    assert_eq!(auth(&mut again, &k1)["status"], "success");
    drop(again);
    let mut wrong = connect(port);
    let r = auth(&mut wrong, &tamper(&k1));
    assert_eq!(r["code"], "AUTHENTICATION_ERROR", "{r}");
    drop(wrong);
    // `GET /status` takes a keys-file key too (verified off the IO thread), and refuses a wrong one.
    assert!(status_code(port, &k2).contains("200 OK"));
    assert!(status_code(port, &tamper(&k2)).contains("401"));
    // So do the other data endpoints: the verdict answers the endpoint that asked.
    for path in ["/subscriptions", "/ticks/latest?symbols=NSE:SBIN"] {
        assert!(status_line(port, path, &k2).contains("200 OK"), "{path}");
        assert!(
            status_line(port, path, &tamper(&k2)).contains("401"),
            "{path}"
        );
    }
    // The gateway records use (written from its keys thread).
    wait_until(10, "desk-1 last used", || {
        list(true).1.filter(|l| !l.contains("never"))
    });

    let out = keys(&file, None, &["revoke", "desk-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (all, line) = list(false);
    assert!(line.is_none() && all.contains("desk-2"), "{all}");

    let (close, msgs) = until_close(&mut a, 10);
    let notice = msgs
        .iter()
        .find(|m| m["status"] == "error")
        .unwrap_or_else(|| panic!("no notice before the close: {msgs:?}"));
    assert_eq!(notice["code"], "API_KEY_REVOKED", "{notice}");
    assert!(
        notice["message"].as_str().unwrap().contains("desk-1"),
        "{notice}"
    );
    assert_eq!(close, Some((4403, "API key revoked".into())));
    // The other key's client still streams, and the plain key's client is still there.
    wait_data(&mut b, "NSE", "TCS", 5);
    send(&mut c, json!({"action": "ping"}));
    assert_eq!(reply(&mut c)["type"], "pong");
    let mut late = connect(port);
    assert_eq!(auth(&mut late, &k1)["code"], "AUTHENTICATION_ERROR");
}

#[test]
fn sighup_reloads_the_keys_file() {
    let (_dir, file) = keys_file();
    let k1 = add(&file, "pep", "desk-1");
    let gw = serve(&file, "pep", &[]);
    let port = gw.served.port;
    let mut a = connect(port);
    assert_eq!(auth(&mut a, &k1)["status"], "success");
    // Renamed in place, same length, same modification time: only SIGHUP can tell the gateway.
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let renamed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("name = \"desk-1\"", "name = \"desk-9\"");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.write_all(renamed.as_bytes()).unwrap();
        f.set_modified(before).unwrap();
    }
    std::thread::sleep(Duration::from_millis(2500));
    send(&mut a, json!({"action": "ping"}));
    assert_eq!(reply(&mut a)["type"], "pong", "no reload without SIGHUP");
    let pid = gw.served._proc.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let (close, msgs) = until_close(&mut a, 10);
    assert!(
        msgs.iter().any(|m| m["code"] == "API_KEY_REVOKED"),
        "{msgs:?}"
    );
    assert_eq!(close, Some((4403, "API key revoked".into())));
    // The same key is valid under its new name.
    let mut b = connect(port);
    assert_eq!(auth(&mut b, &k1)["status"], "success");
}

#[test]
fn failed_authentications_are_limited_per_address() {
    let (_dir, file) = keys_file();
    let k1 = add(&file, "pep", "desk-1");
    let gw = serve(
        &file,
        "pep",
        &[
            "--auth-failures-per-minute",
            "4",
            "--max-auth-attempts",
            "0",
        ],
    );
    let port = gw.served.port;
    let mut ws = connect(port);
    let bad = tamper(&k1);
    for _ in 0..4 {
        let r = auth(&mut ws, &bad);
        assert_eq!(r["message"], "Invalid API key", "{r}");
    }
    send(&mut ws, json!({"action": "authenticate", "api_key": bad}));
    let (close, msgs) = until_close(&mut ws, 10);
    let m = msgs[0]["message"].as_str().unwrap();
    assert_eq!(msgs[0]["code"], "AUTHENTICATION_ERROR");
    assert!(
        m.contains("Too many failed authentications from 127.0.0.1"),
        "{m}"
    );
    assert_eq!(
        close,
        Some((4429, "too many failed authentications".into()))
    );
    // The address is refused whatever the key, without verifying it.
    for key in [k1.as_str(), "k1"] {
        let mut again = connect(port);
        send(
            &mut again,
            json!({"action": "authenticate", "api_key": key}),
        );
        let (close, msgs) = until_close(&mut again, 10);
        assert!(
            msgs[0]["message"].as_str().unwrap().contains("Too many"),
            "{msgs:?}"
        );
        assert_eq!(close.map(|c| c.0), Some(4429));
    }
}

#[test]
fn a_connection_is_closed_after_its_last_failed_attempt() {
    let (_dir, file) = keys_file();
    let k1 = add(&file, "pep", "desk-1");
    let gw = serve(&file, "pep", &[]);
    let port = gw.served.port;
    let mut ws = connect(port);
    assert_eq!(auth(&mut ws, "nope")["message"], "Invalid API key");
    assert_eq!(auth(&mut ws, "")["message"], "API key is required");
    send(
        &mut ws,
        json!({"action": "authenticate", "api_key": tamper(&k1)}),
    );
    let (close, msgs) = until_close(&mut ws, 10);
    let m = msgs[0]["message"].as_str().unwrap();
    assert!(m.starts_with("Invalid API key; 3 failed attempts"), "{m}");
    assert_eq!(
        close,
        Some((4401, "too many failed authentication attempts".into()))
    );
    // Another connection from the same address still may (3 failures < 20 a minute).
    let mut ok = connect(port);
    assert_eq!(auth(&mut ok, &k1)["status"], "success");
}

/// `serve` that is expected to exit at start: its stderr.
fn serve_fails(file: &Path, pepper: Option<&str>) -> String {
    let port = free_port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("ticks");
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    c.args(["serve", "--port", &port, "--shm", shm.to_str().unwrap()])
        .arg("--keys-file")
        .arg(file)
        .args(["--kite-api-key", "a", "--kite-access-token", "b"])
        .args(["--instruments", "/nonexistent"])
        .env_remove("TICKWIRE_API_KEY_PEPPER");
    if let Some(p) = pepper {
        c.args(["--api-key-pepper", p]);
    }
    let out = c.output().unwrap();
    assert!(!out.status.success());
    text(&out.stderr)
}

#[test]
fn a_wrong_pepper_fails_clearly() {
    let (_dir, file) = keys_file();
    add(&file, "pep", "desk-1");
    for pepper in [None, Some("other")] {
        let err = serve_fails(&file, pepper);
        assert!(err.contains(file.to_str().unwrap()), "{err}");
        assert!(err.contains("different pepper"), "{err}");
    }
    // `keys add` refuses to mix peppers in one file.
    for pepper in [None, Some("other")] {
        let out = keys(&file, pepper, &["add", "desk-2"]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("different pepper"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = keys(&file, None, &["list"]);
    assert!(!text(&out.stdout).contains("desk-2"));
}

#[test]
fn a_bad_keys_file_names_the_file() {
    let (_dir, file) = keys_file();
    std::fs::write(&file, "format = 1\n[[key]]\nname = 3\n").unwrap();
    let err = serve_fails(&file, Some("pep"));
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    assert!(err.contains("line"), "{err}");
    let out = keys(&file, Some("pep"), &["list"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(file.to_str().unwrap()));
    let missing = file.with_file_name("missing.toml");
    let err = serve_fails(&missing, Some("pep"));
    assert!(err.contains("missing.toml"), "{err}");
    // Neither a keys file nor a plain key: nobody could authenticate.
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--kite-api-key", "a", "--kite-access-token", "b"])
        .env_remove("TICKWIRE_API_KEYS")
        .env_remove("TICKWIRE_KEYS_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no API keys"),
        "{}",
        text(&out.stderr)
    );
}
