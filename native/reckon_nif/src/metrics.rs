//! The flight recorder of `reckon_metrics` (`reckon_metrics_core`): a
//! recorder resource, and a handle resource per user metric whose updates
//! are one short NIF call each.
//!
//! | call | what it does |
//! |---|---|
//! | `metrics_new(#{max_series, max_metrics})` | a recorder |
//! | `metrics_tick(R, Points)` | records `[{Key, Number}]` (at most [`MAX_CHUNK`]) at the current second, then every user counter and gauge; the count of points refused |
//! | `metrics_record(R, Key, T, Number)` | one point at second `T`: `ok` or `{error, late \| not_finite \| key_too_long \| full}` |
//! | `metrics_metric(R, #{key, kind, highest, sigfig})` | `{ok, Handle}` of the user metric `key` (made if new), or `{error, full \| other_kind \| key_too_long \| bad_bounds}` |
//! | `metric_add(H, N)`, `metric_set(H, V)`, `metric_observe(H, V)` | a counter's add, a gauge's add and set, a histogram's record (raw NIFs: the hot path); `ok`, or `moved` (below) |
//! | `metric_observe_n(H, [{V, N}])` | a histogram records each `V` `N` times (at most [`MAX_CHUNK`] pairs, all or none); `ok` or `moved` |
//! | `metric_value(H)` | a counter's sum, a gauge's value, a histogram's `#{count, min, max, mean, p50, p90, p99, p999}` |
//! | `metric_encode(H)` | a histogram in HdrHistogram's compressed V2 form, base64 |
//! | `metrics_history(R, Key, Window)` | `[#{t, min, max, mean, count}]` of the last `Window` seconds, or `undefined` |
//! | `metrics_keys(R)` | every series' key |
//! | `metrics_summary(R)` | `[{Key, #{last, minute, hour, day}}]`: every series' newest value and last minute, hour and day |
//! | `metrics_info(R)` | `#{series, series_refused, bytes, bound_bytes, metrics_refused}` |
//! | `metrics_file_start(R, #{dir, keep})`, `metrics_file_stop(R)` | starts (replacing) or stops the recorder's file writer thread |
//! | `metrics_flush(R)`, `metrics_file_stats(R)` | hands a write to the writer (never blocks); `#{written, failed, last}` |
//! | `metrics_user(R)` | every user metric as `#{key, kind, value}` (a histogram's value as Prometheus buckets) |
//! | `metrics_read_file(Path)` | `{ok, #{taken_at, series, metrics}}` of one file |
//!
//! Keys are binaries (the Erlang side's `term_to_binary` of a name), so no
//! atom is ever made from them.
//!
//! Both resources convert between builds of this library
//! ([`crate::metric_states`]); an update answers `moved` when it met its
//! metric in the middle of such a conversion.

use std::path::PathBuf;
use std::sync::Arc;

use nif_glue::map::{self, field};
use nif_glue::raw::{Fail, RawResult};
use nif_glue::raw_nif;
use nif_glue::versioned::Held;
use reckon_metrics_core::clock::{AnyClock, SystemClock};
use reckon_metrics_core::file::{self, Writer, MAX_KEEP};
use reckon_metrics_core::metric::{HistConfig, Histo, Kind, Metric, Percentiles, RegisterError};
use reckon_metrics_core::series::{Agg, Point, RecordError};
use reckon_metrics_core::state::MetricValue;
use reckon_metrics_core::{Config, Recorder};
use rustler::sys::{
    c_long, c_ulong, enif_get_double, enif_get_long, enif_get_ulong, ErlNifEnv, ErlNifTerm,
};
use rustler::types::binary::NewBinary;
use rustler::{Atom, Binary, Encoder, Env, Error, ListIterator, NifResult, Term};

pub use crate::metric_states::{MetricState, ReckonMetric, ReckonRecorder, RecorderState};
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
        undefined, late, not_finite, no_writer,
        max_series, max_metrics, key, kind, highest, sigfig, dir, keep,
        t, min, max, mean, count, p50, p90, p99, p999,
        last, minute, hour, day,
        series, series_refused, bytes, bound_bytes, metrics_refused,
        written, failed, taken_at, seconds, minutes, hours, metrics,
        value, sum, buckets, moved,
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

