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
//!
//! # Across an upgrade
//! The registries outlive the library instance that made them, as the
//! breakers' names do: slot [`REGISTRIES_SLOT`] of `nif_glue`'s shared
//! block points to a [`Kinds`] block (a fixed layout in every build) with
//! one registry per kind, each tagged with the build fingerprint of its
//! kind's objects. A newer library of the same layout of a kind finds
//! that kind's registry, with the objects it took over; one of another
//! layout can only load while no object of the kind lives, and starts a
//! registry of its own (leaving the old, empty one: a few words).

use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use nif_glue::clock::now;
use nif_glue::resource;

/// The slot of `nif_glue`'s shared block that holds the [`Kinds`] block
/// (slot 0 holds the breakers' names).
pub const REGISTRIES_SLOT: usize = 1;

/// The kinds with a registry here, by index in [`Kinds`].
pub(crate) const BOXES: usize = 0;
/// Locks and concurrency limits.
pub(crate) const LOCKS: usize = 1;
/// Rate limiters.
pub(crate) const LIMITERS: usize = 2;

/// Tag of the layout of [`Kinds`], its first field in every build.
const KINDS_ABI: u64 = 0x736c_7467_0000_0001;

/// One registry pointer per kind; this layout never changes (a new kind
/// would take a new tag).
#[repr(C)]
struct Kinds {
    abi: u64,
    kinds: [AtomicPtr<c_void>; 3],
}

/// A registry and the build fingerprint of its kind's objects (first
/// field in every build).
#[repr(C)]
pub(crate) struct Tagged<T> {
    build: u64,
    registry: Registry<T>,
}

impl<T> Tagged<T> {
    /// An empty registry of objects laid out by build `build`.
    pub(crate) const fn new(build: u64) -> Self {
        Self {
            build,
            registry: Registry::new(),
        }
    }
}

/// The shared block of registries, made on first use; `None` before the
/// library's first load.
fn kinds() -> Option<&'static Kinds> {
    let slot = resource::ext(REGISTRIES_SLOT)?;
    loop {
        let seen = slot.load(Ordering::Acquire);
        // SAFETY: a non-null slot points to a block some build of this
        // library leaked there for good; its first field is the ABI tag.
        if !seen.is_null() && unsafe { seen.cast::<u64>().read() } == KINDS_ABI {
            // SAFETY: same tag, same layout; never freed.
            return Some(unsafe { &*seen.cast::<Kinds>() });
        }
        let mine = Box::into_raw(Box::new(Kinds {
            abi: KINDS_ABI,
            kinds: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }));
        match slot.compare_exchange(seen, mine.cast(), Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just stored, never freed.
            Ok(_) => return Some(unsafe { &*mine }),
            // SAFETY: `mine` was not published; it is ours to free.
            Err(_) => drop(unsafe { Box::from_raw(mine) }),
        }
    }
}

/// The registry of kind `kind` (objects of build `build`): the shared
/// block's when it has one of this build (made on first use), `local`'s
/// otherwise (before the first load, or when the slot is taken).
pub(crate) fn shared<T>(
    kind: usize,
    build: u64,
    local: &'static OnceLock<Tagged<T>>,
) -> &'static Registry<T> {
    let own = || &local.get_or_init(|| Tagged::new(build)).registry;
    let Some(slot) = kinds().and_then(|k| k.kinds.get(kind)) else {
        return own();
    };
    loop {
        let seen = slot.load(Ordering::Acquire);
        // SAFETY: a non-null slot points to a `Tagged` some build leaked
        // there for good; its first field is the build in every layout.
        if !seen.is_null() && unsafe { seen.cast::<u64>().read() } == build {
            // SAFETY: same build, so same layout of `T` and its registry.
            return unsafe { &(*seen.cast::<Tagged<T>>()).registry };
        }
        let mine = Box::into_raw(Box::new(Tagged::<T>::new(build)));
        match slot.compare_exchange(seen, mine.cast(), Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just stored, never freed.
            Ok(_) => return unsafe { &(*mine).registry },
            // SAFETY: `mine` was not published; it is ours to free.
            Err(_) => drop(unsafe { Box::from_raw(mine) }),
        }
    }
}

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
