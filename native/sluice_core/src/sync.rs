//! The locks and atomics the structures here use: `parking_lot` and
//! `std`'s atomics in a build, loom's under `--cfg loom` so its model
//! checker sees every access; and a wrapper that keeps what two cores
//! write on cache lines apart.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Locks `m` (a poisoned loom mutex is taken as it is).
#[cfg(loom)]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// Locks `m`.
#[cfg(not(loom))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

/// The value of a mutex owned outright.
#[cfg(loom)]
pub(crate) fn get_mut<T>(m: &mut Mutex<T>) -> &mut T {
    m.get_mut()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// The value of a mutex owned outright.
#[cfg(not(loom))]
pub(crate) fn get_mut<T>(m: &mut Mutex<T>) -> &mut T {
    m.get_mut()
}

/// Keeps what two cores write apart (two cache lines, for the adjacent
/// line the prefetcher pulls along).
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);
