//! One time series in three tiers, and the bounded store of every series.
//!
//! | tier | resolution | kept | one point |
//! |---|---|---|---|
//! | seconds | 1 s | the last [`SECS`] seconds (an hour) | 8 bytes (`f64`, NaN where no point came) |
//! | minutes | 1 min | [`MINUTES`] minutes (a day) | [`Agg`], 32 bytes |
//! | hours | 1 h | [`HOURS`] hours (30 days) | [`Agg`], 32 bytes |
//!
//! Every point recorded goes into the seconds ring and is folded into the
//! open minute; a minute closes (into the minutes ring) when a point of a
//! later minute comes, and is folded into the open hour, which closes the
//! same way. An [`Agg`] keeps min, max, mean and count, so the mean of an
//! hour is the mean of its seconds, however it was downsampled.
//!
//! Points come in time order: a point at or before the newest one of its
//! series is refused ([`RecordError::Late`]), so no closed minute or hour
//! changes after it closed.
//!
//! **Memory bound.** A series holds at most [`SERIES_MAX_HEAP`] bytes of
//! rings (98 KB) plus its key (at most [`MAX_KEY`] bytes); the rings grow as
//! points come, so a young series holds less. A [`Store`] holds at most its
//! `max_series` series; a new series beyond that is refused and counted
//! ([`Store::refused`]), and its table is sized once, for `max_series`
//! entries. [`Store::bound_bytes`] is the resulting bound and
//! [`Store::heap_bytes`] what is held now.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Points of the seconds tier: one hour.
pub const SECS: usize = 3600;
/// Points of the minutes tier: one day.
pub const MINUTES: usize = 1440;
/// Points of the hours tier: 30 days.
pub const HOURS: usize = 720;
/// Longest series key, in bytes.
pub const MAX_KEY: usize = 1024;
/// Most heap bytes the three rings of one series hold.
pub const SERIES_MAX_HEAP: usize =
    SECS * std::mem::size_of::<f64>() + (MINUTES + HOURS) * std::mem::size_of::<Agg>();

/// Why a point was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// The point is not newer than the newest point of its series.
    Late,
    /// The value is NaN or infinite.
    NotFinite,
    /// The key is longer than [`MAX_KEY`] bytes.
    KeyTooLong,
    /// The series is new and the store already holds `max_series` series.
    Full,
}

/// Min, max, mean and count of the points of one slot (a minute or an hour).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    /// Slot number: minutes (or hours) since the epoch.
    pub slot: u32,
    /// Points folded in.
    pub count: u32,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean of the values.
    pub mean: f64,
}

impl Agg {
    /// The slot `slot` holding the one value `v`.
    pub fn one(slot: u32, v: f64) -> Self {
        Agg {
            slot,
            count: 1,
            min: v,
            max: v,
            mean: v,
        }
    }

    /// Folds `other` into `self` (min of mins, max of maxes, mean weighted
    /// by count); `self` keeps its slot.
    pub fn merge(&mut self, other: &Agg) {
        let n = u64::from(self.count) + u64::from(other.count);
        if n == 0 {
            return;
        }
        self.mean =
            (self.mean * f64::from(self.count) + other.mean * f64::from(other.count)) / n as f64;
        self.count = u32::try_from(n).unwrap_or(u32::MAX);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// A point of a query's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Start of the point's interval, in seconds since the epoch.
    pub t: u64,
    /// Smallest value in the interval.
    pub min: f64,
    /// Largest value in the interval.
    pub max: f64,
    /// Mean of the values in the interval.
    pub mean: f64,
    /// Values in the interval.
    pub count: u32,
}

impl Point {
    fn from_agg(a: &Agg, resolution: u64) -> Self {
        Point {
            t: u64::from(a.slot) * resolution,
            min: a.min,
            max: a.max,
            mean: a.mean,
            count: a.count,
        }
    }
}

/// A queue of at most `cap` items that drops its oldest when full, and
/// grows its storage in steps so that it never holds room for more than `cap`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ring<T> {
    cap: usize,
    items: VecDeque<T>,
}

impl<T> Ring<T> {
    fn new(cap: usize) -> Self {
        Ring {
            cap,
            items: VecDeque::new(),
        }
    }

