//! The difference between two samples of per-key counters (reductions,
//! memory, bytes through a port, ...) taken some time apart, keyed by
//! process (or port).
//!
//! The first sample goes into a map, in chunks. The second is streamed
//! against it, in chunks too: a key found in the map leaves it and offers
//! its growth to a top-`n`; a key not found was born during the window.
//! What stays in the map at the end died during the window. Only keys
//! present in both samples are ranked, by how much their value grew, never
//! by an absolute value. Memory: the first sample's map, the top `n`, and at
//! most `cap` born keys; the second sample is never stored.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::topn::{TopN, TopNParts};

/// A hasher for keys the VM chose (pids, or their hashes; port numbers):
/// one multiply and a rotation per word. Keys are never chosen by a
/// caller, so no flooding defence is needed.
#[derive(Debug, Default, Clone, Copy)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

type WordMap<K> = HashMap<K, i64, BuildHasherDefault<WordHasher>>;

/// Where a window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Taking the first sample.
    First,
    /// Streaming the second sample.
    Second,
}

/// A window being measured.
#[derive(Debug)]
pub struct Window<K: Hash + Ord> {
    before: WordMap<K>,
    phase: Phase,
    top: TopN<K>,
    born: Vec<(K, i64)>,
    born_count: u64,
    cap: usize,
}

/// What a window found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff<K> {
    /// Keys in both samples, by growth, largest first (at most `n`).
    pub top: Vec<(K, i64)>,
    /// Keys only in the second sample (born), with their value there, in
    /// the order seen (at most `cap`).
    pub born: Vec<(K, i64)>,
    /// Keys only in the first sample (died), with their value there,
    /// largest first (at most `cap`).
    pub died: Vec<(K, i64)>,
    /// How many keys were born, listed or not.
    pub born_count: u64,
    /// How many keys died, listed or not.
    pub died_count: u64,
}

/// Everything a [`Window`] holds, in plain fields: what a newer build of
/// the code that keeps one needs to make the same window
/// ([`Window::parts`], [`Window::from_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowParts<K> {
    /// The first sample's pairs not met again yet, in no order.
    pub before: Vec<(K, i64)>,
    /// Whether the second sample began.
    pub second: bool,
    /// The survivors ranked so far.
    pub top: TopNParts<K>,
    /// Keys of the second sample only, at most `cap`.
    pub born: Vec<(K, i64)>,
    /// How many keys were born (kept or not).
    pub born_count: u64,
    /// Most born and died listed.
    pub cap: usize,
}

impl<K: Hash + Ord + Clone> Window<K> {
    /// A copy of everything held.
    pub fn parts(&self) -> WindowParts<K> {
        WindowParts {
            before: self.before.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            second: self.phase == Phase::Second,
            top: self.top.parts(),
            born: self.born.clone(),
            born_count: self.born_count,
            cap: self.cap,
        }
    }
}

impl<K: Hash + Ord> Window<K> {
    /// The window that [`Window::parts`] described (its map made with room
    /// for what it holds, and at least one entry).
    pub fn from_parts(parts: WindowParts<K>) -> Self {
        let mut before = WordMap::default();
        before.reserve(parts.before.len().max(1));
        before.extend(parts.before);
        let mut born = parts.born;
        born.truncate(parts.cap);
        Self {
            before,
            phase: if parts.second {
                Phase::Second
            } else {
                Phase::First
            },
            top: TopN::from_parts(parts.top),
            born,
            born_count: parts.born_count,
            cap: parts.cap,
        }
    }

    /// An empty window ranking `n` keys and listing at most `cap` born and
    /// `cap` died keys, with room for `expected` keys in the first sample
    /// (so the first sample's chunks do not rehash the map). The map has a
    /// table of its own from the start (room for one key at least): an
    /// empty `HashMap` points at a static of the code that made it, and a
    /// window may outlive that code (a NIF library's window, taken over by
    /// a newer library after the old one is unloaded).
    pub fn new(n: usize, cap: usize, expected: usize) -> Self {
        let mut before = WordMap::default();
        before.reserve(expected.max(1));
        Self {
            before,
            phase: Phase::First,
            top: TopN::new(n),
            born: Vec::new(),
            born_count: 0,
            cap,
        }
    }

    /// The phase the next chunk belongs to.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Adds a chunk of the first sample (a key seen twice keeps its last
    /// value). Returns false, adding nothing, once the second sample began.
    pub fn first(&mut self, chunk: impl IntoIterator<Item = (K, i64)>) -> bool {
        if self.phase != Phase::First {
            return false;
        }
        self.before.extend(chunk);
        true
    }

