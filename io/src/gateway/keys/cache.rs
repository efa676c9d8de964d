//! Verified keys, so a reconnect storm costs no Argon2 runs: digest of the presented key → the
//! key's name. Held by the client IO thread (a lookup is one SHA-256 of the key and a hash-map
//! probe) and cleared whenever the keys file is reloaded, so a revoked key is never found here.

use std::collections::HashMap;
use std::sync::Arc;

use super::secret::digest;

/// Most entries; past it the cache starts over (each key is verified once more).
const MAX_ENTRIES: usize = 4096;

/// See the module docs.
#[derive(Debug, Default)]
pub struct AuthCache {
    names: HashMap<[u8; 32], Arc<str>>,
}

impl AuthCache {
    /// The name of `key` if it was verified since the last reload.
    pub fn get(&self, key: &str) -> Option<Arc<str>> {
        self.names.get(&digest(key)).cloned()
    }

    /// Remembers that the key with this digest is `name`'s.
    pub fn insert(&mut self, key_digest: [u8; 32], name: Arc<str>) {
        if self.names.len() >= MAX_ENTRIES {
            self.names.clear();
        }
        self.names.insert(key_digest, name);
    }

    /// Forgets everything (the keys file was reloaded).
    pub fn clear(&mut self) {
        self.names.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_clear_and_bound() {
        let mut c = AuthCache::default();
        assert!(c.get("tw_0123abcd_s").is_none());
        c.insert(digest("tw_0123abcd_s"), "desk".into());
        assert_eq!(c.get("tw_0123abcd_s").as_deref(), Some("desk"));
        assert!(c.get("tw_0123abcd_t").is_none(), "another key");
        c.clear();
        assert!(c.get("tw_0123abcd_s").is_none());
        for i in 0..MAX_ENTRIES + 10 {
            c.insert(digest(&i.to_string()), "n".into());
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
