//! The market calendar: when each exchange trades, in IST, and when a feed should be connected.
//!
//! Pure and socket-free: every answer is a function of an exchange, a Unix time and the holidays
//! list, so it is unit-tested at its boundary seconds. Regular sessions (Monday to Friday):
//!
//! | exchange | pre-open | open | close |
//! |---|---|---|---|
//! | NSE, BSE (and NSE_INDEX, BSE_INDEX) | 09:00 | 09:15 | 15:30 |
//! | NFO, BFO | | 09:15 | 15:30 |
//! | CDS, BCD, NCDEX | | 09:00 | 17:00 |
//! | MCX, NCO (and MCX_INDEX) | | 09:00 | 23:30 while the US is on daylight-saving time, else 23:55 |
//!
//! Weekends are closed; the holidays file ([`holidays`]) closes listed days or replaces their
//! session with a special one. A feed should be connected from [`CONNECT_EARLY`] before the
//! earliest session start of its exchanges until [`DISCONNECT_LATE`] after the last close.
//! [`Market`] adds the clock (real, or started at `--market-now`) and `--dev` (always open).

pub mod civil;
pub mod holidays;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use civil::{ist_day_and_secs, unix_of, us_dst, Day};
pub use holidays::{DayRule, Days, HolidaysError};

/// A feed dials this long before the earliest session (pre-open included) of its exchanges: time
/// to authorize, connect and subscribe before the first tick matters.
pub const CONNECT_EARLY: Duration = Duration::from_secs(15 * 60);
/// A feed stays connected this long after the last close of its exchanges: closing prices and
/// late prints arrive just after the bell.
pub const DISCONNECT_LATE: Duration = Duration::from_secs(5 * 60);

/// Days looked ahead for a next session: past a year of closure there is none.
const LOOKAHEAD_DAYS: i64 = 400;

/// The 2026 holidays shipped in the repository (`holidays/2026.csv`), used when no holidays file
/// is given.
const BUILTIN: &[(&str, &str)] = &[(
    "holidays/2026.csv",
    include_str!("../../../holidays/2026.csv"),
)];

/// The exchanges the calendar knows, by their OpenAlgo codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exchange {
    /// NSE equity.
    Nse,
    /// BSE equity.
    Bse,
    /// NSE equity derivatives.
    Nfo,
    /// BSE equity derivatives.
    Bfo,
    /// NSE currency derivatives.
    Cds,
    /// BSE currency derivatives.
    Bcd,
    /// MCX commodities.
    Mcx,
    /// NCDEX commodities.
    Ncdex,
    /// NSE commodities.
    Nco,
    /// NSE indices: NSE's calendar.
    NseIndex,
    /// BSE indices: BSE's calendar.
    BseIndex,
    /// MCX indices: MCX's calendar.
    McxIndex,
}

impl Exchange {
    /// Every exchange.
    pub const ALL: [Exchange; 12] = [
        Self::Nse,
        Self::Bse,
        Self::Nfo,
        Self::Bfo,
        Self::Cds,
        Self::Bcd,
        Self::Mcx,
        Self::Ncdex,
        Self::Nco,
        Self::NseIndex,
        Self::BseIndex,
        Self::McxIndex,
    ];

    /// The OpenAlgo code.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nse => "NSE",
            Self::Bse => "BSE",
            Self::Nfo => "NFO",
            Self::Bfo => "BFO",
            Self::Cds => "CDS",
            Self::Bcd => "BCD",
            Self::Mcx => "MCX",
            Self::Ncdex => "NCDEX",
            Self::Nco => "NCO",
            Self::NseIndex => "NSE_INDEX",
            Self::BseIndex => "BSE_INDEX",
            Self::McxIndex => "MCX_INDEX",
        }
    }

    /// From an OpenAlgo code (case-sensitive, as OpenAlgo's).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }

    /// The exchange whose calendar this one follows (an index follows its exchange).
    pub fn base(self) -> Self {
        match self {
            Self::NseIndex => Self::Nse,
            Self::BseIndex => Self::Bse,
            Self::McxIndex => Self::Mcx,
            e => e,
        }
    }

    /// True when the exchange has a pre-open call auction before its open.
    fn has_preopen(self) -> bool {
        matches!(self.base(), Self::Nse | Self::Bse)
    }
}

/// Where an exchange's day is at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// Not trading.
    Closed,
    /// The pre-open call auction (NSE, BSE and their indices, 09:00–09:15).
    PreOpen,
    /// Normal trading.
    Open,
}

impl Session {
    /// `closed`, `preopen` or `open` (as in `GET /status`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::PreOpen => "preopen",
            Self::Open => "open",
        }
    }
}

