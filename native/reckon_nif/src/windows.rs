//! Windows (`reckon:proc_window/3,4`, `reckon:inet_window/3`): the first
//! sample goes into a map in the library, the second streams against it.
//!
//! | call | what it does |
//! |---|---|
//! | `window_new(#{kind, n, cap, expected})` | a window keyed by local pids (`kind => pid`) or by non-negative integers (`integer`, port numbers), ranking `n`, listing `cap` born and died, with room for `expected` keys |
//! | `window_add(W, first \| second, Pairs)` | a chunk of `{Key, Value}` pairs of one sample; no `first` chunk after a `second` one |
//! | `window_finish(W)` | `#{top, born, died, born_count, died_count}` (dirty scheduler: it walks what is left of the map); the window is then spent |
//!
//! A window made by another build of this library is converted when this
//! build first holds it ([`WindowWire`]: its first sample's pairs left, its
//! ranking so far, its born keys), so a window in flight survives an
//! upgrade or a downgrade of the library.

use std::sync::Mutex;

use nif_glue::map::{self, field};
use nif_glue::versioned::{Held, Payload, Versioned};
use reckon_core::topn::TopNParts;
use reckon_core::window::{Diff, Window, WindowParts};
use rustler::{Atom, Encoder, Env, Error, ListIterator, LocalPid, NifResult, Term};
use serde::{Deserialize, Serialize};

use crate::{atoms, pid_from_raw, pid_raw, MAX_CHUNK, MAX_N};

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
#[cfg(not(feature = "layout_b"))]
pub struct State {
    window: Mutex<Option<Keyed>>,
}

/// A window's state, laid out otherwise (a marker first, the window
/// boxed), for the upgrade tests.
#[cfg(feature = "layout_b")]
pub struct State {
    marker: [u64; 3],
    window: Mutex<Option<Box<Keyed>>>,
}

#[cfg(feature = "layout_b")]
const MARKER: [u64; 3] = [0x6c61_796f_7574_5f62; 3];

impl State {
    fn new(keyed: Option<Keyed>) -> Self {
        #[cfg(not(feature = "layout_b"))]
        return State {
            window: Mutex::new(keyed),
        };
        #[cfg(feature = "layout_b")]
        return State {
            marker: MARKER,
            window: Mutex::new(keyed.map(Box::new)),
        };
    }

    /// The window, unless spent; `badarg` if its lock is poisoned.
    fn with<R>(&self, f: impl FnOnce(Option<&mut Keyed>) -> R) -> NifResult<R> {
        let mut guard = self.window.lock().map_err(|_| Error::BadArg)?;
        #[cfg(feature = "layout_b")]
        let keyed = guard.as_deref_mut().filter(|_| self.marker == MARKER);
        #[cfg(not(feature = "layout_b"))]
        let keyed = guard.as_mut();
        Ok(f(keyed))
    }

    /// Takes the window (it is spent afterwards).
    fn take(&self) -> NifResult<Option<Keyed>> {
        let taken = self.window.lock().map_err(|_| Error::BadArg)?.take();
        #[cfg(feature = "layout_b")]
        let taken = taken.map(|b| *b);
        Ok(taken)
    }
}

/// A window's pairs in the interchange form: keys as words (a local pid
/// as its term, which means the same in every build in this VM).
#[derive(Serialize, Deserialize)]
pub struct PartsWire {
    before: Vec<(u64, i64)>,
    second: bool,
    top_n: usize,
    top_seq: u64,
    top: Vec<(u64, i64, u64)>,
    born: Vec<(u64, i64)>,
    born_count: u64,
    cap: usize,
}

/// A window as one build hands it to another.
#[derive(Serialize, Deserialize)]
pub enum WindowWire {
    /// Finished (or its lock poisoned): `badarg` from then on.
    Spent,
    /// Keyed by local pids.
    Pids(PartsWire),
    /// Keyed by integers.
    Integers(PartsWire),
}

fn to_wire<K: std::hash::Hash + Ord + Clone>(w: &Window<K>, key: impl Fn(&K) -> u64) -> PartsWire {
    let p = w.parts();
    let pairs = |v: &[(K, i64)]| v.iter().map(|(k, x)| (key(k), *x)).collect();
    PartsWire {
        before: pairs(&p.before),
        second: p.second,
        top_n: p.top.n,
        top_seq: p.top.seq,
        top: p
            .top
            .entries
            .iter()
            .map(|(k, v, s)| (key(k), *v, *s))
            .collect(),
        born: pairs(&p.born),
        born_count: p.born_count,
        cap: p.cap,
    }
}

fn from_wire<K: std::hash::Hash + Ord>(w: PartsWire, key: impl Fn(u64) -> K) -> Option<Window<K>> {
    if w.top_n > MAX_N || w.cap > MAX_N {
        return None;
    }
    let pairs = |v: Vec<(u64, i64)>| v.into_iter().map(|(k, x)| (key(k), x)).collect();
    Some(Window::from_parts(WindowParts {
        before: pairs(w.before),
        second: w.second,
        top: TopNParts {
            n: w.top_n,
            seq: w.top_seq,
            entries: w.top.into_iter().map(|(k, v, s)| (key(k), v, s)).collect(),
        },
        born: pairs(w.born),
        born_count: w.born_count,
        cap: w.cap,
    }))
}

// SAFETY: `window.v3` names this layout of `State` (v3: behind the
// header of `Versioned`, with conversions; `window.v3b` the layout of the
// `layout_b` build, `window.v3w` of the `wire_b` build, whose `WIRE` 2
// stands for a form no other build reads); bumped with it. `WIRE` 1 is
// `WindowWire`.
unsafe impl Payload for State {
    const NAME: &'static std::ffi::CStr = c"reckon_window.v3";
    const KIND: usize = WINDOW_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "window.v3";
    #[cfg(all(feature = "layout_b", not(feature = "wire_b")))]
    const LAYOUT: &'static str = "window.v3b";
    #[cfg(feature = "wire_b")]
    const LAYOUT: &'static str = "window.v3w";
    #[cfg(not(feature = "wire_b"))]
    const WIRE: u64 = 1;
    #[cfg(feature = "wire_b")]
    const WIRE: u64 = 2;
    type Wire = WindowWire;

    fn export(&self) -> WindowWire {
        self.with(|keyed| match keyed {
            Some(Keyed::Pids(w)) => WindowWire::Pids(to_wire(w, pid_raw)),
            Some(Keyed::Integers(w)) => WindowWire::Integers(to_wire(w, |k| *k)),
            None => WindowWire::Spent,
        })
        .unwrap_or(WindowWire::Spent)
    }

    fn import(wire: WindowWire) -> Option<Self> {
        let keyed = match wire {
            WindowWire::Spent => None,
            WindowWire::Pids(w) => Some(Keyed::Pids(from_wire(w, pid_from_raw)?)),
            WindowWire::Integers(w) => Some(Keyed::Integers(from_wire(w, |k| k)?)),
        };
        Some(State::new(keyed))
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
    Ok(ReckonWindow::make(env, State::new(Some(keyed))))
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
    let added = window.with(|keyed| match keyed {
        Some(Keyed::Pids(w)) => add(w, first, pairs),
        Some(Keyed::Integers(w)) => add(w, first, pairs),
        None => Ok(false),
    })??;
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
    match window.take()? {
        Some(Keyed::Pids(w)) => encode(env, w.finish()),
        Some(Keyed::Integers(w)) => encode(env, w.finish()),
        None => Err(Error::BadArg),
    }
}
