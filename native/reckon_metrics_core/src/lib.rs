//! The in-node flight recorder of `reckon_metrics`, free of any BEAM
//! dependency: bounded time series with downsampled tiers ([`series`]),
//! striped counters, gauges and HdrHistogram histograms ([`metric`]), and
//! the recorder's state as MessagePack ([`state`]), written by a thread of
//! its own into rotated files ([`file`]).
//!
//! A [`Recorder`] holds a [`series::Store`] (at most `max_series` series,
//! [`series::SERIES_MAX_HEAP`] + [`series::MAX_KEY`] bytes each) and a
//! [`metric::Registry`] (at most `max_metrics` user metrics), and reads the
//! time from a [`clock::Clock`], so tests can simulate a month.

pub mod clock;
pub mod file;
pub mod metric;
pub mod series;
pub mod state;

use parking_lot::Mutex;

use clock::{AnyClock, Clock};
use metric::{Metric, Registry, RegistryParts};
use serde::{Deserialize, Serialize};
use series::{Agg, Point, RecordError, Store, StoreParts};
use state::{MetricValue, Snapshot};

/// The bounds of a recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most series kept; a new series beyond is refused and counted.
    pub max_series: usize,
    /// Most user metrics; a new one beyond is refused and counted.
    pub max_metrics: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_series: 512,
            max_metrics: 256,
        }
    }
}

/// Summary of one series: the last minute, hour and day, and the newest value.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The series' key.
    pub key: Vec<u8>,
    /// Newest value, while it is in the seconds tier.
    pub last: Option<f64>,
    /// Over the last 60 s, the last 3600 s and the last 86 400 s.
    pub windows: [Option<Agg>; 3],
}

/// Everything a [`Recorder`] holds but its clock, as one build hands it to
/// another ([`Recorder::export`], [`Recorder::from_parts`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecorderParts {
    /// The series.
    pub store: StoreParts,
    /// The user metrics, with their values.
    pub registry: RegistryParts,
}

/// The recorder: series, user metrics, and a clock.
pub struct Recorder {
    store: Mutex<Store>,
    registry: Registry,
    clock: AnyClock,
}

impl Recorder {
    /// A recorder with `config`'s bounds reading `clock`.
    pub fn new(config: Config, clock: AnyClock) -> Self {
        Recorder {
            store: Mutex::new(Store::new(config.max_series)),
            registry: Registry::new(config.max_metrics),
            clock,
        }
    }

