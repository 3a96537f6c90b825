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

/// Everything a [`TopN`] holds, in plain fields: what a newer build of
/// the code that keeps one needs to make the same top-N
/// ([`TopN::parts`], [`TopN::from_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopNParts<K> {
    /// How many it keeps.
    pub n: usize,
    /// The sequence number of the next offer (ties keep the lower).
    pub seq: u64,
    /// Every pair kept, with its sequence number, in no order.
    pub entries: Vec<(K, i64, u64)>,
}

impl<K: Ord + Clone> TopN<K> {
    /// A copy of everything held.
    pub fn parts(&self) -> TopNParts<K> {
        TopNParts {
            n: self.n,
            seq: self.seq,
            entries: self
                .heap
                .iter()
                .map(|r| (r.0 .2.clone(), r.0 .0, r.0 .1 .0))
                .collect(),
        }
    }
}

impl<K: Ord> TopN<K> {
    /// The top-N that [`TopN::parts`] described; at most `n` entries are
    /// kept (the largest), and the next sequence number is past every
    /// entry's.
    pub fn from_parts(parts: TopNParts<K>) -> Self {
        let mut top = TopN::new(parts.n);
        top.seq = parts.seq;
        for (key, value, seq) in parts.entries {
            top.seq = top.seq.max(seq.saturating_add(1));
            top.heap.push(Reverse((value, Reverse(seq), key)));
            if top.heap.len() > top.n {
                top.heap.pop();
            }
        }
        top
    }

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
    fn parts_make_the_same_top_n() {
        let mut t = TopN::new(3);
        for (k, v) in [(1u64, 5), (2, 9), (3, 1), (4, 9)] {
            t.push(k, v);
        }
        let mut back = TopN::from_parts(t.parts());
        t.push(5, 9);
        back.push(5, 9);
        assert_eq!(back.into_sorted(), vec![(2, 9), (4, 9), (5, 9)]);
        assert_eq!(t.into_sorted(), vec![(2, 9), (4, 9), (5, 9)]);
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut t: TopN<u64> = TopN::new(0);
        t.push(1, 1);
        assert!(t.is_empty());
    }
}
