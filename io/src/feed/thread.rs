//! A feed IO thread: one `mio::Poll` holding every upstream connection of the feeds it was given
//! (one `Pool` per broker feed, each with its connections), and optionally the router.
//!
//! Each pass: every feed takes its demand changes from the router, runs its retry schedule, and
//! each of its connections sends what changed, does what its machine says is due (dial, keepalive,
//! give up) and moves its socket on; an open socket is read (every frame it has, parsed straight into
//! ticks) only when the poller reported it.
//!
//! Ticks leave either through each feed's SPSC ring to the router thread (whose doorbell is rung
//! once per frame) or, when the router runs inline on this thread, straight into the router's tick
//! path, with a router pass after every frame and every wake-up; the router's doorbell then wakes
//! this thread's poller (`WAKE`).
//!
//! Idle, the thread sleeps in its poller until a socket is ready, the router pushes a demand change
//! (it rings this thread's [`FeedPoller::doorbell`]), or the next timed work is due: a connection's
//! keepalive, dead-line or backoff, a subscription awaiting confirmation, the inline router's
//! heartbeat. Only a connection in progress (dialing, handshaking) or a protocol with work off the
//! thread is looked at every millisecond.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use tickwire_engine::doorbell::Doorbell;
use tickwire_engine::router::Inline;

use super::assign::MAX_CONNECTIONS;
use super::machine::MachineConfig;
use super::pool::{Feed, Pool};

/// The inline router's doorbell and the feed doorbell wake the poller through this token;
/// connection tokens start after it.
const WAKE: Token = Token(0);

/// The longest sleep with nothing timed to do (a safety net, not a poll: once a second).
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Feed settings the broker does not decide.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    /// Backoff, timeouts; `dead_after` and `keepalive` are taken from the broker's
    /// [`super::protocol::Liveness`] unless set here.
    pub machine: MachineConfig,
    /// Override the broker's dead-connection timeout.
    pub dead_after: Option<Duration>,
    /// Largest WebSocket message accepted.
    pub max_message: usize,
    /// Extra CA certificates (PEM) trusted for wss:// besides the Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Override the broker's instruments-per-connection limit.
    pub per_connection: Option<usize>,
    /// Override the broker's connection limit.
    pub connections: Option<usize>,
    /// A subscribed symbol with no data this long after its subscribe is asked for again (then
    /// after doubling delays); a rejected one likewise.
    pub confirm_after: Duration,
    /// Longest delay between two retries of one symbol.
    pub retry_max: Duration,
    /// When a symbol is stale and a connection stalled ([`super::watch`]).
    pub stale: super::watch::StaleConfig,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            machine: MachineConfig::default(),
            dead_after: None,
            max_message: 4 << 20,
            ca_file: None,
            per_connection: None,
            connections: None,
            confirm_after: Duration::from_secs(15),
            retry_max: Duration::from_secs(300),
            stale: Default::default(),
        }
    }
}

/// A feed thread's poller, made before the thread so that the router can be given its doorbell.
pub struct FeedPoller {
    poll: Poll,
    waker: Arc<Waker>,
    bell: Arc<Doorbell>,
}

impl FeedPoller {
    /// A poller with its waker (mio allows one per poller: the inline router's wake-ups and this
    /// doorbell share it).
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let w = waker.clone();
        let bell = Arc::new(Doorbell::new(move || {
            let _ = w.wake();
        }));
        Ok(Self { poll, waker, bell })
    }

    /// Rung by the router after it pushed demand changes to this thread's feeds
    /// (`RouterRings::upstream_bells`).
    pub fn doorbell(&self) -> Arc<Doorbell> {
        self.bell.clone()
    }
}

/// What a feed IO thread runs: its feeds and, if it runs inline, the router.
pub struct FeedThread {
    /// Its poller ([`FeedPoller::new`]).
    pub poller: FeedPoller,
    /// The feeds (brokers) multiplexed on this thread.
    pub feeds: Vec<Feed>,
    /// The router, when it runs on this thread ([`Inline`]): a pass runs after every frame and
    /// after every wake-up, and its doorbell wakes this thread's poller.
    pub inline_router: Option<Box<dyn Inline>>,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Thread name suffix (`tickwire-feed-<name>`).
    pub name: String,
}

impl FeedThread {
    /// Starts the thread; it runs until `stop` is set.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> io::Result<JoinHandle<()>> {
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("tickwire-feed-{name}"))
            .spawn(move || {
                if let Err(e) = tickwire_engine::affinity::pin_current(self.core) {
                    tracing::warn!("feed thread {name}: {e}; running unpinned");
                }
                if let Err(e) = self.run(&stop) {
                    tracing::error!("feed thread {name}: stopped: {e}");
                }
            })
    }

    fn run(self, stop: &AtomicBool) -> io::Result<()> {
        let FeedPoller {
            mut poll,
            waker,
            bell,
        } = self.poller;
        let mut events = Events::with_capacity(64);
        let mut inline_router = self.inline_router;
        let inline_bell = match &inline_router {
            Some(r) => {
                r.set_wake(Box::new(move || {
                    let _ = waker.wake();
                }));
                Some(r.doorbell())
            }
            None => None,
        };
        let mut pools: Vec<Pool> = self
            .feeds
            .into_iter()
            .enumerate()
            .map(|(i, f)| Pool::new(f, 1 + i * MAX_CONNECTIONS))
            .collect();
        let mut fired = vec![0u64; pools.len()];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let mut timeout = pools
                .iter()
                .map(|p| p.wait(now))
                .min()
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            if let Some(r) = &inline_router {
                timeout = timeout.min(r.wait(now));
            }
            // Announce the sleep, then look once more (see `Doorbell`): input pushed before the
            // announcement is seen here, input pushed after it wakes the poller.
            bell.will_sleep();
            if let Some(b) = &inline_bell {
                b.will_sleep();
            }
            let busy = inline_router.as_ref().is_some_and(|r| r.has_input())
                || pools.iter().any(|p| p.has_input());
            let r = poll.poll(
                &mut events,
                Some(if busy { Duration::ZERO } else { timeout }),
            );
            bell.awake();
            if let Some(b) = &inline_bell {
                b.awake();
            }
            // A signal (a debugger attaching, SIGCHLD, Ctrl-C before `stop` is seen) interrupts
            // epoll_wait whatever SA_RESTART says: that is an empty wake-up, not an error.
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
                r => r?,
            }
            fired.fill(0);
            for ev in events.iter() {
                let t = ev.token().0;
                if t >= 1 {
                    let (p, c) = ((t - 1) / MAX_CONNECTIONS, (t - 1) % MAX_CONNECTIONS);
                    if let Some(f) = fired.get_mut(p) {
                        *f |= 1 << c;
                    }
                }
            }
            for (p, f) in pools.iter_mut().zip(&fired) {
                p.pass(poll.registry(), inline_router.as_deref_mut(), *f);
            }
            // The inline router's pass over controls, flush and heartbeat comes after the frames:
            // a frame that woke the poller is read first (each frame has had its own pass).
            if let Some(r) = &mut inline_router {
                r.pass();
            }
        }
        for p in &mut pools {
            p.close();
        }
        if let Some(r) = inline_router.take() {
            r.finish();
        }
        Ok(())
    }
}
