//! OpenAlgo's symbol names, built the same way from every broker's master: indices renamed as
//! OpenAlgo names them, derivatives as `NAME` + `DDMONYY` + (`FUT` | strike + `CE`/`PE`).

use super::master::MONTHS;

/// OpenAlgo's name for an index, from the broker's (`NIFTY 50` → `NIFTY`, `NIFTY BANK` →
/// `BANKNIFTY`); any other index keeps its name in capitals with the spaces removed.
pub fn index_name(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    match up.as_str() {
        "NIFTY 50" | "NIFTY50" | "NIFTY INDEX" => "NIFTY".into(),
        "NIFTY BANK" | "NIFTY BANK INDEX" => "BANKNIFTY".into(),
        "NIFTY FIN SERVICE" => "FINNIFTY".into(),
        "NIFTY MID SELECT" => "MIDCPNIFTY".into(),
        "INDIA VIX" => "INDIAVIX".into(),
        _ => up.replace(' ', ""),
    }
}

/// A strike as OpenAlgo writes it: `24000.00` → `24000`, `82.50` → `82.5`, `82.25` stays.
pub fn strike_text(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `DDMONYY` from a day (2 digits), a month (`01`–`12` or `JAN`, any case) and a year (4 digits);
/// `None` for anything else.
pub fn date_code(day: &str, month: &str, year: &str) -> Option<String> {
    let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(day, 2) || !digits(year, 4) {
        return None;
    }
    let mon = if digits(month, 2) {
        *MONTHS.get(month.parse::<usize>().ok()?.checked_sub(1)?)?
    } else {
        *MONTHS.iter().find(|m| m.eq_ignore_ascii_case(month))?
    };
    Some(format!("{day}{mon}{}", &year[2..]))
}

/// `DDMONYY` from an ISO date, `2025-01-30` (a time after a space or `T` is ignored).
pub fn iso_date_code(expiry: &str) -> Option<String> {
    let date = expiry.split([' ', 'T']).next()?;
    let mut it = date.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    it.next().is_none().then_some(())?;
    date_code(d, m, y)
}

/// A derivative's OpenAlgo symbol: `NIFTY30JAN25FUT`, `NIFTY30JAN2524000CE`. `kind` is `FUT`, `CE`
/// or `PE`; anything else is `None`.
pub fn derivative(name: &str, date: &str, kind: &str, strike: &str) -> Option<String> {
    match kind {
        "FUT" => Some(format!("{name}{date}FUT")),
        "CE" | "PE" => Some(format!("{name}{date}{}{kind}", strike_text(strike))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_openalgos() {
        assert_eq!(index_name("NIFTY 50"), "NIFTY");
        assert_eq!(index_name("Nifty Bank"), "BANKNIFTY");
        assert_eq!(index_name("NIFTY NEXT 50"), "NIFTYNEXT50");
        assert_eq!(strike_text("24000.00"), "24000");
        assert_eq!(strike_text("82.50"), "82.5");
        assert_eq!(strike_text("118"), "118");
        assert_eq!(date_code("30", "01", "2025").as_deref(), Some("30JAN25"));
        assert_eq!(date_code("30", "jan", "2025").as_deref(), Some("30JAN25"));
        assert_eq!(
            iso_date_code("2025-01-30 14:30:00").as_deref(),
            Some("30JAN25")
        );
        assert_eq!(
            derivative("NIFTY", "30JAN25", "CE", "24000.0").as_deref(),
            Some("NIFTY30JAN2524000CE")
        );
        assert_eq!(
            derivative("NIFTY", "30JAN25", "FUT", "").as_deref(),
            Some("NIFTY30JAN25FUT")
        );
    }

    #[test]
    fn odd_dates_are_none_never_a_panic() {
        for bad in [
            "",
            "2025-1-30",
            "2025-13-30",
            "2025-00-01",
            "25-01-30",
            "2025-01-30-1",
            "२०२५-01-30",
            "2025-é-30",
        ] {
            assert_eq!(iso_date_code(bad), None, "{bad}");
        }
        assert_eq!(date_code("3", "JAN", "2025"), None);
        assert_eq!(date_code("30", "JANU", "2025"), None);
        assert_eq!(derivative("X", "30JAN25", "XX", ""), None);
    }
}
