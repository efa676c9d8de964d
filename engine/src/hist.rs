//! A lock-free latency histogram ([`Histogram`]) and a per-batch accumulator for it
//! ([`Batch`]).
//!
//! Buckets are powers of two of nanoseconds, from 128 ns to 2^34 ns (17.2 s), plus one overflow
//! bucket: [`BUCKETS`] finite upper bounds, suited to latencies from 100 ns to 10 s. Finding a
//! value's bucket is one `leading_zeros`, no search. The price is resolution: a bucket spans a
//! factor of two, so a percentile read from the buckets (interpolated linearly inside its bucket,
//! capped at the largest value seen) is within a factor of two of the true value; the exact
//! count, sum and maximum are kept beside the buckets.
//!
//! **One writer per instance.** [`Histogram::record`] does a Relaxed load and a Relaxed store per
//! field it changes: no `lock`-prefixed read-modify-write, no allocation, no syscall. That is only
//! correct with a single writing thread (two writers could lose updates), which is how tickwire
//! uses it: the router records its own histograms, the client IO thread its own. Any thread may
//! read ([`Histogram::snapshot`]); a snapshot taken while the writer records can be off by the
//! one update in flight (a bucket counted before the sum moved), never torn per field.

use std::sync::atomic::{AtomicU64, Ordering};

/// Finite buckets: upper bounds 2^7, 2^8, … 2^34 ns.
pub const BUCKETS: usize = 28;
/// log2 of the first upper bound (128 ns).
const FIRST_SHIFT: u32 = 7;

/// The upper bound (inclusive) of finite bucket `i`, in ns.
pub const fn upper_bound(i: usize) -> u64 {
    1u64 << (FIRST_SHIFT as usize + i)
}

/// The bucket of `v` ns: the first whose upper bound is at least `v`; [`BUCKETS`] (the overflow
/// bucket) past the last.
#[inline]
pub fn bucket_of(v: u64) -> usize {
    if v <= upper_bound(0) {
        return 0;
    }
    // ceil(log2(v)) for v > 1 is 64 - lzcnt(v - 1).
    let log = 64 - (v - 1).leading_zeros();
    ((log - FIRST_SHIFT) as usize).min(BUCKETS)
}

/// See the module docs.
#[derive(Debug)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last is the overflow bucket.
    counts: [AtomicU64; BUCKETS + 1],
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

#[inline]
fn bump(a: &AtomicU64, by: u64) {
    // Single writer: a plain load and store, not `fetch_add` (a locked instruction on x86).
    a.store(
        a.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl Histogram {
    /// Records one value of `v` ns. Single writer (module docs).
    #[inline]
    pub fn record(&self, v: u64) {
        self.record_n(v, 1);
    }

    /// Records `n` values of `v` ns each. Single writer (module docs).
    #[inline]
    pub fn record_n(&self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        bump(&self.counts[bucket_of(v)], n);
        bump(&self.sum, v.saturating_mul(n));
        if v > self.max.load(Ordering::Relaxed) {
            self.max.store(v, Ordering::Relaxed);
        }
    }

    /// The counts as they are now.
    pub fn snapshot(&self) -> Snapshot {
        let mut counts = [0u64; BUCKETS + 1];
        for (c, a) in counts.iter_mut().zip(&self.counts) {
            *c = a.load(Ordering::Relaxed);
        }
        Snapshot {
            counts,
            sum: self.sum.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts at one moment (see [`Histogram::snapshot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Per bucket, not cumulative; the last is the overflow bucket.
    pub counts: [u64; BUCKETS + 1],
    /// Sum of the values, ns.
    pub sum: u64,
    /// Largest value, ns (0 when empty).
    pub max: u64,
}

impl Snapshot {
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound ns, values at or under it)` for each finite bucket, cumulative, as
    /// Prometheus' `le` buckets; the `+Inf` bucket is [`Snapshot::count`].
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut acc = 0;
        self.counts[..BUCKETS]
            .iter()
            .enumerate()
            .map(move |(i, c)| {
                acc += c;
                (upper_bound(i), acc)
            })
    }

    /// The `q` quantile (0.0..=1.0) in ns, read from the buckets: linear inside the bucket that
    /// holds the rank, capped at the maximum seen. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut acc = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 || acc + c < rank {
                acc += c;
                continue;
            }
            if i == BUCKETS {
                return self.max; // the overflow bucket has no upper bound but the maximum
            }
            let lo = if i == 0 { 0 } else { upper_bound(i - 1) };
            let hi = upper_bound(i);
            let within = (rank - acc) as f64 / c as f64;
            let v = lo + ((hi - lo) as f64 * within) as u64;
            return v.min(self.max);
        }
        self.max
    }
}

/// Receive times of the ticks handled since the last [`Batch::flush`], as runs of equal stamps:
/// the ticks of one broker message share their receive time (the feed reads the clock once per
/// message), so a batch is usually a handful of runs. Fixed room, no allocation: past
/// [`Batch::RUNS`] runs, further ticks join the last run and keep its stamp when it is the older
/// one (their latency is then overstated by at most the time between the two stamps).
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    runs: [(i64, u32); Batch::RUNS],
    len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            runs: [(0, 0); Batch::RUNS],
            len: 0,
        }
    }
}

