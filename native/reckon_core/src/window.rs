//! The difference between two samples of per-key counters (reductions,
//! memory, ...) taken some time apart, keyed by process (or port).
//!
//! The first sample goes into a map; the second is streamed against it.
//! Only keys present in both are ranked, by how much their value grew
//! (never by an absolute value); keys only in the second sample were born
//! during the window, keys only in the first died. Memory: the first
//! sample's map, plus the top `n`.

use std::collections::HashMap;

use crate::topn::TopN;

/// A window being measured.
#[derive(Debug, Default)]
pub struct Window {
    before: HashMap<u64, i64>,
}

/// What a window found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Keys in both samples, by growth, largest first.
    pub top: Vec<(u64, i64)>,
    /// Keys only in the second sample (born), in the order seen.
    pub born: Vec<u64>,
    /// Keys only in the first sample (died), sorted.
    pub died: Vec<u64>,
}

impl Window {
    /// An empty first sample.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk of the first sample.
    pub fn first(&mut self, chunk: impl IntoIterator<Item = (u64, i64)>) {
        self.before.extend(chunk);
    }

    /// Keys in the first sample.
    pub fn len(&self) -> usize {
        self.before.len()
    }

    /// Whether the first sample is empty.
    pub fn is_empty(&self) -> bool {
        self.before.is_empty()
    }

    /// Streams the second sample (in any number of chunks, given as one
    /// iterator) and returns the top `n` growths, the born and the died
    /// (at most `cap` of each).
    pub fn second(
        mut self,
        sample: impl IntoIterator<Item = (u64, i64)>,
        n: usize,
        cap: usize,
    ) -> Diff {
        let mut top = TopN::new(n);
        let mut born = Vec::new();
        for (key, value) in sample {
            match self.before.remove(&key) {
                Some(old) => top.push(key, value.saturating_sub(old)),
                None if born.len() < cap => born.push(key),
                None => {}
            }
        }
        let mut died: Vec<u64> = self.before.into_keys().collect();
        died.sort_unstable();
        died.truncate(cap);
        Diff {
            top: top.into_sorted(),
            born,
            died,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_growth_of_the_survivors_only() {
        let mut w = Window::new();
        w.first([(1, 100), (2, 5), (3, 50)]);
        w.first([(4, 0)]);
        // 3 died; 9 was born with a huge absolute value: never ranked
        let d = w.second([(1, 110), (2, 500), (4, 1), (9, 1_000_000)], 2, 10);
        assert_eq!(d.top, vec![(2, 495), (1, 10)]);
        assert_eq!(d.born, vec![9]);
        assert_eq!(d.died, vec![3]);
    }

    #[test]
    fn born_and_died_are_capped() {
        let mut w = Window::new();
        w.first((0..100).map(|k| (k, 0)));
        let d = w.second((1000..1100).map(|k| (k, 1)), 5, 7);
        assert!(d.top.is_empty());
        assert_eq!((d.born.len(), d.died.len()), (7, 7));
        assert_eq!(d.died, (0..7).collect::<Vec<_>>());
    }
}
