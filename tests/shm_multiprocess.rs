//! The real binary in several processes: `tickwire shm write-synthetic` writes, two
//! `tickwire shm tail` processes read the same file at once. Every reader must see a gap-free run of
//! ring positions, or a `lagged` line whose count is exactly the gap, and every tick must carry the
//! values the writer computed for its position, bit for bit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tickwire::synthetic;
use tickwire_engine::price;
use tickwire_engine::Tick;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tickwire"))
}

fn writer(path: &Path, symbols: u32, rate: u64, seconds: f64, ring: u64) -> Child {
    bin()
        .args(["shm", "write-synthetic", "--path"])
        .arg(path)
        .args([
            "--symbols",
            &symbols.to_string(),
            "--rate",
            &rate.to_string(),
        ])
        .args([
            "--seconds",
            &seconds.to_string(),
            "--ring-capacity",
            &ring.to_string(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start writer")
}

fn tail(path: &Path, count: u64) -> Child {
    bin()
        .args([
            "shm",
            "tail",
            "--wait",
            "20",
            "--count",
            &count.to_string(),
            "--path",
        ])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reader")
}

fn px(v: &Value) -> i64 {
    // Prices are printed as exact decimals; parse them back exactly (no float).
    let s = v.to_string();
    price::parse(&s).unwrap_or_else(|| panic!("price {s} is not an exact decimal"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("unsigned integer")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("float")
}

/// Rebuilds the tick a JSON line describes.
fn tick_of(j: &Value) -> Tick {
    let mut t = Tick::new(u(&j["id"]) as u32);
    t.seq = u(&j["seq"]);
    t.valid = u(&j["valid"]) as u32;
    t.exchange_ts_ns = j["exchange_ts_ns"].as_i64().unwrap();
    t.ltp = px(&j["ltp"]);
    t.last_qty = u(&j["last_qty"]);
    t.avg_price = px(&j["avg_price"]);
    t.volume = u(&j["volume"]);
    t.total_buy_qty = u(&j["total_buy_qty"]);
    t.total_sell_qty = u(&j["total_sell_qty"]);
    t.open = px(&j["open"]);
    t.high = px(&j["high"]);
    t.low = px(&j["low"]);
    t.close = px(&j["close"]);
    t.oi = u(&j["oi"]);
    t.oi_day_high = u(&j["oi_day_high"]);
    t.oi_day_low = u(&j["oi_day_low"]);
    t.iv = f(&j["iv"]);
    t.delta = f(&j["delta"]);
    t.gamma = f(&j["gamma"]);
    t.theta = f(&j["theta"]);
    t.vega = f(&j["vega"]);
    t.rho = f(&j["rho"]);
    for (side, levels) in [("bids", &mut t.bids), ("asks", &mut t.asks)] {
        for (i, l) in j[side].as_array().unwrap().iter().enumerate() {
            levels[i].price = px(&l["price"]);
            levels[i].qty = u(&l["quantity"]) as u32;
            levels[i].orders = u(&l["orders"]) as u32;
        }
    }
    t
}

struct Seen {
    ticks: u64,
    lost: u64,
    laps: u64,
}

/// Checks one reader's output; returns what it saw.
fn verify(out: &Output, symbols: u32, count: u64) -> Seen {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reader failed: {stderr}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let mut seen = Seen {
        ticks: 0,
        lost: 0,
        laps: 0,
    };
    let mut expect: Option<u64> = None;
    for line in text.lines() {
        let j: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        if let Some(lost) = j.get("lagged") {
            let lost = u(lost);
            let resume = u(&j["resume"]);
            if let Some(e) = expect {
                assert_eq!(
                    resume,
                    e + lost,
                    "lagged count must equal the positions skipped"
                );
            }
            expect = Some(resume);
            seen.lost += lost;
            seen.laps += 1;
            continue;
        }
        let pos = u(&j["pos"]);
        if let Some(e) = expect {
            assert_eq!(pos, e, "gap in ring positions without a lagged report");
        }
        expect = Some(pos + 1);
        let mut want = synthetic::tick(pos, symbols);
        want.recv_ts_ns = 0;
        let got = tick_of(&j);
        assert_eq!(
            got, want,
            "values at position {pos} must round-trip bit-exactly"
        );
        assert_eq!(
            j["symbol"],
            synthetic::symbol_name(want.symbol_id),
            "directory name"
        );
        seen.ticks += 1;
    }
    assert_eq!(seen.ticks, count, "reader printed --count ticks");
    seen
}

fn run(
    dir: &Path,
    symbols: u32,
    rate: u64,
    seconds: f64,
    ring: u64,
    count: u64,
) -> (Vec<Seen>, PathBuf) {
    let path = dir.join("ticks");
    let readers = [tail(&path, count), tail(&path, count)];
    std::thread::sleep(Duration::from_millis(100));
    let mut w = writer(&path, symbols, rate, seconds, ring);
    let seen = readers.map(|r| verify(&r.wait_with_output().unwrap(), symbols, count));
    let ws = w.wait().unwrap();
    assert!(ws.success(), "writer failed");
    (seen.into_iter().collect(), path)
}

#[test]
fn two_reader_processes_see_every_tick_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    // 20 k ticks/s with a 64 Ki-slot ring: readers that print JSON keep up, so no laps are expected,
    // but a lap would still be accepted if correctly reported.
    let (seen, _) = run(dir.path(), 50, 20_000, 3.0, 1 << 16, 20_000);
    for s in &seen {
        assert_eq!(s.ticks, 20_000);
    }
}

#[test]
fn lapped_reader_processes_report_exact_losses() {
    let dir = tempfile::tempdir().unwrap();
    // Full speed into a 16-slot ring: JSON-printing readers are lapped again and again.
    let (seen, _) = run(dir.path(), 7, 0, 3.0, 16, 2_000);
    let laps: u64 = seen.iter().map(|s| s.laps).sum();
    assert!(
        laps > 0,
        "a 16-slot ring at full speed must lap a JSON-printing reader"
    );
}

#[test]
fn a_killed_writer_is_reported_by_every_tool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let mut w = writer(&path, 3, 1000, 60.0, 1024);
    // wait for the file
    for _ in 0..200 {
        if path.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    w.kill().unwrap();
    w.wait().unwrap();
    for sub in ["tail", "stat"] {
        let out = bin()
            .args(["shm", sub, "--path"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sub} must fail on a dead writer");
        assert!(err.contains("is gone"), "{sub}: {err}");
    }
}

#[test]
fn a_live_writers_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let mut first = writer(&path, 3, 1000, 30.0, 1024);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tickwire_shm::Reader::open(&path).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "first writer never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = bin()
        .args(["shm", "write-synthetic", "--seconds", "1", "--path"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by a live writer"), "{err}");
    first.kill().unwrap();
    first.wait().unwrap();
    // Once that writer is gone, its file may be replaced.
    let out = bin()
        .args(["shm", "write-synthetic", "--seconds", "0.2", "--path"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_and_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = bin()
        .args(["shm", "tail", "--path"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such shm file"));
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![0x55u8; 10_000]).unwrap();
    let out = bin()
        .args(["shm", "stat", "--path"])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a tickwire shm file"));
}

/// The pure-Python reader (`shm/python/tickwire_shm.py`) in its own process: the same gap-free /
/// exact-lap / bit-exact checks as the Rust readers. Needs only the machine's python3 (the reader has no dependencies).
#[test]
fn the_python_reader_sees_the_same_ticks_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shm/python/tickwire_shm.py");
    let reader = Command::new("python3")
        .arg(script)
        .args(["--wait", "20", "--count", "3000", "--path"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    std::thread::sleep(Duration::from_millis(100));
    let mut w = writer(&path, 13, 5_000, 3.0, 1 << 16);
    let seen = verify(&reader.wait_with_output().unwrap(), 13, 3000);
    assert_eq!(seen.ticks, 3000);
    assert!(w.wait().unwrap().success());
}
