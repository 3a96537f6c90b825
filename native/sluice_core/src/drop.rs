//! Random-drop valves (Erlang in Anger, 3.3.1) with per-priority keep rates.
//!
//! A [`Valve`] answers "keep or drop?" for each request with a probability set
//! per priority. Its state is nothing but atomics in a `#[repr(C)]` block of a
//! fixed size, so it can live inline in a NIF resource, be shared by every
//! scheduler without a lock, and keep the same memory layout across builds of
//! the library (a newer library can take over valves made by an older one).
//!
//! Invariants:
//! - the keep probability of priority `p` is `rate[p] * factor[p]`, both in
//!   [0, 1]; `rate` is what the owner set, `factor` what a regulator set;
//! - every answered ask adds exactly one to `kept[p]` or `dropped[p]` of the
//!   caller's stripe, so `asked = kept + dropped` holds by construction;
//! - `reported_dropped` only grows and never exceeds the sum of `dropped`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::rng::{chance, thread_draw};

/// Most priorities one valve can have.
pub const MAX_PRIORITIES: usize = 16;
/// Number of counter stripes; each thread adds to one of them.
pub const STRIPES: usize = 16;
/// Layout tag stored in every valve: bump it whenever [`Valve`]'s fields change.
pub const VALVE_LAYOUT: u64 = 0x736c_7663_0000_0001;

/// What went wrong with a valve operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValveError {
    /// A valve needs at least one priority.
    NoPriorities,
    /// More than [`MAX_PRIORITIES`] priorities were asked for.
    TooManyPriorities,
    /// A rate or factor was not a number in [0.0, 1.0].
    BadRate,
    /// The priority index is not one of the valve's priorities.
    UnknownPriority,
    /// The valve was deleted; its handle no longer answers.
    Deleted,
}

/// Kept and dropped answers of one priority, summed over all stripes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Asks answered "keep".
    pub kept: u64,
    /// Asks answered "drop".
    pub dropped: u64,
}

#[repr(C, align(128))]
struct Stripe {
    kept: [AtomicU64; MAX_PRIORITIES],
    dropped: [AtomicU64; MAX_PRIORITIES],
}

