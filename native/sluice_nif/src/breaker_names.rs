//! The breakers' names: a map from name terms to breaker resources, and the
//! queue of breakers whose state changed, kept by the NIF library (no
//! `persistent_term`, so installing or removing a breaker never makes the
//! VM scan every process for literals).
//!
//! A name is copied into an env of its own (process-independent), hashed
//! with the VM's internal hash and compared with `enif_is_identical`
//! (`=:=`, as `persistent_term` keys are). The map holds a reference on
//! each breaker it names ([`Kept`]), so a breaker lives while installed.
//! `ask/2` and `melt/1` on a name are one call here: hash, one shard's read
//! lock, the breaker's own ask or melt under it.
//!
//! # The change queue
//! Every operation on a breaker reads its flip count before and after
//! ([`noting`]); when it moved (the breaker blew, healed, or went disabled
//! while blown), or when the breaker was removed or replaced, the breaker
//! joins the queue unless it already waits there (its `queued` flag). The
//! breaker server drains it every 50 ms ([`breaker_changes`]): each entry
//! reads as the name and the state of whatever breaker that name has now
//! (`removed` when none), so the server's cost follows what changed, not
//! how many are installed.
//!
//! # Across an upgrade
//! The map and the queue live in one [`Registry`] whose address is stored
//! in slot [`REGISTRY_SLOT`] of `nif_glue`'s shared block, tagged with its
//! own layout ([`NAMES_LAYOUT`]), not the breakers': every library of that
//! layout finds the same names, whatever the layout of a breaker's state.
//! The map refers to breaker objects (their header is the same in every
//! build), and a breaker's state carries its name in its interchange form,
//! so a breaker converted to another build is found under its name, with
//! its `installed` and `queued` flags. A library of another names layout
//! would leave the registry alone (and leak it: a few KB) to start its
//! own, without the names: a change of [`Registry`] must bump the tag and
//! is one a release cannot make while breakers are installed.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use rustler::sys::{
    enif_alloc_env, enif_free_env, enif_get_uint64, enif_hash, enif_is_identical,
    enif_keep_resource, enif_make_copy, enif_make_tuple_from_array, enif_make_uint64,
    enif_release_resource, ErlNifEnv, ErlNifHash, ErlNifTerm,
};
use rustler::{Atom, Encoder, Env, NifResult, Term};
use sluice_core::breaker::{Breaker, State};
use sluice_core::names::{Changes, NameMap};

use crate::atoms;
use crate::breakers::{self, Inner, SluiceBreaker};
use nif_glue::clock;
use nif_glue::raw::{Fail, RawResult};
use nif_glue::raw_nif;
use nif_glue::resource;
use nif_glue::versioned::Held;

/// The fingerprint of the layout of [`Registry`] (the map and the queue
/// hold references to breaker objects, whose header is the same in every
/// build; so a build that changes a breaker's state keeps the names).
const NAMES_LAYOUT: u64 = resource::fingerprint("breaker_names.v1");

/// The slot of `nif_glue`'s shared block that holds the [`Registry`].
pub const REGISTRY_SLOT: usize = 0;

/// Most entries one [`breaker_changes`] call hands out.
const CHANGES_CAP: usize = 512;

/// A name term, copied into an env of its own.
pub struct Name {
    env: *mut ErlNifEnv,
    term: ErlNifTerm,
    hash: u64,
}

// SAFETY: the env is process-independent and owned by this value alone;
// its term is immutable once made and only read (hashed, compared,
// copied out), which the VM allows from any thread.
unsafe impl Send for Name {}
// SAFETY: as above: shared access only reads the term.
unsafe impl Sync for Name {}

impl Name {
    /// A copy of `term`.
    ///
    /// # Safety
    /// `term` must be a valid term of the calling NIF's env.
    unsafe fn copy(term: ErlNifTerm) -> Self {
        // SAFETY: a new env is allocated (freed by `Drop`); `term` is valid
        // (contract), and copying it into the new env is what
        // `enif_make_copy` is for.
        unsafe {
            let env = enif_alloc_env();
            let term = enif_make_copy(env, term);
            Name {
                env,
                term,
                hash: hash(term),
            }
        }
    }

    /// The name in the external term format (for another build).
    pub(crate) fn bytes(&self) -> Option<Vec<u8>> {
        crate::locks::term_bytes(self.env, self.term)
    }

