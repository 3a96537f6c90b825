//! Fast, lock-free pseudo-random numbers for drop decisions.
//!
//! Every OS thread (in the BEAM: every scheduler thread) owns one [`WyRand`]
//! generator, seeded once from a global counter mixed with the clock and the
//! thread's stack address, so no two threads share a state and no call takes a
//! lock. The generator is not cryptographic: it only decides which messages to
//! keep, where speed and a flat distribution matter.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of uniformly distributed 64-bit words.
///
/// The drop logic takes randomness through this trait so tests can drive it
/// with a fixed sequence.
pub trait RandomSource {
    /// Returns the next uniformly distributed 64-bit word.
    fn next_u64(&mut self) -> u64;
}

/// The wyrand generator: one multiply-xorshift step per output, period 2^64.
#[derive(Debug, Clone)]
pub struct WyRand {
    state: u64,
}

impl WyRand {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RandomSource for WyRand {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }
}

/// The splitmix64 finaliser, used to turn weak seeds into well-mixed ones.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

fn fresh_seed() -> u64 {
    let n = SEED_COUNTER.fetch_add(1, Ordering::Relaxed);
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    mix64(n ^ mix64(clock) ^ mix64(addr))
}

/// Per-thread state: the generator and the thread's slot number. Constant
/// initialisation keeps every access a plain TLS load (no lazy-init check
/// beyond the seed test below).
struct Local {
    state: Cell<u64>,
    slot: Cell<usize>,
    seeded: Cell<bool>,
}

static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static LOCAL: Local = const {
        Local { state: Cell::new(0), slot: Cell::new(0), seeded: Cell::new(false) }
    };
}

/// The next word of the calling thread's generator and the thread's slot
/// number (0, 1, 2, ... in order of each thread's first call), from one TLS access.
#[inline]
pub fn thread_draw() -> (u64, usize) {
    LOCAL.with(|l| {
        if !l.seeded.get() {
            l.state.set(fresh_seed());
            l.slot
                .set(NEXT_SLOT.fetch_add(1, Ordering::Relaxed) as usize);
            l.seeded.set(true);
        }
        let mut rng = WyRand::new(l.state.get());
        let out = rng.next_u64();
        l.state.set(rng.state);
        (out, l.slot.get())
    })
}

/// A uniformly distributed word from the calling thread's own generator.
#[inline]
pub fn thread_u64() -> u64 {
    thread_draw().0
}

/// Number of random bits compared against a keep threshold.
pub const PROBABILITY_BITS: u32 = 53;

/// `true` with probability `rate` (clamped to [0, 1]), using one word of `word`.
///
/// The top 53 bits of the word form a uniform number `u` in [0, 2^53), kept
/// when `u < rate * 2^53`: a rate of 1.0 always keeps and 0.0 never does.
#[inline]
pub fn chance(rate: f64, word: u64) -> bool {
    let u = (word >> (64 - PROBABILITY_BITS)) as f64;
    u < rate * (1u64 << PROBABILITY_BITS) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_are_exact() {
        let mut rng = WyRand::new(7);
        for _ in 0..10_000 {
            let w = rng.next_u64();
            assert!(chance(1.0, w));
            assert!(!chance(0.0, w));
        }
        assert!(chance(1.0, u64::MAX));
        assert!(!chance(0.0, 0));
    }

    #[test]
    fn fraction_matches_rate() {
        let mut rng = WyRand::new(42);
        for &rate in &[0.05, 0.5, 0.95] {
            let n = 200_000u32;
            let kept = (0..n).filter(|_| chance(rate, rng.next_u64())).count() as f64;
            let sd = (f64::from(n) * rate * (1.0 - rate)).sqrt();
            assert!(
                (kept - f64::from(n) * rate).abs() < 4.0 * sd,
                "rate {rate}: {kept}"
            );
        }
    }

    #[test]
    fn threads_get_different_streams() {
        let a: Vec<u64> = (0..4).map(|_| thread_u64()).collect();
        let b = std::thread::spawn(|| (0..4).map(|_| thread_u64()).collect::<Vec<u64>>())
            .join()
            .expect("thread");
        assert_ne!(a, b);
    }
}
