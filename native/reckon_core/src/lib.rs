//! Pure-Rust building blocks of reckon, the node inspection toolkit.
//!
//! Nothing here knows about the BEAM: the NIF crate feeds values in bounded
//! chunks, so memory stays O(N + chunk) however many processes a node runs.

pub mod topn;
pub mod window;
