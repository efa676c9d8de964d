//! Replaying a journal (`crate::journal`): every recorded frame through today's broker parsers, in
//! recorded order, with each connection's protocol driven by the recorded events
//! (`conns`), into the router (shm and clients, as if live) or into a caller's collection
//! (export).
//!
//! - [`merge`]: records back in time order across feeds, each feed's own order kept.
//! - `conns`: each recorded connection's protocol and what it carries.
//! - [`Player`]: the catalog read back into the same symbol registry and broker key tables, then
//!   record after record.
//!
//! Determinism: the registry (so every symbol id) comes from the journal's catalog, a symbol's
//! frames reach its parser in the order they were received, with the receive times recorded, so
//! the router gives each symbol the same ticks with the same sequence numbers as the live run.

mod conns;
pub mod merge;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::Arc;

use tickwire_engine::router::Inline;
use tickwire_engine::symbols::SymbolRegistry;
use tickwire_engine::Tick;

use crate::brokers::BrokerConfig;
use crate::feed::protocol::Incoming;
use crate::feed::{FeedStatus, TickSink};
use crate::journal::catalog::{Catalog, CatalogError};
use crate::journal::format::{Kind, FLAG_BINARY};
use crate::journal::read::{run_paths, ReadError, SegmentReader, Segments};
use conns::FeedConns;
use merge::{Merge, Owned};

/// Why a journal cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the journal failed (a missing directory, damage mid-file).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The directory holds no segment.
    #[error("{0}: no journal segments")]
    Empty(PathBuf),
    /// A segment with no catalog: written before journals carried one.
    #[error("{0}: no symbol catalog at the start of the segment (written by an older tickwire?): it cannot be replayed")]
    NoCatalog(PathBuf),
    /// A catalog record that cannot be read.
    #[error("{path}: {source}")]
    Catalog {
        /// The segment.
        path: PathBuf,
        /// Why.
        source: CatalogError,
    },
    /// The gateway restarted with another instrument set within the replayed span.
    #[error("{0}: the gateway was restarted here with other instruments than at the start of the replay; replay the two spans separately (--from/--to)")]
    CatalogChanged(PathBuf),
    /// A feed of a broker this build cannot parse.
    #[error("feed {feed}: broker {name:?} is not one tickwire knows")]
    UnknownBroker {
        /// The feed id.
        feed: u8,
        /// Its recorded name.
        name: String,
    },
}

/// The span to replay: records from `from_ns` (those before it only bring parsers up to date;
/// their ticks are not handed on) to `to_ns`, inclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Start, ns since the epoch.
    pub from_ns: Option<i64>,
    /// End, ns since the epoch.
    pub to_ns: Option<i64>,
}

/// One recorded feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedInfo {
    /// Its id in the journal (its index in the gateway's feeds).
    pub id: u8,
    /// Its broker's OpenAlgo name (`zerodha`).
    pub broker: String,
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlayStats {
    /// Frames parsed inside the window.
    pub frames: u64,
    /// Ticks handed on.
    pub ticks: u64,
    /// Frames parsed before the window (ticks dropped).
    pub frames_before: u64,
    /// Connect, disconnect, subscribe and unsubscribe records applied.
    pub events: u64,
    /// Gap records met, and the records they say the live run could not journal.
    pub gaps: u64,
    /// Records the gaps stand for.
    pub missed: u64,
    /// Packets the parsers refused.
    pub parse_errors: u64,
    /// Frames a protocol answered with an error (the live connection was dropped after them).
    pub frame_errors: u64,
    /// Recorded symbol names no longer in the catalog's registry.
    pub unknown_symbols: u64,
}

/// A running replay's progress, for the gateway's status (`"mode": "replay"`). Written by the
/// replay thread, read by the client IO thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// The journal directory.
    pub journal: String,
    /// The pace asked for (`1`, `10`, `max`).
    pub speed: String,
    /// Frames replayed.
    pub frames: AtomicU64,
    /// Ticks replayed.
    pub ticks: AtomicU64,
    /// The recorded receive time reached, ns since the epoch (0 before the first frame).
    pub at_ns: AtomicI64,
    /// Every record of the window has been replayed.
    pub done: AtomicBool,
}

/// Where ticks go.
pub enum Out<'a> {
    /// Into the router's tick path; `statuses[feed]` gets each feed's per-tick bookkeeping.
    Router {
        /// The router.
        router: &'a mut dyn Inline,
        /// Each feed's status, by feed id.
        statuses: &'a [Arc<FeedStatus>],
    },
    /// Appended here (the router's sequence numbers are not set).
    Collect(&'a mut Vec<Tick>),
}

/// See the module docs.
pub struct Player {
    merge: Merge,
    registry: Arc<SymbolRegistry>,
    feed_of: Arc<Vec<u16>>,
    feeds: Vec<FeedInfo>,
    /// By feed id.
    conns: Vec<Option<FeedConns>>,
    catalog: Catalog,
    /// A later segment's catalog, as it is read.
    later: Catalog,
    window: Window,
    stats: PlayStats,
    /// The next record, read ahead for [`Player::peek_ts`].
    next: Option<Owned>,
    scratch: Vec<Tick>,
    done: bool,
}

