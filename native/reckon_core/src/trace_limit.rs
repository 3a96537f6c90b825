//! The limit of a trace (`reckon_trace`), checked by the `erl_tracer`
//! module `reckon_tracer` before any trace message exists.
//!
//! The VM calls a tracer's `enabled/3` for every event before it builds
//! anything, then (when `enabled` answered `trace`) runs the match spec and
//! calls `trace/5` with the event's terms. The limit is split the same way:
//! - [`Limit::check`] (in `enabled`): one atomic load; an event over the
//!   limit is refused there (`discard`), and counted as suppressed;
//! - [`Limit::claim`] (in `trace/5`): the event takes its place with an
//!   atomic update, so exactly `n` events are accepted however many
//!   schedulers race (a match spec may still have rejected events that
//!   `check` let through, which is why `check` only looks).
//!
//! Two kinds of limit, two modes:
//!
//! | limit | `stop` | `throttle` |
//! |---|---|---|
//! | `n` (absolute) | `n` events, then the trace is done | (refused by the Erlang side) |
//! | `n` per `window` ns | events pass while a window holds at most `n`; the first one beyond trips: the trace is done | at most `n` per window; the rest are suppressed and counted, and each window's count is reported once |
//!
//! Windows are fixed: window `i` covers `[start + i * window, start + (i + 1) * window)`.
//!
//! # State (two words, both atomics)
//! `accepted`: absolute limit: events accepted so far; windowed: `(index << 32) | accepted in
//! window index`. `suppressed`: `(index << 32) | events suppressed in window index`,
//! plus `carry`, suppressed counts of older windows not reported yet (only
//! when tracees race across a window boundary). `done` is set once, by the
//! event that trips the limit or by [`Limit::close`].
//!
//! The clock is a parameter (`now`, nanoseconds): tests drive it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What happens when a limit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The trace ends: every later event is discarded.
    Stop,
    /// Events beyond the window's `n` are suppressed and counted; the next
    /// window accepts again.
    Throttle,
}

/// What `enabled/3` answers for an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Let the VM build the event (it may still be refused by `claim`).
    Pass,
    /// Over the limit: discard it.
    Discard,
    /// Over the limit, and this event tripped a stop: discard it and tell
    /// the trace's owner (once).
    Trip,
}

/// What `trace/5` does with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Deliver the event.
    pub accept: bool,
    /// The trace is done after this event (it took the last place, or it
    /// tripped a stop); tell the owner, once.
    pub done: bool,
    /// Events suppressed in the windows before this one, to report before
    /// this event (0: nothing to report).
    pub suppressed: u64,
}

/// The limit of one trace; see the module documentation.
#[derive(Debug)]
pub struct Limit {
    n: u64,
    window: u64,
    mode: Mode,
    start: u64,
    accepted: AtomicU64,
    suppressed: AtomicU64,
    carry: AtomicU64,
    done: AtomicBool,
}

const LOW: u64 = 0xffff_ffff;

fn pack(index: u64, count: u64) -> u64 {
    (index << 32) | count.min(LOW)
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> 32, word & LOW)
}

/// Everything a [`Limit`] holds, as plain words: what a newer build of the
/// code that keeps one needs to make the same limit ([`Limit::parts`],
/// [`Limit::from_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitParts {
    /// Events per window (or in all).
    pub n: u64,
    /// The window's length (0: an absolute limit).
    pub window: u64,
    /// What happens once a window's `n` were accepted.
    pub mode: Mode,
    /// When the first window began.
    pub start: u64,
    /// The accepted word (window index and count, or the count).
    pub accepted: u64,
    /// The suppressed word (window index and count).
    pub suppressed: u64,
    /// Suppressed events of earlier windows not reported yet.
    pub carry: u64,
    /// Whether the trace is done.
    pub done: bool,
}

impl Limit {
    /// A copy of everything held (each word read once: a limit in use may
    /// move on meanwhile; a caller that needs an exact copy keeps others
    /// out first).
    pub fn parts(&self) -> LimitParts {
        LimitParts {
            n: self.n,
            window: self.window,
            mode: self.mode,
            start: self.start,
            accepted: self.accepted.load(Ordering::Acquire),
            suppressed: self.suppressed.load(Ordering::Acquire),
            carry: self.carry.load(Ordering::Acquire),
            done: self.done.load(Ordering::Acquire),
        }
    }

