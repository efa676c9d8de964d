//! Noren symbol masters: `NSE_symbols.txt.zip`, `NFO_symbols.txt.zip`, … (Shoonya publishes them at
//! `https://api.shoonya.com/`; tokens are the exchanges' own, so one set serves every Noren broker).
//! Each zip holds one CSV text file. Columns differ by file and are found by header name:
//!
//! - cash (NSE, BSE): `Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,` (note
//!   the trailing comma, on every line);
//! - derivatives (NFO, BFO, CDS, MCX): `…,Symbol,TradingSymbol,Expiry,Instrument,OptionType,
//!   StrikePrice,TickSize`, with extra columns in some files (CDS `Precision,Multiplier`, MCX `GNGD`).
//!
//! OpenAlgo names: `SBIN-EQ` → `NSE:SBIN` (the `-EQ`/`-BE` series suffix dropped, an `-EQ` row
//! winning a clash); `Instrument` `INDEX` → `NSE_INDEX` / `BSE_INDEX` / `MCX_INDEX` with the index
//! names OpenAlgo uses (`NIFTY INDEX` → `NIFTY`, `NIFTY BANK` → `BANKNIFTY`, else spaces dropped);
//! derivatives: underlying (`Symbol`; for BFO the letters leading `TradingSymbol`, as BFO's
//! `Symbol` is a contract family like `BSXOPT`), expiry `DDMMMYY`, then `FUT`, or the strike
//! (trailing zeros dropped) and `CE`/`PE`: `NIFTY30JAN25FUT`, `NIFTY30JAN2524000CE`.
//! A listing's key is `exch|token` (`NSE|3045`), what a subscription names.

use std::io::Read;

use crate::brokers::master::{self, MasterError};
use crate::brokers::naming;
use crate::brokers::Listing;

/// One master row (the columns tickwire reads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// `NSE`, `NFO`, …
    pub exchange: String,
    /// Exchange token.
    pub token: u32,
    /// Lot size.
    pub lot_size: u32,
    /// Underlying / short name.
    pub symbol: String,
    /// Noren trading symbol (`SBIN-EQ`, `NIFTY30JAN25F`).
    pub trading_symbol: String,
    /// `EQ`, `INDEX`, `FUTIDX`, `OPTIDX`, …
    pub instrument: String,
    /// Tick size (text).
    pub tick_size: String,
    /// `30-JAN-2025`, empty for cash.
    pub expiry: String,
    /// `CE`, `PE`, or `XX` for futures.
    pub option_type: String,
    /// Strike (text).
    pub strike: String,
}

/// Largest unpacked member accepted (NFO's is ~10 MB).
const MAX_MEMBER: u64 = 256 << 20;

/// The text files inside `bytes` when it is a zip, else `bytes` itself.
pub fn unpack(bytes: Vec<u8>, source: &str) -> Result<Vec<Vec<u8>>, MasterError> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Ok(vec![bytes]);
    }
    let err = |m: String| MasterError::format(source, m);
    let mut z =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| err(e.to_string()))?;
        if f.is_dir() {
            continue;
        }
        let mut v = Vec::new();
        f.by_ref()
            .take(MAX_MEMBER)
            .read_to_end(&mut v)
            .map_err(|e| err(format!("unzip: {e}")))?;
        out.push(v);
    }
    if out.is_empty() {
        return Err(err("the zip holds no file".into()));
    }
    Ok(out)
}

/// Parses one master text file (CSV with a header row).
pub fn parse(text: &[u8], source: &str) -> Result<Vec<Row>, MasterError> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    let headers = r
        .headers()
        .map_err(|e| MasterError::format(source, e.to_string()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(ex), Some(tok), Some(ts)) = (col("Exchange"), col("Token"), col("TradingSymbol"))
    else {
        return Err(MasterError::format(
            source,
            "not a Noren symbol master: no Exchange, Token and TradingSymbol columns",
        ));
    };
    let (lot, sym, ins, tick) = (
        col("LotSize"),
        col("Symbol"),
        col("Instrument"),
        col("TickSize"),
    );
    let (exp, opt, strike) = (col("Expiry"), col("OptionType"), col("StrikePrice"));
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| MasterError::format(source, e.to_string()))?;
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").to_string();
        let Ok(token) = get(Some(tok)).parse::<u32>() else {
            continue; // a row without a numeric token cannot be subscribed
        };
        rows.push(Row {
            exchange: get(Some(ex)),
            token,
            lot_size: get(lot).parse().unwrap_or(0),
            symbol: get(sym),
            trading_symbol: get(Some(ts)),
            instrument: get(ins),
            tick_size: get(tick),
            expiry: get(exp),
            option_type: get(opt),
            strike: get(strike),
        });
    }
    Ok(rows)
}

