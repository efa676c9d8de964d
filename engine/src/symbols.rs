//! The symbol registry: `(exchange, symbol)` in OpenAlgo naming ↔ a dense `u32` id.
//!
//! Every per-symbol table in tickwire (last values, subscription index, throttle marks, the shm
//! directory) is a flat array indexed by this id, so the registry has a fixed capacity chosen at start
//! (default [`DEFAULT_CAPACITY`], room for a full broker instrument master). Ids are handed out in
//! insertion order and never reused. Lookups by name are for the control path (subscribe requests,
//! instrument loading), not the tick path; they do not allocate.

use std::collections::HashMap;

/// Default number of symbols: a full Kite instrument master is ~120,000 rows.
pub const DEFAULT_CAPACITY: usize = 150_000;

/// Longest exchange name, in bytes (the shm directory field size).
pub const EXCHANGE_MAX: usize = 16;
/// Longest trading symbol, in bytes.
pub const SYMBOL_MAX: usize = 64;
/// Longest broker token / instrument key, in bytes.
pub const TOKEN_MAX: usize = 48;

/// A dense symbol id.
pub type SymbolId = u32;

/// One registered instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolInfo {
    /// OpenAlgo exchange code: `NSE`, `NFO`, `CDS`, `NSE_INDEX`, …
    pub exchange: String,
    /// OpenAlgo trading symbol: `SBIN`, `NIFTY30JAN25FUT`, `NIFTY`, …
    pub symbol: String,
    /// The broker's own identifier (Kite instrument_token as decimal, Upstox instrument key, …).
    pub broker_token: String,
}

/// Why a symbol could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// Every id up to the configured capacity is taken; raise `symbols.capacity`.
    #[error("symbol registry is full ({capacity} symbols); raise the configured capacity")]
    Full {
        /// The configured capacity.
        capacity: usize,
    },
    /// A name is empty or longer than its shm directory field.
    #[error("{field} {value:?} must be 1..={max} bytes")]
    BadName {
        /// Which name: `exchange`, `symbol` or `broker token`.
        field: &'static str,
        /// The offending value.
        value: String,
        /// Its limit in bytes.
        max: usize,
    },
}

/// Maps names to dense ids; see the module docs.
#[derive(Debug)]
pub struct SymbolRegistry {
    capacity: usize,
    // exchange → symbol → id: two levels so `&str` lookups need no owned key.
    by_name: HashMap<String, HashMap<String, SymbolId>>,
    infos: Vec<SymbolInfo>,
}

impl SymbolRegistry {
    /// An empty registry that will accept up to `capacity` symbols.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            by_name: HashMap::new(),
            infos: Vec::new(),
        }
    }

    /// Configured capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of registered symbols (ids `0..len()` are valid).
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// Registers `(exchange, symbol)` with its broker token and returns its id. Registering a name
    /// again returns the existing id and keeps the first token.
    pub fn register(
        &mut self,
        exchange: &str,
        symbol: &str,
        broker_token: &str,
    ) -> Result<SymbolId, RegistryError> {
        check("exchange", exchange, EXCHANGE_MAX)?;
        check("symbol", symbol, SYMBOL_MAX)?;
        if broker_token.len() > TOKEN_MAX {
            return Err(RegistryError::BadName {
                field: "broker token",
                value: broker_token.to_owned(),
                max: TOKEN_MAX,
            });
        }
        if let Some(id) = self.lookup(exchange, symbol) {
            return Ok(id);
        }
        if self.infos.len() >= self.capacity {
            return Err(RegistryError::Full {
                capacity: self.capacity,
            });
        }
        let id = self.infos.len() as SymbolId;
        self.by_name
            .entry(exchange.to_owned())
            .or_default()
            .insert(symbol.to_owned(), id);
        self.infos.push(SymbolInfo {
            exchange: exchange.to_owned(),
            symbol: symbol.to_owned(),
            broker_token: broker_token.to_owned(),
        });
        Ok(id)
    }

    /// The id of `(exchange, symbol)`, if registered. Names are case-sensitive, as in OpenAlgo.
    pub fn lookup(&self, exchange: &str, symbol: &str) -> Option<SymbolId> {
        self.by_name.get(exchange)?.get(symbol).copied()
    }

    /// The names behind an id.
    pub fn info(&self, id: SymbolId) -> Option<&SymbolInfo> {
        self.infos.get(id as usize)
    }

    /// All symbols in id order.
    pub fn iter(&self) -> impl Iterator<Item = (SymbolId, &SymbolInfo)> {
        self.infos
            .iter()
            .enumerate()
            .map(|(i, s)| (i as SymbolId, s))
    }
}

fn check(field: &'static str, value: &str, max: usize) -> Result<(), RegistryError> {
    if value.is_empty() || value.len() > max || value.contains('\0') {
        return Err(RegistryError::BadName {
            field,
            value: value.to_owned(),
            max,
        });
    }
    Ok(())
}

/// Splits `"EXCH:SYMBOL"` (the form the CLI and OpenAlgo SDK keys use) at its first colon.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let (e, s) = key.split_once(':')?;
    (!e.is_empty() && !s.is_empty()).then_some((e, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut r = SymbolRegistry::with_capacity(10);
        assert_eq!(r.register("NSE", "SBIN", "779521"), Ok(0));
        assert_eq!(r.register("NFO", "NIFTY30JAN25FUT", "13238786"), Ok(1));
        assert_eq!(r.register("NSE_INDEX", "NIFTY", "256265"), Ok(2));
        assert_eq!(
            r.register("NSE", "SBIN", "other"),
            Ok(0),
            "re-register keeps the id"
        );
        assert_eq!(r.info(0).unwrap().broker_token, "779521");
        assert_eq!(r.lookup("NSE_INDEX", "NIFTY"), Some(2));
        assert_eq!(
            r.lookup("NSE", "NIFTY"),
            None,
            "exchange is part of the key"
        );
        assert_eq!(r.lookup("nse", "SBIN"), None, "case-sensitive");
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn capacity_and_names_are_enforced() {
        let mut r = SymbolRegistry::with_capacity(1);
        r.register("NSE", "A", "1").unwrap();
        assert_eq!(
            r.register("NSE", "B", "2"),
            Err(RegistryError::Full { capacity: 1 })
        );
        let mut r = SymbolRegistry::with_capacity(5);
        assert!(matches!(
            r.register("", "A", "1"),
            Err(RegistryError::BadName {
                field: "exchange",
                ..
            })
        ));
        let long = "X".repeat(SYMBOL_MAX + 1);
        assert!(matches!(
            r.register("NSE", &long, "1"),
            Err(RegistryError::BadName {
                field: "symbol",
                ..
            })
        ));
        assert!(r.is_empty());
    }

    #[test]
    fn default_capacity_holds_an_instrument_master() {
        let mut r = SymbolRegistry::with_capacity(DEFAULT_CAPACITY);
        for i in 0..DEFAULT_CAPACITY {
            r.register("NFO", &format!("S{i}"), &i.to_string()).unwrap();
        }
        assert_eq!(r.lookup("NFO", "S149999"), Some(149_999));
    }

    #[test]
    fn split_key_needs_both_halves() {
        assert_eq!(split_key("NSE:SBIN"), Some(("NSE", "SBIN")));
        assert_eq!(
            split_key("NSE_INDEX:NIFTY 50"),
            Some(("NSE_INDEX", "NIFTY 50"))
        );
        assert_eq!(split_key("SBIN"), None);
        assert_eq!(split_key(":SBIN"), None);
    }
}