/// The catalog and feeds at the start of a journal's first segment.
fn first_catalog(path: &Path) -> Result<(Catalog, Vec<FeedInfo>), ReplayError> {
    let mut r = SegmentReader::open(path)?;
    let feeds = r
        .header()
        .feeds
        .iter()
        .map(|(id, broker)| FeedInfo {
            id: *id,
            broker: broker.clone(),
        })
        .collect();
    let mut c = Catalog::default();
    while let Some(rec) = r.next_record()? {
        if rec.kind != Kind::Catalog {
            break;
        }
        c.add(rec.payload).map_err(|source| ReplayError::Catalog {
            path: path.to_owned(),
            source,
        })?;
        if c.complete() {
            return Ok((c, feeds));
        }
    }
    Err(ReplayError::NoCatalog(path.to_owned()))
}

impl Player {
    /// Opens the journal in `dir`: the registry and broker tables from its first segment's
    /// catalog.
    pub fn open(dir: &Path, window: Window) -> Result<Player, ReplayError> {
        Player::with(Merge::open(dir)?, dir, window)
    }

    /// Opens the segments of `dir` one gateway run wrote: those whose catalog is stamped
    /// `catalog_ts` ([`run_paths`]). Sequence numbers count from that run's start, as the live
    /// router's did.
    pub fn open_run(dir: &Path, catalog_ts: i64, window: Window) -> Result<Player, ReplayError> {
        let segs = Segments::from_paths(run_paths(dir, catalog_ts)?);
        Player::with(Merge::of(segs), dir, window)
    }

    fn with(merge: Merge, dir: &Path, window: Window) -> Result<Player, ReplayError> {
        let first = merge
            .paths()
            .first()
            .ok_or_else(|| ReplayError::Empty(dir.to_owned()))?
            .clone();
        let (catalog, feeds) = first_catalog(&first)?;
        let mut reg = SymbolRegistry::with_capacity(catalog.capacity as usize);
        for e in &catalog.entries {
            // Names the live registry took; it refuses none of them again.
            let _ = reg.register(&e.exchange, &e.symbol, &e.key);
        }
        let feed_of: Vec<u16> = catalog.entries.iter().map(|e| e.feed as u16).collect();
        let mut conns: Vec<Option<FeedConns>> = (0..256).map(|_| None).collect();
        for f in &feeds {
            let broker =
                BrokerConfig::for_replay(&f.broker).ok_or_else(|| ReplayError::UnknownBroker {
                    feed: f.id,
                    name: f.broker.clone(),
                })?;
            let keys: Vec<Box<str>> = catalog
                .entries
                .iter()
                .map(|e| match e.feed == f.id {
                    true => e.key.as_str().into(),
                    false => "".into(),
                })
                .collect();
            conns[f.id as usize] = Some(FeedConns::new(broker.replay_factory(Arc::new(keys))));
        }
        Ok(Player {
            merge,
            registry: Arc::new(reg),
            feed_of: Arc::new(feed_of),
            feeds,
            conns,
            catalog,
            later: Catalog::default(),
            window,
            stats: PlayStats::default(),
            next: None,
            scratch: Vec::new(),
            done: false,
        })
    }

    /// The live run's symbol registry.
    pub fn registry(&self) -> &Arc<SymbolRegistry> {
        &self.registry
    }

    /// The feed serving each symbol, by symbol id.
    pub fn feed_of(&self) -> &Arc<Vec<u16>> {
        &self.feed_of
    }

    /// The recorded feeds.
    pub fn feeds(&self) -> &[FeedInfo] {
        &self.feeds
    }

    /// What the replay did so far.
    pub fn stats(&self) -> &PlayStats {
        &self.stats
    }

    /// Torn segment tails met so far (reported, skipped).
    pub fn torn_tails(&self) -> &[crate::journal::read::TornTail] {
        self.merge.torn_tails()
    }

