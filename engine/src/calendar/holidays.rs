//! The holidays file: one line per exchange day that differs from the regular week.
//!
//! ```text
//! # date,exchanges,description[,session]
//! 2026-01-26,NSE BSE NFO BFO CDS BCD,Republic Day
//! 2026-03-03,MCX,Holi: evening session only,17:00-23:55
//! ```
//!
//! - `date`: `YYYY-MM-DD` (IST).
//! - `exchanges`: space-separated OpenAlgo exchange codes, or `*` for every exchange. Index
//!   exchanges (`NSE_INDEX`, `BSE_INDEX`, `MCX_INDEX`) are not listed: they follow NSE, BSE and MCX.
//! - `description`: free text without commas.
//! - `session` (optional): `HH:MM-HH:MM`, a special session that replaces the day's regular one
//!   (Muhurat trading, an evening-only commodity session, a Saturday session). Without it the
//!   exchanges are closed that day.
//!
//! Blank lines and lines starting with `#` are ignored. A directory is read as every `*.csv`
//! file in it (one per year, by convention `2026.csv`).

use std::collections::HashMap;
use std::path::Path;

use super::civil::{parse_date, parse_hhmm, Day};
use super::Exchange;

/// What a listed day holds for one exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayRule {
    /// No trading.
    Closed,
    /// Trading only from `open` to `close` (seconds since IST midnight), instead of the regular
    /// session.
    Special {
        /// Start of normal trading.
        open: i64,
        /// End of trading.
        close: i64,
    },
}

/// The listed days: (day, exchange) → rule.
pub type Days = HashMap<(Day, Exchange), DayRule>;

/// A holidays file that cannot be used: where and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {reason}")]
pub struct HolidaysError {
    /// The file (as given, or its path in the directory).
    pub file: String,
    /// 1-based line (0: the file itself).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses one holidays file's text into `days`; `file` names it in errors.
pub fn parse_into(days: &mut Days, file: &str, text: &str) -> Result<(), HolidaysError> {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: String| HolidaysError {
            file: file.to_owned(),
            line: i + 1,
            reason,
        };
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if !(3..=4).contains(&cols.len()) {
            return Err(err(format!(
                "expected date,exchanges,description[,session], got {} columns (no commas in \
                 the description)",
                cols.len()
            )));
        }
        let day = parse_date(cols[0])
            .ok_or_else(|| err(format!("date {:?} is not YYYY-MM-DD", cols[0])))?;
        let rule = match cols.get(3).filter(|s| !s.is_empty()) {
            None => DayRule::Closed,
            Some(s) => parse_session(s).ok_or_else(|| {
                err(format!(
                    "session {s:?} is not HH:MM-HH:MM with the open before the close"
                ))
            })?,
        };
        let mut exchanges = Vec::new();
        for x in cols[1].split_whitespace() {
            if x == "*" {
                exchanges.extend(Exchange::ALL.iter().filter(|e| e.base() == **e));
                continue;
            }
            let e = Exchange::parse(x).ok_or_else(|| {
                err(format!(
                    "unknown exchange {x:?} (expected * or some of {})",
                    listable().join(" ")
                ))
            })?;
            if e.base() != e {
                return Err(err(format!(
                    "{x} follows {}'s calendar: list {} instead",
                    e.base().name(),
                    e.base().name()
                )));
            }
            exchanges.push(e);
        }
        if exchanges.is_empty() {
            return Err(err("no exchanges listed".into()));
        }
        for e in exchanges {
            days.insert((day, e), rule);
        }
    }
    Ok(())
}

/// Reads `path`: one holidays file, or every `*.csv` file of a directory (in name order).
pub fn load(path: &Path) -> Result<Days, HolidaysError> {
    let io_err = |p: &Path, e: std::io::Error| HolidaysError {
        file: p.display().to_string(),
        line: 0,
        reason: e.to_string(),
    };
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| io_err(path, e))? {
            let p = entry.map_err(|e| io_err(path, e))?.path();
            if p.extension().is_some_and(|x| x == "csv") {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(HolidaysError {
                file: path.display().to_string(),
                line: 0,
                reason: "no *.csv holidays files in this directory".into(),
            });
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut days = Days::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| io_err(&f, e))?;
        parse_into(&mut days, &f.display().to_string(), &text)?;
    }
    Ok(days)
}

/// `HH:MM-HH:MM`.
fn parse_session(s: &str) -> Option<DayRule> {
    let (a, b) = s.split_once('-')?;
    let (open, close) = (parse_hhmm(a)?, parse_hhmm(b)?);
    (open < close).then_some(DayRule::Special { open, close })
}

/// The exchanges a holidays line may name.
fn listable() -> Vec<&'static str> {
    Exchange::ALL
        .iter()
        .filter(|e| e.base() == **e)
        .map(|e| e.name())
        .collect()
}
