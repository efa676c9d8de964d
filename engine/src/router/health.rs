//! The router's share of symbol health (`crate::health`): copying each symbol's health byte to
//! the publisher (the shm file), as the only writer of that file.

use super::{Core, Publish};
use crate::health::state;

impl<P: Publish> Core<P> {
    /// Hands the publisher every symbol whose health byte changed since the last heartbeat (a
    /// byte compare per symbol, ten times a second, off the per-tick path).
    pub(super) fn show_health(&mut self) {
        let Some(h) = &self.cfg.health else { return };
        for (id, shown) in self.health_shown.iter_mut().enumerate() {
            let now = h.state(id as u32);
            if now != *shown {
                *shown = now;
                self.publisher.health(id as u32, now);
            }
        }
    }

    /// Per tick, before it is published: a symbol shown stale is shown live. The feed made it
    /// live before the tick left (`SymbolHealth::touch`); readers see `live` no later than the
    /// tick that ends the silence. One byte compare.
    #[inline]
    pub(super) fn live_again(&mut self, symbol: u32) {
        if let Some(h) = self.health_shown.get_mut(symbol as usize) {
            if *h == state::STALE {
                *h = state::LIVE;
                self.publisher.health(symbol, *h);
            }
        }
    }
}
