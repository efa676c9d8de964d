//! The keys file (TOML, `docs/keys.md`) and its "last used" sidecar.
//!
//! The file holds hashes only. `tickwire keys` is its only writer; it writes a whole new file
//! next to it and renames it over the old one (mode 0600), so a reader (the gateway reloading)
//! sees the old file or the new one, never half of one. Writers take a lock file first, so two
//! `keys add` at once cannot lose a key. The gateway never writes it: what it learns at run time
//! (when each key was last used) goes to the sidecar `<file>.last-used`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tickwire_engine::clock::{now_ns, rfc3339_utc};

use super::{secret, KeysError};

/// The format version this build reads and writes.
pub const FORMAT: u32 = 1;

/// Most bytes of a key name.
const MAX_NAME: usize = 64;

/// One key as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The name it was added under (`keys add NAME`), unique in the file.
    pub name: String,
    /// The key's public id (the part after `tw_`), unique in the file.
    pub id: String,
    /// Argon2id PHC string of the whole key, made with the pepper.
    pub hash: String,
    /// When it was added, RFC 3339 UTC.
    pub created: String,
}

/// A keys file's contents.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// [`FORMAT`].
    pub format: u32,
    /// Fingerprint of the pepper every key of the file was hashed with (`secret::fingerprint`):
    /// lets `keys add` refuse a different pepper and the gateway say so, without storing it.
    pub pepper_check: String,
    /// The keys, in the order they were added.
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyEntry>,
}

const HEADER: &str = "\
# tickwire API keys (docs/keys.md). Managed by `tickwire keys add|list|revoke`; it holds only
# Argon2id hashes made with the server's pepper, never a key. The gateway re-reads it when it
# changes or on SIGHUP.
";

/// True for a usable key name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl KeysFile {
    /// An empty file for keys made with `pepper`.
    pub fn new(pepper: &[u8]) -> Result<Self, KeysError> {
        Ok(Self {
            format: FORMAT,
            pepper_check: secret::fingerprint(pepper)?,
            keys: Vec::new(),
        })
    }

    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeysError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::parse(&text).map_err(|msg| KeysError::Invalid {
            path: path.to_path_buf(),
            msg,
        })
    }

    /// Parses and checks a file's text; the error says what is wrong (TOML errors carry the
    /// line and column).
    pub fn parse(text: &str) -> Result<Self, String> {
        let f: Self = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        f.check()?;
        Ok(f)
    }

    fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format = {} is not one this build reads (it reads {FORMAT})",
                self.format
            ));
        }
        if !secret::is_argon2id(&self.pepper_check) {
            return Err("pepper_check is not an Argon2id PHC string".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            let at = format!("key {} ({:?})", i + 1, k.name);
            if !valid_name(&k.name) {
                return Err(format!(
                    "{at}: a name is 1 to {MAX_NAME} of A-Z a-z 0-9 . _ -"
                ));
            }
            if !names.insert(k.name.as_str()) {
                return Err(format!("{at}: the name is used twice"));
            }
            if !secret::is_id(&k.id) {
                return Err(format!("{at}: id must be 8 lowercase hex digits"));
            }
            if !ids.insert(k.id.as_str()) {
                return Err(format!("{at}: the id is used twice"));
            }
            if !secret::is_argon2id(&k.hash) {
                return Err(format!("{at}: hash is not an Argon2id PHC string"));
            }
        }
        Ok(())
    }

    /// True when the file's keys were made with `pepper`.
    pub fn pepper_matches(&self, pepper: &[u8]) -> bool {
        secret::pepper_matches(&self.pepper_check, pepper)
    }

    /// The file as TOML, with a header saying what it is.
    pub fn to_toml(&self) -> Result<String, KeysError> {
        let body = toml::to_string(self).map_err(|e| KeysError::Hash(e.to_string()))?;
        Ok(format!("{HEADER}\n{body}"))
    }

    /// Adds a key named `name` made with `pepper`; returns the key (the only time it exists in
    /// the clear).
    pub fn add(&mut self, name: &str, pepper: &[u8]) -> Result<String, KeysError> {
        if !valid_name(name) {
            return Err(KeysError::Name(name.to_string()));
        }
        if self.keys.iter().any(|k| k.name == name) {
            return Err(KeysError::Exists(name.to_string()));
        }
        // Ids are 32 random bits: a clash is rare, and simply drawn again.
        let (id, key) = loop {
            let (id, key) = secret::generate()?;
            if self.keys.iter().all(|k| k.id != id) {
                break (id, key);
            }
        };
        self.keys.push(KeyEntry {
            name: name.to_string(),
            id,
            hash: secret::hash(key.as_bytes(), pepper)?,
            created: rfc3339_utc(now_ns()),
        });
        Ok(key)
    }

    /// Removes the key named `name`.
    pub fn revoke(&mut self, name: &str) -> Result<(), KeysError> {
        let before = self.keys.len();
        self.keys.retain(|k| k.name != name);
        if self.keys.len() == before {
            return Err(KeysError::NoSuchKey(name.to_string()));
        }
        Ok(())
    }

    /// Writes the file atomically (a temp file beside it, mode 0600, renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), KeysError> {
        write_atomic(path, self.to_toml()?.as_bytes())
    }
}