    fn push(&mut self, item: T) {
        if self.items.len() >= self.cap {
            self.items.pop_front();
        } else if self.items.len() == self.items.capacity() {
            let step = self.items.len().max(16).min(self.cap - self.items.len());
            self.items.reserve_exact(step);
        }
        self.items.push_back(item);
    }

    /// Drops what lies beyond `cap` (a ring read from a file).
    fn clamp(&mut self, cap: usize) {
        self.cap = cap;
        while self.items.len() > cap {
            self.items.pop_front();
        }
        self.items.shrink_to(cap);
    }

    fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<T>()
    }
}

/// One time series: the three tiers and the open minute and hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    secs: Ring<f64>,
    /// One past the time of the newest second (0: no point yet).
    secs_end: u64,
    minutes: Ring<Agg>,
    open_minute: Option<Agg>,
    hours: Ring<Agg>,
    open_hour: Option<Agg>,
}

impl Default for Series {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(t: u64, resolution: u64) -> u32 {
    u32::try_from(t / resolution).unwrap_or(u32::MAX)
}

impl Series {
    /// A series with no point.
    pub fn new() -> Self {
        Series {
            secs: Ring::new(SECS),
            secs_end: 0,
            minutes: Ring::new(MINUTES),
            open_minute: None,
            hours: Ring::new(HOURS),
            open_hour: None,
        }
    }

    /// Records `v` at second `t`.
    pub fn record(&mut self, t: u64, v: f64) -> Result<(), RecordError> {
        if !v.is_finite() {
            return Err(RecordError::NotFinite);
        }
        if self.secs_end != 0 && t < self.secs_end {
            return Err(RecordError::Late);
        }
        let gap = if self.secs_end == 0 {
            0
        } else {
            t - self.secs_end
        };
        if gap >= SECS as u64 {
            self.secs.items.clear();
        } else {
            for _ in 0..gap {
                self.secs.push(f64::NAN);
            }
        }
        self.secs.push(v);
        self.secs_end = t + 1;
        let minute = slot(t, 60);
        match self.open_minute.as_mut() {
            Some(open) if open.slot == minute => open.merge(&Agg::one(minute, v)),
            _ => {
                if let Some(closed) = self.open_minute.replace(Agg::one(minute, v)) {
                    self.close_minute(closed);
                }
            }
        }
        Ok(())
    }

    fn close_minute(&mut self, closed: Agg) {
        self.minutes.push(closed);
        let hour = closed.slot / 60;
        match self.open_hour.as_mut() {
            Some(open) if open.slot == hour => open.merge(&closed),
            _ => {
                let fresh = Agg {
                    slot: hour,
                    ..closed
                };
                if let Some(done) = self.open_hour.replace(fresh) {
                    self.hours.push(done);
                }
            }
        }
    }

    /// Time of the newest point, if any.
    pub fn last_time(&self) -> Option<u64> {
        self.secs_end.checked_sub(1)
    }

    /// The newest value, if it is still in the seconds tier.
    pub fn last(&self) -> Option<f64> {
        self.secs.items.back().copied().filter(|v| !v.is_nan())
    }

    /// The per-second points at or after `from`, oldest first.
    fn seconds_from(&self, from: u64) -> impl Iterator<Item = (u64, f64)> + '_ {
        let start = self.secs_end.saturating_sub(self.secs.items.len() as u64);
        self.secs
            .items
            .iter()
            .enumerate()
            .map(move |(i, v)| (start + i as u64, *v))
            .filter(move |(t, v)| *t >= from && !v.is_nan())
    }

    /// The open hour with the open minute folded in (what the hour holds
    /// so far), and the open minute as an hour of its own when it lies in
    /// a later hour than the open one.
    fn open_hours(&self) -> Vec<Agg> {
        match (self.open_hour, self.open_minute) {
            (Some(mut h), Some(m)) if m.slot / 60 == h.slot => {
                h.merge(&m);
                vec![h]
            }
            (Some(h), Some(m)) => vec![
                h,
                Agg {
                    slot: m.slot / 60,
                    ..m
                },
            ],
            (Some(h), None) => vec![h],
            (None, Some(m)) => vec![Agg {
                slot: m.slot / 60,
                ..m
            }],
            (None, None) => Vec::new(),
        }
    }

