//! NIFs of `sluice_breaker`: circuit breakers over `sluice_core::breaker`.
//! An ask or a melt is one call here: no timer, no message; the state
//! changes when a call finds it due, against the monotonic clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use rustler::sys::{ErlNifEnv, ErlNifTerm};
use rustler::{Atom, Encoder, Env, Error, NifResult, Term};
use serde::{Deserialize, Serialize};
use sluice_core::breaker::{Answer, Breaker, BreakerImage, Recovery, State, Strategy};
use sluice_core::hist::{Histogram, SharedHistogram};
use sluice_core::picture::HistogramForm;
use sluice_core::rng::thread_u64;

use crate::atoms;
use crate::breaker_names::{noting, Name};
use crate::tool_ids::next_id;
use nif_glue::clock::{self, MS};
use nif_glue::map::{self, field};
use nif_glue::raw::{Fail, RawResult};
use nif_glue::raw_nif;
use nif_glue::versioned::{Held, Payload, Versioned};

/// Live-object counter index of breakers.
pub const BREAKER_KIND: usize = 4;

/// Breakers blown by a melt since this library was loaded: the breaker
/// server reads it on its own timer to learn, without any message, that
/// some breaker blew.
static TRIPS: AtomicU64 = AtomicU64::new(0);

/// A breaker resource: its state behind the versioned wrapper.
pub type SluiceBreaker = Versioned<Inner>;

/// A breaker's state.
pub struct Inner {
    /// A field only the test build has, so its layout differs.
    #[cfg(feature = "layout_b")]
    _marker: [u64; 2],
    /// Its id (see `tool_ids`), for `sluice:tools/0`.
    id: u64,
    breaker: Breaker,
    /// How long the funs of `run/3` took, in nanoseconds, since install
    /// (when `timed`, or `slow` is set).
    runs: SharedHistogram,
    /// Whether `run/3` records its run times (option `run_times`).
    timed: bool,
    /// The time of a breaker with a manual clock (ns), or `None`.
    clock: Option<AtomicU64>,
    /// `slow` of `run/3` in ms, 0 for `infinity` (set at install).
    slow: AtomicU64,
    /// The name it was installed under (set once, at install).
    name: OnceLock<Name>,
    /// Whether the name map holds it under its name.
    installed: AtomicBool,
    /// Whether it waits in the change queue (so it is queued once).
    queued: AtomicBool,
}
// SAFETY: `breaker.v4` names this layout of `Inner` (v3: held by an
// `Arc`; v4: an id and the run times), `breaker.v4b` the test build's;
// bumped with it. `BreakerWire` is version 1 of its interchange form.
unsafe impl Payload for Inner {
    const NAME: &'static std::ffi::CStr = c"sluice_breaker.v1";
    const KIND: usize = BREAKER_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "breaker.v4";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "breaker.v4b";
    const WIRE: u64 = 1;
    type Wire = BreakerWire;

    fn export(&self) -> BreakerWire {
        let i = self.breaker.image();
        let runs = self.runs.snapshot();
        BreakerWire {
            id: self.id,
            strategy: match i.strategy {
                Strategy::Standard { max_r, max_t } => StrategyWire::Standard { max_r, max_t },
                Strategy::FaultInjection { rate, max_r, max_t } => {
                    StrategyWire::FaultInjection { rate, max_r, max_t }
                }
                Strategy::FailureRate {
                    ratio,
                    min_calls,
                    window,
                } => StrategyWire::FailureRate {
                    ratio,
                    min_calls,
                    window,
                },
            },
            recovery: RecoveryWire {
                delay: i.recovery.delay,
                probes: i.recovery.probes,
                backoff: i.recovery.backoff,
                max_delay: i.recovery.max_delay,
                jitter: i.recovery.jitter,
            },
            gate: i.gate,
            flips: i.flips,
            asks: i.asks,
            blown: i.blown,
            injected: i.injected,
            melts: i.melts,
            slices: i.slices,
            delay: i.delay,
            half_since: i.half_since,
            granted: i.granted,
            succeeded: i.succeeded,
            melts_total: i.melts_total,
            trips: i.trips,
            probes: i.probes,
            runs: (!runs.is_empty()).then(|| HistogramForm::from(runs)),
            timed: self.timed,
            clock: self.clock.as_ref().map(|c| c.load(Ordering::Acquire)),
            slow: self.slow(),
            name: self.name().and_then(Name::bytes),
            installed: self.installed.load(Ordering::Acquire),
            queued: self.queued.load(Ordering::Acquire),
        }
    }