    /// Streams a chunk of the second sample.
    pub fn second(&mut self, chunk: impl IntoIterator<Item = (K, i64)>) {
        self.phase = Phase::Second;
        for (key, value) in chunk {
            match self.before.remove(&key) {
                Some(old) => self.top.push(key, value.saturating_sub(old)),
                None => {
                    self.born_count += 1;
                    if self.born.len() < self.cap {
                        self.born.push((key, value));
                    }
                }
            }
        }
    }

    /// Keys of the first sample not yet seen in the second.
    pub fn pending(&self) -> usize {
        self.before.len()
    }

    /// Ends the window: the keys not seen in the second sample died.
    pub fn finish(self) -> Diff<K> {
        let died_count = self.before.len() as u64;
        let mut died = TopN::new(self.cap);
        for (key, value) in self.before {
            died.push(key, value);
        }
        Diff {
            top: self.top.into_sorted(),
            born: self.born,
            died: died.into_sorted(),
            born_count: self.born_count,
            died_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_allocated_from_the_start() {
        let w: Window<u64> = Window::new(2, 10, 0);
        assert!(w.before.capacity() >= 1);
    }

    #[test]
    fn parts_make_the_same_window_in_either_phase() {
        let mut w: Window<u64> = Window::new(2, 10, 4);
        assert!(w.first([(1, 100), (2, 5), (3, 50)]));
        let mut back = Window::from_parts(w.parts());
        assert_eq!(back.phase(), Phase::First);
        for x in [&mut w, &mut back] {
            x.second([(1, 110), (9, 7)]);
        }
        let mut back2 = Window::from_parts(back.parts());
        assert_eq!(back2.phase(), Phase::Second);
        assert!(!back2.first([(5, 1)]));
        w.second([(2, 500)]);
        back2.second([(2, 500)]);
        assert_eq!(back2.finish(), w.finish());
    }

    #[test]
    fn ranks_growth_of_the_survivors_only() {
        let mut w: Window<u64> = Window::new(2, 10, 4);
        assert!(w.first([(1, 100), (2, 5), (3, 50)]));
        assert!(w.first([(4, 0)]));
        // 3 died; 9 was born with a huge absolute value: never ranked
        w.second([(1, 110), (9, 1_000_000)]);
        assert!(
            !w.first([(5, 1)]),
            "no first-sample chunk after the second began"
        );
        w.second([(2, 500), (4, 1)]);
        assert_eq!(w.pending(), 1);
        let d = w.finish();
        assert_eq!(d.top, vec![(2, 495), (1, 10)]);
        assert_eq!(d.born, vec![(9, 1_000_000)]);
        assert_eq!(d.died, vec![(3, 50)]);
        assert_eq!((d.born_count, d.died_count), (1, 1));
    }

    #[test]
    fn born_and_died_are_capped_but_counted() {
        let mut w: Window<u64> = Window::new(5, 7, 0);
        w.first((0..100).map(|k| (k, k as i64)));
        w.second((1000..1100).map(|k| (k, 1)));
        let d = w.finish();
        assert!(d.top.is_empty());
        assert_eq!((d.born.len(), d.died.len()), (7, 7));
        assert_eq!((d.born_count, d.died_count), (100, 100));
        // the largest of the died first
        assert_eq!(d.died[0], (99, 99));
        assert_eq!(d.born[0], (1000, 1));
    }

    #[test]
    fn shrinking_values_rank_last() {
        let mut w: Window<u64> = Window::new(3, 0, 0);
        w.first([(1, 10), (2, 10), (3, 10)]);
        w.second([(1, 5), (2, 30), (3, 10)]);
        let d = w.finish();
        assert_eq!(d.top, vec![(2, 20), (3, 0), (1, -5)]);
    }

    #[test]
    fn many_keys_match_a_plain_diff() {
        let n = 50_000u64;
        let mut w: Window<u64> = Window::new(10, 100, n as usize);
        let key = |i: u64| (i << 4) | 3;
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            w.first(chunk.iter().map(|&i| (key(i), (i * 7919 % 1000) as i64)));
        }
        // every third key dies; growth is i % 977
        let survivors: Vec<u64> = (0..n).filter(|i| i % 3 != 0).collect();
        for chunk in survivors.chunks(1000) {
            w.second(
                chunk
                    .iter()
                    .map(|&i| (key(i), (i * 7919 % 1000 + i % 977) as i64)),
            );
        }
        let d = w.finish();
        let mut plain: Vec<(u64, i64)> = survivors
            .iter()
            .map(|&i| (key(i), (i % 977) as i64))
            .collect();
        plain.sort_by_key(|&(k, v)| (std::cmp::Reverse(v), k));
        let want: Vec<i64> = plain.iter().take(10).map(|p| p.1).collect();
        assert_eq!(d.top.iter().map(|p| p.1).collect::<Vec<_>>(), want);
        assert_eq!(d.died_count, n.div_ceil(3));
        assert_eq!(d.born_count, 0);
    }
}
