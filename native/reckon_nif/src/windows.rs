//! Windows (`reckon:proc_window/3,4`, `reckon:inet_window/3`): the first
//! sample goes into a map in the library, the second streams against it.
//!
//! | call | what it does |
//! |---|---|
//! | `window_new(#{kind, n, cap, expected})` | a window keyed by local pids (`kind => pid`) or by non-negative integers (`integer`, port numbers), ranking `n`, listing `cap` born and died, with room for `expected` keys |
//! | `window_add(W, first \| second, Pairs)` | a chunk of `{Key, Value}` pairs of one sample; no `first` chunk after a `second` one |
//! | `window_finish(W)` | `#{top, born, died, born_count, died_count}` (dirty scheduler: it walks what is left of the map); the window is then spent |
//!
//! A window made by an older build of this library is taken over only by
//! the same build (see `nif_glue::resource::compatible`).

use std::sync::Mutex;

use nif_glue::map::{self, field};
use nif_glue::versioned::{Held, Payload, Versioned};
use reckon_core::window::{Diff, Window};
use rustler::{Atom, Encoder, Env, Error, ListIterator, LocalPid, NifResult, Term};

use crate::{atoms, MAX_CHUNK, MAX_N};

/// Live-object counter index of windows.
pub const WINDOW_KIND: usize = 0;
/// Most keys a window reserves room for up front.
const MAX_EXPECTED: usize = 1 << 24;

/// The keys of one window.
enum Keyed {
    Pids(Window<LocalPid>),
    Integers(Window<u64>),
}

/// A window resource: its state behind the versioned wrapper.
pub type ReckonWindow = Versioned<State>;

/// A window's state: the window until `window_finish` takes it.
pub struct State(Mutex<Option<Keyed>>);

// SAFETY: `window.v2` names this layout of `State` (v2: on the heap,
// behind the versioned wrapper, where v1 was inline); bumped with it.
unsafe impl Payload for State {
    const NAME: &'static std::ffi::CStr = c"reckon_window.v2";
    const KIND: usize = WINDOW_KIND;
    const LAYOUT: &'static str = "window.v2";
    // Not converted yet: objects of another build are refused.
    const WIRE: u64 = 0;
    type Wire = ();
    fn export(&self) {}
    fn import((): ()) -> Option<Self> {
        None
    }
}

/// `window_new(#{kind => pid | integer, n, cap, expected})`; `badarg` for
/// a missing or mistyped key.
#[rustler::nif]
fn window_new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let kind: Atom = field(opts, atoms::kind())?;
    let n: usize = field(opts, atoms::n())?;
    let cap: usize = field(opts, atoms::cap())?;
    let expected: usize = field(opts, atoms::expected())?;
    if n > MAX_N || cap > MAX_N {
        return Err(Error::BadArg);
    }
    let expected = expected.min(MAX_EXPECTED);
    let keyed = if kind == atoms::pid() {
        Keyed::Pids(Window::new(n, cap, expected))
    } else if kind == atoms::integer() {
        Keyed::Integers(Window::new(n, cap, expected))
    } else {
        return Err(Error::BadArg);
    };
    Ok(ReckonWindow::make(env, State(Mutex::new(Some(keyed)))))
}

/// Decodes a chunk: at most [`MAX_CHUNK`] `{Key, Value}` pairs.
fn chunk<'a, K: rustler::Decoder<'a>>(pairs: ListIterator<'a>) -> NifResult<Vec<(K, i64)>> {
    let mut out = Vec::new();
    for (i, item) in pairs.enumerate() {
        if i >= MAX_CHUNK {
            return Err(Error::BadArg);
        }
        out.push(item.decode()?);
    }
    Ok(out)
}

/// Adds a chunk to a window of either kind; false when the phase is wrong.
fn add<'a, K>(window: &mut Window<K>, first: bool, pairs: ListIterator<'a>) -> NifResult<bool>
where
    K: rustler::Decoder<'a> + std::hash::Hash + Ord,
{
    let pairs = chunk::<K>(pairs)?;
    if first {
        Ok(window.first(pairs))
    } else {
        window.second(pairs);
        Ok(true)
    }
}

/// `window_add(W, first | second, Pairs)`: `ok`, or `badarg` for a bad
/// pair, a chunk too long, a key of the other kind, a `first` chunk after a
/// `second` one, or a spent window.
#[rustler::nif]
fn window_add<'a>(
    window: Held<'a, State>,
    phase: Atom,
    pairs: ListIterator<'a>,
) -> NifResult<Atom> {
    let first = if phase == atoms::first() {
        true
    } else if phase == atoms::second() {
        false
    } else {
        return Err(Error::BadArg);
    };
    let mut guard = window.0.lock().map_err(|_| Error::BadArg)?;
    let added = match guard.as_mut() {
        Some(Keyed::Pids(w)) => add(w, first, pairs)?,
        Some(Keyed::Integers(w)) => add(w, first, pairs)?,
        None => false,
    };
    if added {
        Ok(rustler::types::atom::ok())
    } else {
        Err(Error::BadArg)
    }
}

fn encode<'a, K: Encoder>(env: Env<'a>, diff: Diff<K>) -> NifResult<Term<'a>> {
    map::of(
        env,
        &[
            (atoms::top(), diff.top.encode(env)),
            (atoms::born(), diff.born.encode(env)),
            (atoms::died(), diff.died.encode(env)),
            (atoms::born_count(), diff.born_count.encode(env)),
            (atoms::died_count(), diff.died_count.encode(env)),
        ],
    )
}

/// `window_finish(W)`: `#{top, born, died, born_count, died_count}`; `top` the
/// `n` keys of both samples by growth (largest first), `born` and `died`
/// `{Key, Value}` (at most `cap` each; the died largest first). The window
/// is spent afterwards (`badarg`).
#[rustler::nif(schedule = "DirtyCpu")]
fn window_finish<'a>(env: Env<'a>, window: Held<'a, State>) -> NifResult<Term<'a>> {
    let taken = window.0.lock().map_err(|_| Error::BadArg)?.take();
    match taken {
        Some(Keyed::Pids(w)) => encode(env, w.finish()),
        Some(Keyed::Integers(w)) => encode(env, w.finish()),
        None => Err(Error::BadArg),
    }
}