/// Every row of every master in `source` (URLs or files, comma-separated; zip or plain).
pub fn load(source: &str) -> Result<Vec<Row>, MasterError> {
    let mut rows = Vec::new();
    for s in source.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        for text in unpack(master::fetch(s)?, s)? {
            rows.extend(parse(&text, s)?);
        }
    }
    Ok(rows)
}

/// The listings of `source`, `-EQ` rows first so that they win a name clash with another series.
pub fn listings(source: &str) -> Result<Vec<Listing>, MasterError> {
    let rows = load(source)?;
    let (eq, rest): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| r.trading_symbol.ends_with("-EQ"));
    Ok(eq
        .into_iter()
        .chain(rest)
        .filter_map(|r| {
            let (exchange, symbol) = openalgo_name(r)?;
            Some(Listing {
                exchange: exchange.to_string(),
                symbol,
                key: format!("{}|{}", r.exchange, r.token),
            })
        })
        .collect())
}

/// The OpenAlgo (exchange, symbol) of a row, `None` for an exchange tickwire does not serve or a
/// derivative whose expiry or option type cannot be read.
pub fn openalgo_name(r: &Row) -> Option<(&'static str, String)> {
    let (exchange, index) = match r.exchange.as_str() {
        "NSE" => ("NSE", "NSE_INDEX"),
        "BSE" => ("BSE", "BSE_INDEX"),
        "NFO" => ("NFO", ""),
        "BFO" => ("BFO", ""),
        "CDS" => ("CDS", ""),
        "BCD" => ("BCD", ""),
        "MCX" => ("MCX", "MCX_INDEX"),
        "NCX" => ("NCDEX", ""),
        _ => return None,
    };
    if r.instrument.eq_ignore_ascii_case("INDEX") {
        return (!index.is_empty()).then(|| (index, naming::index_name(&r.trading_symbol)));
    }
    if r.expiry.is_empty() {
        let ts = r.trading_symbol.as_str();
        let sym = match exchange {
            "NSE" => ts
                .strip_suffix("-EQ")
                .or_else(|| ts.strip_suffix("-BE"))
                .unwrap_or(ts),
            _ => ts,
        };
        return (!sym.is_empty()).then(|| (exchange, sym.to_string()));
    }
    let date = {
        let mut it = r.expiry.trim().split('-');
        let (d, m, y) = (it.next()?, it.next()?, it.next()?);
        it.next().is_none().then_some(())?;
        naming::date_code(d, m, y)?
    };
    let name = if exchange == "BFO" {
        let n = r
            .trading_symbol
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        &r.trading_symbol[..n]
    } else {
        r.symbol.as_str()
    };
    if name.is_empty() {
        return None;
    }
    let kind = match r.option_type.as_str() {
        o @ ("CE" | "PE") => o,
        _ if r.instrument.starts_with("FUT") || r.option_type == "XX" => "FUT",
        _ => return None,
    };
    let sym = naming::derivative(name, &date, kind, &r.strike)?;
    Some((exchange, sym))
}

/// A master file's text for `rows` (cash columns when no row has an expiry, else derivative
/// columns), as Noren publishes it: for the mock and tests.
pub fn to_csv(rows: &[Row]) -> String {
    let derivative = rows.iter().any(|r| !r.expiry.is_empty());
    let mut s = String::new();
    if derivative {
        s.push_str("Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,\n");
        for r in rows {
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},\n",
                r.exchange,
                r.token,
                r.lot_size,
                r.symbol,
                r.trading_symbol,
                r.expiry,
                r.instrument,
                r.option_type,
                r.strike,
                r.tick_size
            ));
        }
    } else {
        s.push_str("Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,\n");
        for r in rows {
            s.push_str(&format!(
                "{},{},{},{},{},{},{},\n",
                r.exchange,
                r.token,
                r.lot_size,
                r.symbol,
                r.trading_symbol,
                r.instrument,
                r.tick_size
            ));
        }
    }
    s
}