    /// The points of the last `window` seconds before `now` (inclusive of
    /// `now - window`), oldest first, from the finest tier that covers the
    /// window: seconds up to an hour, minutes up to a day, hours beyond.
    /// The newest minute or hour may still be open (partial).
    pub fn history(&self, now: u64, window: u64) -> Vec<Point> {
        let from = now.saturating_sub(window);
        if window <= SECS as u64 {
            self.seconds_from(from)
                .map(|(t, v)| Point {
                    t,
                    min: v,
                    max: v,
                    mean: v,
                    count: 1,
                })
                .collect()
        } else if window <= (MINUTES * 60) as u64 {
            self.minutes
                .items
                .iter()
                .chain(self.open_minute.iter())
                .map(|a| Point::from_agg(a, 60))
                .filter(|p| p.t + 60 > from)
                .collect()
        } else {
            let open = self.open_hours();
            self.hours
                .items
                .iter()
                .chain(open.iter())
                .map(|a| Point::from_agg(a, 3600))
                .filter(|p| p.t + 3600 > from)
                .collect()
        }
    }

    /// Min, max, mean and count over the last `window` seconds before
    /// `now`, from [`Series::history`]'s points; `None` when there is none.
    pub fn summary(&self, now: u64, window: u64) -> Option<Agg> {
        let mut points = self.history(now, window).into_iter();
        let first = points.next()?;
        let mut acc = Agg {
            slot: 0,
            count: first.count,
            min: first.min,
            max: first.max,
            mean: first.mean,
        };
        for p in points {
            acc.merge(&Agg {
                slot: 0,
                count: p.count,
                min: p.min,
                max: p.max,
                mean: p.mean,
            });
        }
        Some(acc)
    }

    /// Heap bytes held by the rings (at most [`SERIES_MAX_HEAP`]).
    pub fn heap_bytes(&self) -> usize {
        self.secs.heap_bytes() + self.minutes.heap_bytes() + self.hours.heap_bytes()
    }

    /// Drops whatever lies beyond the tier lengths (a series read from a file).
    pub fn clamp(&mut self) {
        self.secs.clamp(SECS);
        self.minutes.clamp(MINUTES);
        self.hours.clamp(HOURS);
    }
}

/// Everything a [`Store`] holds, as one build hands it to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreParts {
    /// Most series held.
    pub max_series: usize,
    /// Every series by key.
    pub series: Vec<(Vec<u8>, Series)>,
    /// New series refused because the store was full.
    pub refused: u64,
    /// Points refused as late.
    pub late: u64,
}

/// Every series, by key, at most `max_series` of them.
#[derive(Debug)]
pub struct Store {
    max_series: usize,
    map: HashMap<Vec<u8>, Series>,
    refused: u64,
    late: u64,
}

impl Store {
    /// A store that holds at most `max_series` series; its table is sized
    /// for them now and never grows.
    pub fn new(max_series: usize) -> Self {
        Store {
            max_series,
            map: HashMap::with_capacity(max_series.max(1)),
            refused: 0,
            late: 0,
        }
    }

    /// The most series this store holds.
    pub fn max_series(&self) -> usize {
        self.max_series
    }

    /// Records `v` at second `t` in the series `key` (made if new).
    pub fn record(&mut self, key: &[u8], t: u64, v: f64) -> Result<(), RecordError> {
        if key.len() > MAX_KEY {
            return Err(RecordError::KeyTooLong);
        }
        let full = self.map.len() >= self.max_series;
        let result = match self.map.get_mut(key) {
            Some(series) => series.record(t, v),
            None if full => {
                self.refused += 1;
                return Err(RecordError::Full);
            }
            None => {
                let mut series = Series::new();
                let result = series.record(t, v);
                if result.is_ok() {
                    self.map.insert(key.to_vec(), series);
                }
                result
            }
        };
        if result == Err(RecordError::Late) {
            self.late += 1;
        }
        result
    }

