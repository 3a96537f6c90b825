//! The flight recorder of `reckon_metrics` (`reckon_metrics_core`): a
//! recorder resource, and a handle resource per user metric whose updates
//! are one short NIF call each.
//!
//! | call | what it does |
//! |---|---|
//! | `metrics_new(MaxSeries, MaxMetrics)` | a recorder |
//! | `metrics_tick(R, Points)` | records `[{Key, Number}]` (at most [`MAX_CHUNK`]) at the current second, then every user counter and gauge; the count of points refused |
//! | `metrics_metric(R, Key, Kind, Highest, Sigfig)` | `{ok, Handle}` of the user metric `Key` (made if new), or `{error, full \| other_kind \| key_too_long \| bad_bounds}` |
//! | `metric_add(H, N)`, `metric_set(H, V)`, `metric_observe(H, V)` | a counter's add, a gauge's add and set, a histogram's record |
//! | `metric_value(H)` | a counter's sum, a gauge's value, a histogram's `{Count, Min, Max, Mean, [P50, P90, P99, P999]}` |
//! | `metric_encode(H)` | a histogram in HdrHistogram's compressed V2 form, base64 |
//! | `metrics_history(R, Key, Window)` | `[{T, Min, Max, Mean, Count}]` of the last `Window` seconds, or `undefined` |
//! | `metrics_keys(R)`, `metrics_summary(R)`, `metrics_info(R)` | every key; every series' last minute, hour and day; the store's counts and bytes |
//! | `metrics_file_start(R, Dir, Keep)`, `metrics_file_stop(R)` | starts (replacing) or stops the recorder's file writer thread |
//! | `metrics_flush(R)`, `metrics_file_stats(R)` | hands a write to the writer (never blocks); `{Written, Failed, LastPath}` |
//! | `metrics_user(R)` | every user metric's value (a histogram's as Prometheus buckets) |
//! | `metrics_read_file(Path)` | `{ok, {TakenAt, [{Key, Seconds, Minutes, Hours}], [{Key, Value}]}}` of one file |
//!
//! Keys are binaries (the Erlang side's `term_to_binary` of a name), so no
//! atom is ever made from them. Both resource types carry a build
//! fingerprint: only a library of the same build takes them over.

use std::path::PathBuf;
use std::sync::atomic::AtomicPtr;
use std::sync::{Arc, Mutex};

use nif_glue::resource::{self, Handle, NifResource};
use reckon_metrics_core::clock::{AnyClock, SystemClock};
use reckon_metrics_core::file::{self, Writer, MAX_KEEP};
use reckon_metrics_core::metric::{HistConfig, Kind, Metric, Percentiles, RegisterError};
use reckon_metrics_core::series::{Agg, Point, RecordError};
use reckon_metrics_core::state::MetricValue;
use reckon_metrics_core::{Config, Recorder};
use rustler::sys::ErlNifResourceType;
use rustler::types::binary::NewBinary;
use rustler::{Atom, Binary, Encoder, Env, Error, ListIterator, NifResult, Term};

use crate::MAX_CHUNK;

/// Live-object counter index of recorders.
pub const RECORDER_KIND: usize = 1;
/// Live-object counter index of user-metric handles.
pub const METRIC_KIND: usize = 2;
/// Most series or user metrics a recorder may be asked to hold.
const MAX_CAP: usize = 100_000;

mod atoms {
    rustler::atoms! {
        counter, gauge, histogram, full, other_kind, key_too_long, bad_bounds,
        undefined, late, not_finite, no_writer
    }
}

static RECORDER_TYPE: AtomicPtr<ErlNifResourceType> = AtomicPtr::new(std::ptr::null_mut());
static METRIC_TYPE: AtomicPtr<ErlNifResourceType> = AtomicPtr::new(std::ptr::null_mut());

const RECORDER_BUILD: u64 = resource::fingerprint("recorder.v2");
const METRIC_BUILD: u64 = resource::fingerprint("metric.v1");

/// A recorder resource: the build fingerprint, then the recorder.
#[repr(C)]
pub struct ReckonRecorder {
    build: u64,
    recorder: Arc<Recorder>,
    writer: Mutex<Option<Writer>>,
}

