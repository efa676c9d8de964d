//! Upstox's instrument master (`complete.json.gz`: one JSON array of flat objects) and the mapping
//! from Upstox names to OpenAlgo's.
//!
//! | Upstox segment | OpenAlgo exchange |
//! |---|---|
//! | `NSE_EQ`, `BSE_EQ` | `NSE`, `BSE` |
//! | `NSE_FO`, `BSE_FO`, `MCX_FO` | `NFO`, `BFO`, `MCX` |
//! | `NCD_FO`, `BCD_FO` | `CDS`, `BCD` |
//! | `NSE_INDEX`, `BSE_INDEX` | the same |
//!
//! Derivatives are renamed from Upstox's spaced trading symbol: `NIFTY FUT 30 JAN 25` →
//! `NIFTY30JAN25FUT`, `NIFTY 24000 CE 30 JAN 25` → `NIFTY30JAN2524000CE`. Indices keep their
//! trading symbol (`NIFTY`, `BANKNIFTY`) with spaces removed. Other segments (`NSE_COM`, the
//! global indices) are not served.

use serde::{Deserialize, Serialize};

use crate::brokers::master::{self, MasterError};

/// One row, as Upstox publishes it (fields tickwire does not use are ignored).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Instrument {
    /// `NSE_EQ`, `NSE_FO`, `NSE_INDEX`, …
    pub segment: String,
    /// Company or underlying name; an index's display name (`Nifty 50`).
    #[serde(default)]
    pub name: String,
    /// `NSE`, `BSE`, `MCX`.
    #[serde(default)]
    pub exchange: String,
    /// ISIN (equities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isin: Option<String>,
    /// `EQ`, `INDEX`, `FUT`, `CE`, `PE`, …
    #[serde(default)]
    pub instrument_type: String,
    /// The feed's key: `NSE_EQ|INE062A01020`, `NSE_FO|35005`, `NSE_INDEX|Nifty 50`.
    pub instrument_key: String,
    /// Exchange token (a string in the file).
    #[serde(default)]
    pub exchange_token: String,
    /// `SBIN`, `NIFTY FUT 30 JAN 25`, `NIFTY`.
    pub trading_symbol: String,
    /// Lot size (absent on indices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_size: Option<u64>,
    /// Tick size in paise (absent on indices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_size: Option<f64>,
    /// Expiry, epoch ms (23:59:59 IST on the day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<i64>,
    /// Strike (0 on futures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strike_price: Option<f64>,
}

/// Parses the master's JSON text.
pub fn parse(source: &str, json: &[u8]) -> Result<Vec<Instrument>, MasterError> {
    serde_json::from_slice(json).map_err(|e| MasterError::format(source, e.to_string()))
}

/// Reads the master from a URL or a file (gzip or plain JSON).
pub fn load(source: &str) -> Result<Vec<Instrument>, MasterError> {
    parse(source, &master::fetch(source)?)
}

/// The OpenAlgo exchange of an Upstox segment, `None` for segments not served.
pub fn exchange(segment: &str) -> Option<&'static str> {
    Some(match segment {
        "NSE_EQ" => "NSE",
        "BSE_EQ" => "BSE",
        "NSE_FO" => "NFO",
        "BSE_FO" => "BFO",
        "MCX_FO" => "MCX",
        "NCD_FO" => "CDS",
        "BCD_FO" => "BCD",
        "NSE_INDEX" => "NSE_INDEX",
        "BSE_INDEX" => "BSE_INDEX",
        _ => return None,
    })
}

/// The OpenAlgo `(exchange, symbol)` of a row, `None` for a segment not served.
pub fn openalgo_name(r: &Instrument) -> Option<(&'static str, String)> {
    let exch = exchange(&r.segment)?;
    let parts: Vec<&str> = r.trading_symbol.split(' ').collect();
    let sym = match (r.instrument_type.as_str(), parts.as_slice()) {
        ("FUT", [name, "FUT", dd, mon, yy]) => format!("{name}{dd}{mon}{yy}FUT"),
        (t @ ("CE" | "PE"), [name, strike, kind, dd, mon, yy]) if *kind == t => {
            format!("{name}{dd}{mon}{yy}{strike}{t}")
        }
        ("INDEX", _) => match r.trading_symbol.as_str() {
            "NIFTY 50" => "NIFTY".to_string(),
            "NIFTY BANK" => "BANKNIFTY".to_string(),
            "NIFTY FIN SERVICE" => "FINNIFTY".to_string(),
            "NIFTY MID SELECT" => "MIDCPNIFTY".to_string(),
            "INDIA VIX" => "INDIAVIX".to_string(),
            other => other.replace(' ', ""),
        },
        _ => r.trading_symbol.clone(),
    };
    Some((exch, sym))
}