fn undefined(env: Env<'_>) -> Term<'_> {
    atoms::undefined().encode(env)
}

fn error<'a>(env: Env<'a>, why: impl Encoder) -> Term<'a> {
    (rustler::types::atom::error(), why).encode(env)
}

/// A path term (a UTF-8 binary).
fn path_of(term: Binary<'_>) -> NifResult<PathBuf> {
    let text = std::str::from_utf8(term.as_slice()).map_err(|_| Error::BadArg)?;
    Ok(PathBuf::from(text))
}

/// `metrics_new(#{max_series, max_metrics})`: a recorder on the system
/// clock; `badarg` for a missing key or a cap above 100 000.
#[rustler::nif]
fn metrics_new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let max_series: usize = field(opts, atoms::max_series())?;
    let max_metrics: usize = field(opts, atoms::max_metrics())?;
    if max_series > MAX_CAP || max_metrics > MAX_CAP {
        return Err(Error::BadArg);
    }
    let config = Config {
        max_series,
        max_metrics,
    };
    let recorder = Arc::new(Recorder::new(config, AnyClock::System(SystemClock)));
    Ok(ReckonRecorder::make(
        env,
        RecorderState::new(recorder, None),
    ))
}

/// `metrics_tick(R, [{Key, Number}])`: the number of points refused (full
/// store, late or non-finite point, key too long).
#[rustler::nif]
fn metrics_tick<'a>(rec: Held<'a, RecorderState>, points: ListIterator<'a>) -> NifResult<u64> {
    let mut decoded: Vec<(Binary<'a>, f64)> = Vec::new();
    for (i, item) in points.enumerate() {
        if i >= MAX_CHUNK {
            return Err(Error::BadArg);
        }
        let (key, value): (Binary<'a>, Term<'a>) = item.decode()?;
        decoded.push((key, number(value)?));
    }
    Ok(rec
        .recorder
        .tick(decoded.iter().map(|(k, v)| (k.as_slice(), *v))))
}

/// `metrics_record(R, Key, T, Number)`: one point at second `T`; `ok` or
/// `{error, late | not_finite | key_too_long | full}`.
#[rustler::nif]
fn metrics_record<'a>(
    env: Env<'a>,
    rec: Held<'a, RecorderState>,
    key: Binary<'a>,
    t: u64,
    value: Term<'a>,
) -> NifResult<Term<'a>> {
    let v = number(value)?;
    Ok(match rec.recorder.record_at(key.as_slice(), t, v) {
        Ok(()) => rustler::types::atom::ok().encode(env),
        Err(e) => error(
            env,
            match e {
                RecordError::Late => atoms::late(),
                RecordError::NotFinite => atoms::not_finite(),
                RecordError::KeyTooLong => atoms::key_too_long(),
                RecordError::Full => atoms::full(),
            },
        ),
    })
}

/// `metrics_metric(R, #{key, kind => counter | gauge | histogram,
/// highest, sigfig})`: `{ok, Handle}`, or `{error, Why}`; `badarg` for a
/// missing or mistyped key.
#[rustler::nif]
fn metrics_metric<'a>(
    env: Env<'a>,
    rec: Held<'a, RecorderState>,
    opts: Term<'a>,
) -> NifResult<Term<'a>> {
    let key: Binary<'a> = field(opts, atoms::key())?;
    let kind: Atom = field(opts, atoms::kind())?;
    let highest: u64 = field(opts, atoms::highest())?;
    let sigfig: u8 = field(opts, atoms::sigfig())?;
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
        match rec.recorder.registry().get_or_make(key.as_slice(), kind) {
            Ok(metric) => {
                // SAFETY: the recorder's object, live while held.
                let state =
                    unsafe { MetricState::new(metric, rec.object(), key.as_slice().to_vec()) };
                let handle = ReckonMetric::make(env, state);
                (rustler::types::atom::ok(), handle).encode(env)
            }
            Err(e) => error(
                env,
                match e {
                    RegisterError::Full => atoms::full(),
                    RegisterError::OtherKind => atoms::other_kind(),
                    RegisterError::KeyTooLong => atoms::key_too_long(),
                    RegisterError::BadBounds => atoms::bad_bounds(),
                },
            ),
        },
    )
}

