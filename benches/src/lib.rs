//! Shared helpers for the moqt benchmarks, all on the one in-memory rig
//! (`moqt_proto::testing`): a session pair, a relay fan-out and a relay full of timers.

pub mod counting;
pub mod fanout;
pub mod pair;
pub mod timers;