/// `text` as a zip holding one file `name` (deflated), as Noren serves a master.
pub fn to_zip(name: &str, text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    // Writing into memory cannot fail but for a bug; an empty zip then fails to load, loudly.
    if w.start_file(name, opts).is_ok() && w.write_all(text).is_ok() {
        if let Ok(c) = w.finish() {
            return c.into_inner();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Header lines as Noren publishes them (Shoonya's NSE and NFO masters, as OpenAlgo and
    // others read them); rows written out by hand.
    const NSE: &str = "Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,\n\
NSE,3045,1,SBIN,SBIN-BE,BE,0.05,\n\
NSE,3045,1,SBIN,SBIN-EQ,EQ,0.05,\n\
NSE,26000,1,Nifty 50,NIFTY INDEX,INDEX,0,\n\
NSE,26009,1,Nifty Bank,NIFTY BANK,INDEX,0,\n\
NSE,xx,1,BAD,BAD-EQ,EQ,0.05,\n";
    const NFO: &str = "Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize\n\
NFO,35001,75,NIFTY,NIFTY30JAN25F,30-JAN-2025,FUTIDX,XX,-0.01,0.05\n\
NFO,43650,75,NIFTY,NIFTY30JAN25C24000,30-JAN-2025,OPTIDX,CE,24000.00,0.05\n\
NFO,43651,75,NIFTY,NIFTY30JAN25P24000.5,30-JAN-2025,OPTIDX,PE,24000.50,0.05\n\
NFO,43652,75,NIFTY,ODD,2025-01-30,OPTIDX,PE,1,0.05\n";
    const CDS: &str = "Exchange,Token,LotSize,Precision,Multiplier,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize\n\
CDS,1048998,1,4,1000,USDINR,USDINR29JAN25F,29-JAN-2025,FUTCUR,XX,-0.01,0.0025\n";
    const BFO: &str = "Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize\n\
BFO,837931,20,BSXOPT,SENSEX26SEP91000PE,24-SEP-2026,OPTIDX,PE,91000,0.05\n";

    fn names(text: &str) -> Vec<(String, String)> {
        parse(text.as_bytes(), "t")
            .unwrap()
            .iter()
            .filter_map(openalgo_name)
            .map(|(e, s)| (e.to_string(), s))
            .collect()
    }

    #[test]
    fn masters_map_to_openalgo_names() {
        let n = |e: &str, s: &str| (e.to_string(), s.to_string());
        assert_eq!(
            names(NSE),
            [
                n("NSE", "SBIN"),
                n("NSE", "SBIN"),
                n("NSE_INDEX", "NIFTY"),
                n("NSE_INDEX", "BANKNIFTY")
            ]
        );
        assert_eq!(
            names(NFO),
            [
                n("NFO", "NIFTY30JAN25FUT"),
                n("NFO", "NIFTY30JAN2524000CE"),
                n("NFO", "NIFTY30JAN2524000.5PE")
            ],
            "an expiry not DD-MMM-YYYY is dropped"
        );
        assert_eq!(names(CDS), [n("CDS", "USDINR29JAN25FUT")]);
        assert_eq!(names(BFO), [n("BFO", "SENSEX24SEP2691000PE")]);
        let rows = parse(NSE.as_bytes(), "t").unwrap();
        assert_eq!(rows.len(), 4, "a row without a numeric token is skipped");
        assert_eq!(rows[1].lot_size, 1);
        assert!(parse(b"a,b\n1,2\n", "t").is_err());
    }

    #[test]
    fn zipped_masters_load_with_eq_rows_first() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("NSE.zip"), dir.path().join("NFO.txt"));
        std::fs::write(&a, to_zip("NSE_symbols.txt", NSE.as_bytes())).unwrap();
        std::fs::write(&b, NFO).unwrap();
        let src = format!("{}, {}", a.display(), b.display());
        let l = listings(&src).unwrap();
        assert_eq!(l.len(), 7);
        assert_eq!(
            (
                l[0].exchange.as_str(),
                l[0].symbol.as_str(),
                l[0].key.as_str()
            ),
            ("NSE", "SBIN", "NSE|3045")
        );
        assert!(l.iter().any(|x| x.key == "NFO|43650"));
        assert!(unpack(b"PK\x03\x04garbage".to_vec(), "z").is_err());
    }

    #[test]
    fn written_masters_read_back() {
        let rows = parse(NFO.as_bytes(), "t").unwrap();
        assert_eq!(parse(to_csv(&rows).as_bytes(), "t").unwrap(), rows);
        let rows = parse(NSE.as_bytes(), "t").unwrap();
        assert_eq!(parse(to_csv(&rows).as_bytes(), "t").unwrap(), rows);
    }
}
