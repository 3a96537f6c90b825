//! User metrics: striped counters, gauges, and histograms on `hdrhistogram`,
//! and the bounded registry that names them.
//!
//! A counter is [`STRIPES`] cache-line-apart words; each thread adds to its
//! own (threads are numbered in order of their first update), and a read
//! sums them, so concurrent updaters on different schedulers never write
//! the same line. A histogram is [`HIST_STRIPES`] `hdrhistogram`
//! histograms under their own locks, chosen the same way, merged on read.
//!
//! A metric can be frozen ([`Registry::freeze`]): its value is read once,
//! exactly, and every later update is refused (returns false), so a newer
//! build of the code that keeps the recorder takes the value over and no
//! update lands where no one reads it any more. The caller of a refused
//! update makes it again on the metric that replaced it.
//!
//! A gauge is one word (an `f64`'s bits): a `set` must replace the whole
//! value, which a sum of stripes cannot do atomically against another
//! `set`, so a gauge is not striped; `add` is a compare-and-swap loop.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer, V2Serializer};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::series::MAX_KEY;

/// Counter stripes.
pub const STRIPES: usize = 16;
/// Histogram stripes.
pub const HIST_STRIPES: usize = 4;

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's number: 0, 1, 2, ... in order of first call.
fn thread_index() -> usize {
    THREAD.with(|t| {
        let mut i = t.get();
        if i == usize::MAX {
            i = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
            t.set(i);
        }
        i
    })
}

#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// The top bit of a counter's stripe: frozen ([`Counter::freeze`]). The
/// count is kept in the 63 bits below it.
const FROZEN: u64 = 1 << 63;

/// A gauge's bits once frozen: a NaN no update makes (Erlang has no NaN,
/// and an arithmetic NaN has another payload).
const GAUGE_FROZEN: u64 = 0x7ff8_5eed_dead_0001;

/// A monotonic counter, striped over [`STRIPES`] cache lines.
pub struct Counter {
    stripes: [Padded; STRIPES],
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl Counter {
    /// A counter at 0.
    pub fn new() -> Self {
        Counter {
            stripes: std::array::from_fn(|_| Padded::default()),
        }
    }

    /// A counter at `v` (modulo 2^63).
    pub fn with_value(v: u64) -> Self {
        let c = Counter::new();
        if let Some(s) = c.stripes.first() {
            s.0.store(v & !FROZEN, Ordering::Relaxed);
        }
        c
    }

    /// Adds `n` (wrapping at 2^63); false, and nothing added, once frozen.
    #[inline]
    pub fn add(&self, n: u64) -> bool {
        match self.stripes.get(thread_index() % STRIPES) {
            Some(s) => {
                s.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    (v & FROZEN == 0).then_some(v.wrapping_add(n) & !FROZEN)
                })
                .is_ok()
            }
            None => false,
        }
    }

    /// The sum of every stripe (modulo 2^63).
    pub fn value(&self) -> u64 {
        self.stripes.iter().fold(0u64, |acc, s| {
            acc.wrapping_add(s.0.load(Ordering::Relaxed) & !FROZEN) & !FROZEN
        })
    }

    /// Refuses every later update; the value at that moment, exact.
    pub fn freeze(&self) -> u64 {
        self.stripes.iter().fold(0u64, |acc, s| {
            acc.wrapping_add(s.0.fetch_or(FROZEN, Ordering::AcqRel) & !FROZEN) & !FROZEN
        })
    }
}

/// A value that is set or moved (an `f64`).
#[derive(Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// A gauge at 0.0.
    pub fn new() -> Self {
        Gauge(AtomicU64::new(0f64.to_bits()))
    }

    /// A gauge at `v`.
    pub fn with_value(v: f64) -> Self {
        Gauge(AtomicU64::new(v.to_bits()))
    }

    /// Sets the value; false, and nothing set, once frozen.
    pub fn set(&self, v: f64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                (bits != GAUGE_FROZEN).then_some(v.to_bits())
            })
            .is_ok()
    }

    /// Adds `d` (negative to subtract); false, and nothing added, once
    /// frozen.
    pub fn add(&self, d: f64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                (bits != GAUGE_FROZEN).then(|| (f64::from_bits(bits) + d).to_bits())
            })
            .is_ok()
    }

    /// The value (the last one, once frozen).
    pub fn value(&self) -> f64 {
        match self.0.load(Ordering::Relaxed) {
            GAUGE_FROZEN => 0.0,
            bits => f64::from_bits(bits),
        }
    }

    /// Refuses every later update; the value at that moment.
    pub fn freeze(&self) -> f64 {
        match self.0.swap(GAUGE_FROZEN, Ordering::AcqRel) {
            GAUGE_FROZEN => 0.0,
            bits => f64::from_bits(bits),
        }
    }
}

