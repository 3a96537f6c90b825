//! Counter locks (Erlang in Anger, 3.2.2 and 3.3.5): a fixed array of slots,
//! each lending one resource at a time, claimed with one compare-and-swap.
//!
//! # Slot states
//! Each slot is one word: a state in the low two bits and a generation
//! above, raised at every loan so a stale hand-back is refused.
//!
//! | state  | event                            | next   |
//! |--------|----------------------------------|--------|
//! | Empty  | [`Slots::fill`] (its resource is ready) | Free |
//! | Free   | [`Slots::checkout`] claims it (generation + 1) | Lent |
//! | Lent   | [`Slots::checkin`] with the loan's generation | Free |
//! | Lent   | [`Slots::fail`] (the holder died) | Empty |
//! | Free   | [`Slots::reclaim`], a shrink | Empty  |
//!
//! A checkout starts at a random slot and tries every slot in use, at most
//! [`PROBE_CAP`] of them: `None` means every slot tried was busy, not that
//! one hashed slot was. Only the slot's owner of the moment changes it: the
//! holder of the loan (checkin), the watcher of an empty slot (fill), the
//! death of the holder (fail); all three go through the word, so exactly one
//! of two racing changes wins.

use crate::sync::{AtomicU64, AtomicUsize, Ordering, Padded};

/// Most slots one checkout tries.
pub const PROBE_CAP: usize = 64;
/// Most slots a lock has.
pub const MAX_SLOTS: usize = 4096;

const EMPTY: u64 = 0;
const FREE: u64 = 1;
const LENT: u64 = 2;
const STATE: u64 = 3;

/// A loan: which slot, and its generation (refuses a stale hand-back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loan {
    /// The slot.
    pub index: usize,
    /// The loan's generation.
    pub generation: u64,
}

/// Counters of a lock since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStats {
    /// Successful checkouts.
    pub checkouts: u64,
    /// Checkouts that found every slot tried busy.
    pub busy: u64,
    /// Loans ended by the holder's death.
    pub deaths: u64,
    /// Loans out now.
    pub in_use: u64,
    /// Most loans out at once.
    pub peak: u64,
}

/// Counters every call writes: one set per stripe of threads.
#[derive(Default)]
struct Counts {
    checkouts: AtomicU64,
    busy: AtomicU64,
}

/// Stripes of [`Counts`].
const STRIPES: usize = 8;

/// The slots of one lock; see the module documentation.
pub struct Slots {
    words: Box<[Padded<AtomicU64>]>,
    /// Slots in use (the first `active`).
    active: AtomicUsize,
    counts: [Padded<Counts>; STRIPES],
    deaths: AtomicU64,
    /// Loans out now and the most at once.
    out: Padded<(AtomicU64, AtomicU64)>,
}

