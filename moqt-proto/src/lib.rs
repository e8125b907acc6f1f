//! # moqt-proto
//!
//! The sans-IO core of moqt, an implementation of moq-lite (lite-03, lite-04, lite-05 and
//! lite-06). This crate holds no sockets, no clocks, no tasks and no locks: bytes and events
//! go in, messages and commands come out.
//!
//! - [`coding`]: varints, strings, length framing, the incremental receive buffer, limits.
//! - [`message`]: every message of every version, one type each.
//! - [`stream`]: stream types and the per-stream decoder that sequences messages.
//! - [`path`]: broadcast paths and their two wire spellings.
//! - [`session`]: the session state machine (events in, commands and app events out).
//! - [`relay`]: the relay node: origin, routing, one upstream per track, fan-out, group cache.
//! - [`version`]: versions, ALPN strings and feature gates.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod coding;
pub mod message;
pub mod path;
pub mod relay;
pub mod session;
pub mod stream;
pub mod version;

pub use coding::{DecodeError, Limits};
pub use message::Codec;
pub use path::Path;
pub use session::{Command, Config, Event, Perspective, Session, StreamId, TransportEvent};
pub use stream::{Frame, Side, StreamDecoder, StreamEncoder, StreamMessage, StreamType};
pub use version::{Dialect, Version};