/// One exchange's trading on one day, in seconds since IST midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start of the pre-open (equal to `open` when there is none).
    pub preopen: i64,
    /// Start of normal trading.
    pub open: i64,
    /// End of trading.
    pub close: i64,
}

/// Regular sessions, weekends and the listed days; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Calendar {
    days: Days,
    /// Years with at least one listed day: a year without any is probably a missing file.
    years: BTreeSet<i64>,
}

/// `HH:MM` as seconds.
const fn hm(h: i64, m: i64) -> i64 {
    h * 3600 + m * 60
}

/// Pre-open length where an exchange has one.
const PREOPEN: i64 = hm(0, 15);

impl Calendar {
    /// Regular sessions and weekends, no holidays.
    pub fn weekends_only() -> Self {
        Self::default()
    }

    /// The calendar with `days` listed.
    pub fn with_days(days: Days) -> Self {
        let years = days
            .keys()
            .map(|(d, _)| crate::clock::civil_from_days(*d).0)
            .collect();
        Self { days, years }
    }

    /// The holidays shipped with tickwire (`holidays/*.csv` in the repository, compiled in).
    pub fn builtin() -> Self {
        let mut days = Days::new();
        for (name, text) in BUILTIN {
            // Checked by a unit test; a bad built-in file would only cost its holidays.
            let _ = holidays::parse_into(&mut days, name, text);
        }
        Self::with_days(days)
    }

    /// The calendar with the holidays of `path` (a file, or a directory of per-year files).
    pub fn load(path: &Path) -> Result<Self, HolidaysError> {
        holidays::load(path).map(Self::with_days)
    }

    /// True when the holidays list has any day in `year`.
    pub fn knows_year(&self, year: i64) -> bool {
        self.years.contains(&year)
    }

    /// `ex`'s trading window on `day`, or `None` when it does not trade.
    pub fn window(&self, ex: Exchange, day: Day) -> Option<Window> {
        let base = ex.base();
        let (open, close) = match self.days.get(&(day, base)) {
            Some(DayRule::Closed) => return None,
            Some(DayRule::Special { open, close }) => (*open, *close),
            None if civil::is_weekend(day) => return None,
            None => regular(base, day),
        };
        let preopen = match ex.has_preopen() {
            true => open - PREOPEN,
            false => open,
        };
        Some(Window {
            preopen,
            open,
            close,
        })
    }

    /// `ex`'s session at `unix_s`.
    pub fn session(&self, ex: Exchange, unix_s: i64) -> Session {
        let (day, secs) = ist_day_and_secs(unix_s);
        match self.window(ex, day) {
            Some(w) if secs >= w.open && secs < w.close => Session::Open,
            Some(w) if secs >= w.preopen && secs < w.open => Session::PreOpen,
            _ => Session::Closed,
        }
    }

    /// True while `ex` is in normal trading at `unix_s` (not pre-open): the hours in which a
    /// silent feed is a problem.
    pub fn is_open(&self, ex: Exchange, unix_s: i64) -> bool {
        self.session(ex, unix_s) == Session::Open
    }

    /// The next session start (pre-open included) of `ex` after `unix_s`, or `None` within the
    /// look-ahead (a year).
    pub fn next_open(&self, ex: Exchange, unix_s: i64) -> Option<i64> {
        self.next_bound(ex, unix_s, |w| w.preopen)
    }

    /// The next close of `ex` after `unix_s` (the current session's, while one runs).
    pub fn next_close(&self, ex: Exchange, unix_s: i64) -> Option<i64> {
        self.next_bound(ex, unix_s, |w| w.close)
    }

    fn next_bound(&self, ex: Exchange, unix_s: i64, at: impl Fn(Window) -> i64) -> Option<i64> {
        let (today, _) = ist_day_and_secs(unix_s);
        (today..today + LOOKAHEAD_DAYS)
            .filter_map(|d| self.window(ex, d).map(|w| unix_of(d, at(w))))
            .find(|&t| t > unix_s)
    }

    /// When a feed carrying `ex` should be connected on `day`, as Unix times: from
    /// [`CONNECT_EARLY`] before its session starts to [`DISCONNECT_LATE`] after it closes.
    pub fn feed_window(&self, ex: Exchange, day: Day) -> Option<(i64, i64)> {
        let w = self.window(ex, day)?;
        Some((
            unix_of(day, w.preopen) - CONNECT_EARLY.as_secs() as i64,
            unix_of(day, w.close) + DISCONNECT_LATE.as_secs() as i64,
        ))
    }

