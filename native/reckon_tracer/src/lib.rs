//! The `erl_tracer` module of `reckon_trace` (Erlang module `reckon_tracer`,
//! its own library: the VM loads a NIF library for exactly one module).
//!
//! A trace set by `reckon_trace` names `{tracer, reckon_tracer, State}`,
//! where `State` is a resource of this library: the trace's limit
//! (`reckon_core::trace_limit`), the pump process that takes accepted events
//! and the owner process that ends the trace.
//!
//! | callback | what it does |
//! |---|---|
//! | `enabled(Tag, State, Tracee)` | `trace_status`: `remove` once the trace is done, else `trace`; any other tag: `discard` when the limit is reached (one atomic load, before any term is built), else `trace` |
//! | `trace(Tag, State, Tracee, Term, Opts)` | the event takes its place in the limit; accepted, it is sent to the pump as `{reckon_trace_event, Tag, Tracee, Term, Opts, SystemTimeUs}`, after `{reckon_trace_suppressed, Count}` when earlier windows suppressed events |
//!
//! The state monitors the owner: if it dies without ending the trace, the
//! trace is done (every event discarded, the tracer removed from each
//! process at its next `trace_status`). The owner gets `{reckon_trace_limit, State}` once, from the event that
//! used the limit up or tripped a stop. The other NIFs (`new/1`,
//! `take_suppressed/2`, `close/1`, `accepted/1`, `ack/1`, `take_dropped/1`) serve
//! `reckon_trace_owner`. The pump acknowledges each event it takes
//! (`ack/1`); while `cap` events are unacknowledged, an accepted event is
//! dropped and counted instead of sent, so the pump's mailbox never holds
//! more than `cap` events, however fast the traced processes run.
//! The state is a `nif_glue::versioned::Versioned` resource: a library of
//! another build converts it ([`TracerWire`]: the limit's words, the pump
//! and the owner, the cap and the counts in flight and dropped) when it
//! first holds it, so a trace in flight survives an upgrade or a downgrade
//! of the library, its count intact. The owner's monitor belongs to the
//! resource object, not the state, so it survives the conversion too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nif_glue::map::field;
use nif_glue::raw::{Fail, RawResult};
use nif_glue::resource;
use nif_glue::versioned::{Held, Payload, Versioned};
use reckon_core::trace_limit::{Check, Limit, LimitParts, Mode};
use rustler::sys::{
    enif_make_tuple_from_array, enif_monitor_process, enif_send, ErlNifEnv, ErlNifMonitor,
    ErlNifPid, ErlNifTerm,
};
use rustler::{Atom, Encoder, Env, Error, LocalPid, NifResult, Term};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOCATOR: nif_glue::alloc::VmAlloc = nif_glue::alloc::VmAlloc;

nif_glue::nif_entry!(c"reckon_tracer", open_resource_types);

mod atoms {
    rustler::atoms! {
        trace, discard, remove, trace_status,
        n, window, mode, stop, throttle, pump, owner, cap,
        reckon_trace_event, reckon_trace_suppressed, reckon_trace_limit,
        generation, instances, tracer,
    }
}

/// Live-object counter index of tracer states.
const TRACER_KIND: usize = 0;
/// Longest window, in milliseconds (a day).
const MAX_WINDOW_MS: u64 = 86_400_000;

/// A trace's state: its limit and the processes it reports to.
#[cfg(not(feature = "layout_b"))]
pub struct Tracer {
    limit: Limit,
    pump: LocalPid,
    owner: LocalPid,
    /// Most events sent to the pump and not yet acknowledged.
    cap: u64,
    /// Events sent to the pump and not yet acknowledged (`ack/1`).
    in_flight: AtomicU64,
    /// Accepted events not sent because `cap` were in flight.
    overflow: AtomicU64,
}