impl Stripe {
    fn new() -> Self {
        Self {
            kept: std::array::from_fn(|_| AtomicU64::new(0)),
            dropped: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A random-drop valve; see the module documentation.
#[repr(C)]
pub struct Valve {
    layout: u64,
    priorities: u32,
    deleted: AtomicU32,
    rates: [AtomicU64; MAX_PRIORITIES],
    factors: [AtomicU64; MAX_PRIORITIES],
    reported_dropped: AtomicU64,
    stripes: [Stripe; STRIPES],
}

fn valid_rate(rate: f64) -> bool {
    (0.0..=1.0).contains(&rate)
}

impl Valve {
    /// A valve with one priority per entry of `rates` (keep probabilities).
    pub fn new(rates: &[f64]) -> Result<Self, ValveError> {
        if rates.is_empty() {
            return Err(ValveError::NoPriorities);
        }
        if rates.len() > MAX_PRIORITIES {
            return Err(ValveError::TooManyPriorities);
        }
        if !rates.iter().all(|&r| valid_rate(r)) {
            return Err(ValveError::BadRate);
        }
        let rate_at = |i: usize| AtomicU64::new(rates.get(i).copied().unwrap_or(1.0).to_bits());
        Ok(Self {
            layout: VALVE_LAYOUT,
            priorities: rates.len() as u32,
            deleted: AtomicU32::new(0),
            rates: std::array::from_fn(rate_at),
            factors: std::array::from_fn(|_| AtomicU64::new(1.0f64.to_bits())),
            reported_dropped: AtomicU64::new(0),
            stripes: std::array::from_fn(|_| Stripe::new()),
        })
    }

    /// The layout tag this valve was built with (see [`VALVE_LAYOUT`]).
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Number of priorities.
    pub fn priorities(&self) -> usize {
        self.priorities as usize
    }

    fn check(&self, prio: usize) -> Result<(), ValveError> {
        if self.deleted.load(Ordering::Relaxed) != 0 {
            Err(ValveError::Deleted)
        } else if prio >= self.priorities() {
            Err(ValveError::UnknownPriority)
        } else {
            Ok(())
        }
    }

    /// Keep (`true`) or drop (`false`) one request of priority `prio`, using
    /// the calling thread's generator and its stripe (its slot modulo [`STRIPES`]).
    #[inline]
    pub fn ask(&self, prio: usize) -> Result<bool, ValveError> {
        let (word, slot) = thread_draw();
        self.ask_with(prio, word, slot)
    }

    /// [`Valve::ask`] with the random word and the stripe given by the caller.
    #[inline]
    pub fn ask_with(&self, prio: usize, word: u64, stripe: usize) -> Result<bool, ValveError> {
        self.check(prio)?;
        let keep = chance(self.effective_rate(prio), word);
        let stripe = &self.stripes[stripe % STRIPES];
        let counter = if keep {
            &stripe.kept[prio]
        } else {
            &stripe.dropped[prio]
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(keep)
    }

    /// The keep rate the owner set for `prio`.
    pub fn rate(&self, prio: usize) -> f64 {
        f64::from_bits(self.rates[prio % MAX_PRIORITIES].load(Ordering::Relaxed))
    }

    /// The factor a regulator set for `prio` (1.0 when unregulated).
    pub fn factor(&self, prio: usize) -> f64 {
        f64::from_bits(self.factors[prio % MAX_PRIORITIES].load(Ordering::Relaxed))
    }

    /// The probability an ask of `prio` is kept now: `rate * factor`.
    #[inline]
    pub fn effective_rate(&self, prio: usize) -> f64 {
        self.rate(prio) * self.factor(prio)
    }

    fn store(
        &self,
        which: &[AtomicU64; MAX_PRIORITIES],
        prio: usize,
        value: f64,
    ) -> Result<(), ValveError> {
        self.check(prio)?;
        if !valid_rate(value) {
            return Err(ValveError::BadRate);
        }
        which[prio].store(value.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// Sets the keep rate of `prio`; every later ask on any thread sees it.
    pub fn set_rate(&self, prio: usize, rate: f64) -> Result<(), ValveError> {
        self.store(&self.rates, prio, rate)
    }

    /// Sets the regulation factor of `prio`.
    pub fn set_factor(&self, prio: usize, factor: f64) -> Result<(), ValveError> {
        self.store(&self.factors, prio, factor)
    }

    /// Kept and dropped answers of `prio` so far.
    pub fn counts(&self, prio: usize) -> Counts {
        let p = prio % MAX_PRIORITIES;
        self.stripes
            .iter()
            .fold(Counts::default(), |acc, s| Counts {
                kept: acc.kept + s.kept[p].load(Ordering::Relaxed),
                dropped: acc.dropped + s.dropped[p].load(Ordering::Relaxed),
            })
    }

    fn total_dropped(&self) -> u64 {
        (0..self.priorities()).map(|p| self.counts(p).dropped).sum()
    }

    /// Drops over all priorities since the previous call (or since creation).
    ///
    /// Concurrent callers never both report the same drop.
    pub fn take_dropped(&self) -> u64 {
        let now = self.total_dropped();
        let before = self.reported_dropped.fetch_max(now, Ordering::AcqRel);
        now.saturating_sub(before)
    }

    /// Marks the valve deleted: later operations answer [`ValveError::Deleted`].
    pub fn delete(&self) {
        self.deleted.store(1, Ordering::Relaxed);
    }

    /// Whether [`Valve::delete`] was called.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{RandomSource, WyRand};

    #[test]
    fn rejects_bad_construction() {
        assert_eq!(Valve::new(&[]).err(), Some(ValveError::NoPriorities));
        assert_eq!(
            Valve::new(&[0.5; 17]).err(),
            Some(ValveError::TooManyPriorities)
        );
        assert_eq!(Valve::new(&[1.5]).err(), Some(ValveError::BadRate));
        assert_eq!(Valve::new(&[f64::NAN]).err(), Some(ValveError::BadRate));
    }

    #[test]
    fn counts_add_up_per_priority() {
        let v = Valve::new(&[1.0, 0.0, 0.5]).expect("valve");
        let mut rng = WyRand::new(3);
        for i in 0..3000usize {
            let keep = v.ask_with(i % 3, rng.next_u64(), i).expect("ask");
            match i % 3 {
                0 => assert!(keep),
                1 => assert!(!keep),
                _ => {}
            }
        }
        assert_eq!(
            v.counts(0),
            Counts {
                kept: 1000,
                dropped: 0
            }
        );
        assert_eq!(
            v.counts(1),
            Counts {
                kept: 0,
                dropped: 1000
            }
        );
        let c = v.counts(2);
        assert_eq!(c.kept + c.dropped, 1000);
        assert!(c.kept > 400 && c.kept < 600, "{c:?}");
    }

    #[test]
    fn take_dropped_reports_each_drop_once() {
        let v = Valve::new(&[0.0]).expect("valve");
        for _ in 0..5 {
            v.ask(0).expect("ask");
        }
        assert_eq!(v.take_dropped(), 5);
        assert_eq!(v.take_dropped(), 0);
        v.ask(0).expect("ask");
        assert_eq!(v.take_dropped(), 1);
    }

    #[test]
    fn rate_and_factor_multiply() {
        let v = Valve::new(&[0.8]).expect("valve");
        v.set_factor(0, 0.5).expect("factor");
        assert!((v.effective_rate(0) - 0.4).abs() < 1e-12);
        assert_eq!(v.set_rate(0, -0.1), Err(ValveError::BadRate));
        assert_eq!(v.set_rate(1, 0.1), Err(ValveError::UnknownPriority));
        v.set_factor(0, 0.0).expect("factor");
        assert_eq!(v.ask(0), Ok(false));
    }

    #[test]
    fn deleted_valve_refuses() {
        let v = Valve::new(&[1.0]).expect("valve");
        v.delete();
        assert!(v.is_deleted());
        assert_eq!(v.ask(0), Err(ValveError::Deleted));
    }

    #[test]
    fn concurrent_asks_reconcile() {
        let v = std::sync::Arc::new(Valve::new(&[0.5]).expect("valve"));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let v = v.clone();
                std::thread::spawn(move || {
                    let mut kept = 0u64;
                    for _ in 0..50_000 {
                        if v.ask(0).expect("ask") {
                            kept += 1;
                        }
                    }
                    kept
                })
            })
            .collect();
        let kept: u64 = threads.into_iter().map(|t| t.join().expect("join")).sum();
        let c = v.counts(0);
        assert_eq!(c.kept, kept);
        assert_eq!(c.kept + c.dropped, 200_000);
        assert_eq!(v.take_dropped(), c.dropped);
    }
}