    /// The clock's current second.
    pub fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    /// The user metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records `(key, value)` pairs at the current second, then the value
    /// of every user counter and gauge under its own key. Returns how many
    /// points were refused.
    pub fn tick<'a>(&self, points: impl IntoIterator<Item = (&'a [u8], f64)>) -> u64 {
        let t = self.now();
        let users = self.registry.all();
        let mut store = self.store.lock();
        let mut refused = 0;
        let mut put = |key: &[u8], v: f64| {
            if store.record(key, t, v).is_err() {
                refused += 1;
            }
        };
        for (key, v) in points {
            put(key, v);
        }
        for (key, m) in &users {
            match m {
                Metric::Counter(c) => put(key, c.value() as f64),
                Metric::Gauge(g) => put(key, g.value()),
                Metric::Histogram(_) => {}
            }
        }
        refused
    }

    /// Records one point at second `t`.
    pub fn record_at(&self, key: &[u8], t: u64, v: f64) -> Result<(), RecordError> {
        self.store.lock().record(key, t, v)
    }

    /// The points of series `key` over the last `window` seconds.
    pub fn history(&self, key: &[u8], window: u64) -> Option<Vec<Point>> {
        let now = self.now();
        self.store.lock().get(key).map(|s| s.history(now, window))
    }

    /// Every series' key.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.store.lock().iter().map(|(k, _)| k.clone()).collect()
    }

    /// The last minute, hour and day of every series.
    pub fn summary(&self) -> Vec<Summary> {
        let now = self.now();
        self.store
            .lock()
            .iter()
            .map(|(k, s)| Summary {
                key: k.clone(),
                last: s.last(),
                windows: [60, 3600, 86_400].map(|w| s.summary(now, w)),
            })
            .collect()
    }

    /// Series held, series refused, heap bytes held and the bound.
    pub fn store_stats(&self) -> (usize, u64, usize, usize) {
        let s = self.store.lock();
        (s.len(), s.refused(), s.heap_bytes(), s.bound_bytes())
    }

    /// Everything held, for a newer build: the series are copied, the
    /// user metrics frozen (see [`metric`]: an update through a handle
    /// made before is refused from then on), so the values are exact.
    pub fn export(&self) -> RecorderParts {
        RecorderParts {
            store: self.store.lock().parts(),
            registry: self.registry.freeze(),
        }
    }

    /// The recorder [`Recorder::export`] described, reading `clock`;
    /// `None` when a histogram does not read back.
    pub fn from_parts(parts: RecorderParts, clock: AnyClock) -> Option<Self> {
        Some(Recorder {
            store: Mutex::new(Store::from_parts(parts.store)),
            registry: Registry::from_parts(parts.registry)?,
            clock,
        })
    }

    /// The bounds it was made with.
    pub fn config(&self) -> Config {
        Config {
            max_series: self.store.lock().max_series(),
            max_metrics: self.registry.max_metrics(),
        }
    }

    /// A copy of everything held (the series are copied under the store's
    /// lock: about 100 KB per full series).
    pub fn snapshot(&self) -> Snapshot {
        let metrics = self
            .registry
            .all()
            .into_iter()
            .map(|(k, m)| {
                let v = match m {
                    Metric::Counter(c) => MetricValue::Counter(c.value()),
                    Metric::Gauge(g) => MetricValue::Gauge(g.value()),
                    Metric::Histogram(h) => MetricValue::Histogram(h.encode()),
                };
                (k, v)
            })
            .collect();
        let store = self.store.lock();
        Snapshot {
            format: state::FORMAT,
            taken_at: self.now(),
            series: store.iter().map(|(k, s)| (k.clone(), s.clone())).collect(),
            metrics,
            series_refused: store.refused(),
            metrics_refused: self.registry.refused(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use clock::{AnyClock, ManualClock};
    use metric::{HistConfig, Kind};

    const T0: u64 = 1_700_000_000;

    #[test]
    fn a_month_of_ticks_with_a_manual_clock() {
        let clock = Arc::new(ManualClock::new(T0));
        let rec = Recorder::new(
            Config {
                max_series: 8,
                max_metrics: 4,
            },
            AnyClock::Manual(Arc::clone(&clock)),
        );
        let Ok(Metric::Counter(c)) = rec.registry().get_or_make(b"user", Kind::Counter) else {
            panic!("counter")
        };
        // A tick every 4 s for 30 days.
        for i in (0..30 * 86_400u64).step_by(4) {
            c.add(1);
            rec.tick([(&b"mem"[..], (i % 60) as f64)]);
            clock.advance(4);
        }
        let (n, refused, held, bound) = rec.store_stats();
        assert_eq!((n, refused), (2, 0));
        assert!(held <= bound, "{held} > {bound}");
        let day = rec.history(b"user", 86_400).unwrap();
        assert_eq!(day.len(), series::MINUTES + 1);
        let last = rec.summary();
        let mem = last.iter().find(|s| s.key == b"mem").unwrap();
        let minute = mem.windows[0].unwrap();
        assert_eq!((minute.min, minute.max, minute.count), (0.0, 56.0, 15));
        assert!((mem.windows[1].unwrap().mean - 28.0).abs() < 1e-9);
    }

    #[test]
    fn an_export_makes_the_same_recorder() {
        let clock = Arc::new(ManualClock::new(T0));
        let rec = Recorder::new(Config::default(), AnyClock::Manual(Arc::clone(&clock)));
        let Ok(Metric::Counter(c)) = rec.registry().get_or_make(b"c", Kind::Counter) else {
            panic!("counter")
        };
        c.add(7);
        for i in 0..100u64 {
            rec.tick([(&b"a"[..], i as f64)]);
            clock.advance(1);
        }
        let parts = rec.export();
        let bytes = rmp_serde::to_vec(&parts).unwrap();
        let parts: RecorderParts = rmp_serde::from_slice(&bytes).unwrap();
        let back = Recorder::from_parts(parts, AnyClock::Manual(Arc::clone(&clock))).unwrap();
        assert_eq!(back.history(b"a", 3600), rec.history(b"a", 3600));
        let ((n, refused, _, bound), (n2, refused2, _, bound2)) =
            (back.store_stats(), rec.store_stats());
        assert_eq!((n, refused, bound), (n2, refused2, bound2));
        assert_eq!(back.config(), Config::default());
        assert!(!c.add(1), "the old recorder's metrics are frozen");
        let Some(Metric::Counter(c2)) = back.registry().get(b"c") else {
            panic!("counter back")
        };
        assert_eq!(c2.value(), 7);
    }

    #[test]
    fn a_snapshot_reads_back() {
        let clock = Arc::new(ManualClock::new(T0));
        let rec = Recorder::new(Config::default(), AnyClock::Manual(Arc::clone(&clock)));
        let Ok(Metric::Histogram(h)) = rec
            .registry()
            .get_or_make(b"h", Kind::Histogram(HistConfig::default()))
        else {
            panic!("histogram")
        };
        (1..=100).for_each(|v| assert!(h.record(v)));
        for i in 0..200u64 {
            rec.tick([(&b"a"[..], i as f64), (&b"b"[..], 1.0)]);
            clock.advance(1);
        }
        let bytes = rec.snapshot().to_vec().unwrap();
        let back = Snapshot::from_slice(&bytes).unwrap();
        assert_eq!(back.taken_at, T0 + 200);
        let (_, a) = back.series.iter().find(|(k, _)| k == b"a").unwrap();
        assert_eq!(a.history(T0 + 199, 3600), rec.history(b"a", 3600).unwrap());
        let Some((_, MetricValue::Histogram(text))) = back.metrics.first() else {
            panic!("histogram value")
        };
        let decoded = metric::decode(text).unwrap();
        assert_eq!(metric::percentiles(&decoded), h.percentiles());
        assert!(Snapshot::from_slice(b"not msgpack").is_err());
    }
}
