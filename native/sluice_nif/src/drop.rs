//! NIFs of `sluice_drop`: stateless random drop and named valves.
//!
//! A valve is a [`Versioned`] object (`sluice_valve.v3`), converted in
//! place to the layout of whichever build serves it. Valves of the fixed
//! `#[repr(C)]` layouts older libraries made (`sluice_valve.v2`, `.v1`)
//! are taken over and served as they are, never made (except `.v1` by
//! `drop_new_v1/1`, for tests and the bench).

use std::collections::HashMap;
use std::sync::atomic::AtomicPtr;
use std::sync::{Mutex, PoisonError};

use rustler::sys::{
    c_ulong, enif_get_double, enif_get_ulong, ErlNifEnv, ErlNifResourceType, ErlNifTerm,
};
use rustler::{Atom, Encoder, Env, Error, NifResult, Term};
use serde::{Deserialize, Serialize};
use sluice_core::drop::{Valve, ValveError, ValveImage, ValveOf, ValveV1};
use sluice_core::rng::{chance, thread_u64};

use crate::atoms;
use crate::tool_ids::next_id;
use nif_glue::map;
use nif_glue::raw::{Fail, RawResult};
use nif_glue::raw_nif;
use nif_glue::resource::{self, NifResource};
use nif_glue::versioned::{Held, Payload, Versioned};

/// Live-object counter index of valves (of every layout), and the kind
/// index of `sluice_valve.v3`.
pub const VALVE_KIND: usize = 0;

static VALVE_V2_TYPE: AtomicPtr<ErlNifResourceType> = AtomicPtr::new(std::ptr::null_mut());
static VALVE_V1_TYPE: AtomicPtr<ErlNifResourceType> = AtomicPtr::new(std::ptr::null_mut());

/// A valve resource: its state behind the versioned wrapper.
pub type SluiceValve = Versioned<ValveState>;

/// A valve's state: its id and the valve (stripes allocated when first
/// used, inside the state: an ask touches only its own stripe).
pub struct ValveState {
    /// A field only the test build has, so its layout differs.
    #[cfg(feature = "layout_b")]
    _marker: [u64; 2],
    /// Its number (see `tool_ids`), never reused.
    id: u64,
    valve: Valve,
}

// SAFETY: `valve.v3` names this layout of `ValveState` (an id and a
// `Valve` of `VALVE_LAYOUT`), `valve.v3b` the test build's; bumped with
// it. `ValveWire` is version 1 of its interchange form.
unsafe impl Payload for ValveState {
    const NAME: &'static std::ffi::CStr = c"sluice_valve.v3";
    const KIND: usize = VALVE_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "valve.v3";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "valve.v3b";
    const WIRE: u64 = 1;
    type Wire = ValveWire;

    fn export(&self) -> ValveWire {
        let i = self.valve.image();
        ValveWire {
            id: self.id,
            rates: i.rates,
            factors: i.factors,
            kept: i.kept,
            dropped: i.dropped,
            reported_dropped: i.reported_dropped,
            deleted: i.deleted,
        }
    }

    fn import(w: ValveWire) -> Option<Self> {
        let valve = Valve::from_image(&ValveImage {
            rates: w.rates,
            factors: w.factors,
            kept: w.kept,
            dropped: w.dropped,
            reported_dropped: w.reported_dropped,
            deleted: w.deleted,
        })
        .ok()?;
        Some(ValveState {
            #[cfg(feature = "layout_b")]
            _marker: [0; 2],
            id: w.id,
            valve,
        })
    }
}

/// A valve as one build hands it to another (version 1): per priority its
/// rate, its regulator's factor and its kept and dropped counts (summed
/// over the stripes), the drops `take_dropped` reported, whether it was
/// deleted, and its id.
#[derive(Serialize, Deserialize)]
pub struct ValveWire {
    id: u64,
    rates: Vec<f64>,
    factors: Vec<f64>,
    kept: Vec<u64>,
    dropped: Vec<u64>,
    reported_dropped: u64,
    deleted: bool,
}

/// A valve of the second layout (stripes allocated when first used, a
/// fixed `#[repr(C)]` block), made by an older library and taken over:
/// still served, never made.
#[repr(transparent)]
pub struct SluiceValveV2(Valve);

/// A valve of the first layout (every stripe inline), made by an older
/// library and taken over: still served, never made.
#[repr(transparent)]
pub struct SluiceValveV1(ValveV1);

// SAFETY: `Valve` is `#[repr(C)]`, made of atomics, fixed-size arrays and
// pointers to `#[repr(C)]` stripes allocated through the VM's allocator (so
// any build frees them alike); its layout is versioned by `VALVE_LAYOUT`
// and the ".v2" in the type name, and the wrapper is transparent.
unsafe impl NifResource for SluiceValveV2 {
    const NAME: &'static std::ffi::CStr = c"sluice_valve.v2";
    const KIND: usize = VALVE_KIND;
    fn slot() -> &'static AtomicPtr<ErlNifResourceType> {
        &VALVE_V2_TYPE
    }
}

