//! The SPSC rings around the router, per feed and per client IO thread, and a helper that wires one
//! of each.

use super::msg::{Control, Delivery, Upstream};
use crate::doorbell::Doorbell;
use crate::tick::Tick;
use std::sync::Arc;

/// The rings the router reads and writes. `feeds[i]` and `upstream[i]` belong to feed `i`;
/// `controls[k]` and `deliveries[k]` to client IO thread `k`.
#[derive(Default)]
pub struct RouterRings {
    /// Ticks from each feed thread.
    pub feeds: Vec<rtrb::Consumer<Tick>>,
    /// Demand changes to each feed thread.
    pub upstream: Vec<rtrb::Producer<Upstream>>,
    /// Subscribe / unsubscribe from each client IO thread.
    pub controls: Vec<rtrb::Consumer<Control>>,
    /// Throttled deliveries to each client IO thread.
    pub deliveries: Vec<rtrb::Producer<Delivery>>,
    /// Rung after a pass that delivered anything, one per client IO thread (may be empty: the IO
    /// threads then find deliveries on their own schedule).
    pub delivery_bells: Vec<Arc<Doorbell>>,
    /// Rung after a pass that pushed demand changes to the feeds, one per feed thread (may be
    /// empty: the feed threads then look on their own schedule).
    pub upstream_bells: Vec<Arc<Doorbell>>,
}

/// The other ends of [`RouterRings::one_each`]: what the feed thread and the client IO thread hold.
pub struct RingEnds {
    /// Where the feed pushes ticks.
    pub feed: rtrb::Producer<Tick>,
    /// Where the feed reads demand changes.
    pub upstream: rtrb::Consumer<Upstream>,
    /// Where the client IO thread pushes subscribe / unsubscribe.
    pub control: rtrb::Producer<Control>,
    /// Where the client IO thread reads deliveries.
    pub deliveries: rtrb::Consumer<Delivery>,
}

/// Slot counts for [`RouterRings::one_each`].
#[derive(Clone, Copy, Debug)]
pub struct RingSizes {
    /// Ticks, feed → router.
    pub feed: usize,
    /// Demand changes, router → feed.
    pub upstream: usize,
    /// Controls, client IO → router.
    pub control: usize,
    /// Deliveries, router → client IO.
    pub deliveries: usize,
}

/// One more feed's ends of the rings ([`RouterRings::add_feed`]).
pub struct FeedEnds {
    /// Where the feed pushes ticks.
    pub ticks: rtrb::Producer<Tick>,
    /// Where the feed reads demand changes.
    pub upstream: rtrb::Consumer<Upstream>,
}

impl RouterRings {
    /// Adds the rings of one more feed (its index is the number of feeds before it).
    pub fn add_feed(&mut self, sizes: RingSizes) -> FeedEnds {
        let (ticks, feed_rx) = rtrb::RingBuffer::new(sizes.feed);
        let (up_tx, upstream) = rtrb::RingBuffer::new(sizes.upstream);
        self.feeds.push(feed_rx);
        self.upstream.push(up_tx);
        FeedEnds { ticks, upstream }
    }

    /// The rings for one feed and one client IO thread, with no delivery bells yet; the other
    /// ends go to the feed and the client IO thread.
    pub fn one_each(sizes: RingSizes) -> (Self, RingEnds) {
        let (feed, feed_rx) = rtrb::RingBuffer::new(sizes.feed);
        let (up_tx, upstream) = rtrb::RingBuffer::new(sizes.upstream);
        let (control, ctl_rx) = rtrb::RingBuffer::new(sizes.control);
        let (del_tx, deliveries) = rtrb::RingBuffer::new(sizes.deliveries);
        let rings = Self {
            feeds: vec![feed_rx],
            upstream: vec![up_tx],
            controls: vec![ctl_rx],
            deliveries: vec![del_tx],
            delivery_bells: vec![],
            upstream_bells: vec![],
        };
        let ends = RingEnds {
            feed,
            upstream,
            control,
            deliveries,
        };
        (rings, ends)
    }
}
