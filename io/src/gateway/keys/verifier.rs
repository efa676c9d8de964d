//! The verifier thread: Argon2 runs here, never on the client IO thread (a verification costs
//! milliseconds; the other clients must not wait for it).
//!
//! The IO thread hands it a key through a bounded queue and goes on serving everyone else; the
//! verdict comes back through a channel, and the IO thread's doorbell is rung so a sleeping IO
//! thread wakes at once. The same thread polls the keys file for changes (and SIGHUP) about once
//! a second, reloads it, and writes the "last used" sidecar at most once a minute.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tickwire_engine::clock::{now_ns, rfc3339_utc};
use tickwire_engine::doorbell::Doorbell;

use super::file::{KeysFile, LastUsed};
use super::{secret, KeysError};

/// Verifications waiting at most; past it a client is told the server is busy.
const QUEUE: usize = 256;
/// How often the keys file is looked at.
const RELOAD_POLL: Duration = Duration::from_secs(1);
/// The "last used" sidecar is written at most this often.
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// The keys of one keys file, by public id.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    pepper: Vec<u8>,
    /// Id → (name, Argon2id PHC string).
    by_id: HashMap<String, (Arc<str>, String)>,
}

impl KeyStore {
    /// Reads `path`, checking that its keys were made with `pepper` (empty: none).
    pub fn open(path: &Path, pepper: &[u8]) -> Result<Self, KeysError> {
        let mut s = Self {
            path: path.to_path_buf(),
            pepper: pepper.to_vec(),
            by_id: HashMap::new(),
        };
        s.reload()?;
        Ok(s)
    }

    /// The keys file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Reads the file again; on an error the keys held stay as they were.
    pub fn reload(&mut self) -> Result<(), KeysError> {
        let f = KeysFile::load(&self.path)?;
        if !f.pepper_matches(&self.pepper) {
            return Err(KeysError::Pepper(self.path.clone()));
        }
        self.by_id = f
            .keys
            .into_iter()
            .map(|k| (k.id, (Arc::from(k.name), k.hash)))
            .collect();
        Ok(())
    }

    /// Every key name held.
    pub fn names(&self) -> HashSet<Arc<str>> {
        self.by_id.values().map(|(n, _)| n.clone()).collect()
    }

    /// The name of `key`, if it is one of the file's (one Argon2 run at most).
    pub fn verify(&self, key: &str) -> Option<Arc<str>> {
        let (name, phc) = self.by_id.get(secret::key_id(key)?)?;
        secret::verify(key.as_bytes(), phc, &self.pepper).then(|| name.clone())
    }
}

/// A key to verify for one connection.
#[derive(Debug)]
pub struct Job {
    /// The connection's consumer id.
    pub consumer: u32,
    /// The connection's serial (a later connection on the same slot has another).
    pub serial: u64,
    /// The key presented.
    pub key: String,
}

/// The answer to a [`Job`].
#[derive(Debug)]
pub struct Verdict {
    /// [`Job::consumer`].
    pub consumer: u32,
    /// [`Job::serial`].
    pub serial: u64,
    /// Digest of the key (for the cache).
    pub digest: [u8; 32],
    /// The key's name, or None: not a key of the file.
    pub name: Option<Arc<str>>,
    /// The keys file generation it was checked against.
    pub generation: u64,
}

enum Msg {
    Verify(Job),
    Used(Arc<str>),
}

/// What the verifier publishes for the IO thread after each reload.
#[derive(Debug, Default)]
struct Published {
    generation: AtomicU64,
    names: Mutex<Arc<HashSet<Arc<str>>>>,
    /// Verdicts sent and not yet taken (the IO thread checks it before sleeping).
    ready: AtomicUsize,
}

/// The IO thread's handle on the verifier thread; dropping it stops the thread (after it writes
/// the "last used" times it holds).
pub struct Verifier {
    jobs: Option<SyncSender<Msg>>,
    verdicts: Receiver<Verdict>,
    published: Arc<Published>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("generation", &self.generation())
            .finish()
    }
}

