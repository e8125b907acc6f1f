//! Shared helpers for the moqt benchmarks.

pub mod fanout;
pub mod pair;
