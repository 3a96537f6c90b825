//! Per-key rate limits with the generic cell rate algorithm (GCRA), the
//! token bucket written as one timestamp per key.
//!
//! A limit of `limit` requests per `period` with a burst of `burst` has an
//! emission interval `t = period / limit` and a tolerance `tau = t * burst`.
//! Each key keeps its theoretical arrival time `tat`. A request of cost `c`
//! at `now` would move it to `max(tat, now) + c * t`; it is allowed when
//! that is at most `now + tau`, and then stored; otherwise it is refused
//! with `retry_after = new_tat - tau - now` (exact: a request that waits
//! that long is allowed). Over any window of length `w`, at most
//! `burst + w / t` cost units are allowed. A request whose cost alone
//! exceeds the burst (`c * t > tau`) can never be allowed: it is refused
//! as [`Checked::ExceedsBurst`], not told to wait.
//!
//! # Keys
//! Keys are 64-bit hashes (the caller hashes its terms). They live in a
//! table of [`SHARDS`] shards, each under its own lock, holding at most
//! `max_keys / SHARDS` keys: a vector of `(key, tat)` and a map from key to
//! its place in it. A key whose `tat` is not after `now` is at full
//! allowance, the same as a key never seen.
//!
//! When a full shard meets a new key, a clock hand looks at the next
//! [`EVICT_SAMPLE`] entries of the vector (and no more: the cost per call
//! is bounded whatever `max_keys`): the first idle one gives its place to
//! the new key, or, if none of them is idle, the one closest to idle does
//! (it then gets its full burst back early: the table's bound wins over
//! exactness, and `evicted` counts it). The trade-off: an idle key
//! elsewhere in the shard may stay while a busy one in the sample goes;
//! the hand moves on at every eviction, so every entry is looked at in
//! turn. Memory: about 50 bytes per key (the map's entry and the vector's).
//!
//! # Overrides and the global limit
//! A key may have its own limit (premium accounts), up to `max_overrides`
//! keys (more are refused, [`TooManyOverrides`]); overrides are never
//! evicted. A limiter may also have a global limit that every allowed
//! request counts against: a request is allowed only when both its key's
//! limit and the global one allow it, and then counts in both.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::sync::{lock, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Shards of the key table.
pub const SHARDS: usize = 16;

/// Entries of a full shard an eviction looks at.
pub const EVICT_SAMPLE: usize = 32;

/// One limit: `limit` per `period` ticks, with a burst of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Emission interval: ticks per unit of cost.
    pub interval: u64,
    /// Tolerance: how far ahead of `now` the arrival time may go.
    pub tolerance: u64,
}

impl Rate {
    /// `limit` per `period` ticks with `burst` (both at least 1); `None`
    /// when the interval would be 0 (more than one request per tick) or
    /// the tolerance would not fit in 64 bits.
    pub fn new(limit: u64, period: u64, burst: u64) -> Option<Self> {
        let interval = period / limit.max(1);
        let tolerance = interval.checked_mul(burst.max(1))?;
        (interval > 0).then_some(Self {
            interval,
            tolerance,
        })
    }

    /// The burst: most cost units allowed at once.
    pub fn burst(&self) -> u64 {
        self.tolerance / self.interval.max(1)
    }

    /// Whether a request of `cost` can never be allowed (its cost alone
    /// exceeds the burst).
    fn exceeded_by(&self, cost: u64) -> bool {
        cost > self.burst()
    }

    /// The new arrival time if a request of `cost` at `now` is allowed with
    /// `tat`, or the ticks to wait.
    fn admit(&self, tat: u64, now: u64, cost: u64) -> Result<u64, u64> {
        let next = tat
            .max(now)
            .saturating_add(self.interval.saturating_mul(cost));
        let limit = now.saturating_add(self.tolerance);
        if next <= limit {
            Ok(next)
        } else {
            Err(next - limit)
        }
    }
}

