//! Fetching an instrument master: from an `http(s)://` URL or a file, gunzipped when it is gzip
//! (Upstox publishes `complete.json.gz`, served as `application/gzip`, not as a content encoding).

use std::io::Read;

/// Why a master could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// Fetching, reading or unpacking failed.
    #[error("instrument master {source_name}: {msg}")]
    Load {
        /// URL or path.
        source_name: String,
        /// What went wrong.
        msg: String,
    },
    /// The content is not what the broker publishes.
    #[error("instrument master {source_name}: {msg}")]
    Format {
        /// URL or path.
        source_name: String,
        /// What was wrong, with the line or entry.
        msg: String,
    },
}

impl MasterError {
    /// A format error for `source`.
    pub fn format(source: &str, msg: impl Into<String>) -> Self {
        MasterError::Format {
            source_name: source.to_owned(),
            msg: msg.into(),
        }
    }

    /// What went wrong, without the source's name.
    pub fn message(&self) -> &str {
        match self {
            MasterError::Load { msg, .. } | MasterError::Format { msg, .. } => msg,
        }
    }
}

/// Largest master accepted (Upstox's complete file is ~56 MB unpacked).
const MAX_BYTES: u64 = 512 << 20;

/// The bytes of `source` (URL or path), gunzipped if they start with gzip's magic.
pub fn fetch(source: &str) -> Result<Vec<u8>, MasterError> {
    let err = |msg: String| MasterError::Load {
        source_name: source.to_owned(),
        msg,
    };
    let raw = if source.starts_with("http://") || source.starts_with("https://") {
        let mut resp = ureq::get(source).call().map_err(|e| err(e.to_string()))?;
        resp.body_mut()
            .with_config()
            .limit(MAX_BYTES)
            .read_to_vec()
            .map_err(|e| err(e.to_string()))?
    } else {
        std::fs::read(source).map_err(|e| err(e.to_string()))?
    };
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_BYTES)
            .read_to_end(&mut out)
            .map_err(|e| err(format!("gunzip: {e}")))?;
        return Ok(out);
    }
    Ok(raw)
}

/// The text of `source` (see [`fetch`]); anything but UTF-8 is a load error.
pub fn fetch_text(source: &str) -> Result<String, MasterError> {
    String::from_utf8(fetch(source)?).map_err(|e| MasterError::Load {
        source_name: source.to_owned(),
        msg: format!("not UTF-8: {e}"),
    })
}

/// `epoch ms` → the (year, month, day) of that instant in India (UTC+5:30), where every expiry
/// is dated.
pub fn ist_date(epoch_ms: i64) -> (i64, u32, u32) {
    let days = epoch_ms.saturating_add(19_800_000).div_euclid(86_400_000);
    tickwire_engine::clock::civil_from_days(days)
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm, the inverse of [`ist_date`]'s).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Month abbreviations as OpenAlgo writes them in symbols.
pub const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates_are_indian() {
        // 2025-01-30 23:59:59 IST, Upstox's expiry stamp
        assert_eq!(ist_date(1_738_261_799_000), (2025, 1, 30));
        assert_eq!(ist_date(0), (1970, 1, 1));
        assert_eq!(ist_date(951_782_400_000), (2000, 2, 29)); // 2000-02-29 00:00 UTC
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2025, 1, 30), (2026, 12, 29)] {
            assert_eq!(ist_date(days_from_civil(y, m, d) * 86_400_000), (y, m, d));
        }
    }

    #[test]
    fn gzip_is_unpacked_and_plain_passes() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let (gz, plain) = (dir.path().join("a.gz"), dir.path().join("a.txt"));
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"[1,2]").unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        std::fs::write(&plain, b"[3]").unwrap();
        assert_eq!(fetch(gz.to_str().unwrap()).unwrap(), b"[1,2]");
        assert_eq!(fetch(plain.to_str().unwrap()).unwrap(), b"[3]");
        assert!(fetch("/nonexistent/master").is_err());
    }
}
