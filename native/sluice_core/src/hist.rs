//! A compact log-linear (HDR-style) histogram of `u64` values, for
//! sojourn-time percentiles.
//!
//! A [`Histogram`] is one fixed-size value with no heap allocation: an array of
//! [`BUCKETS`] `u64` counters plus the exact count, minimum, maximum and sum,
//! 7 984 bytes on 64-bit targets (a compile-time check keeps it ≤ 8 KiB). It
//! can live inline in a NIF resource and be cloned or reset without touching
//! the allocator. Callers record nanoseconds, but nothing here assumes a unit.
//!
//! # Bucket scheme
//!
//! Each power of two is split into [`SUB_BUCKETS`] = 32 equal-width buckets;
//! values below 64 get a bucket each. With `h = floor(log2 v)`:
//!
//! | values                     | bucket index                    | width     |
//! |----------------------------|---------------------------------|-----------|
//! | `0 ..= 63`                 | `v`                             | 1 (exact) |
//! | `2^h ..= 2^(h+1) - 1`, h ≥ 6 | `(h - 5) * 32 + (v >> (h - 5))` | `2^(h-5)` |
//! | `≥ 2^35` (clamped)         | `BUCKETS - 1`                   | —         |
//!
//! `v >> (h - 5)` keeps the leading one and the next five bits of `v`, so it
//! lies in `32 ..= 63` and the indices of consecutive octaves follow each
//! other with no gap: octave `h` owns indices `(h - 4) * 32 ..= (h - 3) * 32 - 1`.
//! The highest octave with buckets of its own is `h = 34`, so values up to
//! [`HIGHEST_TRACKABLE`] = 2^35 − 1 (about 34.4 s in nanoseconds) are
//! bucketed as above, and anything larger (up to `u64::MAX`) is clamped into
//! the last bucket.
//!
//! # Error bound
//!
//! Invariant: a recorded value `v` lands in the bucket whose inclusive bounds
//! `lower ..= upper` contain `min(v, HIGHEST_TRACKABLE)`. A bucket of octave
//! `h` starts at `lower ≥ 2^h` and is `2^(h-5)` wide, so for every value in it
//! `(upper - v) / v ≤ (2^(h-5) - 1) / 2^h < 1/32 = 3.125 %`; below 64 the error
//! is zero. [`Histogram::percentile`] reports the upper bound of the bucket
//! holding the requested rank, capped at the exact maximum, so a reported
//! percentile `q` of a true percentile `x ≤ HIGHEST_TRACKABLE` satisfies
//! `x ≤ q < x * (1 + 1/32)`. The last bucket reports the exact maximum, so a
//! percentile falling among clamped values is reported as the largest value
//! recorded. Count, minimum and maximum are always exact; the mean is exact up
//! to `f64` rounding.
//!
//! Every counter saturates at `u64::MAX` (the sum is a saturating `u128`); no
//! input makes any method panic.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::picture::HistogramForm;

use crate::sync::{lock, Mutex};

/// Bits of the sub-bucket index: each power of two is split into `2^SUB_BITS` buckets.
const SUB_BITS: u32 = 5;

/// Buckets per power of two; also the inverse of the worst-case relative error.
pub const SUB_BUCKETS: usize = 1 << SUB_BITS;

/// The highest octave (`floor(log2 v)`) that has buckets of its own.
const TOP_OCTAVE: u32 = 34;

/// Number of buckets in a [`Histogram`]: 64 exact ones, then 32 per octave up to 2^34.
pub const BUCKETS: usize = (TOP_OCTAVE - SUB_BITS + 2) as usize * SUB_BUCKETS;

/// The largest value that keeps its own bucket; larger values are clamped into
/// the last bucket (2^35 − 1, about 34.4 s in nanoseconds).
pub const HIGHEST_TRACKABLE: u64 = (1 << (TOP_OCTAVE + 1)) - 1;

/// Values below this limit are counted exactly, one bucket per value.
const EXACT_LIMIT: u64 = 2 * SUB_BUCKETS as u64;

/// A log-linear histogram of `u64` values; see the module documentation for
/// the bucket scheme and its error bound.
///
/// Occupies 7 984 bytes on 64-bit targets and never allocates.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "HistogramForm", try_from = "HistogramForm")]
pub struct Histogram {
    buckets: [u64; BUCKETS],
    count: u64,
    /// Exact minimum; `u64::MAX` while empty.
    min: u64,
    /// Exact maximum; 0 while empty.
    max: u64,
    /// Exact sum of every recorded value, saturating.
    sum: u128,
}

