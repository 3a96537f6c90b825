//! Drop policies a box applies besides its bound: an age limit, a sojourn
//! time controller in the CoDel style, and random early drop. Times are in
//! the caller's ticks (the NIF uses nanoseconds).
//!
//! # Age limit
//! A message older than `max_age` when its turn to be delivered comes is
//! dropped instead (counted as expired).
//!
//! # Sojourn controller (CoDel)
//! Watches the time each delivered message spent in the box. While it stays
//! at most `target`, nothing happens. Once it has stayed above `target` for
//! a whole `interval`, the controller drops the message at the head and
//! enters a dropping state, in which it drops again at intervals shrinking
//! as `interval / sqrt(count)`, until a message comes out within `target`.
//! A controller that starts dropping soon after it stopped resumes near its
//! previous rate. Trade-offs: it reacts to standing queues, not to bursts
//! (a burst that drains within `interval` loses nothing), it needs a
//! consumer that keeps taking (drops happen at delivery), and it suits FIFO
//! delivery: a stack delivers its newest messages first, whose sojourn is
//! short, so it rarely triggers there.
//!
//! # Random early drop
//! Between `min` and `max` messages held, a post is refused with a
//! probability rising linearly from 0 to `prob`; from `max` on, with `prob`.
//! A producer then learns of the pressure before the box is full.

use serde::{Deserialize, Serialize};

/// The policies of one box.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Policy {
    /// Drop messages older than this at delivery.
    pub max_age: Option<u64>,
    /// The sojourn time controller.
    pub codel: Option<CodelConfig>,
    /// Random early drop.
    pub red: Option<Red>,
    /// Ignore the callers' time: use the time set on the box (tests).
    pub manual_clock: bool,
}

/// Random early drop between two occupancies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Red {
    /// Below this many messages held, nothing is dropped early.
    pub min: u64,
    /// From this many on, posts are dropped with probability `prob`.
    pub max: u64,
    /// The highest probability.
    pub prob: f64,
}

impl Red {
    /// The probability that a post finding `len` messages held is dropped.
    pub fn chance(&self, len: u64) -> f64 {
        if len < self.min {
            0.0
        } else if len >= self.max || self.max <= self.min {
            self.prob
        } else {
            self.prob * (len - self.min) as f64 / (self.max - self.min) as f64
        }
    }
}

/// Settings of the sojourn controller.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CodelConfig {
    /// Acceptable sojourn time.
    pub target: u64,
    /// How long the sojourn must stay above `target` before dropping.
    pub interval: u64,
}

/// The state of a sojourn controller.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Codel {
    /// When the sojourn, above target since, will have been so for an
    /// interval (0: it is below target).
    first_above: u64,
    /// When the next drop is due in the dropping state.
    drop_next: u64,
    /// Drops in the current (or last) dropping state.
    count: u32,
    dropping: bool,
}

impl Codel {
    /// Whether the message at the head, which spent `sojourn` in the box,
    /// is to be dropped at `now`; `empty_after`: it is the last one held.
    pub fn should_drop(
        &mut self,
        cfg: &CodelConfig,
        sojourn: u64,
        now: u64,
        empty_after: bool,
    ) -> bool {
        let mut ok_to_drop = false;
        if sojourn <= cfg.target || empty_after {
            self.first_above = 0;
        } else if self.first_above == 0 {
            self.first_above = now.saturating_add(cfg.interval).max(1);
        } else if now >= self.first_above {
            ok_to_drop = true;
        }
        if self.dropping {
            if !ok_to_drop {
                self.dropping = false;
                return false;
            }
            if now >= self.drop_next {
                self.count = self.count.saturating_add(1);
                self.drop_next = control_law(self.drop_next, cfg.interval, self.count);
                return true;
            }
            return false;
        }
        if !ok_to_drop {
            return false;
        }
        self.dropping = true;
        let recent = now.saturating_sub(self.drop_next) < cfg.interval.saturating_mul(16);
        self.count = if self.count > 2 && recent {
            self.count - 2
        } else {
            1
        };
        self.drop_next = control_law(now, cfg.interval, self.count);
        true
    }
}

/// The time of the next drop: `t + interval / sqrt(count)`.
fn control_law(t: u64, interval: u64, count: u32) -> u64 {
    let step = interval as f64 / f64::from(count.max(1)).sqrt();
    t.saturating_add(step as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_rises_linearly_then_holds() {
        let red = Red {
            min: 10,
            max: 20,
            prob: 0.5,
        };
        assert_eq!(red.chance(9), 0.0);
        assert_eq!(red.chance(10), 0.0);
        assert!((red.chance(15) - 0.25).abs() < 1e-12);
        assert_eq!(red.chance(20), 0.5);
        assert_eq!(red.chance(1000), 0.5);
    }

    #[test]
    fn codel_waits_an_interval_then_drops_faster() {
        let cfg = CodelConfig {
            target: 5,
            interval: 100,
        };
        let mut c = Codel::default();
        // below target: never
        assert!(!c.should_drop(&cfg, 4, 0, false));
        // above target from t=10: nothing until t=110
        assert!(!c.should_drop(&cfg, 50, 10, false));
        assert!(!c.should_drop(&cfg, 50, 109, false));
        assert!(
            c.should_drop(&cfg, 50, 110, false),
            "first drop after an interval"
        );
        // next drop due at 110 + 100/sqrt(1) = 210, then 210 + 100/sqrt(2)
        assert!(!c.should_drop(&cfg, 50, 209, false));
        assert!(c.should_drop(&cfg, 50, 210, false));
        assert!(!c.should_drop(&cfg, 50, 279, false));
        assert!(c.should_drop(&cfg, 50, 280, false));
        // a message below target ends the dropping state
        assert!(!c.should_drop(&cfg, 1, 300, false));
        assert!(!c.should_drop(&cfg, 50, 301, false));
        // the last message held is never dropped
        assert!(!c.should_drop(&cfg, 500, 1000, true));
    }
}
