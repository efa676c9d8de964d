//! Angel's OpenAPI scrip master: one JSON array of objects whose values are all strings
//! (`token`, `symbol` like `SBIN-EQ`, `name`, `expiry` like `30JAN2025`, `strike` in paise,
//! `lotsize`, `instrumenttype`, `exch_seg`, `tick_size` in paise), mapped to OpenAlgo names.
//!
//! Strikes and tick sizes are in paise (÷100), currency derivatives (`CDS`) in 10^-7 rupee, as the
//! feed's prices are.

use serde::Deserialize;
use serde_json::Value;
use tickwire_engine::price;

use super::packet::{exchange as et, key};
use crate::brokers::master::{self, MasterError};

/// One master row, the fields tickwire reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// Exchange token (digits).
    pub token: String,
    /// Angel's trading symbol (`SBIN-EQ`, `NIFTY30JAN25FUT`, `Nifty 50`).
    pub symbol: String,
    /// Underlying / short name (`SBIN`, `NIFTY`).
    pub name: String,
    /// `30JAN2025`, or empty.
    pub expiry: String,
    /// Strike in paise (`2400000.000000`), `-1.000000` or `0.000000` when none.
    pub strike: String,
    /// Lot size.
    pub lotsize: String,
    /// `FUTIDX`, `OPTIDX`, `FUTSTK`, `OPTSTK`, `FUTCUR`, `AMXIDX` (index), empty for equities.
    pub instrumenttype: String,
    /// `NSE`, `BSE`, `NFO`, `BFO`, `MCX`, `CDS`, `NCDEX`, `NCO`, …
    pub exch_seg: String,
    /// Tick size in paise.
    pub tick_size: String,
}

/// A value the master writes as a string; a number or null is taken too (as text / empty), so one
/// odd row does not refuse the whole file.
fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    })
}

/// The row as it is read: straight from the JSON text into strings (the published file has
/// ~200k rows; a `Value` tree of it would take several times the memory).
#[derive(serde::Deserialize)]
struct Raw {
    #[serde(default, deserialize_with = "lenient")]
    token: String,
    #[serde(default, deserialize_with = "lenient")]
    symbol: String,
    #[serde(default, deserialize_with = "lenient")]
    name: String,
    #[serde(default, deserialize_with = "lenient")]
    expiry: String,
    #[serde(default, deserialize_with = "lenient")]
    strike: String,
    #[serde(default, deserialize_with = "lenient")]
    lotsize: String,
    #[serde(default, deserialize_with = "lenient")]
    instrumenttype: String,
    #[serde(default, deserialize_with = "lenient")]
    exch_seg: String,
    #[serde(default, deserialize_with = "lenient")]
    tick_size: String,
}

/// Parses the master's JSON text (`source` names it in errors).
pub fn parse(source: &str, json: &[u8]) -> Result<Vec<Row>, MasterError> {
    let raw: Vec<Raw> = serde_json::from_slice(json).map_err(|e| {
        MasterError::format(
            source,
            format!("not Angel's scrip master (a JSON array of objects): {e}"),
        )
    })?;
    Ok(raw
        .into_iter()
        .map(|r| Row {
            token: r.token,
            symbol: r.symbol,
            name: r.name,
            expiry: r.expiry,
            strike: r.strike,
            lotsize: r.lotsize,
            instrumenttype: r.instrumenttype,
            exch_seg: r.exch_seg,
            tick_size: r.tick_size,
        })
        .collect())
}

/// Loads the master from a URL or a file.
pub fn load(source: &str) -> Result<Vec<Row>, MasterError> {
    parse(source, &master::fetch(source)?)
}

/// The feed's exchange type for a master segment (`None`: not served by the feed, e.g. `NCO`).
pub fn exchange_type(exch_seg: &str) -> Option<u8> {
    Some(match exch_seg {
        "NSE" => et::NSE_CM,
        "NFO" => et::NSE_FO,
        "BSE" => et::BSE_CM,
        "BFO" => et::BSE_FO,
        "MCX" => et::MCX_FO,
        "NCDEX" => et::NCX_FO,
        "CDS" => et::CDE_FO,
        _ => return None,
    })
}

/// The listing key: `<exchangeType>|<token>` (`1|3045`), `None` when the token is not a number the
/// feed can carry.
pub fn listing_key(r: &Row) -> Option<String> {
    let t = exchange_type(&r.exch_seg)?;
    let n: u64 = r
        .token
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| r.token.parse().ok())??;
    key(t, n)?;
    Some(format!("{t}|{n}"))
}