// The layout promise made in the documentation above.
const _: () = assert!(std::mem::size_of::<Histogram>() <= 8 * 1024);

/// The bucket a value lands in (see the module documentation).
#[inline]
fn index_of(value: u64) -> usize {
    if value < EXACT_LIMIT {
        return value as usize;
    }
    let v = value.min(HIGHEST_TRACKABLE);
    // v ≥ 64, so its highest set bit h is in 6..=34 and the shift in 1..=29.
    let h = 63 - v.leading_zeros();
    let shift = h - SUB_BITS;
    shift as usize * SUB_BUCKETS + (v >> shift) as usize
}

/// The inclusive `(lower, upper)` bounds of bucket `index` (`index < BUCKETS`).
#[inline]
fn bounds_of(index: usize) -> (u64, u64) {
    if index < EXACT_LIMIT as usize {
        return (index as u64, index as u64);
    }
    // index ≥ 64, so index / 32 ≥ 2 and the shift is ≥ 1.
    let shift = (index / SUB_BUCKETS - 1) as u32;
    let sub = (index % SUB_BUCKETS + SUB_BUCKETS) as u64;
    let lower = sub << shift;
    (lower, lower + ((1u64 << shift) - 1))
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self {
            buckets: [0; BUCKETS],
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one occurrence of `value`.
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `count` occurrences of `value`; a `count` of 0 changes nothing.
    #[inline]
    pub fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        let slot = &mut self.buckets[index_of(value)];
        *slot = slot.saturating_add(count);
        self.count = self.count.saturating_add(count);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum = self
            .sum
            .saturating_add(u128::from(value) * u128::from(count));
    }

    /// Number of values recorded (saturating at `u64::MAX`).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True when nothing has been recorded since creation or the last reset.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The exact largest value recorded, or 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The exact smallest value recorded, or 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The arithmetic mean of the recorded values, or 0.0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The `p`-th percentile (`p` in [0, 100]) of the recorded values.
    ///
    /// Finds the bucket holding the value of rank `ceil(p / 100 * count)`
    /// (at least 1) and returns that bucket's upper bound, capped at the exact
    /// maximum: the result is never below the true percentile and exceeds it
    /// by less than 1/32 of it (see the module documentation). `p` outside
    /// [0, 100] is clamped into it and NaN counts as 0, so `percentile(0.0)`
    /// is within the bucket of the minimum and `percentile(100.0)` is the
    /// exact maximum. Returns 0 when empty. Scans at most [`BUCKETS`] counters.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
        // Float-to-int `as` saturates, so the rank is in 0..=u64::MAX.
        let rank = ((p / 100.0) * self.count as f64).ceil() as u64;
        let rank = rank.clamp(1, self.count);
        let mut seen: u64 = 0;
        for (index, &n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                if index == BUCKETS - 1 {
                    // The last bucket also holds clamped values: its only
                    // honest upper bound is the exact maximum.
                    return self.max;
                }
                return bounds_of(index).1.min(self.max);
            }
        }
        // Unreachable while bucket counts sum to at least `count`; the exact
        // maximum is the safe answer regardless.
        self.max
    }

    /// The exact sum of every recorded value (saturating).
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// The buckets holding at least one value, lowest first, as
    /// `(upper, count)`: the bucket's inclusive upper bound and how many
    /// values it holds (not cumulative). The last bucket (upper bound
    /// [`HIGHEST_TRACKABLE`]) also holds every larger value. The bounds of
    /// a bucket never change, so two readings of one histogram can be
    /// subtracted bucket by bucket.
    pub fn nonzero_buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(index, &n)| (bounds_of(index).1, n))
    }

    /// Forgets every recorded value, as if newly created.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Adds every value recorded in `other` to `self`, as if each had been
    /// recorded here too.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum = self.sum.saturating_add(other.sum);
    }
}

/// A [`Histogram`] many threads record into, behind a lock, made at the
/// first value (an idle one is a pointer and a lock word; a used one adds
/// the histogram's 8 KB). A record is one uncontended lock and a few adds;
/// writers on many cores at once queue on the lock, so it suits values
/// recorded once per operation that costs far more (a guarded call), not a
/// per-message hot path.
#[derive(Default)]
pub struct SharedHistogram {
    inner: Mutex<Option<Box<Histogram>>>,
}

impl SharedHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one occurrence of `value`.
    pub fn record(&self, value: u64) {
        lock(&self.inner)
            .get_or_insert_with(Default::default)
            .record(value);
    }

    /// A copy of what was recorded so far.
    pub fn snapshot(&self) -> Histogram {
        lock(&self.inner).as_deref().cloned().unwrap_or_default()
    }
}