raw_nif!("metric_add", 2, metric_add);
raw_nif!("metric_set", 2, metric_set);
raw_nif!("metric_observe", 2, metric_observe);

// The three updates are the hot path (one call per update in application
// code): raw NIFs, which read their two arguments straight from `argv`
// where `#[rustler::nif]` would collect them into a `Vec` on every call.

/// The handle `term` of this call, held.
///
/// # Safety
/// `term` must be an argument of the running NIF call and `env` its env;
/// the value must not outlive the call.
unsafe fn metric_of<'a>(
    env: *mut ErlNifEnv,
    term: ErlNifTerm,
) -> Result<Held<'a, MetricState>, Fail> {
    // SAFETY: by the contract above.
    unsafe { ReckonMetric::from_raw(env, term) }.ok_or(Fail::BadArg)
}

/// A non-negative integer below 2^64.
fn u64_of(env: *mut ErlNifEnv, term: ErlNifTerm) -> Result<u64, Fail> {
    let mut v: c_ulong = 0;
    // SAFETY: `env` and `term` are the running call's.
    if unsafe { enif_get_ulong(env, term, &mut v) } == 0 {
        return Err(Fail::BadArg);
    }
    Ok(v)
}

/// A number as `f64`: a float, or an integer (as the nearest float).
fn f64_of(env: *mut ErlNifEnv, term: ErlNifTerm) -> Result<f64, Fail> {
    let mut d: f64 = 0.0;
    // SAFETY: `env` and `term` are the running call's.
    if unsafe { enif_get_double(env, term, &mut d) } != 0 {
        return Ok(d);
    }
    let mut i: c_long = 0;
    // SAFETY: as above.
    if unsafe { enif_get_long(env, term, &mut i) } != 0 {
        return Ok(i as f64);
    }
    u64_of(env, term).map(|u| u as f64)
}

/// `ok`, or `moved` when the metric was frozen (see the module
/// documentation): nothing was applied, and the caller calls again.
fn done(applied: bool) -> RawResult {
    Ok(if applied {
        rustler::types::atom::ok().as_c_arg()
    } else {
        atoms::moved().as_c_arg()
    })
}

/// `metric_add(H, N)`: adds a non-negative integer to a counter, or a
/// number to a gauge; `badarg` for a histogram.
fn metric_add(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [handle, n] = *args else {
        return Err(Fail::BadArg);
    };
    // SAFETY: `handle` is an argument of this call, `env` its env.
    let held = unsafe { metric_of(env, handle) }?;
    done(match &held.metric {
        Metric::Counter(c) => c.add(u64_of(env, n)?),
        Metric::Gauge(g) => g.add(f64_of(env, n)?),
        Metric::Histogram(_) => return Err(Fail::BadArg),
    })
}

/// `metric_set(G, V)`: sets a gauge; `badarg` for another kind.
fn metric_set(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [handle, v] = *args else {
        return Err(Fail::BadArg);
    };
    // SAFETY: as in `metric_add`.
    let held = unsafe { metric_of(env, handle) }?;
    done(match &held.metric {
        Metric::Gauge(g) => g.set(f64_of(env, v)?),
        _ => return Err(Fail::BadArg),
    })
}

/// `metric_observe(H, V)`: records a non-negative integer in a histogram
/// (as its highest trackable value when larger); `badarg` for another kind.
fn metric_observe(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [handle, v] = *args else {
        return Err(Fail::BadArg);
    };
    // SAFETY: as in `metric_add`.
    let held = unsafe { metric_of(env, handle) }?;
    done(match &held.metric {
        Metric::Histogram(h) => h.record(u64_of(env, v)?),
        _ => return Err(Fail::BadArg),
    })
}