    fn import(w: BreakerWire) -> Option<Self> {
        let strategy = match w.strategy {
            StrategyWire::Standard { max_r, max_t } => Strategy::Standard { max_r, max_t },
            StrategyWire::FaultInjection { rate, max_r, max_t } => {
                Strategy::FaultInjection { rate, max_r, max_t }
            }
            StrategyWire::FailureRate {
                ratio,
                min_calls,
                window,
            } => Strategy::FailureRate {
                ratio,
                min_calls,
                window,
            },
        };
        let r = w.recovery;
        let breaker = Breaker::from_image(&BreakerImage {
            strategy,
            recovery: Recovery {
                delay: r.delay,
                probes: r.probes,
                backoff: r.backoff,
                max_delay: r.max_delay,
                jitter: r.jitter,
            },
            gate: w.gate,
            flips: w.flips,
            asks: w.asks,
            blown: w.blown,
            injected: w.injected,
            melts: w.melts,
            slices: w.slices,
            delay: w.delay,
            half_since: w.half_since,
            granted: w.granted,
            succeeded: w.succeeded,
            melts_total: w.melts_total,
            trips: w.trips,
            probes: w.probes,
        });
        let runs = match w.runs {
            Some(h) => SharedHistogram::holding(Histogram::try_from(h).ok()?),
            None => SharedHistogram::new(),
        };
        let name = OnceLock::new();
        if let Some(bytes) = &w.name {
            let _ = name.set(Name::from_bytes(bytes)?);
        }
        Some(Inner {
            #[cfg(feature = "layout_b")]
            _marker: [0; 2],
            id: w.id,
            breaker,
            runs,
            timed: w.timed,
            clock: w.clock.map(AtomicU64::new),
            slow: AtomicU64::new(w.slow),
            name,
            installed: AtomicBool::new(w.installed),
            queued: AtomicBool::new(w.queued),
        })
    }
}

/// A breaker as one build hands it to another (version 1): its settings,
/// its gate word, counters and window of melts (see
/// `sluice_core::breaker::BreakerImage`), the run times of `run/3`, a
/// manual clock's time, and the name it was installed under (in the
/// external term format; the name map keeps referring to the object,
/// whose header every build shares).
#[derive(Serialize, Deserialize)]
pub struct BreakerWire {
    id: u64,
    strategy: StrategyWire,
    recovery: RecoveryWire,
    gate: u64,
    flips: u64,
    asks: u64,
    blown: u64,
    injected: u64,
    melts: Vec<u64>,
    slices: Vec<(u64, u64, u64)>,
    delay: u64,
    half_since: u64,
    granted: u32,
    succeeded: u32,
    melts_total: u64,
    trips: u64,
    probes: u64,
    runs: Option<HistogramForm>,
    timed: bool,
    clock: Option<u64>,
    slow: u64,
    name: Option<Vec<u8>>,
    installed: bool,
    queued: bool,
}

/// [`Strategy`] in a [`BreakerWire`].
#[derive(Serialize, Deserialize)]
enum StrategyWire {
    Standard {
        max_r: u32,
        max_t: u64,
    },
    FaultInjection {
        rate: f64,
        max_r: u32,
        max_t: u64,
    },
    FailureRate {
        ratio: f64,
        min_calls: u64,
        window: u64,
    },
}

/// [`Recovery`] in a [`BreakerWire`].
#[derive(Serialize, Deserialize)]
struct RecoveryWire {
    delay: Option<u64>,
    probes: u32,
    backoff: f64,
    max_delay: u64,
    jitter: f64,
}

impl Inner {
    /// Its id (see `tool_ids`).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
    /// The times of `run/3`'s funs, in nanoseconds.
    pub(crate) fn runs(&self) -> &SharedHistogram {
        &self.runs
    }
    /// Whether `run/3` measures its funs: asked to (`run_times`), or to
    /// check `slow`.
    pub(crate) fn timed(&self) -> bool {
        self.timed || self.slow() > 0
    }
    /// The breaker.
    pub(crate) fn breaker(&self) -> &Breaker {
        &self.breaker
    }
    /// The name it was installed under, once installed.
    pub(crate) fn name(&self) -> Option<&Name> {
        self.name.get()
    }
    /// Names it (once: `false` when it already has a name) with `slow`.
    pub(crate) fn name_it(&self, name: Name, slow_ms: u64) -> bool {
        self.slow.store(slow_ms, Ordering::Relaxed);
        self.name.set(name).is_ok()
    }
    /// `slow` in ms, 0 for `infinity`.
    pub(crate) fn slow(&self) -> u64 {
        self.slow.load(Ordering::Relaxed)
    }
    /// Whether the name map holds it.
    pub(crate) fn installed(&self) -> &AtomicBool {
        &self.installed
    }
    /// Whether it waits in the change queue.
    pub(crate) fn queued(&self) -> &AtomicBool {
        &self.queued
    }
}