/// Why a histogram could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistError {
    /// `highest` must be at least 2, and `sigfig` from 1 to 3.
    BadBounds,
}

/// The values a histogram tracks: 0 to `highest` (larger values are
/// recorded as `highest`) with `sigfig` significant decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistConfig {
    /// Largest value told apart from larger ones.
    pub highest: u64,
    /// Significant decimal digits kept (1 to 3).
    pub sigfig: u8,
}

impl Default for HistConfig {
    /// An hour in microseconds, 2 significant digits (about 23 KB a stripe).
    fn default() -> Self {
        HistConfig {
            highest: 3_600_000_000,
            sigfig: 2,
        }
    }
}

/// Percentiles and moments of a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Smallest value (0 when empty).
    pub min: u64,
    /// Largest value (0 when empty).
    pub max: u64,
    /// Mean value.
    pub mean: f64,
    /// 50th, 90th, 99th and 99.9th percentiles.
    pub p: [u64; 4],
}

/// One histogram stripe, alone on its cache lines: the lock word and the
/// histogram's totals (count, min, max) are written on every record, so two
/// stripes sharing a line would make updaters on two schedulers contend as
/// if they shared one stripe.
#[repr(align(128))]
struct HistStripe(Mutex<Counts>);

/// A stripe's histogram, and whether it is frozen.
struct Counts {
    h: Histogram<u64>,
    frozen: bool,
}

/// A histogram of non-negative integers, striped over [`HIST_STRIPES`] locks.
pub struct Histo {
    config: HistConfig,
    empty: Histogram<u64>,
    stripes: Vec<HistStripe>,
}

impl Histo {
    /// An empty histogram.
    pub fn new(config: HistConfig) -> Result<Self, HistError> {
        if config.highest < 2 || !(1..=3).contains(&config.sigfig) {
            return Err(HistError::BadBounds);
        }
        let empty = Histogram::new_with_bounds(1, config.highest, config.sigfig)
            .map_err(|_| HistError::BadBounds)?;
        let stripes = (0..HIST_STRIPES)
            .map(|_| {
                HistStripe(Mutex::new(Counts {
                    h: empty.clone(),
                    frozen: false,
                }))
            })
            .collect();
        Ok(Histo {
            config,
            empty,
            stripes,
        })
    }

    /// The values it tracks.
    pub fn config(&self) -> HistConfig {
        self.config
    }

