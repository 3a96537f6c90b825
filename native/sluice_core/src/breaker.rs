//! Circuit breakers (Erlang in Anger, 3.2.2): callers ask before using a
//! dependency and report its failures (melts); enough failures open the
//! circuit, callers are refused at once, and after a delay a few probe
//! calls decide whether it closes again.
//!
//! # States
//! ```text
//!            melts reach the strategy's limit
//!   Closed ---------------------------------> Open (until now + delay)
//!     ^                                         |    ^
//!     |                an ask at or after until |    | a melt: delay * backoff
//!     |                                         v    |  (capped, with jitter)
//!     +------------------------------------- HalfOpen
//!       `probes` successes, or every probe out and no melt for a delay
//!
//!   Disabled: every ask refused, until enabled (then Closed)
//! ```
//!
//! # The ask path
//! An ask reads one word (the *gate*): closed lets it through, disabled or
//! open before its deadline refuses it, with counters striped per thread.
//! Only an ask that finds an open circuit past its deadline, or a half-open
//! one, takes the breaker's lock. A melt takes the lock (it is the failure
//! path). No call arms a timer or sends a message: time is the caller's
//! clock, compared when asked.
//!
//! # Strategies
//! - `Standard { max_r, max_t }`: the circuit opens on the melt that makes
//!   more than `max_r` melts within the last `max_t` ticks.
//! - `FaultInjection { rate, .. }`: as standard, and a closed circuit also
//!   refuses asks at random with probability `rate` (counted as injected).
//! - `FailureRate { ratio, min_calls, window }`: opens when, over the last
//!   `window` ticks (in ten slices), at least `min_calls` asks were made and
//!   melts / asks reached `ratio`; a closed ask then takes the lock to
//!   count itself.

use std::collections::VecDeque;

use crate::sync::{lock, AtomicU64, Mutex, Ordering};

use crate::rng::chance;

/// When the circuit opens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// More than `max_r` melts within `max_t` ticks.
    Standard {
        /// Melts tolerated within the window.
        max_r: u32,
        /// The window.
        max_t: u64,
    },
    /// As `Standard`, and a closed circuit refuses asks at random.
    FaultInjection {
        /// Probability of refusing an ask of a closed circuit.
        rate: f64,
        /// Melts tolerated within the window.
        max_r: u32,
        /// The window.
        max_t: u64,
    },
    /// Melts / asks over the window reached `ratio`, with enough asks.
    FailureRate {
        /// Failure ratio that opens the circuit.
        ratio: f64,
        /// Fewest asks in the window for the ratio to count.
        min_calls: u64,
        /// The window.
        window: u64,
    },
}

/// How an open circuit recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recovery {
    /// Delay before the first probe; `None`: stays open until reset.
    pub delay: Option<u64>,
    /// Asks let through while half-open; as many successes close it.
    pub probes: u32,
    /// Factor the delay grows by at each reopening (1.0: no growth).
    pub backoff: f64,
    /// Largest delay.
    pub max_delay: u64,
    /// Fraction of the delay added at random (0.0: none).
    pub jitter: f64,
}

/// The answer to an ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Go ahead.
    Ok,
    /// Go ahead as a probe of a half-open circuit (report the outcome).
    Probe,
    /// Refused: the circuit is open (or disabled, or a fault was injected).
    Blown,
}

/// Counters of a breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerStats {
    /// Asks.
    pub asks: u64,
    /// Asks let through (probes included).
    pub ok: u64,
    /// Asks refused (injected ones included).
    pub blown: u64,
    /// Asks refused by fault injection.
    pub injected: u64,
    /// Melts reported.
    pub melts: u64,
    /// Times the circuit opened.
    pub trips: u64,
    /// Probes let through.
    pub probes: u64,
}

/// The state a breaker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Asks go through.
    Closed,
    /// Asks are refused until the deadline.
    Open {
        /// When the next ask becomes a probe.
        until: u64,
    },
    /// Probes go through.
    HalfOpen,
    /// Asks are refused until enabled.
    Disabled,
}

