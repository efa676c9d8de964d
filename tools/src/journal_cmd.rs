//! `tickwire journal ls|stat DIR`: what a journal directory holds (`docs/journal-format.md`).
//! Read-only; a torn tail is reported, not an error; damage mid-file is one error line naming
//! the file and offset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use tickwire_engine::clock::rfc3339_utc;
use tickwire_io::journal::format::Kind;
use tickwire_io::journal::read::{segment_paths, SegmentReader, TornTail};

/// `tickwire journal …`.
#[derive(Subcommand, Debug)]
pub enum JournalCmd {
    /// Segments: path, bytes, first and last record time, records.
    Ls {
        /// The journal directory.
        dir: PathBuf,
    },
    /// Totals: time range, frames per feed, events, gaps with missed counts, torn tails.
    Stat {
        /// The journal directory.
        dir: PathBuf,
    },
}

/// Runs a `journal` subcommand.
pub fn run(cmd: JournalCmd) -> Result<(), String> {
    match cmd {
        JournalCmd::Ls { dir } => ls(&dir),
        JournalCmd::Stat { dir } => stat(&dir),
    }
}

/// What one segment holds.
#[derive(Default)]
struct Summary {
    records: u64,
    first: Option<i64>,
    last: Option<i64>,
    /// Frames and frame bytes per feed id.
    frames: BTreeMap<u8, (u64, u64)>,
    /// Broker names per feed id, from headers and feed records.
    brokers: BTreeMap<u8, String>,
    events: BTreeMap<&'static str, u64>,
    gaps: u64,
    missed: u64,
    torn: Vec<TornTail>,
}

impl Summary {
    fn add(&mut self, o: Summary) {
        self.records += o.records;
        self.first = min_opt(self.first, o.first);
        self.last = self.last.max(o.last);
        for (f, (n, b)) in o.frames {
            let e = self.frames.entry(f).or_default();
            e.0 += n;
            e.1 += b;
        }
        self.brokers.extend(o.brokers);
        for (k, n) in o.events {
            *self.events.entry(k).or_default() += n;
        }
        self.gaps += o.gaps;
        self.missed += o.missed;
        self.torn.extend(o.torn);
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn summarise(path: &Path) -> Result<Summary, String> {
    let mut r = SegmentReader::open(path).map_err(|e| e.to_string())?;
    let mut s = Summary {
        brokers: r.header().feeds.iter().cloned().collect(),
        ..Summary::default()
    };
    while let Some(rec) = r.next_record().map_err(|e| e.to_string())? {
        s.records += 1;
        // Feed and catalog records are stamped with the writer's clock, not a feed's: not data
        // time.
        if !matches!(rec.kind, Kind::Feed | Kind::Catalog) {
            s.first = min_opt(s.first, Some(rec.ts_ns));
            s.last = s.last.max(Some(rec.ts_ns));
        }
        match rec.kind {
            Kind::Frame => {
                let e = s.frames.entry(rec.feed).or_default();
                e.0 += 1;
                e.1 += rec.payload.len() as u64;
            }
            Kind::Gap => {
                s.gaps += 1;
                s.missed += rec.gap_missed().unwrap_or(0);
            }
            Kind::Feed => {
                let name = String::from_utf8_lossy(rec.payload).into_owned();
                s.brokers.insert(rec.feed, name);
            }
            k => *s.events.entry(k.name()).or_default() += 1,
        }
    }
    s.torn.extend(r.torn_tail().cloned());
    Ok(s)
}

fn time(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), rfc3339_utc)
}

fn segments(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let paths = segment_paths(dir).map_err(|e| e.to_string())?;
    if paths.is_empty() {
        return Err(format!("{}: no journal segments", dir.display()));
    }
    Ok(paths)
}

fn ls(dir: &Path) -> Result<(), String> {
    println!(
        "{:<24} {:>12} {:<24} {:<24} {:>10}",
        "segment", "bytes", "first", "last", "records"
    );
    for p in segments(dir)? {
        let s = summarise(&p)?;
        let bytes = std::fs::metadata(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .len();
        let name = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
        let torn = if s.torn.is_empty() { "" } else { "  torn tail" };
        println!(
            "{name:<24} {bytes:>12} {:<24} {:<24} {:>10}{torn}",
            time(s.first),
            time(s.last),
            s.records
        );
    }
    Ok(())
}

fn stat(dir: &Path) -> Result<(), String> {
    let paths = segments(dir)?;
    let mut all = Summary::default();
    for p in &paths {
        all.add(summarise(p)?);
    }
    println!("segments: {}", paths.len());
    println!("records: {}", all.records);
    println!("from: {}", time(all.first));
    println!("to: {}", time(all.last));
    for (feed, (n, bytes)) in &all.frames {
        let broker = all.brokers.get(feed).map_or("?", String::as_str);
        println!("frames feed {feed} ({broker}): {n} ({bytes} bytes)");
    }
    for (kind, n) in &all.events {
        println!("events {kind}: {n}");
    }
    println!("gaps: {} ({} records missed)", all.gaps, all.missed);
    println!("torn tails: {}", all.torn.len());
    for t in &all.torn {
        println!(
            "torn tail: {} at offset {} ({} bytes skipped)",
            t.path.display(),
            t.offset,
            t.bytes
        );
    }
    Ok(())
}
