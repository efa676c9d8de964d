//! The CSV writer of `tickwire export --format csv`: a header row of the column names, then one
//! line per tick.
//!
//! Cells: prices as exact decimals ([`Px`]: `1418.05`, never through a float), integers in decimal,
//! greeks in Rust's shortest text (`0.1834`, `1e-300`) that reads back to the same `f64`, times as RFC 3339 with all nine
//! fraction digits and IST's explicit offset (`2026-12-03T09:15:00.123456789+05:30`), and an empty
//! field for null. Text is quoted (RFC 4180) only when it holds a comma, quote or line break, or is
//! empty (so an empty name is not read as null).
//!
//! Written by hand rather than with the `csv` crate: only the two text columns can ever need
//! quoting, every other cell is a number this module formats itself, so a record writer would add a
//! per-field layer and nothing else.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use tickwire_engine::calendar::civil::ist_day_and_secs;
use tickwire_engine::clock::civil_from_days;
use tickwire_engine::price::Px;
use tickwire_engine::Tick;

use super::columns::{Cell, COLUMNS};
use super::writer::{Staged, TickWriter};

/// Bytes buffered before a write to the file: a few hundred rows.
const BUF_BYTES: usize = 1 << 20;

/// Writes ticks as CSV (see the module docs).
#[derive(Debug)]
pub struct CsvWriter {
    out: BufWriter<File>,
    staged: Staged,
    rows: u64,
}

impl CsvWriter {
    /// Creates the file (as `PATH.partial` until [`TickWriter::finish`]) and writes the header.
    pub fn create(path: &Path) -> io::Result<Self> {
        let (file, staged) = Staged::create(path)?;
        let mut out = BufWriter::with_capacity(BUF_BYTES, file);
        for (i, c) in COLUMNS.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(c.name.as_bytes())?;
        }
        out.write_all(b"\n")?;
        Ok(CsvWriter {
            out,
            staged,
            rows: 0,
        })
    }
}

impl TickWriter for CsvWriter {
    fn write(&mut self, exchange: &str, symbol: &str, tick: &Tick) -> io::Result<()> {
        for (i, c) in COLUMNS.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            write_cell(&mut self.out, c.cell(exchange, symbol, tick))?;
        }
        self.out.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> io::Result<u64> {
        let CsvWriter { out, staged, rows } = *self;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        staged.commit(file)?;
        Ok(rows)
    }
}

/// Writes one cell's text (nothing for null).
fn write_cell(out: &mut impl Write, cell: Cell<'_>) -> io::Result<()> {
    match cell {
        Cell::Null => Ok(()),
        Cell::Text(s) => write_text(out, s),
        Cell::Int(v) => write_int(out, v),
        Cell::Price(p) => write!(out, "{}", Px(p)),
        // Debug of an f64 is the shortest text that parses back to the same value, with an
        // exponent for the very large or small (Display would write 1e-300 out in 302 digits).
        Cell::Float(f) => write!(out, "{f:?}"),
        Cell::Time(ns) => write_time(out, ns),
    }
}

/// RFC 4180 text: quoted, with quotes doubled, when it would otherwise split or vanish.
fn write_text(out: &mut impl Write, s: &str) -> io::Result<()> {
    let needs_quotes = s.is_empty() || s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        return out.write_all(s.as_bytes());
    }
    out.write_all(b"\"")?;
    for (i, part) in s.split('"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"")
}

/// `v` in decimal. By hand because it is most of the cells and `fmt` costs several times more.
fn write_int(out: &mut impl Write, v: i64) -> io::Result<()> {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut mag = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (mag % 10) as u8;
        mag /= 10;
        if mag == 0 {
            break;
        }
    }
    if v < 0 {
        out.write_all(b"-")?;
    }
    out.write_all(&buf[i..])
}

