//! Where the recorder's seconds come from: the system clock, or a manual
//! clock that tests move by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now_secs(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock standing at `t`.
    pub fn new(t: u64) -> Self {
        ManualClock(AtomicU64::new(t))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: u64) {
        self.0.store(t, Ordering::Relaxed);
    }

    /// Moves the clock `d` seconds on.
    pub fn advance(&self, d: u64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_secs(&self) -> u64 {
        (**self).now_secs()
    }
}
