//! Shared helpers for the moqt benchmarks.
