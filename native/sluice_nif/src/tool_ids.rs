//! Tool ids: every box, lock and rate limiter of this library instance by
//! id, held weakly, and the one id counter of every kind.
//!
//! The warden keys its records by id and closes the box of a dead owner by
//! id, so it needs no handle (which would keep the box alive); `sluice:tools/0`
//! lists every live object of a kind from its registry, the anonymous ones
//! too. A map holds `Weak` references: an object no handle reaches is
//! freed as usual, and its destructor removes its entry.
//!
//! Ids come from one counter for every kind (boxes, locks, limiters,
//! breakers, valves), so an id names one tool for the VM's life whatever
//! its kind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use nif_glue::clock::now;

/// The next id; 0 until the first. It starts at the monotonic clock's
/// nanoseconds, so a library instance that takes over from an older one
/// never hands out an id the older one did (making an object takes far
/// more than a nanosecond).
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A new id, never handed out before in this VM.
pub(crate) fn next_id() -> u64 {
    if NEXT.load(Ordering::Acquire) == 0 {
        let _ = NEXT.compare_exchange(0, now().max(1), Ordering::AcqRel, Ordering::Acquire);
    }
    NEXT.fetch_add(1, Ordering::AcqRel)
}

/// Objects by id, held weakly.
pub(crate) struct Registry<T> {
    map: Mutex<Option<HashMap<u64, Weak<T>>>>,
}

impl<T> Registry<T> {
    /// An empty registry.
    pub(crate) const fn new() -> Self {
        Self {
            map: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashMap<u64, Weak<T>>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `value` under `id`.
    pub(crate) fn insert(&self, id: u64, value: &Arc<T>) {
        self.lock()
            .get_or_insert_with(HashMap::new)
            .insert(id, Arc::downgrade(value));
    }

    /// Forgets `id` (its object's destructor calls this).
    pub(crate) fn remove(&self, id: u64) {
        if let Some(map) = self.lock().as_mut() {
            map.remove(&id);
        }
    }

    /// The live object with id `id`, if any. The caller's `Arc` is dropped
    /// after the registry is unlocked, so a destructor it runs can remove
    /// the entry.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<T>> {
        self.lock().as_ref()?.get(&id)?.upgrade()
    }

    /// The ids of `ids` whose object is still alive.
    pub(crate) fn alive(&self, ids: Vec<u64>) -> Vec<u64> {
        let guard = self.lock();
        let Some(map) = guard.as_ref() else {
            return Vec::new();
        };
        ids.into_iter()
            .filter(|id| map.get(id).is_some_and(|w| w.strong_count() > 0))
            .collect()
    }

    /// At most `limit` live objects for which `keep` holds, with their
    /// ids, in no order. As for [`Registry::get`], an object is only ever
    /// let go after the registry is unlocked (the last reference dropped
    /// frees it, and its destructor locks the registry): the caller drops
    /// the ones returned, and those `keep` refused are dropped here, after
    /// the lock.
    pub(crate) fn live(&self, limit: usize, keep: impl Fn(&T) -> bool) -> Vec<(u64, Arc<T>)> {
        let mut out = Vec::new();
        let mut refused = Vec::new();
        {
            let guard = self.lock();
            for (&id, weak) in guard.iter().flatten() {
                if out.len() >= limit {
                    break;
                }
                if let Some(object) = weak.upgrade() {
                    if keep(&object) {
                        out.push((id, object));
                    } else {
                        refused.push(object);
                    }
                }
            }
        }
        drop(refused);
        out
    }
}