const CLOSED: u64 = 0;
const DISABLED: u64 = 1;
const HALF: u64 = 2;
const OPEN: u64 = 3;

/// Counters an ask writes, per stripe of threads (asks let through are
/// the asks not blown).
#[repr(align(128))]
#[derive(Default)]
struct Counts {
    asks: AtomicU64,
    blown: AtomicU64,
    injected: AtomicU64,
}

const STRIPES: usize = 8;
const SLICES: u64 = 10;

struct Inner {
    /// Melt times within the standard window, oldest first.
    melts: VecDeque<u64>,
    /// Failure-rate slices: (slice start, asks, melts).
    slices: VecDeque<(u64, u64, u64)>,
    delay: u64,
    /// When the circuit went half-open.
    half_since: u64,
    granted: u32,
    succeeded: u32,
    melts_total: u64,
    trips: u64,
    probes: u64,
}

/// A circuit breaker; see the module documentation.
pub struct Breaker {
    strategy: Strategy,
    recovery: Recovery,
    gate: AtomicU64,
    /// Times the circuit went from letting asks through (closed, disabled)
    /// to refusing them for a fault (open, half-open) or back; written
    /// under the lock with the gate, read by anyone ([`Breaker::flips`]).
    flips: AtomicU64,
    counts: [Counts; STRIPES],
    inner: Mutex<Inner>,
}

/// Whether a gate refuses asks for a fault (open or half-open).
fn faulty(gate: u64) -> bool {
    matches!(gate & 3, HALF | OPEN)
}

fn open_until(until: u64) -> u64 {
    (until << 2) | OPEN
}

impl Breaker {
    /// A closed breaker.
    pub fn new(strategy: Strategy, recovery: Recovery) -> Self {
        Self {
            strategy,
            recovery,
            gate: AtomicU64::new(CLOSED),
            flips: AtomicU64::new(0),
            counts: std::array::from_fn(|_| Counts::default()),
            inner: Mutex::new(Inner {
                melts: VecDeque::new(),
                slices: VecDeque::new(),
                delay: recovery.delay.unwrap_or(0),
                half_since: 0,
                granted: 0,
                succeeded: 0,
                melts_total: 0,
                trips: 0,
                probes: 0,
            }),
        }
    }

