//! Shared support code for moqt-proto's integration tests.
//!
//! Use it from a test file with `mod support;`. Each test binary compiles this module on its own and uses only
//! part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod net;
pub mod pipe;
pub mod sim;
pub mod sim_session;
