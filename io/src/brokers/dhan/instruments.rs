//! Dhan's scrip master (`api-scrip-master.csv`) and the mapping from its rows to OpenAlgo names.
//!
//! Columns (the published header, 16 of them): `SEM_EXM_EXCH_ID, SEM_SEGMENT, SEM_SMST_SECURITY_ID,
//! SEM_INSTRUMENT_NAME, SEM_EXPIRY_CODE, SEM_TRADING_SYMBOL, SEM_LOT_UNITS, SEM_CUSTOM_SYMBOL,
//! SEM_EXPIRY_DATE, SEM_STRIKE_PRICE, SEM_OPTION_TYPE, SEM_TICK_SIZE, SEM_EXPIRY_FLAG,
//! SEM_EXCH_INSTRUMENT_TYPE, SEM_SERIES, SM_SYMBOL_NAME`. Columns are found by name, so an added or
//! moved column does not break the load. `SEM_TICK_SIZE` is in paise (`5.0000` for an NSE equity's
//! 0.05 rupee, `100.0000` for a commodity's one rupee).
//!
//! Names: `NSE:SBIN`; `NSE_INDEX:NIFTY`; derivatives from the underlying (the trading symbol before
//! its first `-`, e.g. `NIFTY-Dec2026-FUT`) and the expiry date: `NFO:NIFTY29DEC26FUT`,
//! `NFO:NIFTY29DEC2624000CE`; currency `CDS`/`BCD`, BSE derivatives `BFO`, commodities `MCX`.

use tickwire_engine::price;

use super::packet::segment;
use crate::brokers::naming;

/// The header Dhan publishes.
pub const HEADER: &str = "SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,SEM_OPTION_TYPE,SEM_TICK_SIZE,SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,SM_SYMBOL_NAME";

/// One row (the columns tickwire reads, as text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// `NSE`, `BSE`, `MCX`.
    pub exchange: String,
    /// `E` equity, `D` derivatives, `C` currency, `M` commodity, `I` index.
    pub segment: String,
    /// Security id (the feed's instrument id).
    pub security_id: u32,
    /// `EQUITY`, `INDEX`, `FUTIDX`, `OPTIDX`, `FUTSTK`, `OPTSTK`, `FUTCUR`, `OPTCUR`, `FUTCOM`, …
    pub instrument: String,
    /// `SBIN`, `NIFTY-Dec2026-FUT`, `NIFTY-Dec2026-24000-CE`.
    pub trading_symbol: String,
    /// Lot units (`1.0`).
    pub lot: String,
    /// Dhan's display name (`NIFTY DEC FUT`).
    pub custom_symbol: String,
    /// `2026-12-29 14:30:00`, empty for cash.
    pub expiry: String,
    /// Strike (`24000.00000`; `-0.01000` or `0` for futures).
    pub strike: String,
    /// `CE`, `PE`, or `XX`.
    pub option_type: String,
    /// Tick size in paise (`5.0000`).
    pub tick_size: String,
    /// Series (`EQ`).
    pub series: String,
    /// Underlying name.
    pub symbol_name: String,
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

const REQUIRED: [&str; 11] = [
    "SEM_EXM_EXCH_ID",
    "SEM_SEGMENT",
    "SEM_SMST_SECURITY_ID",
    "SEM_INSTRUMENT_NAME",
    "SEM_TRADING_SYMBOL",
    "SEM_LOT_UNITS",
    "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE",
    "SEM_STRIKE_PRICE",
    "SEM_OPTION_TYPE",
    "SEM_TICK_SIZE",
];

/// Parses the CSV text. A row with a security id that is not a number is an error naming its line
/// (a half-loaded master would silently make symbols unsubscribable); blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Row>, InstrumentsError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = rd.records();
    let head = match records.next() {
        Some(Ok(h)) => h,
        _ => {
            return Err(InstrumentsError::Row {
                line: 1,
                msg: format!("expected a header like {HEADER:?}"),
            })
        }
    };
    let col = |name: &str| head.iter().position(|h| h.trim() == name);
    let mut cols = [0usize; REQUIRED.len()];
    for (k, name) in REQUIRED.iter().enumerate() {
        cols[k] = col(name).ok_or_else(|| InstrumentsError::Row {
            line: 1,
            msg: format!("no column {name} (expected a header like {HEADER:?})"),
        })?;
    }
    let (series, symbol_name) = (col("SEM_SERIES"), col("SM_SYMBOL_NAME"));
    let mut out = Vec::new();
    for (i, rec) in records.enumerate() {
        let line = rec
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i + 2, |p| p.line() as usize);
        let row_err = |msg: String| InstrumentsError::Row { line, msg };
        let f = rec.map_err(|e| row_err(e.to_string()))?;
        if f.len() == 1 && f.get(0).is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let text = |k: Option<usize>| k.and_then(|k| f.get(k)).unwrap_or("").trim().to_string();
        let c = |k: usize| text(Some(cols[k]));
        let id = c(2);
        let security_id = id
            .parse::<u32>()
            .map_err(|_| row_err(format!("SEM_SMST_SECURITY_ID {id:?} is not a number")))?;
        out.push(Row {
            exchange: c(0),
            segment: c(1),
            security_id,
            instrument: c(3),
            trading_symbol: c(4),
            lot: c(5),
            custom_symbol: c(6),
            expiry: c(7),
            strike: c(8),
            option_type: c(9),
            tick_size: c(10),
            series: text(series),
            symbol_name: text(symbol_name),
        });
    }
    Ok(out)
}

