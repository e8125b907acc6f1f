//! Fuzz harness for moqt-proto (and moqt-auth's token input, in `token_harness.rs`). The logic lives in `harness.rs`, which
//! `moqt-proto/tests/fuzz_corpus.rs` also includes to replay the corpus under `cargo test`.

#[path = "harness.rs"]
mod harness;

pub use harness::*;

#[path = "session_harness.rs"]
mod session_harness;

pub use session_harness::session;

#[path = "token_harness.rs"]
mod token_harness;

pub use token_harness::token;