/// A trace's state laid out otherwise (the counters first, a marker, the
/// limit boxed), for the upgrade tests.
#[cfg(feature = "layout_b")]
pub struct Tracer {
    overflow: AtomicU64,
    in_flight: AtomicU64,
    /// Only changes the layout.
    #[allow(dead_code)]
    marker: [u64; 2],
    cap: u64,
    owner: LocalPid,
    pump: LocalPid,
    limit: Box<Limit>,
}

impl Tracer {
    fn new(limit: Limit, pump: LocalPid, owner: LocalPid, cap: u64, counts: [u64; 2]) -> Self {
        let [in_flight, overflow] = counts;
        Tracer {
            #[cfg(not(feature = "layout_b"))]
            limit,
            #[cfg(feature = "layout_b")]
            limit: Box::new(limit),
            #[cfg(feature = "layout_b")]
            marker: [0x6c61_796f_7574_5f62; 2],
            pump,
            owner,
            cap,
            in_flight: AtomicU64::new(in_flight),
            overflow: AtomicU64::new(overflow),
        }
    }
}

/// A local pid as a word: its term, which means the same in every build
/// of this library in this VM.
fn pid_raw(pid: &LocalPid) -> u64 {
    // SAFETY: `ErlNifPid` is `#[repr(C)]`, one `ErlNifTerm`, a
    // transparent `usize`.
    let term = unsafe { std::ptr::read(std::ptr::from_ref(pid.as_c_arg()).cast::<usize>()) };
    term as u64
}

/// The local pid [`pid_raw`] gave.
fn pid_from_raw(raw: u64) -> LocalPid {
    let term = raw as usize;
    // SAFETY: as in `pid_raw`; the word is a pid term of this VM.
    let pid = unsafe { std::ptr::read(std::ptr::from_ref(&term).cast::<ErlNifPid>()) };
    LocalPid::from_c_arg(pid)
}

/// A trace's state as one build hands it to another.
#[derive(Serialize, Deserialize)]
pub struct TracerWire {
    n: u64,
    window: u64,
    throttle: bool,
    start: u64,
    accepted: u64,
    suppressed: u64,
    carry: u64,
    done: bool,
    pump: u64,
    owner: u64,
    cap: u64,
    in_flight: u64,
    overflow: u64,
}

/// The tracer state resource.
pub type TracerState = Versioned<Tracer>;

// SAFETY: `tracer.v3` names this layout of `Tracer` (and of the `Limit`
// it holds; v3: behind the header of `Versioned`, with conversions;
// `tracer.v3b` the layout of the `layout_b` build); bumped with it. It
// holds no pointer into the library's statics. `WIRE` 1 is `TracerWire`.
unsafe impl Payload for Tracer {
    const NAME: &'static std::ffi::CStr = c"reckon_tracer_state.v2";
    const KIND: usize = TRACER_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "tracer.v3";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "tracer.v3b";
    const WIRE: u64 = 1;
    const MONITORS: bool = true;
    type Wire = TracerWire;

    fn export(&self) -> TracerWire {
        let p = self.limit.parts();
        TracerWire {
            n: p.n,
            window: p.window,
            throttle: p.mode == Mode::Throttle,
            start: p.start,
            accepted: p.accepted,
            suppressed: p.suppressed,
            carry: p.carry,
            done: p.done,
            pump: pid_raw(&self.pump),
            owner: pid_raw(&self.owner),
            cap: self.cap,
            in_flight: self.in_flight.load(Ordering::Acquire),
            overflow: self.overflow.load(Ordering::Acquire),
        }
    }

    fn import(w: TracerWire) -> Option<Self> {
        if w.n == 0 || w.cap == 0 {
            return None;
        }
        let limit = Limit::from_parts(LimitParts {
            n: w.n,
            window: w.window,
            mode: if w.throttle {
                Mode::Throttle
            } else {
                Mode::Stop
            },
            start: w.start,
            accepted: w.accepted,
            suppressed: w.suppressed,
            carry: w.carry,
            done: w.done,
        });
        Some(Tracer::new(
            limit,
            pid_from_raw(w.pump),
            pid_from_raw(w.owner),
            w.cap,
            [w.in_flight, w.overflow],
        ))
    }

