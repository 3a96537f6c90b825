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

/// The rows of `tools_list/1` so far.
struct Rows<'a> {
    rows: Vec<Term<'a>>,
    left: usize,
    failed: Option<rustler::Error>,
}

impl<'a> Rows<'a> {
    /// Whether to go on.
    fn more(&self) -> bool {
        self.left > 0 && self.failed.is_none()
    }

    /// Adds a row (or the error making it); whether to go on.
    fn add(&mut self, made: NifResult<Term<'a>>) -> bool {
        if !self.more() {
            return false;
        }
        match made {
            Ok(r) => self.rows.push(r),
            Err(e) => self.failed = Some(e),
        }
        self.left -= 1;
        self.more()
    }
}

/// `tools_list(Limit)`: at most `Limit` (capped at [`MAX_TOOLS`]) maps
/// `#{kind => box | lock | limiter | breaker, id, info}`, `info` being
/// what `box_info/1`, `lock_info/1`, `rate_info/1` or `breaker_info/1`
/// answers for the object; a box also has `hist` (its sojourn times, ns)
/// and a breaker `name` and `hist` (its `run/3` times, ns). Closed boxes
/// and locks are left out. It walks every registry: on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn tools_list<'a>(env: Env<'a>, limit: u64) -> NifResult<Term<'a>> {
    let mut rows = Rows {
        rows: Vec::new(),
        left: usize::try_from(limit.min(MAX_TOOLS)).unwrap_or(0),
        failed: None,
    };
    boxes::SluiceBox::each(|sbox| {
        if sbox.store().is_closed() {
            return rows.more();
        }
        let snap = sbox.store().snapshot();
        rows.add(boxes::info(env, sbox, &snap).and_then(|info| {
            let h = hist(env, &snap.sojourn)?;
            row(env, atoms::box_(), sbox.id(), info, &[(atoms::hist(), h)])
        }))
    });
    locks::SluiceLock::each(|lock| {
        if !lock.is_open() {
            return rows.more();
        }
        rows.add(locks::info(env, lock).and_then(|i| row(env, atoms::lock(), lock.id(), i, &[])))
    });
    limits::SluiceLimiter::each(|l| {
        rows.add(limits::info(env, l).and_then(|i| row(env, atoms::limiter(), l.id(), i, &[])))
    });
    breaker_names::each_installed(rows.left, |b, name| {
        rows.add(breakers::info(env, b).and_then(|info| {
            let h = hist(env, &b.runs().snapshot())?;
            let extra = [(atoms::name(), name.term_in(env)), (atoms::hist(), h)];
            row(env, atoms::breaker(), b.id(), info, &extra)
        }));
    });
    if let Some(e) = rows.failed {
        return Err(e);
    }
    Ok(rows.rows.encode(env))
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
