//! Shared support code for moqt-proto's integration tests: the deterministic quinn-proto
//! simulator ([`sim`], its stream API [`sim_peer`]) and its adapter to the rig's run loop ([`sim_link`]). Everything else
//! (the in-memory wire, the network of sessions and nodes) is `moqt_proto::testing`.
//!
//! Use it from a test file with `mod support;`. Each test binary compiles this module on its own and uses only
//! part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod sim;
pub mod sim_link;
pub mod sim_peer;