    /// True when a feed carrying `exchanges` should be connected at `unix_s`.
    pub fn wants_feed(&self, exchanges: &[Exchange], unix_s: i64) -> bool {
        let (today, _) = ist_day_and_secs(unix_s);
        // Yesterday too: a late close plus the margin may run past midnight.
        exchanges.iter().any(|&ex| {
            (today - 1..=today + 1).any(|d| {
                self.feed_window(ex, d)
                    .is_some_and(|(a, b)| unix_s >= a && unix_s < b)
            })
        })
    }

    /// The next time after `unix_s` a feed carrying `exchanges` should connect, if within a
    /// year.
    pub fn next_feed_connect(&self, exchanges: &[Exchange], unix_s: i64) -> Option<i64> {
        let (today, _) = ist_day_and_secs(unix_s);
        exchanges
            .iter()
            .filter_map(|&ex| {
                (today..today + LOOKAHEAD_DAYS)
                    .filter_map(|d| self.feed_window(ex, d).map(|(a, _)| a))
                    .find(|&a| a > unix_s)
            })
            .min()
    }
}

/// The regular (open, close) of a base exchange on a weekday.
fn regular(ex: Exchange, day: Day) -> (i64, i64) {
    match ex {
        Exchange::Nse | Exchange::Bse | Exchange::Nfo | Exchange::Bfo => (hm(9, 15), hm(15, 30)),
        Exchange::Cds | Exchange::Bcd | Exchange::Ncdex => (hm(9, 0), hm(17, 0)),
        // MCX (and NSE's commodity segment) follow the US markets' evening: when the US is on
        // daylight-saving time, COMEX/NYMEX trade an hour earlier in IST and MCX closes at
        // 23:30; the rest of the year at 23:55.
        _ => match us_dst(day) {
            true => (hm(9, 0), hm(23, 30)),
            false => (hm(9, 0), hm(23, 55)),
        },
    }
}

/// The calendar's clock: the wall clock, or one started at a given instant (`--market-now`)
/// that runs forward at the wall clock's pace.
#[derive(Clone, Copy, Debug)]
pub struct MarketClock {
    /// (Unix ns at `at`, `at`) when started at a given instant.
    start: Option<(i64, Instant)>,
}

impl MarketClock {
    /// The wall clock.
    pub fn real() -> Self {
        Self { start: None }
    }

    /// A clock that reads `unix_ns` now and runs forward from there.
    pub fn starting_at(unix_ns: i64) -> Self {
        Self {
            start: Some((unix_ns, Instant::now())),
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_ns(&self) -> i64 {
        match self.start {
            None => crate::clock::now_ns(),
            Some((ns, at)) => ns.saturating_add(at.elapsed().as_nanos() as i64),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now_s(&self) -> i64 {
        self.now_ns().div_euclid(1_000_000_000)
    }
}

/// The calendar as the running gateway consults it: its clock, and `--dev` (always open).
#[derive(Clone, Debug)]
pub struct Market {
    calendar: Calendar,
    clock: MarketClock,
    dev: bool,
}

impl Market {
    /// `calendar` read at `clock`; `dev`: ignore the calendar, every exchange always open.
    pub fn new(calendar: Calendar, clock: MarketClock, dev: bool) -> Self {
        Self {
            calendar,
            clock,
            dev,
        }
    }

    /// Always open (`--dev`, the demo, tests that do not care about hours).
    pub fn always_open() -> Self {
        Self::new(Calendar::weekends_only(), MarketClock::real(), true)
    }

    /// True when the calendar is ignored.
    pub fn is_dev(&self) -> bool {
        self.dev
    }

    /// The calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The clock.
    pub fn clock(&self) -> &MarketClock {
        &self.clock
    }

    /// `ex`'s session now (`Open` in dev mode).
    pub fn session(&self, ex: Exchange) -> Session {
        match self.dev {
            true => Session::Open,
            false => self.calendar.session(ex, self.clock.now_s()),
        }
    }

    /// True while `ex` trades normally now (always in dev mode).
    pub fn is_open(&self, ex: Exchange) -> bool {
        self.session(ex) == Session::Open
    }

    /// True when a feed carrying `exchanges` should be connected now (always in dev mode).
    pub fn wants_feed(&self, exchanges: &[Exchange]) -> bool {
        self.dev || self.calendar.wants_feed(exchanges, self.clock.now_s())
    }

    /// When a feed carrying `exchanges` should next connect (Unix seconds), if within a year;
    /// `None` in dev mode.
    pub fn next_feed_connect(&self, exchanges: &[Exchange]) -> Option<i64> {
        match self.dev {
            true => None,
            false => self
                .calendar
                .next_feed_connect(exchanges, self.clock.now_s()),
        }
    }
}
