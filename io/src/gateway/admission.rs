//! Who gets a connection slot: a budget for connections that have not authenticated yet.
//!
//! Every client connection holds a slot (a consumer id) from the moment it is accepted. Without a
//! separate budget, idle TCP connections that never send a byte can hold every slot, and clients
//! with a key cannot get in (seen: ~1,100 renewed idle connections let 1 of 40 real clients in
//! within 20 s). So connections that have not authenticated (still in the HTTP head, answering
//! `/status`, or upgraded but not yet authenticated) are *pending* and have their own budget, in
//! total and per remote address, well under the slot count. When a new connection would exceed
//! it, a pending connection (of the same address when that address is over its share) is evicted
//! to make room: the oldest of those that have sent nothing yet, else the oldest of the rest. A
//! real client sends its upgrade at once and authenticates within milliseconds, so it is neither
//! idle nor old, while a flood of idle connections only ever evicts itself. Authenticated clients
//! are never evicted; when every slot is held by one, new connections are refused.
//!
//! A socket-free type: the gateway asks [`Admission::admit`] on accept and reports each slot's
//! transitions.

use std::collections::HashMap;
use std::net::IpAddr;

/// The pending-connection budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Pending connections in total.
    pub total: usize,
    /// Pending connections from one remote address.
    pub per_addr: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            total: 256,
            per_addr: 64,
        }
    }
}

/// What to do with a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Take a free slot.
    Take,
    /// Evict the pending connection in this slot first (then take a slot).
    Evict(usize),
    /// Refuse it: every slot is held by an authenticated client.
    Refuse,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    addr: IpAddr,
    /// Sent a complete request head (upgraded, or being answered).
    spoke: bool,
    arrival: u64,
}

/// Pending connections by slot, and their counts.
#[derive(Debug)]
pub struct Admission {
    budget: Budget,
    /// Per slot: the remote address, whether it has sent its request, and the arrival number of a
    /// pending connection.
    pending: Vec<Option<Pending>>,
    per_addr: HashMap<IpAddr, usize>,
    total: usize,
    arrivals: u64,
}

impl Admission {
    /// Tracks `slots` slots under `budget`.
    pub fn new(slots: usize, budget: Budget) -> Self {
        Self {
            budget: Budget {
                total: budget.total.max(1),
                per_addr: budget.per_addr.max(1),
            },
            pending: vec![None; slots],
            per_addr: HashMap::new(),
            total: 0,
            arrivals: 0,
        }
    }

    /// Decides for a new connection from `addr`; `slots_full` when no slot is free.
    pub fn admit(&self, addr: IpAddr, slots_full: bool) -> Admit {
        if self.per_addr.get(&addr).copied().unwrap_or(0) >= self.budget.per_addr {
            return self.oldest(Some(addr)).map_or(Admit::Refuse, Admit::Evict);
        }
        if self.total >= self.budget.total || slots_full {
            return self.oldest(None).map_or(Admit::Refuse, Admit::Evict);
        }
        Admit::Take
    }

    /// A connection from `addr` took `slot`: it is pending until [`Admission::settled`].
    pub fn taken(&mut self, slot: usize, addr: IpAddr) {
        self.settled(slot);
        if let Some(p) = self.pending.get_mut(slot) {
            self.arrivals += 1;
            *p = Some(Pending {
                addr,
                spoke: false,
                arrival: self.arrivals,
            });
            *self.per_addr.entry(addr).or_insert(0) += 1;
            self.total += 1;
        }
    }

    /// The connection in `slot` authenticated or closed: it no longer counts as pending.
    pub fn settled(&mut self, slot: usize) {
        let Some(Pending { addr, .. }) = self.pending.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.total -= 1;
        if let Some(n) = self.per_addr.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&addr);
            }
        }
    }

    /// The connection in `slot` sent its request head: it is evicted only after idle ones.
    pub fn spoke(&mut self, slot: usize) {
        if let Some(Some(p)) = self.pending.get_mut(slot) {
            p.spoke = true;
        }
    }

    /// True while the connection in `slot` has not authenticated.
    #[cfg(test)]
    pub fn is_pending(&self, slot: usize) -> bool {
        self.pending.get(slot).is_some_and(Option::is_some)
    }

    /// Pending connections now.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.total
    }

    /// The pending slot to evict (of `addr` only, if given): the oldest that has sent nothing,
    /// else the oldest. A scan, but only when over budget.
    fn oldest(&self, addr: Option<IpAddr>) -> Option<usize> {
        self.pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (i, p)))
            .filter(|(_, p)| addr.is_none_or(|want| p.addr == want))
            .min_by_key(|(_, p)| (p.spoke, p.arrival))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_flood_evicts_itself_not_authenticated_clients() {
        let mut a = Admission::new(
            8,
            Budget {
                total: 3,
                per_addr: 2,
            },
        );
        // Two idle connections from .1 fill its share; a third evicts the oldest of them.
        assert_eq!(a.admit(ip(1), false), Admit::Take);
        a.taken(0, ip(1));
        assert_eq!(a.admit(ip(1), false), Admit::Take);
        a.taken(1, ip(1));
        assert_eq!(a.admit(ip(1), false), Admit::Evict(0));
        a.settled(0);
        a.taken(0, ip(1));
        assert_eq!(
            a.admit(ip(1), false),
            Admit::Evict(1),
            "the oldest of .1 now"
        );
        // Another address is not held back by .1's share, only by the total.
        assert_eq!(a.admit(ip(2), false), Admit::Take);
        a.taken(2, ip(2));
        assert_eq!(a.pending(), 3);
        assert_eq!(
            a.admit(ip(3), false),
            Admit::Evict(1),
            "total reached: oldest overall"
        );
        a.settled(1);
        a.taken(1, ip(3));
        // One that sent its request goes after the idle ones, however old.
        a.spoke(0);
        assert_eq!(a.admit(ip(3), false), Admit::Evict(2));
        // An authenticated client is no longer pending and is never chosen.
        a.settled(2);
        assert!(!a.is_pending(2));
        assert_eq!(a.admit(ip(3), false), Admit::Take);
    }

    #[test]
    fn full_slots_evict_pending_or_refuse() {
        let mut a = Admission::new(2, Budget::default());
        a.taken(0, ip(1));
        a.taken(1, ip(2));
        assert_eq!(a.admit(ip(3), true), Admit::Evict(0));
        a.settled(0);
        a.settled(1);
        assert_eq!(
            a.admit(ip(3), true),
            Admit::Refuse,
            "all slots authenticated"
        );
        assert_eq!(a.pending(), 0);
        // Settling twice, or a slot out of range, changes nothing.
        a.settled(1);
        a.settled(99);
        a.taken(99, ip(1));
        assert_eq!(a.pending(), 0);
    }
}
