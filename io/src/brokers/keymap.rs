//! The map from a broker's instrument key (Kite's token, Angel's exchange type and token, Upstox's
//! key bytes) to a symbol id: one map type and one hasher for every broker's parser.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use tickwire_engine::symbols::SymbolId;

/// A hasher for instrument keys: a multiply per integer, FxHash's mix 8 bytes at a time for byte
/// keys. The keys come from the broker's own master and its frames, never from clients, so
/// SipHash's flooding resistance buys nothing, and its ~25 ns per key was a sizeable part of
/// parsing a small packet.
#[derive(Default)]
pub struct KeyHasher(u64);

/// Fibonacci hashing's odd constant (2^64 / φ): spreads sequential tokens over the high bits
/// hashbrown reads.
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
/// FxHash's constant, for byte keys.
const FX: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(FX);
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        // The xor folds a packed key's high half (Angel's exchange type, Noren's exchange code)
        // into the bits the multiply carries up.
        self.0 = (self.0 ^ n ^ n >> 29).wrapping_mul(MUL);
    }
}

/// Broker key → symbol id, with [`KeyHasher`].
pub type KeyMap<K> = HashMap<K, SymbolId, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_and_byte_keys_find_their_ids() {
        let mut ints: KeyMap<u64> = KeyMap::default();
        let mut bytes: KeyMap<Box<[u8]>> = KeyMap::default();
        for i in 0..10_000u64 {
            ints.insert(i | (i % 7) << 56, i as SymbolId);
            bytes.insert(format!("NSE_EQ|{i}").into_bytes().into(), i as SymbolId);
        }
        for i in 0..10_000u64 {
            assert_eq!(ints.get(&(i | (i % 7) << 56)), Some(&(i as SymbolId)));
            assert_eq!(
                bytes.get(format!("NSE_EQ|{i}").as_bytes()),
                Some(&(i as SymbolId))
            );
        }
        assert_eq!(ints.get(&(1 << 56)), None);
    }
}
