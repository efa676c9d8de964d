//! The router turned by another thread's loop ([`Inline`]): the feed thread hands each parsed tick
//! straight to the router's tick path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Publish, Router};
use crate::doorbell::Doorbell;
use crate::tick::Tick;

/// The router run on another thread's loop instead of its own ("inline"). With one feed on a small
/// machine the feed → router hand-off is a thread wake-up (measured 1.5–3 µs on the same CPU, 25–50 µs
/// across the two vCPUs of the CI VM); inline, the feed thread hands each parsed tick to the
/// router's tick path ([`Inline::tick`]) and runs a pass over the control rings, the flush and the
/// heartbeat after each frame. The index, the throttle and the publishing are the same code; only
/// the thread that turns the crank differs, and the router stays the only writer of shared state.
pub trait Inline: Send {
    /// The tick path for one tick the host parsed (see [`Router::process_tick`]): no ring copy.
    /// `last`: no further tick is at hand (the frame's last packet), see [`Publish::publish_last`].
    fn tick(&mut self, tick: Tick, last: bool);
    /// One pass over every ring (see [`Router::poll`]), then the counters are published; returns
    /// the work done, 0 when idle. The host runs one after every batch of [`Inline::tick`]s.
    fn pass(&mut self) -> usize;
    /// True when a producer has pushed something the router has not taken yet: checked by the host
    /// after announcing a sleep on [`Inline::doorbell`].
    fn has_input(&self) -> bool;
    /// How long the host may sleep before the router has timed work (its heartbeat, a throttle
    /// flush, a retry into a full ring), absent new input.
    fn wait(&self, now: Instant) -> Duration;
    /// The router's doorbell, which producers ring; the host announces its sleeps on it.
    fn doorbell(&self) -> Arc<Doorbell>;
    /// Sets how a ring of the doorbell wakes the host thread (once; later calls are ignored).
    fn set_wake(&self, wake: Box<dyn Fn() + Send + Sync>);
    /// Drains, flushes, and drops the publisher (the shm writer marks its file closed on drop).
    fn finish(self: Box<Self>);
}

impl<P: Publish + Send> Inline for Router<P> {
    #[inline]
    fn tick(&mut self, tick: Tick, last: bool) {
        // The pass's start: one clock read per batch the feed hands over (a broker message), not
        // per tick.
        if self.core.batch_start.is_none() {
            self.core.batch_start = Some(Instant::now());
        }
        self.core.on_tick(tick, last);
    }
    fn pass(&mut self) -> usize {
        let work = self.poll(Instant::now());
        // `poll` publishes only when it took work from a ring; ticks given by `tick` count too.
        self.publish_stats();
        work
    }
    fn has_input(&self) -> bool {
        Router::has_input(self)
    }
    fn wait(&self, now: Instant) -> Duration {
        self.next_due(now)
    }
    fn doorbell(&self) -> Arc<Doorbell> {
        self.bell.clone()
    }
    fn set_wake(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.wake.set(wake);
    }
    fn finish(mut self: Box<Self>) {
        self.drain();
    }
}
