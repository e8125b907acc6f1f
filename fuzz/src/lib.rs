//! Fuzz harnesses for moqt-proto, moqt-qmux, moqt-auth and moqt-media. The logic lives in
//! `harness.rs`, `session_harness.rs`, `qmux_harness.rs`, `token_harness.rs` and
//! `media_harness.rs`, which the crates' `fuzz_corpus` tests also include to replay the corpus
//! under `cargo test`.

#[path = "harness.rs"]
mod harness;

pub use harness::*;

#[path = "session_harness.rs"]
mod session_harness;

pub use session_harness::session;

#[path = "qmux_harness.rs"]
mod qmux_harness;

pub use qmux_harness::qmux_records;

#[path = "token_harness.rs"]
mod token_harness;

pub use token_harness::token;

#[path = "media_harness.rs"]
mod media_harness;

pub use media_harness::media_import;