impl Slots {
    /// `n` slots in use (at most [`MAX_SLOTS`]), all empty, room for `capacity`.
    pub fn new(n: usize, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_SLOTS);
        Self {
            words: (0..capacity)
                .map(|_| Padded(AtomicU64::new(EMPTY)))
                .collect(),
            active: AtomicUsize::new(n.min(capacity)),
            counts: std::array::from_fn(|_| Padded(Counts::default())),
            deaths: AtomicU64::new(0),
            out: Padded((AtomicU64::new(0), AtomicU64::new(0))),
        }
    }

    /// Slots in use.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Slots there is room for.
    pub fn capacity(&self) -> usize {
        self.words.len()
    }

    /// Claims a free slot, trying them from `start` (any number, taken
    /// modulo the slots in use); `None` when every slot tried is busy.
    /// `stripe` picks the counters to count in (one per caller thread
    /// keeps callers on different cores off each other's cache lines).
    pub fn checkout(&self, start: usize, stripe: usize) -> Option<Loan> {
        let counts = &self.counts[stripe % STRIPES].0;
        let n = self.active();
        for i in 0..n.min(PROBE_CAP) {
            let index = (start.wrapping_add(i)) % n;
            let word = &self.words[index].0;
            let mut w = word.load(Ordering::Acquire);
            while w & STATE == FREE {
                let generation = (w >> 2) + 1;
                match word.compare_exchange_weak(
                    w,
                    (generation << 2) | LENT,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        counts.checkouts.fetch_add(1, Ordering::Relaxed);
                        let (in_use, peak) = &self.out.0;
                        let out = in_use.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
                        // (`out` may have wrapped for an instant, see `end`)
                        if out <= self.words.len() as u64 && out > peak.load(Ordering::Relaxed) {
                            peak.fetch_max(out, Ordering::Relaxed);
                        }
                        return Some(Loan { index, generation });
                    }
                    Err(now) => w = now,
                }
            }
        }
        counts.busy.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Ends `loan` from `from` (Lent) to `to`; whether it was still out.
    ///
    /// The count of loans out goes down before the slot is freed (and back
    /// up if the loan was not out), as a checkout counts up only after its
    /// claim: so the count never exceeds the slots lent at that moment, and
    /// `peak` never exceeds the slots.
    fn end(&self, loan: Loan, to: u64) -> bool {
        let Some(Padded(word)) = self.words.get(loan.index) else {
            return false;
        };
        let lent = (loan.generation << 2) | LENT;
        let next = (loan.generation << 2) | to;
        let in_use = &self.out.0 .0;
        in_use.fetch_sub(1, Ordering::AcqRel);
        let ok = word
            .compare_exchange(lent, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !ok {
            in_use.fetch_add(1, Ordering::AcqRel);
        }
        ok
    }

    /// Hands `loan` back: the slot is free again (or empty, when it is no
    /// longer in use after a shrink). `false` for a stale or unknown loan.
    pub fn checkin(&self, loan: Loan) -> bool {
        let to = if loan.index < self.active() {
            FREE
        } else {
            EMPTY
        };
        self.end(loan, to)
    }

    /// Ends `loan` because its holder died: the slot is empty until its
    /// resource is ready again. `false` when it was handed back already.
    pub fn fail(&self, loan: Loan) -> bool {
        let ok = self.end(loan, EMPTY);
        if ok {
            self.deaths.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Marks the empty slot `index` free (its resource is ready); `false`
    /// when it is not empty or not in use.
    pub fn fill(&self, index: usize) -> bool {
        if index >= self.active() {
            return false;
        }
        let Some(Padded(word)) = self.words.get(index) else {
            return false;
        };
        let w = word.load(Ordering::Acquire);
        w & STATE == EMPTY
            && word
                .compare_exchange(w, (w & !STATE) | FREE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Empties the free slot `index` (its watcher replaces its resource);
    /// `false` when it is not free.
    pub fn reclaim(&self, index: usize) -> bool {
        let Some(Padded(word)) = self.words.get(index) else {
            return false;
        };
        let w = word.load(Ordering::Acquire);
        w & STATE == FREE
            && word
                .compare_exchange(w, w & !STATE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Whether slot `index` is empty (its resource to be made ready).
    pub fn is_empty(&self, index: usize) -> bool {
        self.words
            .get(index)
            .is_some_and(|w| w.0.load(Ordering::Acquire) & STATE == EMPTY)
    }

    /// Uses the first `n` slots (at most the capacity); slots beyond that
    /// stop lending: free ones are emptied now, lent ones when handed back.
    pub fn resize(&self, n: usize) -> usize {
        let n = n.min(self.capacity());
        self.active.store(n, Ordering::Release);
        for Padded(word) in &self.words[n..] {
            let w = word.load(Ordering::Acquire);
            if w & STATE == FREE {
                let _ = word.compare_exchange(w, w & !STATE, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        n
    }

    /// The counters.
    pub fn stats(&self) -> LockStats {
        let sum = |f: fn(&Counts) -> &AtomicU64| {
            let all = self.counts.iter().map(|c| f(&c.0).load(Ordering::Relaxed));
            all.sum::<u64>()
        };
        LockStats {
            checkouts: sum(|c| &c.checkouts),
            busy: sum(|c| &c.busy),
            deaths: self.deaths.load(Ordering::Relaxed),
            // (for an instant, a hand-back that turns out stale counts
            // down: such a wrapped value reads as 0)
            in_use: match self.out.0 .0.load(Ordering::Relaxed) {
                n if n > u64::MAX / 2 => 0,
                n => n,
            },
            peak: self.out.0 .1.load(Ordering::Relaxed),
        }
    }
}

/// Everything a lock's slots hold, as plain values: what one build of a
/// library hands to another ([`Slots::image`], [`Slots::from_image`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotsImage {
    /// Each slot's word: its state (low two bits) and generation.
    pub words: Vec<u64>,
    /// Slots in use.
    pub active: usize,
    /// Successful checkouts.
    pub checkouts: u64,
    /// Checkouts that found every slot tried busy.
    pub busy: u64,
    /// Loans ended by the holder's death.
    pub deaths: u64,
    /// Loans out now.
    pub in_use: u64,
    /// Most loans out at once.
    pub peak: u64,
}

impl Slots {
    /// The slots as plain values (no call may change them meanwhile for
    /// the image to be exact).
    pub fn image(&self) -> SlotsImage {
        let s = self.stats();
        SlotsImage {
            words: self
                .words
                .iter()
                .map(|w| w.0.load(Ordering::Acquire))
                .collect(),
            active: self.active(),
            checkouts: s.checkouts,
            busy: s.busy,
            deaths: s.deaths,
            in_use: s.in_use,
            peak: s.peak,
        }
    }

    /// Slots holding what `image` says (the counters in one stripe);
    /// `None` for an image no lock has (no slot, more than [`MAX_SLOTS`],
    /// more slots in use than there are).
    pub fn from_image(image: &SlotsImage) -> Option<Self> {
        let capacity = image.words.len();
        if capacity == 0 || capacity > MAX_SLOTS || image.active > capacity {
            return None;
        }
        let slots = Self::new(image.active, capacity);
        for (Padded(word), &w) in slots.words.iter().zip(&image.words) {
            word.store(w, Ordering::Relaxed);
        }
        let Padded(counts) = &slots.counts[0];
        counts.checkouts.store(image.checkouts, Ordering::Relaxed);
        counts.busy.store(image.busy, Ordering::Relaxed);
        slots.deaths.store(image.deaths, Ordering::Relaxed);
        slots.out.0 .0.store(image.in_use, Ordering::Relaxed);
        slots.out.0 .1.store(image.peak, Ordering::Relaxed);
        Some(slots)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn filled(n: usize) -> Slots {
        let s = Slots::new(n, n);
        for i in 0..n {
            assert!(s.fill(i));
        }
        s
    }

    #[test]
    fn an_image_makes_the_same_slots() {
        let s = filled(4);
        let a = s.checkout(0, 0).unwrap();
        let b = s.checkout(0, 3).unwrap();
        assert!(s.fail(b));
        let c = s.checkout(0, 1).unwrap();
        assert!(s.checkin(a));
        s.resize(3);
        let image = s.image();
        let t = Slots::from_image(&image).unwrap();
        assert_eq!(t.image(), image);
        assert_eq!(t.stats(), s.stats());
        assert_eq!((t.active(), t.capacity()), (3, 4));
        // a stale hand-back is still refused, the loan out still comes back
        assert!(!t.checkin(a));
        assert!(t.is_empty(b.index));
        assert!(t.checkin(c));
        assert!(!t.checkin(c));
        assert!(Slots::from_image(&SlotsImage::default()).is_none());
        let mut wide = image.clone();
        wide.active = 5;
        assert!(Slots::from_image(&wide).is_none());
    }

    #[test]
    fn lends_each_slot_once_and_busy_means_all_busy() {
        let s = filled(3);
        let loans: Vec<Loan> = (0..3)
            .map(|i| s.checkout(i * 7, 0).expect("free"))
            .collect();
        let mut idx: Vec<usize> = loans.iter().map(|l| l.index).collect();
        idx.sort_unstable();
        assert_eq!(idx, vec![0, 1, 2]);
        assert_eq!(s.checkout(0, 0), None, "every slot tried was lent");
        assert!(s.checkin(loans[1]));
        assert!(!s.checkin(loans[1]), "a loan goes back once");
        assert_eq!(s.checkout(5, 1).map(|l| l.index), Some(loans[1].index));
        let st = s.stats();
        assert_eq!((st.checkouts, st.busy, st.in_use, st.peak), (4, 1, 3, 3));
    }

    #[test]
    fn a_dead_holder_empties_the_slot_until_filled() {
        let s = filled(1);
        let loan = s.checkout(0, 0).expect("free");
        assert!(s.fail(loan));
        assert!(!s.checkin(loan), "the loan ended with its holder");
        assert!(s.is_empty(0));
        assert_eq!(s.checkout(0, 0), None);
        assert!(s.fill(0));
        let again = s.checkout(0, 0).expect("refilled");
        assert_eq!(again.generation, loan.generation + 1);
        assert_eq!(s.stats().deaths, 1);
    }

    #[test]
    fn shrinking_retires_slots_as_they_come_back() {
        let s = Slots::new(3, 8);
        for i in 0..3 {
            assert!(s.fill(i));
        }
        let loans: Vec<Loan> = (0..3).map(|i| s.checkout(i, i).expect("free")).collect();
        assert_eq!(s.resize(1), 1);
        for l in &loans {
            assert!(s.checkin(*l));
        }
        assert!(s.is_empty(1) && s.is_empty(2), "retired slots are empty");
        assert_eq!(s.checkout(0, 0).map(|l| l.index), Some(0));
        assert_eq!(s.checkout(1, 2), None);
        assert_eq!(s.resize(5), 5);
        assert!(s.fill(4) && !s.fill(5));
    }
}

#[cfg(all(test, not(loom)))]
mod contention_tests {
    use super::*;
    use std::sync::Arc;

    /// Many threads lending and handing back two slots: the count of loans
    /// out never reads above the slots, so neither does `peak`.
    #[test]
    fn peak_never_exceeds_the_slots() {
        let s = Arc::new(Slots::new(2, 2));
        assert!(s.fill(0) && s.fill(1));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        if let Some(l) = s.checkout(t + i, t) {
                            assert!(s.stats().in_use <= 2);
                            assert!(s.checkin(l));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let st = s.stats();
        assert!(st.peak <= 2, "peak {}", st.peak);
        assert_eq!(st.in_use, 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn racing_checkouts_never_share_a_slot() {
        loom::model(|| {
            let s = Arc::new(Slots::new(1, 1));
            assert!(s.fill(0));
            let threads: Vec<_> = (0..2)
                .map(|i| {
                    let s = s.clone();
                    loom::thread::spawn(move || {
                        let loan = s.checkout(i, i);
                        if let Some(l) = loan {
                            assert!(s.checkin(l));
                        }
                        loan.is_some()
                    })
                })
                .collect();
            let got: Vec<bool> = threads.into_iter().map(|t| t.join().expect("t")).collect();
            let st = s.stats();
            assert_eq!(st.checkouts, got.iter().filter(|&&g| g).count() as u64);
            assert_eq!(st.checkouts + st.busy, 2);
            assert_eq!(st.in_use, 0);
        });
    }

    #[test]
    fn a_hand_back_and_a_checkout_never_count_two() {
        loom::model(|| {
            let s = Arc::new(Slots::new(1, 1));
            assert!(s.fill(0));
            let loan = s.checkout(0, 0).expect("free");
            let t = {
                let s = s.clone();
                loom::thread::spawn(move || {
                    if let Some(l) = s.checkout(0, 1) {
                        assert!(s.checkin(l));
                    }
                })
            };
            assert!(s.checkin(loan));
            t.join().expect("t");
            assert_eq!(s.stats().peak, 1);
            assert_eq!(s.stats().in_use, 0);
        });
    }

    #[test]
    fn death_and_hand_back_race_once() {
        loom::model(|| {
            let s = Arc::new(Slots::new(1, 1));
            assert!(s.fill(0));
            let loan = s.checkout(0, 0).expect("free");
            let t = {
                let s = s.clone();
                loom::thread::spawn(move || s.fail(loan))
            };
            let back = s.checkin(loan);
            let died = t.join().expect("t");
            assert!(back ^ died, "exactly one ends the loan");
            assert_eq!(s.stats().in_use, 0);
            assert_eq!(s.is_empty(0), died);
        });
    }
}