/// Angel's index names that OpenAlgo spells differently from the row's `name`.
const INDICES: &[(&str, &str)] = &[
    ("Nifty 50", "NIFTY"),
    ("Nifty Bank", "BANKNIFTY"),
    ("Nifty Fin Service", "FINNIFTY"),
    ("NIFTY MID SELECT", "MIDCPNIFTY"),
    ("Nifty Next 50", "NIFTYNXT50"),
    ("India VIX", "INDIAVIX"),
    ("SENSEX", "SENSEX"),
    ("BANKEX", "BANKEX"),
    ("SNSX50", "SENSEX50"),
];

fn index_symbol(r: &Row) -> String {
    if let Some((_, s)) = INDICES.iter().find(|(k, _)| *k == r.symbol) {
        return (*s).to_owned();
    }
    let base = if r.name.is_empty() {
        &r.symbol
    } else {
        &r.name
    };
    base.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase()
}

/// `30JAN2025` → `30JAN25` (`None` unless exactly that shape).
fn expiry_code(e: &str) -> Option<String> {
    let b = e.as_bytes();
    let ok = b.len() == 9
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit)
        && master::MONTHS.contains(&&e[2..5]);
    ok.then(|| format!("{}{}{}", &e[..2], &e[2..5], &e[7..]))
}

/// A strike in paise (or 10^-7 rupee) as OpenAlgo writes it in rupees: `24000`, `82.25`.
fn strike_text(strike: &str, divisor: i64) -> Option<String> {
    let p = price::parse(strike)?; // 10^-7 units of the raw number
    if p <= 0 {
        return None;
    }
    let rupees = p / divisor; // still at 10^-7 scale
    let (int, frac) = (rupees / price::PRICE_SCALE, rupees % price::PRICE_SCALE);
    if frac == 0 {
        return Some(int.to_string());
    }
    let f = format!("{frac:07}");
    Some(format!("{int}.{}", f.trim_end_matches('0')))
}

