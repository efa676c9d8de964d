//! Fyers' symbol master (`public.fyers.in/sym_details/NSE_CM.csv`, `NSE_FO.csv`, `BSE_CM.csv`,
//! `MCX_COM.csv`, …: no header, 21 columns, one file per segment) and the mapping from Fyers rows
//! to OpenAlgo names, as OpenAlgo's own Fyers master builds them.
//!
//! | Fyers exchange / segment | rows | OpenAlgo exchange, symbol |
//! |---|---|---|
//! | 10 NSE / 10 CM | types 0 EQ, 9 ETF, 2 with `-GB` | `NSE`, the underlying (`SBIN`) |
//! | 10 NSE / 10 CM | type 10 index | `NSE_INDEX`, the underlying without spaces or hyphens (`NIFTY`, `BANKNIFTY`; `NIFTYMID50` → `NIFTYMIDCAP50`) |
//! | 12 BSE / 10 CM | types 0, 4, 50 | `BSE`, the underlying |
//! | 12 BSE / 10 CM | type 10 index | `BSE_INDEX`, OpenAlgo's names (`SENSEX`, `BSE500`, …) |
//! | 10 NSE / 11 FO, 12 BSE / 11 FO, 10 NSE / 12 CD | derivatives | `NFO`, `BFO`, `CDS`: details `NIFTY 28 Jul 26 FUT` → `NIFTY28JUL26FUT`, `NIFTY 07 Jul 26 24350 CE` → `NIFTY07JUL2624350CE` |
//! | 11 MCX / 20 COM | derivatives | `MCX`: the CSV's details are `YY Mon DD` (`SILVER 25 Sep 05 FUT`) and are reordered: `SILVER05SEP25FUT` |
//!
//! Anything else (bonds, other segments) has no OpenAlgo name and is not served. The key a listing
//! carries is the Fyers ticker (column 9, `NSE:SBIN-EQ`): that is what the `symbol-token` call
//! resolves. The CSV is read with the `csv` crate: details and ISINs are free text.

use crate::brokers::master::{self, MasterError};

/// One row (the columns tickwire uses).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// 0: `10100000003045`.
    pub fytoken: String,
    /// 1: `STATE BANK OF INDIA`; derivatives `NIFTY 28 Jul 26 FUT`.
    pub symbol_details: String,
    /// 2: exchange instrument type (0 EQ, 9 ETF, 10 index, 11 index future, 14 index option, …).
    pub instrument_type: i32,
    /// 3: minimum lot.
    pub lot: u64,
    /// 4: tick size, as written (`0.05`).
    pub tick_size: String,
    /// 5: ISIN (may be empty).
    pub isin: String,
    /// 8: expiry, epoch seconds (`None` for cash).
    pub expiry: Option<i64>,
    /// 9: the Fyers ticker, `NSE:SBIN-EQ`.
    pub ticker: String,
    /// 10: 10 NSE, 11 MCX, 12 BSE.
    pub exchange: u32,
    /// 11: 10 CM, 11 FO, 12 CD, 20 COM.
    pub segment: u32,
    /// 12: exchange token.
    pub scrip_code: String,
    /// 13: underlying symbol (`SBIN`, `NIFTY`).
    pub underlying: String,
    /// 15: strike as written (`24350.0`; `-1.0` when none).
    pub strike: String,
    /// 16: `XX`, `CE`, `PE`.
    pub option_type: String,
}

/// Columns a row needs (0 to 16).
const MIN_COLUMNS: usize = 17;

