//! Conditional wake-ups: a producer wakes a consumer thread only when that thread is about to
//! sleep, so a busy pipeline makes no wake-up syscalls at all and an idle one reacts at once
//! instead of after its nap.
//!
//! The sleeper announces itself ([`Doorbell::will_sleep`]), re-checks its inputs, then sleeps; the
//! producer pushes its item, then [`Doorbell::ring`]s. Both sides put a SeqCst fence between their
//! store and their load (Dekker's pattern), so at least one of them sees the other: either the
//! sleeper's re-check finds the item, or the producer finds the flag and wakes it.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

/// See the module docs.
pub struct Doorbell {
    sleeping: AtomicBool,
    rings: AtomicU64,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("sleeping", &self.sleeping)
            .finish()
    }
}

impl Doorbell {
    /// A doorbell whose wake-up is `wake` (`Thread::unpark`, `mio::Waker::wake`, …).
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            sleeping: AtomicBool::new(false),
            rings: AtomicU64::new(0),
            wake: Box::new(wake),
        }
    }

    /// Producer side: call after publishing work. Wakes the consumer only if it is going to sleep.
    #[inline]
    pub fn ring(&self) {
        // Orders the producer's push before the flag load (pairs with the fence in will_sleep).
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            self.rings.fetch_add(1, Ordering::Relaxed);
            (self.wake)();
        }
    }

    /// Consumer side: call before the last check of the inputs that precedes sleeping.
    #[inline]
    pub fn will_sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        // Orders the flag store before the consumer's re-check of its inputs.
        fence(Ordering::SeqCst);
    }

    /// Consumer side: call after waking (or after deciding not to sleep).
    #[inline]
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Wake-ups actually sent (for tests and status).
    pub fn wakeups(&self) -> u64 {
        self.rings.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rings_only_when_the_consumer_sleeps() {
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        let bell = Doorbell::new(move || {
            h.fetch_add(1, Ordering::Relaxed);
        });
        bell.ring();
        assert_eq!(
            hits.load(Ordering::Relaxed),
            0,
            "awake consumer: no wake-up"
        );
        bell.will_sleep();
        bell.ring();
        bell.ring();
        assert_eq!(hits.load(Ordering::Relaxed), 1, "one wake-up per sleep");
        assert_eq!(bell.wakeups(), 1);
    }

    #[test]
    fn a_parked_thread_is_woken_promptly() {
        let (tx, mut rx) = rtrb::RingBuffer::<u32>::new(4);
        let slot: Arc<std::sync::OnceLock<std::thread::Thread>> = Arc::default();
        let s2 = slot.clone();
        let bell = Arc::new(Doorbell::new(move || {
            if let Some(t) = s2.get() {
                t.unpark();
            }
        }));
        let b2 = bell.clone();
        let consumer = std::thread::spawn(move || {
            slot.set(std::thread::current()).unwrap();
            let mut got = 0;
            while got < 100 {
                if rx.pop().is_ok() {
                    got += 1;
                    continue;
                }
                b2.will_sleep();
                if rx.is_empty() {
                    // A long nap: only the doorbell can make this test finish in time.
                    std::thread::park_timeout(std::time::Duration::from_secs(30));
                }
                b2.awake();
            }
        });
        let mut tx = tx;
        let start = std::time::Instant::now();
        for i in 0..100 {
            while tx.push(i).is_err() {}
            bell.ring();
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        consumer.join().unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }
}