    /// The owner died without ending the trace (killed): the trace is
    /// done, so the VM drops this tracer from each traced process the next
    /// time it asks (`trace_status`), and no event is sent any more.
    fn down(&self, _pid: &ErlNifPid, _monitor: &ErlNifMonitor) {
        self.limit.close();
    }
}

/// `lib_info()`: `#{generation, instances, tracer}`: how many library
/// instances attached to the shared block so far, how many are loaded
/// now, and the live tracer states.
#[rustler::nif]
fn lib_info(env: Env<'_>) -> NifResult<Term<'_>> {
    nif_glue::map::of(
        env,
        &[
            (atoms::generation(), resource::generation().encode(env)),
            (atoms::instances(), resource::instances().encode(env)),
            (atoms::tracer(), resource::live(TRACER_KIND).encode(env)),
        ],
    )
}

fn open_resource_types(env: *mut ErlNifEnv) -> bool {
    resource::compatible::<TracerState>()
        // SAFETY: called by the entry's load and upgrade callbacks with their env.
        && unsafe { resource::open::<TracerState>(env) }
}

/// `new(#{n, window, mode, pump, owner, cap})`: a tracer state; `window` in
/// milliseconds, 0 for an absolute limit (`mode` is then `stop`); `cap`
/// the most events in the pump's mailbox.
#[rustler::nif]
fn new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let n: u64 = field(opts, atoms::n())?;
    let window: u64 = field(opts, atoms::window())?;
    let mode: Atom = field(opts, atoms::mode())?;
    let pump: LocalPid = field(opts, atoms::pump())?;
    let owner: LocalPid = field(opts, atoms::owner())?;
    let cap: u64 = field(opts, atoms::cap())?;
    if n == 0 || n > Limit::MAX_N || window > MAX_WINDOW_MS || cap == 0 {
        return Err(Error::BadArg);
    }
    let mode = if mode == atoms::stop() {
        Mode::Stop
    } else if mode == atoms::throttle() {
        Mode::Throttle
    } else {
        return Err(Error::BadArg);
    };
    let limit = if window == 0 {
        Limit::absolute(n)
    } else {
        Limit::windowed(
            n,
            window * nif_glue::clock::MS,
            mode,
            nif_glue::clock::now(),
        )
    };
    let tracer = Tracer::new(limit, pump, owner, cap, [0, 0]);
    let term = TracerState::make(env, tracer);
    let state = TracerState::get(term)?;
    // SAFETY: a monitor is plain data, filled in by the VM.
    let mut mon: ErlNifMonitor = unsafe { std::mem::zeroed() };
    // SAFETY: the object is the state's resource, alive while `term` is;
    // `owner` is a local pid (a dead one makes the call fail: then the
    // trace is done at once).
    if unsafe { enif_monitor_process(env.as_c_arg(), state.object(), owner.as_c_arg(), &mut mon) }
        != 0
    {
        state.limit.close();
    }
    Ok(term)
}

nif_glue::raw_nif!("enabled", 3, enabled);

/// `enabled(Tag, State, Tracee)`: see the module documentation. Raw: it
/// runs for every event of every traced process.
fn enabled(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [tag, state, _tracee] = *args else {
        return Err(Fail::BadArg);
    };
    // SAFETY: `state` is an argument of this call, in `env`.
    let Some(tracer) = (unsafe { TracerState::from_raw(env, state) }) else {
        // Not a state this build can use (one it could not convert):
        // stop tracing into it.
        return Ok(atoms::remove().as_c_arg());
    };
    if tag == atoms::trace_status().as_c_arg() {
        let answer = if tracer.limit.is_done() {
            atoms::remove()
        } else {
            atoms::trace()
        };
        return Ok(answer.as_c_arg());
    }
    let answer = match tracer.limit.check(nif_glue::clock::now()) {
        Check::Pass => atoms::trace(),
        Check::Discard => atoms::discard(),
        Check::Trip => {
            // SAFETY: `env` is this call's env; `state` one of its terms.
            unsafe { tell_owner(env, &tracer, state) };
            atoms::discard()
        }
    };
    Ok(answer.as_c_arg())
}