    /// A histogram of `config` holding the counts of `counts` (of any
    /// bounds: values beyond `highest` count as `highest`).
    pub fn with_counts(config: HistConfig, counts: &Histogram<u64>) -> Result<Self, HistError> {
        let h = Histo::new(config)?;
        if let Some(s) = h.stripes.first() {
            let mut c = s.0.lock();
            for v in counts.iter_recorded() {
                c.h.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        Ok(h)
    }

    /// Records `v` (as `highest` when larger); false, and nothing
    /// recorded, once frozen.
    #[inline]
    pub fn record(&self, v: u64) -> bool {
        self.record_n(v, 1)
    }

    /// Records `v` `n` times (as [`Histo::record`] does once): how a
    /// histogram kept elsewhere in buckets is added, a bucket at a time.
    pub fn record_n(&self, v: u64, n: u64) -> bool {
        match self.stripes.get(thread_index() % HIST_STRIPES) {
            Some(s) => {
                let mut c = s.0.lock();
                if !c.frozen {
                    c.h.saturating_record_n(v, n);
                }
                !c.frozen
            }
            None => false,
        }
    }

    /// Records each `(v, n)` as [`Histo::record_n`] does, all under one
    /// stripe's lock: all of them, or (once frozen) none.
    pub fn record_all(&self, pairs: &[(u64, u64)]) -> bool {
        match self.stripes.get(thread_index() % HIST_STRIPES) {
            Some(s) => {
                let mut c = s.0.lock();
                if !c.frozen {
                    for &(v, n) in pairs {
                        c.h.saturating_record_n(v, n);
                    }
                }
                !c.frozen
            }
            None => false,
        }
    }

    /// Every stripe merged into one histogram.
    pub fn merged(&self) -> Histogram<u64> {
        let mut out = self.empty.clone();
        for s in &self.stripes {
            // Same bounds, so adding cannot fail.
            let _ = out.add(&s.0.lock().h);
        }
        out
    }

    /// Refuses every later update; every stripe merged at that moment,
    /// exact (each stripe is frozen under its lock).
    pub fn freeze(&self) -> Histogram<u64> {
        let mut out = self.empty.clone();
        for s in &self.stripes {
            let mut c = s.0.lock();
            c.frozen = true;
            let _ = out.add(&c.h);
        }
        out
    }

    /// Count, min, max, mean, p50/p90/p99/p99.9.
    pub fn percentiles(&self) -> Percentiles {
        percentiles(&self.merged())
    }

    /// Heap bytes of the counts (every stripe, and the empty template).
    pub fn heap_bytes(&self) -> usize {
        self.empty.distinct_values() * std::mem::size_of::<u64>() * (HIST_STRIPES + 1)
    }

    /// The histogram in HdrHistogram's compressed V2 encoding, base64: what
    /// `HdrHistogram`'s `decodeFromCompressedByteBuffer`, HdrHistogram_py's
    /// `HdrHistogram.decode` and the other HdrHistogram tools read.
    pub fn encode(&self) -> String {
        encode(&self.merged())
    }
}

/// Count, min, max, mean and p50/p90/p99/p99.9 of `h`.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let empty = h.is_empty();
    Percentiles {
        count: h.len(),
        min: if empty { 0 } else { h.min() },
        max: if empty { 0 } else { h.max() },
        mean: if empty { 0.0 } else { h.mean() },
        p: [50.0, 90.0, 99.0, 99.9].map(|q| h.value_at_quantile(q / 100.0)),
    }
}

/// `h` in HdrHistogram's compressed V2 encoding, base64 (standard alphabet).
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec fails only for a histogram too large for the
    // format (counts beyond i64), which then encodes as nothing.
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes [`encode`]'s form (or an uncompressed V2 one); `None` when it is not one.
pub fn decode(text: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

/// `h` in HdrHistogram's uncompressed V2 serialization: every count, as a
/// newer build reads it back with [`from_v2`].
pub fn to_v2(h: &Histogram<u64>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if V2Serializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    bytes
}

/// Reads [`to_v2`]'s bytes.
pub fn from_v2(bytes: &[u8]) -> Option<Histogram<u64>> {
    Deserializer::new().deserialize(&mut &bytes[..]).ok()
}

/// A user metric's value and settings, as one build hands it to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetricParts {
    /// A counter's value.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// A histogram's bounds and counts ([`to_v2`]).
    Histogram {
        /// [`HistConfig::highest`].
        highest: u64,
        /// [`HistConfig::sigfig`].
        sigfig: u8,
        /// Every count, in HdrHistogram's V2 serialization.
        #[serde(with = "serde_bytes_vec")]
        counts: Vec<u8>,
    },
}

/// Bytes as a MessagePack binary (serde's default is a list of integers).
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// Every user metric of a registry, its bound and its refusals, as one
/// build hands them to another ([`Registry::freeze`],
/// [`Registry::from_parts`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryParts {
    /// Most metrics held.
    pub max_metrics: usize,
    /// New metrics refused because the registry was full.
    pub refused: u64,
    /// Every metric by key.
    pub metrics: Vec<(Vec<u8>, MetricParts)>,
}

/// A named user metric.
#[derive(Clone)]
pub enum Metric {
    /// A counter.
    Counter(Arc<Counter>),
    /// A gauge.
    Gauge(Arc<Gauge>),
    /// A histogram.
    Histogram(Arc<Histo>),
}

/// The kind of a [`Metric`], to ask the registry for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`Metric::Counter`].
    Counter,
    /// [`Metric::Gauge`].
    Gauge,
    /// [`Metric::Histogram`] with these bounds.
    Histogram(HistConfig),
}

impl Metric {
    fn kind_matches(&self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Metric::Counter(_), Kind::Counter)
                | (Metric::Gauge(_), Kind::Gauge)
                | (Metric::Histogram(_), Kind::Histogram(_))
        )
    }
}

/// Why the registry did not hand out a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// The name is taken by a metric of another kind.
    OtherKind,
    /// The registry already holds `max_metrics` metrics.
    Full,
    /// The key is longer than [`MAX_KEY`] bytes.
    KeyTooLong,
    /// The histogram bounds are out of range.
    BadBounds,
}