pub(crate) fn get<'a>(term: Term<'a>) -> NifResult<Held<'a, Inner>> {
    SluiceBreaker::get(term)
}

fn now(b: &Inner) -> u64 {
    match &b.clock {
        Some(clock) => clock.load(Ordering::Acquire),
        None => clock::now(),
    }
}

fn ms(v: u64) -> NifResult<u64> {
    v.checked_mul(MS)
        .filter(|&ns| ns < u64::MAX >> 4)
        .ok_or(Error::BadArg)
}

/// The atom of a breaker state.
pub(crate) fn state_atom(state: State) -> Atom {
    match state {
        State::Closed => atoms::closed(),
        State::Open { .. } => atoms::open(),
        State::HalfOpen => atoms::half_open(),
        State::Disabled => atoms::disabled(),
    }
}

/// A breaker's strategy from its map: `#{type => standard, max_r, max_t}`,
/// `#{type => fault_injection, rate, max_r, max_t}` or `#{type =>
/// failure_rate, ratio, min_calls, window}` (times in ms).
fn strategy(map: Term<'_>) -> NifResult<Strategy> {
    let tag: Atom = field(map, atoms::type_())?;
    let fraction = |key: Atom| -> NifResult<f64> {
        let v: f64 = field(map, key)?;
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(Error::BadArg)
        }
    };
    if tag == atoms::standard() {
        Ok(Strategy::Standard {
            max_r: field(map, atoms::max_r())?,
            max_t: ms(field(map, atoms::max_t())?)?,
        })
    } else if tag == atoms::fault_injection() {
        Ok(Strategy::FaultInjection {
            rate: fraction(atoms::rate())?,
            max_r: field(map, atoms::max_r())?,
            max_t: ms(field(map, atoms::max_t())?)?,
        })
    } else if tag == atoms::failure_rate() {
        Ok(Strategy::FailureRate {
            ratio: fraction(atoms::ratio())?,
            min_calls: field(map, atoms::min_calls())?,
            window: ms(field(map, atoms::window())?)?,
        })
    } else {
        Err(Error::BadArg)
    }
}

/// `breaker_new(Opts)`: a breaker, from the map `#{strategy => Strategy
/// (see [`strategy`]), delay (ms, 0: manual reset), probes, backoff,
/// max_delay (ms), jitter, manual_clock, timed}` (`timed`, default
/// `false`: `run/3` records its run times); `badarg` for a missing or
/// mistyped key.
#[rustler::nif]
fn breaker_new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let strategy = strategy(field(opts, atoms::strategy())?)?;
    let delay: u64 = field(opts, atoms::delay())?;
    let probes: u32 = field(opts, atoms::probes())?;
    let backoff: f64 = field(opts, atoms::backoff())?;
    let max_delay: u64 = field(opts, atoms::max_delay())?;
    let jitter: f64 = field(opts, atoms::jitter())?;
    let manual: bool = field(opts, atoms::manual_clock())?;
    let timed: bool = match opts.map_get(atoms::timed()) {
        Ok(v) => v.decode()?,
        Err(_) => false,
    };
    if !(backoff >= 1.0 && backoff.is_finite() && (0.0..=1.0).contains(&jitter)) {
        return Err(Error::BadArg);
    }
    let recovery = Recovery {
        delay: if delay > 0 { Some(ms(delay)?) } else { None },
        probes: probes.max(1),
        backoff,
        max_delay: ms(max_delay.max(delay))?,
        jitter,
    };
    let inner = Inner {
        #[cfg(feature = "layout_b")]
        _marker: [0; 2],
        id: next_id(),
        breaker: Breaker::new(strategy, recovery),
        runs: SharedHistogram::new(),
        timed,
        clock: manual.then(|| AtomicU64::new(0)),
        slow: AtomicU64::new(0),
        name: OnceLock::new(),
        installed: AtomicBool::new(false),
        queued: AtomicBool::new(false),
    };
    Ok(SluiceBreaker::make(env, inner))
}

/// A counter stripe for the calling thread, from where its stack is:
/// scheduler threads' stacks lie megabytes apart, and a thread-local of a
/// shared library is read through a library call.
fn stripe() -> usize {
    let here = 0u8;
    (std::ptr::addr_of!(here) as usize) >> 20
}

