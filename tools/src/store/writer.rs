//! Writing ticks to an exported file: the [`Format`]s `tickwire export` offers, the [`TickWriter`]
//! each implements, and [`create`], which opens one.
//!
//! Both formats write the rows of [`COLUMNS`](super::columns::COLUMNS), one per tick, and both
//! write to `PATH.partial` next to the destination and rename it to `PATH` only in
//! [`TickWriter::finish`], after the data is synced: an export that fails or is interrupted never
//! leaves a file at `PATH` that looks complete but is not (a CSV cut short still parses), and the
//! half-written `.partial` is removed when the writer is dropped unfinished.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use tickwire_engine::Tick;

use super::{csv, parquet};

/// The file formats of `tickwire export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Apache Parquet: typed columns (exact decimals, timestamps with a time zone), Snappy.
    Parquet,
    /// Comma-separated text with a header row.
    Csv,
}

/// Writes one row per tick to an exported file.
pub trait TickWriter {
    /// One row for `tick` of `exchange:symbol` (the registry's names).
    fn write(&mut self, exchange: &str, symbol: &str, tick: &Tick) -> io::Result<()>;
    /// Flushes, writes the footer (Parquet), syncs; returns rows written.
    fn finish(self: Box<Self>) -> io::Result<u64>;
}

/// Opens a writer of `format` whose file appears at `path` when it is finished (see the module
/// docs); an existing file at `path` is replaced then.
pub fn create(format: Format, path: &Path) -> io::Result<Box<dyn TickWriter>> {
    Ok(match format {
        Format::Parquet => Box::new(parquet::ParquetWriter::create(path)?),
        Format::Csv => Box::new(csv::CsvWriter::create(path)?),
    })
}

/// The `.partial` file an export is written to until it is complete; removed on drop unless
/// [`Staged::commit`] moved it to its destination.
#[derive(Debug)]
pub(crate) struct Staged {
    partial: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staged {
    /// Creates (truncating) `path` + `.partial` and returns it with its guard.
    pub(crate) fn create(path: &Path) -> io::Result<(File, Staged)> {
        let not_a_file = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        };
        let name = path.file_name().ok_or_else(not_a_file)?;
        // Found now rather than by the rename at the end of a long export.
        if path.is_dir() {
            return Err(not_a_file());
        }
        let mut partial_name = OsString::from(name);
        partial_name.push(".partial");
        let partial = path.with_file_name(partial_name);
        let file = File::create(&partial)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", partial.display())))?;
        Ok((
            file,
            Staged {
                partial,
                dest: path.to_path_buf(),
                committed: false,
            },
        ))
    }

    /// Syncs `file` (all of it written), renames it to the destination and syncs the directory, so
    /// after a crash the destination is either the old file or the whole new one.
    pub(crate) fn commit(mut self, file: File) -> io::Result<()> {
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.partial, &self.dest).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "rename {} to {}: {e}",
                    self.partial.display(),
                    self.dest.display()
                ),
            )
        })?;
        self.committed = true;
        let dir = match self.dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Directories can be opened read-only and fsynced on Linux, which makes the rename durable.
        File::open(dir)?.sync_all()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the export already failed; a leftover .partial is named as such.
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Ticks the writers' tests share: one LTP-only, one with every group and extreme values.
#[cfg(test)]
pub(crate) mod testing {
    use tickwire_engine::tick::{valid, DEPTH_LEVELS};
    use tickwire_engine::Tick;

    /// 2026-12-03T09:15:00 IST in ns.
    pub(crate) const T0: i64 = 1_796_269_500_000_000_000;

    /// `(exchange, symbol, tick)` rows.
    pub(crate) fn sample_ticks() -> Vec<(&'static str, &'static str, Tick)> {
        let mut a = Tick::new(1);
        a.valid = valid::LTP;
        a.seq = 1;
        a.recv_ts_ns = T0 + 123_456_789;
        a.ltp = 8_123_500_000;
        a.last_qty = 25;
        a.volume = 77; // not valid: must not appear

        let mut b = Tick::new(2);
        b.valid = valid::ALL;
        b.seq = 18_446_744_073;
        b.exchange_ts_ns = T0 + 1;
        b.recv_ts_ns = T0 + 500_000_000;
        b.ltp = -125_000_000;
        b.last_qty = u64::MAX;
        b.avg_price = i64::MAX;
        b.volume = i64::MAX as u64;
        b.total_buy_qty = 1;
        b.total_sell_qty = 2;
        b.open = -1;
        b.high = 1_000_000_000;
        b.low = i64::MIN;
        b.close = 999_999_999;
        b.oi = 123_456_789_012;
        b.oi_day_high = 5;
        b.oi_day_low = 0;
        b.iv = 0.1834;
        b.delta = -0.5;
        b.gamma = 0.00123;
        b.theta = -12.75;
        b.vega = 1e-300;
        b.rho = -0.0;
        for l in 0..DEPTH_LEVELS {
            let n = l as i64 + 1;
            b.bids[l].price = (100 - n) * 10_000_000 + 500_000;
            b.bids[l].qty = n as u32 * 10;
            b.bids[l].orders = n as u32;
            b.asks[l].price = (100 + n) * 10_000_000 + 1_000_000;
            b.asks[l].qty = n as u32 * 100;
            b.asks[l].orders = u32::MAX;
        }
        vec![("NSE", "SBIN", a), ("NFO", "NIFTY,26DEC 24000 CE", b)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Csv, Format::Parquet] {
            let path = dir.path().join("out");
            let mut w = create(format, &path).unwrap();
            w.write("NSE", "SBIN", &Tick::new(1)).unwrap();
            assert!(dir.path().join("out.partial").exists());
            drop(w);
            assert!(!path.exists(), "{format:?}");
            assert!(!dir.path().join("out.partial").exists(), "{format:?}");
        }
    }

    #[test]
    fn finished_writer_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        let mut w = create(Format::Csv, &path).unwrap();
        w.write("NSE", "SBIN", &Tick::new(1)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(w.finish().unwrap(), 1);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("exchange,symbol,"));
        assert!(!dir.path().join("out.csv.partial").exists());
    }

    #[test]
    fn a_directory_path_is_an_error() {
        let err = create(Format::Csv, Path::new("/")).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let dir = tempfile::tempdir().unwrap();
        let err = create(Format::Parquet, dir.path()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!dir.path().with_extension("partial").exists());
        let missing = dir.path().join("no/such/dir/out.parquet");
        assert!(create(Format::Parquet, &missing).is_err());
    }
}