/// Parses one master file's CSV text (`source` names it in errors). A malformed row is an error
/// naming its line: a half-loaded master would silently make symbols unsubscribable.
pub fn parse(source: &str, csv_text: &[u8]) -> Result<Vec<Row>, MasterError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_text);
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        match rd.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(MasterError::format(source, e.to_string())),
        }
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1 && rec[0].trim().is_empty() {
            continue;
        }
        let err = |msg: String| MasterError::format(source, format!("line {line}: {msg}"));
        if rec.len() < MIN_COLUMNS {
            return Err(err(format!(
                "{} columns, expected 21 (at least {MIN_COLUMNS})",
                rec.len()
            )));
        }
        let col = |i: usize| rec[i].trim();
        let num = |i: usize, what: &str| {
            col(i)
                .parse::<i64>()
                .map_err(|_| err(format!("{what} {:?} is not a number", col(i))))
        };
        let expiry = match col(8) {
            "" => None,
            _ => Some(num(8, "expiry")?),
        };
        out.push(Row {
            fytoken: col(0).to_owned(),
            symbol_details: col(1).to_owned(),
            instrument_type: num(2, "instrument type")? as i32,
            lot: num(3, "lot size")?.max(0) as u64,
            tick_size: col(4).to_owned(),
            isin: col(5).to_owned(),
            expiry,
            ticker: col(9).to_owned(),
            exchange: num(10, "exchange")? as u32,
            segment: num(11, "segment")? as u32,
            scrip_code: col(12).to_owned(),
            underlying: col(13).to_owned(),
            strike: col(15).to_owned(),
            option_type: col(16).to_owned(),
        });
    }
    Ok(out)
}

/// Reads every master in `sources` (comma-separated URLs or files, gzip or plain).
pub fn load(sources: &str) -> Result<Vec<Row>, MasterError> {
    let mut rows = Vec::new();
    for src in sources.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        rows.extend(parse(src, &master::fetch(src)?)?);
    }
    Ok(rows)
}

/// `rows` as master CSV lines (the mock broker serves these). The columns tickwire does not read
/// are written with plausible values: trading session `0915-1530|1815-1915:`, no update date, the
/// scrip code as the underlying scrip code, the fytoken as the underlying fytoken, `None,0,0.0`.
pub fn to_csv(rows: &[Row]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        let (ty, lot) = (r.instrument_type.to_string(), r.lot.to_string());
        let expiry = r.expiry.map(|e| e.to_string()).unwrap_or_default();
        let (exchange, segment) = (r.exchange.to_string(), r.segment.to_string());
        // Writing into a Vec cannot fail.
        let _ = w.write_record([
            &*r.fytoken,
            &r.symbol_details,
            &ty,
            &lot,
            &r.tick_size,
            &r.isin,
            "0915-1530|1815-1915:",
            "",
            &expiry,
            &r.ticker,
            &exchange,
            &segment,
            &r.scrip_code,
            &r.underlying,
            &r.scrip_code,
            &r.strike,
            &r.option_type,
            &r.fytoken,
            "None",
            "0",
            "0.0",
        ]);
    }
    w.into_inner().unwrap_or_default()
}

/// OpenAlgo's names for BSE indices that differ from the underlying.
const BSE_INDICES: &[(&str, &str)] = &[
    ("SNXT50", "BSESENSEXNEXT50"),
    ("100", "BSE100"),
    ("200", "BSE200"),
    ("500", "BSE500"),
    ("MIDCAP", "BSEMIDCAP"),
    ("SMLCAP", "BSESMALLCAP"),
];

/// The OpenAlgo `(exchange, symbol)` of a row; `None` for rows OpenAlgo does not list.
pub fn openalgo_name(r: &Row) -> Option<(&'static str, String)> {
    let u = r.underlying.as_str();
    match (r.exchange, r.segment, r.instrument_type) {
        (10, 10, 0 | 9) => Some(("NSE", u.to_owned())),
        (10, 10, 2) if r.ticker.ends_with("-GB") => Some(("NSE", u.to_owned())),
        (10, 10, 10) => {
            let s: String = u.chars().filter(|c| *c != ' ' && *c != '-').collect();
            let s = if s == "NIFTYMID50" {
                "NIFTYMIDCAP50".to_owned()
            } else {
                s
            };
            Some(("NSE_INDEX", s))
        }
        (12, 10, 0 | 4 | 50) => Some(("BSE", u.to_owned())),
        (12, 10, 10) => {
            let s = match BSE_INDICES.iter().find(|(k, _)| *k == u) {
                Some((_, v)) => (*v).to_owned(),
                None => u.to_uppercase().replace(' ', ""),
            };
            Some(("BSE_INDEX", s))
        }
        (10, 11, _) => Some(("NFO", derivative(&r.symbol_details, false)?)),
        (12, 11, _) => Some(("BFO", derivative(&r.symbol_details, false)?)),
        (10, 12, _) => Some(("CDS", derivative(&r.symbol_details, false)?)),
        (11, 20, _) => Some(("MCX", derivative(&r.symbol_details, true)?)),
        _ => None,
    }
}

