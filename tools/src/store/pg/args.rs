//! The sink's flags (`--sink URL`, `--sink-table`, …), flattened into `serve`'s and `demo`'s, and
//! starting it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

use super::lanes::MAX_LANES;
use super::schema::TableName;
use super::{JournalRun, Sink, SinkConfig};

/// PostgreSQL sink flags.
#[derive(Args, Clone)]
pub struct SinkArgs {
    /// Store every tick in this PostgreSQL database, one row per tick, in `--sink-table`
    /// (created if missing; `docs/storage.md`): `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` or
    /// `host=… user=… dbname=…`; TLS is not used (a server on this host or the LAN, or a unix
    /// socket: `host=/run/postgresql`). The gateway starts whether or not the database is up;
    /// the sink keeps retrying and reports in `/status`.
    #[arg(long = "sink", id = "sink", value_name = "URL")]
    pub url: Option<String>,
    /// The sink's table: NAME or SCHEMA.NAME.
    #[arg(long, default_value = "ticks")]
    pub sink_table: String,
    /// The sink commits a batch at this many rows…
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sink_batch_rows: u32,
    /// … or this many ms after the batch's first row.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub sink_flush_ms: u64,
    /// `COPY` connections in parallel, each storing its share of the ring (one server backend
    /// parses a `COPY` on one core: about 150,000 full rows/s here).
    #[arg(long, default_value_t = DEFAULT_LANES, value_parser = lanes)]
    pub sink_lanes: usize,
}

/// `--sink-lanes`' default.
pub const DEFAULT_LANES: usize = 2;

fn lanes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_LANES).contains(&n) => Ok(n),
        _ => Err(format!("expected 1 to {MAX_LANES}")),
    }
}

impl Default for SinkArgs {
    fn default() -> Self {
        Self {
            url: None,
            sink_table: "ticks".into(),
            sink_batch_rows: 10_000,
            sink_flush_ms: 200,
            sink_lanes: DEFAULT_LANES,
        }
    }
}

// By hand: the URL may hold a password, and the engine's flags are printed with `{:?}`.
impl std::fmt::Debug for SinkArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkArgs")
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("sink_table", &self.sink_table)
            .field("sink_batch_rows", &self.sink_batch_rows)
            .field("sink_flush_ms", &self.sink_flush_ms)
            .field("sink_lanes", &self.sink_lanes)
            .finish()
    }
}

impl SinkArgs {
    /// The sink's settings, if `--sink` was given; a bad URL or table name is an error.
    pub fn config(
        &self,
        shm: &Path,
        journal: Option<JournalRun>,
    ) -> Result<Option<SinkConfig>, String> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let mut db = postgres::Config::from_str(url)
            .map_err(|e| format!("--sink: not a PostgreSQL URL or connection string: {e}"))?;
        if db.get_connect_timeout().is_none() {
            // A host that drops packets must not hold the sink for the OS's TCP timeout.
            db.connect_timeout(Duration::from_secs(5));
        }
        if db.get_application_name().is_none() {
            db.application_name("tickwire-sink");
        }
        let table = TableName::parse(&self.sink_table).map_err(|e| format!("--sink-table: {e}"))?;
        Ok(Some(SinkConfig {
            db,
            table,
            shm: shm.to_owned(),
            batch_rows: self.sink_batch_rows as usize,
            flush: Duration::from_millis(self.sink_flush_ms),
            lanes: self.sink_lanes,
            journal,
        }))
    }

    /// Starts the sink when `--sink` was given (after the shm file exists).
    pub fn start(&self, shm: &Path, journal: Option<JournalRun>) -> Result<Option<Sink>, String> {
        let Some(cfg) = self.config(shm, journal)? else {
            return Ok(None);
        };
        let table = cfg.table.as_str().to_owned();
        let hosts = cfg
            .db
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let sink = Sink::start(cfg).map_err(|e| format!("--sink: {e}"))?;
        // The URL is not logged: it may hold a password.
        tracing::info!("tickwire: sink to PostgreSQL at {hosts}, table {table}");
        Ok(Some(sink))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_tables_are_errors_and_no_url_is_no_sink() {
        let shm = Path::new("/nonexistent");
        let mut a = SinkArgs::default();
        assert!(a.config(shm, None).unwrap().is_none());
        a.url = Some("mysql://x@127.0.0.1/db".into());
        assert!(a.config(shm, None).unwrap_err().contains("--sink"));
        a.url = Some("postgres://tickwire:secret@127.0.0.1:5433/market".into());
        let c = a.config(shm, None).unwrap().unwrap();
        assert_eq!(c.db.get_ports(), [5433]);
        assert_eq!(c.batch_rows, 10_000);
        assert!(!format!("{a:?}").contains("secret"), "no password in Debug");
        a.sink_table = "bad name".into();
        assert!(a.config(shm, None).unwrap_err().contains("--sink-table"));
    }
}
