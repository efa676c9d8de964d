//! One folder per broker, each implementing [`crate::feed::BrokerProtocol`] and loading its
//! instrument master into OpenAlgo names. `docs/adding-a-broker.md` walks through adding one.
//!
//! - [`kite`]: Zerodha Kite Connect's ticker (binary, big-endian).
//! - [`upstox`]: Upstox Market Data Feed V3 (protobuf).
//! - [`fyers`]: Fyers API v3 data socket (binary, stateful topics).
//! - [`angel`]: Angel One SmartAPI WebSocket 2.0 (binary, little-endian).
//! - [`dhan`]: Dhan live market feed v2 (binary, little-endian).
//! - [`noren`]: Noren (Shoonya, Flattrade, …): JSON text with partial updates.
//! - [`master`]: fetching a master (URL or file, gzip or plain).

pub mod angel;
pub mod dhan;
pub mod fyers;
pub mod kite;
pub mod master;
pub mod noren;
pub mod upstox;

use std::sync::Arc;

use tickwire_engine::symbols::SymbolRegistry;

use crate::feed::{BrokerProtocol, ProtocolFactory};

/// OpenAlgo's exchange names: what a listing's `exchange` is, and what a feed may be told to serve.
pub const EXCHANGES: &[&str] = &[
    "NSE",
    "BSE",
    "NFO",
    "BFO",
    "CDS",
    "BCD",
    "MCX",
    "NCDEX",
    "NSE_INDEX",
    "BSE_INDEX",
    "MCX_INDEX",
];

/// One instrument a broker lists, under its OpenAlgo name, with the broker's own key for it (Kite's
/// instrument token, Upstox's instrument key) as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// OpenAlgo exchange (`NSE`, `NFO`, `NSE_INDEX`).
    pub exchange: String,
    /// OpenAlgo symbol (`SBIN`, `NIFTY30JAN25FUT`).
    pub symbol: String,
    /// The broker's key.
    pub key: String,
}

/// Which broker a feed speaks, with its credentials.
#[derive(Clone, Debug)]
pub enum BrokerConfig {
    /// Zerodha Kite.
    Kite(kite::KiteConfig),
    /// Upstox.
    Upstox(upstox::UpstoxConfig),
    /// Fyers.
    Fyers(fyers::FyersConfig),
    /// Angel One SmartAPI.
    Angel(angel::AngelConfig),
    /// Dhan.
    Dhan(dhan::DhanConfig),
    /// A Noren broker (Shoonya, Flattrade).
    Noren(noren::NorenConfig),
}

