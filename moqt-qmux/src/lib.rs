//! # moqt-qmux
//!
//! Sans-IO QMux: QUIC's streams, flow control and datagrams over a reliable channel, as
//! moq-dev's browser libraries (`@moq/qmux`) and moq-relay speak it over WebSocket. Versions:
//! draft-ietf-quic-qmux-00, -01, -02 and the older `webtransport` format. No sockets, no
//! clocks, no tasks: records and calls go in, records and events come out, and time is passed
//! in as `now`.
//!
//! - [`Connection`]: the state machine (streams, credit, datagrams, pings, timers, close).
//! - [`frame`], [`params`], [`record`], [`varint`]: the wire codec.
//! - [`version`]: versions and `Sec-WebSocket-Protocol` values.
//!
//! The wire facts and the choices made are in `docs/qmux.md`.
//!
//! ## Driving a connection
//!
//! A driver owns the WebSocket. It passes every binary message to
//! [`Connection::handle_record`] (one at a time, letting the application read in between, and
//! none while [`Connection::receive_paused`]), sends every record
//! [`Connection::poll_transmit`] returns as one binary message (while the socket takes more),
//! runs the application on [`Connection::poll_event`], and wakes up at
//! [`Connection::poll_timeout`]. Here two connections stand in for the two ends, with queues
//! for the socket:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::Instant;
//! use bytes::Bytes;
//! use moqt_qmux::{Config, Connection, Dir, Event, Role, Version};
//!
//! /// One turn of a driver loop: what arrived, then everything there is to send.
//! fn turn(conn: &mut Connection, now: Instant, inbox: &mut VecDeque<Bytes>, outbox: &mut VecDeque<Bytes>) {
//!     // 1. A WebSocket binary message arrived (or: conn.handle_transport_closed() on EOF).
//!     while let Some(message) = inbox.pop_front() {
//!         conn.handle_record(now, message);
//!     }
//!     // 2. A timer fired (an async driver sleeps until conn.poll_timeout()).
//!     if conn.poll_timeout().is_some_and(|t| t <= now) {
//!         conn.handle_timeout(now);
//!     }
//!     // 3. Send everything there is, one WebSocket binary message per record.
//!     while let Some(record) = conn.poll_transmit(now) {
//!         outbox.push_back(record);
//!     }
//! }
//!
//! let now = Instant::now();
//! let version = Version::Qmux01; // from the negotiated subprotocol, e.g. "qmux-01.moq-lite-05"
//! let mut client = Connection::new(Role::Client, version, Config::default(), now).unwrap();
//! let mut server = Connection::new(Role::Server, version, Config::default(), now).unwrap();
//! let (mut to_server, mut to_client) = (VecDeque::new(), VecDeque::new());
//!
//! let mut sent = false;
//! let mut received = Vec::new();
//! for _ in 0..10 {
//!     turn(&mut client, now, &mut to_client, &mut to_server);
//!     turn(&mut server, now, &mut to_server, &mut to_client);
//!     // The application reacts to events.
//!     while let Some(event) = client.poll_event() {
//!         if event == Event::Connected && !sent {
//!             let id = client.open(Dir::Uni).unwrap();
//!             client.write(id, Bytes::from_static(b"hello")).unwrap();
//!             client.finish(id).unwrap();
//!             sent = true;
//!         }
//!     }
//!     while let Some(event) = server.poll_event() {
//!         if let Event::Readable(id) = event {
//!             while let Ok(Some(chunk)) = server.read(id, usize::MAX) {
//!                 received.extend_from_slice(&chunk);
//!             }
//!         }
//!     }
//! }
//! assert_eq!(received, b"hello");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod conn;
mod error;
pub mod frame;
pub mod params;
pub mod record;
mod stream_id;
pub mod varint;
pub mod version;

pub use config::{Config, Framing};
pub use conn::{Connection, Event, Stats};
pub use error::{
    ConfigError, ConnectionError, DatagramError, OpenError, ReadError, TransportError, TransportErrorCode, WriteError,
};
pub use stream_id::{Dir, Role, StreamId, MAX_STREAM_COUNT};
pub use version::{Selection, Subprotocol, Version};

/// The most STREAM payload this crate puts in one frame (16352), whatever the record size:
/// moq-dev's released receivers reject more.
pub const MAX_STREAM_PAYLOAD: usize = conn::MAX_STREAM_PAYLOAD;
