//! A config file error as the operator sees it: the file, the line, the key, what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// What is wrong with a config file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path (`limits.max_subscriptions`, `feed[1].access_token`), when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ", line {l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ", key {k}")?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error not tied to a place in the file (unreadable file, …).
    pub fn whole(file: &Path, msg: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            key: None,
            msg: msg.into(),
        }
    }

    /// An error about `key`, at the line where the file sets it (found by scanning its table headers).
    pub fn at(file: &Path, text: &str, key: &str, msg: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: locate(text, key),
            key: Some(key.to_string()),
            msg: msg.into(),
        }
    }

    /// A parse or type error from `toml`, with serde's path to the value (`None`: a syntax
    /// error, before any key).
    pub fn from_toml(file: &Path, text: &str, e: &toml::de::Error, path: Option<String>) -> Self {
        let msg = e.message().trim().to_string();
        let mut key = path.filter(|p| p != ".");
        // serde reports a missing or unknown key at the table holding it: name the key itself.
        // (An unknown key's path already ends with it; a missing one's does not.)
        if let Some(field) = named_field(&msg) {
            key = Some(match key {
                Some(k) if k == field || k.ends_with(&format!(".{field}")) => k,
                Some(k) => format!("{k}.{field}"),
                None => field.to_string(),
            });
        }
        let line = e
            .span()
            .map(|s| line_of(text, s.start))
            .or_else(|| key.as_deref().and_then(|k| locate(text, k)));
        Self {
            file: file.to_path_buf(),
            line,
            key,
            msg,
        }
    }
}

/// The field a serde "missing field `x`" / "unknown field `x`, expected …" message names.
fn named_field(msg: &str) -> Option<&str> {
    let rest = msg
        .strip_prefix("missing field `")
        .or_else(|| msg.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// The 1-based line of byte `offset`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line that sets dotted `key` (`engine.idle`, `feed[1].token`, `limits.per_key.desk.x`) in
/// a file written the usual way (`[table]` / `[[array]]` headers, then `key = value` lines), or
/// the line of its table's header when the key itself is not there. Used for errors found after
/// deserializing, which carry no span.
pub fn locate(text: &str, key: &str) -> Option<usize> {
    // Split `feed[1].token` into table `feed`, index 1, key `token`.
    let (table, index, leaf) = match key.split_once('[') {
        Some((t, rest)) => {
            let (i, after) = rest.split_once(']')?;
            let leaf = after.strip_prefix('.').unwrap_or(after);
            (t.to_string(), i.parse::<usize>().ok()?, leaf)
        }
        None => match key.rsplit_once('.') {
            Some((t, k)) => (t.to_string(), 0, k),
            None => (String::new(), 0, key),
        },
    };
    let mut current = String::new();
    // Which `[[table]]` of that name the lines are in (0 for a plain `[table]`).
    let (mut nth, mut count) = (0usize, 0usize);
    let mut header_line = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(h) = line.strip_prefix("[[") {
            current = h.split("]]").next().unwrap_or("").trim().to_string();
            if current == table {
                count += 1;
                nth = count - 1;
            }
        } else if let Some(h) = line.strip_prefix('[') {
            current = h.split(']').next().unwrap_or("").trim().to_string();
            nth = 0;
        }
        let here = current == table && nth == index;
        if here && header_line.is_none() && line.starts_with('[') {
            header_line = Some(n + 1);
        }
        let sets = |k: &str| {
            line.strip_prefix(k)
                .is_some_and(|r| r.trim_start().starts_with('='))
        };
        if here && !leaf.is_empty() && sets(leaf) {
            return Some(n + 1);
        }
        if table.is_empty() && current.is_empty() && sets(leaf) {
            return Some(n + 1);
        }
    }
    // A bare name (`keys`, `feed`) may be a table rather than a top-level key.
    let is_header = |l: &str| {
        let l = l.trim();
        l == format!("[{leaf}]") || l == format!("[[{leaf}]]")
    };
    header_line.or_else(|| {
        table
            .is_empty()
            .then(|| text.lines().position(is_header).map(|n| n + 1))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "credentials_file = \"c\"\n\n[engine]\nidle = \"park\"\n\n[[feed]]\nbroker = \"kite\"\n\n[[feed]]\nbroker = \"upstox\"\naccess_token = \"t\"\n\n[limits.per_key.desk]\nmax_subscriptions = 5\n";

    #[test]
    fn keys_are_found_at_their_lines() {
        assert_eq!(locate(TEXT, "credentials_file"), Some(1));
        assert_eq!(locate(TEXT, "engine.idle"), Some(4));
        assert_eq!(locate(TEXT, "feed[0].broker"), Some(7));
        assert_eq!(locate(TEXT, "feed[1].access_token"), Some(11));
        assert_eq!(locate(TEXT, "feed[1]"), Some(9));
        assert_eq!(locate(TEXT, "feed[1].jwt"), Some(9));
        assert_eq!(
            locate(TEXT, "limits.per_key.desk.max_subscriptions"),
            Some(14)
        );
        assert_eq!(locate(TEXT, "shm.path"), None);
        assert_eq!(locate(TEXT, "engine"), Some(3));
    }

    #[test]
    fn the_message_names_file_line_and_key() {
        let e = ConfigError::at(Path::new("t.toml"), TEXT, "engine.idle", "bad");
        assert_eq!(
            e.to_string(),
            "config file t.toml, line 4, key engine.idle: bad"
        );
        assert_eq!(named_field("missing field `broker`"), Some("broker"));
        assert_eq!(
            named_field("unknown field `prot`, expected one of `a`"),
            Some("prot")
        );
    }
}