/// A [`Histogram`]'s fields as plain values: what one build of a library
/// hands to another ([`Histogram::parts`], [`Histogram::from_parts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramParts {
    /// Every bucket's count, lowest first ([`BUCKETS`] of them).
    pub buckets: Vec<u64>,
    /// Values recorded.
    pub count: u64,
    /// Exact minimum (`u64::MAX` while empty).
    pub min: u64,
    /// Exact maximum.
    pub max: u64,
    /// Exact sum, saturating.
    pub sum: u128,
}

impl Histogram {
    /// Its fields as plain values.
    pub fn parts(&self) -> HistogramParts {
        HistogramParts {
            buckets: self.buckets.to_vec(),
            count: self.count,
            min: self.min,
            max: self.max,
            sum: self.sum,
        }
    }

    /// The histogram of `parts`; `None` unless it has [`BUCKETS`] buckets.
    pub fn from_parts(parts: &HistogramParts) -> Option<Self> {
        Some(Self {
            buckets: parts.buckets.as_slice().try_into().ok()?,
            count: parts.count,
            min: parts.min,
            max: parts.max,
            sum: parts.sum,
        })
    }
}

impl SharedHistogram {
    /// A shared histogram holding `h` (an empty one holds nothing yet).
    pub fn holding(h: Histogram) -> Self {
        let shared = Self::new();
        if h.count() > 0 {
            *lock(&shared.inner) = Some(Box::new(h));
        }
        shared
    }
}

