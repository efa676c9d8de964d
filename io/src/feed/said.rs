//! A feed connection's log lines, rate-limited per kind.

use crate::ratelog::RateLog;

/// A connection's log lines, each kind said at once the first time and then at most once a
/// minute with the count, so a broker that is down, flapping or rejecting for hours neither goes
/// unmentioned nor fills a disk.
pub(super) struct Said {
    pub dial_failures: RateLog,
    pub disconnects: RateLog,
    pub connects: RateLog,
    pub rejections: RateLog,
}

impl Said {
    pub fn new() -> Self {
        let minute = std::time::Duration::from_secs(60);
        Self {
            dial_failures: RateLog::new("feed: cannot connect", minute),
            disconnects: RateLog::new("feed: disconnected", minute),
            connects: RateLog::new("feed: connected", minute),
            rejections: RateLog::new("feed: the broker rejected symbols", minute),
        }
    }
}
