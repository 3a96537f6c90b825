//! NIFs of `sluice_breaker`: circuit breakers over `sluice_core::breaker`.
//! An ask or a melt is one call here: no timer, no message; the state
//! changes when a call finds it due, against the monotonic clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use rustler::sys::{ErlNifEnv, ErlNifTerm};
use rustler::{Atom, Encoder, Env, Error, NifResult, Term};
use sluice_core::breaker::{Answer, Breaker, Recovery, State, Strategy};
use sluice_core::hist::SharedHistogram;
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
// `Arc`; v4: an id and the run times); bumped with it.
unsafe impl Payload for Inner {
    const NAME: &'static std::ffi::CStr = c"sluice_breaker.v1";
    const KIND: usize = BREAKER_KIND;
    const LAYOUT: &'static str = "breaker.v4";
    // Not converted yet: objects of another build are refused.
    const WIRE: u64 = 0;
    type Wire = ();
    fn export(&self) {}
    fn import((): ()) -> Option<Self> {
        None
    }
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
