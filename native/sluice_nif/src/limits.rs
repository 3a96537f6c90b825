//! NIFs of `sluice_limit`'s rate limits: per-key GCRA over
//! `sluice_core::gcra`, keys being any term hashed here (64 bits from two
//! salted 32-bit hashes of the VM's).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustler::sys::{enif_hash, ErlNifHash};
use rustler::{Atom, Encoder, Env, Error, NifResult, Term};
use serde::{Deserialize, Serialize};
use sluice_core::gcra::{Checked, Limiter, LimiterImage, Rate, ShardImage};

use crate::atoms;
use crate::tool_ids::next_id;
use nif_glue::clock::{self, MS};
use nif_glue::map::{self, field};
use nif_glue::versioned::{Held, Payload, Versioned};

/// Live-object counter index of rate limiters.
pub const LIMITER_KIND: usize = 3;

/// A rate limiter resource: its state behind the versioned wrapper.
pub type SluiceLimiter = Versioned<State>;

/// A rate limiter's state.
pub struct State {
    /// A field only the test build has, so its layout differs.
    #[cfg(feature = "layout_b")]
    _marker: [u64; 2],
    /// Its number (see `tool_ids`), never reused.
    id: u64,
    limiter: Limiter,
    /// The time of a limiter with a manual clock (ns), or `None`.
    clock: Option<AtomicU64>,
}

// SAFETY: `limiter.v4` names this layout of `State` (v3: held by an
// `Arc`; v4: with an id), `limiter.v4b` the test build's; bumped with it.
// `LimiterWire` is version 1 of its interchange form.
unsafe impl Payload for State {
    const NAME: &'static std::ffi::CStr = c"sluice_limiter.v1";
    const KIND: usize = LIMITER_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "limiter.v4";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "limiter.v4b";
    const WIRE: u64 = 1;
    type Wire = LimiterWire;

    fn export(&self) -> LimiterWire {
        let i = self.limiter.image();
        let rate = |r: Rate| (r.interval, r.tolerance);
        LimiterWire {
            id: self.id,
            clock: self.clock.as_ref().map(|c| c.load(Ordering::Acquire)),
            rate: rate(i.rate),
            global: i.global.map(rate),
            global_tat: i.global_tat,
            per_shard: i.per_shard as u64,
            max_overrides: i.max_overrides as u64,
            shards: i
                .shards
                .into_iter()
                .map(|s| ShardWire {
                    entries: s.entries,
                    hand: s.hand as u64,
                    overrides: s.overrides.into_iter().map(|(k, r)| (k, rate(r))).collect(),
                    allowed: s.allowed,
                    refused: s.refused,
                    evicted: s.evicted,
                })
                .collect(),
        }
    }

