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
mod metrics;
mod top;
mod windows;

use nif_glue::resource;
use rustler::sys::ErlNifEnv;

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
    }
}

/// Opens the window, recorder and metric types, all three behind
/// `nif_glue::versioned::Versioned` (creating them, or taking over the
/// objects of an older build; a build with another layout refuses to load
/// while objects of the old one are alive).
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
