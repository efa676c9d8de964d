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
//! - [`naming`]: OpenAlgo's symbol names, shared by every broker's master mapping.
//! - [`keymap`]: broker key → symbol id, the one map type every parser looks up in.

pub mod angel;
pub mod dhan;
pub mod excerpt;
pub mod fyers;
pub mod keymap;
pub mod kite;
pub mod master;
pub mod naming;
pub mod noren;
pub mod upstox;

use std::sync::Arc;

use tickwire_engine::symbols::SymbolRegistry;

use crate::feed::ProtocolFactory;

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

/// Which broker a feed speaks, with its credentials. (Its `Debug` shows the tokens: never log it.)
#[derive(Clone, Debug, PartialEq, Eq)]
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

    /// The broker's name as OpenAlgo reports it to clients (`"broker"` fields), and as the journal
    /// names its feed.
    pub fn openalgo_name(&self) -> &'static str {
        match self {
            BrokerConfig::Kite(_) => "zerodha",
            BrokerConfig::Upstox(_) => "upstox",
            BrokerConfig::Fyers(_) => "fyers",
            BrokerConfig::Angel(_) => "angel",
            BrokerConfig::Dhan(_) => "dhan",
            BrokerConfig::Noren(c) => c.broker,
        }
    }

    /// [`BrokerConfig::factory`] for a replay: the same parsers, but nothing that would reach
    /// the network. Fyers' `symbol-token` call is replaced by one that answers nothing (a replay
    /// learns the answers from the journal, `BrokerProtocol::learn`).
    pub fn replay_factory(&self, keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
        match self {
            BrokerConfig::Fyers(cfg) => {
                let cfg = cfg.clone();
                let none: fyers::resolve::ResolveFn = Arc::new(|_: &[&str]| {
                    Err(crate::feed::FeedError::retry(
                        "a replay resolves no symbols: the journal holds the answers",
                    ))
                });
                Box::new(move || {
                    let p = fyers::Fyers::with_resolver(cfg.clone(), keys.clone(), none.clone());
                    Box::new(p) as Box<dyn crate::feed::BrokerProtocol>
                })
            }
            _ => self.factory(keys),
        }
    }

    /// The broker a journal's feed name stands for (its OpenAlgo name: `zerodha`, `upstox`,
    /// `fyers`, `angel`, `dhan`, `shoonya`, `flattrade`, `noren`), with no credentials: a replay
    /// parses with it and never connects.
    pub fn for_replay(name: &str) -> Option<BrokerConfig> {
        Some(match name {
            "zerodha" | "kite" => BrokerConfig::Kite(Default::default()),
            "upstox" => BrokerConfig::Upstox(Default::default()),
            "fyers" => BrokerConfig::Fyers(Default::default()),
            "angel" => BrokerConfig::Angel(Default::default()),
            "dhan" => BrokerConfig::Dhan(Default::default()),
            "shoonya" | "flattrade" | "noren" => {
                let broker = ["shoonya", "flattrade", "noren"]
                    .into_iter()
                    .find(|b| *b == name)?;
                BrokerConfig::Noren(noren::NorenConfig {
                    broker,
                    ..Default::default()
                })
            }
            _ => return None,
        })
    }

    /// Loads the broker's instrument master from `source` (URL or file) as OpenAlgo listings.
    pub fn listings(&self, source: &str) -> Result<Vec<Listing>, String> {
        match self {
            BrokerConfig::Kite(_) => kite::listings(source),
            BrokerConfig::Upstox(_) => upstox::listings(source),
            BrokerConfig::Fyers(_) => fyers::listings(source),
            BrokerConfig::Angel(_) => angel::listings(source),
            BrokerConfig::Dhan(_) => dhan::listings(source),
            BrokerConfig::Noren(_) => noren::listings(source),
        }
    }

    /// The broker's protocol for the listings registered in `reg` (a listing whose name is not in
    /// the registry is skipped), one instance per call of the factory (per connection); the
    /// instrument tables are built once and shared.
    pub fn protocol(&self, listings: &[Listing], reg: &SymbolRegistry) -> ProtocolFactory {
        self.factory(keys_by_id(listings, reg))
    }

    /// The broker's protocol over `keys` ([`keys_by_id`]): what [`BrokerConfig::protocol`] does
    /// after looking the keys up. New credentials for a running feed are a new factory made this
    /// way from the keys the feed started with (the instrument tables are rebuilt, off the feed
    /// thread).
    pub fn factory(&self, keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
        match self {
            BrokerConfig::Kite(cfg) => kite::factory(cfg, keys),
            BrokerConfig::Upstox(cfg) => upstox::factory(cfg, keys),
            BrokerConfig::Fyers(cfg) => fyers::factory(cfg, keys),
            BrokerConfig::Angel(cfg) => angel::factory(cfg, keys),
            BrokerConfig::Dhan(cfg) => dhan::factory(cfg, keys),
            BrokerConfig::Noren(cfg) => noren::factory(cfg, keys),
        }
    }
}

#[cfg(test)]
#[test]
fn replay_knows_every_name_the_journal_writes() {
    for name in [
        "zerodha",
        "upstox",
        "fyers",
        "angel",
        "dhan",
        "shoonya",
        "flattrade",
        "noren",
    ] {
        let b = BrokerConfig::for_replay(name).unwrap();
        assert_eq!(b.openalgo_name(), name);
    }
    assert!(BrokerConfig::for_replay("nobody").is_none());
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
            tracing::warn!("instrument {}:{} skipped: {e}", l.exchange, l.symbol);
        }
    }
}