    /// Asks from counter stripe `stripe`. `now` (the time) and `word` (a
    /// random word, for fault injection) are only called for when needed:
    /// a closed standard breaker reads neither.
    pub fn ask(
        &self,
        now: impl FnOnce() -> u64,
        word: impl FnOnce() -> u64,
        stripe: usize,
    ) -> Answer {
        let c = &self.counts[stripe % STRIPES];
        c.asks.fetch_add(1, Ordering::Relaxed);
        let answer = self.decide(now, word, c);
        if answer == Answer::Blown {
            c.blown.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    fn decide(&self, now: impl FnOnce() -> u64, word: impl FnOnce() -> u64, c: &Counts) -> Answer {
        let gate = self.gate.load(Ordering::Acquire);
        match gate & 3 {
            CLOSED => match self.strategy {
                Strategy::Standard { .. } => Answer::Ok,
                Strategy::FaultInjection { rate, .. } => {
                    if chance(rate, word()) {
                        c.injected.fetch_add(1, Ordering::Relaxed);
                        Answer::Blown
                    } else {
                        Answer::Ok
                    }
                }
                Strategy::FailureRate { window, .. } => {
                    let mut inner = lock(&self.inner);
                    slice(&mut inner, now(), window).1 += 1;
                    Answer::Ok
                }
            },
            DISABLED => Answer::Blown,
            _ => {
                let now = now();
                if gate & 3 == OPEN && now < gate >> 2 {
                    Answer::Blown
                } else {
                    self.probe(now)
                }
            }
        }
    }

    /// An ask that found the circuit half-open, or open past its deadline.
    fn probe(&self, now: u64) -> Answer {
        let mut inner = lock(&self.inner);
        let gate = self.gate.load(Ordering::Acquire);
        match gate & 3 {
            CLOSED => return Answer::Ok,
            DISABLED => return Answer::Blown,
            OPEN if now < gate >> 2 => return Answer::Blown,
            OPEN => {
                inner.granted = 0;
                inner.succeeded = 0;
                inner.half_since = now;
                self.set_gate(HALF);
            }
            _ => {}
        }
        if inner.granted < self.recovery.probes.max(1) {
            inner.granted += 1;
            inner.probes += 1;
            Answer::Probe
        } else if now >= inner.half_since.saturating_add(inner.delay) {
            // Every probe went out and none melted for a whole delay: the
            // probes went well though nobody said so.
            self.close(&mut inner);
            Answer::Ok
        } else {
            Answer::Blown
        }
    }

    /// Reports a failure at `now` (`word`: a random word, for jitter);
    /// returns the state after it, and whether this melt opened the
    /// circuit (from closed or half-open).
    pub fn melt(&self, now: u64, word: u64) -> (State, bool) {
        let mut inner = lock(&self.inner);
        let trips = inner.trips;
        inner.melts_total += 1;
        let gate = self.gate.load(Ordering::Acquire);
        match gate & 3 {
            CLOSED if self.closed_melt(&mut inner, now) => {
                inner.delay = self.recovery.delay.unwrap_or(0);
                self.trip(&mut inner, now, word);
            }
            HALF => {
                let grown = inner.delay as f64 * self.recovery.backoff.max(1.0);
                inner.delay = (grown as u64).min(self.recovery.max_delay.max(inner.delay));
                self.trip(&mut inner, now, word);
            }
            _ => {}
        }
        let tripped = inner.trips > trips;
        (self.state_of(self.gate.load(Ordering::Acquire)), tripped)
    }

    /// Counts a melt of a closed circuit; whether it opens now.
    fn closed_melt(&self, inner: &mut Inner, now: u64) -> bool {
        match self.strategy {
            Strategy::Standard { max_r, max_t } | Strategy::FaultInjection { max_r, max_t, .. } => {
                inner.melts.push_back(now);
                while inner
                    .melts
                    .front()
                    .is_some_and(|&t| now.saturating_sub(t) >= max_t)
                {
                    inner.melts.pop_front();
                }
                while inner.melts.len() > max_r as usize + 1 {
                    inner.melts.pop_front();
                }
                inner.melts.len() > max_r as usize
            }
            Strategy::FailureRate {
                ratio,
                min_calls,
                window,
            } => {
                slice(inner, now, window).2 += 1;
                let (asks, melts) = inner
                    .slices
                    .iter()
                    .fold((0, 0), |(a, m), s| (a + s.1, m + s.2));
                asks >= min_calls.max(1) && melts as f64 >= ratio * asks as f64
            }
        }
    }

    /// Opens the circuit for the current delay (with jitter).
    fn trip(&self, inner: &mut Inner, now: u64, word: u64) {
        inner.trips += 1;
        inner.melts.clear();
        inner.slices.clear();
        let gate = match self.recovery.delay {
            None => open_until(u64::MAX >> 2),
            Some(_) => {
                let jitter = inner.delay as f64 * self.recovery.jitter.clamp(0.0, 1.0);
                let extra = (jitter * (word >> 11) as f64 / (1u64 << 53) as f64) as u64;
                open_until(now.saturating_add(inner.delay + extra).min(u64::MAX >> 3))
            }
        };
        self.set_gate(gate);
    }

    /// Reports a probe (or any call) that went well; enough close a
    /// half-open circuit. Returns the state after it.
    pub fn succeed(&self) -> State {
        let mut inner = lock(&self.inner);
        if self.gate.load(Ordering::Acquire) & 3 == HALF {
            inner.succeeded += 1;
            if inner.succeeded >= self.recovery.probes.max(1) {
                self.close(&mut inner);
            }
        }
        self.state_of(self.gate.load(Ordering::Acquire))
    }

    /// Closes the circuit and forgets its melts.
    pub fn reset(&self) {
        let mut inner = lock(&self.inner);
        self.close(&mut inner);
    }

    fn close(&self, inner: &mut Inner) {
        inner.melts.clear();
        inner.slices.clear();
        inner.delay = self.recovery.delay.unwrap_or(0);
        self.set_gate(CLOSED);
    }

    /// Refuses every ask until [`Breaker::enable`].
    pub fn disable(&self) {
        let _inner = lock(&self.inner);
        self.set_gate(DISABLED);
    }

    /// Ends a [`Breaker::disable`]: the circuit is closed, melts forgotten.
    pub fn enable(&self) {
        if self.gate.load(Ordering::Acquire) & 3 == DISABLED {
            self.reset();
        }
    }

    /// Stores a new gate (the lock held), counting a flip when the circuit
    /// starts or stops refusing asks for a fault.
    fn set_gate(&self, gate: u64) {
        let old = self.gate.swap(gate, Ordering::AcqRel);
        if faulty(old) != faulty(gate) {
            self.flips.fetch_add(1, Ordering::Release);
        }
    }

    /// How many times the circuit flipped between refusing asks for a
    /// fault (open or half-open: blown) and not (closed or disabled). A
    /// caller that reads it before and after an operation learns whether
    /// that operation (or a racing one) flipped it.
    pub fn flips(&self) -> u64 {
        self.flips.load(Ordering::Acquire)
    }

    fn state_of(&self, gate: u64) -> State {
        match gate & 3 {
            CLOSED => State::Closed,
            DISABLED => State::Disabled,
            HALF => State::HalfOpen,
            _ => State::Open { until: gate >> 2 },
        }
    }

    /// The state now (an open circuit past its deadline still reads open
    /// until the next ask).
    pub fn state(&self) -> State {
        self.state_of(self.gate.load(Ordering::Acquire))
    }

    /// The counters.
    pub fn stats(&self) -> BreakerStats {
        let sum = |f: fn(&Counts) -> &AtomicU64| {
            let all = self.counts.iter().map(|c| f(c).load(Ordering::Relaxed));
            all.sum::<u64>()
        };
        let inner = lock(&self.inner);
        let asks = sum(|c| &c.asks);
        let blown = sum(|c| &c.blown);
        BreakerStats {
            asks,
            ok: asks.saturating_sub(blown),
            blown,
            injected: sum(|c| &c.injected),
            melts: inner.melts_total,
            trips: inner.trips,
            probes: inner.probes,
        }
    }
}

/// Everything a breaker holds, as plain values: what one build of a
/// library hands to another ([`Breaker::image`], [`Breaker::from_image`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerImage {
    /// When the circuit opens.
    pub strategy: Strategy,
    /// How it recovers.
    pub recovery: Recovery,
    /// The gate word: the state (low two bits) and an open circuit's deadline.
    pub gate: u64,
    /// Flips between refusing asks for a fault and not ([`Breaker::flips`]).
    pub flips: u64,
    /// Asks.
    pub asks: u64,
    /// Asks refused.
    pub blown: u64,
    /// Asks refused by fault injection.
    pub injected: u64,
    /// Melt times within the standard window, oldest first.
    pub melts: Vec<u64>,
    /// Failure-rate slices: (slice start, asks, melts), oldest first.
    pub slices: Vec<(u64, u64, u64)>,
    /// The current delay.
    pub delay: u64,
    /// When the circuit went half-open.
    pub half_since: u64,
    /// Probes let through since it went half-open.
    pub granted: u32,
    /// Probes that went well since it went half-open.
    pub succeeded: u32,
    /// Melts reported.
    pub melts_total: u64,
    /// Times the circuit opened.
    pub trips: u64,
    /// Probes let through.
    pub probes: u64,
}

impl Breaker {
    /// The breaker as plain values (exact when no call runs meanwhile).
    pub fn image(&self) -> BreakerImage {
        let sum = |f: fn(&Counts) -> &AtomicU64| {
            let all = self.counts.iter().map(|c| f(c).load(Ordering::Relaxed));
            all.sum::<u64>()
        };
        let inner = lock(&self.inner);
        BreakerImage {
            strategy: self.strategy,
            recovery: self.recovery,
            gate: self.gate.load(Ordering::Acquire),
            flips: self.flips(),
            asks: sum(|c| &c.asks),
            blown: sum(|c| &c.blown),
            injected: sum(|c| &c.injected),
            melts: inner.melts.iter().copied().collect(),
            slices: inner.slices.iter().copied().collect(),
            delay: inner.delay,
            half_since: inner.half_since,
            granted: inner.granted,
            succeeded: inner.succeeded,
            melts_total: inner.melts_total,
            trips: inner.trips,
            probes: inner.probes,
        }
    }