impl Batch {
    /// Runs kept apart before they merge.
    pub const RUNS: usize = 32;

    /// Notes one tick received at `recv_ns` (0: not stamped, ignored).
    #[inline]
    pub fn add(&mut self, recv_ns: i64) {
        if recv_ns <= 0 {
            return;
        }
        if self.len > 0 {
            let last = &mut self.runs[self.len - 1];
            if last.0 == recv_ns || self.len == Self::RUNS {
                last.0 = last.0.min(recv_ns);
                last.1 += 1;
                return;
            }
        }
        self.runs[self.len] = (recv_ns, 1);
        self.len += 1;
    }

    /// True when no tick was noted since the last flush.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records every noted tick's latency to `now_ns` (one clock read for the whole batch, taken
    /// by the caller after the batch's work) and empties the batch.
    #[inline]
    pub fn flush(&mut self, h: &Histogram, now_ns: i64) {
        for &(t, n) in &self.runs[..self.len] {
            h.record_n(now_ns.saturating_sub(t).max(0) as u64, u64::from(n));
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_boundaries() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(128), 0, "upper bounds are inclusive");
        assert_eq!(bucket_of(129), 1);
        assert_eq!(bucket_of(256), 1);
        assert_eq!(bucket_of(257), 2);
        assert_eq!(bucket_of(1_000), 3, "1 µs is in (512, 1024]");
        assert_eq!(bucket_of(upper_bound(BUCKETS - 1)), BUCKETS - 1);
        assert_eq!(bucket_of(upper_bound(BUCKETS - 1) + 1), BUCKETS);
        assert_eq!(bucket_of(u64::MAX), BUCKETS);
        assert_eq!(
            upper_bound(BUCKETS - 1),
            17_179_869_184,
            "2^34 ns, over 10 s"
        );
        for i in 0..BUCKETS {
            assert_eq!(bucket_of(upper_bound(i)), i);
            assert_eq!(bucket_of(upper_bound(i) + 1), i + 1);
        }
    }

    #[test]
    fn counts_sum_max_and_cumulative() {
        let h = Histogram::default();
        h.record(100);
        h.record(200);
        h.record_n(1_000, 3);
        h.record(20_000_000_000); // overflow: past 2^34 ns
        let s = h.snapshot();
        assert_eq!(s.count(), 6);
        assert_eq!(s.sum, 100 + 200 + 3_000 + 20_000_000_000);
        assert_eq!(s.max, 20_000_000_000);
        let cum: Vec<_> = s.cumulative().take(4).collect();
        assert_eq!(cum, vec![(128, 1), (256, 2), (512, 2), (1024, 5)]);
        assert_eq!(s.cumulative().last(), Some((upper_bound(BUCKETS - 1), 5)));
    }

    #[test]
    fn percentiles_from_buckets() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile(0.5), 0, "empty");
        // 90 values of 1,000 ns (bucket (512, 1024]) and 10 of 100,000 ns ((65536, 131072]).
        h.record_n(1_000, 90);
        h.record_n(100_000, 10);
        let s = h.snapshot();
        let p50 = s.quantile(0.5);
        assert!((512..=1024).contains(&p50), "{p50}");
        let p90 = s.quantile(0.9);
        assert!((512..=1024).contains(&p90), "{p90}");
        let p99 = s.quantile(0.99);
        assert!(
            (65_536..=100_000).contains(&p99),
            "{p99}: capped at the max"
        );
        assert_eq!(s.quantile(1.0), 100_000, "the top is the maximum seen");
        // Only overflow values: the maximum.
        let o = Histogram::default();
        o.record(50_000_000_000);
        assert_eq!(o.snapshot().quantile(0.5), 50_000_000_000);
    }

    #[test]
    fn batch_runs_and_merging() {
        let h = Histogram::default();
        let mut b = Batch::default();
        assert!(b.is_empty());
        b.add(0); // not stamped
        assert!(b.is_empty());
        for _ in 0..3 {
            b.add(1_000);
        }
        b.add(1_500);
        b.flush(&h, 2_000);
        let s = h.snapshot();
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum, 3 * 1_000 + 500);
        assert!(b.is_empty());
        // Past RUNS distinct stamps, the rest join the last run with the older stamp.
        let h = Histogram::default();
        for i in 0..(Batch::RUNS as i64 + 10) {
            b.add(10_000 + i);
        }
        b.flush(&h, 20_000);
        let s = h.snapshot();
        assert_eq!(s.count(), Batch::RUNS as u64 + 10);
        assert_eq!(s.max, 10_000, "the first tick's latency");
    }
}