/// Sends `{reckon_trace_limit, State}` to the trace's owner.
///
/// # Safety
/// `env` must be the env of the running NIF call and `state` a term of it.
unsafe fn tell_owner(env: *mut ErlNifEnv, tracer: &Tracer, state: ErlNifTerm) {
    let items = [atoms::reckon_trace_limit().as_c_arg(), state];
    // SAFETY: by the contract above; the tuple is built in `env` and sent
    // from it (the VM copies it; the owner is never a tracee of this trace).
    unsafe {
        let msg = enif_make_tuple_from_array(env, items.as_ptr(), 2);
        enif_send(env, tracer.owner.as_c_arg(), std::ptr::null_mut(), msg);
    }
}

/// The system time in microseconds, as `erlang:system_time(microsecond)`.
fn system_time_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `trace(Tag, State, Tracee, Term, Opts)`: see the module documentation.
#[rustler::nif]
fn trace<'a>(
    env: Env<'a>,
    tag: Term<'a>,
    state: Term<'a>,
    tracee: Term<'a>,
    event: Term<'a>,
    opts: Term<'a>,
) -> NifResult<Atom> {
    let tracer = TracerState::get(state)?;
    let claim = tracer.limit.claim(nif_glue::clock::now());
    if claim.suppressed > 0 {
        let note = (atoms::reckon_trace_suppressed(), claim.suppressed);
        let _ = env.send(&tracer.pump, note);
    }
    if claim.accept && tracer.in_flight.fetch_add(1, Ordering::AcqRel) >= tracer.cap {
        // The pump is behind by `cap` events: this one is dropped here,
        // counted, and reported by the formatter (`take_dropped`).
        tracer.in_flight.fetch_sub(1, Ordering::AcqRel);
        tracer.overflow.fetch_add(1, Ordering::AcqRel);
    } else if claim.accept {
        let msg = (
            atoms::reckon_trace_event(),
            tag,
            tracee,
            event,
            opts,
            system_time_us(),
        )
            .encode(env);
        if env.send(&tracer.pump, msg).is_err() {
            tracer.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
    if claim.done {
        let _ = env.send(&tracer.owner, (atoms::reckon_trace_limit(), state));
    }
    Ok(rustler::types::atom::ok())
}

/// `take_suppressed(State, all | window)`: events suppressed and not
/// reported yet, of the windows that ended (`window`) or of all, the
/// running one included (`all`, when the trace ends).
#[rustler::nif]
fn take_suppressed(state: Held<'_, Tracer>, which: Atom) -> u64 {
    if which == atoms::window() {
        state.limit.take_suppressed(nif_glue::clock::now())
    } else {
        state.limit.take_all_suppressed()
    }
}

/// `ack(State)`: the pump took one event.
#[rustler::nif]
fn ack(state: Held<'_, Tracer>) -> Atom {
    let _ = state
        .in_flight
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    rustler::types::atom::ok()
}

/// `take_dropped(State)`: the events dropped because the pump was `cap`
/// events behind, since the previous answer.
#[rustler::nif]
fn take_dropped(state: Held<'_, Tracer>) -> u64 {
    if state.overflow.load(Ordering::Acquire) == 0 {
        0
    } else {
        state.overflow.swap(0, Ordering::AcqRel)
    }
}

/// `close(State)`: the trace is done; every later event is discarded and
/// `enabled(trace_status, ...)` answers `remove`. True for the first call.
#[rustler::nif]
fn close(state: Held<'_, Tracer>) -> bool {
    state.limit.close()
}

/// `accepted(State)`: events accepted, in all or in the running window.
#[rustler::nif]
fn accepted(state: Held<'_, Tracer>) -> u64 {
    state.limit.accepted()
}