    /// A breaker in the state `image` says (its counters in one stripe),
    /// answering every later call as the one it was taken from would.
    pub fn from_image(image: &BreakerImage) -> Self {
        let b = Self::new(image.strategy, image.recovery);
        b.gate.store(image.gate, Ordering::Release);
        b.flips.store(image.flips, Ordering::Release);
        let c = &b.counts[0];
        c.asks.store(image.asks, Ordering::Relaxed);
        c.blown.store(image.blown, Ordering::Relaxed);
        c.injected.store(image.injected, Ordering::Relaxed);
        {
            let mut inner = lock(&b.inner);
            inner.melts = image.melts.iter().copied().collect();
            inner.slices = image.slices.iter().copied().collect();
            inner.delay = image.delay;
            inner.half_since = image.half_since;
            inner.granted = image.granted;
            inner.succeeded = image.succeeded;
            inner.melts_total = image.melts_total;
            inner.trips = image.trips;
            inner.probes = image.probes;
        }
        b
    }
}

/// The failure-rate slice of `now` (slices older than the window dropped).
fn slice(inner: &mut Inner, now: u64, window: u64) -> &mut (u64, u64, u64) {
    let width = (window / SLICES).max(1);
    let start = now - now % width;
    while inner
        .slices
        .front()
        .is_some_and(|s| now.saturating_sub(s.0) >= window.max(1))
    {
        inner.slices.pop_front();
    }
    if inner.slices.back().is_none_or(|s| s.0 != start) {
        inner.slices.push_back((start, 0, 0));
    }
    let last = inner.slices.len() - 1;
    &mut inner.slices[last]
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn recovery(delay: u64, probes: u32) -> Recovery {
        Recovery {
            delay: Some(delay),
            probes,
            backoff: 2.0,
            max_delay: 500,
            jitter: 0.0,
        }
    }

    fn standard(max_r: u32, max_t: u64) -> Breaker {
        Breaker::new(Strategy::Standard { max_r, max_t }, recovery(100, 2))
    }

    #[test]
    fn an_image_answers_as_the_breaker_it_was_taken_from() {
        let run = |b: &Breaker, from: u64| {
            let mut seen = Vec::new();
            for t in from..from + 40 {
                seen.push(format!("{:?}", b.ask(|| t * 10, || t, (t % 3) as usize)));
                if t % 4 == 0 {
                    seen.push(format!("{:?}", b.melt(t * 10, t)));
                } else if t % 7 == 0 {
                    seen.push(format!("{:?}", b.succeed()));
                }
            }
            seen.push(format!("{:?} {:?} {}", b.state(), b.stats(), b.flips()));
            seen
        };
        let strategies = [
            Strategy::Standard {
                max_r: 2,
                max_t: 100,
            },
            Strategy::FailureRate {
                ratio: 0.3,
                min_calls: 5,
                window: 200,
            },
        ];
        for strategy in strategies {
            let (a, b) = (
                Breaker::new(strategy, recovery(50, 2)),
                Breaker::new(strategy, recovery(50, 2)),
            );
            assert_eq!(run(&a, 0), run(&b, 0));
            let image = a.image();
            let c = Breaker::from_image(&image);
            assert_eq!(c.image(), image);
            assert_eq!(run(&c, 40), run(&b, 40));
        }
    }

    #[test]
    fn opens_on_the_melt_after_max_r_within_max_t() {
        let b = standard(2, 50);
        assert_eq!(b.melt(0, 0).0, State::Closed);
        assert_eq!(b.melt(20, 0).0, State::Closed);
        // the first melt is out of the window by now (60 ticks old)
        assert_eq!(b.melt(60, 0).0, State::Closed);
        assert_eq!(b.ask(|| 60, || 0, 0), Answer::Ok);
        assert_eq!(b.melt(61, 0).0, State::Open { until: 161 });
        assert_eq!(b.ask(|| 100, || 0, 0), Answer::Blown);
        let s = b.stats();
        assert_eq!((s.asks, s.ok, s.blown, s.melts, s.trips), (2, 1, 1, 4, 1));
    }

    #[test]
    fn half_open_probes_close_or_reopen_with_backoff() {
        let b = standard(0, 1000);
        assert_eq!(b.melt(0, 0).0, State::Open { until: 100 });
        assert_eq!(b.ask(|| 100, || 0, 0), Answer::Probe);
        assert_eq!(b.ask(|| 101, || 0, 0), Answer::Probe);
        assert_eq!(b.ask(|| 102, || 0, 0), Answer::Blown, "two probes at most");
        // a failed probe reopens for twice the delay
        assert_eq!(b.melt(103, 0).0, State::Open { until: 303 });
        assert_eq!(b.ask(|| 303, || 0, 1), Answer::Probe);
        assert_eq!(b.succeed(), State::HalfOpen);
        assert_eq!(b.ask(|| 304, || 0, 1), Answer::Probe);
        assert_eq!(b.succeed(), State::Closed);
        assert_eq!(b.ask(|| 305, || 0, 0), Answer::Ok);
        // the delay is back to its start
        assert_eq!(b.melt(400, 0).0, State::Open { until: 500 });
        assert_eq!(b.stats().probes, 4);
        // probes nobody reports on: quiet for a delay closes it
        assert_eq!(b.ask(|| 500, || 0, 0), Answer::Probe);
        assert_eq!(b.ask(|| 501, || 0, 0), Answer::Probe);
        assert_eq!(b.ask(|| 550, || 0, 0), Answer::Blown);
        assert_eq!(b.ask(|| 600, || 0, 0), Answer::Ok);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn backoff_is_capped_and_jitter_bounded() {
        let b = Breaker::new(
            Strategy::Standard {
                max_r: 0,
                max_t: 10,
            },
            Recovery {
                delay: Some(100),
                probes: 1,
                backoff: 10.0,
                max_delay: 300,
                jitter: 0.5,
            },
        );
        let State::Open { until } = b.melt(0, u64::MAX).0 else {
            panic!("open")
        };
        assert!((100..=150).contains(&until), "{until}");
        assert_eq!(b.ask(|| until, || 0, 0), Answer::Probe);
        let State::Open { until: next } = b.melt(until, 0).0 else {
            panic!("reopened")
        };
        assert_eq!(next, until + 300, "capped at max_delay");
    }

    #[test]
    fn fault_injection_refuses_at_random_and_counts_it() {
        let b = Breaker::new(
            Strategy::FaultInjection {
                rate: 0.5,
                max_r: 10,
                max_t: 10,
            },
            recovery(100, 1),
        );
        use crate::rng::RandomSource;
        let mut rng = crate::rng::WyRand::new(3);
        let n = 20_000;
        let blown = (0..n)
            .filter(|_| b.ask(|| 0, || rng.next_u64(), 0) == Answer::Blown)
            .count();
        let frac = blown as f64 / n as f64;
        assert!((frac - 0.5).abs() < 0.02, "{frac}");
        let s = b.stats();
        assert_eq!(s.injected, blown as u64);
        assert_eq!(s.asks, s.ok + s.blown);
    }

    #[test]
    fn failure_rate_needs_enough_calls() {
        let b = Breaker::new(
            Strategy::FailureRate {
                ratio: 0.5,
                min_calls: 4,
                window: 100,
            },
            recovery(50, 1),
        );
        for t in 0..3 {
            assert_eq!(b.ask(|| t, || 0, 0), Answer::Ok);
        }
        assert_eq!(b.melt(3, 0).0, State::Closed, "3 calls are too few");
        assert_eq!(b.ask(|| 4, || 0, 0), Answer::Ok);
        assert_eq!(b.melt(5, 0).0, State::Open { until: 55 }, "2 of 4 failed");
        // an old window is forgotten
        b.reset();
        for t in 200..210 {
            assert_eq!(b.ask(|| t, || 0, 0), Answer::Ok);
        }
        assert_eq!(b.melt(400, 0).0, State::Closed);
    }

    #[test]
    fn disable_enable_reset_and_manual_recovery() {
        let b = Breaker::new(
            Strategy::Standard {
                max_r: 0,
                max_t: 10,
            },
            Recovery {
                delay: None,
                probes: 1,
                backoff: 1.0,
                max_delay: 0,
                jitter: 0.0,
            },
        );
        b.disable();
        assert_eq!(b.ask(|| 0, || 0, 0), Answer::Blown);
        b.enable();
        assert_eq!(b.ask(|| 0, || 0, 0), Answer::Ok);
        assert!(matches!(b.melt(1, 0).0, State::Open { .. }));
        assert_eq!(
            b.ask(|| u64::MAX >> 4, || 0, 0),
            Answer::Blown,
            "no delay: open until reset"
        );
        b.reset();
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn flips_count_blowing_and_healing_only() {
        let b = standard(0, 1000);
        assert_eq!(b.flips(), 0);
        assert_eq!(b.ask(|| 0, || 0, 0), Answer::Ok);
        assert_eq!(b.succeed(), State::Closed);
        assert_eq!(b.flips(), 0, "nothing changed");
        assert!(matches!(b.melt(0, 0).0, State::Open { .. }));
        assert_eq!(b.flips(), 1, "blown");
        assert_eq!(b.ask(|| 100, || 0, 0), Answer::Probe);
        assert_eq!(b.flips(), 1, "open to half-open is still blown");
        assert!(matches!(b.melt(101, 0).0, State::Open { .. }));
        assert_eq!(b.flips(), 1, "a failed probe: still blown");
        b.disable();
        assert_eq!(b.flips(), 2, "disabled is not a fault");
        b.enable();
        assert_eq!(b.flips(), 2);
        assert!(matches!(b.melt(500, 0).0, State::Open { .. }));
        b.reset();
        assert_eq!(b.flips(), 4, "blown, then healed");
        // healed by quiet probes, inside an ask
        assert!(matches!(b.melt(600, 0).0, State::Open { until: 700 }));
        assert_eq!(b.ask(|| 700, || 0, 0), Answer::Probe);
        assert_eq!(b.ask(|| 701, || 0, 0), Answer::Probe);
        assert_eq!(b.ask(|| 800, || 0, 0), Answer::Ok);
        assert_eq!(b.flips(), 6);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn racing_asks_past_the_deadline_get_one_probe() {
        loom::model(|| {
            let b = Arc::new(Breaker::new(
                Strategy::Standard {
                    max_r: 0,
                    max_t: 10,
                },
                Recovery {
                    delay: Some(5),
                    probes: 1,
                    backoff: 1.0,
                    max_delay: 5,
                    jitter: 0.0,
                },
            ));
            assert!(matches!(b.melt(0, 0).0, State::Open { until: 5 }));
            let t = {
                let b = b.clone();
                loom::thread::spawn(move || b.ask(|| 5, || 0, 1))
            };
            let mine = b.ask(|| 5, || 0, 0);
            let theirs = t.join().expect("asker");
            let probes = [mine, theirs]
                .iter()
                .filter(|&&a| a == Answer::Probe)
                .count();
            assert_eq!(probes, 1);
            let s = b.stats();
            assert_eq!((s.asks, s.probes), (2, 1));
        });
    }
}
