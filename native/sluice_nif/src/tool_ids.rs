//! Tool ids: the one id counter of every kind (boxes, locks, limiters,
//! breakers, valves), so an id names one tool for the VM's life whatever
//! its kind.
//!
//! The warden keys its records by id and closes the box of a dead owner by
//! id, so it needs no handle (which would keep the box alive); it and
//! `sluice:tools/0` find objects by id through the registry of their kind
//! (`nif_glue::versioned::Versioned::each`), which lists every live object
//! of the kind whatever build made it.

use std::sync::atomic::{AtomicU64, Ordering};

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