/// Reads the master from an `http(s)://` URL or a file path (gzip or plain).
pub fn load(source: &str) -> Result<Vec<Row>, InstrumentsError> {
    let text = crate::brokers::master::fetch_text(source).map_err(|e| InstrumentsError::Load {
        source_name: source.to_owned(),
        msg: e.message().to_owned(),
    })?;
    parse(&text)
}

/// Writes rows in Dhan's column order (the mock broker serves this).
pub fn to_csv(rows: &[Row]) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() * 128 + HEADER.len()));
    let _ = w.write_record(HEADER.split(','));
    for r in rows {
        let id = r.security_id.to_string();
        // Writing into a Vec cannot fail.
        let _ = w.write_record([
            r.exchange.as_str(),
            &r.segment,
            &id,
            &r.instrument,
            "0",
            &r.trading_symbol,
            &r.lot,
            &r.custom_symbol,
            &r.expiry,
            &r.strike,
            &r.option_type,
            &r.tick_size,
            "NA",
            &r.instrument,
            &r.series,
            &r.symbol_name,
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The feed segment of a row (`NSE` + `E` → `NSE_EQ`), `None` for segments the feed does not carry
/// (mutual funds, …).
pub fn feed_segment(r: &Row) -> Option<u8> {
    Some(match (r.exchange.as_str(), r.segment.as_str()) {
        (_, "I") => segment::IDX_I,
        ("NSE", "E") => segment::NSE_EQ,
        ("NSE", "D") => segment::NSE_FNO,
        ("NSE", "C") => segment::NSE_CURRENCY,
        ("BSE", "E") => segment::BSE_EQ,
        ("BSE", "D") => segment::BSE_FNO,
        ("BSE", "C") => segment::BSE_CURRENCY,
        ("MCX", "M") => segment::MCX_COMM,
        _ => return None,
    })
}

/// The tick size in price units (10^-7 rupee) from the master's paise text; 0 when absent or odd
/// (the parser then uses one paisa).
pub fn tick_units(r: &Row) -> i64 {
    match price::parse(&r.tick_size) {
        // paise × 10^7 / 100 = rupees × 10^7
        Some(p) if p > 0 && p % 100 == 0 => p / 100,
        _ => 0,
    }
}

/// The OpenAlgo `(exchange, symbol)` for a row; `None` for a segment the feed does not carry.
pub fn openalgo_name(r: &Row) -> Option<(&'static str, String)> {
    let seg = feed_segment(r)?;
    if seg == segment::IDX_I {
        let exch = match r.exchange.as_str() {
            "NSE" => "NSE_INDEX",
            "BSE" => "BSE_INDEX",
            "MCX" => "MCX_INDEX",
            _ => return None,
        };
        return Some((exch, naming::index_name(&r.trading_symbol)));
    }
    let exch = match seg {
        segment::NSE_EQ => "NSE",
        segment::BSE_EQ => "BSE",
        segment::NSE_FNO => "NFO",
        segment::BSE_FNO => "BFO",
        segment::NSE_CURRENCY => "CDS",
        segment::BSE_CURRENCY => "BCD",
        _ => "MCX",
    };
    if matches!(seg, segment::NSE_EQ | segment::BSE_EQ) {
        return Some((exch, r.trading_symbol.clone()));
    }
    let under = r.trading_symbol.split('-').next().unwrap_or("");
    let kind = match (r.instrument.get(..3), r.option_type.as_str()) {
        (Some("FUT"), _) => "FUT",
        (Some("OPT"), t @ ("CE" | "PE")) => t,
        _ => "",
    };
    let sym = naming::iso_date_code(&r.expiry)
        .filter(|_| !under.is_empty())
        .and_then(|d| naming::derivative(under, &d, kind, &r.strike))
        .unwrap_or_else(|| r.trading_symbol.clone());
    Some((exch, sym))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,SEM_OPTION_TYPE,SEM_TICK_SIZE,SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,SM_SYMBOL_NAME\n\
NSE,E,3045,EQUITY,,SBIN,1.0,State Bank of India,,,,5.0000,NA,ES,EQ,STATE BANK OF INDIA\n\
NSE,I,13,INDEX,,NIFTY,1.0,Nifty 50,,,,0.0000,NA,INDEX,X,NIFTY\n\
NSE,D,35005,FUTIDX,0,NIFTY-Jan2025-FUT,75.0,NIFTY JAN FUT,2025-01-30 14:30:00,-0.01000,XX,10.0000,M,FUTIDX,NA,NIFTY\n\
NSE,D,43210,OPTIDX,0,NIFTY-Jan2025-24000-CE,75.0,NIFTY 30 JAN 24000 CALL,2025-01-30 14:30:00,24000.00000,CE,5.0000,W,OPTIDX,NA,NIFTY\n\
NSE,C,8080,FUTCUR,0,USDINR-Jan2025-FUT,1.0,USDINR JAN FUT,2025-01-29 12:00:00,-0.01000,XX,0.2500,M,FUTCUR,NA,USDINR\n\
MCX,M,114,FUTCOM,0,GOLD-Feb2025-FUT,1.0,GOLD FEB FUT,2025-02-05 23:30:00,-0.01000,XX,100.0000,M,FUTCOM,NA,GOLD\n\
BSE,I,51,INDEX,,SENSEX,1.0,Sensex,,,,0.0000,NA,INDEX,X,SENSEX\n\
NSE,M,9999,MF,,SOMEFUND,1.0,Some fund,,,,1.0000,NA,MF,NA,SOMEFUND\n";

    #[test]
    fn parses_and_maps_to_openalgo_names() {
        let rows = parse(CSV).unwrap();
        assert_eq!(rows.len(), 8);
        let names: Vec<_> = rows.iter().map(openalgo_name).collect();
        assert_eq!(names[0], Some(("NSE", "SBIN".into())));
        assert_eq!(names[1], Some(("NSE_INDEX", "NIFTY".into())));
        assert_eq!(names[2], Some(("NFO", "NIFTY30JAN25FUT".into())));
        assert_eq!(names[3], Some(("NFO", "NIFTY30JAN2524000CE".into())));
        assert_eq!(names[4], Some(("CDS", "USDINR29JAN25FUT".into())));
        assert_eq!(names[5], Some(("MCX", "GOLD05FEB25FUT".into())));
        assert_eq!(names[6], Some(("BSE_INDEX", "SENSEX".into())));
        assert_eq!(names[7], None, "mutual funds are not on the feed");
        let segs: Vec<_> = rows.iter().map(feed_segment).collect();
        assert_eq!(
            segs[..6],
            [Some(1), Some(0), Some(2), Some(2), Some(3), Some(5)]
        );
    }

    #[test]
    fn tick_sizes_are_paise() {
        let rows = parse(CSV).unwrap();
        let ticks: Vec<i64> = rows.iter().map(tick_units).collect();
        // 0.05, none (index), 0.10, 0.05, 0.0025, 1.00 rupee
        assert_eq!(
            ticks[..6],
            [500_000, 0, 1_000_000, 500_000, 25_000, 10_000_000]
        );
    }

    #[test]
    fn columns_are_found_by_name_and_bad_rows_name_their_line() {
        let moved = "SEM_TICK_SIZE,SEM_SMST_SECURITY_ID,SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_INSTRUMENT_NAME,SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,SEM_OPTION_TYPE\n5.0000,3045,NSE,E,EQUITY,SBIN,1,SBI,,,\n";
        let rows = parse(moved).unwrap();
        assert_eq!(openalgo_name(&rows[0]), Some(("NSE", "SBIN".into())));
        let bad = format!("{HEADER}\nNSE,E,x1,EQUITY,,SBIN,1,S,,,,5,NA,ES,EQ,S\n");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("SECURITY_ID"), "{e}");
        assert!(parse("nonsense\n").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn csv_round_trips_and_odd_expiries_fall_back() {
        let rows = parse(CSV).unwrap();
        assert_eq!(parse(&to_csv(&rows)).unwrap(), rows);
        let mut r = rows[2].clone();
        r.expiry = "2Р25-01-30".into();
        assert_eq!(openalgo_name(&r).unwrap().1, "NIFTY-Jan2025-FUT");
        r.expiry = "2025-13-30 14:30:00".into();
        assert_eq!(openalgo_name(&r).unwrap().1, "NIFTY-Jan2025-FUT");
    }
}
