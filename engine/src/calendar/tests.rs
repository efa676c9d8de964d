//! The calendar at its boundary seconds, in IST.

use super::civil::{parse_rfc3339, weekday};
use super::*;

/// Unix seconds of an IST wall-clock time, `2026-12-03 09:15:00`.
fn ist(s: &str) -> i64 {
    parse_rfc3339(&format!("{}T{}+05:30", &s[..10], &s[11..])).unwrap() / 1_000_000_000
}

fn session(c: &Calendar, ex: Exchange, at: &str) -> Session {
    c.session(ex, ist(at))
}

const THU: &str = "2026-12-03"; // a Thursday, no holiday
const SUMMER_WED: &str = "2026-07-15"; // US on daylight-saving time

fn at(day: &str, time: &str) -> String {
    format!("{day} {time}")
}

#[test]
fn nse_equity_boundaries() {
    let c = Calendar::weekends_only();
    for ex in [
        Exchange::Nse,
        Exchange::Bse,
        Exchange::NseIndex,
        Exchange::BseIndex,
    ] {
        let s = |t| session(&c, ex, &at(THU, t));
        assert_eq!(s("08:59:59"), Session::Closed, "{ex:?}");
        assert_eq!(s("09:00:00"), Session::PreOpen, "{ex:?}");
        assert_eq!(s("09:14:59"), Session::PreOpen, "{ex:?}");
        assert_eq!(s("09:15:00"), Session::Open, "{ex:?}");
        assert_eq!(s("15:29:59"), Session::Open, "{ex:?}");
        assert_eq!(s("15:30:00"), Session::Closed, "{ex:?}");
    }
    assert!(
        !c.is_open(Exchange::Nse, ist(&at(THU, "09:14:59"))),
        "pre-open is not open"
    );
    assert!(c.is_open(Exchange::Nse, ist(&at(THU, "09:15:00"))));
}

#[test]
fn derivatives_and_currency() {
    let c = Calendar::weekends_only();
    for ex in [Exchange::Nfo, Exchange::Bfo] {
        let s = |t| session(&c, ex, &at(THU, t));
        assert_eq!(s("09:14:59"), Session::Closed, "no pre-open on {ex:?}");
        assert_eq!(s("09:15:00"), Session::Open);
        assert_eq!(s("15:29:59"), Session::Open);
        assert_eq!(s("15:30:00"), Session::Closed);
    }
    for ex in [Exchange::Cds, Exchange::Bcd] {
        let s = |t| session(&c, ex, &at(THU, t));
        assert_eq!(s("08:59:59"), Session::Closed);
        assert_eq!(s("09:00:00"), Session::Open);
        assert_eq!(s("16:59:59"), Session::Open);
        assert_eq!(s("17:00:00"), Session::Closed);
    }
}

#[test]
fn mcx_evening_follows_us_daylight_saving() {
    let c = Calendar::weekends_only();
    // Winter (US standard time): to 23:55.
    let w = |t| session(&c, Exchange::Mcx, &at(THU, t));
    assert_eq!(w("08:59:59"), Session::Closed);
    assert_eq!(w("09:00:00"), Session::Open);
    assert_eq!(w("23:29:59"), Session::Open);
    assert_eq!(w("23:30:00"), Session::Open);
    assert_eq!(w("23:54:59"), Session::Open);
    assert_eq!(w("23:55:00"), Session::Closed);
    // Summer (US daylight saving): to 23:30.
    let s = |t| session(&c, Exchange::Mcx, &at(SUMMER_WED, t));
    assert_eq!(s("23:29:59"), Session::Open);
    assert_eq!(s("23:30:00"), Session::Closed);
    assert_eq!(s("23:54:59"), Session::Closed);
    assert_eq!(
        session(&c, Exchange::McxIndex, &at(SUMMER_WED, "23:30:00")),
        Session::Closed
    );
}

#[test]
fn mcx_on_the_dst_switch_dates() {
    let c = Calendar::weekends_only();
    let close = |d: &str| {
        c.window(Exchange::Mcx, civil::parse_date(d).unwrap())
            .map(|w| w.close)
    };
    // 2026: the US moves to DST on Sunday 8 March and back on Sunday 1 November.
    assert_eq!(close("2026-03-06"), Some(hm(23, 55)), "Friday before");
    assert_eq!(close("2026-03-08"), None, "the Sunday itself is closed");
    assert_eq!(close("2026-03-09"), Some(hm(23, 30)), "Monday after");
    assert_eq!(close("2026-10-30"), Some(hm(23, 30)), "last Friday of DST");
    assert_eq!(
        close("2026-11-02"),
        Some(hm(23, 55)),
        "Monday after it ends"
    );
}

