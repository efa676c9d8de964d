//! Failed authentications per remote address: past the limit in one minute, an address's
//! attempts are refused without verifying anything (no Argon2 run) until its minute is over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The window the limit counts over.
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it, windows that are over are forgotten first.
const MAX_ADDRS: usize = 65_536;

/// See the module docs.
#[derive(Debug)]
pub struct FailureLimiter {
    per_minute: u32,
    /// Address → (start of its window, failures in it).
    seen: HashMap<IpAddr, (Instant, u32)>,
}

impl FailureLimiter {
    /// A limiter allowing `per_minute` failures per address (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            seen: HashMap::new(),
        }
    }

    /// Seconds until `addr` may try again, or None when it may try now.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<u64> {
        if self.per_minute == 0 {
            return None;
        }
        let &(start, n) = self.seen.get(&addr)?;
        let left = WINDOW
            .checked_sub(now.saturating_duration_since(start))
            .filter(|l| !l.is_zero())?;
        // Whole seconds, rounded up: "retry in 0 s" would be wrong.
        (n >= self.per_minute).then(|| left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    /// Counts a failed authentication from `addr`.
    pub fn failed(&mut self, addr: IpAddr, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        if self.seen.len() >= MAX_ADDRS && !self.seen.contains_key(&addr) {
            self.seen
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            if self.seen.len() >= MAX_ADDRS {
                // A flood from that many addresses: start over rather than grow.
                self.seen.clear();
            }
        }
        let e = self.seen.entry(addr).or_insert((now, 0));
        if now.saturating_duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_past_the_limit_until_the_minute_is_over() {
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let t = Instant::now();
        let mut l = FailureLimiter::new(3);
        for _ in 0..3 {
            assert_eq!(l.blocked(a, t), None);
            l.failed(a, t);
        }
        assert_eq!(l.blocked(a, t), Some(60));
        assert_eq!(l.blocked(a, t + Duration::from_secs(30)), Some(30));
        assert_eq!(l.blocked(b, t), None, "per address");
        assert_eq!(l.blocked(a, t + WINDOW), None, "the minute is over");
        l.failed(a, t + WINDOW);
        assert_eq!(l.blocked(a, t + WINDOW), None, "a new window");
        let off = FailureLimiter::new(0);
        assert_eq!(off.blocked(a, t), None);
    }
}