/// User metrics by key, at most `max_metrics` of them.
pub struct Registry {
    max_metrics: usize,
    map: Mutex<HashMap<Vec<u8>, Metric>>,
    refused: AtomicU64,
}

impl Registry {
    /// A registry of at most `max_metrics` metrics.
    pub fn new(max_metrics: usize) -> Self {
        Registry {
            max_metrics,
            // Room for one entry from the start: an empty `HashMap` points
            // at a static of the library that made it, which a recorder
            // taken over by a newer library instance must not (see
            // docs/nif-upgrade.md).
            map: Mutex::new(HashMap::with_capacity(1)),
            refused: AtomicU64::new(0),
        }
    }

    /// The metric named `key`, made (of `kind`) if new. A histogram
    /// already made keeps its bounds.
    pub fn get_or_make(&self, key: &[u8], kind: Kind) -> Result<Metric, RegisterError> {
        if key.len() > MAX_KEY {
            return Err(RegisterError::KeyTooLong);
        }
        let mut map = self.map.lock();
        if let Some(m) = map.get(key) {
            return if m.kind_matches(kind) {
                Ok(m.clone())
            } else {
                Err(RegisterError::OtherKind)
            };
        }
        if map.len() >= self.max_metrics {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(RegisterError::Full);
        }
        let m = match kind {
            Kind::Counter => Metric::Counter(Arc::new(Counter::new())),
            Kind::Gauge => Metric::Gauge(Arc::new(Gauge::new())),
            Kind::Histogram(c) => Metric::Histogram(Arc::new(
                Histo::new(c).map_err(|_| RegisterError::BadBounds)?,
            )),
        };
        map.insert(key.to_vec(), m.clone());
        Ok(m)
    }

    /// The metric named `key`, if there is one.
    pub fn get(&self, key: &[u8]) -> Option<Metric> {
        self.map.lock().get(key).cloned()
    }

    /// Every metric frozen ([`Counter::freeze`], [`Gauge::freeze`],
    /// [`Histo::freeze`]), with its exact value, and the registry's
    /// bound and refusals: a registry is frozen once, when a newer build
    /// takes it over.
    pub fn freeze(&self) -> RegistryParts {
        let map = self.map.lock();
        let metrics = map
            .iter()
            .map(|(k, m)| {
                let parts = match m {
                    Metric::Counter(c) => MetricParts::Counter(c.freeze()),
                    Metric::Gauge(g) => MetricParts::Gauge(g.freeze()),
                    Metric::Histogram(h) => MetricParts::Histogram {
                        highest: h.config.highest,
                        sigfig: h.config.sigfig,
                        counts: to_v2(&h.freeze()),
                    },
                };
                (k.clone(), parts)
            })
            .collect();
        RegistryParts {
            max_metrics: self.max_metrics,
            refused: self.refused.load(Ordering::Relaxed),
            metrics,
        }
    }

    /// The registry [`Registry::freeze`] described; `None` for a histogram
    /// whose bounds or counts do not read back.
    pub fn from_parts(parts: RegistryParts) -> Option<Self> {
        let r = Registry::new(parts.max_metrics);
        r.refused.store(parts.refused, Ordering::Relaxed);
        {
            let mut map = r.map.lock();
            for (key, m) in parts.metrics {
                let metric = match m {
                    MetricParts::Counter(v) => Metric::Counter(Arc::new(Counter::with_value(v))),
                    MetricParts::Gauge(v) => Metric::Gauge(Arc::new(Gauge::with_value(v))),
                    MetricParts::Histogram {
                        highest,
                        sigfig,
                        counts,
                    } => {
                        let config = HistConfig { highest, sigfig };
                        let h = Histo::with_counts(config, &from_v2(&counts)?).ok()?;
                        Metric::Histogram(Arc::new(h))
                    }
                };
                map.insert(key, metric);
            }
        }
        Some(r)
    }

    /// Every metric with its key, in no order.
    pub fn all(&self) -> Vec<(Vec<u8>, Metric)> {
        self.map
            .lock()
            .iter()
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect()
    }

    /// Most metrics held.
    pub fn max_metrics(&self) -> usize {
        self.max_metrics
    }

