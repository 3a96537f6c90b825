//! Random-drop valves (Erlang in Anger, 3.3.1) with per-priority keep rates.
//!
//! A [`Valve`] answers "keep or drop?" for each request with a probability set
//! per priority. Its state is nothing but atomics in a `#[repr(C)]` block of a
//! fixed size, so it can live inline in a NIF resource, be shared by every
//! scheduler without a lock, and keep the same memory layout across builds of
//! the library (a newer library can take over valves made by an older one).
//!
//! # Memory
//! The counters are striped per thread (a cache-line-aligned stripe of
//! `kept` and `dropped` per priority, 256 bytes), so concurrent asks never
//! share a line. A [`Valve`] ([`Lazy`] stripes) holds only a pointer per
//! stripe and allocates a stripe when a thread of that stripe first asks:
//! an idle valve is 408 bytes (rates, factors, 16 stripe pointers), plus
//! 384 bytes (the stripe and its alignment) per stripe in use. The first
//! layout, [`ValveV1`] ([`Inline`] stripes, 4.5 KB whatever its use), is
//! kept so that a library can still serve valves an older one made.
//!
//! Invariants:
//! - the keep probability of priority `p` is `rate[p] * factor[p]`, both in
//!   [0, 1]; `rate` is what the owner set, `factor` what a regulator set;
//! - every answered ask adds exactly one to `kept[p]` or `dropped[p]` of the
//!   caller's stripe, so `asked = kept + dropped` holds by construction;
//! - `reported_dropped` only grows and never exceeds the sum of `dropped`.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::rng::{chance, thread_draw};

/// Most priorities one valve can have.
pub const MAX_PRIORITIES: usize = 16;
/// Number of counter stripes; each thread adds to one of them.
pub const STRIPES: usize = 16;
/// Layout tag stored in every [`Valve`]: bump it whenever its fields change.
pub const VALVE_LAYOUT: u64 = 0x736c_7663_0000_0002;
/// Layout tag of a [`ValveV1`].
pub const VALVE_V1_LAYOUT: u64 = 0x736c_7663_0000_0001;

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