    /// The time of the next frame or event to apply, `None` at the end (of the journal or the
    /// window). A pacing caller sleeps until then.
    pub fn peek_ts(&mut self) -> Result<Option<i64>, ReplayError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(r) = &self.next {
                if r.kind == Some(Kind::Frame) {
                    return Ok(Some(r.ts_ns));
                }
                // Not a frame: applied at once, it has no pace.
                let r = self.next.take().unwrap_or_default();
                self.apply_meta(&r)?;
                self.merge.recycle(r);
                continue;
            }
            match self.merge.next_record()? {
                Some(r) => {
                    if self.window.to_ns.is_some_and(|to| r.ts_ns > to)
                        && r.kind == Some(Kind::Frame)
                    {
                        self.done = true;
                        return Ok(None);
                    }
                    self.next = Some(r);
                }
                None => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    /// Applies the next frame (its ticks to `out`; inside the window only). False at the end.
    pub fn step(&mut self, out: &mut Out<'_>) -> Result<bool, ReplayError> {
        if self.peek_ts()?.is_none() {
            return Ok(false);
        }
        let Some(r) = self.next.take() else {
            return Ok(false);
        };
        let inside = self.window.from_ns.is_none_or(|from| r.ts_ns >= from);
        self.frame(&r, inside, out);
        self.merge.recycle(r);
        Ok(true)
    }

    /// Runs the whole window, handing each tick to `each` with its symbol's names and the
    /// sequence number the router gives it (1 for a symbol's first tick in the replay, +1 per
    /// tick).
    pub fn for_each_tick<E>(
        &mut self,
        mut each: impl FnMut(&str, &str, &Tick) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<ReplayError>,
    {
        let mut seq = vec![0u64; self.registry.len()];
        let mut ticks = Vec::new();
        let reg = self.registry.clone();
        while self.step(&mut Out::Collect(&mut ticks))? {
            for t in ticks.iter_mut() {
                let Some((s, info)) = seq.get_mut(t.symbol_id as usize).zip(reg.info(t.symbol_id))
                else {
                    continue;
                };
                *s += 1;
                t.seq = *s;
                each(&info.exchange, &info.symbol, t)?;
            }
            ticks.clear();
        }
        Ok(())
    }

    fn frame(&mut self, r: &Owned, inside: bool, out: &mut Out<'_>) {
        let Some(conns) = self.conns.get_mut(r.feed as usize).and_then(Option::as_mut) else {
            return;
        };
        let msg = if r.flags & FLAG_BINARY != 0 {
            Incoming::Binary(r.payload())
        } else {
            match std::str::from_utf8(r.payload()) {
                Ok(t) => Incoming::Text(t),
                Err(_) => {
                    self.stats.parse_errors += 1;
                    return;
                }
            }
        };
        self.scratch.clear();
        let mut sink = match (inside, out) {
            (true, Out::Router { router, statuses }) => match statuses.get(r.feed as usize) {
                Some(s) => TickSink::inline(&mut **router, s),
                None => TickSink::collect(&mut self.scratch),
            },
            (true, Out::Collect(v)) => TickSink::collect(v),
            (false, _) => TickSink::collect(&mut self.scratch),
        };
        let res = conns.frame(r.conn, msg, r.ts_ns, &mut sink);
        let (ticks, errors) = (sink.ticks() as u64, sink.errors() as u64);
        self.stats.parse_errors += errors;
        if res.is_err() {
            self.stats.frame_errors += 1;
        }
        if inside {
            self.stats.frames += 1;
            self.stats.ticks += ticks;
        } else {
            self.stats.frames_before += 1;
        }
    }

    /// Everything but a frame: events drive the protocols, catalogs are checked.
    fn apply_meta(&mut self, r: &Owned) -> Result<(), ReplayError> {
        let reg = self.registry.clone();
        let conns = self.conns.get_mut(r.feed as usize).and_then(Option::as_mut);
        let payload = r.payload();
        match (r.kind, conns) {
            (Some(Kind::Connect), Some(c)) => c.connect(r.conn),
            (Some(Kind::Disconnect), Some(c)) => c.disconnect(r.conn),
            (Some(Kind::Subscribe), Some(c)) => {
                let (mode, list) = payload.split_first().unwrap_or((&0, &[]));
                let names = crate::journal::format::symbols(list);
                self.stats.unknown_symbols += c.subscribe(r.conn, &reg, *mode, names);
            }
            (Some(Kind::Learned), Some(c)) => {
                let mut pair = crate::journal::format::symbols(payload);
                let (name, value) = (pair.next().unwrap_or_default(), pair.next());
                self.stats.unknown_symbols += c.learn(r.conn, &reg, name, value);
            }
            (Some(Kind::Unsubscribe), Some(c)) => {
                let names = crate::journal::format::symbols(payload);
                self.stats.unknown_symbols += c.unsubscribe(r.conn, &reg, names);
            }
            (Some(Kind::Gap), _) => {
                self.stats.gaps += 1;
                self.stats.missed += payload
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_le_bytes);
            }
            (Some(Kind::Catalog), _) => return self.later_catalog(payload),
            _ => return Ok(()),
        }
        self.stats.events += 1;
        Ok(())
    }

    /// A later segment's catalog: the same as the first, or the replay cannot go on.
    fn later_catalog(&mut self, payload: &[u8]) -> Result<(), ReplayError> {
        let path = || {
            self.merge
                .current_path()
                .unwrap_or(Path::new("?"))
                .to_owned()
        };
        if let Err(source) = self.later.add(payload) {
            return Err(ReplayError::Catalog {
                path: path(),
                source,
            });
        }
        if self.later.complete() && self.later != self.catalog {
            return Err(ReplayError::CatalogChanged(path()));
        }
        Ok(())
    }
}