    /// New metrics refused because the registry was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_their_stripes_across_threads() {
        let c = Arc::new(Counter::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || (0..10_000).for_each(|_| assert!(c.add(1))))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.value(), 80_000);
    }

    #[test]
    fn gauges_set_and_add() {
        let g = Gauge::new();
        g.set(2.5);
        g.add(-1.0);
        assert_eq!(g.value(), 1.5);
    }

    #[test]
    fn histogram_stripes_share_no_cache_line() {
        let h = Histo::new(HistConfig::default()).unwrap();
        let addrs: Vec<usize> = h.stripes.iter().map(|s| s as *const _ as usize).collect();
        for pair in addrs.windows(2) {
            assert!(pair[1] - pair[0] >= 128, "{addrs:?}");
        }
        assert!(addrs.iter().all(|a| a % 128 == 0), "{addrs:?}");
    }

    #[test]
    fn histograms_merge_stripes_and_encode_for_hdr_tools() {
        let h = Arc::new(Histo::new(HistConfig::default()).unwrap());
        let threads: Vec<_> = (0..4u64)
            .map(|k| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    (1..=1000u64).for_each(|v| assert!(h.record(v * (k + 1))))
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let p = h.percentiles();
        assert_eq!(p.count, 4000);
        assert_eq!(p.min, 1);
        assert!((3960..=4040).contains(&p.max), "{p:?}");
        let text = h.encode();
        // The compressed V2 cookie, base64: 0x1c849304 starts "HISTF".
        assert!(text.starts_with("HISTF"), "{text}");
        let back = decode(&text).unwrap();
        assert_eq!(percentiles(&back), p);
        h.record(u64::MAX);
        assert_eq!(h.percentiles().count, 4001);
    }

    #[test]
    fn a_frozen_registry_reads_back_exactly_and_refuses_updates() {
        let r = Registry::new(4);
        let Ok(Metric::Counter(c)) = r.get_or_make(b"c", Kind::Counter) else {
            panic!("counter")
        };
        let Ok(Metric::Gauge(g)) = r.get_or_make(b"g", Kind::Gauge) else {
            panic!("gauge")
        };
        let Ok(Metric::Histogram(h)) = r.get_or_make(b"h", Kind::Histogram(HistConfig::default()))
        else {
            panic!("histogram")
        };
        let adders: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || (0..5000).filter(|_| c.add(1)).count() as u64)
            })
            .collect();
        assert!(g.set(2.5) && g.add(1.0));
        (1..=100).for_each(|v| assert!(h.record(v)));
        std::thread::sleep(std::time::Duration::from_millis(1));
        let parts = r.freeze();
        let added: u64 = adders.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(!c.add(1) && !g.set(1.0) && !g.add(1.0) && !h.record(1) && !h.record_n(1, 2));
        let back = Registry::from_parts(parts.clone()).unwrap();
        let Some(Metric::Counter(c2)) = back.get(b"c") else {
            panic!("counter back")
        };
        assert_eq!(c2.value(), added);
        assert!(c2.add(1));
        let Some(Metric::Gauge(g2)) = back.get(b"g") else {
            panic!("gauge back")
        };
        assert_eq!(g2.value(), 3.5);
        let Some(Metric::Histogram(h2)) = back.get(b"h") else {
            panic!("histogram back")
        };
        assert_eq!(h2.percentiles(), h.percentiles());
        assert_eq!(h2.config(), HistConfig::default());
        let bytes = rmp_serde::to_vec(&parts).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<RegistryParts>(&bytes).unwrap(),
            parts
        );
    }

    #[test]
    fn counters_wrap_at_2_63() {
        let c = Counter::with_value(u64::MAX);
        assert_eq!(c.value(), (1 << 63) - 1);
        assert!(c.add(2));
        assert_eq!(c.value(), 1);
    }

    #[test]
    fn registry_is_bounded_and_keeps_kinds() {
        let r = Registry::new(2);
        let a = r.get_or_make(b"a", Kind::Counter).unwrap();
        if let Metric::Counter(c) = &a {
            c.add(3);
        }
        match r.get_or_make(b"a", Kind::Counter) {
            Ok(Metric::Counter(c)) => assert_eq!(c.value(), 3),
            _ => panic!("same counter"),
        }
        assert_eq!(
            r.get_or_make(b"a", Kind::Gauge).err(),
            Some(RegisterError::OtherKind)
        );
        r.get_or_make(b"b", Kind::Gauge).unwrap();
        assert_eq!(
            r.get_or_make(b"c", Kind::Gauge).err(),
            Some(RegisterError::Full)
        );
        assert_eq!(r.refused(), 1);
        let bad = HistConfig {
            highest: 1,
            sigfig: 2,
        };
        let r2 = Registry::new(5);
        assert_eq!(
            r2.get_or_make(b"h", Kind::Histogram(bad)).err(),
            Some(RegisterError::BadBounds)
        );
    }
}
