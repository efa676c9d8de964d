//! Exported files read back by the readers users have: `tickwire::store::writer` writes a small
//! Parquet and CSV file, and `tests/python/export_check.py` reads them with pyarrow and compares
//! every cell with the expected rows. Python and pyarrow come from the tests' venv
//! (`tests/common/python.rs`); if it cannot be made, these tests fail, they never skip.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Map, Value};
use tickwire::store::columns::{Cell, COLUMNS};
use tickwire::store::writer::{create, Format};
use tickwire_engine::price::Px;
use tickwire_engine::tick::{valid, DEPTH_LEVELS};
use tickwire_engine::Tick;
use tickwire_shm::{Event, OpenOptions, Reader};

/// 2026-12-03T09:15:00 IST in ns.
const T0: i64 = 1_796_269_500_000_000_000;

/// Rows with every group alone and together, nulls, negative and extreme values, awkward names.
fn ticks() -> Vec<(&'static str, &'static str, Tick)> {
    let mut out = Vec::new();
    let mut ltp = Tick::new(1);
    ltp.valid = valid::LTP;
    ltp.seq = 1;
    ltp.recv_ts_ns = T0 + 123_456_789;
    ltp.exchange_ts_ns = T0;
    ltp.ltp = 8_123_500_000;
    ltp.last_qty = 25;
    out.push(("NSE", "SBIN", ltp));

    let mut quote = Tick::new(2);
    quote.valid = valid::LTP | valid::QUOTE | valid::OI;
    quote.seq = 2;
    quote.recv_ts_ns = -1; // before 1970: the day boundary and the sign of the fraction
    quote.ltp = -125_000_000;
    quote.last_qty = u64::MAX;
    quote.avg_price = i64::MAX;
    quote.volume = 1 << 40;
    quote.open = -1;
    quote.high = i64::MAX;
    quote.low = i64::MIN;
    quote.close = 999_999_999;
    quote.oi = 123_456_789_012;
    out.push(("MCX", "CRUDEOIL \"26DEC\", FUT", quote));

    let mut full = Tick::new(3);
    full.valid = valid::ALL;
    full.seq = 18_446_744_073;
    full.exchange_ts_ns = T0 + 1;
    full.recv_ts_ns = i64::MAX;
    full.ltp = 2_405_000_000;
    full.iv = 0.1834;
    full.delta = -0.5;
    full.gamma = 0.00123;
    full.theta = -12.75;
    full.vega = 1e-300;
    full.rho = -0.0;
    for l in 0..DEPTH_LEVELS {
        let n = l as i64 + 1;
        full.bids[l].price = 2_405_000_000 - n * 500_000;
        full.bids[l].qty = 75 * n as u32;
        full.bids[l].orders = n as u32;
        full.asks[l].price = 2_405_000_000 + n * 500_000;
        full.asks[l].qty = u32::MAX;
        full.asks[l].orders = 0;
    }
    out.push(("NFO", "NIFTY26DEC24000CE", full));

    let mut greeks = Tick::new(4);
    greeks.valid = valid::GREEKS;
    greeks.seq = 4;
    greeks.recv_ts_ns = T0 + 10 * 3_600_000_000_000; // past IST midnight: the next day there
    greeks.iv = 1.5e300;
    out.push(("BFO", "SENSEX", greeks));
    out
}

/// The rows as export_check.py wants them: prices as decimal strings, times as ns.
fn expected(ticks: &[(&str, &str, Tick)]) -> Value {
    let rows = ticks
        .iter()
        .map(|(ex, sym, t)| {
            let mut row = Map::new();
            for c in COLUMNS.iter() {
                let v = match c.cell(ex, sym, t) {
                    Cell::Null => Value::Null,
                    Cell::Text(s) => json!(s),
                    Cell::Int(v) | Cell::Time(v) => json!(v),
                    Cell::Price(p) => json!(Px(p).to_string()),
                    Cell::Float(f) => json!(f),
                };
                row.insert(c.name.to_string(), v);
            }
            Value::Object(row)
        })
        .collect();
    Value::Array(rows)
}

