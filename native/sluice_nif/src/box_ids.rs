//! Box ids: every box of this library instance by id, held weakly.
//!
//! The warden keys its records by id and closes the box of a dead owner by
//! id, so it needs no handle (which would keep the box alive). The map
//! holds `Weak` references: a box no handle reaches is freed as usual, and
//! its destructor removes its entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Objects by id, held weakly, with the id counter.
pub(crate) struct Registry<T> {
    map: Mutex<Option<HashMap<u64, Weak<T>>>>,
    /// The next id; 0 until the first. It starts at the monotonic clock's
    /// nanoseconds, so a library instance that takes over from an older
    /// one never hands out an id the older one did (making a box takes far
    /// more than a nanosecond).
    next: AtomicU64,
}

impl<T> Registry<T> {
    /// An empty registry.
    pub(crate) const fn new() -> Self {
        Self {
            map: Mutex::new(None),
            next: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashMap<u64, Weak<T>>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new id (`now`: the monotonic clock, in nanoseconds).
    pub(crate) fn next_id(&self, now: u64) -> u64 {
        if self.next.load(Ordering::Acquire) == 0 {
            let _ = self
                .next
                .compare_exchange(0, now.max(1), Ordering::AcqRel, Ordering::Acquire);
        }
        self.next.fetch_add(1, Ordering::AcqRel)
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
}