/// `metric_observe_n(H, [{V, N}])`: records each non-negative integer `V`
/// `N` times in a histogram; `badarg` for another kind, a bad pair or more
/// than [`MAX_CHUNK`] pairs.
#[rustler::nif]
fn metric_observe_n<'a>(handle: Held<'a, MetricState>, pairs: ListIterator<'a>) -> NifResult<Atom> {
    let Metric::Histogram(h) = &handle.metric else {
        return Err(Error::BadArg);
    };
    let mut decoded: Vec<(u64, u64)> = Vec::new();
    for (i, item) in pairs.enumerate() {
        if i >= MAX_CHUNK {
            return Err(Error::BadArg);
        }
        decoded.push(item.decode()?);
    }
    Ok(if h.record_all(&decoded) {
        rustler::types::atom::ok()
    } else {
        atoms::moved()
    })
}

fn encode_percentiles(env: Env<'_>, p: Percentiles) -> NifResult<Term<'_>> {
    let [p50, p90, p99, p999] = p.p;
    map::of(
        env,
        &[
            (atoms::count(), p.count.encode(env)),
            (atoms::min(), p.min.encode(env)),
            (atoms::max(), p.max.encode(env)),
            (atoms::mean(), p.mean.encode(env)),
            (atoms::p50(), p50.encode(env)),
            (atoms::p90(), p90.encode(env)),
            (atoms::p99(), p99.encode(env)),
            (atoms::p999(), p999.encode(env)),
        ],
    )
}

/// `metric_value(H)`: a counter's sum, a gauge's value, or a histogram's
/// `#{count, min, max, mean, p50, p90, p99, p999}`.
#[rustler::nif]
fn metric_value<'a>(env: Env<'a>, handle: Held<'a, MetricState>) -> NifResult<Term<'a>> {
    match &handle.metric {
        Metric::Counter(c) => Ok(c.value().encode(env)),
        Metric::Gauge(g) => Ok(g.value().encode(env)),
        Metric::Histogram(h) => encode_percentiles(env, h.percentiles()),
    }
}

/// `metric_encode(H)`: a histogram in HdrHistogram's compressed V2
/// encoding, base64, as a binary; `badarg` for another kind.
#[rustler::nif]
fn metric_encode<'a>(env: Env<'a>, handle: Held<'a, MetricState>) -> NifResult<Term<'a>> {
    match &handle.metric {
        Metric::Histogram(h) => Ok(binary(env, h.encode().as_bytes())),
        _ => Err(Error::BadArg),
    }
}

fn encode_points<'a>(env: Env<'a>, points: &[Point]) -> NifResult<Term<'a>> {
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        out.push(map::of(
            env,
            &[
                (atoms::t(), p.t.encode(env)),
                (atoms::min(), p.min.encode(env)),
                (atoms::max(), p.max.encode(env)),
                (atoms::mean(), p.mean.encode(env)),
                (atoms::count(), p.count.encode(env)),
            ],
        )?);
    }
    Ok(out.encode(env))
}

/// `metrics_history(R, Key, Window)`: the points `#{t, min, max, mean,
/// count}` of the last `Window` seconds of series `Key`, oldest first, or
/// `undefined`.
#[rustler::nif]
fn metrics_history<'a>(
    env: Env<'a>,
    rec: Held<'a, RecorderState>,
    key: Binary<'a>,
    window: u64,
) -> NifResult<Term<'a>> {
    match rec.recorder.history(key.as_slice(), window) {
        Some(points) => encode_points(env, &points),
        None => Ok(undefined(env)),
    }
}

/// `metrics_keys(R)`: every series' key (dirty: up to `MaxSeries` keys).
#[rustler::nif(schedule = "DirtyCpu")]
fn metrics_keys<'a>(env: Env<'a>, rec: Held<'a, RecorderState>) -> Term<'a> {
    let keys: Vec<Term<'a>> = rec.recorder.keys().iter().map(|k| binary(env, k)).collect();
    keys.encode(env)
}

fn encode_agg<'a>(env: Env<'a>, agg: &Option<Agg>) -> NifResult<Term<'a>> {
    match agg {
        Some(a) => map::of(
            env,
            &[
                (atoms::min(), a.min.encode(env)),
                (atoms::max(), a.max.encode(env)),
                (atoms::mean(), a.mean.encode(env)),
                (atoms::count(), a.count.encode(env)),
            ],
        ),
        None => Ok(undefined(env)),
    }
}