/// Writes `v` (0 ≤ v < 10^width) as exactly `width` digits into `buf`.
fn put_digits(buf: &mut [u8], mut v: u64) {
    for b in buf.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `ns` since the epoch as IST wall time, RFC 3339: `2026-12-03T09:15:00.123456789+05:30`.
fn write_time(out: &mut impl Write, ns: i64) -> io::Result<()> {
    // Floor division, so an instant before 1970 still has a fraction in 0..10^9.
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u64;
    let (day, sod) = ist_day_and_secs(secs);
    let (y, m, d) = civil_from_days(day);
    let sod = sod as u64;
    // An i64 of ns spans the years 1677..2262: always four digits.
    let mut s = *b"0000-00-00T00:00:00.000000000+05:30";
    put_digits(&mut s[0..4], y as u64);
    put_digits(&mut s[5..7], u64::from(m));
    put_digits(&mut s[8..10], u64::from(d));
    put_digits(&mut s[11..13], sod / 3600);
    put_digits(&mut s[14..16], sod / 60 % 60);
    put_digits(&mut s[17..19], sod % 60);
    put_digits(&mut s[20..29], frac);
    out.write_all(&s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::testing::sample_ticks;
    use crate::store::writer::{create, Format};

    fn cell_text(cell: Cell<'_>) -> String {
        let mut v = Vec::new();
        write_cell(&mut v, cell).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn cells() {
        assert_eq!(cell_text(Cell::Null), "");
        assert_eq!(cell_text(Cell::Int(0)), "0");
        assert_eq!(cell_text(Cell::Int(-42)), "-42");
        assert_eq!(cell_text(Cell::Int(i64::MAX)), "9223372036854775807");
        assert_eq!(cell_text(Cell::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(cell_text(Cell::Price(14_180_500_000)), "1418.05");
        assert_eq!(cell_text(Cell::Price(-5_000_000)), "-0.5");
        assert_eq!(cell_text(Cell::Float(0.1)), "0.1");
        assert_eq!(cell_text(Cell::Float(-1.5e-7)), "-1.5e-7");
        assert_eq!(cell_text(Cell::Text("NSE")), "NSE");
        assert_eq!(cell_text(Cell::Text("")), "\"\"");
        assert_eq!(cell_text(Cell::Text("A,\"B\"")), "\"A,\"\"B\"\"\"");
    }

    #[test]
    fn times_are_ist_with_offset() {
        // 2026-12-03T03:45:00.123456789Z is 09:15 IST.
        let ns = 1_796_269_500_123_456_789;
        assert_eq!(
            cell_text(Cell::Time(ns)),
            "2026-12-03T09:15:00.123456789+05:30"
        );
        assert_eq!(
            cell_text(Cell::Time(0)),
            "1970-01-01T05:30:00.000000000+05:30"
        );
        // One ns before the epoch: the day before in UTC, still 05:29:59 IST.
        assert_eq!(
            cell_text(Cell::Time(-1)),
            "1970-01-01T05:29:59.999999999+05:30"
        );
        // Across IST midnight: 18:30Z is 00:00 the next day.
        assert_eq!(
            cell_text(Cell::Time(1_796_322_600_000_000_000)),
            "2026-12-04T00:00:00.000000000+05:30"
        );
        assert_eq!(
            cell_text(Cell::Time(i64::MIN)),
            "1677-09-21T05:42:43.145224192+05:30"
        );
        assert_eq!(
            cell_text(Cell::Time(i64::MAX)),
            "2262-04-12T05:17:16.854775807+05:30"
        );
    }

    #[test]
    fn file_text_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut w = create(Format::Csv, &path).unwrap();
        let ticks = sample_ticks();
        for (ex, sym, t) in &ticks {
            w.write(ex, sym, t).unwrap();
        }
        assert_eq!(w.finish().unwrap(), ticks.len() as u64);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + ticks.len());
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(header, COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>());
        let empty_depth = ",".repeat(30);
        // LTP only: every other group empty, no exchange time.
        assert_eq!(
            lines[1],
            format!(
                "NSE,SBIN,1,,2026-12-03T09:15:00.123456789+05:30,812.35,25{}{}",
                ",".repeat(17),
                empty_depth
            )
        );
        // Everything: quote, OI, greeks, depth, negative and huge values.
        let mut want = String::from(
            "NFO,\"NIFTY,26DEC 24000 CE\",18446744073,2026-12-03T09:15:00.000000001+05:30,\
             2026-12-03T09:15:00.500000000+05:30,-12.5,9223372036854775807,922337203685.4775807,\
             9223372036854775807,1,2,-0.0000001,100.0,-922337203685.4775808,99.9999999,\
             123456789012,5,0,0.1834,-0.5,0.00123,-12.75,1e-300,-0.0",
        );
        for l in 1..=5 {
            want.push_str(&format!(",{}.05,{},{}", 100 - l, l * 10, l));
        }
        for l in 1..=5 {
            want.push_str(&format!(",{}.1,{},{}", 100 + l, l * 100, 4294967295_u64));
        }
        assert_eq!(lines[2], want);
        assert!(text.ends_with('\n'));
    }
}