/// The OpenAlgo `(exchange, symbol)` of a row; `None` for rows the feed does not serve or whose
/// shape is unexpected.
pub fn openalgo_name(r: &Row) -> Option<(&'static str, String)> {
    exchange_type(&r.exch_seg)?;
    let index = r.instrumenttype == "AMXIDX";
    match (r.exch_seg.as_str(), index) {
        ("NSE", true) => return Some(("NSE_INDEX", index_symbol(r))),
        ("BSE", true) => return Some(("BSE_INDEX", index_symbol(r))),
        ("MCX", true) => return Some(("MCX_INDEX", index_symbol(r))),
        ("NSE", false) => {
            // OpenAlgo drops these series suffixes (SBIN-EQ → SBIN); others stay.
            let s = ["-EQ", "-BE", "-MF", "-SG"]
                .iter()
                .find_map(|suf| r.symbol.strip_suffix(suf))
                .unwrap_or(&r.symbol);
            return (!s.is_empty()).then(|| ("NSE", s.to_owned()));
        }
        ("BSE", false) => return (!r.symbol.is_empty()).then(|| ("BSE", r.symbol.clone())),
        _ => {}
    }
    let exchange = match r.exch_seg.as_str() {
        "NFO" => "NFO",
        "BFO" => "BFO",
        "MCX" => "MCX",
        "CDS" => "CDS",
        "NCDEX" => "NCDEX",
        _ => return None,
    };
    let date = expiry_code(&r.expiry)?;
    if r.name.is_empty() {
        return None;
    }
    let div = if r.exch_seg == "CDS" { 10_000_000 } else { 100 };
    let t = r.instrumenttype.as_str();
    let sym = if t.starts_with("FUT") {
        format!("{}{date}FUT", r.name)
    } else if t.starts_with("OPT") {
        let kind = r.symbol.get(r.symbol.len().checked_sub(2)?..)?;
        if kind != "CE" && kind != "PE" {
            return None;
        }
        format!("{}{date}{}{kind}", r.name, strike_text(&r.strike, div)?)
    } else {
        return None;
    };
    Some((exchange, sym))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows in the shape of Angel's published file (values all strings).
    const MASTER: &str = r#"[
{"token":"3045","symbol":"SBIN-EQ","name":"SBIN","expiry":"","strike":"-1.000000","lotsize":"1","instrumenttype":"","exch_seg":"NSE","tick_size":"5.000000"},
{"token":"99926000","symbol":"Nifty 50","name":"NIFTY","expiry":"","strike":"0.000000","lotsize":"1","instrumenttype":"AMXIDX","exch_seg":"NSE","tick_size":"0.000000"},
{"token":"99926009","symbol":"Nifty Bank","name":"BANKNIFTY","expiry":"","strike":"0.000000","lotsize":"1","instrumenttype":"AMXIDX","exch_seg":"NSE","tick_size":"0.000000"},
{"token":"99919000","symbol":"SENSEX","name":"SENSEX","expiry":"","strike":"0.000000","lotsize":"1","instrumenttype":"AMXIDX","exch_seg":"BSE","tick_size":"0.000000"},
{"token":"500112","symbol":"SBIN","name":"SBIN","expiry":"","strike":"-1.000000","lotsize":"1","instrumenttype":"","exch_seg":"BSE","tick_size":"5.000000"},
{"token":"35003","symbol":"NIFTY30JAN25FUT","name":"NIFTY","expiry":"30JAN2025","strike":"-1.000000","lotsize":"75","instrumenttype":"FUTIDX","exch_seg":"NFO","tick_size":"10.000000"},
{"token":"43650","symbol":"NIFTY30JAN2524000CE","name":"NIFTY","expiry":"30JAN2025","strike":"2400000.000000","lotsize":"75","instrumenttype":"OPTIDX","exch_seg":"NFO","tick_size":"5.000000"},
{"token":"14182","symbol":"USDINR21DEC75.25CE","name":"USDINR","expiry":"29DEC2021","strike":"752500000.000000","lotsize":"1","instrumenttype":"OPTCUR","exch_seg":"CDS","tick_size":"25000.000000"},
{"token":"426257","symbol":"CRUDEOIL25FEBFUT","name":"CRUDEOIL","expiry":"19FEB2025","strike":"-1.000000","lotsize":"100","instrumenttype":"FUTCOM","exch_seg":"MCX","tick_size":"100.000000"},
{"token":"1","symbol":"X","name":"X","expiry":"","strike":"0","lotsize":"1","instrumenttype":"","exch_seg":"NCO","tick_size":"1"}
]"#;

    #[test]
    fn the_master_maps_to_openalgo_names_and_keys() {
        let rows = parse("test", MASTER.as_bytes()).unwrap();
        assert_eq!(rows.len(), 10);
        let names: Vec<_> = rows.iter().map(openalgo_name).collect();
        let want = [
            Some(("NSE", "SBIN")),
            Some(("NSE_INDEX", "NIFTY")),
            Some(("NSE_INDEX", "BANKNIFTY")),
            Some(("BSE_INDEX", "SENSEX")),
            Some(("BSE", "SBIN")),
            Some(("NFO", "NIFTY30JAN25FUT")),
            Some(("NFO", "NIFTY30JAN2524000CE")),
            Some(("CDS", "USDINR29DEC2175.25CE")),
            Some(("MCX", "CRUDEOIL19FEB25FUT")),
            None,
        ];
        for (got, want) in names.iter().zip(want) {
            assert_eq!(
                got.as_ref().map(|(e, s)| (*e, s.as_str())),
                want,
                "{names:?}"
            );
        }
        assert_eq!(listing_key(&rows[0]).as_deref(), Some("1|3045"));
        assert_eq!(listing_key(&rows[5]).as_deref(), Some("2|35003"));
        assert_eq!(listing_key(&rows[7]).as_deref(), Some("13|14182"));
        assert_eq!(listing_key(&rows[9]), None);
    }

    #[test]
    fn odd_input_is_an_error_or_skipped_never_a_panic() {
        assert!(parse("t", b"{}").is_err());
        assert!(parse("t", b"[1]").is_err());
        assert!(parse("t", b"nonsense").is_err());
        let rows = parse("t", br#"[{"token":12,"exch_seg":"NFO","instrumenttype":"OPTIDX","symbol":"E","name":"N","expiry":"3\u0420AN2025","strike":"x"}]"#).unwrap();
        assert_eq!(rows[0].token, "12");
        assert_eq!(openalgo_name(&rows[0]), None);
        let mut r = rows[0].clone();
        r.token = "99999999999999999999999".into();
        assert_eq!(listing_key(&r), None);
    }
}
