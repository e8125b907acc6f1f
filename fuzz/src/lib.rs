//! Fuzz harness for moqt-proto. The logic lives in `harness.rs`, which
//! `moqt-proto/tests/fuzz_corpus.rs` also includes to replay the corpus under `cargo test`.

#[path = "harness.rs"]
mod harness;

pub use harness::*;