// SAFETY: the first layout, unchanged (`VALVE_V1_LAYOUT`, ".v1"): atomics
// and fixed-size arrays only.
unsafe impl NifResource for SluiceValveV1 {
    const NAME: &'static std::ffi::CStr = c"sluice_valve.v1";
    const KIND: usize = VALVE_KIND;
    fn slot() -> &'static AtomicPtr<ErlNifResourceType> {
        &VALVE_V1_TYPE
    }
}

/// The id of each valve of a fixed layout (`.v1`, `.v2`) that was asked
/// for one (`drop_id/1`), by the address of its payload: such a valve has
/// no room for an id, so it is kept beside it, and made when first asked.
/// A valve's destructor forgets its entry, so an address used again by a
/// new valve gets a new id.
static VALVE_IDS: Mutex<Option<HashMap<usize, u64>>> = Mutex::new(None);

/// The id of the valve at `addr`, made now if it has none.
fn valve_id(addr: usize) -> u64 {
    let mut ids = VALVE_IDS.lock().unwrap_or_else(PoisonError::into_inner);
    *ids.get_or_insert_with(HashMap::new)
        .entry(addr)
        .or_insert_with(next_id)
}

/// Forgets the id of the valve at `addr` (its destructor runs).
fn forget_id(addr: usize) {
    let mut ids = VALVE_IDS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(map) = ids.as_mut() {
        map.remove(&addr);
    }
}

impl Drop for SluiceValveV2 {
    fn drop(&mut self) {
        forget_id(std::ptr::addr_of!(*self) as usize);
    }
}

impl Drop for SluiceValveV1 {
    fn drop(&mut self) {
        forget_id(std::ptr::addr_of!(*self) as usize);
    }
}

/// A valve handle of any layout.
enum AnyValve<'a> {
    V3(Held<'a, ValveState>),
    V2(&'a Valve),
    V1(&'a ValveV1),
}

/// Runs `$body` with `$v` bound to the valve of any layout.
macro_rules! on_valve {
    ($any:expr, $v:ident => $body:expr) => {
        match $any {
            AnyValve::V3(held) => {
                let $v: &Valve = &held.valve;
                $body
            }
            AnyValve::V2($v) => $body,
            AnyValve::V1($v) => $body,
        }
    };
}

/// The valve behind a handle argument: the current layout, else an
/// older one.
///
/// # Safety
/// `term` must be a term of the running call's `env`; the reference does
/// not outlive the call.
unsafe fn raw_valve<'a>(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<AnyValve<'a>> {
    // SAFETY: by the contract above.
    unsafe {
        if let Some(held) = SluiceValve::from_raw(env, term) {
            return Some(AnyValve::V3(held));
        }
        match resource::get::<SluiceValveV2>(env, term) {
            Some(v) => Some(AnyValve::V2(&v.0)),
            None => resource::get::<SluiceValveV1>(env, term).map(|v| AnyValve::V1(&v.0)),
        }
    }
}

/// A valve handle decoded by rustler.
struct ValveRef<'a>(AnyValve<'a>);

impl<'a> rustler::Decoder<'a> for ValveRef<'a> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        // SAFETY: `term` belongs to its env, which outlives 'a.
        unsafe { raw_valve(term.get_env().as_c_arg(), term.as_c_arg()) }
            .map(ValveRef)
            .ok_or(Error::BadArg)
    }
}