    /// The limit that [`Limit::parts`] described (`n` capped at
    /// [`Limit::MAX_N`]).
    pub fn from_parts(p: LimitParts) -> Limit {
        Limit {
            n: p.n.min(Self::MAX_N),
            window: p.window,
            mode: p.mode,
            start: p.start,
            accepted: AtomicU64::new(p.accepted),
            suppressed: AtomicU64::new(p.suppressed),
            carry: AtomicU64::new(p.carry),
            done: AtomicBool::new(p.done),
        }
    }

    /// Most events a limit accepts (per window, or in all): counts live in
    /// 32 bits.
    pub const MAX_N: u64 = LOW - 1;

    /// An absolute limit: `n` events, then done.
    pub fn absolute(n: u64) -> Limit {
        Limit::new(n, 0, Mode::Stop, 0)
    }

    /// `n` events per `window` nanoseconds (at least 1), windows counted
    /// from `start`.
    pub fn windowed(n: u64, window: u64, mode: Mode, start: u64) -> Limit {
        Limit::new(n, window.max(1), mode, start)
    }

    fn new(n: u64, window: u64, mode: Mode, start: u64) -> Limit {
        Limit {
            n: n.min(Self::MAX_N),
            window,
            mode,
            start,
            accepted: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            carry: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    /// The window index of `now` (0 for an absolute limit).
    fn index(&self, now: u64) -> u64 {
        now.saturating_sub(self.start)
            .checked_div(self.window)
            .map_or(0, |index| index.min(LOW))
    }

    /// Whether the trace is done (tripped, used up, or closed).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Marks the trace done; true for the first caller only.
    pub fn close(&self) -> bool {
        !self.done.swap(true, Ordering::AcqRel)
    }

    /// `enabled/3`'s check of an event at `now`: one load in the common case.
    pub fn check(&self, now: u64) -> Check {
        if self.is_done() {
            return Check::Discard;
        }
        if self.window == 0 {
            return if self.accepted.load(Ordering::Acquire) >= self.n {
                Check::Discard
            } else {
                Check::Pass
            };
        }
        let index = self.index(now);
        let (at, count) = unpack(self.accepted.load(Ordering::Acquire));
        if at != index || count < self.n {
            return Check::Pass;
        }
        self.over(index)
    }

    /// An event over the window's limit at window `index`.
    fn over(&self, index: u64) -> Check {
        match self.mode {
            Mode::Stop => {
                if self.close() {
                    Check::Trip
                } else {
                    Check::Discard
                }
            }
            Mode::Throttle => {
                self.suppress(index);
                Check::Discard
            }
        }
    }

    /// Counts one suppressed event of window `index`.
    fn suppress(&self, index: u64) {
        let mut word = self.suppressed.load(Ordering::Acquire);
        loop {
            let (at, count) = unpack(word);
            let next = if at >= index {
                pack(at, count + 1)
            } else {
                pack(index, 1)
            };
            match self.suppressed.compare_exchange_weak(
                word,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if at < index && count > 0 {
                        self.carry.fetch_add(count, Ordering::AcqRel);
                    }
                    return;
                }
                Err(seen) => word = seen,
            }
        }
    }

    /// Takes the suppressed counts of windows before window `index` (and the
    /// carry): what is still to report.
    fn take_before(&self, index: u64) -> u64 {
        let mut word = self.suppressed.load(Ordering::Acquire);
        let mut taken = 0;
        loop {
            let (at, count) = unpack(word);
            if at >= index || count == 0 {
                break;
            }
            match self.suppressed.compare_exchange_weak(
                word,
                pack(index, 0),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    taken = count;
                    break;
                }
                Err(seen) => word = seen,
            }
        }
        taken + self.carry.swap(0, Ordering::AcqRel)
    }

