//! A stalled connection (`super::super::watch`): open, its market open, but silent for far longer
//! than usual. It is dropped to dial again.

use std::sync::atomic::Ordering;

use tickwire_engine::clock::now_ns;

use super::{Conn, Ctx};
use crate::feed::error::FeedError;
use crate::feed::status::feed_state;
use crate::feed::watch::StaleConfig;

impl Conn {
    /// True when the connection has delivered nothing for far longer than usual
    /// ([`DataClock::stalled`]).
    pub fn stalled(&self, now_ns: i64, cfg: &StaleConfig) -> bool {
        self.clock.stalled(now_ns, cfg).is_some()
    }

    /// Drops a stalled connection (open, but silent for far longer than usual while its market is
    /// open) to dial again; counted, and shown as `stalled` until the dial starts.
    pub fn stall(&mut self, ctx: &mut Ctx<'_>) {
        let Some((quiet, usual)) = self.clock.stalled(now_ns(), &ctx.cfg.stale) else {
            return;
        };
        let why = format!(
            "stalled: no data for {:.1} s while the market is open (usually every {:.1} s)",
            quiet as f64 / 1e9,
            usual as f64 / 1e9
        );
        ctx.status.stalls.fetch_add(1, Ordering::Relaxed);
        ctx.status.conns[self.idx]
            .stalls
            .fetch_add(1, Ordering::Relaxed);
        self.fail(ctx, FeedError::retry(why));
        if ctx.status.conns[self.idx].state.load(Ordering::Relaxed) == feed_state::BACKOFF {
            ctx.status.set_conn_state(self.idx, feed_state::STALLED);
        }
    }
}