/// Upstox's spaced derivative date, `30 JAN 25`, for an expiry in epoch ms (the mock's side).
pub fn spaced_date(expiry_ms: i64) -> String {
    let (y, m, d) = master::ist_date(expiry_ms);
    format!(
        "{d:02} {} {:02}",
        master::MONTHS[(m - 1) as usize],
        y.rem_euclid(100)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"[
{"segment":"NSE_EQ","name":"STATE BANK OF INDIA","exchange":"NSE","isin":"INE062A01020","instrument_type":"EQ","instrument_key":"NSE_EQ|INE062A01020","lot_size":1,"freeze_quantity":100000.0,"exchange_token":"3045","tick_size":5.0,"trading_symbol":"SBIN","short_name":"SBI","security_type":"NORMAL"},
{"name":"Nifty 50","segment":"NSE_INDEX","exchange":"NSE","instrument_key":"NSE_INDEX|Nifty 50","exchange_token":"26000","trading_symbol":"NIFTY","instrument_type":"INDEX"},
{"weekly":false,"segment":"NSE_FO","name":"NIFTY","exchange":"NSE","expiry":1738261799000,"instrument_type":"FUT","instrument_key":"NSE_FO|35005","lot_size":75,"exchange_token":"35005","tick_size":10.0,"trading_symbol":"NIFTY FUT 30 JAN 25","strike_price":0.0},
{"weekly":false,"segment":"NSE_FO","name":"NIFTY","exchange":"NSE","expiry":1738261799000,"instrument_type":"CE","instrument_key":"NSE_FO|43650","lot_size":75,"exchange_token":"43650","tick_size":5.0,"trading_symbol":"NIFTY 24000 CE 30 JAN 25","strike_price":24000.0},
{"weekly":false,"segment":"NCD_FO","name":"GBPINR","exchange":"NSE","expiry":1767032999000,"instrument_type":"PE","instrument_key":"NCD_FO|14274","lot_size":1,"exchange_token":"14274","tick_size":0.25,"trading_symbol":"GBPINR 118.25 PE 29 DEC 25","strike_price":118.25},
{"segment":"NSE_COM","name":"GOLD","exchange":"NSE","instrument_type":"FUT","instrument_key":"NSE_COM|1","exchange_token":"1","trading_symbol":"GOLD FUT 30 JAN 25"}
]"#;

    #[test]
    fn parses_the_published_shape_and_maps_to_openalgo_names() {
        let rows = parse("test", JSON.as_bytes()).unwrap();
        assert_eq!(rows.len(), 6);
        let names: Vec<_> = rows.iter().map(openalgo_name).collect();
        assert_eq!(names[0], Some(("NSE", "SBIN".into())));
        assert_eq!(names[1], Some(("NSE_INDEX", "NIFTY".into())));
        assert_eq!(names[2], Some(("NFO", "NIFTY30JAN25FUT".into())));
        assert_eq!(names[3], Some(("NFO", "NIFTY30JAN2524000CE".into())));
        assert_eq!(names[4], Some(("CDS", "GBPINR29DEC25118.25PE".into())));
        assert_eq!(names[5], None, "NSE_COM is not served");
        assert_eq!(spaced_date(rows[2].expiry.unwrap()), "30 JAN 25");
    }

    #[test]
    fn a_broken_master_says_where() {
        let e = parse("m.json", br#"[{"segment":"NSE_EQ"}]"#).unwrap_err();
        assert!(e.to_string().contains("m.json"), "{e}");
        assert!(e.to_string().contains("instrument_key"), "{e}");
        assert!(parse("m", b"not json").is_err());
    }
}
