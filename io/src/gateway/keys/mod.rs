//! API keys: the keys file `tickwire keys` manages (Argon2id hashes with a server-side pepper),
//! and what the client IO thread needs to authenticate against it without ever running Argon2
//! itself (`docs/keys.md`).
//!
//! - [`file`](mod@file): the TOML format, atomic writes, the "last used" sidecar.
//! - [`secret`]: key generation (OS random source), hashing, the pepper fingerprint.
//! - [`verifier`]: the thread that runs Argon2 and reloads the file.
//! - [`cache`] and [`limiter`]: verified keys, and failed attempts per remote address.
//! - [`Auth`] (here): the IO thread's side, tying them together with the plain `--api-key` keys.

pub mod cache;
pub mod file;
pub mod limiter;
pub mod secret;
pub mod verifier;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ratelog::RateLog;

pub use cache::AuthCache;
pub use file::{KeyEntry, KeysFile, LastUsed};
pub use limiter::FailureLimiter;
pub use verifier::{Job, KeyStore, Verdict, Verifier};

/// What can go wrong with a keys file or a key.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file cannot be read.
    #[error("keys file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid keys file.
    #[error("keys file {path}: {msg}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column for TOML errors).
        msg: String,
    },
    /// The file (or its lock or sidecar) cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's keys were made with another pepper (or with one, and none is given now).
    #[error(
        "keys file {0}: its keys were made with a different pepper than the one given \
         (--api-key-pepper / TICKWIRE_API_KEY_PEPPER; none given counts as a pepper too): \
         no key of it could be verified; use the pepper it was created with"
    )]
    Pepper(PathBuf),
    /// `keys add` with a name already in the file.
    #[error("a key named {0:?} exists already; revoke it first or choose another name")]
    Exists(String),
    /// `keys revoke` with a name not in the file.
    #[error("no key named {0:?}")]
    NoSuchKey(String),
    /// A name outside the allowed characters.
    #[error("invalid key name {0:?}: use 1 to 64 of A-Z a-z 0-9 . _ -")]
    Name(String),
    /// The OS random source failed.
    #[error("OS random source: {0}")]
    Random(String),
    /// Hashing or encoding failed.
    #[error("hashing: {0}")]
    Hash(String),
}

/// The answer to an authentication attempt, as far as the IO thread can give it at once.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// A valid key: its name, and whether it comes from the keys file (and so can be revoked).
    Valid {
        /// `api-key-N` for the N-th `--api-key`, else the keys file's name.
        name: Arc<str>,
        /// True for a keys-file key.
        from_file: bool,
    },
    /// Not a valid key.
    Invalid,
    /// Handed to the verifier thread: a [`Verdict`] will follow.
    Pending,
    /// The verifier's queue is full: try again.
    Busy,
}

/// The client IO thread's authentication state: plain keys, the verifier, the cache of verified
/// keys, and the failures per address.
#[derive(Debug)]
pub struct Auth {
    /// `--api-key` keys and their names.
    plain: Vec<(String, Arc<str>)>,
    verifier: Option<Verifier>,
    cache: AuthCache,
    limiter: FailureLimiter,
    /// Failed attempts allowed on one connection before it is closed (0: no limit).
    pub max_attempts: u32,
    /// Keys-file generation the cache and `names` belong to.
    generation: u64,
    names: Arc<HashSet<Arc<str>>>,
    /// Connections closed for failed authentications, said at most once per interval.
    refusals: RateLog,
}

