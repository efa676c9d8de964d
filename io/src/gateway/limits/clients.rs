//! Authenticated clients, in total and per API key: the count behind `--max-clients` and
//! `--max-clients-per-key`. Socket-free: a session asks on authentication and gives its place
//! back when it closes.

use std::collections::HashMap;
use std::sync::Arc;

/// Why a client was not given a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The gateway holds its maximum of authenticated clients.
    Gateway(u32),
    /// This key holds its maximum of clients.
    Key(u32),
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct ClientCounts {
    total: u32,
    per_key: HashMap<Arc<str>, u32>,
}

impl ClientCounts {
    /// Counts a client of `key`, unless the key has `per_key_max` clients already or the gateway
    /// `total_max`.
    pub fn join(&mut self, key: &Arc<str>, per_key_max: u32, total_max: u32) -> Result<(), Full> {
        let held = self.per_key.get(key).copied().unwrap_or(0);
        if held >= per_key_max {
            return Err(Full::Key(per_key_max));
        }
        if self.total >= total_max {
            return Err(Full::Gateway(total_max));
        }
        *self.per_key.entry(key.clone()).or_insert(0) += 1;
        self.total += 1;
        Ok(())
    }

    /// A client of `key` counted by [`ClientCounts::join`] left.
    pub fn leave(&mut self, key: &str) {
        if let Some(n) = self.per_key.get_mut(key) {
            *n -= 1;
            self.total = self.total.saturating_sub(1);
            if *n == 0 {
                self.per_key.remove(key);
            }
        }
    }

    /// Authenticated clients now.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Clients of `key` now.
    pub fn of(&self, key: &str) -> u32 {
        self.per_key.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_key_and_total_caps_and_places_come_back() {
        let (a, b): (Arc<str>, Arc<str>) = ("api-key-1".into(), "api-key-2".into());
        let mut c = ClientCounts::default();
        assert_eq!(c.join(&a, 2, 3), Ok(()));
        assert_eq!(c.join(&a, 2, 3), Ok(()));
        assert_eq!(c.join(&a, 2, 3), Err(Full::Key(2)), "a's own cap");
        assert_eq!(c.join(&b, 2, 3), Ok(()), "b is not held back by a");
        assert_eq!(c.join(&b, 2, 3), Err(Full::Gateway(3)), "the total cap");
        assert_eq!((c.total(), c.of("api-key-1"), c.of("api-key-2")), (3, 2, 1));
        c.leave("api-key-1");
        assert_eq!(c.join(&b, 2, 3), Ok(()));
        c.leave("api-key-2");
        c.leave("api-key-2");
        c.leave("api-key-2"); // more leaves than joins change nothing
        c.leave("nobody");
        assert_eq!((c.total(), c.of("api-key-2")), (1, 0));
    }
}