    /// The name of [`Name::bytes`], in an env of its own.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (env, term) = crate::locks::env_term(bytes)?;
        Some(Name {
            env,
            term,
            hash: hash(term),
        })
    }

    /// Whether `term` is this name (`=:=`).
    fn is(&self, term: ErlNifTerm) -> bool {
        // SAFETY: both terms are valid for the duration of the call (ours
        // lives in our env, the other in the caller's).
        unsafe { enif_is_identical(self.term, term) != 0 }
    }

    /// The name, copied into `env`.
    fn copy_to(&self, env: *mut ErlNifEnv) -> ErlNifTerm {
        // SAFETY: `env` is the calling NIF's env and our term is valid.
        unsafe { enif_make_copy(env, self.term) }
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        // SAFETY: the env was allocated by `copy` and is freed once, here.
        unsafe { enif_free_env(self.env) };
    }
}

/// The VM's internal hash of `term`.
fn hash(term: ErlNifTerm) -> u64 {
    // SAFETY: hashing only reads a valid term.
    unsafe { enif_hash(ErlNifHash::ERL_NIF_INTERNAL_HASH, term, 0) }
}

/// A reference on a breaker resource, released when dropped.
pub struct Kept(NonNull<SluiceBreaker>);

// SAFETY: a resource reference may be kept and released from any thread,
// and `SluiceBreaker` is `Sync`.
unsafe impl Send for Kept {}
// SAFETY: as above.
unsafe impl Sync for Kept {}

impl Kept {
    fn new(b: &SluiceBreaker) -> Self {
        let obj = b.object();
        // SAFETY: `b` is a live breaker resource (8-byte aligned, so at the
        // start of its object); one more reference keeps it alive until
        // `drop` releases it.
        unsafe { enif_keep_resource(obj.cast_mut()) };
        Kept(NonNull::from(b))
    }

    /// The breaker's state, held (see `nif_glue::versioned`).
    fn get(&self) -> Option<Held<'_, Inner>> {
        // SAFETY: the reference this value holds keeps the object alive.
        unsafe { self.0.as_ref() }.enter()
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let obj: *const c_void = self.0.as_ptr().cast_const().cast();
        // SAFETY: releases the reference `new` took, once.
        unsafe { enif_release_resource(obj.cast_mut()) };
    }
}

/// The library-wide names and change queue; see the module documentation.
#[repr(C)]
pub struct Registry {
    /// [`NAMES_LAYOUT`] of the library that made it (first field in every build).
    build: u64,
    names: NameMap<Kept>,
    changes: Changes<Kept>,
}

static LOCAL: OnceLock<Registry> = OnceLock::new();

fn new_registry() -> Registry {
    Registry {
        build: NAMES_LAYOUT,
        names: NameMap::new(),
        changes: Changes::default(),
    }
}

/// The registry: the shared block's when it has one of this layout (made
/// on first use), this library's own otherwise.
fn registry() -> &'static Registry {
    let Some(slot) = resource::ext(REGISTRY_SLOT) else {
        return LOCAL.get_or_init(new_registry);
    };
    loop {
        let seen = slot.load(Ordering::Acquire);
        // SAFETY: a non-null slot points to a registry some build of this
        // library leaked there for good; its first field is the build in
        // every layout (`#[repr(C)]`).
        if !seen.is_null() && unsafe { seen.cast::<u64>().read() } == NAMES_LAYOUT {
            // SAFETY: same build, so same layout; never freed.
            return unsafe { &*seen.cast::<Registry>() };
        }
        let mine = Box::into_raw(Box::new(new_registry()));
        match slot.compare_exchange(seen, mine.cast(), Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just stored, never freed.
            Ok(_) => return unsafe { &*mine },
            // SAFETY: `mine` was not published; it is ours to free.
            Err(_) => drop(unsafe { Box::from_raw(mine) }),
        }
    }
}

/// Runs `op` on `b`'s breaker, queueing `b` when the breaker flipped
/// between blown and not meanwhile.
pub fn noting<R>(b: &Held<'_, Inner>, op: impl FnOnce(&Breaker) -> R) -> R {
    let before = b.breaker().flips();
    let r = op(b.breaker());
    if b.breaker().flips() != before {
        queue(b);
    }
    r
}

fn queue(b: &Held<'_, Inner>) {
    if b.name().is_some() && !b.queued().swap(true, Ordering::AcqRel) {
        registry().changes.push(Kept::new(b.resource()));
    }
}