    /// `trace/5`'s claim of an event at `now`: whether it is delivered.
    pub fn claim(&self, now: u64) -> Claim {
        let refuse = Claim {
            accept: false,
            done: false,
            suppressed: 0,
        };
        if self.is_done() {
            return refuse;
        }
        if self.window == 0 {
            let before = self.accepted.fetch_add(1, Ordering::AcqRel);
            if before >= self.n {
                return refuse;
            }
            let last = before + 1 == self.n;
            if last {
                self.done.store(true, Ordering::Release);
            }
            return Claim {
                accept: true,
                done: last,
                suppressed: 0,
            };
        }
        let now_index = self.index(now);
        let mut word = self.accepted.load(Ordering::Acquire);
        loop {
            let (at, count) = unpack(word);
            // An event of a scheduler whose clock read a little earlier
            // than another's, already counted in a later window, counts in
            // that window.
            let index = now_index.max(at);
            let next = if at < index {
                pack(index, 1)
            } else if count < self.n {
                pack(index, count + 1)
            } else {
                return Claim {
                    accept: false,
                    done: self.over(index) == Check::Trip,
                    suppressed: 0,
                };
            };
            match self.accepted.compare_exchange_weak(
                word,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let suppressed = match self.mode {
                        Mode::Throttle => self.take_before(index),
                        Mode::Stop => 0,
                    };
                    return Claim {
                        accept: true,
                        done: false,
                        suppressed,
                    };
                }
                Err(seen) => word = seen,
            }
        }
    }

    /// Suppressed events of windows that ended before `now` and were not
    /// reported yet (the owner asks once per window, so an idle window's
    /// count is reported too); 0 when there are none.
    pub fn take_suppressed(&self, now: u64) -> u64 {
        self.take_before(self.index(now))
    }

    /// Suppressed events not reported yet, of every window, the current one
    /// included: for the last report, when the trace ends.
    pub fn take_all_suppressed(&self) -> u64 {
        self.take_before(LOW)
    }

    /// Events accepted: in all (absolute limit) or in the current window.
    pub fn accepted(&self) -> u64 {
        unpack(self.accepted.load(Ordering::Acquire)).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const W: u64 = 1_000;

    /// What one event goes through: `enabled` then, if it passed, `trace/5`.
    fn event(limit: &Limit, now: u64) -> (bool, Claim) {
        match limit.check(now) {
            Check::Pass => {
                let claim = limit.claim(now);
                (claim.accept, claim)
            }
            Check::Trip => (
                false,
                Claim {
                    accept: false,
                    done: true,
                    suppressed: 0,
                },
            ),
            Check::Discard => (
                false,
                Claim {
                    accept: false,
                    done: false,
                    suppressed: 0,
                },
            ),
        }
    }

    #[test]
    fn absolute_accepts_exactly_n_and_the_last_says_done() {
        let limit = Limit::absolute(3);
        let got: Vec<(bool, Claim)> = (0..10).map(|t| event(&limit, t)).collect();
        assert_eq!(got.iter().filter(|(a, _)| *a).count(), 3);
        assert!(got[2].1.done);
        assert_eq!(got.iter().filter(|(_, c)| c.done).count(), 1);
        assert!(limit.is_done());
        assert_eq!(limit.check(99), Check::Discard);
    }

    #[test]
    fn absolute_is_exact_when_enabled_passes_more_than_n() {
        // Every event passes `enabled` before any claims (a match spec
        // would then run): only n are accepted.
        let limit = Limit::absolute(2);
        assert!((0..5).all(|t| limit.check(t) == Check::Pass));
        let accepted = (0..5).filter(|t| limit.claim(*t).accept).count();
        assert_eq!(accepted, 2);
    }

    #[test]
    fn absolute_is_exact_across_threads() {
        let limit = Arc::new(Limit::absolute(1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limit = Arc::clone(&limit);
                std::thread::spawn(move || (0..10_000).filter(|t| event(&limit, *t).0).count())
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn throttle_takes_n_per_window_and_reports_each_windows_suppressed_once() {
        let limit = Limit::windowed(3, W, Mode::Throttle, 0);
        let mut reports = Vec::new();
        let mut per_window = [0u64; 4];
        // Window i gets 5 + i events.
        for (i, slot) in per_window.iter_mut().enumerate() {
            for k in 0..(5 + i as u64) {
                let (accepted, claim) = event(&limit, i as u64 * W + k);
                if claim.suppressed > 0 {
                    reports.push((i, claim.suppressed));
                }
                if accepted {
                    *slot += 1;
                }
            }
        }
        assert_eq!(per_window, [3, 3, 3, 3]);
        // Reported by the first event of the next window.
        assert_eq!(reports, vec![(1, 2), (2, 3), (3, 4)]);
        assert_eq!(limit.take_suppressed(3 * W + 10), 0, "window 3 is running");
        assert_eq!(limit.take_suppressed(4 * W), 5);
        assert_eq!(limit.take_suppressed(9 * W), 0, "reported once");
        assert!(!limit.is_done());
    }

    #[test]
    fn throttle_reports_an_idle_windows_count_when_asked() {
        let limit = Limit::windowed(1, W, Mode::Throttle, 500);
        for t in 0..4 {
            event(&limit, 500 + t);
        }
        assert_eq!(limit.take_suppressed(500 + W - 1), 0);
        assert_eq!(limit.take_suppressed(500 + W), 3);
        assert_eq!(limit.take_all_suppressed(), 0);
    }

    #[test]
    fn throttle_last_report_takes_the_running_window() {
        let limit = Limit::windowed(2, W, Mode::Throttle, 0);
        for t in 0..7 {
            event(&limit, t);
        }
        assert_eq!(limit.take_all_suppressed(), 5);
        assert_eq!(limit.take_all_suppressed(), 0);
    }

    #[test]
    fn windowed_stop_trips_on_the_first_event_beyond_n() {
        let limit = Limit::windowed(2, W, Mode::Stop, 0);
        // Two per window pass for three windows.
        for i in 0..3 {
            assert!(event(&limit, i * W).0);
            assert!(event(&limit, i * W + 1).0);
        }
        let (accepted, claim) = event(&limit, 3 * W - 1);
        assert!(!accepted);
        assert!(claim.done, "the third in a window trips");
        assert!(limit.is_done());
        assert!(!event(&limit, 5 * W).0, "nothing after a trip");
        assert_eq!(limit.check(5 * W), Check::Discard);
    }

    #[test]
    fn a_claim_over_the_window_trips_a_stop_once() {
        let limit = Limit::windowed(1, W, Mode::Stop, 0);
        assert_eq!(limit.check(0), Check::Pass);
        assert_eq!(limit.check(1), Check::Pass);
        assert!(limit.claim(0).accept);
        let second = limit.claim(1);
        assert!(!second.accept && second.done);
        assert!(!limit.claim(2).done, "tripped once");
    }

    #[test]
    fn throttle_is_exact_per_window_across_threads() {
        let limit = Arc::new(Limit::windowed(100, W, Mode::Throttle, 0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limit = Arc::clone(&limit);
                std::thread::spawn(move || {
                    let mut accepted = 0u64;
                    let mut reported = 0u64;
                    for t in 0..(3 * W) {
                        let (a, claim) = event(&limit, t);
                        accepted += u64::from(a);
                        reported += claim.suppressed;
                    }
                    (accepted, reported)
                })
            })
            .collect();
        let (accepted, reported) = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .fold((0, 0), |(a, r), (x, y)| (a + x, r + y));
        assert_eq!(accepted, 300);
        // Every event is accepted or suppressed, and every suppressed one
        // is reported exactly once.
        assert_eq!(reported + limit.take_all_suppressed(), 4 * 3 * W - 300);
    }

    #[test]
    fn parts_make_the_same_limit() {
        let limit = Limit::windowed(2, W, Mode::Throttle, 0);
        for now in [1, 2, 3, 4] {
            let _ = event(&limit, now);
        }
        let back = Limit::from_parts(limit.parts());
        assert_eq!(back.parts(), limit.parts());
        assert_eq!(back.accepted(), 2);
        assert_eq!(back.take_suppressed(W + 1), limit.take_suppressed(W + 1));
        assert!(back.close());
        assert!(Limit::from_parts(back.parts()).is_done());
    }

    #[test]
    fn close_discards_everything_after() {
        let limit = Limit::windowed(5, W, Mode::Throttle, 0);
        assert!(limit.close());
        assert!(!limit.close());
        assert_eq!(limit.check(0), Check::Discard);
        assert!(!limit.claim(0).accept);
    }
}