/// The answer to a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Allowed and counted.
    Allowed,
    /// Refused: try again after this many ticks.
    RetryAfter(u64),
    /// Refused for good: the cost exceeds this burst (the key's, or the
    /// global limit's), so no wait would do.
    ExceedsBurst(u64),
}

/// [`Limiter::set_override`] refused a new override: `max_overrides` keys
/// have one already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyOverrides;

/// Counters of a limiter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStats {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests refused.
    pub refused: u64,
    /// Keys evicted before they were idle.
    pub evicted: u64,
    /// Keys held now.
    pub keys: u64,
    /// Keys with a limit of their own.
    pub overrides: u64,
}

/// Keys are hashes already: the table uses them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

type Keyed<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct Shard {
    /// Key to its place in `entries`.
    index: Keyed<usize>,
    /// `(key, tat)`, in no order.
    entries: Vec<(u64, u64)>,
    /// Where the next eviction starts looking.
    hand: usize,
    overrides: Keyed<Rate>,
    allowed: u64,
    refused: u64,
    evicted: u64,
}

impl Shard {
    /// An empty shard whose maps have room for one entry from the start
    /// (a map never shrinks): an empty `HashMap` points at a static of the
    /// code that made it, and a limiter may outlive that code (a NIF
    /// library's limiter, taken over by a newer library after the old one
    /// is unloaded).
    fn new() -> Self {
        Self {
            index: Keyed::with_capacity_and_hasher(1, Default::default()),
            overrides: Keyed::with_capacity_and_hasher(1, Default::default()),
            ..Self::default()
        }
    }
}

/// A per-key rate limiter; see the module documentation.
pub struct Limiter {
    rate: Rate,
    global: Option<Rate>,
    global_tat: AtomicU64,
    per_shard: usize,
    max_overrides: usize,
    overrides: AtomicUsize,
    shards: Box<[Mutex<Shard>]>,
}

impl Limiter {
    /// A limiter of `rate` per key (and `global` over all), holding at most
    /// `max_keys` keys (at least one per shard) and `max_overrides`
    /// overrides.
    pub fn new(rate: Rate, global: Option<Rate>, max_keys: usize, max_overrides: usize) -> Self {
        Self {
            rate,
            global,
            global_tat: AtomicU64::new(0),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            max_overrides,
            overrides: AtomicUsize::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
        }
    }

    fn shard(&self, key: u64) -> &Mutex<Shard> {
        &self.shards[(key >> 32) as usize % SHARDS]
    }

    /// Checks (and counts, when allowed) a request of `cost` for `key` at
    /// `now`.
    pub fn check(&self, key: u64, cost: u64, now: u64) -> Checked {
        let mut guard = lock(self.shard(key));
        let shard = &mut *guard;
        let rate = if shard.overrides.is_empty() {
            self.rate
        } else {
            shard.overrides.get(&key).copied().unwrap_or(self.rate)
        };
        if rate.exceeded_by(cost) {
            shard.refused += 1;
            return Checked::ExceedsBurst(rate.burst());
        }
        if let Some(global) = self.global.filter(|g| g.exceeded_by(cost)) {
            shard.refused += 1;
            return Checked::ExceedsBurst(global.burst());
        }
        let held = shard.index.get(&key).copied();
        let tat = held.map_or(0, |at| shard.entries[at].1);
        let verdict = rate
            .admit(tat, now, cost)
            .and_then(|next| match self.global {
                Some(global) => self.admit_global(&global, now, cost).map(|()| next),
                None => Ok(next),
            });
        let next = match verdict {
            Ok(next) => next,
            Err(wait) => {
                shard.refused += 1;
                return Checked::RetryAfter(wait);
            }
        };
        match held {
            Some(at) => shard.entries[at].1 = next,
            None if shard.entries.len() >= self.per_shard => replace(shard, key, next, now),
            None => {
                shard.index.insert(key, shard.entries.len());
                shard.entries.push((key, next));
            }
        }
        shard.allowed += 1;
        Checked::Allowed
    }

