//! A bounded set of symbol ids with insertion-ordered draining: the one mechanism behind the
//! coalescing throttle, the per-IO-thread retry list and the upstream retry list.
//!
//! A bit per id says "already in the list"; the list is allocated at full capacity up front, so
//! [`DirtySet::insert`] never allocates and the set can never hold an id twice. Marking an id N times
//! between two drains yields it once: that is the coalescing.

/// See the module docs.
#[derive(Debug, Clone)]
pub struct DirtySet {
    bits: Vec<u64>,
    list: Vec<u32>,
}

impl DirtySet {
    /// A set for ids `0..capacity`.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bits: vec![0; capacity.div_ceil(64)],
            list: Vec::with_capacity(capacity),
        }
    }

    /// Ids this set can hold.
    pub fn capacity(&self) -> usize {
        self.list.capacity()
    }

    /// Adds `id`; returns false if it was already present. Ids at or past the capacity are refused
    /// (false) rather than grown into: callers check ids against the registry first.
    #[inline]
    pub fn insert(&mut self, id: u32) -> bool {
        let (w, b) = (id as usize / 64, 1u64 << (id % 64));
        match self.bits.get_mut(w) {
            Some(word) if *word & b == 0 && (id as usize) < self.list.capacity() => {
                *word |= b;
                // Never reallocates: at most `capacity` distinct ids, and `list` was sized for them.
                debug_assert!(self.list.len() < self.list.capacity());
                self.list.push(id);
                true
            }
            _ => false,
        }
    }

    /// True when `id` is in the set.
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    /// Number of ids in the set.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Calls `f` for ids in insertion order; an id for which `f` returns false stays in the set,
    /// and so does everything after it (the consumer was full: try again later, keep the order).
    pub fn drain_while(&mut self, mut f: impl FnMut(u32) -> bool) {
        let mut done = 0;
        while done < self.list.len() {
            let id = self.list[done];
            if !f(id) {
                break;
            }
            self.bits[id as usize / 64] &= !(1u64 << (id % 64));
            done += 1;
        }
        self.list.drain(..done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_coalesce_and_drain_in_order() {
        let mut d = DirtySet::with_capacity(200);
        assert!(d.insert(5));
        assert!(d.insert(130));
        assert!(!d.insert(5), "second mark merges");
        assert!(d.insert(199));
        assert!(!d.insert(200), "out of range refused");
        let mut seen = vec![];
        d.drain_while(|id| {
            seen.push(id);
            true
        });
        assert_eq!(seen, [5, 130, 199]);
        assert!(d.is_empty());
        assert!(d.insert(5), "re-markable after drain");
    }

    #[test]
    fn refused_ids_stay_for_the_next_drain() {
        let mut d = DirtySet::with_capacity(10);
        for i in 0..5 {
            d.insert(i);
        }
        let mut n = 0;
        d.drain_while(|_| {
            n += 1;
            n <= 2
        });
        assert_eq!(d.len(), 3);
        assert!(!d.contains(0) && !d.contains(1) && d.contains(2));
        let mut rest = vec![];
        d.drain_while(|id| {
            rest.push(id);
            true
        });
        assert_eq!(rest, [2, 3, 4]);
    }
}