/// Runs `f` on the breaker named `name`, if any.
fn with_name<R>(name: ErlNifTerm, f: impl FnOnce(&Held<'_, Inner>) -> R) -> Option<R> {
    let is = |k: &Kept| {
        k.get()
            .is_some_and(|b| b.name().is_some_and(|n| n.is(name)))
    };
    registry()
        .names
        .with(hash(name), is, |k| k.get().map(|b| f(&b)))
        .flatten()
}

/// `{error, not_found}`.
fn not_found(env: *mut ErlNifEnv) -> ErlNifTerm {
    let items = [atoms::error().as_c_arg(), atoms::not_found().as_c_arg()];
    // SAFETY: `env` is the calling NIF's env; two valid atoms.
    unsafe { enif_make_tuple_from_array(env, items.as_ptr(), 2) }
}

raw_nif!("breaker_ask_name", 1, breaker_ask_name);
raw_nif!("breaker_melt_name", 1, breaker_melt_name);
raw_nif!("breaker_ask_to_run", 1, breaker_ask_to_run);
raw_nif!("breaker_succeed_name", 1, breaker_succeed_name);
raw_nif!("breaker_report_name", 3, breaker_report_name);

/// `breaker_ask_name(Name)`: `ok`, `blown` or `{error, not_found}`.
fn breaker_ask_name(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [name] = *args else {
        return Err(Fail::BadArg);
    };
    Ok(match with_name(name, breakers::ask) {
        Some(answer) => answer.as_c_arg(),
        None => not_found(env),
    })
}

/// `breaker_melt_name(Name)`: `ok` or `{error, not_found}`.
fn breaker_melt_name(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [name] = *args else {
        return Err(Fail::BadArg);
    };
    Ok(match with_name(name, breakers::melt) {
        Some(_) => atoms::ok().as_c_arg(),
        None => not_found(env),
    })
}

/// Installs `Breaker` (fresh from `breaker_new/3`) under `Name`, replacing
/// the breaker of that name; `SlowMs` is `run/3`'s `slow` (0: infinity).
/// `badarg` for a breaker installed before.
#[rustler::nif]
fn breaker_install<'a>(name: Term<'a>, handle: Term<'a>, slow_ms: u64) -> NifResult<Atom> {
    let b = breakers::get(handle)?;
    // SAFETY: `name` is an argument of this call.
    let copy = unsafe { Name::copy(name.as_c_arg()) };
    let hash = copy.hash;
    if !b.name_it(copy, slow_ms) {
        return Err(rustler::Error::BadArg);
    }
    b.installed().store(true, Ordering::Release);
    let raw = name.as_c_arg();
    let is = |k: &Kept| k.get().is_some_and(|b| b.name().is_some_and(|n| n.is(raw)));
    let old = registry().names.insert(hash, is, Kept::new(b.resource()));
    if let Some(old) = old {
        retire(old);
    }
    Ok(atoms::ok())
}

/// A breaker the map let go: queued, so the server hears of its name.
fn retire(old: Kept) {
    if let Some(b) = old.get() {
        b.installed().store(false, Ordering::Release);
        queue(&b);
    }
}

/// Removes the breaker `Name`: `true`, or `false` when there is none.
#[rustler::nif]
fn breaker_remove(name: Term<'_>) -> bool {
    let raw = name.as_c_arg();
    let is = |k: &Kept| k.get().is_some_and(|b| b.name().is_some_and(|n| n.is(raw)));
    match registry().names.remove(hash(raw), is) {
        Some(old) => {
            retire(old);
            true
        }
        None => false,
    }
}

/// `{Breaker, SlowMs}` of the breaker `Name`, or `undefined`.
#[rustler::nif]
fn breaker_lookup<'a>(env: Env<'a>, name: Term<'a>) -> Term<'a> {
    let found = with_name(name.as_c_arg(), |b| (b.term(env), b.slow()));
    match found {
        Some(pair) => pair.encode(env),
        None => atoms::undefined().encode(env),
    }
}

/// `run/3`'s ask: when the breaker `Name` lets the call through, the time
/// it did (`nif_glue::clock::now`, ns, at least 1) for a breaker that
/// measures its runs (`run_times`, or `slow`), else 0; `blown`, or
/// `{error, not_found}`. The outcome is then reported by name with that
/// time (`breaker_report_name/3`).
fn breaker_ask_to_run(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [name] = *args else {
        return Err(Fail::BadArg);
    };
    let found = with_name(name, |b| {
        (breakers::ask(b) == atoms::ok()).then(|| b.timed())
    });
    Ok(match found {
        // SAFETY: `env` is this call's env.
        Some(Some(timed)) => unsafe {
            enif_make_uint64(env, if timed { clock::now().max(1) } else { 0 })
        },
        Some(None) => atoms::blown().as_c_arg(),
        None => not_found(env),
    })
}