    /// Counts `cost` against the global limit when it allows it.
    fn admit_global(&self, global: &Rate, now: u64, cost: u64) -> Result<(), u64> {
        let mut tat = self.global_tat.load(Ordering::Acquire);
        loop {
            let next = global.admit(tat, now, cost)?;
            match self.global_tat.compare_exchange_weak(
                tat,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }

    /// Gives `key` a limit of its own (`None`: the limiter's again);
    /// refused when `key` has none and `max_overrides` keys have one.
    pub fn set_override(&self, key: u64, rate: Option<Rate>) -> Result<(), TooManyOverrides> {
        let mut shard = lock(self.shard(key));
        match rate {
            Some(rate) => {
                if let Some(old) = shard.overrides.get_mut(&key) {
                    *old = rate;
                    return Ok(());
                }
                if self.overrides.fetch_add(1, Ordering::AcqRel) >= self.max_overrides {
                    self.overrides.fetch_sub(1, Ordering::AcqRel);
                    return Err(TooManyOverrides);
                }
                shard.overrides.insert(key, rate);
            }
            None => {
                if shard.overrides.remove(&key).is_some() {
                    self.overrides.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        Ok(())
    }

    /// Forgets the keys idle at `now`; returns how many went. Looks at
    /// every key: O(`max_keys`).
    pub fn sweep(&self, now: u64) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut guard = lock(s);
                let shard = &mut *guard;
                let before = shard.entries.len();
                let mut at = 0;
                while at < shard.entries.len() {
                    let (key, tat) = shard.entries[at];
                    if tat > now {
                        at += 1;
                        continue;
                    }
                    shard.entries.swap_remove(at);
                    shard.index.remove(&key);
                    if let Some(&(moved, _)) = shard.entries.get(at) {
                        shard.index.insert(moved, at);
                    }
                }
                shard.hand = 0;
                before - shard.entries.len()
            })
            .sum()
    }

    /// The counters.
    pub fn stats(&self) -> RateStats {
        self.shards.iter().fold(RateStats::default(), |mut acc, s| {
            let shard = lock(s);
            acc.allowed += shard.allowed;
            acc.refused += shard.refused;
            acc.evicted += shard.evicted;
            acc.keys += shard.entries.len() as u64;
            acc.overrides += shard.overrides.len() as u64;
            acc
        })
    }
}

/// One shard of a limiter, as plain values (see [`LimiterImage`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardImage {
    /// `(key, tat)`, in the shard's order (the eviction hand walks it).
    pub entries: Vec<(u64, u64)>,
    /// Where the next eviction starts looking.
    pub hand: usize,
    /// Keys with a limit of their own, in no order.
    pub overrides: Vec<(u64, Rate)>,
    /// Requests allowed.
    pub allowed: u64,
    /// Requests refused.
    pub refused: u64,
    /// Keys evicted before they were idle.
    pub evicted: u64,
}

/// Everything a limiter holds, as plain values: what one build of a
/// library hands to another ([`Limiter::image`], [`Limiter::from_image`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterImage {
    /// The limit of every key without an override.
    pub rate: Rate,
    /// The global limit, if any.
    pub global: Option<Rate>,
    /// The global limit's arrival time.
    pub global_tat: u64,
    /// Most keys a shard holds.
    pub per_shard: usize,
    /// Most overrides.
    pub max_overrides: usize,
    /// The [`SHARDS`] shards, in order.
    pub shards: Vec<ShardImage>,
}

