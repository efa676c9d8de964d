//! The journal's flags (`--journal DIR`, `--no-journal`, …) and starting its writer
//! (`tickwire_io::journal`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tickwire_io::journal::{Journal, JournalConfig, SyncPolicy};

/// Journal flags, shared by `serve` (on by default) and `demo` (opt-in).
#[derive(Args, Debug, Clone, Default)]
pub struct JournalArgs {
    /// Record every upstream frame as received, and every connect, disconnect and subscription
    /// change, in this directory (`docs/journal-format.md`). `serve` records to `./journal` unless
    /// `--no-journal`; `demo` only when given.
    #[arg(long = "journal", id = "journal")]
    pub dir: Option<PathBuf>,
    /// Do not record a journal (`serve`).
    #[arg(long, conflicts_with = "journal")]
    pub no_journal: bool,
    /// A journal segment file is closed and the next begun past this many MiB (and at each
    /// trading day).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub journal_segment_mb: u64,
    /// fsync the journal every this many ms (0: only when a segment closes and at shutdown). A
    /// crash loses at most the unsynced tail.
    #[arg(long, default_value_t = 1000)]
    pub journal_sync_ms: u64,
    /// Each feed's buffer between its thread and the journal writer, in MiB: how far the disk (or
    /// a writer thread starved of CPU) may fall behind before frames are dropped and recorded as
    /// a gap. 64 MiB holds about a second of a 1 M ticks/s Kite feed.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub journal_ring_mb: u64,
}

impl JournalArgs {
    /// `serve`'s default: `./journal` unless a directory or `--no-journal` was given.
    pub fn default_on(&mut self) {
        if self.dir.is_none() && !self.no_journal {
            self.dir = Some(PathBuf::from("journal"));
        }
    }

    /// Starts the writer when a directory is set (and `--no-journal` is not).
    pub fn start(&self) -> Result<Option<Journal>, String> {
        let Some(dir) = self.dir.as_ref().filter(|_| !self.no_journal) else {
            return Ok(None);
        };
        let cfg = JournalConfig {
            dir: dir.clone(),
            segment_bytes: self.journal_segment_mb << 20,
            sync: match self.journal_sync_ms {
                0 => SyncPolicy::Never,
                ms => SyncPolicy::Every(Duration::from_millis(ms)),
            },
            ring_bytes: (self.journal_ring_mb.max(1) << 20) as usize,
        };
        let j = Journal::start(cfg).map_err(|e| format!("journal {}: {e}", dir.display()))?;
        tracing::info!("tickwire: journal in {}", dir.display());
        Ok(Some(j))
    }
}
