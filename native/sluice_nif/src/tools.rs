//! `sluice:tools/0`'s walk: every live box (and buffer of buckets), lock
//! (and concurrency limit), rate limiter and installed breaker of the
//! library, with the map its own info NIF answers, in one call and without
//! a message. Objects are found in the weak registries of `tool_ids` (and
//! the breakers' name map), so anonymous ones are listed too; the Erlang
//! side joins names and shapes the answer (`sluice_tools`).

use rustler::{Atom, Encoder, Env, NifResult, Term};
use sluice_core::hist::Histogram;

use crate::atoms;
use crate::boxes;
use crate::breaker_names;
use crate::breakers;
use crate::limits;
use crate::locks;
use nif_glue::map;

/// Most objects one call lists, whatever the caller asks.
pub const MAX_TOOLS: u64 = 100_000;

/// `#{count, sum, buckets => [{Upper, Count}]}` of `h`: its non-empty
/// buckets, lowest first, not cumulative (see `Histogram::nonzero_buckets`).
fn hist<'a>(env: Env<'a>, h: &Histogram) -> NifResult<Term<'a>> {
    let buckets: Vec<(u64, u64)> = h.nonzero_buckets().collect();
    let sum = u64::try_from(h.sum()).unwrap_or(u64::MAX);
    map::of(
        env,
        &[
            (atoms::count(), h.count().encode(env)),
            (atoms::sum(), sum.encode(env)),
            (atoms::buckets(), buckets.encode(env)),
        ],
    )
}

/// One row: `#{kind, id, info}` and, when given, `name` and `hist`.
fn row<'a>(
    env: Env<'a>,
    kind: Atom,
    id: u64,
    info: Term<'a>,
    extra: &[(Atom, Term<'a>)],
) -> NifResult<Term<'a>> {
    let mut pairs = vec![
        (atoms::kind(), kind.encode(env)),
        (atoms::id(), id.encode(env)),
        (atoms::info(), info),
    ];
    pairs.extend_from_slice(extra);
    map::of(env, &pairs)
}

/// `tools_list(Limit)`: at most `Limit` (capped at [`MAX_TOOLS`]) maps
/// `#{kind => box | lock | limiter | breaker, id, info}`, `info` being
/// what `box_info/1`, `lock_info/1`, `rate_info/1` or `breaker_info/1`
/// answers for the object; a box also has `hist` (its sojourn times, ns)
/// and a breaker `name` and `hist` (its `run/3` times, ns). Closed boxes
/// and locks are left out. It walks every registry: on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn tools_list(env: Env<'_>, limit: u64) -> NifResult<Term<'_>> {
    let mut left = usize::try_from(limit.min(MAX_TOOLS)).unwrap_or(0);
    let mut rows: Vec<Term<'_>> = Vec::new();
    let found = boxes::REGISTRY.live(left, |b| !b.store().is_closed());
    for (id, sbox) in &found {
        let snap = sbox.store().snapshot();
        let info = boxes::info(env, sbox, &snap)?;
        let h = hist(env, &snap.sojourn)?;
        rows.push(row(env, atoms::box_(), *id, info, &[(atoms::hist(), h)])?);
    }
    drop(found);
    left = left.saturating_sub(rows.len());
    let found = locks::LOCKS.live(left, |l| l.is_open());
    for (id, lock) in &found {
        rows.push(row(env, atoms::lock(), *id, locks::info(env, lock)?, &[])?);
    }
    left = left.saturating_sub(found.len());
    drop(found);
    let found = limits::LIMITERS.live(left, |_| true);
    for (id, l) in &found {
        rows.push(row(env, atoms::limiter(), *id, limits::info(env, l)?, &[])?);
    }
    left = left.saturating_sub(found.len());
    drop(found);
    let mut failed = None;
    breaker_names::each_installed(left, |b, name| {
        let made = breakers::info(env, b).and_then(|info| {
            let h = hist(env, &b.runs().snapshot())?;
            let extra = [(atoms::name(), name.term_in(env)), (atoms::hist(), h)];
            row(env, atoms::breaker(), b.id(), info, &extra)
        });
        match made {
            Ok(r) => rows.push(r),
            Err(e) => failed = Some(e),
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(rows.encode(env))
}

/// `lock_id(Lock)`: the id of a lock (or concurrency limit) resource.
#[rustler::nif]
fn lock_id(handle: Term<'_>) -> NifResult<u64> {
    Ok(locks::SluiceLock::get(handle)?.id())
}

/// `rate_id(Limiter)`: the id of a rate limiter resource.
#[rustler::nif]
fn rate_id(handle: Term<'_>) -> NifResult<u64> {
    Ok(limits::SluiceLimiter::get(handle)?.id())
}
