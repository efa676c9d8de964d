//! Logs: `tracing` events written by a background thread, so a log line never blocks a feed,
//! router or client thread.
//!
//! - Level: `RUST_LOG` when set (`tickwire=debug,tickwire_io=trace`, …), else `--log-level` (or
//!   the config file's `[log] level`), else `info`.
//! - Format: human-readable lines by default; `--log-format json` writes one JSON object a line
//!   (timestamp, level, target, fields), for log shippers.
//! - Never blocking: events go to a bounded in-memory queue drained by the `tracing-appender`
//!   worker thread. When stderr stalls (a full pipe, a frozen terminal, a slow disk behind a
//!   redirect) and the queue fills, new lines are dropped rather than waited for: a stalled log
//!   must never stall ticks. The appender counts what it dropped.
//! - Never a line per tick: hot paths log only per event (connect, disconnect, reject, limit hit),
//!   and repeatable events go through [`tickwire_io::ratelog::RateLog`].

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Lines held in memory while stderr is slow; past this, lines are dropped, never waited for.
const QUEUE_LINES: usize = 16_384;

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes the
/// queue.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<WorkerGuard, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG={v:?}: {e}"))?
        }
        _ => {
            let l = level.unwrap_or("info");
            EnvFilter::try_new(l).map_err(|e| format!("log level {l:?}: {e}"))?
        }
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("tickwire-log")
        .finish(std::io::stderr());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let res = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    res.map_err(|e| format!("log setup: {e}"))?;
    Ok(guard)
}
