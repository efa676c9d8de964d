//! The upstream connection's lifecycle as a socket-free state machine: when to dial, when an
//! attempt has taken too long, when an open connection is dead, when to send a keepalive, how long
//! to back off, and when to stop. The feed thread ([`super::thread`]) owns the sockets and does what
//! this machine says; every rule here is unit-tested with a fake clock.
//!
//! ```text
//!   Backoff ──due──► Connecting ──opened──► Open ──failed──► Backoff (delay grows)
//!      ▲                 │ failed / timed out     │ Stop (credentials) ──► Stopped
//!      └─────────────────┘                        └ stable ≥ `stable_after`: the delay starts over
//! ```
//!
//! The backoff delay starts over only after a connection has stayed open for `stable_after`: a
//! broker that accepts, sends one message and drops is redialled with growing delays, not every
//! 100–200 ms forever.

use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::error::{Action, FeedError};

/// Timing rules.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineConfig {
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// An open connection that lasted this long resets the backoff when it ends.
    pub stable_after: Duration,
    /// Longest time from starting an attempt (authorize, resolve, TCP, TLS, upgrade) to open.
    pub connect_timeout: Duration,
    /// No frame for this long: dead.
    pub dead_after: Duration,
    /// Send a keepalive this often while open.
    pub keepalive: Option<Duration>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            stable_after: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
            dead_after: Duration::from_secs(5),
            keepalive: None,
        }
    }
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting to dial at `retry_at`.
    Backoff {
        /// When.
        retry_at: Instant,
    },
    /// An attempt is under way (authorize, resolve, connect, TLS, upgrade).
    Connecting {
        /// Started.
        since: Instant,
    },
    /// Open.
    Open {
        /// Opened.
        since: Instant,
        /// Last frame of any kind.
        last_data: Instant,
        /// Last keepalive sent (or the open).
        last_keepalive: Instant,
    },
    /// Stopped for good (credentials refused).
    Stopped,
}

/// What the feed thread must do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing.
    Nothing,
    /// Start an attempt.
    Dial,
    /// Send the keepalive message.
    Keepalive,
    /// Abandon the attempt or the connection for this reason (then call [`Machine::failed`]).
    Fail(FeedError),
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Machine {
    cfg: MachineConfig,
    phase: Phase,
    backoff: Backoff,
}