/// Why a key could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Verifier {
    /// Starts the thread for `store`; `changed` says when to reload (a file watch plus SIGHUP,
    /// polled about once a second), `bell` is rung after each verdict.
    pub fn spawn(
        store: KeyStore,
        changed: Box<dyn FnMut() -> bool + Send>,
        bell: Arc<Doorbell>,
    ) -> io::Result<Self> {
        let (jobs, rx) = mpsc::sync_channel(QUEUE);
        let (tx, verdicts) = mpsc::channel();
        let published = Arc::new(Published::default());
        *lock(&published.names) = Arc::new(store.names());
        let p = published.clone();
        let thread = std::thread::Builder::new()
            .name("tickwire-keys".into())
            .spawn(move || run(store, changed, rx, tx, bell, &p))?;
        Ok(Self {
            jobs: Some(jobs),
            verdicts,
            published,
            thread: Some(thread),
        })
    }

    /// Queues a verification; `Busy` when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), Busy> {
        let Some(jobs) = &self.jobs else {
            return Err(Busy);
        };
        match jobs.try_send(Msg::Verify(job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Notes that `name` authenticated (a cache hit: the verifier did not see it).
    pub fn used(&self, name: Arc<str>) {
        if let Some(jobs) = &self.jobs {
            // Informational: dropped when the queue is full.
            let _ = jobs.try_send(Msg::Used(name));
        }
    }

    /// A verdict, if one is ready.
    pub fn verdict(&self) -> Option<Verdict> {
        // Asked once per pass of the IO loop: an atomic load when nothing is waiting.
        if !self.has_verdicts() {
            return None;
        }
        let v = self.verdicts.try_recv().ok()?;
        self.published.ready.fetch_sub(1, Ordering::AcqRel);
        Some(v)
    }

    /// True when a verdict is waiting (checked before the IO thread sleeps).
    pub fn has_verdicts(&self) -> bool {
        self.published.ready.load(Ordering::Acquire) > 0
    }

    /// Bumped by every successful reload of the keys file.
    pub fn generation(&self) -> u64 {
        self.published.generation.load(Ordering::Acquire)
    }

    /// The key names of the file as last loaded.
    pub fn names(&self) -> Arc<HashSet<Arc<str>>> {
        lock(&self.published.names).clone()
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run(
    mut store: KeyStore,
    mut changed: Box<dyn FnMut() -> bool + Send>,
    rx: Receiver<Msg>,
    tx: mpsc::Sender<Verdict>,
    bell: Arc<Doorbell>,
    published: &Published,
) {
    let mut used = LastUsed::load(store.path());
    let mut unsaved = false;
    let mut saved_at: Option<Instant> = None;
    let mut polled = Instant::now();
    loop {
        let mut stop = false;
        match rx.recv_timeout(RELOAD_POLL) {
            Ok(Msg::Verify(job)) => {
                let name = store.verify(&job.key);
                if let Some(n) = &name {
                    used.last_used.insert(n.to_string(), rfc3339_utc(now_ns()));
                    unsaved = true;
                }
                let v = Verdict {
                    consumer: job.consumer,
                    serial: job.serial,
                    digest: secret::digest(&job.key),
                    name,
                    generation: published.generation.load(Ordering::Acquire),
                };
                published.ready.fetch_add(1, Ordering::AcqRel);
                if tx.send(v).is_err() {
                    stop = true;
                }
                bell.ring();
            }
            Ok(Msg::Used(n)) => {
                used.last_used.insert(n.to_string(), rfc3339_utc(now_ns()));
                unsaved = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stop = true,
        }
        if polled.elapsed() >= RELOAD_POLL {
            polled = Instant::now();
            if changed() {
                reload(&mut store, published);
            }
        }
        let due = saved_at.is_none_or(|t| t.elapsed() >= LAST_USED_EVERY);
        if unsaved && (due || stop) {
            // Only names still in the file: a revoked key's time goes with it.
            let names = store.names();
            used.last_used.retain(|n, _| names.contains(n.as_str()));
            if let Err(e) = used.save(store.path()) {
                tracing::warn!("API keys: cannot record last-used times: {e}");
            }
            unsaved = false;
            saved_at = Some(Instant::now());
        }
        if stop {
            return;
        }
    }
}

fn reload(store: &mut KeyStore, published: &Published) {
    let before = store.len();
    match store.reload() {
        Ok(()) => {
            *lock(&published.names) = Arc::new(store.names());
            published.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(
                "API keys: reloaded {} ({} keys, {before} before)",
                store.path().display(),
                store.len()
            );
        }
        Err(e) => tracing::error!("API keys: {e}; keeping the {before} keys loaded before"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(dir: &Path, pepper: &[u8], names: &[&str]) -> (PathBuf, Vec<String>) {
        let p = dir.join("keys.toml");
        let mut f = KeysFile::new(pepper).unwrap();
        let keys = names.iter().map(|n| f.add(n, pepper).unwrap()).collect();
        f.save(&p).unwrap();
        (p, keys)
    }

    #[test]
    fn verifies_off_thread_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let (p, keys) = store_with(dir.path(), b"pep", &["a", "b"]);
        assert!(matches!(
            KeyStore::open(&p, b"other"),
            Err(KeysError::Pepper(_))
        ));
        let store = KeyStore::open(&p, b"pep").unwrap();
        let reload = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = reload.clone();
        let changed = Box::new(move || r.swap(false, Ordering::Relaxed));
        let rung = Arc::new(AtomicUsize::new(0));
        let r2 = rung.clone();
        let bell = Arc::new(Doorbell::new(move || {
            r2.fetch_add(1, Ordering::Relaxed);
        }));
        let v = Verifier::spawn(store, changed, bell).unwrap();
        let wait = |v: &Verifier| {
            let end = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(x) = v.verdict() {
                    return x;
                }
                assert!(Instant::now() < end, "no verdict");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        for (i, (key, want)) in [(&keys[0], Some("a")), (&"tw_00000000_x".to_string(), None)]
            .into_iter()
            .enumerate()
        {
            v.submit(Job {
                consumer: i as u32,
                serial: 7,
                key: key.clone(),
            })
            .unwrap();
            let got = wait(&v);
            assert_eq!((got.consumer, got.serial), (i as u32, 7));
            assert_eq!(got.name.as_deref(), want);
            assert_eq!(got.digest, secret::digest(key));
            assert!(!v.has_verdicts());
        }
        assert_eq!(v.generation(), 0);
        let mut f = KeysFile::load(&p).unwrap();
        f.revoke("a").unwrap();
        f.save(&p).unwrap();
        reload.store(true, Ordering::Relaxed);
        let end = Instant::now() + Duration::from_secs(20);
        while v.generation() == 0 {
            assert!(Instant::now() < end, "no reload");
            std::thread::sleep(Duration::from_millis(20));
        }
        let names = v.names();
        assert!(!names.contains("a") && names.contains("b"));
        v.submit(Job {
            consumer: 0,
            serial: 8,
            key: keys[0].clone(),
        })
        .unwrap();
        assert_eq!(wait(&v).name, None, "revoked");
        v.submit(Job {
            consumer: 0,
            serial: 9,
            key: keys[1].clone(),
        })
        .unwrap();
        assert_eq!(wait(&v).name.as_deref(), Some("b"));
        drop(v);
        let used = LastUsed::load(&p);
        let names: Vec<&String> = used.last_used.keys().collect();
        assert_eq!(names, ["b"], "a was revoked");
    }
}