impl Auth {
    /// Plain keys (named `api-key-1`, … in order), the verifier of a keys file if there is one,
    /// and the limits.
    pub fn new(
        api_keys: &[String],
        verifier: Option<Verifier>,
        max_attempts: u32,
        failures_per_minute: u32,
    ) -> Self {
        let plain = api_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), Arc::from(format!("api-key-{}", i + 1))))
            .collect();
        let (generation, names) = verifier
            .as_ref()
            .map_or((0, Arc::default()), |v| (v.generation(), v.names()));
        Self {
            plain,
            verifier,
            cache: AuthCache::default(),
            limiter: FailureLimiter::new(failures_per_minute),
            max_attempts,
            generation,
            names,
            refusals: RateLog::new("client auth: connection closed", Duration::from_secs(10)),
        }
    }

    /// Logs (rate-limited) a connection closed for failed authentications.
    pub fn refused(&mut self, detail: impl FnOnce() -> String) {
        if let Some(line) = self.refusals.hit(detail, Instant::now()) {
            tracing::warn!("{line}");
        }
    }

    /// The count of refusals not yet logged, once due (from the IO thread's timers).
    pub fn timers(&mut self, now: Instant) {
        if let Some(line) = self.refusals.due(now) {
            tracing::warn!("{line}");
        }
    }

    /// The name of a plain key equal to `key`. Every byte of every key is compared, so timing
    /// says nothing about how much of a key matched.
    fn plain(&self, key: &str) -> Option<Arc<str>> {
        let mut found = None;
        for (k, name) in &self.plain {
            let same = k.len() == key.len()
                && k.bytes()
                    .zip(key.bytes())
                    .fold(0u8, |d, (a, b)| d | (a ^ b))
                    == 0;
            if same && found.is_none() {
                found = Some(name.clone());
            }
        }
        found
    }

    /// Checks `key` for connection (`consumer`, `serial`): a plain key or a cached keys-file key
    /// is answered at once; any other key of the generated shape goes to the verifier.
    pub fn check(&mut self, key: &str, consumer: u32, serial: u64) -> Check {
        if let Some(name) = self.plain(key) {
            return Check::Valid {
                name,
                from_file: false,
            };
        }
        let Some(v) = &self.verifier else {
            return Check::Invalid;
        };
        if secret::key_id(key).is_none() {
            return Check::Invalid;
        }
        if let Some(name) = self.cache.get(key) {
            v.used(name.clone());
            return Check::Valid {
                name,
                from_file: true,
            };
        }
        let job = Job {
            consumer,
            serial,
            key: key.to_string(),
        };
        match v.submit(job) {
            Ok(()) => Check::Pending,
            Err(verifier::Busy) => Check::Busy,
        }
    }

    /// A verdict from the verifier, if one is ready, with the key's name if it is valid now.
    pub fn verdict(&mut self) -> Option<(Verdict, Option<Arc<str>>)> {
        let v = self.verifier.as_ref()?.verdict()?;
        let name = match &v.name {
            // Checked against the file as this thread knows it, or a newer one (then the cache
            // is cleared when this thread sees that reload): cache it.
            Some(n) if v.generation >= self.generation => {
                self.cache.insert(v.digest, n.clone());
                Some(n.clone())
            }
            // Checked before a reload this thread has seen: valid only if the name is still in
            // the file.
            Some(n) => self.names.contains(n).then(|| n.clone()),
            None => None,
        };
        Some((v, name))
    }

    /// True when a verdict is waiting.
    pub fn has_verdicts(&self) -> bool {
        self.verifier.as_ref().is_some_and(Verifier::has_verdicts)
    }

    /// After a reload of the keys file: the names valid now (the cache is cleared). None when
    /// nothing was reloaded since the last call.
    pub fn reloaded(&mut self) -> Option<Arc<HashSet<Arc<str>>>> {
        let v = self.verifier.as_ref()?;
        let g = v.generation();
        if g == self.generation {
            return None;
        }
        self.generation = g;
        self.names = v.names();
        self.cache.clear();
        Some(self.names.clone())
    }

    /// Seconds until `addr` may authenticate again, or None when it may now.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<u64> {
        self.limiter.blocked(addr, now)
    }

    /// Counts a failed authentication from `addr`.
    pub fn failed(&mut self, addr: IpAddr, now: Instant) {
        self.limiter.failed(addr, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_named_in_order() {
        let mut a = Auth::new(&["k1".into(), "k2".into()], None, 3, 20);
        let want = |n: &str| Check::Valid {
            name: n.into(),
            from_file: false,
        };
        assert_eq!(a.check("k2", 0, 0), want("api-key-2"));
        assert_eq!(a.check("k1", 0, 0), want("api-key-1"));
        assert_eq!(a.check("k3", 0, 0), Check::Invalid);
        assert_eq!(
            a.check("tw_0123abcd_x", 0, 0),
            Check::Invalid,
            "no keys file"
        );
        assert!(a.reloaded().is_none());
    }

    /// The next verdict, waiting for it.
    fn verdict(a: &mut Auth) -> (Verdict, Option<Arc<str>>) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = a.verdict() {
                return v;
            }
            assert!(Instant::now() < end, "no verdict");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn file_keys_are_verified_once_then_cached_until_a_reload() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.toml");
        let mut f = KeysFile::new(b"pep").unwrap();
        let key = f.add("desk", b"pep").unwrap();
        f.save(&p).unwrap();
        let reload = Arc::new(AtomicBool::new(false));
        let r = reload.clone();
        let bell = Arc::new(tickwire_engine::doorbell::Doorbell::new(|| {}));
        let v = Verifier::spawn(
            KeyStore::open(&p, b"pep").unwrap(),
            Box::new(move || r.swap(false, Ordering::Relaxed)),
            bell,
        )
        .unwrap();
        let mut a = Auth::new(&[], Some(v), 3, 20);
        let valid = Check::Valid {
            name: "desk".into(),
            from_file: true,
        };
        assert_eq!(a.check(&key, 5, 9), Check::Pending);
        let (v, name) = verdict(&mut a);
        assert_eq!(
            (v.consumer, v.serial, name.as_deref()),
            (5, 9, Some("desk"))
        );
        // Cached: answered at once, however often.
        for _ in 0..100 {
            assert_eq!(a.check(&key, 5, 10), valid);
        }
        assert!(!a.has_verdicts());
        let wrong = format!("{key}x");
        assert_eq!(a.check(&wrong, 6, 1), Check::Pending);
        assert_eq!(verdict(&mut a).1, None);
        assert_eq!(
            a.check(&wrong, 6, 2),
            Check::Pending,
            "failures are not cached"
        );
        assert_eq!(verdict(&mut a).1, None);
        // Revoked: the reload empties the cache, and the key goes to the verifier again.
        f.revoke("desk").unwrap();
        f.save(&p).unwrap();
        reload.store(true, Ordering::Relaxed);
        let end = Instant::now() + Duration::from_secs(20);
        let names = loop {
            if let Some(n) = a.reloaded() {
                break n;
            }
            assert!(Instant::now() < end, "no reload");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(names.is_empty());
        assert_eq!(a.check(&key, 5, 11), Check::Pending);
        assert_eq!(verdict(&mut a).1, None);
    }
}