/// The breaker of a handle argument of a raw NIF.
fn raw_get<'a>(env: *mut ErlNifEnv, term: ErlNifTerm) -> Result<Held<'a, Inner>, Fail> {
    // SAFETY: `term` is an argument of the running call, whose env is
    // `env`; the reference does not outlive the call.
    unsafe { SluiceBreaker::from_raw(env, term) }.ok_or(Fail::BadArg)
}

raw_nif!("breaker_ask", 1, breaker_ask);
raw_nif!("breaker_melt", 1, breaker_melt);

/// Asks `b`: `ok` (a probe of a half-open breaker too) or `blown`.
pub(crate) fn ask(b: &Held<'_, Inner>) -> Atom {
    let answer = noting(b, |br| br.ask(|| now(b), thread_u64, stripe()));
    match answer {
        Answer::Ok | Answer::Probe => atoms::ok(),
        Answer::Blown => atoms::blown(),
    }
}

/// Melts `b`; returns the state after it.
pub(crate) fn melt(b: &Held<'_, Inner>) -> State {
    let (state, tripped) = noting(b, |br| br.melt(now(b), thread_u64()));
    if tripped {
        TRIPS.fetch_add(1, Ordering::Relaxed);
    }
    state
}

/// `breaker_ask(Breaker)`: `ok` (a probe of a half-open breaker too) or
/// `blown`.
fn breaker_ask(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [handle] = *args else {
        return Err(Fail::BadArg);
    };
    let b = raw_get(env, handle)?;
    Ok(ask(&b).as_c_arg())
}

/// `breaker_melt(Breaker)`: reports a failure; returns the state after it.
fn breaker_melt(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [handle] = *args else {
        return Err(Fail::BadArg);
    };
    let b = raw_get(env, handle)?;
    Ok(state_atom(melt(&b)).as_c_arg())
}

/// Breakers blown by a melt since the library was loaded.
#[rustler::nif]
fn breaker_trips() -> u64 {
    TRIPS.load(Ordering::Relaxed)
}

/// Reports a success; returns the state after it.
#[rustler::nif]
fn breaker_succeed(handle: Term<'_>) -> NifResult<Atom> {
    let b = get(handle)?;
    Ok(state_atom(noting(&b, Breaker::succeed)))
}

/// `reset`, `disable` or `enable`.
#[rustler::nif]
fn breaker_control(handle: Term<'_>, what: Atom) -> NifResult<Atom> {
    let b = get(handle)?;
    let op: fn(&Breaker) = if what == atoms::reset() {
        Breaker::reset
    } else if what == atoms::disable() {
        Breaker::disable
    } else if what == atoms::enable() {
        Breaker::enable
    } else {
        return Err(Error::BadArg);
    };
    noting(&b, op);
    Ok(atoms::ok())
}

/// Moves a manual clock to `Ms` (never back); `{error, system_clock}` for
/// a breaker on the system clock.
#[rustler::nif]
fn breaker_set_time<'a>(env: Env<'a>, handle: Term<'a>, ms_now: u64) -> NifResult<Term<'a>> {
    let b = get(handle)?;
    let Some(clock) = b.clock.as_ref() else {
        return Ok(atoms::error_of(env, atoms::system_clock()));
    };
    clock.fetch_max(ms_now.saturating_mul(MS), Ordering::AcqRel);
    Ok(atoms::ok().encode(env))
}

/// `#{state, asks, ok, blown, injected, melts, trips, probes}`.
#[rustler::nif]
fn breaker_info<'a>(env: Env<'a>, handle: Term<'a>) -> NifResult<Term<'a>> {
    let b = get(handle)?;
    info(env, &b)
}

/// The map of [`breaker_info`] for `b`.
pub(crate) fn info<'a>(env: Env<'a>, b: &Inner) -> NifResult<Term<'a>> {
    let s = b.breaker.stats();
    let state = state_atom(b.breaker.state());
    map::of(
        env,
        &[
            (atoms::state(), state.encode(env)),
            (atoms::asks(), s.asks.encode(env)),
            (atoms::ok(), s.ok.encode(env)),
            (atoms::blown(), s.blown.encode(env)),
            (atoms::injected(), s.injected.encode(env)),
            (atoms::melts(), s.melts.encode(env)),
            (atoms::trips(), s.trips.encode(env)),
            (atoms::probes(), s.probes.encode(env)),
        ],
    )
}