    /// The series `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Series> {
        self.map.get(key)
    }

    /// Every series with its key, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Series)> {
        self.map.iter()
    }

    /// A copy of everything held: every series by key, and the counts of
    /// refused and late points.
    pub fn parts(&self) -> StoreParts {
        StoreParts {
            max_series: self.max_series,
            series: self
                .map
                .iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
            refused: self.refused,
            late: self.late,
        }
    }

    /// The store [`Store::parts`] described (its table sized for
    /// `max_series` again; series beyond it, and keys too long, are left
    /// out; every tier cut to its length).
    pub fn from_parts(parts: StoreParts) -> Self {
        let mut store = Store::new(parts.max_series);
        for (k, mut s) in parts.series {
            if store.map.len() < store.max_series && k.len() <= MAX_KEY {
                s.clamp();
                store.map.insert(k, s);
            }
        }
        store.refused = parts.refused;
        store.late = parts.late;
        store
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// New series refused because the store was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Points refused because they were not newer than their series' newest.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Bytes of the table's slots: hashbrown keeps at most 8/7 of the
    /// capacity as buckets, each an entry and a control byte, plus a group
    /// of control bytes.
    fn table_bytes(&self) -> usize {
        let buckets = (self.map.capacity() * 8).div_ceil(7) + 1;
        (buckets + 16) * (std::mem::size_of::<(Vec<u8>, Series)>() + 1)
    }

    /// Heap bytes held now: the table, the keys and the rings.
    pub fn heap_bytes(&self) -> usize {
        self.table_bytes()
            + self
                .map
                .iter()
                .map(|(k, s)| k.capacity() + s.heap_bytes())
                .sum::<usize>()
    }

    /// The most heap bytes this store can hold: its table, and
    /// `max_series` times a full series and its longest key.
    pub fn bound_bytes(&self) -> usize {
        self.table_bytes() + self.max_series * (MAX_KEY + SERIES_MAX_HEAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000 / 3600 * 3600; // an hour boundary

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn seconds_come_back_as_recorded() {
        let mut s = Series::new();
        for i in 0..10 {
            s.record(T0 + i, i as f64).unwrap();
        }
        let h = s.history(T0 + 9, 5);
        assert_eq!(h.len(), 6);
        assert_eq!(h.first().map(|p| (p.t, p.mean)), Some((T0 + 4, 4.0)));
        assert_eq!(s.last(), Some(9.0));
        assert_eq!(s.record(T0 + 9, 1.0), Err(RecordError::Late));
        assert_eq!(s.record(T0 + 10, f64::NAN), Err(RecordError::NotFinite));
    }

    #[test]
    fn gaps_leave_no_point() {
        let mut s = Series::new();
        s.record(T0, 1.0).unwrap();
        s.record(T0 + 5, 2.0).unwrap();
        let h = s.history(T0 + 5, 10);
        assert_eq!(h.iter().map(|p| p.t).collect::<Vec<_>>(), vec![T0, T0 + 5]);
        // A gap longer than the ring empties it.
        s.record(T0 + 5 + 4000, 3.0).unwrap();
        assert_eq!(s.history(T0 + 4005, 3600).len(), 1);
    }

    #[test]
    fn minutes_keep_min_max_mean() {
        let mut s = Series::new();
        // Minute 0: 0..60 (mean 29.5), minute 1: 100 + 0..60 (mean 129.5).
        for i in 0..120u64 {
            let v = if i < 60 {
                i as f64
            } else {
                100.0 + (i - 60) as f64
            };
            s.record(T0 + i, v).unwrap();
        }
        let h = s.history(T0 + 119, 7200);
        assert_eq!(h.len(), 2, "{h:?}");
        let (m0, m1) = (h[0], h[1]);
        assert_eq!((m0.t, m0.min, m0.max, m0.count), (T0, 0.0, 59.0, 60));
        assert!(close(m0.mean, 29.5));
        assert_eq!(
            (m1.t, m1.min, m1.max, m1.count),
            (T0 + 60, 100.0, 159.0, 60)
        );
        assert!(close(m1.mean, 129.5));
    }

    #[test]
    fn hours_mean_is_the_mean_of_their_seconds() {
        let mut s = Series::new();
        // Two hours and one more point, with uneven minutes: skip every
        // third second so minutes have different counts.
        let mut sum = [0.0f64; 2];
        let mut n = [0u32; 2];
        for i in 0..7200u64 {
            if i % 3 == 0 && i % 7 != 0 {
                continue;
            }
            let v = ((i * 37) % 101) as f64;
            s.record(T0 + i, v).unwrap();
            sum[(i / 3600) as usize] += v;
            n[(i / 3600) as usize] += 1;
        }
        s.record(T0 + 7200, 5.0).unwrap();
        let h = s.history(T0 + 7200, 3 * 86400);
        assert_eq!(h.len(), 3);
        for hour in 0..2 {
            let p = h[hour];
            assert_eq!(p.t, T0 + 3600 * hour as u64);
            assert_eq!(p.count, n[hour]);
            assert!(close(p.mean, sum[hour] / f64::from(n[hour])), "{p:?}");
            assert_eq!((p.min, p.max), (0.0, 100.0));
        }
        // The open hour holds the one point of hour 2.
        assert_eq!((h[2].count, h[2].mean), (1, 5.0));
        let day = s.summary(T0 + 7200, 86400).unwrap();
        assert_eq!(day.count, n[0] + n[1] + 1);
    }

    #[test]
    fn open_hour_includes_open_minute() {
        let mut s = Series::new();
        for i in 0..90u64 {
            s.record(T0 + i, 2.0).unwrap();
        }
        let h = s.history(T0 + 89, 10 * 86400);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].t, h[0].count, h[0].mean), (T0, 90, 2.0));
    }

    #[test]
    fn thirty_days_stay_within_the_bound() {
        // A point every 5 s for 31 days, in 3 series: every ring fills
        // (the seconds ring with gaps between the points).
        let mut store = Store::new(3);
        let days = 31u64;
        for i in (0..days * 86400).step_by(5) {
            for k in 0..3u8 {
                store.record(&[k; 32], T0 + i, (i % 1000) as f64).unwrap();
            }
        }
        let s = store.get(&[0; 32]).unwrap();
        assert_eq!(s.heap_bytes(), SERIES_MAX_HEAP, "full rings, exact room");
        assert!(store.heap_bytes() <= store.bound_bytes());
        let now = T0 + days * 86400 - 5;
        assert_eq!(s.history(now, 3600).len(), 720);
        assert_eq!(s.history(now, 86400).len(), MINUTES + 1);
        let month = s.history(now, 30 * 86400);
        assert!(
            month.len() >= HOURS && month.len() <= HOURS + 1,
            "{}",
            month.len()
        );
        assert!(month.iter().all(|p| p.min >= 0.0 && p.max <= 995.0));
        assert!(month[..HOURS].iter().all(|p| p.count == 720));
        // Hour h starts at second 3600 h, so its points are 3600 h + 5 j
        // (mod 1000), j < 720: their mean, computed directly.
        let h0 = (month[0].t - T0) / 3600;
        let direct = (0..720u64)
            .map(|j| ((3600 * h0 + 5 * j) % 1000) as f64)
            .sum::<f64>()
            / 720.0;
        assert!(close(month[0].mean, direct), "{} {direct}", month[0].mean);
    }

    #[test]
    fn a_flood_of_new_series_is_refused_and_counted() {
        let mut store = Store::new(100);
        for i in 0..100_000u32 {
            let key = i.to_be_bytes();
            let r = store.record(&key, T0, 1.0);
            assert_eq!(r.is_ok(), i < 100);
        }
        assert_eq!(store.len(), 100);
        assert_eq!(store.refused(), 99_900);
        assert!(store.heap_bytes() <= store.bound_bytes());
        // Existing series still record.
        assert_eq!(store.record(&0u32.to_be_bytes(), T0 + 1, 2.0), Ok(()));
        assert_eq!(
            store.record(&[0; MAX_KEY + 1], T0, 1.0),
            Err(RecordError::KeyTooLong)
        );
    }

    #[test]
    fn a_refused_first_point_makes_no_series() {
        let mut store = Store::new(1);
        assert_eq!(
            store.record(b"a", T0, f64::INFINITY),
            Err(RecordError::NotFinite)
        );
        assert!(store.is_empty());
        assert_eq!(store.record(b"b", T0, 1.0), Ok(()));
    }
}
