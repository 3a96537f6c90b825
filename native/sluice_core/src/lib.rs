//! Pure-Rust building blocks of sluice's overload tools.
//!
//! Nothing here knows about the BEAM: the NIF crate (`sluice_nif`) decodes
//! terms, calls into these types and encodes the answers. Time and randomness
//! are passed in where a test needs to control them.

// A core crate indexes its own structures, whose bounds its unit tests
// check; the NIF crates, which meet what a caller sent, deny these.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod arming;
pub mod batch;
pub mod breaker;
pub mod buckets;
pub mod buffer;
pub mod chunks;
pub mod drop;
pub mod gcra;
pub mod hist;
pub mod mailbox;
pub mod names;
pub mod picture;
pub mod policy;
pub mod rng;
pub mod slots;
mod sync;
