//! The journal end to end: written through `tickwire_io::journal` into a temporary directory,
//! then read by the real binary (`tickwire journal ls` and `stat`), whole, with its last
//! segment cut mid-record (a crash), and damaged mid-file (an error naming file and offset).

use std::path::Path;
use std::process::{Command, Output};

use tickwire_io::journal::read::segment_paths;
use tickwire_io::journal::{Event, Journal, JournalConfig};

/// 2026-12-03 10:00:00 IST in ns.
const T0: i64 = 1_796_272_200_000_000_000;

fn tickwire(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(args)
        .arg(dir)
        .output()
        .expect("run tickwire")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Two feeds, 300 frames each in segments of about 20 KB, a subscribe, a disconnect.
fn write_journal(dir: &Path) {
    let cfg = JournalConfig {
        dir: dir.to_path_buf(),
        segment_bytes: 20_000,
        ..JournalConfig::default()
    };
    let mut j = Journal::start(cfg).unwrap();
    let mut kite = j.appender(0, "kite");
    let mut upstox = j.appender(1, "upstox");
    kite.event(0, T0, Event::Connect);
    kite.event(
        0,
        T0,
        Event::Subscribe {
            mode: 3,
            symbols: &["NSE:SBIN", "NSE:INFY"],
        },
    );
    for i in 0..300 {
        kite.frame(0, T0 + i * 1_000_000, true, &[i as u8; 200]);
        upstox.frame(1, T0 + i * 1_000_000 + 1, true, &[7; 100]);
    }
    kite.event(
        0,
        T0 + 1_000_000_000,
        Event::Disconnect {
            reason: "closed by peer",
        },
    );
    drop((kite, upstox));
    j.stop().unwrap();
}

#[test]
fn ls_and_stat_read_a_journal_and_survive_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_journal(dir);
    let segs = segment_paths(dir).unwrap();
    assert!(segs.len() >= 4, "{segs:?}");

    let ls = stdout(&tickwire(&["journal", "ls"], dir));
    assert!(ls.contains("2026-12-03/000001.twj"), "{ls}");
    assert!(ls.contains("2026-12-03T04:30:00.000Z"), "{ls}");
    assert_eq!(ls.lines().count(), 1 + segs.len(), "{ls}");
    assert!(!ls.contains("torn"), "{ls}");

    let stat = stdout(&tickwire(&["journal", "stat"], dir));
    for want in [
        "frames feed 0 (kite): 300 (60000 bytes)",
        "frames feed 1 (upstox): 300 (30000 bytes)",
        "events subscribe: 1",
        "events connect: 1",
        "events disconnect: 1",
        "gaps: 0 (0 records missed)",
        "torn tails: 0",
        "from: 2026-12-03T04:30:00.000Z",
        "to: 2026-12-03T04:30:01.000Z",
    ] {
        assert!(stat.contains(want), "want {want:?} in\n{stat}");
    }

    assert!(stat.contains("records: 603"), "{stat}");

    // A crash mid-write: the last segment ends inside its last record (whichever feed's the
    // writer drained last), and every record before it still counts.
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 9).unwrap();
    drop(f);
    let stat = stdout(&tickwire(&["journal", "stat"], dir));
    assert!(stat.contains("torn tails: 1"), "{stat}");
    assert!(stat.contains("records: 602"), "{stat}");
    let name = last.display().to_string();
    assert!(
        stat.contains(&format!("torn tail: {name} at offset")),
        "{stat}"
    );
    let ls = stdout(&tickwire(&["journal", "ls"], dir));
    assert!(ls.contains("torn tail"), "{ls}");
}

#[test]
fn damage_mid_file_and_a_missing_dir_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_journal(dir);
    let first = &segment_paths(dir).unwrap()[0];
    let mut b = std::fs::read(first).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x55;
    std::fs::write(first, &b).unwrap();
    let o = tickwire(&["journal", "stat"], dir);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("000001.twj") && err.contains("corrupt record at offset"),
        "{err}"
    );

    let o = tickwire(&["journal", "ls"], &dir.join("nope"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope"), "{err}");
}
