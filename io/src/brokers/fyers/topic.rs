//! Topic names: what the data socket subscribes instead of tickers.
//!
//! Fyers resolves a ticker (`NSE:SBIN-EQ`) to a *fytoken* (`10100000003045` = segment code `1010`,
//! expiry `000000`, exchange token `3045`) over HTTP ([`super::resolve`]); the topic is then built
//! from that, exactly as the SDK does, because the server echoes the name verbatim in its snapshot
//! record and that echo is the only way back from the data to the symbol:
//!
//! - `sf|nse_cm|3045`: the symbol feed (LTP, quote, totals, OI), [`Kind::Sf`];
//! - `dp|nse_cm|3045`: five-level depth, [`Kind::Dp`];
//! - `if|nse_cm|Nifty 50`: an index, named by Fyers' index table (space included), [`Kind::If`].

use super::{Excerpt, ParseError};

/// The three record kinds, by their topic prefix. Each has its own field list (`map.json`'s
/// `data_val`, `index_val`, `depthvalue`); values are positional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `sf`: symbol feed, 21 fields.
    Sf,
    /// `if`: index feed, 6 fields.
    If,
    /// `dp`: depth, 30 fields.
    Dp,
}

/// The most fields any kind has.
pub const MAX_FIELDS: usize = 30;

impl Kind {
    /// Numeric fields of this kind.
    pub const fn fields(self) -> usize {
        match self {
            Kind::Sf => 21,
            Kind::If => 6,
            Kind::Dp => MAX_FIELDS,
        }
    }

    /// The topic prefix.
    pub const fn prefix(self) -> &'static str {
        match self {
            Kind::Sf => "sf",
            Kind::If => "if",
            Kind::Dp => "dp",
        }
    }

    /// By a topic name's prefix.
    pub fn of_topic(topic: &str) -> Option<Kind> {
        match topic.get(..3)? {
            "sf|" => Some(Kind::Sf),
            "if|" => Some(Kind::If),
            "dp|" => Some(Kind::Dp),
            _ => None,
        }
    }
}

/// The segment name of a fytoken's first four digits (`map.json`'s `exch_seg_dict`).
pub fn segment(code: &str) -> Option<&'static str> {
    Some(match code {
        "1010" => "nse_cm",
        "1011" => "nse_fo",
        "1012" => "cde_fo",
        "1020" => "nse_com",
        "1120" => "mcx_fo",
        "1210" => "bse_cm",
        "1211" => "bse_fo",
        "1212" => "bcs_fo",
        _ => return None,
    })
}

/// The main entries of `map.json`'s `index_dict` (Fyers ticker → the index's name on the socket).
const INDEX_NAMES: &[(&str, &str)] = &[
    ("NSE:NIFTY50-INDEX", "Nifty 50"),
    ("NSE:NIFTYBANK-INDEX", "Nifty Bank"),
    ("NSE:FINNIFTY-INDEX", "Nifty Fin Service"),
    ("NSE:MIDCPNIFTY-INDEX", "NIFTY MID SELECT"),
    ("NSE:INDIAVIX-INDEX", "India VIX"),
    ("NSE:NIFTYNEXT50-INDEX", "Nifty Next 50"),
    ("NSE:NIFTYNXT50-INDEX", "Nifty Next 50"),
    ("NSE:NIFTYIT-INDEX", "Nifty IT"),
    ("NSE:NIFTY100-INDEX", "Nifty 100"),
    ("NSE:NIFTYMIDCAP50-INDEX", "Nifty Midcap 50"),
    ("NSE:NIFTYSMLCAP50-INDEX", "NIFTY SMLCAP 50"),
    ("BSE:SENSEX-INDEX", "SENSEX"),
    ("BSE:BANKEX-INDEX", "BANKEX"),
    ("BSE:SNSX50-INDEX", "SNSX50"),
    ("BSE:500-INDEX", "BSE500"),
    ("BSE:100-INDEX", "BSE100"),
];

/// True for an index ticker (`NSE:NIFTY50-INDEX`).
pub fn is_index(ticker: &str) -> bool {
    ticker.ends_with("-INDEX")
}

/// The index's name on the socket: from the table, else (as the SDK falls back) the text between
/// `:` and the first `-` (`NSE:NIFTYAUTO-INDEX` → `NIFTYAUTO`).
pub fn index_name(ticker: &str) -> &str {
    if let Some((_, name)) = INDEX_NAMES.iter().find(|(t, _)| *t == ticker) {
        return name;
    }
    let after = ticker.split_once(':').map_or(ticker, |(_, s)| s);
    after.split('-').next().unwrap_or(after)
}

/// One symbol's topics: the main one (`sf` or `if`) and, for a non-index, the depth one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// `sf|…` or `if|…`.
    pub main: Box<str>,
    /// [`Kind::Sf`] or [`Kind::If`].
    pub main_kind: Kind,
    /// `dp|…`; `None` for an index (Fyers has no index depth).
    pub depth: Option<Box<str>>,
}

impl Topics {
    /// The topics a mode needs, with their kinds: LTP and quote the main topic, depth the depth
    /// topic as well (an index only ever has its `if` topic).
    pub fn for_depth(&self, depth: bool) -> impl Iterator<Item = (&str, Kind)> {
        let dp = self.depth.as_deref().filter(|_| depth);
        std::iter::once((&*self.main, self.main_kind)).chain(dp.map(|d| (d, Kind::Dp)))
    }
}

/// The topics of `ticker`, whose fytoken Fyers answered `fytoken`. An unknown segment code or a
/// fytoken too short to hold an exchange token is an error (the symbol is rejected).
pub fn topics(ticker: &str, fytoken: &str) -> Result<Topics, ParseError> {
    let bad = ParseError::BadFytoken(Excerpt::of(fytoken.as_bytes()));
    let seg = fytoken.get(..4).and_then(segment).ok_or(bad)?;
    let token = fytoken.get(10..).filter(|t| !t.is_empty()).ok_or(bad)?;
    let (main, main_kind, depth) = if is_index(ticker) {
        (format!("if|{seg}|{}", index_name(ticker)), Kind::If, None)
    } else {
        (
            format!("sf|{seg}|{token}"),
            Kind::Sf,
            Some(format!("dp|{seg}|{token}").into_boxed_str()),
        )
    };
    // A subscribe packet carries each name behind a one-byte length.
    if main.len() > 255 {
        return Err(ParseError::TopicTooLong(Excerpt::of(main.as_bytes())));
    }
    Ok(Topics {
        main: main.into_boxed_str(),
        main_kind,
        depth,
    })
}
