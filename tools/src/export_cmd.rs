//! `tickwire export`: a journal's ticks into a Parquet or CSV file, one row per tick with the
//! columns of `crate::store::columns` (`docs/storage.md`). The ticks come from the same replay as
//! `tickwire replay` (`tickwire_io::replay::Player`: today's parsers over the recorded frames, the
//! live run's symbol names), with the sequence numbers the router gives them.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use tickwire_engine::symbols::split_key;
use tickwire_io::replay::{Player, ReplayError};

use crate::replay_cmd::window;
use crate::store::writer::{create, Format};

/// `tickwire export` flags.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The journal directory (`serve` writes `./journal`).
    #[arg(long)]
    pub journal: PathBuf,
    /// File format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The file to write (replaced when the export completes; written as PATH.partial until then).
    #[arg(long)]
    pub out: PathBuf,
    /// Only these instruments: EXCHANGE:SYMBOL, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Ticks received from this time on (same forms as `replay --from`: RFC 3339,
    /// `YYYY-MM-DDTHH:MM[:SS]` or `HH:MM[:SS]` in IST).
    #[arg(long)]
    pub from: Option<String>,
    /// Ticks received up to this time.
    #[arg(long)]
    pub to: Option<String>,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Runs `tickwire export`.
pub fn run(a: ExportArgs) -> Result<(), String> {
    let w = window(a.from.as_deref(), a.to.as_deref(), &a.journal)?;
    let mut player = Player::open(&a.journal, w).map_err(|e| e.to_string())?;
    let reg = player.registry().clone();
    let mut wanted = HashSet::new();
    let mut unknown = Vec::new();
    for s in &a.symbols {
        match split_key(s).and_then(|(x, sym)| reg.lookup(x, sym)) {
            Some(id) => {
                wanted.insert(id);
            }
            None => unknown.push(s.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "--symbols: not in the journal's catalog: {}",
            unknown.join(", ")
        ));
    }
    let mut out = create(a.format, &a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let t0 = Instant::now();
    let r = player.for_each_tick(|exchange, symbol, tick| -> Result<(), ExportError> {
        if wanted.is_empty() || wanted.contains(&tick.symbol_id) {
            out.write(exchange, symbol, tick)?;
        }
        Ok(())
    });
    // Dropped unfinished on an error: the partial file is removed.
    r.map_err(|e| format!("export to {}: {e}", a.out.display()))?;
    let rows = out
        .finish()
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    let st = player.stats();
    println!(
        "tickwire export: {rows} rows to {} in {secs:.3} s ({:.0} rows/s); {} frames, {} parse errors, {} gaps ({} records the live run missed), {} torn tails",
        a.out.display(),
        rows as f64 / secs.max(1e-9),
        st.frames,
        st.parse_errors,
        st.gaps,
        st.missed,
        player.torn_tails().len()
    );
    Ok(())
}