// SAFETY: a `#[repr(C)]` payload that starts with its build fingerprint;
// only a library of the same build takes it over.
unsafe impl NifResource for ReckonRecorder {
    const NAME: &'static std::ffi::CStr = c"reckon_recorder.v1";
    const KIND: usize = RECORDER_KIND;
    const BUILD: u64 = RECORDER_BUILD;
    fn slot() -> &'static AtomicPtr<ErlNifResourceType> {
        &RECORDER_TYPE
    }
}

/// A user-metric handle: the build fingerprint, then the metric (shared
/// with the recorder's registry).
#[repr(C)]
pub struct ReckonMetric {
    build: u64,
    metric: Metric,
}

// SAFETY: as for `ReckonRecorder`.
unsafe impl NifResource for ReckonMetric {
    const NAME: &'static std::ffi::CStr = c"reckon_metric.v1";
    const KIND: usize = METRIC_KIND;
    const BUILD: u64 = METRIC_BUILD;
    fn slot() -> &'static AtomicPtr<ErlNifResourceType> {
        &METRIC_TYPE
    }
}

/// A number term as `f64`: a float, or an integer (as the nearest float).
fn number(term: Term<'_>) -> NifResult<f64> {
    term.decode::<f64>()
        .or_else(|_| term.decode::<i64>().map(|i| i as f64))
        .or_else(|_| term.decode::<u64>().map(|u| u as f64))
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    NewBinary::from_slice(env, bytes).into()
}

/// `metrics_new(MaxSeries, MaxMetrics)`: a recorder on the system clock.
#[rustler::nif]
fn metrics_new(env: Env<'_>, max_series: usize, max_metrics: usize) -> NifResult<Term<'_>> {
    if max_series > MAX_CAP || max_metrics > MAX_CAP {
        return Err(Error::BadArg);
    }
    let config = Config {
        max_series,
        max_metrics,
    };
    Ok(resource::make(
        env,
        ReckonRecorder {
            build: RECORDER_BUILD,
            recorder: Arc::new(Recorder::new(config, AnyClock::System(SystemClock))),
            writer: Mutex::new(None),
        },
    ))
}

/// `metrics_tick(R, [{Key, Number}])`: the number of points refused (full
/// store, late or non-finite point, key too long).
#[rustler::nif]
fn metrics_tick<'a>(rec: Handle<'a, ReckonRecorder>, points: ListIterator<'a>) -> NifResult<u64> {
    let mut decoded: Vec<(Binary<'a>, f64)> = Vec::new();
    for (i, item) in points.enumerate() {
        if i >= MAX_CHUNK {
            return Err(Error::BadArg);
        }
        let (key, value): (Binary<'a>, Term<'a>) = item.decode()?;
        decoded.push((key, number(value)?));
    }
    Ok(rec
        .0
        .recorder
        .tick(decoded.iter().map(|(k, v)| (k.as_slice(), *v))))
}

/// `metrics_record(R, Key, T, Number)`: one point at second `T`; `ok` or
/// `{error, late | not_finite | key_too_long | full}`.
#[rustler::nif]
fn metrics_record<'a>(
    env: Env<'a>,
    rec: Handle<'a, ReckonRecorder>,
    key: Binary<'a>,
    t: u64,
    value: Term<'a>,
) -> NifResult<Term<'a>> {
    let v = number(value)?;
    Ok(match rec.0.recorder.record_at(key.as_slice(), t, v) {
        Ok(()) => rustler::types::atom::ok().encode(env),
        Err(e) => {
            let why = match e {
                RecordError::Late => atoms::late(),
                RecordError::NotFinite => atoms::not_finite(),
                RecordError::KeyTooLong => atoms::key_too_long(),
                RecordError::Full => atoms::full(),
            };
            (rustler::types::atom::error(), why).encode(env)
        }
    })
}