/// The counters of one stripe of threads.
#[repr(C, align(128))]
pub struct Stripe {
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

/// Where a valve keeps its counter stripes.
pub trait Stripes: Send + Sync + Sized {
    /// The layout tag of a valve with this storage.
    const LAYOUT: u64;
    /// Storage with no count yet.
    fn empty() -> Self;
    /// Stripe `i` if it holds counts.
    fn get(&self, i: usize) -> Option<&Stripe>;
    /// Stripe `i`, made if needed.
    fn get_or_make(&self, i: usize) -> &Stripe;
}

/// Every stripe inline (the first layout: 4 KB of stripes per valve).
#[repr(C)]
pub struct Inline([Stripe; STRIPES]);

impl Stripes for Inline {
    const LAYOUT: u64 = VALVE_V1_LAYOUT;
    fn empty() -> Self {
        Inline(std::array::from_fn(|_| Stripe::new()))
    }
    fn get(&self, i: usize) -> Option<&Stripe> {
        Some(&self.0[i % STRIPES])
    }
    fn get_or_make(&self, i: usize) -> &Stripe {
        &self.0[i % STRIPES]
    }
}

/// A pointer per stripe, the stripe allocated when first used.
#[repr(C)]
pub struct Lazy([AtomicPtr<Stripe>; STRIPES]);

impl Stripes for Lazy {
    const LAYOUT: u64 = VALVE_LAYOUT;
    fn empty() -> Self {
        Lazy(std::array::from_fn(
            |_| AtomicPtr::new(std::ptr::null_mut()),
        ))
    }
    fn get(&self, i: usize) -> Option<&Stripe> {
        let p = self.0[i % STRIPES].load(Ordering::Acquire);
        // SAFETY: a non-null pointer was published by `get_or_make` from a
        // `Box` and is only freed by `drop`, which has `&mut self`.
        unsafe { p.as_ref() }
    }
    fn get_or_make(&self, i: usize) -> &Stripe {
        if let Some(s) = self.get(i) {
            return s;
        }
        let slot = &self.0[i % STRIPES];
        let mine = Box::into_raw(Box::new(Stripe::new()));
        match slot.compare_exchange(
            std::ptr::null_mut(),
            mine,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published; freed only by `drop`.
            Ok(_) => unsafe { &*mine },
            Err(theirs) => {
                // SAFETY: `mine` was never published: ours to free; `theirs`
                // is a published stripe (as in `get`).
                unsafe {
                    drop(Box::from_raw(mine));
                    &*theirs
                }
            }
        }
    }
}

impl Drop for Lazy {
    fn drop(&mut self) {
        for slot in &mut self.0 {
            let p = *slot.get_mut();
            if !p.is_null() {
                // SAFETY: published by `get_or_make` from a `Box`, freed once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// A random-drop valve over stripe storage `S`; see the module
/// documentation. [`Valve`] is the one new valves use.
#[repr(C)]
pub struct ValveOf<S: Stripes> {
    layout: u64,
    priorities: u32,
    deleted: AtomicU32,
    rates: [AtomicU64; MAX_PRIORITIES],
    factors: [AtomicU64; MAX_PRIORITIES],
    reported_dropped: AtomicU64,
    stripes: S,
}

/// A valve whose stripes are allocated when first used.
pub type Valve = ValveOf<Lazy>;
/// A valve of the first layout (every stripe inline).
pub type ValveV1 = ValveOf<Inline>;

fn valid_rate(rate: f64) -> bool {
    (0.0..=1.0).contains(&rate)
}

impl<S: Stripes> ValveOf<S> {
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
            layout: S::LAYOUT,
            priorities: rates.len() as u32,
            deleted: AtomicU32::new(0),
            rates: std::array::from_fn(rate_at),
            factors: std::array::from_fn(|_| AtomicU64::new(1.0f64.to_bits())),
            reported_dropped: AtomicU64::new(0),
            stripes: S::empty(),
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
        let stripe = self.stripes.get_or_make(stripe % STRIPES);
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
        (0..STRIPES)
            .filter_map(|i| self.stripes.get(i))
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

/// Everything a valve holds, as plain values: what one build of a library
/// hands to another ([`ValveOf::image`], [`ValveOf::from_image`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValveImage {
    /// The owner's keep rate of each priority.
    pub rates: Vec<f64>,
    /// The regulator's factor of each priority.
    pub factors: Vec<f64>,
    /// Asks kept, per priority (summed over the stripes).
    pub kept: Vec<u64>,
    /// Asks dropped, per priority (summed over the stripes).
    pub dropped: Vec<u64>,
    /// Drops [`ValveOf::take_dropped`] reported so far.
    pub reported_dropped: u64,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl<S: Stripes> ValveOf<S> {
    /// The valve as plain values (exact when no ask runs meanwhile).
    pub fn image(&self) -> ValveImage {
        let n = self.priorities();
        let counts: Vec<Counts> = (0..n).map(|p| self.counts(p)).collect();
        ValveImage {
            rates: (0..n).map(|p| self.rate(p)).collect(),
            factors: (0..n).map(|p| self.factor(p)).collect(),
            kept: counts.iter().map(|c| c.kept).collect(),
            dropped: counts.iter().map(|c| c.dropped).collect(),
            reported_dropped: self.reported_dropped.load(Ordering::Acquire),
            deleted: self.is_deleted(),
        }
    }

    /// A valve holding what `image` says (its counters in one stripe); an
    /// error for an image no valve has.
    pub fn from_image(image: &ValveImage) -> Result<Self, ValveError> {
        let n = image.rates.len();
        if image.factors.len() != n || image.kept.len() != n || image.dropped.len() != n {
            return Err(ValveError::UnknownPriority);
        }
        let valve = Self::new(&image.rates)?;
        for (p, &factor) in image.factors.iter().enumerate() {
            valve.set_factor(p, factor)?;
        }
        let counted = image.kept.iter().chain(&image.dropped).any(|&c| c > 0);
        if counted {
            let stripe = valve.stripes.get_or_make(0);
            for p in 0..n {
                stripe.kept[p].store(image.kept[p], Ordering::Relaxed);
                stripe.dropped[p].store(image.dropped[p], Ordering::Relaxed);
            }
        }
        valve
            .reported_dropped
            .store(image.reported_dropped, Ordering::Release);
        if image.deleted {
            valve.delete();
        }
        Ok(valve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{RandomSource, WyRand};

    #[test]
    fn an_image_makes_a_valve_whose_counts_continue() {
        let v = ValveV1::new(&[1.0, 0.0, 0.5]).expect("valve");
        let mut rng = WyRand::new(9);
        for i in 0..300usize {
            v.ask_with(i % 3, rng.next_u64(), i).expect("ask");
        }
        v.set_factor(2, 0.25).expect("factor");
        let taken = v.take_dropped();
        let image = v.image();
        assert_eq!(image.kept[0], 100);
        assert_eq!(image.dropped[1], 100);
        assert_eq!(image.reported_dropped, taken);
        let w = Valve::from_image(&image).expect("valve");
        assert_eq!(w.image(), image);
        assert_eq!(w.take_dropped(), 0);
        for i in 0..30usize {
            w.ask_with(i % 3, rng.next_u64(), i).expect("ask");
        }
        assert_eq!(w.counts(0).kept, 110);
        assert_eq!(w.counts(1).dropped, 110);
        let c = w.counts(2);
        assert_eq!(c.kept + c.dropped, 110);
        assert_eq!(
            w.take_dropped(),
            w.image().dropped.iter().sum::<u64>() - taken
        );
        let mut gone = image.clone();
        gone.deleted = true;
        assert!(Valve::from_image(&gone).expect("valve").is_deleted());
        gone.kept.pop();
        assert!(Valve::from_image(&gone).is_err());
    }

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
    fn stripes_are_made_when_first_used() {
        let v = Valve::new(&[0.5, 1.0]).expect("valve");
        assert!(
            (0..STRIPES).all(|i| v.stripes.get(i).is_none()),
            "idle: no stripe"
        );
        assert_eq!(std::mem::size_of::<Valve>(), 408);
        v.ask_with(1, 0, 3).expect("ask");
        v.ask_with(1, 0, 3 + STRIPES).expect("ask");
        assert!(v.stripes.get(3).is_some());
        assert_eq!(
            (0..STRIPES).filter(|&i| v.stripes.get(i).is_some()).count(),
            1
        );
        assert_eq!(
            v.counts(1),
            Counts {
                kept: 2,
                dropped: 0
            }
        );
        assert_eq!(v.counts(0), Counts::default());
        // the first layout counts the same way
        let old = ValveV1::new(&[0.0]).expect("v1");
        assert_eq!(
            std::mem::size_of::<ValveV1>(),
            4480,
            "the first layout, unchanged"
        );
        assert_eq!(old.layout(), VALVE_V1_LAYOUT);
        old.ask_with(0, 0, 5).expect("ask");
        assert_eq!(old.take_dropped(), 1);
        assert_eq!(v.layout(), VALVE_LAYOUT);
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