/// `breaker_succeed_name(Name)`: reports a success; `ok` or `{error, not_found}`.
fn breaker_succeed_name(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [name] = *args else {
        return Err(Fail::BadArg);
    };
    Ok(match with_name(name, |b| noting(b, Breaker::succeed)) {
        Some(_) => atoms::ok().as_c_arg(),
        None => not_found(env),
    })
}

/// `breaker_report_name(Name, Melt, Start)`: `run/3`'s report of a fun
/// that started at `Start` (from `breaker_ask_to_run/1`; 0: not measured):
/// the time it took is recorded in the breaker's run times, and the
/// breaker melts when `Melt` is `true` or the run took longer than its
/// `slow`, else counts a success; `ok` or `{error, not_found}`. The clock
/// is read here and in the ask, so timing a run costs `run/3` no call of
/// its own.
fn breaker_report_name(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    let [name, melt, start_arg] = *args else {
        return Err(Fail::BadArg);
    };
    let melt = if melt == atoms::true_().as_c_arg() {
        true
    } else if melt == atoms::false_().as_c_arg() {
        false
    } else {
        return Err(Fail::BadArg);
    };
    let mut start: u64 = 0;
    // SAFETY: `env` and the argument are this call's.
    if unsafe { enif_get_uint64(env, start_arg, &mut start) } == 0 {
        return Err(Fail::BadArg);
    }
    let took = if start > 0 {
        Some(clock::now().saturating_sub(start))
    } else {
        None
    };
    let found = with_name(name, |b| {
        let slow = b.slow();
        let late = took.is_some_and(|ns| {
            b.runs().record(ns);
            slow > 0 && ns > slow.saturating_mul(clock::MS)
        });
        if melt || late {
            let _ = breakers::melt(b);
        } else {
            let _ = noting(b, Breaker::succeed);
        }
    });
    Ok(match found {
        Some(()) => atoms::ok().as_c_arg(),
        None => not_found(env),
    })
}

/// Calls `f` on each installed breaker with its name (at most `limit`
/// of them), one shard of the map at a time: O(installed), for a dirty
/// scheduler.
pub(crate) fn each_installed(limit: usize, mut f: impl FnMut(&Held<'_, Inner>, &Name)) {
    let mut seen = 0usize;
    registry().names.for_each(|k| {
        let Some(b) = k.get() else { return };
        if seen < limit {
            if let Some(name) = b.name() {
                seen += 1;
                f(&b, name);
            }
        }
    });
}

impl Name {
    /// The name as a term of `env`.
    pub(crate) fn term_in<'a>(&self, env: Env<'a>) -> Term<'a> {
        // SAFETY: the copy is made in `env`, valid while `env` is.
        unsafe { Term::new(env, self.copy_to(env.as_c_arg())) }
    }
}

fn blown(state: State) -> bool {
    matches!(state, State::Open { .. } | State::HalfOpen)
}

/// `[{Name, State | removed}]`: the breakers whose state changed (or that
/// were removed or replaced), oldest first, at most `CHANGES_CAP`; each
/// with the state of the breaker its name has now.
#[rustler::nif]
fn breaker_changes(env: Env<'_>) -> Term<'_> {
    let raw_env = env.as_c_arg();
    let batch = registry().changes.drain(CHANGES_CAP);
    let entries: Vec<Term<'_>> = batch
        .iter()
        .filter_map(|k| {
            let b = k.get()?;
            b.queued().store(false, Ordering::Release);
            let name = b.name()?;
            let state = with_name(name.term, |now| breakers::state_atom(now.breaker().state()))
                .unwrap_or_else(atoms::removed);
            let name_term = name.copy_to(raw_env);
            // SAFETY: the name was just made in the calling env.
            let name_term = unsafe { Term::new(env, name_term) };
            Some((name_term, state).encode(env))
        })
        .collect();
    drop(batch);
    entries.encode(env)
}

/// The names of the installed breakers that are blown (open or half-open);
/// O(installed), hence on a dirty scheduler (the breaker server calls it
/// once, as it starts).
#[rustler::nif(schedule = "DirtyCpu")]
fn breaker_blown(env: Env<'_>) -> Term<'_> {
    let mut names = Vec::new();
    registry().names.for_each(|k| {
        let Some(b) = k.get() else { return };
        if let Some(name) = b.name().filter(|_| blown(b.breaker().state())) {
            // SAFETY: the name was just made in the calling env.
            names.push(unsafe { Term::new(env, name.copy_to(env.as_c_arg())) });
        }
    });
    names.encode(env)
}

/// How many breakers are installed.
#[rustler::nif]
fn breaker_count() -> usize {
    registry().names.len()
}

/// How many breakers wait in the change queue.
#[rustler::nif]
fn breaker_queued() -> usize {
    registry().changes.len()
}