/// `metrics_summary(R)`: `[{Key, #{last, minute, hour, day}}]`, each
/// window `#{min, max, mean, count}` or `undefined`, `last` a float or
/// `undefined` (dirty: it reads every series' last hour).
#[rustler::nif(schedule = "DirtyCpu")]
fn metrics_summary<'a>(env: Env<'a>, rec: Held<'a, RecorderState>) -> NifResult<Term<'a>> {
    let summary = rec.recorder.summary();
    let mut rows = Vec::with_capacity(summary.len());
    for s in &summary {
        let last = match s.last {
            Some(v) => v.encode(env),
            None => undefined(env),
        };
        let [m, h, d] = &s.windows;
        let windows = map::of(
            env,
            &[
                (atoms::last(), last),
                (atoms::minute(), encode_agg(env, m)?),
                (atoms::hour(), encode_agg(env, h)?),
                (atoms::day(), encode_agg(env, d)?),
            ],
        )?;
        rows.push((binary(env, &s.key), windows).encode(env));
    }
    Ok(rows.encode(env))
}

/// `metrics_info(R)`: `#{series, series_refused, bytes, bound_bytes,
/// metrics_refused}`.
#[rustler::nif]
fn metrics_info<'a>(env: Env<'a>, rec: Held<'a, RecorderState>) -> NifResult<Term<'a>> {
    let (n, refused, held, bound) = rec.recorder.store_stats();
    let metrics_refused = rec.recorder.registry().refused();
    map::of(
        env,
        &[
            (atoms::series(), n.encode(env)),
            (atoms::series_refused(), refused.encode(env)),
            (atoms::bytes(), held.encode(env)),
            (atoms::bound_bytes(), bound.encode(env)),
            (atoms::metrics_refused(), metrics_refused.encode(env)),
        ],
    )
}

fn writer_of<'a>(
    rec: &'a Held<'_, RecorderState>,
) -> NifResult<std::sync::MutexGuard<'a, Option<Writer>>> {
    rec.writer.lock().map_err(|_| Error::BadArg)
}

/// `metrics_file_start(R, #{dir, keep})`: a writer thread into directory
/// `dir` (a UTF-8 binary; made if missing) keeping `keep` files (1 to
/// 100), replacing the recorder's writer if it had one; `ok` or `{error,
/// Text}` (dirty IO: it reads the directory and may wait for the old
/// writer's write).
#[rustler::nif(schedule = "DirtyIo")]
fn metrics_file_start<'a>(
    env: Env<'a>,
    rec: Held<'a, RecorderState>,
    opts: Term<'a>,
) -> NifResult<Term<'a>> {
    let dir = path_of(field(opts, atoms::dir())?)?;
    let keep: usize = field(opts, atoms::keep())?;
    if keep == 0 || keep > MAX_KEEP {
        return Err(Error::BadArg);
    }
    let mut slot = writer_of(&rec)?;
    drop(slot.take());
    Ok(match Writer::start(Arc::clone(&rec.recorder), dir, keep) {
        Ok(w) => {
            *slot = Some(w);
            rustler::types::atom::ok().encode(env)
        }
        Err(e) => error(env, e.to_string()),
    })
}

/// `metrics_file_stop(R)`: stops the writer (after its write in progress).
#[rustler::nif(schedule = "DirtyIo")]
fn metrics_file_stop(rec: Held<'_, RecorderState>) -> NifResult<Atom> {
    let taken = writer_of(&rec)?.take();
    drop(taken);
    Ok(rustler::types::atom::ok())
}

/// `metrics_flush(R)`: hands a write to the writer thread; `ok`, or
/// `{error, no_writer}`.
#[rustler::nif]
fn metrics_flush<'a>(env: Env<'a>, rec: Held<'a, RecorderState>) -> NifResult<Term<'a>> {
    Ok(match writer_of(&rec)?.as_ref() {
        Some(w) => {
            w.flush();
            rustler::types::atom::ok().encode(env)
        }
        None => error(env, atoms::no_writer()),
    })
}

