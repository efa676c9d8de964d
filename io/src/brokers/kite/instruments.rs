//! Kite's instrument master (CSV) and the mapping from Kite names to OpenAlgo's.
//!
//! Columns: `instrument_token, exchange_token, tradingsymbol, name, last_price, expiry, strike,
//! tick_size, lot_size, instrument_type, segment, exchange`. OpenAlgo names differ for indices
//! (`NIFTY 50` on `NSE` → `NIFTY` on `NSE_INDEX`) and derivatives (`NIFTY25JANFUT` →
//! `NIFTY30JAN25FUT`, `NIFTY25JAN23000CE` → `NIFTY30JAN2523000CE`: day, month, year from the expiry).

use crate::brokers::naming;

/// The header line Kite sends.
pub const HEADER: &str =
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange";

/// One row.
#[derive(Clone, Debug, PartialEq)]
pub struct Instrument {
    /// Kite instrument token.
    pub token: u32,
    /// Exchange token.
    pub exchange_token: u32,
    /// Kite trading symbol.
    pub tradingsymbol: String,
    /// Underlying / company name.
    pub name: String,
    /// Last price (as text, exact).
    pub last_price: String,
    /// Expiry `YYYY-MM-DD`, empty for cash.
    pub expiry: String,
    /// Strike (as text).
    pub strike: String,
    /// Tick size (as text).
    pub tick_size: String,
    /// Lot size.
    pub lot_size: u32,
    /// EQ, FUT, CE, PE.
    pub instrument_type: String,
    /// Kite segment: NSE, NFO-FUT, NFO-OPT, CDS-FUT, INDICES, …
    pub segment: String,
    /// Kite exchange: NSE, BSE, NFO, CDS, BFO, BCD, MCX.
    pub exchange: String,
}

/// Why the master could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentsError {
    /// Fetching or reading failed.
    #[error("instrument master {source_name}: {msg}")]
    Load {
        /// URL or path.
        source_name: String,
        /// What went wrong.
        msg: String,
    },
    /// A row could not be parsed.
    #[error("instrument master line {line}: {msg}")]
    Row {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        msg: String,
    },
}

/// Parses the CSV text (the `csv` crate: quoted fields, embedded commas and quotes). A malformed
/// row is an error naming its line: a half-loaded master would silently make symbols
/// unsubscribable.
pub fn parse(text: &str) -> Result<Vec<Instrument>, InstrumentsError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let line = rec
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i + 1, |p| p.line() as usize);
        let row = |msg: String| InstrumentsError::Row { line, msg };
        let f = rec.map_err(|e| row(e.to_string()))?;
        if i == 0 {
            if f.get(0) != Some("instrument_token") {
                return Err(InstrumentsError::Row {
                    line: 1,
                    msg: format!("expected the header {HEADER:?}"),
                });
            }
            continue;
        }
        if f.len() == 1 && f.get(0).is_some_and(str::is_empty) {
            continue; // a blank line
        }
        if f.len() != 12 {
            return Err(row(format!("{} columns, expected 12", f.len())));
        }
        let text = |k: usize| f.get(k).unwrap_or("").to_string();
        let num = |k: usize, what: &str| {
            let v = f.get(k).unwrap_or("");
            v.trim()
                .parse::<u32>()
                .map_err(|_| row(format!("{what} {v:?} is not a number")))
        };
        out.push(Instrument {
            token: num(0, "instrument_token")?,
            exchange_token: num(1, "exchange_token")?,
            tradingsymbol: text(2),
            name: text(3),
            last_price: text(4),
            expiry: text(5),
            strike: text(6),
            tick_size: text(7),
            lot_size: num(8, "lot_size")?,
            instrument_type: text(9),
            segment: text(10),
            exchange: text(11),
        });
    }
    Ok(out)
}

/// Reads the master from an `http(s)://` URL or a file path (gzip or plain).
pub fn load(source: &str) -> Result<Vec<Instrument>, InstrumentsError> {
    let text = crate::brokers::master::fetch_text(source).map_err(|e| InstrumentsError::Load {
        source_name: source.to_owned(),
        msg: e.message().to_owned(),
    })?;
    parse(&text)
}

