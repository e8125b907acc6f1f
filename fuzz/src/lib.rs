//! Fuzz harnesses for moqt-proto and moqt-qmux. The logic lives in `harness.rs`,
//! `session_harness.rs` and `qmux_harness.rs`, which `moqt-proto/tests/fuzz_corpus.rs` and
//! `moqt-qmux/tests/fuzz_corpus.rs` also include to replay the corpus under `cargo test`.

#[path = "harness.rs"]
mod harness;

pub use harness::*;

#[path = "session_harness.rs"]
mod session_harness;

pub use session_harness::session;

#[path = "qmux_harness.rs"]
mod qmux_harness;

pub use qmux_harness::qmux_records;
