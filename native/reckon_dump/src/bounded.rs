//! Counters with a bounded number of distinct keys. A dump names as many
//! processes, functions and queue lengths as its node had; these keep a fixed
//! maximum of keys and count what does not fit in `overflow`.

use std::collections::BTreeMap;

/// Counts of distinct integer values, keeping the `cap` largest values
/// exactly: when full, a new value larger than the smallest kept evicts it
/// (its count moves to `overflow`); a smaller one is counted in `overflow`.
#[derive(Debug, Clone)]
pub struct Distinct {
    cap: usize,
    counts: BTreeMap<u64, u64>,
    overflow: u64,
}

impl Distinct {
    /// An empty counter of at most `cap` (at least 1) distinct values.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            counts: BTreeMap::new(),
            overflow: 0,
        }
    }

    /// Counts one occurrence of `value`.
    pub fn add(&mut self, value: u64) {
        if let Some(c) = self.counts.get_mut(&value) {
            *c += 1;
            return;
        }
        if self.counts.len() < self.cap {
            self.counts.insert(value, 1);
            return;
        }
        match self.counts.first_key_value() {
            Some((&smallest, _)) if smallest < value => {
                if let Some(c) = self.counts.remove(&smallest) {
                    self.overflow += c;
                }
                self.counts.insert(value, 1);
            }
            _ => self.overflow += 1,
        }
    }

    /// Occurrences that were not kept under a value of their own.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// The `n` largest values with their counts, largest first.
    pub fn largest(&self, n: usize) -> Vec<(u64, u64)> {
        self.counts
            .iter()
            .rev()
            .take(n)
            .map(|(&v, &c)| (v, c))
            .collect()
    }

    /// Distinct values held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.overflow == 0
    }

    /// Upper bound of the bytes held (a B-tree entry costs at most ~4 words
    /// beside its key and value).
    pub fn footprint(&self) -> usize {
        self.counts.len() * 48
    }
}

/// Sums of two counters per name (`count`, `total`) for at most `cap`
/// distinct names of at most `max_name` bytes each; a name arriving when
/// full is added to `overflow` instead.
#[derive(Debug, Clone)]
pub struct Named {
    cap: usize,
    max_name: usize,
    sums: BTreeMap<String, (u64, u64)>,
    overflow: (u64, u64),
}

impl Named {
    /// An empty counter.
    pub fn new(cap: usize, max_name: usize) -> Self {
        Self {
            cap,
            max_name,
            sums: BTreeMap::new(),
            overflow: (0, 0),
        }
    }

    /// Adds `count` and `total` under `name` (cut to `max_name` bytes).
    pub fn add(&mut self, name: &str, count: u64, total: u64) {
        let name = crate::text::cut(name, self.max_name);
        if let Some(s) = self.sums.get_mut(name) {
            s.0 += count;
            s.1 = s.1.saturating_add(total);
        } else if self.sums.len() < self.cap {
            self.sums.insert(name.to_owned(), (count, total));
        } else {
            self.overflow.0 += count;
            self.overflow.1 = self.overflow.1.saturating_add(total);
        }
    }

    /// What arrived when the counter was full: `(count, total)`.
    pub fn overflow(&self) -> (u64, u64) {
        self.overflow
    }

    /// Every name with its sums, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.sums.iter().map(|(k, &(c, t))| (k.as_str(), c, t))
    }

    /// Distinct names held.
    pub fn len(&self) -> usize {
        self.sums.len()
    }

    /// Whether no name was counted.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    /// Upper bound of the bytes held.
    pub fn footprint(&self) -> usize {
        self.sums.len() * (64 + self.max_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keeps_the_largest_values_and_counts_the_rest() {
        let mut d = Distinct::new(3);
        for v in [5, 1, 5, 9, 2, 7, 1, 9, 9] {
            d.add(v);
        }
        assert_eq!(d.largest(10), vec![(9, 3), (7, 1), (5, 2)]);
        assert_eq!(d.overflow(), 3);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn named_overflows_when_full() {
        let mut n = Named::new(2, 4);
        n.add("alpha", 1, 10);
        n.add("beta", 1, 5);
        n.add("alphabet", 2, 1);
        n.add("gamma", 1, 3);
        let all: Vec<_> = n.iter().collect();
        assert_eq!(all, vec![("alph", 3, 11), ("beta", 1, 5)]);
        assert_eq!(n.overflow(), (1, 3));
    }
}
