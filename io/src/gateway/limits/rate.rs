//! The subscription-change allowance of one client: a token bucket, socket-free.
//!
//! The bucket starts full and refills at the per-minute rate. Each subscribe or unsubscribe entry
//! takes one token; an entry that finds the bucket empty is refused (`RATE_LIMITED`). Refused
//! entries fill a second, *excess* bucket that drains at the same rate: a client whose excess passes
//! [`ABUSE_FACTOR`] times the bucket's size kept asking far faster than it was told it may, and is
//! closed ([`RateWindow::abusive`]). A client that slows down when refused never gets there.

use std::time::{Duration, Instant};

/// Excess (refused entries not yet drained) above this many bucket sizes marks a client abusive.
pub const ABUSE_FACTOR: f64 = 2.0;

/// See the module docs.
#[derive(Clone, Debug)]
pub struct RateWindow {
    /// Tokens per second.
    rate: f64,
    capacity: f64,
    tokens: f64,
    excess: f64,
    at: Instant,
}

impl RateWindow {
    /// `per_minute` changes a minute, in bursts of up to `burst` (at least `per_minute`); full.
    pub fn new(per_minute: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(per_minute).max(1));
        Self {
            rate: f64::from(per_minute.max(1)) / 60.0,
            capacity,
            tokens: capacity,
            excess: 0.0,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.excess = (self.excess - dt * self.rate).max(0.0);
    }

    /// Takes one change: true when allowed, false (and counted as excess) when refused.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.excess += 1.0;
            false
        }
    }

    /// Takes one change that is never refused (`unsubscribe_all`: shedding load is always
    /// allowed); it still uses a token when one is there.
    pub fn force(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// How long until the next change would be allowed (zero when one is allowed now).
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.0))
    }

    /// True when the client has been refused far past its allowance (see the module docs).
    pub fn abusive(&self) -> bool {
        self.excess > ABUSE_FACTOR * self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_per_minute_rate() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(60, 0, t0); // one a second, bursts of 60
        assert!((0..60).all(|_| w.take(t0)), "the bucket starts full");
        assert!(!w.take(t0), "the 61st at once is refused");
        assert_eq!(w.retry_after(), Duration::from_secs(1));
        let t1 = t0 + Duration::from_millis(999);
        assert!(!w.take(t1), "not refilled yet");
        let t2 = t0 + Duration::from_secs(1);
        assert!(w.take(t2), "one token a second");
        assert!(!w.take(t2));
        // A long pause refills to the bucket's size, no more.
        let t3 = t2 + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| w.take(t3)).count(), 60);
    }

    #[test]
    fn the_burst_can_exceed_a_minute_of_changes() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(10, 25, t0);
        assert_eq!((0..30).filter(|_| w.take(t0)).count(), 25);
        // The rate stays 10 a minute: 6 s per change.
        assert!(w.take(t0 + Duration::from_secs(6)));
        assert!(!w.take(t0 + Duration::from_secs(7)));
    }

    #[test]
    fn force_never_refuses_and_never_goes_negative() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(60, 0, t0);
        for _ in 0..100 {
            w.force(t0);
        }
        assert!(!w.abusive(), "forced changes are not excess");
        assert!(
            w.take(t0 + Duration::from_secs(1)),
            "one second refills one token"
        );
    }

    #[test]
    fn hammering_far_past_the_rate_is_abusive_slowing_down_is_not() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(60, 0, t0);
        // 60 allowed, then refused ones pile up as excess: past 2 x 60 the client is abusive.
        for _ in 0..60 + 120 {
            w.take(t0);
        }
        assert!(!w.abusive(), "exactly at the threshold");
        w.take(t0);
        assert!(w.abusive());
        // A client refused 100 times that then waits drains its excess at the refill rate.
        let mut w = RateWindow::new(60, 0, t0);
        for _ in 0..160 {
            w.take(t0);
        }
        let later = t0 + Duration::from_secs(100);
        assert!(w.take(later));
        assert!(!w.abusive());
        // Steady asking at the allowed rate is never refused.
        let mut w = RateWindow::new(60, 0, t0);
        let mut t = t0;
        for _ in 0..1000 {
            t += Duration::from_secs(1);
            assert!(w.take(t));
        }
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut w = RateWindow::new(60, 0, t0);
        assert!((0..60).all(|_| w.take(t0)));
        assert!(!w.take(t0 - Duration::from_secs(5)));
    }
}