impl BrokerConfig {
    /// `kite`, `upstox`.
    pub fn name(&self) -> &'static str {
        match self {
            BrokerConfig::Kite(_) => "kite",
            BrokerConfig::Upstox(_) => "upstox",
            BrokerConfig::Fyers(_) => "fyers",
            BrokerConfig::Angel(_) => "angel",
            BrokerConfig::Dhan(_) => "dhan",
            BrokerConfig::Noren(c) => c.broker,
        }
    }

    /// Loads the broker's instrument master from `source` (URL or file) as OpenAlgo listings.
    pub fn listings(&self, source: &str) -> Result<Vec<Listing>, String> {
        match self {
            BrokerConfig::Kite(_) => Ok(kite::instruments::load(source)
                .map_err(|e| e.to_string())?
                .iter()
                .map(|r| {
                    let (exchange, symbol) = kite::instruments::openalgo_name(r);
                    Listing {
                        exchange,
                        symbol,
                        key: r.token.to_string(),
                    }
                })
                .collect()),
            BrokerConfig::Upstox(_) => Ok(upstox::instruments::load(source)
                .map_err(|e| e.to_string())?
                .iter()
                .filter_map(|r| {
                    let (exchange, symbol) = upstox::instruments::openalgo_name(r)?;
                    Some(Listing {
                        exchange: exchange.to_string(),
                        symbol,
                        key: r.instrument_key.clone(),
                    })
                })
                .collect()),
            BrokerConfig::Fyers(_) => Ok(fyers::instruments::load(source)
                .map_err(|e| e.to_string())?
                .iter()
                .filter_map(|r| {
                    let (exchange, symbol) = fyers::instruments::openalgo_name(r)?;
                    Some(Listing {
                        exchange: exchange.to_string(),
                        symbol,
                        key: r.ticker.clone(),
                    })
                })
                .collect()),
            BrokerConfig::Angel(_) => angel::listings(source),
            BrokerConfig::Dhan(_) => dhan::listings(source),
            BrokerConfig::Noren(_) => noren::listings(source),
        }
    }

    /// The broker's protocol for the listings registered in `reg` (a listing whose name is not in
    /// the registry is skipped), one instance per call of the factory (per connection); the
    /// instrument tables are built once and shared.
    pub fn protocol(&self, listings: &[Listing], reg: &SymbolRegistry) -> ProtocolFactory {
        let ids = listings
            .iter()
            .filter_map(|l| Some((reg.lookup(&l.exchange, &l.symbol)?, l.key.as_str())));
        match self {
            BrokerConfig::Kite(cfg) => {
                let mut tokens = kite::TokenMap::default();
                let mut token_of = vec![0u32; reg.len()];
                for (id, key) in ids {
                    if let Ok(t) = key.parse::<u32>() {
                        // The first listing of a name wins, as in the registry.
                        if token_of[id as usize] == 0 {
                            token_of[id as usize] = t;
                            tokens.insert(t, id);
                        }
                    }
                }
                let (cfg, tokens, token_of) = (cfg.clone(), Arc::new(tokens), Arc::new(token_of));
                Box::new(move || {
                    Box::new(kite::Kite::new(
                        cfg.clone(),
                        tokens.clone(),
                        token_of.clone(),
                    )) as Box<dyn BrokerProtocol>
                })
            }
            BrokerConfig::Upstox(cfg) => {
                let mut keys = upstox::Keys::default();
                for (id, key) in ids {
                    if keys.of_id.get(id as usize).is_none_or(|k| k.is_empty()) {
                        keys.insert(id, key);
                    }
                }
                let (cfg, keys) = (cfg.clone(), Arc::new(keys));
                Box::new(move || {
                    Box::new(upstox::Upstox::new(cfg.clone(), keys.clone()))
                        as Box<dyn BrokerProtocol>
                })
            }
            BrokerConfig::Fyers(cfg) => {
                let mut tickers = vec![Box::<str>::from(""); reg.len()];
                for (id, key) in ids {
                    if tickers[id as usize].is_empty() {
                        tickers[id as usize] = key.into();
                    }
                }
                let (cfg, tickers) = (cfg.clone(), Arc::new(tickers));
                Box::new(move || {
                    Box::new(fyers::Fyers::new(cfg.clone(), tickers.clone()))
                        as Box<dyn BrokerProtocol>
                })
            }
            BrokerConfig::Angel(cfg) => angel::factory(cfg, keys_by_id(listings, reg)),
            BrokerConfig::Dhan(cfg) => dhan::factory(cfg, keys_by_id(listings, reg)),
            BrokerConfig::Noren(cfg) => noren::factory(cfg, keys_by_id(listings, reg)),
        }
    }
}

/// Each registered symbol's broker key by symbol id (`""`: the broker does not list it); the first
/// listing of a name wins, as in the registry. A broker builds its own lookup tables from this.
pub fn keys_by_id(listings: &[Listing], reg: &SymbolRegistry) -> Arc<Vec<Box<str>>> {
    let mut keys = vec![Box::<str>::from(""); reg.len()];
    for l in listings {
        if let Some(id) = reg.lookup(&l.exchange, &l.symbol) {
            if keys[id as usize].is_empty() {
                keys[id as usize] = l.key.as_str().into();
            }
        }
    }
    Arc::new(keys)
}

/// Registers listings in `reg` (the first listing of a name wins; a name the registry refuses is
/// reported and skipped).
pub fn register(reg: &mut SymbolRegistry, listings: &[Listing]) {
    for l in listings {
        if let Err(e) = reg.register(&l.exchange, &l.symbol, &l.key) {
            eprintln!("instrument {}:{} skipped: {e}", l.exchange, l.symbol);
        }
    }
}
