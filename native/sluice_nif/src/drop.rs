//! NIFs of `sluice_drop`: stateless random drop and named valves.

use std::sync::atomic::AtomicPtr;

use rustler::sys::ErlNifResourceType;
use rustler::{Encoder, Env, Error, NifResult, Term};
use sluice_core::drop::{Valve, ValveError};
use sluice_core::rng::{chance, thread_u64};

use crate::atoms;
use crate::resource::{self, Handle, NifResource};

/// Live-object counter index of valves.
pub const VALVE_KIND: usize = 0;

static VALVE_TYPE: AtomicPtr<ErlNifResourceType> = AtomicPtr::new(std::ptr::null_mut());

// SAFETY: `Valve` is `#[repr(C)]`, made of atomics and fixed-size arrays only;
// its layout is versioned by `VALVE_LAYOUT` and the ".v1" in the type name.
unsafe impl NifResource for Valve {
    const NAME: &'static std::ffi::CStr = c"sluice_valve.v1";
    const KIND: usize = VALVE_KIND;
    fn slot() -> &'static AtomicPtr<ErlNifResourceType> {
        &VALVE_TYPE
    }
}

type ValveRef<'a> = Handle<'a, Valve>;

fn failure<'a>(env: Env<'a>, err: ValveError) -> NifResult<Term<'a>> {
    match err {
        ValveError::Deleted => Ok((atoms::error(), atoms::not_found()).encode(env)),
        _ => Err(Error::BadArg),
    }
}

/// `true` with probability `rate`.
#[rustler::nif]
fn drop_random(rate: f64) -> NifResult<bool> {
    if (0.0..=1.0).contains(&rate) {
        Ok(chance(rate, thread_u64()))
    } else {
        Err(Error::BadArg)
    }
}

/// A new valve resource with one priority per rate.
#[rustler::nif]
fn drop_new(env: Env<'_>, rates: Vec<f64>) -> NifResult<Term<'_>> {
    let valve = Valve::new(&rates).map_err(|_| Error::BadArg)?;
    Ok(resource::make(env, valve))
}

/// `ok` (keep) or `drop` for one ask of priority `prio`.
#[rustler::nif]
fn drop_ask<'a>(env: Env<'a>, valve: ValveRef<'a>, prio: usize) -> NifResult<Term<'a>> {
    match valve.0.ask(prio) {
        Ok(true) => Ok(atoms::ok().encode(env)),
        Ok(false) => Ok(atoms::drop().encode(env)),
        Err(err) => failure(env, err),
    }
}

/// Sets the owner's rate (`factor = false`) or the regulator's factor.
#[rustler::nif]
fn drop_set<'a>(
    env: Env<'a>,
    valve: ValveRef<'a>,
    prio: usize,
    factor: bool,
    value: f64,
) -> NifResult<Term<'a>> {
    let set = if factor {
        Valve::set_factor
    } else {
        Valve::set_rate
    };
    match set(valve.0, prio, value) {
        Ok(()) => Ok(atoms::ok().encode(env)),
        Err(err) => failure(env, err),
    }
}

/// `[{Rate, Factor, Kept, Dropped}]`, one entry per priority, in order.
#[rustler::nif]
fn drop_counters<'a>(env: Env<'a>, valve: ValveRef<'a>) -> NifResult<Term<'a>> {
    let v = valve.0;
    if v.is_deleted() {
        return failure(env, ValveError::Deleted);
    }
    let rows: Vec<(f64, f64, u64, u64)> = (0..v.priorities())
        .map(|p| {
            let c = v.counts(p);
            (v.rate(p), v.factor(p), c.kept, c.dropped)
        })
        .collect();
    Ok(rows.encode(env))
}

/// Drops since the previous call.
#[rustler::nif]
fn drop_take_dropped(valve: ValveRef<'_>) -> u64 {
    valve.0.take_dropped()
}

/// Marks the valve deleted; its memory goes when the last handle is collected.
#[rustler::nif]
fn drop_delete(valve: ValveRef<'_>) -> rustler::Atom {
    valve.0.delete();
    atoms::ok()
}
