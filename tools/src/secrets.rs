//! `--secrets-file FILE` (also `--credentials-file FILE`): API keys and broker tokens from a file,
//! so they appear neither in the process table (`/proc/PID/cmdline`, as flags do) nor in the
//! environment of every child process. `serve` reads the broker tokens in it again while it runs
//! (`gateway_cmd::credentials`).
//!
//! The file holds `NAME=value` lines with the same names as the environment variables
//! (`TICKWIRE_API_KEYS`, `TICKWIRE_KITE_ACCESS_TOKEN`, …; `#` starts a comment line), the format
//! of systemd's `EnvironmentFile` and Docker's `--env-file`. A flag wins over the environment,
//! which wins over the file. An unknown name is an error naming the line, so a typo cannot leave
//! a token silently unset.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// The names [`load`] took from the file (those the environment did not already set).
static FROM_FILE: OnceLock<Vec<String>> = OnceLock::new();

/// The names a secrets file may set.
pub const NAMES: [&str; 16] = [
    "TICKWIRE_API_KEYS",
    "TICKWIRE_API_KEY_PEPPER",
    "TICKWIRE_API_KEY",
    "TICKWIRE_KITE_API_KEY",
    "TICKWIRE_KITE_ACCESS_TOKEN",
    "TICKWIRE_UPSTOX_ACCESS_TOKEN",
    "TICKWIRE_FYERS_ACCESS_TOKEN",
    "TICKWIRE_ANGEL_API_KEY",
    "TICKWIRE_ANGEL_CLIENT_CODE",
    "TICKWIRE_ANGEL_JWT",
    "TICKWIRE_ANGEL_FEED_TOKEN",
    "TICKWIRE_DHAN_CLIENT_ID",
    "TICKWIRE_DHAN_ACCESS_TOKEN",
    "TICKWIRE_NOREN_USER",
    "TICKWIRE_NOREN_ACCOUNT",
    "TICKWIRE_NOREN_TOKEN",
];

/// Parses a secrets file's text: `(name, value)` pairs, or the first bad line.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected NAME=value", i + 1));
        };
        let name = name.trim();
        if !NAMES.contains(&name) {
            return Err(format!(
                "line {}: unknown name {name:?} (known: {})",
                i + 1,
                NAMES.join(", ")
            ));
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// The value of `--secrets-file` (or its alias `--credentials-file`) in `args`, if given (read
/// before the flags are parsed, since the file supplies values of required flags).
pub fn flag(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        for f in ["--secrets-file", "--credentials-file"] {
            if a == f {
                return it.next().cloned();
            }
            if let Some(v) = a.strip_prefix(f).and_then(|v| v.strip_prefix('=')) {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// Reads and parses the file at `path` into a map (the last line of a name wins), without
/// touching the environment: what a reload uses.
pub fn read(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let what = || format!("secrets file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", what()))?;
    let pairs = parse(&text).map_err(|e| format!("{}: {e}", what()))?;
    Ok(pairs.into_iter().collect())
}

/// True when [`load`] set `name` from the file (the environment had no value for it), so the
/// environment's value of `name` is the file's, not the operator's environment.
pub fn loaded_from_file(name: &str) -> bool {
    FROM_FILE.get().is_some_and(|n| n.iter().any(|x| x == name))
}

/// Loads `path` into the environment, keeping any variable already set. Call before any thread
/// starts. Returns a warning to print when the file is readable by other users.
pub fn load(path: &Path) -> Result<Option<String>, String> {
    let what = || format!("secrets file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", what()))?;
    let pairs = parse(&text).map_err(|e| format!("{}: {e}", what()))?;
    let mut from_file = Vec::new();
    for (name, value) in pairs {
        if std::env::var_os(&name).is_none() || from_file.contains(&name) {
            std::env::set_var(&name, value);
            from_file.push(name);
        }
    }
    let _ = FROM_FILE.set(from_file);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode());
    Ok((mode & 0o077 != 0).then(|| {
        format!(
            "{} is readable by other users (mode {:o}); chmod 600 it",
            what(),
            mode & 0o777
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let t = "# tokens\n\nTICKWIRE_API_KEYS=k1,k2\nexport TICKWIRE_KITE_ACCESS_TOKEN=\"a b\"\n";
        assert_eq!(
            parse(t).unwrap(),
            vec![
                ("TICKWIRE_API_KEYS".into(), "k1,k2".into()),
                ("TICKWIRE_KITE_ACCESS_TOKEN".into(), "a b".into())
            ]
        );
        let e = parse("TICKWIRE_KITE_TOKEN=x").unwrap_err();
        assert!(
            e.starts_with("line 1: unknown name \"TICKWIRE_KITE_TOKEN\""),
            "{e}"
        );
        assert_eq!(
            parse("\njust a token").unwrap_err(),
            "line 2: expected NAME=value"
        );
    }

    #[test]
    fn the_flag_is_found_before_parsing() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            flag(&a(&["serve", "--secrets-file", "/s"])),
            Some("/s".into())
        );
        assert_eq!(flag(&a(&["serve", "--secrets-file=/t"])), Some("/t".into()));
        assert_eq!(
            flag(&a(&["serve", "--credentials-file", "/c"])),
            Some("/c".into())
        );
        assert_eq!(
            flag(&a(&["serve", "--credentials-file=/d"])),
            Some("/d".into())
        );
        assert_eq!(flag(&a(&["serve", "--", "--secrets-file", "/s"])), None);
    }
}
