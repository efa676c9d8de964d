//! cargo +nightly fuzz run journal_replay fuzz/seeds/journal_replay
//! Any bytes as a journal's only segment, replayed: the catalog decoded, events applied to each
//! broker's protocol, frames parsed. Ticks or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::replay::{Player, ReplayError, Window};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    let day = dir.path().join("2026-12-03");
    if std::fs::create_dir(&day).is_err() || std::fs::write(day.join("000001.twj"), data).is_err() {
        return;
    }
    if let Ok(mut p) = Player::open(dir.path(), Window::default()) {
        let _ = p.for_each_tick(|_, _, _| Ok::<(), ReplayError>(()));
        let _ = (p.stats().ticks, p.torn_tails().len());
    }
});