    fn import(wire: LimiterWire) -> Option<Self> {
        let rate = |(interval, tolerance): (u64, u64)| Rate {
            interval,
            tolerance,
        };
        let shards = wire
            .shards
            .into_iter()
            .map(|s| {
                Some(ShardImage {
                    entries: s.entries,
                    hand: usize::try_from(s.hand).ok()?,
                    overrides: s.overrides.into_iter().map(|(k, r)| (k, rate(r))).collect(),
                    allowed: s.allowed,
                    refused: s.refused,
                    evicted: s.evicted,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let limiter = Limiter::from_image(&LimiterImage {
            rate: rate(wire.rate),
            global: wire.global.map(rate),
            global_tat: wire.global_tat,
            per_shard: usize::try_from(wire.per_shard).ok()?,
            max_overrides: usize::try_from(wire.max_overrides).ok()?,
            shards,
        })?;
        Some(State {
            #[cfg(feature = "layout_b")]
            _marker: [0; 2],
            id: wire.id,
            limiter,
            clock: wire.clock.map(AtomicU64::new),
        })
    }
}

/// A rate limiter as one build hands it to another (version 1): its
/// rates (`(interval, tolerance)`, ns), every key's arrival time in its
/// shard's order, the overrides, the counters, and a manual clock's time.
/// Keys are the VM's hashes of the terms, the same in every library of
/// the VM.
#[derive(Serialize, Deserialize)]
pub struct LimiterWire {
    id: u64,
    clock: Option<u64>,
    rate: (u64, u64),
    global: Option<(u64, u64)>,
    global_tat: u64,
    per_shard: u64,
    max_overrides: u64,
    shards: Vec<ShardWire>,
}

/// One shard of a [`LimiterWire`] (see `sluice_core::gcra::ShardImage`).
#[derive(Serialize, Deserialize)]
struct ShardWire {
    entries: Vec<(u64, u64)>,
    hand: u64,
    overrides: Vec<(u64, (u64, u64))>,
    allowed: u64,
    refused: u64,
    evicted: u64,
}

impl State {
    /// Its id (see `tool_ids`).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

fn get<'a>(term: Term<'a>) -> NifResult<Held<'a, State>> {
    SluiceLimiter::get(term)
}

/// A 64-bit hash of any term.
fn key(term: Term<'_>) -> u64 {
    let raw = term.as_c_arg();
    // SAFETY: hashing a valid term of the calling env has no other precondition.
    let (hi, lo) = unsafe {
        (
            enif_hash(ErlNifHash::ERL_NIF_INTERNAL_HASH, raw, 0x5eed_0001),
            enif_hash(ErlNifHash::ERL_NIF_INTERNAL_HASH, raw, 0x5eed_0002),
        )
    };
    (hi << 32) | (lo & 0xffff_ffff)
}

/// `{Limit, PeriodMs, Burst}` as a rate: `Err(too_fine)` when its
/// interval would be finer than 1 ns (or its burst longer than 2^64 ns);
/// `badarg` for a zero limit or burst or a period over 2^64 ns.
fn rate((limit, period_ms, burst): (u64, u64, u64)) -> NifResult<Result<Rate, Atom>> {
    let period = period_ms.checked_mul(MS).ok_or(Error::BadArg)?;
    if limit == 0 || burst == 0 {
        return Err(Error::BadArg);
    }
    Ok(Rate::new(limit, period, burst).ok_or(atoms::too_fine()))
}

/// A rate argument: `none`, or a rate as [`rate`] decodes it.
fn rate_or_none<'a>(env: Env<'a>, term: Term<'a>) -> NifResult<Result<Option<Rate>, Atom>> {
    if term == atoms::none().encode(env) {
        return Ok(Ok(None));
    }
    Ok(rate(term.decode()?)?.map(Some))
}

/// The time to use: the system's monotonic clock, or a manual one.
fn now(state: &State) -> u64 {
    match &state.clock {
        Some(clock) => clock.load(Ordering::Acquire),
        None => clock::now(),
    }
}

/// `rate_new(Opts)`: a limiter, from the map `#{per_key => {Limit,
/// PeriodMs, Burst}, global => {Limit, PeriodMs, Burst} | none, max_keys,
/// max_overrides, manual_clock}`; `{error, too_fine}` for a rate finer
/// than 1 ns, `badarg` for a missing or mistyped key.
#[rustler::nif]
fn rate_new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let per_key = rate(field(opts, atoms::per_key())?)?;
    let global = rate_or_none(env, field(opts, atoms::global())?)?;
    let max_keys: u64 = field(opts, atoms::max_keys())?;
    let max_overrides: u64 = field(opts, atoms::max_overrides())?;
    let manual: bool = field(opts, atoms::manual_clock())?;
    let max_keys = usize::try_from(max_keys).map_err(|_| Error::BadArg)?;
    let max_overrides = usize::try_from(max_overrides).map_err(|_| Error::BadArg)?;
    if max_keys == 0 {
        return Err(Error::BadArg);
    }
    let (per_key, global) = match (per_key, global) {
        (Ok(per_key), Ok(global)) => (per_key, global),
        (Err(why), _) | (_, Err(why)) => return Ok(atoms::error_of(env, why)),
    };
    let state = Arc::new(State {
        #[cfg(feature = "layout_b")]
        _marker: [0; 2],
        id: next_id(),
        limiter: Limiter::new(per_key, global, max_keys, max_overrides),
        clock: manual.then(|| AtomicU64::new(0)),
    });
    Ok(SluiceLimiter::make(env, state))
}

/// `ok`, `{error, {retry_after, Ms}}` (rounded up), or `{error,
/// {exceeds_burst, Burst}}` when the cost can never pass.
#[rustler::nif]
fn rate_check<'a>(
    env: Env<'a>,
    handle: Term<'a>,
    key_term: Term<'a>,
    cost: u64,
) -> NifResult<Term<'a>> {
    let l = get(handle)?;
    Ok(match l.limiter.check(key(key_term), cost, now(&l)) {
        Checked::Allowed => atoms::ok().encode(env),
        Checked::RetryAfter(ns) => {
            let ms = ns.div_ceil(MS);
            (atoms::error(), (atoms::retry_after(), ms)).encode(env)
        }
        Checked::ExceedsBurst(burst) => {
            (atoms::error(), (atoms::exceeds_burst(), burst)).encode(env)
        }
    })
}

/// Gives `Key` a rate of its own, or the limiter's again (`none`): `ok`,
/// `{error, too_many_overrides}`, or `{error, too_fine}` (see [`rate`]).
#[rustler::nif]
fn rate_override<'a>(
    env: Env<'a>,
    handle: Term<'a>,
    key_term: Term<'a>,
    spec: Term<'a>,
) -> NifResult<Term<'a>> {
    let l = get(handle)?;
    let rate = match rate_or_none(env, spec)? {
        Ok(rate) => rate,
        Err(why) => return Ok(atoms::error_of(env, why)),
    };
    Ok(match l.limiter.set_override(key(key_term), rate) {
        Ok(()) => atoms::ok().encode(env),
        Err(_) => (atoms::error(), atoms::too_many_overrides()).encode(env),
    })
}

/// Moves a manual clock to `Ms` (never back); `{error, system_clock}` for
/// a limiter on the system clock.
#[rustler::nif]
fn rate_set_time<'a>(env: Env<'a>, handle: Term<'a>, ms: u64) -> NifResult<Term<'a>> {
    let l = get(handle)?;
    let Some(clock) = l.clock.as_ref() else {
        return Ok(atoms::error_of(env, atoms::system_clock()));
    };
    clock.fetch_max(ms.saturating_mul(MS), Ordering::AcqRel);
    Ok(atoms::ok().encode(env))
}

/// Forgets idle keys now; returns how many went. It looks at every key,
/// so it runs on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn rate_sweep(handle: Term<'_>) -> NifResult<u64> {
    let l = get(handle)?;
    Ok(l.limiter.sweep(now(&l)) as u64)
}

/// `#{allowed, refused, evicted, keys, overrides}`.
#[rustler::nif]
fn rate_info<'a>(env: Env<'a>, handle: Term<'a>) -> NifResult<Term<'a>> {
    let l = get(handle)?;
    info(env, &l)
}

/// The map of [`rate_info`] for `l`.
pub(crate) fn info<'a>(env: Env<'a>, l: &State) -> NifResult<Term<'a>> {
    let s = l.limiter.stats();
    map::of(
        env,
        &[
            (atoms::allowed(), s.allowed.encode(env)),
            (atoms::refused(), s.refused.encode(env)),
            (atoms::evicted(), s.evicted.encode(env)),
            (atoms::keys(), s.keys.encode(env)),
            (atoms::overrides(), s.overrides.encode(env)),
        ],
    )
}
