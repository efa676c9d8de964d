//! `serve` journals by default: every frame from the mock broker and the connection's events end
//! up in the journal directory, and `tickwire journal stat` reads them back after a clean stop.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

fn journal(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .arg("journal")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "journal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `prefix` on the line that starts with it.
fn count(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.trim().split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))
}

#[test]
fn serve_records_frames_and_events_and_stat_reads_them() {
    let bport = free_port();
    let _m = mock(bport);
    let url = format!("ws://127.0.0.1:{bport}");
    let inst = format!("http://127.0.0.1:{bport}/instruments");
    let mut gw = start_serve(&url, &inst, &[]);
    let mut ws = authed(gw.port);
    send(
        &mut ws,
        json!({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 3}),
    );
    assert_eq!(reply(&mut ws)["status"], "success");
    for _ in 0..20 {
        wait_data(&mut ws, "NSE", "SBIN", 10);
    }
    std::thread::sleep(Duration::from_millis(300));
    stop_cleanly(&mut gw._proc);
    let dir = gw._dir.path().join("journal");
    let ls = journal(&["ls", dir.to_str().unwrap()]);
    assert!(ls.contains(".twj") || !ls.trim().is_empty(), "{ls}");
    let stat = journal(&["stat", dir.to_str().unwrap()]);
    assert!(count(&stat, "frames feed 0 (zerodha):") >= 20, "{stat}");
    assert!(count(&stat, "events connect:") >= 1, "{stat}");
    assert!(count(&stat, "events subscribe:") >= 1, "{stat}");
    assert_eq!(count(&stat, "gaps:"), 0, "{stat}");
    assert_eq!(count(&stat, "torn tails:"), 0, "{stat}");
}