impl Machine {
    /// A machine that dials at `now`.
    pub fn new(cfg: MachineConfig, now: Instant, seed: u64) -> Self {
        Self {
            backoff: Backoff::new(cfg.backoff_min, cfg.backoff_max, seed),
            cfg,
            phase: Phase::Backoff { retry_at: now },
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True while open.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// What is due at `now`.
    pub fn due(&self, now: Instant) -> Due {
        match self.phase {
            Phase::Backoff { retry_at } if now >= retry_at => Due::Dial,
            Phase::Connecting { since } if now - since > self.cfg.connect_timeout => {
                Due::Fail(FeedError::retry(format!(
                    "no connection within {:?}",
                    self.cfg.connect_timeout
                )))
            }
            Phase::Open {
                last_data,
                last_keepalive,
                ..
            } => {
                if now - last_data > self.cfg.dead_after {
                    Due::Fail(FeedError::retry(format!(
                        "no data for {:?}: connection presumed dead",
                        self.cfg.dead_after
                    )))
                } else if self
                    .cfg
                    .keepalive
                    .is_some_and(|k| now - last_keepalive >= k)
                {
                    Due::Keepalive
                } else {
                    Due::Nothing
                }
            }
            _ => Due::Nothing,
        }
    }

    /// How long the thread may sleep before something is due (capped by the caller's own needs).
    pub fn wait(&self, now: Instant) -> Duration {
        let at = match self.phase {
            Phase::Backoff { retry_at } => retry_at,
            Phase::Connecting { since } => since + self.cfg.connect_timeout,
            Phase::Open {
                last_data,
                last_keepalive,
                ..
            } => {
                let dead = last_data + self.cfg.dead_after;
                match self.cfg.keepalive {
                    Some(k) => dead.min(last_keepalive + k),
                    None => dead,
                }
            }
            Phase::Stopped => return Duration::from_secs(1),
        };
        at.saturating_duration_since(now)
    }

    /// An attempt started.
    pub fn dialing(&mut self, now: Instant) {
        self.phase = Phase::Connecting { since: now };
    }

    /// The WebSocket is open.
    pub fn opened(&mut self, now: Instant) {
        self.phase = Phase::Open {
            since: now,
            last_data: now,
            last_keepalive: now,
        };
    }

    /// A frame of any kind arrived: the connection is alive. (It does not reset the backoff: only
    /// a connection that stays up does.)
    #[inline]
    pub fn data(&mut self, now: Instant) {
        if let Phase::Open { last_data, .. } = &mut self.phase {
            *last_data = now;
        }
    }

    /// A keepalive went out.
    pub fn keepalive_sent(&mut self, now: Instant) {
        if let Phase::Open { last_keepalive, .. } = &mut self.phase {
            *last_keepalive = now;
        }
    }

    /// Market hours closed the connection (or kept it from dialling): the next attempt is due at
    /// `now`, with the backoff started over, so it dials as soon as the market reopens.
    pub fn reset(&mut self, now: Instant) {
        self.backoff.reset();
        self.phase = Phase::Backoff { retry_at: now };
    }

    /// The attempt or the connection ended with `e` (not a [`Action::Reject`], which keeps the
    /// connection). Returns the delay before the next attempt, or `None` when stopped.
    pub fn failed(&mut self, e: &FeedError, now: Instant) -> Option<Duration> {
        if let Phase::Open { since, .. } = self.phase {
            if now - since >= self.cfg.stable_after {
                self.backoff.reset();
            }
        }
        let delay = match &e.action {
            Action::Stop => {
                self.phase = Phase::Stopped;
                return None;
            }
            Action::RetryAfter(at_least) => self.backoff.next_delay().max(*at_least),
            Action::Retry | Action::Reauthorize | Action::Reject(_) | Action::Refuse(_) => {
                self.backoff.next_delay()
            }
        };
        self.phase = Phase::Backoff {
            retry_at: now + delay,
        };
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MachineConfig {
        MachineConfig {
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            stable_after: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            dead_after: Duration::from_secs(5),
            keepalive: Some(Duration::from_secs(2)),
        }
    }

    #[test]
    fn dials_at_once_then_opens() {
        let t0 = Instant::now();
        let mut m = Machine::new(cfg(), t0, 1);
        assert_eq!(m.due(t0), Due::Dial);
        m.dialing(t0);
        assert_eq!(m.due(t0), Due::Nothing);
        m.opened(t0 + Duration::from_millis(3));
        assert!(m.is_open());
    }

    #[test]
    fn a_broker_that_accepts_and_drops_is_redialled_with_growing_delays() {
        // Accept, one frame, drop: the old rule (any frame resets) redialled every ~100 ms forever.
        let mut now = Instant::now();
        let mut m = Machine::new(cfg(), now, 7);
        let mut delays = Vec::new();
        for _ in 0..8 {
            m.dialing(now);
            m.opened(now);
            now += Duration::from_millis(5);
            m.data(now);
            let d = m
                .failed(&FeedError::retry("closed by broker"), now)
                .unwrap();
            delays.push(d);
            now += d;
            assert_eq!(m.due(now), Due::Dial);
        }
        assert!(delays[7] >= Duration::from_secs(5), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
    }

    #[test]
    fn a_stable_connection_starts_the_backoff_over() {
        let mut now = Instant::now();
        let mut m = Machine::new(cfg(), now, 3);
        for _ in 0..6 {
            m.dialing(now);
            now += m.failed(&FeedError::retry("refused"), now).unwrap();
        }
        m.dialing(now);
        m.opened(now);
        now += Duration::from_secs(11);
        m.data(now);
        let d = m.failed(&FeedError::retry("closed"), now).unwrap();
        assert!(d <= Duration::from_millis(100), "{d:?}");
    }

    #[test]
    fn refused_credentials_stop_for_good() {
        let now = Instant::now();
        let mut m = Machine::new(cfg(), now, 3);
        m.dialing(now);
        assert_eq!(m.failed(&FeedError::stop("HTTP 403"), now), None);
        assert_eq!(m.phase(), Phase::Stopped);
        assert_eq!(m.due(now + Duration::from_secs(3600)), Due::Nothing);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let now = Instant::now();
        let mut m = Machine::new(cfg(), now, 3);
        m.dialing(now);
        let e = FeedError::retry_after(Duration::from_secs(30), "too many connections");
        assert!(m.failed(&e, now).unwrap() >= Duration::from_secs(30));
    }

    #[test]
    fn silence_is_death_and_keepalives_are_timed() {
        let t0 = Instant::now();
        let mut m = Machine::new(cfg(), t0, 3);
        m.dialing(t0);
        m.opened(t0);
        assert_eq!(m.due(t0 + Duration::from_secs(1)), Due::Nothing);
        assert_eq!(m.due(t0 + Duration::from_secs(2)), Due::Keepalive);
        m.keepalive_sent(t0 + Duration::from_secs(2));
        m.data(t0 + Duration::from_secs(3));
        assert_eq!(m.wait(t0 + Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(m.due(t0 + Duration::from_secs(3)), Due::Nothing);
        assert!(matches!(m.due(t0 + Duration::from_secs(9)), Due::Fail(_)));
    }

    #[test]
    fn a_hung_attempt_times_out() {
        let t0 = Instant::now();
        let mut m = Machine::new(cfg(), t0, 3);
        m.dialing(t0);
        assert_eq!(m.due(t0 + Duration::from_secs(4)), Due::Nothing);
        assert!(matches!(m.due(t0 + Duration::from_secs(6)), Due::Fail(_)));
    }
}