#[test]
fn weekends_are_closed() {
    let c = Calendar::weekends_only();
    for day in ["2026-12-05", "2026-12-06"] {
        for ex in Exchange::ALL {
            for t in ["09:00:00", "10:00:00", "15:00:00", "23:00:00"] {
                assert_eq!(
                    session(&c, ex, &at(day, t)),
                    Session::Closed,
                    "{ex:?} {day}"
                );
            }
        }
    }
}

#[test]
fn holidays_close_and_special_sessions_open() {
    let mut days = Days::new();
    let text = "# a comment\n\n\
        2026-12-03,NSE NFO,Test holiday\n\
        2026-12-04,MCX,Evening only,17:00-23:55\n\
        2026-12-05,NSE BSE,Muhurat trading,18:15-19:15\n";
    holidays::parse_into(&mut days, "test.csv", text).unwrap();
    let c = Calendar::with_days(days);
    assert_eq!(
        session(&c, Exchange::Nse, &at(THU, "10:00:00")),
        Session::Closed
    );
    assert_eq!(
        session(&c, Exchange::NseIndex, &at(THU, "10:00:00")),
        Session::Closed,
        "the index follows its exchange"
    );
    assert_eq!(
        session(&c, Exchange::Nfo, &at(THU, "10:00:00")),
        Session::Closed
    );
    assert_eq!(
        session(&c, Exchange::Bse, &at(THU, "10:00:00")),
        Session::Open
    );
    let fri = "2026-12-04";
    assert_eq!(
        session(&c, Exchange::Mcx, &at(fri, "10:00:00")),
        Session::Closed
    );
    assert_eq!(
        session(&c, Exchange::Mcx, &at(fri, "17:00:00")),
        Session::Open
    );
    // Muhurat on a Saturday, with its pre-open.
    let sat = "2026-12-05";
    assert_eq!(
        session(&c, Exchange::Nse, &at(sat, "17:59:59")),
        Session::Closed
    );
    assert_eq!(
        session(&c, Exchange::Nse, &at(sat, "18:00:00")),
        Session::PreOpen
    );
    assert_eq!(
        session(&c, Exchange::Nse, &at(sat, "18:15:00")),
        Session::Open
    );
    assert_eq!(
        session(&c, Exchange::Nse, &at(sat, "19:15:00")),
        Session::Closed
    );
    assert_eq!(
        session(&c, Exchange::Nfo, &at(sat, "18:30:00")),
        Session::Closed
    );
    assert!(c.knows_year(2026));
    assert!(!c.knows_year(2027));
}

#[test]
fn bad_holiday_lines_name_file_line_and_reason() {
    let cases = [
        ("2026-13-01,NSE,x", "date"),
        ("2026-12-01,XYZ,x", "unknown exchange"),
        ("2026-12-01,NSE_INDEX,x", "follows NSE"),
        ("2026-12-01,,x", "no exchanges"),
        ("2026-12-01,NSE", "columns"),
        ("2026-12-01,NSE,x,19:00-18:00", "session"),
    ];
    for (line, want) in cases {
        let text = format!("# header\n{line}\n");
        let e = holidays::parse_into(&mut Days::new(), "h.csv", &text).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("h.csv", 2), "{line}");
        assert!(e.to_string().contains(want), "{line}: {e}");
        assert!(e.to_string().starts_with("h.csv:2: "), "{e}");
    }
}

#[test]
fn star_lists_every_base_exchange() {
    let mut days = Days::new();
    holidays::parse_into(&mut days, "h", "2026-12-03,*,Everything shut").unwrap();
    let c = Calendar::with_days(days);
    for ex in Exchange::ALL {
        assert_eq!(
            session(&c, ex, &at(THU, "12:00:00")),
            Session::Closed,
            "{ex:?}"
        );
    }
}

