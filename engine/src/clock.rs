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

/// Days since 1970-01-01 → the civil (year, month, day) (H. Hinnant's algorithm, exact for every
/// day an `i64` of nanoseconds can reach).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `ns` since the epoch as RFC 3339 UTC with milliseconds: `2026-12-03T04:05:06.789Z`.
pub fn rfc3339_utc(ns: i64) -> String {
    let ms = ns.div_euclid(1_000_000);
    let (secs, ms) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        // 2026-12-03 04:05:06.789 UTC
        assert_eq!(
            rfc3339_utc(1_796_270_706_789_000_000),
            "2026-12-03T04:05:06.789Z"
        );
        assert_eq!(
            rfc3339_utc(951_782_400_123_456_789),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339_utc(1_785_000_000_999_000_000),
            "2026-07-25T17:20:00.999Z"
        );
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
    }
}