impl Limiter {
    /// The limiter as plain values (each shard read under its lock; exact
    /// when no call runs meanwhile).
    pub fn image(&self) -> LimiterImage {
        LimiterImage {
            rate: self.rate,
            global: self.global,
            global_tat: self.global_tat.load(Ordering::Acquire),
            per_shard: self.per_shard,
            max_overrides: self.max_overrides,
            shards: self
                .shards
                .iter()
                .map(|s| {
                    let shard = lock(s);
                    ShardImage {
                        entries: shard.entries.clone(),
                        hand: shard.hand,
                        overrides: shard.overrides.iter().map(|(&k, &r)| (k, r)).collect(),
                        allowed: shard.allowed,
                        refused: shard.refused,
                        evicted: shard.evicted,
                    }
                })
                .collect(),
        }
    }

    /// A limiter holding what `image` says, deciding every later request
    /// as the limiter it was taken from would; `None` for an image no
    /// limiter has (another number of shards, a key in the wrong shard or
    /// twice, a shard over its bound, a rate of interval 0).
    pub fn from_image(image: &LimiterImage) -> Option<Self> {
        let valid = |r: &Rate| r.interval > 0;
        if image.shards.len() != SHARDS
            || image.per_shard == 0
            || !valid(&image.rate)
            || !image.global.as_ref().is_none_or(valid)
        {
            return None;
        }
        let limiter = Self {
            rate: image.rate,
            global: image.global,
            global_tat: AtomicU64::new(image.global_tat),
            per_shard: image.per_shard,
            max_overrides: image.max_overrides,
            overrides: AtomicUsize::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
        };
        let mut overrides = 0;
        for (at, (from, to)) in image.shards.iter().zip(limiter.shards.iter()).enumerate() {
            let mut shard = lock(to);
            let in_place = |key: u64| (key >> 32) as usize % SHARDS == at;
            if from.entries.len() > image.per_shard {
                return None;
            }
            for (place, &(key, tat)) in from.entries.iter().enumerate() {
                if !in_place(key) || shard.index.insert(key, place).is_some() {
                    return None;
                }
                shard.entries.push((key, tat));
            }
            for &(key, rate) in &from.overrides {
                if !in_place(key) || !valid(&rate) || shard.overrides.insert(key, rate).is_some() {
                    return None;
                }
            }
            overrides += from.overrides.len();
            shard.hand = from.hand;
            shard.allowed = from.allowed;
            shard.refused = from.refused;
            shard.evicted = from.evicted;
        }
        limiter.overrides.store(overrides, Ordering::Release);
        Some(limiter)
    }
}