/// `metrics_metric(R, Key, counter | gauge | histogram, Highest, Sigfig)`.
#[rustler::nif]
fn metrics_metric<'a>(
    env: Env<'a>,
    rec: Handle<'a, ReckonRecorder>,
    key: Binary<'a>,
    kind: Atom,
    highest: u64,
    sigfig: u8,
) -> NifResult<Term<'a>> {
    let kind = if kind == atoms::counter() {
        Kind::Counter
    } else if kind == atoms::gauge() {
        Kind::Gauge
    } else if kind == atoms::histogram() {
        Kind::Histogram(HistConfig { highest, sigfig })
    } else {
        return Err(Error::BadArg);
    };
    Ok(
        match rec.0.recorder.registry().get_or_make(key.as_slice(), kind) {
            Ok(metric) => {
                let handle = resource::make(
                    env,
                    ReckonMetric {
                        build: METRIC_BUILD,
                        metric,
                    },
                );
                (rustler::types::atom::ok(), handle).encode(env)
            }
            Err(e) => {
                let why = match e {
                    RegisterError::Full => atoms::full(),
                    RegisterError::OtherKind => atoms::other_kind(),
                    RegisterError::KeyTooLong => atoms::key_too_long(),
                    RegisterError::BadBounds => atoms::bad_bounds(),
                };
                (rustler::types::atom::error(), why).encode(env)
            }
        },
    )
}

/// `metric_add(H, N)`: adds a non-negative integer to a counter, or a
/// number to a gauge; `badarg` for a histogram.
#[rustler::nif]
fn metric_add<'a>(handle: Handle<'a, ReckonMetric>, n: Term<'a>) -> NifResult<Atom> {
    match &handle.0.metric {
        Metric::Counter(c) => c.add(n.decode::<u64>()?),
        Metric::Gauge(g) => g.add(number(n)?),
        Metric::Histogram(_) => return Err(Error::BadArg),
    }
    Ok(rustler::types::atom::ok())
}

/// `metric_set(G, V)`: sets a gauge; `badarg` for another kind.
#[rustler::nif]
fn metric_set<'a>(handle: Handle<'a, ReckonMetric>, v: Term<'a>) -> NifResult<Atom> {
    match &handle.0.metric {
        Metric::Gauge(g) => g.set(number(v)?),
        _ => return Err(Error::BadArg),
    }
    Ok(rustler::types::atom::ok())
}

/// `metric_observe(H, V)`: records a non-negative integer in a histogram
/// (as its highest trackable value when larger); `badarg` for another kind.
#[rustler::nif]
fn metric_observe(handle: Handle<'_, ReckonMetric>, v: u64) -> NifResult<Atom> {
    match &handle.0.metric {
        Metric::Histogram(h) => h.record(v),
        _ => return Err(Error::BadArg),
    }
    Ok(rustler::types::atom::ok())
}

fn encode_percentiles(env: Env<'_>, p: Percentiles) -> Term<'_> {
    (p.count, p.min, p.max, p.mean, p.p.to_vec()).encode(env)
}

/// `metric_value(H)`: a counter's sum, a gauge's value, or a histogram's
/// `{Count, Min, Max, Mean, [P50, P90, P99, P999]}`.
#[rustler::nif]
fn metric_value<'a>(env: Env<'a>, handle: Handle<'a, ReckonMetric>) -> Term<'a> {
    match &handle.0.metric {
        Metric::Counter(c) => c.value().encode(env),
        Metric::Gauge(g) => g.value().encode(env),
        Metric::Histogram(h) => encode_percentiles(env, h.percentiles()),
    }
}

/// `metric_encode(H)`: a histogram in HdrHistogram's compressed V2
/// encoding, base64, as a binary; `badarg` for another kind.
#[rustler::nif]
fn metric_encode<'a>(env: Env<'a>, handle: Handle<'a, ReckonMetric>) -> NifResult<Term<'a>> {
    match &handle.0.metric {
        Metric::Histogram(h) => Ok(binary(env, h.encode().as_bytes())),
        _ => Err(Error::BadArg),
    }
}

fn encode_points<'a>(env: Env<'a>, points: &[Point]) -> Term<'a> {
    points
        .iter()
        .map(|p| (p.t, p.min, p.max, p.mean, p.count))
        .collect::<Vec<_>>()
        .encode(env)
}

/// `metrics_history(R, Key, Window)`: the points of the last `Window`
/// seconds of series `Key`, oldest first, or `undefined`.
#[rustler::nif]
fn metrics_history<'a>(
    env: Env<'a>,
    rec: Handle<'a, ReckonRecorder>,
    key: Binary<'a>,
    window: u64,
) -> Term<'a> {
    match rec.0.recorder.history(key.as_slice(), window) {
        Some(points) => encode_points(env, &points),
        None => atoms::undefined().encode(env),
    }
}

