//! The dashboard (`GET /`) in a real headless Chromium against `tickwire demo`: the page loads
//! without a key, refuses a wrong key with a visible 401, authenticates with the right one, the
//! symbol table fills and prices change over the gateway's own WebSocket, a stopped mock broker
//! (`/outage?secs=8` on the demo's broker port) shows as not connected and then connected again
//! with prices moving. Screenshots go to `target/dashboard-e2e/`.
//!
//! The browser is Debian's `chromium` driven by its `chromedriver` over the W3C WebDriver HTTP
//! protocol, spoken directly with `ureq` (already a dependency of tickwire-io): a handful of
//! commands, no browser-automation crate. `.ci/run` installs both packages. Without them the test
//! fails saying so, or, with `TICKWIRE_ALLOW_NO_BROWSER=1`, skips saying so on stderr: it never
//! passes silently.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

const MISSING: &str =
    "dashboard_e2e: SKIPPED: chromium/chromedriver not installed (apt install chromium chromium-driver)";

/// A line on the real stderr: libtest captures `eprintln!` of a passing test, and a skip or a
/// screenshot's path must show in every run.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The first of `names` found on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// A chromedriver child on a free loopback port, and one browser session in it.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Browser {
    fn start(chromedriver: &Path, chromium: &Path) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // WebDriver errors are JSON bodies with 4xx/5xx: read them, do not throw them away.
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = b
                .agent
                .get(format!("{}/status", b.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < until, "chromedriver not ready after 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                // Root in a container: no sandbox; no GPU; /dev/shm may be small.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,1700"],
            },
        }}});
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    /// One WebDriver command; its `value`, or a panic with the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.base, path);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or(json!({})).to_string().as_bytes()),
        };
        let mut resp = sent.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            status == 200,
            "webdriver {method} {path}: HTTP {status}: {text}"
        );
        v["value"].clone()
    }

    fn cmd(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{what}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// Clears an input and types `text` into it, as a person would.
    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/clear"), None);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), None);
    }

    /// Runs `script` (a function body; `arguments[0]` is `arg`) in the page.
    fn js(&self, script: &str, arg: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": [arg]})),
        )
    }

    /// The text of the first element matching `css`, or null.
    fn text(&self, css: &str) -> Value {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!(css),
        )
    }

    fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot is base64"))
            .expect("screenshot decodes");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        let path = path.canonicalize().unwrap();
        say(&format!("dashboard_e2e: screenshot {}", path.display()));
    }

    /// Polls `f` until it returns Some, or fails after `limit` with what the page showed.
    fn wait<T>(&self, what: &str, limit: Duration, mut f: impl FnMut(&Browser) -> Option<T>) -> T {
        let until = Instant::now() + limit;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > until {
                let page = self.js("return document.body.innerText;", Value::Null);
                panic!(
                    "dashboard_e2e: timed out after {limit:?} waiting for {what}; the page \
                     showed:\n{}",
                    page.as_str().unwrap_or("?")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/dashboard-e2e/NAME` (or under `CARGO_TARGET_DIR`).
fn shot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("dashboard-e2e").join(name)
}

/// The whole response to `GET path` (head and body), no key sent.
fn raw_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A row's last price as shown, when it is a number.
fn ltp(b: &Browser, sym: &str) -> Option<f64> {
    let css = format!("#symbols tbody tr[data-symbol=\"{sym}\"] td.ltp");
    b.text(&css).as_str().and_then(|t| t.parse().ok())
}

/// The market-data messages the page counted for a row.
fn updates(b: &Browser, sym: &str) -> u64 {
    let css = format!("#symbols tbody tr[data-symbol=\"{sym}\"]");
    b.js(
        "const e = document.querySelector(arguments[0]); return e ? Number(e.dataset.updates || 0) : 0;",
        json!(css),
    )
    .as_u64()
    .unwrap_or(0)
}

/// The badge of the (only) feed: connected, degraded or disconnected.
fn badge(b: &Browser) -> String {
    b.text("#feeds .feed .badge")
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Waits until each of `syms` shows a price different from the one it showed first.
fn prices_move(b: &Browser, syms: &[&str], what: &str) {
    for sym in syms {
        let first = b.wait(&format!("a price for {sym} ({what})"), secs(30), |b| {
            ltp(b, sym)
        });
        let n = updates(b, sym);
        b.wait(
            &format!("{sym}'s price to change ({what})"),
            secs(30),
            |b| (ltp(b, sym).is_some_and(|p| p != first) && updates(b, sym) > n).then_some(()),
        );
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn dashboard_in_headless_chromium() {
    let driver = on_path(&["chromedriver"]);
    let chromium = on_path(&["chromium", "chromium-browser"]);
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        if std::env::var("TICKWIRE_ALLOW_NO_BROWSER").as_deref() == Ok("1") {
            say(MISSING);
            return;
        }
        panic!(
            "dashboard_e2e: FAILED: chromium/chromedriver not installed (apt install chromium \
             chromium-driver; .ci/run does); TICKWIRE_ALLOW_NO_BROWSER=1 skips instead"
        );
    };

    let demo = start_demo(&[]);
    // The page itself needs no key and is HTML.
    let head = raw_get(demo.port, "/");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:.200}");
    assert!(
        head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{head:.300}"
    );
    assert!(head.contains("<canvas id=\"latency\""));

    let b = Browser::start(&driver, &chromium);
    b.goto(&format!("http://127.0.0.1:{}/", demo.port));
    assert_eq!(b.js("return document.title;", Value::Null), "tickwire");

    // The page's own arithmetic, before any key (so no /status poll interleaves). Latency: two
    // cumulative histograms a poll apart give that interval's percentiles from the bucket deltas.
    let note = b.js(
        "const h = (c) => ({count: c[3], sum_ns: 0, max_ns: 500000, p50_ns: 0, p90_ns: 0, \
           p99_ns: 0, p999_ns: 0, buckets: [[1000, c[0]], [10000, c[1]], [100000, c[2]], [1000000, c[3]]]});
         const lat = (c) => ({wire_to_shm: h(c), wire_to_client: h(c), router_pass: h(c)});
         addLatency(lat([5, 5, 5, 5]));
         addLatency(lat([15, 65, 104, 105]));
         return document.querySelector('#latency-note').textContent;",
        Value::Null,
    );
    let note = note.as_str().unwrap_or("");
    assert!(
        note.contains("wire → shm p50 10 µs, p99 100 µs"),
        "per-interval percentiles from bucket deltas: {note}"
    );
    // A stale symbol (the gateway's `health` word) is marked, and makes its feed degraded.
    let stale = b.js(
        "const sym = {exchange: 'NSE', symbol: 'SBIN', broker: 'zerodha', connection: 0,
           upstream: 'live', health: 'stale', age_ms: 12000};
         const s = {feeds: [{broker: 'zerodha', state: 'open', connections: [{state: 'open'}]}],
           symbols: {subscribed: [sym]}};
         renderFeeds(s);
         syncSymbols([sym], connStates(s.feeds));
         renderRows();
         const tr = document.querySelector('#symbols tbody tr[data-symbol=\"NSE:SBIN\"]');
         return [tr.className, tr.querySelector('td.state').textContent,
           tr.querySelector('td.age').textContent,
           document.querySelector('#feeds .feed .badge').textContent];",
        Value::Null,
    );
    assert_eq!(stale, json!(["stale", "stale", "12.0 s", "degraded"]));
    b.goto(&format!("http://127.0.0.1:{}/", demo.port));
    assert_eq!(b.text("#latency-note"), "no latency data");
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#symbols tbody tr').length;",
            Value::Null
        ),
        0
    );

    // A wrong key: a clear 401 on the page.
    b.type_into("#key", "not-the-key");
    b.click("#connect");
    let err = b.wait("the wrong-key message", secs(20), |b| {
        b.text("#error")
            .as_str()
            .filter(|t| t.contains("refused this API key"))
            .map(str::to_string)
    });
    println!("dashboard_e2e: a wrong key shows {err:?}");

    // The right key: feeds, markets and the table fill.
    b.type_into("#key", "k1");
    b.click("#connect");
    b.wait("the feed to show connected", secs(60), |b| {
        (badge(b) == "connected").then_some(())
    });
    assert_eq!(b.text("#error"), "", "no error once connected");
    assert_eq!(
        b.text("#markets [data-exchange=\"NSE\"] .session"),
        "open",
        "the demo's market is always open"
    );
    for sym in ["NSE:SBIN", "NSE:INFY"] {
        b.type_into("#symbol", sym);
        b.click("#add");
    }
    let rows = b.wait("the table to fill", secs(30), |b| {
        let n = b
            .js(
                "return document.querySelectorAll('#symbols tbody tr').length;",
                Value::Null,
            )
            .as_u64()?;
        (n >= 2).then_some(n)
    });
    prices_move(&b, &["NSE:SBIN", "NSE:INFY"], "at start");
    assert_eq!(
        b.text("#symbols tbody tr[data-symbol=\"NSE:SBIN\"] td.state"),
        "live"
    );
    let key: Value = b.js(
        "return sessionStorage.getItem('tickwire.key');",
        Value::Null,
    );
    assert_eq!(key, "k1", "the key is kept for the tab");
    let latency = b.text("#latency-note");
    println!("dashboard_e2e: {rows} rows; latency: {latency}");
    assert!(
        latency.as_str().is_some_and(|t| !t.is_empty()),
        "the latency plot says something, data or \"no latency data\""
    );
    b.screenshot(&shot_path("dashboard.png"));

    // Stop the broker for 8 s: the page shows the feed as not connected, then connected again.
    let out: Value = serde_json::from_str(&http_get(demo.bport, "/outage?secs=8")).unwrap();
    assert!(out["dropped"].as_u64() >= Some(1), "{out}");
    let down = b.wait("the feed to show not connected", secs(12), |b| {
        let t = badge(b);
        (t != "connected" && !t.is_empty()).then_some(t)
    });
    println!("dashboard_e2e: during the outage the feed showed {down:?}");
    assert!(down == "disconnected" || down == "degraded", "{down}");
    let sbin_state = "#symbols tbody tr[data-symbol=\"NSE:SBIN\"] td.state";
    let gone = b.wait("NSE:SBIN to show its connection down", secs(12), |b| {
        b.text(sbin_state)
            .as_str()
            .filter(|t| *t != "live")
            .map(str::to_string)
    });
    println!("dashboard_e2e: during the outage NSE:SBIN showed {gone:?}");
    b.screenshot(&shot_path("dashboard-outage.png"));
    b.wait("the feed to show connected again", secs(60), |b| {
        (badge(b) == "connected").then_some(())
    });
    prices_move(&b, &["NSE:SBIN", "NSE:INFY"], "after the outage");
    b.wait("NSE:SBIN to show live again", secs(10), |b| {
        (b.text(sbin_state) == "live").then_some(())
    });
    b.screenshot(&shot_path("dashboard-recovered.png"));
}