/// Gives `key` (at `tat`) the place of a key of the full shard: the
/// first idle one of the [`EVICT_SAMPLE`] entries from the clock hand (no
/// loss), else the one of them closest to idle (counted as evicted).
fn replace(shard: &mut Shard, key: u64, tat: u64, now: u64) {
    let len = shard.entries.len();
    if len == 0 {
        shard.index.insert(key, 0);
        shard.entries.push((key, tat));
        return;
    }
    let start = shard.hand % len;
    let mut victim = start;
    let mut idle = false;
    for step in 0..EVICT_SAMPLE.min(len) {
        let at = (start + step) % len;
        let seen = shard.entries[at].1;
        if seen <= now {
            victim = at;
            idle = true;
            break;
        }
        if seen < shard.entries[victim].1 {
            victim = at;
        }
    }
    if !idle {
        shard.evicted += 1;
    }
    let (old, _) = shard.entries[victim];
    shard.index.remove(&old);
    shard.index.insert(key, victim);
    shard.entries[victim] = (key, tat);
    shard.hand = victim + 1;
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn limiter(limit: u64, period: u64, burst: u64) -> Limiter {
        Limiter::new(
            Rate::new(limit, period, burst).expect("rate"),
            None,
            1000,
            10,
        )
    }

    #[test]
    fn an_image_decides_as_the_limiter_it_was_taken_from() {
        let make = || {
            let l = Limiter::new(
                Rate::new(10, 1000, 3).expect("rate"),
                Rate::new(1000, 1000, 50),
                64,
                4,
            );
            assert_eq!(l.set_override(5 << 32, Rate::new(100, 1000, 10)), Ok(()));
            l
        };
        let (a, b) = (make(), make());
        // many keys, so shards fill up and evict
        for i in 0..400u64 {
            let key = (i % 97) << 32 | i;
            assert_eq!(a.check(key, 1, i * 7), b.check(key, 1, i * 7));
        }
        let image = a.image();
        let c = Limiter::from_image(&image).expect("an image of a limiter");
        assert_eq!(c.image(), image);
        assert_eq!(c.stats(), b.stats());
        for i in 0..600u64 {
            let key = (i % 131) << 32 | (i % 11);
            let now = 2800 + i * 3;
            assert_eq!(c.check(key, 1 + i % 2, now), b.check(key, 1 + i % 2, now));
        }
        assert_eq!(c.stats(), b.stats());
        assert_eq!(c.set_override(1, Rate::new(1, 10, 1)), Ok(()));
        assert_eq!(c.set_override(2, Rate::new(1, 10, 1)), Ok(()));
        assert_eq!(c.set_override(3, Rate::new(1, 10, 1)), Ok(()));
        assert_eq!(
            c.set_override(4, Rate::new(1, 10, 1)),
            Err(TooManyOverrides)
        );
        let mut bad = image.clone();
        bad.shards.pop();
        assert!(Limiter::from_image(&bad).is_none());
        let mut misplaced = image;
        misplaced.shards[0].entries.push((1 << 32, 0));
        assert!(Limiter::from_image(&misplaced).is_none());
    }

    #[test]
    fn burst_then_one_per_interval_with_exact_retry_after() {
        // 10 per 1000 ticks: interval 100, burst 3
        let l = limiter(10, 1000, 3);
        for _ in 0..3 {
            assert_eq!(l.check(7, 1, 0), Checked::Allowed);
        }
        assert_eq!(l.check(7, 1, 0), Checked::RetryAfter(100));
        assert_eq!(l.check(7, 1, 99), Checked::RetryAfter(1));
        assert_eq!(l.check(7, 1, 100), Checked::Allowed);
        assert_eq!(l.check(8, 1, 100), Checked::Allowed, "keys are apart");
        assert_eq!(
            l.check(7, 2, 300),
            Checked::Allowed,
            "cost 2 after 2 intervals"
        );
        let s = l.stats();
        assert_eq!((s.allowed, s.refused, s.keys), (6, 2, 2));
    }

    #[test]
    fn overrides_and_the_global_limit() {
        let l = Limiter::new(
            Rate::new(1, 1000, 1).expect("rate"),
            Rate::new(3, 1000, 3),
            1000,
            10,
        );
        assert_eq!(l.set_override(1, Rate::new(100, 1000, 5)), Ok(()));
        for _ in 0..3 {
            assert_eq!(l.check(1, 1, 0), Checked::Allowed);
        }
        // the premium key is within its own limit but the global is spent
        assert!(matches!(l.check(1, 1, 0), Checked::RetryAfter(_)));
        assert!(matches!(l.check(2, 1, 0), Checked::RetryAfter(_)));
        assert_eq!(l.stats().allowed, 3);
    }

    #[test]
    fn the_table_stays_bounded_and_idle_keys_go_first() {
        let l = Limiter::new(Rate::new(1, 10, 1).expect("rate"), None, SHARDS, 0);
        for key in 0..1000u64 {
            let _ = l.check(key << 32, 1, key * 100);
        }
        let s = l.stats();
        assert!(s.keys <= SHARDS as u64);
        assert_eq!(s.evicted, 0, "every older key was idle when dropped");
        assert_eq!(l.sweep(1_000_000), s.keys as usize);
    }

    #[test]
    fn a_cost_above_the_burst_never_passes() {
        let l = limiter(10, 1000, 3);
        assert_eq!(l.check(7, 4, 0), Checked::ExceedsBurst(3));
        assert_eq!(l.check(7, 4, 1_000_000), Checked::ExceedsBurst(3));
        assert_eq!(
            l.check(7, 3, 0),
            Checked::Allowed,
            "the burst itself passes"
        );
        let g = Limiter::new(
            Rate::new(10, 1000, 50).expect("rate"),
            Rate::new(10, 1000, 2),
            1000,
            0,
        );
        assert_eq!(
            g.check(1, 3, 0),
            Checked::ExceedsBurst(2),
            "the global burst"
        );
        assert_eq!(l.stats().refused, 2);
    }

    #[test]
    fn overrides_are_bounded_and_counted() {
        let l = limiter(10, 1000, 3);
        let r = Rate::new(1, 1000, 1);
        assert_eq!(l.set_override(1, r), Ok(()));
        assert_eq!(l.set_override(1, r), Ok(()), "a key's override replaced");
        for k in 2..=10 {
            assert_eq!(l.set_override(k << 32, r), Ok(()));
        }
        assert_eq!(l.set_override(11, r), Err(TooManyOverrides));
        assert_eq!(l.stats().overrides, 10);
        assert_eq!(l.set_override(1, None), Ok(()));
        assert_eq!(l.set_override(1, None), Ok(()));
        assert_eq!(l.set_override(11, r), Ok(()), "room again");
        assert_eq!(l.stats().overrides, 10);
    }

    /// No map of a new limiter is the empty singleton (a static of the
    /// code that made it): each has a table of its own.
    #[test]
    fn maps_are_allocated_from_the_start() {
        let l = limiter(10, 1000, 3);
        for shard in l.shards.iter() {
            let shard = lock(shard);
            assert!(shard.index.capacity() >= 1 && shard.overrides.capacity() >= 1);
        }
    }

    /// A full shard of busy keys: each new key looks at no more than the
    /// sample, the table stays at its bound, and the index stays right.
    #[test]
    fn eviction_is_bounded_and_keeps_the_table_consistent() {
        let l = Limiter::new(Rate::new(1, 1000, 1).expect("rate"), None, SHARDS * 100, 0);
        // every key lands in shard 0 (the shard is picked by the high bits)
        for k in 0..1000u64 {
            assert_eq!(l.check(k, 1, 0), Checked::Allowed);
        }
        let s = l.stats();
        assert_eq!(s.keys, 100);
        assert_eq!(s.evicted, 900, "no key was idle at time 0");
        let shard = lock(&l.shards[0]);
        assert_eq!(shard.index.len(), shard.entries.len());
        for (at, (key, _)) in shard.entries.iter().enumerate() {
            assert_eq!(shard.index.get(key), Some(&at));
        }
        drop(shard);
        // a key still held answers from its own tat
        assert!(matches!(l.check(999, 1, 1), Checked::RetryAfter(_)));
        // idle keys give their place without loss
        let before = l.stats().evicted;
        for k in 1000..1100u64 {
            assert_eq!(l.check(k, 1, 10_000), Checked::Allowed);
        }
        assert_eq!(l.stats().evicted, before);
        assert_eq!(l.sweep(1_000_000), 100);
        assert_eq!(l.stats().keys, 0);
    }

    #[test]
    fn allowed_over_any_window_stays_within_rate_and_burst() {
        let l = limiter(5, 1000, 2); // interval 200
        let mut allowed = Vec::new();
        for now in (0..10_000).step_by(37) {
            if l.check(1, 1, now) == Checked::Allowed {
                allowed.push(now);
            }
        }
        for (i, &start) in allowed.iter().enumerate() {
            for w in [200u64, 1000, 3000] {
                let n = allowed[i..].iter().take_while(|&&t| t < start + w).count() as u64;
                assert!(n <= 2 + w / 200, "{n} in {w} from {start}");
            }
        }
    }
}
