//! Civil time for the calendar: India Standard Time (a fixed UTC+05:30, no daylight saving, so no
//! time-zone database), day numbers, weekdays, the US daylight-saving rule MCX follows, and an
//! RFC 3339 parser for `--market-now`.

use crate::clock::civil_from_days;

/// IST is UTC+05:30 all year.
pub const IST_OFFSET_S: i64 = 5 * 3600 + 30 * 60;

/// Seconds in a day.
pub const DAY_S: i64 = 86_400;

/// A calendar day in IST: days since 1970-01-01.
pub type Day = i64;

/// The IST day and the seconds since IST midnight of `unix_s`.
pub fn ist_day_and_secs(unix_s: i64) -> (Day, i64) {
    let local = unix_s + IST_OFFSET_S;
    (local.div_euclid(DAY_S), local.rem_euclid(DAY_S))
}

/// The Unix time of `secs` after IST midnight of `day` (`secs` may pass 24 h).
pub fn unix_of(day: Day, secs: i64) -> i64 {
    day * DAY_S + secs - IST_OFFSET_S
}

/// Civil (year, month, day) → days since 1970-01-01 (H. Hinnant's algorithm; the inverse of
/// [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Day of the week: 0 Monday … 6 Sunday (1970-01-01 was a Thursday).
pub fn weekday(day: Day) -> u32 {
    (day + 3).rem_euclid(7) as u32
}

/// True on Saturday and Sunday.
pub fn is_weekend(day: Day) -> bool {
    weekday(day) >= 5
}

/// The `n`th (1-based) Sunday of `month` in `year`.
fn nth_sunday(year: i64, month: u32, n: i64) -> Day {
    let first = days_from_civil(year, month, 1);
    let to_sunday = (6 - i64::from(weekday(first))).rem_euclid(7);
    first + to_sunday + 7 * (n - 1)
}

/// True when the US is on daylight-saving time for the whole of the Indian trading day `day`:
/// from the second Sunday of March to the day before the first Sunday of November. The switch
/// itself happens at 02:00 US local time on a Sunday, when Indian exchanges are shut, so the
/// date alone decides every trading day.
pub fn us_dst(day: Day) -> bool {
    let (y, _, _) = civil_from_days(day);
    day >= nth_sunday(y, 3, 2) && day < nth_sunday(y, 11, 1)
}

/// `HH:MM` or `HH:MM:SS` → seconds since midnight (24:00 allowed, for a close at midnight).
pub fn parse_hhmm(s: &str) -> Option<i64> {
    let mut parts = s.trim().split(':');
    let h: i64 = num(parts.next()?, 2)?;
    let m: i64 = num(parts.next()?, 2)?;
    let sec: i64 = match parts.next() {
        Some(p) => num(p, 2)?,
        None => 0,
    };
    if parts.next().is_some() || m > 59 || sec > 59 || h * 3600 + m * 60 + sec > DAY_S {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// `YYYY-MM-DD` → its day number.
pub fn parse_date(s: &str) -> Option<Day> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&s[..4], 4)?, num(&s[5..7], 2)?, num(&s[8..], 2)?);
    let (m, d) = (u32::try_from(m).ok()?, u32::try_from(d).ok()?);
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // Round trip: rejects 2026-02-30.
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` → nanoseconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 20 || !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return None;
    }
    let day = parse_date(&s[..10])?;
    let rest = &s[11..];
    let tz_at = rest.find(['Z', 'z', '+', '-'])?;
    let (time, tz) = rest.split_at(tz_at);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    if hms.len() != 8 {
        return None;
    }
    let secs = parse_hhmm(hms)?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        if frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        nanos = frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32);
    }
    let offset = match tz {
        "Z" | "z" => 0,
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let hm = &tz[1..];
            if hm.len() != 5 {
                return None;
            }
            sign * parse_hhmm(hm)?
        }
    };
    let unix = day * DAY_S + secs - offset;
    unix.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Parses a run of exactly `len` ASCII digits.
fn num(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for day in [-800_000, -1, 0, 59, 20_000, 20_425, 2_000_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(parse_date("2026-12-03"), Some(days_from_civil(2026, 12, 3)));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-2-3"), None);
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
        assert_eq!(weekday(days_from_civil(2026, 12, 3)), 3, "Thursday");
        assert!(is_weekend(days_from_civil(2026, 12, 5)));
        assert!(is_weekend(days_from_civil(2026, 12, 6)));
        assert!(!is_weekend(days_from_civil(2026, 12, 7)));
    }

    #[test]
    fn us_daylight_saving_dates() {
        // 2026: 8 March to 1 November; 2025: 9 March to 2 November; 2024: 10 March to 3 November.
        for (y, start, end) in [(2024, 10, 3), (2025, 9, 2), (2026, 8, 1), (2027, 14, 7)] {
            assert!(!us_dst(days_from_civil(y, 3, start) - 1), "{y}");
            assert!(us_dst(days_from_civil(y, 3, start)), "{y}");
            assert!(us_dst(days_from_civil(y, 11, end) - 1), "{y}");
            assert!(!us_dst(days_from_civil(y, 11, end)), "{y}");
        }
    }

    #[test]
    fn rfc3339() {
        let ist = parse_rfc3339("2026-12-03T09:15:00+05:30").unwrap();
        let utc = parse_rfc3339("2026-12-03T03:45:00Z").unwrap();
        assert_eq!(ist, utc);
        assert_eq!(crate::clock::rfc3339_utc(utc), "2026-12-03T03:45:00.000Z");
        assert_eq!(
            parse_rfc3339("2026-12-03T03:45:00.5Z").unwrap() - utc,
            500_000_000
        );
        assert_eq!(parse_rfc3339("2026-12-02T22:15:00-05:30"), Some(utc));
        for bad in [
            "2026-12-03",
            "2026-12-03T25:00:00Z",
            "2026-12-03T03:45:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn ist_split() {
        let t = parse_rfc3339("2026-12-03T23:59:59+05:30").unwrap() / 1_000_000_000;
        let (day, secs) = ist_day_and_secs(t);
        assert_eq!(day, days_from_civil(2026, 12, 3));
        assert_eq!(secs, DAY_S - 1);
        assert_eq!(unix_of(day, secs), t);
        assert_eq!(parse_hhmm("24:00"), Some(DAY_S));
        assert_eq!(parse_hhmm("24:01"), None);
    }
}
