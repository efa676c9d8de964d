//! New credentials for a running feed: the hand-over from the thread that re-reads them (a file
//! changed, SIGHUP) to the feed thread, which reconnects every connection of the feed with them.
//!
//! What crosses is a whole new [`ProtocolFactory`], made by the sender: building one rebuilds the
//! broker's instrument tables (milliseconds for a large master), which must not happen on a feed
//! thread that may be running the router inline. The feed thread only swaps the factory in and
//! makes one protocol value per connection (a few `Arc` clones each).
//!
//! A bounded SPSC ring (4 slots) carries it; the feed looks at it once per pass, as it does at its
//! demand ring, never per tick. The sender rings the feed thread's doorbell so that a sleeping
//! thread picks it up at once. The newest renewal wins: the feed takes everything waiting and keeps
//! the last.

use std::sync::Arc;

use tickwire_engine::doorbell::Doorbell;

use super::pool::ProtocolFactory;

/// Renewals that may wait at once; a reload thread that finds the ring full tries again later.
const SLOTS: usize = 4;

/// One renewal: the feed's protocol made with new credentials (or with the same ones, to try
/// them again now).
pub struct Renewal {
    /// Makes one protocol value per connection.
    pub factory: ProtocolFactory,
    /// Why, for the feed's log line (`new credentials from /etc/tickwire/credentials`).
    pub why: String,
}

/// The sending end (the reload thread's).
pub struct RenewSender {
    tx: rtrb::Producer<Renewal>,
    bell: Arc<Doorbell>,
}

/// The receiving end (the feed's, in [`super::Feed::renew`]).
pub struct RenewInbox {
    rx: rtrb::Consumer<Renewal>,
}

/// A channel to one feed, whose thread `bell` wakes (`FeedPoller::doorbell`).
pub fn channel(bell: Arc<Doorbell>) -> (RenewSender, RenewInbox) {
    let (tx, rx) = rtrb::RingBuffer::new(SLOTS);
    (RenewSender { tx, bell }, RenewInbox { rx })
}

impl RenewSender {
    /// Hands `r` to the feed and wakes its thread; gives it back when the ring is full.
    pub fn send(&mut self, r: Renewal) -> Result<(), Renewal> {
        match self.tx.push(r) {
            Ok(()) => {
                self.bell.ring();
                Ok(())
            }
            Err(rtrb::PushError::Full(r)) => Err(r),
        }
    }
}

impl RenewInbox {
    /// True when a renewal waits (one atomic load pair; checked once per feed pass).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// The newest renewal waiting, if any (older ones are dropped).
    pub fn take(&mut self) -> Option<Renewal> {
        let mut last = None;
        while let Ok(r) = self.rx.pop() {
            last = Some(r);
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn renewal(why: &str) -> Renewal {
        Renewal {
            factory: Box::new(|| unreachable!("not called")),
            why: why.into(),
        }
    }

    #[test]
    fn the_newest_renewal_wins_and_a_full_ring_says_so() {
        let rung = Arc::new(AtomicUsize::new(0));
        let r = rung.clone();
        let bell = Arc::new(Doorbell::new(move || {
            r.fetch_add(1, Ordering::Relaxed);
        }));
        let (mut tx, mut rx) = channel(bell.clone());
        assert!(rx.is_empty() && rx.take().is_none());
        bell.will_sleep();
        assert!(tx.send(renewal("a")).is_ok());
        assert_eq!(
            rung.load(Ordering::Relaxed),
            1,
            "a sleeping feed thread is woken"
        );
        for w in ["b", "c", "d"] {
            assert!(tx.send(renewal(w)).is_ok());
        }
        assert_eq!(tx.send(renewal("e")).err().map(|r| r.why), Some("e".into()));
        assert!(!rx.is_empty());
        assert_eq!(rx.take().map(|r| r.why), Some("d".into()));
        assert!(rx.is_empty());
    }
}