fn write_file(format: Format, path: &Path) {
    let mut w = create(format, path).unwrap();
    for (ex, sym, t) in &ticks() {
        w.write(ex, sym, t).unwrap();
    }
    assert_eq!(w.finish().unwrap(), ticks().len() as u64);
}

fn check(format: Format, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    write_file(format, &file);
    let want = expected(&ticks());
    // A few cells by hand, so the expectation is not only the column list read back.
    assert_eq!(want[0]["ltp"], json!("812.35"));
    assert_eq!(want[0]["volume"], Value::Null);
    assert_eq!(want[1]["low"], json!("-922337203685.4775808"));
    assert_eq!(want[1]["last_qty"], json!(i64::MAX));
    assert_eq!(want[2]["ask_qty_5"], json!(u32::MAX));
    assert_eq!(want[3]["ltp"], Value::Null);
    let json_path = dir.path().join("expected.json");
    std::fs::write(&json_path, want.to_string()).unwrap();
    let out = python::check_script(
        "export_check.py",
        &[file.to_str().unwrap(), json_path.to_str().unwrap()],
    );
    assert!(out.contains("4 rows x 54 columns match"), "{out}");

    // The check can fail: one price a tick off, one null that should be a value.
    let mut wrong = want.clone();
    wrong[2]["bid_price_3"] = json!("240.3500001");
    wrong[0]["oi"] = json!(0);
    let wrong_path = dir.path().join("wrong.json");
    std::fs::write(&wrong_path, wrong.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/export_check.py");
    let out = Command::new(python::python())
        .arg(&script)
        .arg(&file)
        .arg(&wrong_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("row 2 column bid_price_3"), "{text}");
    assert!(text.contains("row 0 column oi"), "{text}");
    assert!(text.contains("FAILED: 2 problem(s)"), "{text}");
}

#[test]
fn parquet_reads_back_in_pyarrow() {
    check(Format::Parquet, "ticks.parquet");
}

#[test]
fn csv_reads_back_in_pyarrow() {
    check(Format::Csv, "ticks.csv");
}

/// `tickwire export` of a journal `demo` recorded: every tick the live run put in its shm ring is
/// a row of the file, with the same values, in the same order, read back by pyarrow.
fn export_of_a_journal(format: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let mut d = start_demo(&[
        "--symbols",
        "4",
        "--rate",
        "400",
        "--ring-capacity",
        "65536",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    let mut r = Reader::open(&d.shm).unwrap();
    assert!(
        shm_has_new_ticks(&mut r, Duration::from_secs(10)),
        "no ticks"
    );
    std::thread::sleep(Duration::from_millis(800));
    drop(r);
    stop_cleanly(&mut d._proc);
    let opts = OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    };
    let mut r = Reader::open_with(&d.shm, opts).unwrap();
    r.seek_oldest();
    let mut live = Vec::new();
    while let Some(Event::Tick(t)) = r.next() {
        let n = r.symbol(t.symbol_id).unwrap();
        live.push((n.exchange, n.symbol, t));
    }
    assert!(live.len() > 50, "{} ticks", live.len());
    let file = dir.path().join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args([
            "export",
            "--journal",
            journal.to_str().unwrap(),
            "--format",
            format,
        ])
        .args(["--out", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("{} rows", live.len())), "{text}");
    let rows: Vec<(&str, &str, Tick)> = live
        .iter()
        .map(|(x, s, t)| (x.as_str(), s.as_str(), *t))
        .collect();
    let json_path = dir.path().join("expected.json");
    std::fs::write(&json_path, expected(&rows).to_string()).unwrap();
    let out = python::check_script(
        "export_check.py",
        &[file.to_str().unwrap(), json_path.to_str().unwrap()],
    );
    assert!(
        out.contains(&format!("{} rows x 54 columns match", live.len())),
        "{out}"
    );
}

#[test]
fn parquet_export_of_a_journal_matches_the_live_ring() {
    export_of_a_journal("parquet", "day.parquet");
}

#[test]
fn csv_export_of_a_journal_matches_the_live_ring() {
    export_of_a_journal("csv", "day.csv");
}