/// `NAME DD Mon YY FUT` → `NAMEDDMONYYFUT`; `NAME DD Mon YY STRIKE CE` → `NAMEDDMONYYSTRIKECE`.
/// With `yy_first` (MCX's CSV) the date reads `YY Mon DD` and is reordered. `None` when the
/// details do not have that shape.
fn derivative(details: &str, yy_first: bool) -> Option<String> {
    let parts: Vec<&str> = details.split_whitespace().collect();
    let (head, strike, kind) = match parts.as_slice() {
        [head @ .., "FUT"] => (head, None, "FUT"),
        [head @ .., strike, k @ ("CE" | "PE")] => (head, Some(*strike), *k),
        _ => return None,
    };
    let [name @ .., a, mon, b] = head else {
        return None;
    };
    let (dd, yy) = if yy_first { (*b, *a) } else { (*a, *b) };
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit());
    let mon = mon.to_ascii_uppercase();
    if name.is_empty() || !two_digits(dd) || !two_digits(yy) || !master::MONTHS.contains(&&*mon) {
        return None;
    }
    Some(format!(
        "{}{dd}{mon}{yy}{}{kind}",
        name.concat(),
        strike.unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real rows (notes §3): NSE_CM 2024-06-25, BSE_CM 2025-10-10, MCX_COM 2025-09-05, NSE_FO as quoted
    /// from the live master; `…` elisions in the notes filled with the neighbours' values.
    const MASTER: &str = "\
10100000003045,STATE BANK OF INDIA,0,1,0.05,INE062A01020,0915-1530|1815-1915:,2024-06-25,,NSE:SBIN-EQ,10,10,3045,SBIN,3045,-1.0,XX,10100000003045,None,1,4.3
10100000002885,RELIANCE INDUSTRIES LTD,0,1,0.05,INE002A01018,0915-1530|1815-1915:,2024-06-25,,NSE:RELIANCE-EQ,10,10,2885,RELIANCE,2885,-1.0,XX,10100000002885,None,1,5.0
101000000026000,NIFTY50-INDEX,10,0,0.05,,0915-1530|1815-1915:,2024-06-25,,NSE:NIFTY50-INDEX,10,10,26000,NIFTY,26000,-1.0,XX,101000000026000,None,0,0.0
101000000026009,NIFTYBANK-INDEX,10,0,0.05,,0915-1530|1815-1915:,2024-06-25,,NSE:NIFTYBANK-INDEX,10,10,26009,BANKNIFTY,26009,-1.0,XX,101000000026009,None,0,0.0
101000000026017,INDIAVIX-INDEX,10,0,0.01,,0915-1530|1815-1915:,2018-10-29,,NSE:INDIAVIX-INDEX,10,10,26017,INDIAVIX,26017,-1.0,XX,101000000026017,None,0,0.0
101000000026037,FINNIFTY-INDEX,10,0,0.05,,0915-1530|1815-1915:,2024-06-25,,NSE:FINNIFTY-INDEX,10,10,26037,FINNIFTY,26037,-1.0,XX,101000000026037,None,0,0.0
101000000026074,MIDCPNIFTY-INDEX,10,0,0.05,,0915-1530|1815-1915:,2024-06-25,,NSE:MIDCPNIFTY-INDEX,10,10,26074,MIDCPNIFTY,26074,-1.0,XX,101000000026074,None,0,0.0
101000000026014,NIFTYMIDCAP50-INDEX,10,0,0.05,,0915-1530|1815-1915:,2024-06-25,,NSE:NIFTYMIDCAP50-INDEX,10,10,26014,NIFTYMID50,26014,-1.0,XX,101000000026014,None,0,0.0
101000000026013,NIFTYNXT50-INDEX,10,0,0.05,,0915-1530|1815-1915:,2024-06-25,,NSE:NIFTYNXT50-INDEX,10,10,26013,NIFTYNXT50,26013,-1.0,XX,101000000026013,None,0,0.0
12100000001,SENSEX-INDEX,10,0,0.01,,0915-1530|1815-1915:,2025-10-10,,BSE:SENSEX-INDEX,12,10,1,SENSEX,1,-1.0,XX,12100000001,None,0,0.0
121000000012,BANKEX-INDEX,10,0,0.01,,0915-1530|1815-1915:,2025-10-10,,BSE:BANKEX-INDEX,12,10,12,BANKEX,12,-1.0,XX,121000000012,None,0,0.0
1210000000500112,STATE BANK OF INDIA,0,1,0.05,INE062A01020,0915-1530|1815-1915:,2025-10-10,,BSE:SBIN-A,12,10,500112,SBIN,500112,-1.0,XX,1210000000500112,None,0,0.0
1120250905439488,SILVER 25 Sep 05 FUT,30,1,1.0,,0900-2330|1815-1915:,2025-09-05,1757095200,MCX:SILVER25SEPFUT,11,20,439488,SILVER,115,-1.0,XX,1120000000115,1757095200,0,0.0
1120250917462525,CRUDEOIL 25 Sep 17 6150 CE,31,1,0.1,,0900-2330|1815-1915:,2025-09-05,1758132000,MCX:CRUDEOIL25SEP6150CE,11,20,462525,CRUDEOIL,452373,6150.0,CE,1120000000452373,1758132000,0,0.0
101126072861093,NIFTY 28 Jul 26 FUT,11,65,0.1,,0915-1530|1815-1915:,2026-07-03,1785232800,NSE:NIFTY26JULFUT,10,11,61093,NIFTY,26000,-1.0,XX,101000000026000,None,0,0.0
101126070735400,NIFTY 07 Jul 26 24350 CE,14,65,0.05,,0915-1530|1815-1915:,2026-07-03,1783418400,NSE:NIFTY2670724350CE,10,11,35400,NIFTY,26000,24350.0,CE,101000000026000,None,0,0.0
101126092935086,NIFTY 29 Sep 26 29200 CE,14,65,0.05,,0915-1540|1815-1915:,2026-09-09,1790676600,NSE:NIFTY26SEP29200CE,10,11,35086,NIFTY,26000,29200.0,CE,101000000026000,None,0,0.0
101126082558067,BANKNIFTY 25 Aug 26 FUT,11,30,0.2,,0915-1540|1815-1915:,2026-08-20,1787652600,NSE:BANKNIFTY26AUGFUT,10,11,58067,BANKNIFTY,26009,-1.0,XX,101000000026009,None,0,0.0
    ";

    #[test]
    fn the_master_maps_to_openalgo_names() {
        let rows = parse("test", MASTER.as_bytes()).unwrap();
        assert_eq!(rows.len(), 18);
        let sbin = &rows[0];
        assert_eq!(
            (
                sbin.fytoken.as_str(),
                sbin.ticker.as_str(),
                sbin.isin.as_str(),
                sbin.lot,
                sbin.expiry
            ),
            ("10100000003045", "NSE:SBIN-EQ", "INE062A01020", 1, None)
        );
        let names: Vec<_> = rows
            .iter()
            .map(|r| {
                openalgo_name(r)
                    .map(|(e, s)| format!("{e}:{s}"))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            names,
            [
                "NSE:SBIN",
                "NSE:RELIANCE",
                "NSE_INDEX:NIFTY",
                "NSE_INDEX:BANKNIFTY",
                "NSE_INDEX:INDIAVIX",
                "NSE_INDEX:FINNIFTY",
                "NSE_INDEX:MIDCPNIFTY",
                "NSE_INDEX:NIFTYMIDCAP50",
                "NSE_INDEX:NIFTYNXT50",
                "BSE_INDEX:SENSEX",
                "BSE_INDEX:BANKEX",
                "BSE:SBIN",
                "MCX:SILVER05SEP25FUT",
                "MCX:CRUDEOIL17SEP256150CE",
                "NFO:NIFTY28JUL26FUT",
                "NFO:NIFTY07JUL2624350CE",
                "NFO:NIFTY29SEP2629200CE",
                "NFO:BANKNIFTY25AUG26FUT",
            ]
        );
        // MCX's reordered dates agree with the expiry column (IST)
        for r in &rows[12..14] {
            let (y, m, d) = crate::brokers::master::ist_date(r.expiry.unwrap() * 1000);
            let date = format!(
                "{d:02}{}{:02}",
                crate::brokers::master::MONTHS[m as usize - 1],
                y % 100
            );
            assert!(openalgo_name(r).unwrap().1.contains(&date), "{date}");
        }
        let opt = &rows[15];
        assert_eq!(
            (
                opt.strike.as_str(),
                opt.option_type.as_str(),
                opt.instrument_type
            ),
            ("24350.0", "CE", 14)
        );
    }

    #[test]
    fn rows_without_an_openalgo_name_are_skipped() {
        let row = |exchange, segment, ty, details: &str| Row {
            exchange,
            segment,
            instrument_type: ty,
            symbol_details: details.into(),
            underlying: "X".into(),
            ..Row::default()
        };
        assert_eq!(openalgo_name(&row(10, 10, 5, "SDL")), None, "state loans");
        assert_eq!(openalgo_name(&row(10, 20, 0, "")), None, "NSE_COM");
        assert_eq!(
            openalgo_name(&row(10, 11, 11, "NIFTY FUT")),
            None,
            "no date"
        );
        assert_eq!(openalgo_name(&row(10, 11, 11, "NIFTY 28 Foo 26 FUT")), None);
        assert_eq!(
            openalgo_name(&row(10, 12, 14, "USDINR 29 Dec 25 83.25 PE")),
            Some(("CDS", "USDINR29DEC2583.25PE".into()))
        );
        assert_eq!(
            openalgo_name(&row(12, 11, 11, "SENSEX 30 Jan 25 FUT")),
            Some(("BFO", "SENSEX30JAN25FUT".into()))
        );
        let mut bse = row(12, 10, 10, "");
        bse.underlying = "SNXT50".into();
        assert_eq!(
            openalgo_name(&bse),
            Some(("BSE_INDEX", "BSESENSEXNEXT50".into()))
        );
    }

    #[test]
    fn the_master_round_trips_through_the_mocks_writer() {
        let mut rows = parse("test", MASTER.as_bytes()).unwrap();
        rows[0].symbol_details = "STATE BANK, \"SBI\"".into(); // quoting
        let csv = to_csv(&rows);
        assert_eq!(parse("again", &csv).unwrap(), rows);
        let first = String::from_utf8(csv).unwrap();
        let first = first.lines().next().unwrap();
        assert!(
            first.starts_with("10100000003045,\"STATE BANK, \"\"SBI\"\"\",0,1,0.05,"),
            "{first}"
        );
    }

    #[test]
    fn a_broken_master_says_where() {
        let e = parse("m.csv", b"1,2,3\n").unwrap_err().to_string();
        assert!(
            e.contains("m.csv") && e.contains("line 1") && e.contains("3 columns"),
            "{e}"
        );
        let bad_type = MASTER
            .lines()
            .next()
            .unwrap()
            .replacen(",0,1,", ",EQ,1,", 1);
        let e = parse("m.csv", bad_type.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("instrument type"), "{e}");
        assert!(parse("empty", b"").unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let mut lines = MASTER.lines();
        std::fs::write(&a, lines.next().unwrap()).unwrap();
        std::fs::write(&b, lines.collect::<Vec<_>>().join("\n")).unwrap();
        let both = format!("{}, {}", a.display(), b.display());
        assert_eq!(load(&both).unwrap().len(), 18);
    }
}
