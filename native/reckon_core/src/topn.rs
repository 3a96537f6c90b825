//! The `n` largest values of a stream, kept in a bounded min-heap: each
//! value costs O(log n), memory is O(n) whatever the stream's length.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The `n` largest `(value, key)` pairs seen so far; ties keep the first
/// key seen.
#[derive(Debug, Clone)]
pub struct TopN<K: Ord> {
    n: usize,
    seq: u64,
    heap: BinaryHeap<Reverse<(i64, Reverse<u64>, K)>>,
}

impl<K: Ord> TopN<K> {
    /// An empty top-`n`.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            seq: 0,
            heap: BinaryHeap::with_capacity(n.min(1 << 16) + 1),
        }
    }

    /// Offers `key` with `value`.
    pub fn push(&mut self, key: K, value: i64) {
        if self.n == 0 {
            return;
        }
        let seq = self.seq;
        self.seq += 1;
        if self.heap.len() < self.n {
            self.heap.push(Reverse((value, Reverse(seq), key)));
            return;
        }
        let smallest = self.heap.peek().map(|r| (r.0 .0, r.0 .1));
        if let Some((v, s)) = smallest {
            if (value, Reverse(seq)) > (v, s) {
                self.heap.pop();
                self.heap.push(Reverse((value, Reverse(seq), key)));
            }
        }
    }

    /// Pairs held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The pairs, largest value first (ties: first seen first).
    pub fn into_sorted(self) -> Vec<(K, i64)> {
        let mut all: Vec<_> = self.heap.into_iter().map(|r| r.0).collect();
        all.sort_by_key(|a| Reverse((a.0, a.1)));
        all.into_iter().map(|(v, _, k)| (k, v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_largest_in_order() {
        let mut t = TopN::new(3);
        for (k, v) in [(1u64, 5), (2, 9), (3, 1), (4, 9), (5, 7), (6, -2)] {
            t.push(k, v);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.into_sorted(), vec![(2, 9), (4, 9), (5, 7)]);
    }

    #[test]
    fn matches_a_full_sort_on_a_long_stream() {
        let mut t = TopN::new(10);
        let mut all = Vec::new();
        let mut x: u64 = 12345;
        for k in 0..10_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (x >> 40) as i64 % 1000;
            t.push(k, v);
            all.push((k, v));
        }
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(10);
        assert_eq!(t.into_sorted(), all);
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut t: TopN<u64> = TopN::new(0);
        t.push(1, 1);
        assert!(t.is_empty());
    }
}