/// `{error, Reason}` naming a valve's error (`not_found` once deleted).
fn failure(env: Env<'_>, err: ValveError) -> Term<'_> {
    atoms::error_of(env, atoms::valve_error(err))
}

raw_nif!("drop_random", 1, drop_random);
raw_nif!("drop_ask", 2, drop_ask);

/// `drop_random(Rate)`: `true` with probability `Rate` (a float in [0, 1]).
fn drop_random(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [rate_arg] = *args else {
        return Err(Fail::BadArg);
    };
    let mut rate: f64 = -1.0;
    // SAFETY: `env` and the argument are this call's.
    if unsafe { enif_get_double(env, rate_arg, &mut rate) } == 0 || !(0.0..=1.0).contains(&rate) {
        return Err(Fail::BadArg);
    }
    let keep = chance(rate, thread_u64());
    Ok(if keep {
        atoms::true_()
    } else {
        atoms::false_()
    }
    .as_c_arg())
}

/// `drop_ask(Valve, Priority)`: `ok` (keep), `drop`, `{error, not_found}`
/// when the valve was deleted, or `{error, unknown_priority}`.
fn drop_ask(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [valve_arg, prio_arg] = *args else {
        return Err(Fail::BadArg);
    };
    // SAFETY: the term is this call's, and the reference does not leave it.
    let valve = unsafe { raw_valve(env, valve_arg) }.ok_or(Fail::BadArg)?;
    let mut prio: c_ulong = 0;
    // SAFETY: `env` and the argument are this call's.
    if unsafe { enif_get_ulong(env, prio_arg, &mut prio) } == 0 {
        return Err(Fail::BadArg);
    }
    match on_valve!(valve, v => v.ask(prio as usize)) {
        Ok(true) => Ok(atoms::ok().as_c_arg()),
        Ok(false) => Ok(atoms::drop().as_c_arg()),
        Err(err) => {
            let lifetime = ();
            // SAFETY: `env` is this call's env, valid while `lifetime` lives.
            let env = unsafe { Env::new(&lifetime, env) };
            Ok(failure(env, err).as_c_arg())
        }
    }
}

/// A new valve resource with one priority per rate; `{error,
/// no_priorities | too_many_priorities | bad_rate}` for rates it cannot
/// have.
#[rustler::nif]
fn drop_new(env: Env<'_>, rates: Vec<f64>) -> Term<'_> {
    match Valve::new(&rates) {
        Ok(valve) => SluiceValve::make(
            env,
            ValveState {
                #[cfg(feature = "layout_b")]
                _marker: [0; 2],
                id: next_id(),
                valve,
            },
        ),
        Err(err) => failure(env, err),
    }
}

/// A valve of the first layout (every stripe inline), as libraries before
/// `sluice_valve.v2` made them: for tests that such valves are still served
/// and for the bench's reference of what an idle valve cost.
#[rustler::nif]
fn drop_new_v1(env: Env<'_>, rates: Vec<f64>) -> Term<'_> {
    match ValveV1::new(&rates) {
        Ok(valve) => resource::make(env, SluiceValveV1(valve)),
        Err(err) => failure(env, err),
    }
}

/// `drop_set(Valve, Priority, rate | factor, Value)`: sets the owner's
/// rate or the regulator's factor of `Priority`: `ok`, or `{error,
/// not_found | unknown_priority | bad_rate}`.
#[rustler::nif]
fn drop_set<'a>(
    env: Env<'a>,
    valve: ValveRef<'a>,
    prio: usize,
    what: Atom,
    value: f64,
) -> NifResult<Term<'a>> {
    let factor = if what == atoms::factor() {
        true
    } else if what == atoms::rate() {
        false
    } else {
        return Err(Error::BadArg);
    };
    let set = on_valve!(valve.0, v => if factor {
        v.set_factor(prio, value)
    } else {
        v.set_rate(prio, value)
    });
    match set {
        Ok(()) => Ok(atoms::ok().encode(env)),
        Err(err) => Ok(failure(env, err)),
    }
}

/// `[#{rate, factor, kept, dropped}]`, one map per priority, in order, or
/// `{error, not_found}`.
#[rustler::nif]
fn drop_counters<'a>(env: Env<'a>, valve: ValveRef<'a>) -> NifResult<Term<'a>> {
    on_valve!(valve.0, v => counters(env, v))
}

fn counters<'a, S: sluice_core::drop::Stripes>(
    env: Env<'a>,
    v: &ValveOf<S>,
) -> NifResult<Term<'a>> {
    if v.is_deleted() {
        return Ok(failure(env, ValveError::Deleted));
    }
    let rows = (0..v.priorities())
        .map(|p| {
            let c = v.counts(p);
            map::of(
                env,
                &[
                    (atoms::rate(), v.rate(p).encode(env)),
                    (atoms::factor(), v.factor(p).encode(env)),
                    (atoms::kept(), c.kept.encode(env)),
                    (atoms::dropped(), c.dropped.encode(env)),
                ],
            )
        })
        .collect::<NifResult<Vec<Term<'a>>>>()?;
    Ok(rows.encode(env))
}

/// Drops since the previous call.
#[rustler::nif]
fn drop_take_dropped(valve: ValveRef<'_>) -> u64 {
    on_valve!(valve.0, v => v.take_dropped())
}

/// `drop_id(Valve)`: the valve's id (see [`VALVE_IDS`]), for `sluice:tools/0`.
#[rustler::nif]
fn drop_id(valve: ValveRef<'_>) -> u64 {
    match valve.0 {
        AnyValve::V3(held) => held.id,
        AnyValve::V2(v) => valve_id(std::ptr::from_ref(v) as usize),
        AnyValve::V1(v) => valve_id(std::ptr::from_ref(v) as usize),
    }
}

/// Marks the valve deleted; its memory goes when the last handle is collected.
#[rustler::nif]
fn drop_delete(valve: ValveRef<'_>) -> rustler::Atom {
    on_valve!(valve.0, v => v.delete());
    atoms::ok()
}
