//! A name map and a change queue for objects named by terms the core cannot
//! see (Erlang terms, in the NIF library).
//!
//! [`NameMap`] is a hash map split into shards, each behind its own
//! reader-writer lock, keyed by a hash the caller computes (the VM's hash
//! of the name term); entries of one hash are told apart by a predicate the
//! caller gives (the VM's exact term equality). A lookup takes one shard's
//! read lock and runs the caller's closure under it, so an entry cannot be
//! removed (and its object freed) while the closure uses it; an insert or a
//! removal takes one shard's write lock. Every operation is O(1) expected:
//! nothing scans or rebuilds the whole map, except [`NameMap::for_each`],
//! which is meant for a dirty scheduler.
//!
//! [`Changes`] is a FIFO of objects whose state changed, drained in bounded
//! batches; the caller dedups (a flag in the object), so the queue never
//! holds an object twice and never grows past the number of objects.
//!
//! `parking_lot`'s `RwLock` is used directly (not through loom): the map
//! has no lock-free path for loom to model.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::{Mutex, RwLock};

/// Number of shards of a [`NameMap`].
pub const SHARDS: usize = 64;

/// A hasher for keys that already are hashes: spreads the bits of one
/// `u64` with a multiply (`HashMap`'s SipHash would hash them again).
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
}

type Shard<V> = HashMap<u64, Vec<V>, BuildHasherDefault<PreHashed>>;

/// A sharded map from names (a hash and an equality the caller supplies)
/// to values; see the module documentation.
pub struct NameMap<V> {
    shards: Box<[RwLock<Shard<V>>]>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> NameMap<V> {
    /// An empty map. Every shard allocates its table at once: an empty
    /// `HashMap` points at a static of the code that made it, and a map
    /// meant to outlive that code (a NIF library replaced by a newer one
    /// and unloaded) must hold no pointer into it.
    pub fn new() -> Self {
        let shard = || RwLock::new(Shard::with_capacity_and_hasher(1, Default::default()));
        Self {
            shards: (0..SHARDS).map(|_| shard()).collect(),
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard<V>> {
        // The low bits pick the bucket inside the shard's map: use high ones.
        &self.shards[(hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % SHARDS]
    }

    /// Runs `f` on the value named by (`hash`, `is`), under its shard's
    /// read lock; `None` when no entry matches.
    pub fn with<R>(
        &self,
        hash: u64,
        is: impl Fn(&V) -> bool,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R> {
        let shard = self.shard(hash).read();
        shard.get(&hash)?.iter().find(|v| is(v)).map(f)
    }

    /// Puts `value` under (`hash`, `is`); returns the value it replaced.
    pub fn insert(&self, hash: u64, is: impl Fn(&V) -> bool, value: V) -> Option<V> {
        let mut shard = self.shard(hash).write();
        let row = shard.entry(hash).or_default();
        match row.iter_mut().find(|v| is(v)) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                row.push(value);
                None
            }
        }
    }

    /// Takes out the value under (`hash`, `is`).
    pub fn remove(&self, hash: u64, is: impl Fn(&V) -> bool) -> Option<V> {
        let mut shard = self.shard(hash).write();
        let row = shard.get_mut(&hash)?;
        let at = row.iter().position(is)?;
        let value = row.swap_remove(at);
        if row.is_empty() {
            // Removing never gives the table back (no shrink to the static
            // empty table, see `new`).
            shard.remove(&hash);
        }
        Some(value)
    }

    /// Calls `f` on every value, one shard at a time (O(n): not for a
    /// normal scheduler when the map is large).
    pub fn for_each(&self, mut f: impl FnMut(&V)) {
        for shard in self.shards.iter() {
            shard.read().values().flatten().for_each(&mut f);
        }
    }

    /// Number of entries (O(shards)).
    pub fn len(&self) -> usize {
        let rows = |s: &RwLock<Shard<V>>| s.read().values().map(Vec::len).sum::<usize>();
        self.shards.iter().map(rows).sum()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A FIFO of changed objects, drained in batches; see the module
/// documentation.
pub struct Changes<V> {
    queue: Mutex<VecDeque<V>>,
}

impl<V> Default for Changes<V> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
        }
    }
}

impl<V> Changes<V> {
    /// Appends `value`.
    pub fn push(&self, value: V) {
        self.queue.lock().push_back(value);
    }

    /// Takes out the oldest `max` values at most, oldest first.
    pub fn drain(&self, max: usize) -> Vec<V> {
        let mut queue = self.queue.lock();
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    /// Values waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A name whose hash collides on purpose: (hash, id).
    fn is(id: u32) -> impl Fn(&(u32, &'static str)) -> bool {
        move |v| v.0 == id
    }

    #[test]
    fn insert_replace_lookup_remove_with_colliding_hashes() {
        let m: NameMap<(u32, &'static str)> = NameMap::new();
        assert!(m.insert(7, is(1), (1, "a")).is_none());
        assert!(
            m.insert(7, is(2), (2, "b")).is_none(),
            "same hash, other name"
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m.with(7, is(1), |v| v.1), Some("a"));
        assert_eq!(m.with(7, is(2), |v| v.1), Some("b"));
        assert_eq!(m.with(8, is(1), |v| v.1), None);
        assert_eq!(m.insert(7, is(1), (1, "c")), Some((1, "a")));
        assert_eq!(m.with(7, is(1), |v| v.1), Some("c"));
        assert_eq!(m.remove(7, is(1)), Some((1, "c")));
        assert_eq!(m.remove(7, is(1)), None);
        assert_eq!(m.with(7, is(2), |v| v.1), Some("b"));
        assert_eq!(m.remove(7, is(2)), Some((2, "b")));
        assert!(m.is_empty());
    }

    #[test]
    fn many_names_spread_and_listed_once() {
        let m: NameMap<u64> = NameMap::new();
        for k in 0..10_000u64 {
            let h = k.wrapping_mul(0x2545_f491_4f6c_dd1d);
            assert!(m.insert(h, |&v| v == k, k).is_none());
        }
        assert_eq!(m.len(), 10_000);
        let mut seen = Vec::new();
        m.for_each(|&v| seen.push(v));
        seen.sort_unstable();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
        let busiest = m.shards.iter().map(|s| s.read().len()).max().unwrap_or(0);
        assert!(busiest < 10_000 / SHARDS * 2, "{busiest}");
    }

    #[test]
    fn changes_drain_in_order_and_in_batches() {
        let c: Changes<u32> = Changes::default();
        (0..5).for_each(|i| c.push(i));
        assert_eq!(c.drain(2), vec![0, 1]);
        assert_eq!(c.len(), 3);
        assert_eq!(c.drain(10), vec![2, 3, 4]);
        assert!(c.is_empty());
    }

    #[test]
    fn concurrent_lookups_and_churn() {
        let m: std::sync::Arc<NameMap<u64>> = std::sync::Arc::new(NameMap::new());
        for k in 0..64u64 {
            m.insert(k, |&v| v == k, k);
        }
        let churn = {
            let m = m.clone();
            std::thread::spawn(move || {
                for round in 0..2_000u64 {
                    let k = 64 + round % 64;
                    m.insert(k, |&v| v == k, k);
                    assert_eq!(m.remove(k, |&v| v == k), Some(k));
                }
            })
        };
        for _ in 0..20_000 {
            for k in 0..64u64 {
                assert_eq!(m.with(k, |&v| v == k, |&v| v), Some(k));
            }
        }
        churn.join().expect("churn");
        assert_eq!(m.len(), 64);
    }
}
