//! Wall-clock nanoseconds, the time base of `Tick::recv_ts_ns` and of cross-process latency figures.
//!
//! `CLOCK_REALTIME` through the vDSO: no syscall, ~20 ns, and the same clock in every process on the
//! machine, so a reader can subtract a writer's stamp.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
#[inline]
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
