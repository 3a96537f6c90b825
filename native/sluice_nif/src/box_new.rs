//! The NIFs that make boxes and buffers of buckets (see `boxes`).

use rustler::{Atom, Env, Error, LocalPid, NifResult, Term};
use sluice_core::buckets::{Buckets, Config, Order, WhenFull, Within};
use sluice_core::buffer::Kind;
use sluice_core::mailbox::{Arm, Mailbox};
use sluice_core::policy::{CodelConfig, Policy, Red};
use sluice_core::store::Store;

use crate::atoms;
use crate::boxes::{make, Envs, LAYOUT};
use nif_glue::clock::MS;

/// A box's drop policies as `box_new/6` gets them: `{MaxAgeMs,
/// CodelTargetMs, CodelIntervalMs, RedMin, RedMax, RedProb, ManualClock}`,
/// where 0 (or 0.0) turns a policy off.
type PolicyArg = (u64, u64, u64, u64, u64, f64, bool);

fn policy(
    (max_age, target, interval, red_min, red_max, prob, manual): PolicyArg,
) -> NifResult<Policy> {
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
        manual_clock: manual,
    })
}

/// A new box; `max_bytes` 0 means no byte budget; `notify`: armed for
/// `{mail, Box, new_data}` to the owner from the first post.
#[rustler::nif]
fn box_new(
    env: Env<'_>,
    kind: Atom,
    max: u64,
    max_bytes: u64,
    owner: LocalPid,
    policies: PolicyArg,
    notify: bool,
) -> NifResult<Term<'_>> {
    let kind = if kind == atoms::queue() {
        Kind::Queue
    } else if kind == atoms::stack() {
        Kind::Stack
    } else if kind == atoms::keep_old() {
        Kind::KeepOld
    } else {
        return Err(Error::BadArg);
    };
    let max = usize::try_from(max).map_err(|_| Error::BadArg)?;
    let max_bytes = (max_bytes > 0).then_some(max_bytes);
    let mailbox = Mailbox::new(kind, max, max_bytes, LAYOUT).map_err(|_| Error::BadArg)?;
    Ok(made(
        env,
        Store::Box(mailbox.with_policy(policy(policies)?)),
        owner,
        notify,
    ))
}

/// A new buffer of time buckets: `max_age` 0 means none; a manual clock
/// starts at 0 and moves with `buckets_set_time/2` only; `notify` as for
/// `box_new/6`.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn buckets_new(
    env: Env<'_>,
    max: u64,
    width_ms: u64,
    max_age_ms: u64,
    order: Atom,
    within: Atom,
    when_full: Atom,
    manual: bool,
    owner: LocalPid,
    notify: bool,
) -> NifResult<Term<'_>> {
    let pick = |a: Atom, yes: Atom, no: Atom| {
        if a == yes {
            Ok(true)
        } else if a == no {
            Ok(false)
        } else {
            Err(Error::BadArg)
        }
    };
    let newest = pick(order, atoms::newest_first(), atoms::oldest_first())?;
    let lifo = pick(within, atoms::lifo(), atoms::fifo())?;
    let oldest = pick(when_full, atoms::drop_oldest(), atoms::drop_new())?;
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
        manual_clock: manual,
        per_chunk: LAYOUT.per_chunk,
    };
    let max = usize::try_from(max).map_err(|_| Error::BadArg)?;
    let buckets = Buckets::new(cfg, max).map_err(|_| Error::BadArg)?;
    Ok(made(env, Store::Buckets(buckets), owner, notify))
}

/// The handle of a new `store`, armed for `notify` first when asked (it is
/// empty, so arming cannot find data).
fn made(env: Env<'_>, store: Store<Envs>, owner: LocalPid, notify: bool) -> Term<'_> {
    if notify {
        let _empty = store.arm(Arm::Notify);
    }
    make(env, store, owner)
}
