//! Noren instrument keys: `exch|token` (`NSE|2885`), exactly what a subscription's `k` names and
//! what a listing's key holds. Market data names its instrument by `e` and `tk` separately, so the
//! lookup is by (exchange code, token number), both parsed without allocating.

use std::collections::HashMap;

use tickwire_engine::symbols::SymbolId;

/// Noren exchange names, by code (index + 1). Code 0 is "unknown".
pub const EXCHANGES: [&str; 8] = ["NSE", "NFO", "CDS", "MCX", "BSE", "BFO", "NCX", "BCD"];

/// The code of a Noren exchange name (0: not one tickwire knows).
#[inline]
pub fn exchange_code(e: &[u8]) -> u8 {
    match e {
        b"NSE" => 1,
        b"NFO" => 2,
        b"CDS" => 3,
        b"MCX" => 4,
        b"BSE" => 5,
        b"BFO" => 6,
        b"NCX" => 7,
        b"BCD" => 8,
        _ => 0,
    }
}

/// A token number from its decimal text (no sign, at most 10 digits, fits `u32`).
#[inline]
pub fn token_number(t: &[u8]) -> Option<u32> {
    if t.is_empty() || t.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in t {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u64;
    }
    u32::try_from(v).ok()
}

/// Splits `NSE|2885` into (exchange code, token).
pub fn parse_key(key: &str) -> Option<(u8, u32)> {
    let (e, t) = key.split_once('|')?;
    let code = exchange_code(e.as_bytes());
    (code != 0).then_some(())?;
    Some((code, token_number(t.as_bytes())?))
}

/// (exchange code, token) as one map key.
#[inline]
pub fn packed(code: u8, token: u32) -> u64 {
    (code as u64) << 32 | token as u64
}

/// Both directions between symbol ids and Noren keys, built once per feed and shared.
#[derive(Debug, Default)]
pub struct Keys {
    by_token: crate::brokers::keymap::KeyMap<u64>,
    /// Symbol id → `exch|token` (empty: not a Noren instrument, or a key that does not parse).
    of_id: Vec<Box<str>>,
}

impl Keys {
    /// The maps for `keys` (the broker key of each symbol id, `""` when not listed). A key that
    /// does not parse is dropped; the first symbol of a key wins.
    pub fn new(keys: &[Box<str>]) -> Self {
        let mut k = Keys {
            by_token: HashMap::default(),
            of_id: vec![Box::from(""); keys.len()],
        };
        for (id, key) in keys.iter().enumerate() {
            if let Some((code, token)) = parse_key(key) {
                if let std::collections::hash_map::Entry::Vacant(v) =
                    k.by_token.entry(packed(code, token))
                {
                    v.insert(id as SymbolId);
                    k.of_id[id] = key.clone();
                }
            }
        }
        k
    }

    /// The symbol of an exchange code and token.
    #[inline]
    pub fn symbol(&self, code: u8, token: u32) -> Option<SymbolId> {
        self.by_token.get(&packed(code, token)).copied()
    }

    /// The `exch|token` key of a symbol.
    pub fn key(&self, symbol: SymbolId) -> Option<&str> {
        Some(&**self.of_id.get(symbol as usize)?).filter(|k| !k.is_empty())
    }

    /// Number of symbol ids (listed or not).
    pub fn len(&self) -> usize {
        self.of_id.len()
    }

    /// True with no symbol ids at all.
    pub fn is_empty(&self) -> bool {
        self.of_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_map_both_ways() {
        assert_eq!(parse_key("NSE|2885"), Some((1, 2885)));
        assert_eq!(parse_key("BFO|1132417"), Some((6, 1_132_417)));
        for bad in [
            "NSE2885",
            "XYZ|1",
            "NSE|",
            "NSE|-1",
            "NSE|99999999999",
            "NSE|1a",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
        let k = Keys::new(&["NSE|22".into(), "".into(), "NFO|22".into(), "NSE|22".into()]);
        assert_eq!(k.symbol(1, 22), Some(0));
        assert_eq!(k.symbol(2, 22), Some(2));
        assert_eq!(k.symbol(3, 22), None);
        assert_eq!(k.key(0), Some("NSE|22"));
        assert_eq!(k.key(1), None);
        assert_eq!(k.key(3), None, "the first symbol of a key wins");
        assert_eq!(k.len(), 4);
    }
}
