//! Per-thread lanes: a small number for the calling thread, so that
//! threads (schedulers, mostly) that write the same object write different
//! parts of it. A box posts into the lane of its thread; a lock starts its
//! search for a free slot at its thread's stripe.
//!
//! Threads are numbered as they first ask, from 0, by this library
//! instance; a caller maps the number onto what it has (`lane % lanes`).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The lane of the calling thread: threads are numbered as they first ask
/// (0, 1, 2, ...), and a thread keeps its number for its life.
pub fn current() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static LANE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    LANE.with(|lane| {
        if lane.get() == usize::MAX {
            lane.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        lane.get()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_lane_and_threads_get_distinct_ones() {
        let mine = current();
        assert_eq!(current(), mine);
        let others: Vec<usize> = (0..4)
            .map(|_| std::thread::spawn(|| (current(), current())))
            .map(|t| t.join().unwrap())
            .map(|(first, again)| {
                assert_eq!(first, again);
                first
            })
            .collect();
        let mut all = others.clone();
        all.push(mine);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 5, "{others:?} and {mine}");
        // Numbered as they first ask: each later thread got a higher number.
        assert!(others.windows(2).all(|w| w[0] < w[1]), "{others:?}");
    }
}
