//! NIF glue of the `reckon` OTP application: the bounded top-N and the
//! windows of `reckon_scan`, over `reckon_core`, and the flight recorder
//! of `reckon_metrics`, over `reckon_metrics_core`. Loaded by the `@private`
//! Erlang module `reckon_nif`.
//!
//! The Erlang side walks the node's processes (or ports) and hands their
//! values over in chunks of at most [`MAX_CHUNK`] pairs, so every call is
//! short and the memory held is O(N + chunk), or the first sample's map for
//! a window.

mod dump;
mod metric_states;
mod metrics;
mod top;
mod windows;

use nif_glue::resource;
use rustler::sys::{ErlNifEnv, ErlNifPid};
use rustler::{Encoder, Env, LocalPid, NifResult, Term};

#[global_allocator]
static ALLOCATOR: nif_glue::alloc::VmAlloc = nif_glue::alloc::VmAlloc;

nif_glue::nif_entry!(c"reckon_nif", open_resource_types);

/// Most `{Key, Value}` pairs one call takes.
pub const MAX_CHUNK: usize = 4096;
/// Most entries a top-N, or a list of born or died keys, may hold.
pub const MAX_N: usize = 100_000;

/// Atoms of the NIF answers, and the keys of the maps crossing the boundary.
mod atoms {
    rustler::atoms! {
        pid, integer, first, second,
        kind, n, cap, expected,
        top, born, died, born_count, died_count,
        generation, instances, window, recorder, metric,
    }
}

/// A local pid as a word: its term, which means the same in every build
/// of this library in this VM (for the interchange forms of the states).
pub(crate) fn pid_raw(pid: &LocalPid) -> u64 {
    // SAFETY: `ErlNifPid` is `#[repr(C)]`, one `ErlNifTerm`, a
    // transparent `usize`.
    let term = unsafe { std::ptr::read(std::ptr::from_ref(pid.as_c_arg()).cast::<usize>()) };
    term as u64
}

/// The local pid [`pid_raw`] gave.
pub(crate) fn pid_from_raw(raw: u64) -> LocalPid {
    let term = raw as usize;
    // SAFETY: as in `pid_raw`: a `#[repr(C)]` struct of one word, and the
    // word is a pid term of this VM (made by `pid_raw`).
    let pid = unsafe { std::ptr::read(std::ptr::from_ref(&term).cast::<ErlNifPid>()) };
    LocalPid::from_c_arg(pid)
}

/// `lib_info()`: `#{generation, instances, window, recorder, metric}`:
/// how many library instances attached to the shared block so far, how
/// many are loaded now, and the live objects of each kind.
#[rustler::nif]
fn lib_info(env: Env<'_>) -> NifResult<Term<'_>> {
    nif_glue::map::of(
        env,
        &[
            (atoms::generation(), resource::generation().encode(env)),
            (atoms::instances(), resource::instances().encode(env)),
            (
                atoms::window(),
                resource::live(windows::WINDOW_KIND).encode(env),
            ),
            (
                atoms::recorder(),
                resource::live(metrics::RECORDER_KIND).encode(env),
            ),
            (
                atoms::metric(),
                resource::live(metrics::METRIC_KIND).encode(env),
            ),
        ],
    )
}

/// Opens the window, recorder and metric types, all three behind
/// `nif_glue::versioned::Versioned` (creating them, or taking over the
/// objects of another build, converted when this build first holds them;
/// a build that cannot convert them refuses to load).
fn open_resource_types(env: *mut ErlNifEnv) -> bool {
    resource::compatible::<windows::ReckonWindow>()
        && resource::compatible::<metrics::ReckonRecorder>()
        && resource::compatible::<metrics::ReckonMetric>()
        // SAFETY: called by the entry's load and upgrade callbacks with their env.
        && unsafe { resource::open::<windows::ReckonWindow>(env) }
        // SAFETY: as above.
        && unsafe { resource::open::<metrics::ReckonRecorder>(env) }
        // SAFETY: as above.
        && unsafe { resource::open::<metrics::ReckonMetric>(env) }
}