/// Writes rows as Kite's CSV (the mock broker serves this), quoting where CSV needs it.
pub fn to_csv(rows: &[Instrument]) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() * 96 + HEADER.len()));
    let _ = w.write_record(HEADER.split(','));
    for r in rows {
        let (token, etoken, lot) = (
            r.token.to_string(),
            r.exchange_token.to_string(),
            r.lot_size.to_string(),
        );
        // Writing into a Vec cannot fail.
        let _ = w.write_record([
            token.as_str(),
            &etoken,
            &r.tradingsymbol,
            &r.name,
            &r.last_price,
            &r.expiry,
            &r.strike,
            &r.tick_size,
            &lot,
            &r.instrument_type,
            &r.segment,
            &r.exchange,
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The OpenAlgo `(exchange, symbol)` for a Kite row.
pub fn openalgo_name(r: &Instrument) -> (String, String) {
    if r.segment == "INDICES" {
        let sym = naming::index_name(&r.tradingsymbol);
        return (format!("{}_INDEX", r.exchange), sym);
    }
    let sym = naming::iso_date_code(&r.expiry)
        .and_then(|d| naming::derivative(&r.name, &d, &r.instrument_type, &r.strike))
        .unwrap_or_else(|| r.tradingsymbol.clone());
    (r.exchange.clone(), sym)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange\n\
779521,3045,SBIN,\"STATE BANK OF INDIA\",0,,0,0.05,1,EQ,NSE,NSE\n\
256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE\n\
13238786,51714,NIFTY25JANFUT,NIFTY,0,2025-01-30,0,0.1,75,FUT,NFO-FUT,NFO\n\
12345602,48225,NIFTY25JAN23000CE,NIFTY,0,2025-01-30,23000,0.05,75,CE,NFO-OPT,NFO\n\
268043523,1048998,USDINR25JANFUT,USDINR,0,2025-01-29,0,0.0025,1,FUT,CDS-FUT,CDS\n";

    #[test]
    fn parses_and_maps_to_openalgo_names() {
        let rows = parse(CSV).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].name, "STATE BANK OF INDIA");
        let names: Vec<_> = rows.iter().map(openalgo_name).collect();
        assert_eq!(names[0], ("NSE".into(), "SBIN".into()));
        assert_eq!(names[1], ("NSE_INDEX".into(), "NIFTY".into()));
        assert_eq!(names[2], ("NFO".into(), "NIFTY30JAN25FUT".into()));
        assert_eq!(names[3], ("NFO".into(), "NIFTY30JAN2523000CE".into()));
        assert_eq!(names[4], ("CDS".into(), "USDINR29JAN25FUT".into()));
    }

    #[test]
    fn odd_expiries_fall_back_to_the_kite_symbol() {
        // Regression from the fuzzer: a two-byte character where the year's digits should be.
        let mut r = parse(CSV).unwrap().remove(2);
        r.expiry = "2Р5-01-30".into();
        assert_eq!(openalgo_name(&r).1, "NIFTY25JANFUT");
        r.expiry = "2025-13-30".into();
        assert_eq!(openalgo_name(&r).1, "NIFTY25JANFUT");
        r.expiry = "2025-01-3x".into();
        assert_eq!(openalgo_name(&r).1, "NIFTY25JANFUT");
    }

    #[test]
    fn csv_round_trips() {
        let rows = parse(CSV).unwrap();
        assert_eq!(parse(&to_csv(&rows)).unwrap(), rows);
        // A name with a quote and a comma survives (the old hand-written writer broke it).
        let mut odd = rows[0].clone();
        odd.name = "A \"B\", C".into();
        assert_eq!(
            parse(&to_csv(std::slice::from_ref(&odd))).unwrap(),
            vec![odd]
        );
    }

    #[test]
    fn bad_rows_name_their_line() {
        let bad =
            format!("{HEADER}\n1,2,X,Y,0,,0,0.05,1,EQ,NSE,NSE\nabc,2,X,Y,0,,0,0.05,1,EQ,NSE,NSE\n");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("instrument_token"),
            "{e}"
        );
        assert!(parse("nonsense\n").is_err());
        assert!(parse(&format!("{HEADER}\n1,2,3\n"))
            .unwrap_err()
            .to_string()
            .contains("3 columns"));
    }
}