/// `metrics_keys(R)`: every series' key (dirty: up to `MaxSeries` keys).
#[rustler::nif(schedule = "DirtyCpu")]
fn metrics_keys<'a>(env: Env<'a>, rec: Handle<'a, ReckonRecorder>) -> Term<'a> {
    let keys: Vec<Term<'a>> = rec
        .0
        .recorder
        .keys()
        .iter()
        .map(|k| binary(env, k))
        .collect();
    keys.encode(env)
}

fn encode_agg<'a>(env: Env<'a>, agg: &Option<Agg>) -> Term<'a> {
    match agg {
        Some(a) => (a.min, a.max, a.mean, a.count).encode(env),
        None => atoms::undefined().encode(env),
    }
}

/// `metrics_summary(R)`: `[{Key, Last, Minute, Hour, Day}]`, each window
/// `{Min, Max, Mean, Count}` or `undefined`, `Last` a float or
/// `undefined` (dirty: it reads every series' last hour).
#[rustler::nif(schedule = "DirtyCpu")]
fn metrics_summary<'a>(env: Env<'a>, rec: Handle<'a, ReckonRecorder>) -> Term<'a> {
    let rows: Vec<Term<'a>> = rec
        .0
        .recorder
        .summary()
        .iter()
        .map(|s| {
            let last = match s.last {
                Some(v) => v.encode(env),
                None => atoms::undefined().encode(env),
            };
            let [m, h, d] = &s.windows;
            (
                binary(env, &s.key),
                last,
                encode_agg(env, m),
                encode_agg(env, h),
                encode_agg(env, d),
            )
                .encode(env)
        })
        .collect();
    rows.encode(env)
}

/// `metrics_info(R)`: `{Series, SeriesRefused, HeapBytes, BoundBytes,
/// MetricsRefused}`.
#[rustler::nif]
fn metrics_info<'a>(env: Env<'a>, rec: Handle<'a, ReckonRecorder>) -> Term<'a> {
    let (n, refused, held, bound) = rec.0.recorder.store_stats();
    let metrics_refused = rec.0.recorder.registry().refused();
    (n, refused, held, bound, metrics_refused).encode(env)
}

fn writer_of(rec: &ReckonRecorder) -> NifResult<std::sync::MutexGuard<'_, Option<Writer>>> {
    rec.writer.lock().map_err(|_| Error::BadArg)
}

/// `metrics_file_start(R, Dir, Keep)`: a writer thread into directory
/// `Dir` (made if missing) keeping `Keep` files (1 to 100), replacing the
/// recorder's writer if it had one; `ok` or `{error, Text}` (dirty IO: it
/// reads the directory and may wait for the old writer's write).
#[rustler::nif(schedule = "DirtyIo")]
fn metrics_file_start<'a>(
    env: Env<'a>,
    rec: Handle<'a, ReckonRecorder>,
    dir: Binary<'a>,
    keep: usize,
) -> NifResult<Term<'a>> {
    if keep == 0 || keep > MAX_KEEP {
        return Err(Error::BadArg);
    }
    let dir = PathBuf::from(String::from_utf8(dir.as_slice().to_vec()).map_err(|_| Error::BadArg)?);
    let mut slot = writer_of(rec.0)?;
    drop(slot.take());
    Ok(
        match Writer::start(Arc::clone(&rec.0.recorder), dir, keep) {
            Ok(w) => {
                *slot = Some(w);
                rustler::types::atom::ok().encode(env)
            }
            Err(e) => (rustler::types::atom::error(), e.to_string()).encode(env),
        },
    )
}

/// `metrics_file_stop(R)`: stops the writer (after its write in progress).
#[rustler::nif(schedule = "DirtyIo")]
fn metrics_file_stop(rec: Handle<'_, ReckonRecorder>) -> NifResult<Atom> {
    let taken = writer_of(rec.0)?.take();
    drop(taken);
    Ok(rustler::types::atom::ok())
}

/// `metrics_flush(R)`: hands a write to the writer thread; `ok`, or
/// `{error, no_writer}`.
#[rustler::nif]
fn metrics_flush<'a>(env: Env<'a>, rec: Handle<'a, ReckonRecorder>) -> NifResult<Term<'a>> {
    Ok(match writer_of(rec.0)?.as_ref() {
        Some(w) => {
            w.flush();
            rustler::types::atom::ok().encode(env)
        }
        None => (rustler::types::atom::error(), atoms::no_writer()).encode(env),
    })
}