#[test]
fn builtin_2026_parses_and_lists_only_weekdays() {
    let mut days = Days::new();
    for (name, text) in BUILTIN {
        holidays::parse_into(&mut days, name, text).unwrap();
    }
    assert!(days.len() >= 16 * 6);
    for (day, _) in days.keys() {
        assert!(
            weekday(*day) < 5,
            "{:?}",
            crate::clock::civil_from_days(*day)
        );
    }
    let c = Calendar::builtin();
    assert!(c.knows_year(2026));
    assert_eq!(
        session(&c, Exchange::Nse, "2026-12-25 10:00:00"),
        Session::Closed,
        "Christmas"
    );
    assert_eq!(
        session(&c, Exchange::Mcx, "2026-03-03 10:00:00"),
        Session::Closed
    );
    assert_eq!(
        session(&c, Exchange::Mcx, "2026-03-03 18:00:00"),
        Session::Open
    );
}

#[test]
fn next_open_and_close() {
    let c = Calendar::weekends_only();
    // Friday 4 December after the close: next open is Monday's pre-open.
    let fri_evening = ist("2026-12-04 16:00:00");
    assert_eq!(
        c.next_open(Exchange::Nse, fri_evening),
        Some(ist("2026-12-07 09:00:00"))
    );
    assert_eq!(
        c.next_open(Exchange::Nfo, fri_evening),
        Some(ist("2026-12-07 09:15:00"))
    );
    assert_eq!(
        c.next_close(Exchange::Nse, ist(&at(THU, "10:00:00"))),
        Some(ist(&at(THU, "15:30:00")))
    );
    assert_eq!(
        c.next_close(Exchange::Nse, fri_evening),
        Some(ist("2026-12-07 15:30:00"))
    );
}

#[test]
fn feed_window_margins() {
    let c = Calendar::weekends_only();
    let nse = [Exchange::Nse];
    assert!(!c.wants_feed(&nse, ist(&at(THU, "08:44:59"))));
    assert!(
        c.wants_feed(&nse, ist(&at(THU, "08:45:00"))),
        "15 min before pre-open"
    );
    assert!(c.wants_feed(&nse, ist(&at(THU, "15:34:59"))));
    assert!(
        !c.wants_feed(&nse, ist(&at(THU, "15:35:00"))),
        "5 min after close"
    );
    // The latest exchange decides: with CDS the feed stays to 17:05.
    let both = [Exchange::Nse, Exchange::Cds];
    assert!(c.wants_feed(&both, ist(&at(THU, "17:04:59"))));
    assert!(!c.wants_feed(&both, ist(&at(THU, "17:05:00"))));
    // MCX in winter: 23:55 + 5 min is midnight.
    let mcx = [Exchange::Mcx];
    assert!(c.wants_feed(&mcx, ist(&at(THU, "23:59:59"))));
    assert!(!c.wants_feed(&mcx, ist("2026-12-04 00:00:00")));
    assert!(!c.wants_feed(&nse, ist("2026-12-05 10:00:00")), "Saturday");
    assert_eq!(
        c.next_feed_connect(&nse, ist("2026-12-05 10:00:00")),
        Some(ist("2026-12-07 08:45:00"))
    );
    assert_eq!(
        c.next_feed_connect(&both, ist(&at(THU, "20:00:00"))),
        Some(ist("2026-12-04 08:45:00"))
    );
}

#[test]
fn market_clock_and_dev() {
    let start = ist("2026-12-05 10:00:00");
    let m = Market::new(
        Calendar::weekends_only(),
        MarketClock::starting_at(start * 1_000_000_000),
        false,
    );
    assert!((m.clock().now_s() - start).abs() <= 1);
    assert_eq!(m.session(Exchange::Nse), Session::Closed);
    assert!(!m.wants_feed(&[Exchange::Nse]));
    assert!(m.next_feed_connect(&[Exchange::Nse]).is_some());
    let dev = Market::new(
        Calendar::weekends_only(),
        MarketClock::starting_at(start * 1_000_000_000),
        true,
    );
    assert_eq!(dev.session(Exchange::Nse), Session::Open);
    assert!(dev.wants_feed(&[Exchange::Nse]));
    assert!(Market::always_open().is_open(Exchange::Mcx));
}

#[test]
fn exchange_names_round_trip() {
    for ex in Exchange::ALL {
        assert_eq!(Exchange::parse(ex.name()), Some(ex));
    }
    assert_eq!(Exchange::parse("nse"), None);
}
