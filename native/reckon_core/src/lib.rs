//! Pure-Rust building blocks of reckon, the node inspection toolkit.
//!
//! Nothing here knows about the BEAM: the NIF crate feeds values in bounded
//! chunks, so memory stays O(N + chunk) however many processes a node runs.

// A core crate indexes its own structures, whose bounds its unit tests
// check; the NIF crates, which meet what a caller sent, deny these.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod topn;
pub mod trace_limit;
pub mod window;