/// `metrics_file_stats(R)`: `{Written, Failed, LastPath | undefined}`, or
/// `undefined` without a writer.
#[rustler::nif]
fn metrics_file_stats<'a>(env: Env<'a>, rec: Handle<'a, ReckonRecorder>) -> NifResult<Term<'a>> {
    Ok(match writer_of(rec.0)?.as_ref() {
        Some(w) => {
            let s = w.stats();
            let last = match s.last {
                Some(p) => binary(env, p.to_string_lossy().as_bytes()),
                None => atoms::undefined().encode(env),
            };
            (s.written, s.failed, last).encode(env)
        }
        None => atoms::undefined().encode(env),
    })
}

/// `metrics_read_file(Path)`: one file of a writer, as `{ok, {TakenAt,
/// [{Key, Seconds, Minutes, Hours}], [{Key, Value}]}}` (each tier as
/// `metrics_history` gives it, up to the file's time; a histogram's value
/// is its encoded form), or `{error, Text}` (dirty IO).
#[rustler::nif(schedule = "DirtyIo")]
fn metrics_read_file<'a>(env: Env<'a>, path: Binary<'a>) -> NifResult<Term<'a>> {
    let path =
        PathBuf::from(String::from_utf8(path.as_slice().to_vec()).map_err(|_| Error::BadArg)?);
    let snap = match file::read(&path) {
        Ok(s) => s,
        Err(e) => return Ok((rustler::types::atom::error(), e).encode(env)),
    };
    let now = snap.taken_at;
    let series: Vec<Term<'a>> = snap
        .series
        .iter()
        .map(|(k, s)| {
            (
                binary(env, k),
                encode_points(env, &s.history(now, 3600)),
                encode_points(env, &s.history(now, 86_400)),
                encode_points(env, &s.history(now, 30 * 86_400)),
            )
                .encode(env)
        })
        .collect();
    let metrics: Vec<Term<'a>> = snap
        .metrics
        .iter()
        .map(|(k, v)| {
            let value = match v {
                MetricValue::Counter(c) => c.encode(env),
                MetricValue::Gauge(g) => g.encode(env),
                MetricValue::Histogram(h) => binary(env, h.as_bytes()),
            };
            (binary(env, k), value).encode(env)
        })
        .collect();
    Ok((rustler::types::atom::ok(), (now, series, metrics)).encode(env))
}

/// The buckets of `h` in the Prometheus shape: `{Count, Sum, [{Le,
/// CumulativeCount}]}` at 1, 2, 5, 10, 20, 50, ... up to its highest
/// trackable value; `Sum` is count × mean, as exact as the histogram's
/// precision.
fn buckets<'a>(env: Env<'a>, h: &reckon_metrics_core::metric::Histo) -> Term<'a> {
    let merged = h.merged();
    let highest = h.config().highest;
    let mut bounds = Vec::new();
    let mut decade: u64 = 1;
    'outer: loop {
        for step in [1u64, 2, 5] {
            let Some(le) = decade.checked_mul(step) else {
                break 'outer;
            };
            if le > highest {
                break 'outer;
            }
            bounds.push((le, merged.count_between(0, le)));
        }
        match decade.checked_mul(10) {
            Some(d) => decade = d,
            None => break,
        }
    }
    let count = merged.len();
    let sum = if count == 0 {
        0.0
    } else {
        merged.mean() * count as f64
    };
    (count, sum, bounds).encode(env)
}

/// `metrics_user(R)`: every user metric as `{Key, counter, Sum}`, `{Key,
/// gauge, Value}` or `{Key, histogram, {Count, Sum, [{Le, Cumulative}]}}`
/// (dirty: up to `MaxMetrics` histograms are merged).
#[rustler::nif(schedule = "DirtyCpu")]
fn metrics_user<'a>(env: Env<'a>, rec: Handle<'a, ReckonRecorder>) -> Term<'a> {
    let rows: Vec<Term<'a>> = rec
        .0
        .recorder
        .registry()
        .all()
        .iter()
        .map(|(k, m)| {
            let key = binary(env, k);
            match m {
                Metric::Counter(c) => (key, atoms::counter(), c.value()).encode(env),
                Metric::Gauge(g) => (key, atoms::gauge(), g.value()).encode(env),
                Metric::Histogram(h) => (key, atoms::histogram(), buckets(env, h)).encode(env),
            }
        })
        .collect();
    rows.encode(env)
}