/// `metrics_file_stats(R)`: `#{written, failed, last}` (`last` the path
/// of the newest file, or `undefined`), or `undefined` without a writer.
#[rustler::nif]
fn metrics_file_stats<'a>(env: Env<'a>, rec: Held<'a, RecorderState>) -> NifResult<Term<'a>> {
    match writer_of(&rec)?.as_ref() {
        Some(w) => {
            let s = w.stats();
            let last = match s.last {
                Some(p) => binary(env, p.to_string_lossy().as_bytes()),
                None => undefined(env),
            };
            map::of(
                env,
                &[
                    (atoms::written(), s.written.encode(env)),
                    (atoms::failed(), s.failed.encode(env)),
                    (atoms::last(), last),
                ],
            )
        }
        None => Ok(undefined(env)),
    }
}

/// `metrics_read_file(Path)`: one file of a writer, as `{ok, #{taken_at,
/// series => [{Key, #{seconds, minutes, hours}}], metrics => [{Key,
/// Value}]}}` (each tier as `metrics_history` gives it, up to the file's
/// time; a histogram's value is its encoded form), or `{error, Text}`
/// (dirty IO).
#[rustler::nif(schedule = "DirtyIo")]
fn metrics_read_file<'a>(env: Env<'a>, path: Binary<'a>) -> NifResult<Term<'a>> {
    let snap = match file::read(&path_of(path)?) {
        Ok(s) => s,
        Err(e) => return Ok(error(env, e)),
    };
    let now = snap.taken_at;
    let mut series = Vec::with_capacity(snap.series.len());
    for (k, s) in &snap.series {
        let tiers = map::of(
            env,
            &[
                (atoms::seconds(), encode_points(env, &s.history(now, 3600))?),
                (
                    atoms::minutes(),
                    encode_points(env, &s.history(now, 86_400))?,
                ),
                (
                    atoms::hours(),
                    encode_points(env, &s.history(now, 30 * 86_400))?,
                ),
            ],
        )?;
        series.push((binary(env, k), tiers).encode(env));
    }
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
    let body = map::of(
        env,
        &[
            (atoms::taken_at(), now.encode(env)),
            (atoms::series(), series.encode(env)),
            (atoms::metrics(), metrics.encode(env)),
        ],
    )?;
    Ok((rustler::types::atom::ok(), body).encode(env))
}

/// The buckets of `h` in the Prometheus shape: `#{count, sum, buckets =>
/// [{Le, CumulativeCount}]}` at 1, 2, 5, 10, 20, 50, ... up to its highest
/// trackable value; `sum` is count × mean, as exact as the histogram's
/// precision.
fn buckets<'a>(env: Env<'a>, h: &Histo) -> NifResult<Term<'a>> {
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
    map::of(
        env,
        &[
            (atoms::count(), count.encode(env)),
            (atoms::sum(), sum.encode(env)),
            (atoms::buckets(), bounds.encode(env)),
        ],
    )
}

/// `metrics_user(R)`: every user metric as `#{key, kind, value}`: a
/// counter's sum, a gauge's value, a histogram's `#{count, sum, buckets}`
/// (dirty: up to `MaxMetrics` histograms are merged).
#[rustler::nif(schedule = "DirtyCpu")]
fn metrics_user<'a>(env: Env<'a>, rec: Held<'a, RecorderState>) -> NifResult<Term<'a>> {
    let all = rec.recorder.registry().all();
    let mut rows = Vec::with_capacity(all.len());
    for (k, m) in &all {
        let (kind, value) = match m {
            Metric::Counter(c) => (atoms::counter(), c.value().encode(env)),
            Metric::Gauge(g) => (atoms::gauge(), g.value().encode(env)),
            Metric::Histogram(h) => (atoms::histogram(), buckets(env, h)?),
        };
        rows.push(map::of(
            env,
            &[
                (atoms::key(), binary(env, k)),
                (atoms::kind(), kind.encode(env)),
                (atoms::value(), value),
            ],
        )?);
    }
    Ok(rows.encode(env))
}
