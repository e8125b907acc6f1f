//! Fuzz harness for moqt-proto and moqt-media. The logic lives in `harness.rs`, which
//! `moqt-proto/tests/fuzz_corpus.rs` also includes to replay the corpus under `cargo test`.

#[path = "harness.rs"]
mod harness;

pub use harness::*;

#[path = "session_harness.rs"]
mod session_harness;

pub use session_harness::session;

#[path = "media_harness.rs"]
mod media_harness;

pub use media_harness::media_import;
