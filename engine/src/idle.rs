//! What a hot loop does when a pass found no work.
//!
//! Spinning gives the lowest wake-up latency and burns a core; on a 2-core machine that starves the
//! other threads, so the default spins for a budget, then yields, then parks for short naps.

use std::hint::spin_loop;
use std::str::FromStr;
use std::thread;
use std::time::Duration;

/// The policy; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Busy-spin forever (a dedicated, isolated core).
    Spin,
    /// `sched_yield` every idle pass.
    Yield,
    /// Spin `spins` passes, yield as many again, then park for `park` per pass.
    Park {
        /// Passes spent spinning before backing off.
        spins: u32,
        /// Nap length once backed off.
        park: Duration,
    },
}

impl Default for IdleStrategy {
    fn default() -> Self {
        IdleStrategy::Park {
            spins: 10_000,
            park: Duration::from_micros(50),
        }
    }
}

impl FromStr for IdleStrategy {
    type Err = String;
    /// `spin`, `yield`, `park` (defaults) or `park:SPINS:MICROS`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spin" => Ok(IdleStrategy::Spin),
            "yield" => Ok(IdleStrategy::Yield),
            "park" => Ok(IdleStrategy::default()),
            _ => {
                let bad = || {
                    format!("idle strategy {s:?}: expected spin, yield, park or park:SPINS:MICROS")
                };
                let mut it = s.split(':');
                if it.next() != Some("park") {
                    return Err(bad());
                }
                let spins = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
                let us: u64 = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
                if it.next().is_some() {
                    return Err(bad());
                }
                Ok(IdleStrategy::Park {
                    spins,
                    park: Duration::from_micros(us),
                })
            }
        }
    }
}

/// The per-thread state of an [`IdleStrategy`].
#[derive(Debug)]
pub struct Idler {
    strategy: IdleStrategy,
    idle_passes: u32,
}

impl Idler {
    /// A fresh idler.
    pub fn new(strategy: IdleStrategy) -> Self {
        Self {
            strategy,
            idle_passes: 0,
        }
    }

    /// Call after a pass that did work.
    #[inline]
    pub fn reset(&mut self) {
        self.idle_passes = 0;
    }

    /// True when the next [`Idler::idle`] would put the thread to sleep (so the caller should
    /// announce it on its doorbell first).
    pub fn next_sleeps(&self) -> bool {
        matches!(self.strategy, IdleStrategy::Park { spins, .. } if self.idle_passes >= spins.saturating_mul(2))
    }

    /// Call after a pass that found nothing.
    #[inline]
    pub fn idle(&mut self) {
        match self.strategy {
            IdleStrategy::Spin => spin_loop(),
            IdleStrategy::Yield => thread::yield_now(),
            IdleStrategy::Park { spins, park } => {
                self.idle_passes = self.idle_passes.saturating_add(1);
                if self.idle_passes <= spins {
                    spin_loop();
                } else if self.idle_passes <= spins.saturating_mul(2) {
                    thread::yield_now();
                } else {
                    thread::park_timeout(park);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("spin".parse(), Ok(IdleStrategy::Spin));
        assert_eq!("yield".parse(), Ok(IdleStrategy::Yield));
        assert_eq!(
            "park:10:200".parse(),
            Ok(IdleStrategy::Park {
                spins: 10,
                park: Duration::from_micros(200)
            })
        );
        assert!("park:x:1".parse::<IdleStrategy>().is_err());
        assert!("nap".parse::<IdleStrategy>().is_err());
    }
}