/// Holds `<path>.lock` locked (exclusively) until dropped: one writer of the keys file at a time.
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Waits for and takes the lock of `path`.
    pub fn take(path: &Path) -> Result<Self, KeysError> {
        let lock = with_suffix(path, ".lock");
        let err = |e| KeysError::Write {
            path: lock.clone(),
            source: e,
        };
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock)
            .map_err(err)?;
        f.lock().map_err(err)?;
        Ok(Self { _file: f })
    }
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `bytes` to a temp file beside `path` (mode 0600), syncs it, and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeysError> {
    let tmp = with_suffix(path, &format!(".tmp.{}", std::process::id()));
    let err = |e| KeysError::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let res = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(err)
}

/// The "last used" sidecar of a keys file: key name → RFC 3339 UTC time, written by the gateway.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastUsed {
    /// By key name.
    #[serde(default)]
    pub last_used: BTreeMap<String, String>,
}

impl LastUsed {
    /// The sidecar's path for keys file `keys`.
    pub fn path(keys: &Path) -> PathBuf {
        with_suffix(keys, ".last-used")
    }

    /// Reads the sidecar of `keys` (empty when it is missing or unreadable: it is informational).
    pub fn load(keys: &Path) -> Self {
        std::fs::read_to_string(Self::path(keys))
            .ok()
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Writes the sidecar of `keys` atomically.
    pub fn save(&self, keys: &Path) -> Result<(), KeysError> {
        let body = toml::to_string(self).map_err(|e| KeysError::Hash(e.to_string()))?;
        let text = format!(
            "# Written by the tickwire gateway: when each API key last authenticated.\n{body}"
        );
        write_atomic(&Self::path(keys), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_save_load_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.toml");
        let mut f = KeysFile::new(b"pep").unwrap();
        let k1 = f.add("desk-1", b"pep").unwrap();
        let k2 = f.add("desk_2.b", b"pep").unwrap();
        assert_ne!(k1, k2);
        assert!(matches!(f.add("desk-1", b"pep"), Err(KeysError::Exists(_))));
        assert!(matches!(f.add("bad name", b"pep"), Err(KeysError::Name(_))));
        f.save(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(&k1) && !text.contains(&k2), "{text}");
        assert!(text.starts_with("# tickwire API keys"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut g = KeysFile::load(&p).unwrap();
        assert_eq!(g, f);
        assert!(g.pepper_matches(b"pep"));
        assert!(!g.pepper_matches(b""));
        g.revoke("desk-1").unwrap();
        assert!(matches!(g.revoke("desk-1"), Err(KeysError::NoSuchKey(_))));
        assert_eq!(g.keys.len(), 1);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let good = KeysFile::new(b"").unwrap().to_toml().unwrap();
        assert!(KeysFile::parse(&good).is_ok());
        let fp = KeysFile::new(b"").unwrap().pepper_check;
        let h = secret::hash(b"k", b"").unwrap();
        let entry = |name: &str, id: &str, hash: &str| {
            format!(
                "[[key]]\nname = \"{name}\"\nid = \"{id}\"\nhash = \"{hash}\"\ncreated = \"x\"\n"
            )
        };
        let head = format!("format = 1\npepper_check = \"{fp}\"\n");
        let cases = [
            ("format = 1\n".to_string(), "missing field `pepper_check`"),
            (format!("{head}colour = 1\n"), "unknown field `colour`"),
            (
                format!("format = 2\npepper_check = \"{fp}\"\n"),
                "format = 2",
            ),
            ("format = \"one\"\n".to_string(), "invalid type"),
            ("format = 1\npepper_check = \"x\"\n".into(), "pepper_check"),
            (
                format!("{head}{}", entry("a b", "0123abcd", &h)),
                "a name is",
            ),
            (
                format!(
                    "{head}{}{}",
                    entry("a", "0123abcd", &h),
                    entry("a", "0123abce", &h)
                ),
                "name is used twice",
            ),
            (
                format!(
                    "{head}{}{}",
                    entry("a", "0123abcd", &h),
                    entry("b", "0123abcd", &h)
                ),
                "id is used twice",
            ),
            (format!("{head}{}", entry("a", "xyz", &h)), "id must be"),
            (
                format!("{head}{}", entry("a", "0123abcd", "plain")),
                "hash is not",
            ),
        ];
        for (text, want) in cases {
            let e = KeysFile::parse(&text).unwrap_err();
            assert!(e.contains(want), "{text}\n→ {e}\n(wanted {want:?})");
        }
        let e = KeysFile::parse("format = 1\npepper_check = \n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn last_used_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.toml");
        assert_eq!(LastUsed::load(&p), LastUsed::default());
        let mut u = LastUsed::default();
        u.last_used
            .insert("desk-1".into(), "2026-12-03T09:00:00.000Z".into());
        u.save(&p).unwrap();
        assert_eq!(LastUsed::load(&p), u);
    }
}