impl fmt::Debug for SharedHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max)
            .field("mean", &self.mean())
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allowed relative error of a reported value against the true one.
    const BOUND: f64 = 1.0 / SUB_BUCKETS as f64;

    /// xorshift64: enough randomness for a sweep, no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// A value with a uniformly chosen bit length in 0..=35, so every
        /// trackable octave is sampled about equally.
        fn spread(&mut self) -> u64 {
            let bits = self.next() % 36;
            if bits == 0 {
                0
            } else {
                self.next() >> (64 - bits)
            }
        }
    }

    fn rel_err(reported: u64, truth: u64) -> f64 {
        if truth == 0 {
            reported as f64
        } else {
            (reported as f64 - truth as f64) / truth as f64
        }
    }

    /// Powers of two ± 1 up to the top, and a few around the clamp limit.
    fn sweep() -> Vec<u64> {
        let mut v = Vec::new();
        for k in 0..64u32 {
            let p = 1u64 << k;
            v.extend([p - 1, p, p.saturating_add(1)]);
        }
        v.extend([u64::MAX - 1, u64::MAX]);
        v
    }

    /// The exact `p`-th percentile of a sorted sample, by the same rank rule.
    fn exact_percentile(sorted: &[u64], p: f64) -> u64 {
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    #[test]
    fn layout_constants() {
        assert_eq!(BUCKETS, 992);
        assert_eq!(HIGHEST_TRACKABLE, (1u64 << 35) - 1);
        assert_eq!(index_of(HIGHEST_TRACKABLE), BUCKETS - 1);
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bounds_of(BUCKETS - 1).1, HIGHEST_TRACKABLE);
        assert!(std::mem::size_of::<Histogram>() <= 8 * 1024);
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        let mut next = 0u64;
        for index in 0..BUCKETS {
            let (lower, upper) = bounds_of(index);
            assert_eq!(lower, next, "bucket {index}");
            assert!(upper >= lower);
            assert_eq!(index_of(lower), index);
            assert_eq!(index_of(upper), index);
            next = upper + 1;
        }
        assert_eq!(next, HIGHEST_TRACKABLE + 1);
    }

    #[test]
    fn small_values_are_exact() {
        for v in 0..EXACT_LIMIT {
            assert_eq!(bounds_of(index_of(v)), (v, v));
            // Beside a larger value so the cap at the maximum does not help.
            let mut h = Histogram::new();
            h.record(v);
            h.record(1_000_000);
            assert_eq!(h.percentile(50.0), v);
        }
    }

    #[test]
    fn relative_error_is_bounded_over_a_sweep() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut values = sweep();
        values.extend((0..200_000).map(|_| rng.spread()));
        let mut worst: f64 = 0.0;
        for &v in &values {
            let (lower, upper) = bounds_of(index_of(v));
            if v > HIGHEST_TRACKABLE {
                assert_eq!(index_of(v), BUCKETS - 1, "{v} is clamped");
                continue;
            }
            assert!(lower <= v && v <= upper, "{v} in {lower}..={upper}");
            let e = rel_err(upper, v);
            assert!(e < BOUND, "{v}: upper bound {upper}, error {e}");
            worst = worst.max(e);
        }
        eprintln!("worst bucket relative error over the sweep: {worst:.5}");
        assert!(worst > 0.03, "the sweep reaches the wide end of buckets");
    }

    #[test]
    fn percentiles_of_a_random_sample_are_within_bound() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut sample: Vec<u64> = (0..100_000).map(|_| rng.spread()).collect();
        let mut h = Histogram::new();
        for &v in &sample {
            h.record(v);
        }
        sample.sort_unstable();
        let mut worst: f64 = 0.0;
        for p in [
            0.0, 0.1, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0,
        ] {
            let truth = exact_percentile(&sample, p);
            let got = h.percentile(p);
            assert!(got >= truth, "p{p}: {got} < {truth}");
            let e = rel_err(got, truth);
            assert!(e < BOUND, "p{p}: {got} vs {truth}, error {e}");
            worst = worst.max(e);
        }
        eprintln!("worst percentile relative error on the random sample: {worst:.5}");
        assert_eq!(h.percentile(100.0), *sample.last().unwrap_or(&0));
        assert_eq!(h.min(), sample[0]);
        assert_eq!(h.max(), sample[sample.len() - 1]);
        assert_eq!(h.count(), sample.len() as u64);
    }

    #[test]
    fn uniform_distribution_percentiles() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.percentile(50.0);
        let p99 = h.percentile(99.0);
        assert!(rel_err(p50, 5000).abs() <= 0.03, "p50 = {p50}");
        assert!(rel_err(p99, 9900).abs() <= 0.03, "p99 = {p99}");
        assert!(p50 >= 5000 && p99 >= 9900);
        assert_eq!(h.percentile(0.0), 1);
        assert_eq!(h.percentile(100.0), 10_000);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.count(), 10_000);
        assert!((h.mean() - 5000.5).abs() < 1e-9);
    }

    #[test]
    fn single_value() {
        for v in [
            0,
            1,
            63,
            64,
            1_000,
            123_456_789,
            HIGHEST_TRACKABLE,
            u64::MAX,
        ] {
            let mut h = Histogram::new();
            h.record(v);
            for p in [0.0, 50.0, 99.0, 100.0] {
                assert_eq!(h.percentile(p), v, "value {v}, p{p}");
            }
            assert_eq!((h.min(), h.max(), h.count()), (v, v, 1));
            assert_eq!(h.mean(), v as f64);
        }
    }

    #[test]
    fn empty() {
        let h = Histogram::new();
        assert!(h.is_empty());
        assert_eq!(h.count(), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.mean(), 0.0);
        for p in [0.0, 50.0, 100.0, f64::NAN, -1.0, 1e300] {
            assert_eq!(h.percentile(p), 0);
        }
        assert_eq!(h, Histogram::default());
    }

    #[test]
    fn out_of_range_and_nan_percentiles_are_clamped() {
        let mut h = Histogram::new();
        for v in [5, 10_000, 70_000] {
            h.record(v);
        }
        let low = h.percentile(0.0);
        let high = h.percentile(100.0);
        assert_eq!(low, 5);
        assert_eq!(high, 70_000);
        for p in [f64::NAN, -0.5, f64::NEG_INFINITY, -1e300] {
            assert_eq!(h.percentile(p), low, "p{p}");
        }
        for p in [100.5, f64::INFINITY, 1e300] {
            assert_eq!(h.percentile(p), high, "p{p}");
        }
    }

    #[test]
    fn extremes_zero_and_u64_max() {
        let mut h = Histogram::new();
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), u64::MAX);
        assert_eq!(h.percentile(50.0), 0);
        assert_eq!(h.percentile(51.0), u64::MAX);
        assert_eq!(h.percentile(100.0), u64::MAX);
        assert_eq!(h.mean(), u64::MAX as f64 / 2.0);

        // Clamped values report the exact maximum, not the bucket's bound.
        let mut h = Histogram::new();
        h.record(1);
        h.record(HIGHEST_TRACKABLE + 1);
        h.record(HIGHEST_TRACKABLE * 4);
        assert_eq!(h.percentile(60.0), HIGHEST_TRACKABLE * 4);
        assert_eq!(h.percentile(100.0), HIGHEST_TRACKABLE * 4);
    }

    #[test]
    fn counters_saturate_without_panicking() {
        let mut h = Histogram::new();
        h.record_n(u64::MAX, u64::MAX);
        h.record_n(u64::MAX, u64::MAX);
        h.record(7);
        assert_eq!(h.count(), u64::MAX);
        assert_eq!(h.min(), 7);
        assert_eq!(h.max(), u64::MAX);
        assert_eq!(h.percentile(50.0), u64::MAX);
        assert!(h.mean().is_finite());
        let copy = h.clone();
        h.merge(&copy);
        assert_eq!(h.count(), u64::MAX);
        assert_eq!(h.percentile(0.0), 7);
    }

    #[test]
    fn record_n_equals_repeated_record() {
        let mut once = Histogram::new();
        let mut many = Histogram::new();
        for (v, n) in [(3u64, 4u64), (1_000, 17), (77_777, 1), (u64::MAX, 2)] {
            once.record_n(v, n);
            for _ in 0..n {
                many.record(v);
            }
        }
        assert_eq!(once, many);
        assert_eq!(once.count(), 24);

        let before = once.clone();
        once.record_n(12_345, 0);
        assert_eq!(once, before, "a count of 0 records nothing");
        let mut empty = Histogram::new();
        empty.record_n(9, 0);
        assert!(empty.is_empty());
        assert_eq!((empty.min(), empty.max()), (0, 0));
    }

    #[test]
    fn merge_equals_recording_both() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut both = Histogram::new();
        for i in 0..20_000 {
            let v = rng.spread();
            if i % 3 == 0 {
                a.record(v);
            } else {
                b.record(v);
            }
            both.record(v);
        }
        b.record(u64::MAX);
        both.record(u64::MAX);
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, both);
        for p in [0.0, 50.0, 99.0, 100.0] {
            assert_eq!(merged.percentile(p), both.percentile(p));
        }

        // Merging an empty histogram, or into one, changes nothing else.
        let mut m = a.clone();
        m.merge(&Histogram::new());
        assert_eq!(m, a);
        let mut e = Histogram::new();
        e.merge(&a);
        assert_eq!(e, a);
    }

    #[test]
    fn nonzero_buckets_and_sum() {
        let mut h = Histogram::new();
        assert_eq!(h.nonzero_buckets().count(), 0);
        h.record_n(3, 2);
        h.record(1_000);
        h.record(1_005);
        h.record(1_010);
        h.record(u64::MAX);
        let buckets: Vec<(u64, u64)> = h.nonzero_buckets().collect();
        // 1 000 and 1 005 share a bucket 16 wide (992..=1007).
        let want = vec![(3, 2), (1_007, 2), (1_023, 1), (HIGHEST_TRACKABLE, 1)];
        assert_eq!(buckets, want);
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), h.count());
        for &(upper, _) in &buckets {
            assert_eq!(bounds_of(index_of(upper)).1, upper, "an upper bound");
        }
        assert_eq!(h.sum(), 6 + 3_015 + u128::from(u64::MAX));
    }

    #[test]
    #[cfg(not(loom))]
    fn shared_histogram_records_from_many_threads() {
        let shared = SharedHistogram::new();
        assert!(shared.snapshot().is_empty());
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let shared = &shared;
                s.spawn(move || {
                    for v in 0..1_000u64 {
                        shared.record(t * 1_000 + v);
                    }
                });
            }
        });
        let h = shared.snapshot();
        assert_eq!(h.count(), 4_000);
        assert_eq!((h.min(), h.max()), (0, 3_999));
        assert_eq!(h.sum(), (0..4_000u128).sum::<u128>());
    }

    #[test]
    fn reset_forgets_everything() {
        let mut h = Histogram::new();
        h.record_n(42, 10);
        h.record(u64::MAX);
        h.reset();
        assert_eq!(h, Histogram::new());
        assert_eq!(
            (h.count(), h.min(), h.max(), h.percentile(50.0)),
            (0, 0, 0, 0)
        );
        h.record(9);
        assert_eq!((h.min(), h.max()), (9, 9));
    }

    #[test]
    fn parts_make_the_same_histogram() {
        let mut h = Histogram::new();
        for v in [0, 5, 63, 64, 1_000, 77_777, u64::MAX] {
            h.record(v);
        }
        let parts = h.parts();
        assert_eq!(Histogram::from_parts(&parts), Some(h.clone()));
        let shared = SharedHistogram::holding(h.clone());
        assert_eq!(shared.snapshot(), h);
        let mut short = parts;
        short.buckets.pop();
        assert_eq!(Histogram::from_parts(&short), None);
    }
}
