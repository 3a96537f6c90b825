//! What the NIF libraries of this project (`sluice_nif`, `reckon_nif`)
//! share, so each is glue only:
//! - [`alloc::VmAlloc`]: a global allocator through `enif_alloc`, so the
//!   library's memory shows in `erlang:memory()`;
//! - [`map`]: options maps in and answers out with atom keys;
//! - [`raw_nif!`]: NIFs that read `argv` directly, with the panic guard;
//! - [`resource`]: resource types opened with takeover, so a newer build of
//!   a library keeps the objects of an older one working;
//! - [`versioned::Versioned`]: the one resource shape of a payload laid out
//!   by the compiler (the build fingerprint, then the state);
//! - [`nif_entry!`]: the library's `nif_init`, with `load`, `upgrade` and
//!   `unload` callbacks (rustler's `init!` has no `upgrade`);
//! - [`clock::now`]: the libraries' one clock (monotonic nanoseconds), and
//!   [`lane::current`]: the calling thread's lane.

pub mod alloc;
pub mod clock;
pub mod entry;
pub mod lane;
pub mod map;
pub mod raw;
pub mod resource;
pub mod versioned;
