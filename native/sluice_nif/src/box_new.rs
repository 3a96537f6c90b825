//! The NIFs that make boxes and buffers of buckets (see `boxes`).

use nif_glue::map::field;
use rustler::{Atom, Env, Error, LocalPid, NifResult, Term};
use sluice_core::buckets::{Buckets, Config, Order, WhenFull, Within};
use sluice_core::buffer::Kind;
use sluice_core::mailbox::{Arm, Mailbox};
use sluice_core::policy::{CodelConfig, Policy, Red};

use crate::atoms;
use crate::boxes::{make, Store, LAYOUT};
use nif_glue::clock::MS;

/// A box's drop policies from the options map of `box_new/1`: `max_age`,
/// `codel_target`, `codel_interval` (ms, 0 turns a policy off), `red_min`,
/// `red_max`, `red_prob` (0.0: off) and `manual_clock`.
fn policy(opts: Term<'_>) -> NifResult<Policy> {
    let max_age: u64 = field(opts, atoms::max_age())?;
    let target: u64 = field(opts, atoms::codel_target())?;
    let interval: u64 = field(opts, atoms::codel_interval())?;
    let red_min: u64 = field(opts, atoms::red_min())?;
    let red_max: u64 = field(opts, atoms::red_max())?;
    let prob: f64 = field(opts, atoms::red_prob())?;
    let ns = |ms: u64| ms.checked_mul(MS).ok_or(Error::BadArg);
    if !(0.0..=1.0).contains(&prob) || red_min > red_max {
        return Err(Error::BadArg);
    }
    Ok(Policy {
        max_age: if max_age > 0 {
            Some(ns(max_age)?)
        } else {
            None
        },
        codel: if target > 0 {
            Some(CodelConfig {
                target: ns(target)?,
                interval: ns(interval.max(1))?,
            })
        } else {
            None
        },
        red: (prob > 0.0).then_some(Red {
            min: red_min,
            max: red_max,
            prob,
        }),
        manual_clock: field(opts, atoms::manual_clock())?,
    })
}

/// `box_new(Opts)`: a new box, from the map `#{type => queue | stack |
/// keep_old, max, max_bytes (0: no byte budget), owner, notify}` and the
/// policy keys of [`policy`]; `notify`: armed for `{mail, Box, new_data}`
/// to the owner from the first post. `{error, zero_max}` for a bound of 0;
/// `badarg` for a missing or mistyped key.
#[rustler::nif]
fn box_new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let kind: Atom = field(opts, atoms::type_())?;
    let kind = if kind == atoms::queue() {
        Kind::Queue
    } else if kind == atoms::stack() {
        Kind::Stack
    } else if kind == atoms::keep_old() {
        Kind::KeepOld
    } else {
        return Err(Error::BadArg);
    };
    let max: u64 = field(opts, atoms::max())?;
    let max = usize::try_from(max).map_err(|_| Error::BadArg)?;
    let max_bytes: u64 = field(opts, atoms::max_bytes())?;
    let max_bytes = (max_bytes > 0).then_some(max_bytes);
    let policy = policy(opts)?;
    let (owner, notify) = (field(opts, atoms::owner())?, field(opts, atoms::notify())?);
    match Mailbox::new(kind, max, max_bytes, LAYOUT) {
        Ok(mailbox) => Ok(made(
            env,
            Box::new(mailbox.with_policy(policy)),
            owner,
            notify,
        )),
        Err(err) => Ok(atoms::error_of(env, atoms::buffer_error(err))),
    }
}

/// `buckets_new(Opts)`: a new buffer of time buckets, from the map `#{max,
/// width (ms, at least 1), max_age (ms, 0: none), order => newest_first |
/// oldest_first, within => lifo | fifo, when_full => drop_oldest |
/// drop_new, manual_clock, owner, notify}`. A manual clock starts at 0 and
/// moves with `box_set_time/2` only; `notify` as for `box_new/1`. `{error,
/// zero_max}` for a bound of 0; `badarg` for a missing or mistyped key.
#[rustler::nif]
fn buckets_new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let pick = |key: Atom, yes: Atom, no: Atom| {
        let a: Atom = field(opts, key)?;
        if a == yes {
            Ok(true)
        } else if a == no {
            Ok(false)
        } else {
            Err(Error::BadArg)
        }
    };
    let newest = pick(atoms::order(), atoms::newest_first(), atoms::oldest_first())?;
    let lifo = pick(atoms::within(), atoms::lifo(), atoms::fifo())?;
    let oldest = pick(atoms::when_full(), atoms::drop_oldest(), atoms::drop_new())?;
    let width_ms: u64 = field(opts, atoms::width())?;
    let max_age_ms: u64 = field(opts, atoms::max_age())?;
    if width_ms == 0 || width_ms > u64::MAX / MS || max_age_ms > u64::MAX / MS {
        return Err(Error::BadArg);
    }
    let cfg = Config {
        width: width_ms * MS,
        max_age: (max_age_ms > 0).then_some(max_age_ms * MS),
        order: if newest {
            Order::NewestFirst
        } else {
            Order::OldestFirst
        },
        within: if lifo { Within::Lifo } else { Within::Fifo },
        when_full: if oldest {
            WhenFull::DropOldest
        } else {
            WhenFull::DropNew
        },
        manual_clock: field(opts, atoms::manual_clock())?,
        per_chunk: LAYOUT.per_chunk,
    };
    let max: u64 = field(opts, atoms::max())?;
    let max = usize::try_from(max).map_err(|_| Error::BadArg)?;
    let (owner, notify) = (field(opts, atoms::owner())?, field(opts, atoms::notify())?);
    match Buckets::new(cfg, max) {
        Ok(buckets) => Ok(made(env, Box::new(buckets), owner, notify)),
        Err(err) => Ok(atoms::error_of(env, atoms::buffer_error(err))),
    }
}

/// The handle of a new `store`, armed for `notify` first when asked (it is
/// empty, so arming cannot find data).
fn made(env: Env<'_>, store: Box<Store>, owner: LocalPid, notify: bool) -> Term<'_> {
    if notify {
        let _empty = store.arm(Arm::Notify);
    }
    make(env, store, owner)
}
