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

/// The clock a recorder reads: an enum rather than a `dyn Clock`, so that
/// a recorder taken over by a newer instance of its NIF library holds no
/// vtable pointer into the library that made it.
#[derive(Debug, Clone)]
pub enum AnyClock {
    /// The system's wall clock.
    System(SystemClock),
    /// A clock tests move by hand.
    Manual(Arc<ManualClock>),
}

impl Clock for AnyClock {
    fn now_secs(&self) -> u64 {
        match self {
            AnyClock::System(c) => c.now_secs(),
            AnyClock::Manual(c) => c.now_secs(),
        }
    }
}
