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
//! `burst + w / t` cost units are allowed.
//!
//! # Keys
//! Keys are 64-bit hashes (the caller hashes its terms). They live in a
//! table of [`SHARDS`] shards, each under its own lock, holding at most
//! `max_keys / SHARDS` keys. A key whose `tat` is not after `now` is at full
//! allowance, the same as a key never seen: such idle keys are evicted
//! freely when a shard is full. If none is idle, the key closest to idle
//! goes (it then gets its full burst back early: the table's bound wins
//! over exactness, and `evicted` counts it). Memory: about 40 bytes per key.
//!
//! # Overrides and the global limit
//! A key may have its own limit (premium accounts); a limiter may also have
//! a global limit that every allowed request counts against: a request is
//! allowed only when both its key's limit and the global one allow it, and
//! then counts in both.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::sync::{lock, AtomicU64, Mutex, Ordering};

/// Shards of the key table.
pub const SHARDS: usize = 16;

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
    /// when the interval would be 0 (more than one request per tick).
    pub fn new(limit: u64, period: u64, burst: u64) -> Option<Self> {
        let interval = period / limit.max(1);
        (interval > 0).then(|| Self {
            interval,
            tolerance: interval.saturating_mul(burst.max(1)),
        })
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
}

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
    tats: Keyed<u64>,
    overrides: Keyed<Rate>,
    allowed: u64,
    refused: u64,
    evicted: u64,
}

/// A per-key rate limiter; see the module documentation.
pub struct Limiter {
    rate: Rate,
    global: Option<Rate>,
    global_tat: AtomicU64,
    per_shard: usize,
    shards: Box<[Mutex<Shard>]>,
}

impl Limiter {
    /// A limiter of `rate` per key (and `global` over all), holding at most
    /// `max_keys` keys (at least one per shard).
    pub fn new(rate: Rate, global: Option<Rate>, max_keys: usize) -> Self {
        Self {
            rate,
            global,
            global_tat: AtomicU64::new(0),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
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
        let held = shard.tats.get_mut(&key);
        let tat = held.as_deref().copied().unwrap_or(0);
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
            Some(tat) => *tat = next,
            None => {
                if shard.tats.len() >= self.per_shard {
                    evict(shard, now);
                }
                shard.tats.insert(key, next);
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

    /// Gives `key` a limit of its own (`None`: the limiter's again).
    pub fn set_override(&self, key: u64, rate: Option<Rate>) {
        let mut shard = lock(self.shard(key));
        match rate {
            Some(rate) => shard.overrides.insert(key, rate),
            None => shard.overrides.remove(&key),
        };
    }

    /// Forgets the keys idle at `now`; returns how many went.
    pub fn sweep(&self, now: u64) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = lock(s);
                let before = shard.tats.len();
                shard.tats.retain(|_, tat| *tat > now);
                before - shard.tats.len()
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
            acc.keys += shard.tats.len() as u64;
            acc
        })
    }
}

/// Makes room in a full shard: idle keys go first (no loss), else the key
/// closest to idle (counted).
fn evict(shard: &mut Shard, now: u64) {
    let before = shard.tats.len();
    shard.tats.retain(|_, tat| *tat > now);
    if shard.tats.len() < before {
        return;
    }
    let oldest = shard
        .tats
        .iter()
        .min_by_key(|(_, tat)| **tat)
        .map(|(k, _)| *k);
    if let Some(key) = oldest {
        shard.tats.remove(&key);
        shard.evicted += 1;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn limiter(limit: u64, period: u64, burst: u64) -> Limiter {
        Limiter::new(Rate::new(limit, period, burst).expect("rate"), None, 1000)
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
        );
        l.set_override(1, Rate::new(100, 1000, 5));
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
        let l = Limiter::new(Rate::new(1, 10, 1).expect("rate"), None, SHARDS);
        for key in 0..1000u64 {
            let _ = l.check(key << 32, 1, key * 100);
        }
        let s = l.stats();
        assert!(s.keys <= SHARDS as u64);
        assert_eq!(s.evicted, 0, "every older key was idle when dropped");
        assert_eq!(l.sweep(1_000_000), s.keys as usize);
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
