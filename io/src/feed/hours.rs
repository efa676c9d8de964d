//! Market hours for a feed: whether it should be connected now, by the market calendar
//! (`tickwire_engine::calendar`) for the exchanges it carries. Consulted once a second from the
//! feed thread's pass, never per tick: a feed whose exchanges are all shut disconnects
//! [`DISCONNECT_LATE`](tickwire_engine::calendar::DISCONNECT_LATE) after the last close and dials
//! again [`CONNECT_EARLY`](tickwire_engine::calendar::CONNECT_EARLY) before the first session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_engine::calendar::{Exchange, Market};

/// How often the calendar is consulted.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a feed needs to follow market hours.
#[derive(Clone, Debug)]
pub struct FeedHours {
    /// The calendar and its clock (shared with `/status`).
    pub market: Arc<Market>,
    /// The exchanges the feed carries; it is wanted while any of them is (nearly) trading.
    pub exchanges: Vec<Exchange>,
}

impl FeedHours {
    /// True when the feed should be connected now.
    pub fn wanted(&self) -> bool {
        self.exchanges.is_empty() || self.market.wants_feed(&self.exchanges)
    }

    /// When the feed should next connect (Unix seconds), if the calendar knows.
    pub fn next_connect(&self) -> Option<i64> {
        self.market.next_feed_connect(&self.exchanges)
    }

    /// The exchanges, for log lines: `NSE,NFO`.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.exchanges.iter().map(|e| e.name()).collect();
        names.join(",")
    }
}

/// A feed's market-hours state on its thread.
pub(super) struct Gate {
    pub hours: FeedHours,
    next_check: Instant,
    /// The calendar's last answer.
    pub open: bool,
}

impl Gate {
    /// The gate, with the calendar's answer for now.
    pub fn new(hours: FeedHours, now: Instant) -> Self {
        let open = hours.wanted();
        Self {
            hours,
            next_check: now + CHECK_EVERY,
            open,
        }
    }

    /// Once a second: the new answer when it changed.
    pub fn check(&mut self, now: Instant) -> Option<bool> {
        if now < self.next_check {
            return None;
        }
        self.next_check = now + CHECK_EVERY;
        let open = self.hours.wanted();
        (open != self.open).then(|| {
            self.open = open;
            open
        })
    }

    /// Until the next look at the calendar.
    pub fn wait(&self, now: Instant) -> Duration {
        self.next_check.saturating_duration_since(now)
    }
}
