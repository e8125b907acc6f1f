//! # moqt-proto
//!
//! The sans-IO core of moqt, an implementation of moq-lite (lite-03, lite-04, lite-05 and
//! lite-06). This crate holds no sockets, no clocks, no tasks and no locks: bytes and events
//! go in, messages and commands come out, and time is an argument.
//!
//! - [`coding`]: varints, strings, length framing, the incremental receive buffer, limits.
//! - [`message`]: every message of every version, one type each.
//! - [`stream`]: stream types and the per-stream decoder that sequences messages.
//! - [`path`]: broadcast paths and their two wire spellings.
//! - [`session`]: the session state machine (transport events in, commands and application
//!   events out), with typed handles and the delivery policy.
//! - [`relay`]: the [`Node`](relay::Node): many sessions (a relay) or one (a client), an origin
//!   of broadcasts, one upstream per track, fan-out, group cache, local publishers and
//!   subscribers.
//! - [`reconnect`]: when and where a client connects again (backoff, GOAWAY).
//! - [`timer`]: the deadline queue behind every timer.
//! - [`version`]: versions, ALPN strings and feature gates.
//! - `testing` (feature `testing`): the in-memory wire and network used by the tests, the
//!   benchmarks and the fuzz harness.
//!
//! # The run loop
//!
//! A driver owns a [`Session`] (or a [`Node`](relay::Node), the same loop with a session id on
//! every input and command) and a transport, and repeats, in this order:
//!
//! 1. **Input.** Every [`TransportEvent`] the transport has, each with the current time:
//!    [`Session::handle`]. The transport only reads a stream under a [`Command::Read`] grant, so
//!    what the core has not asked for stays in QUIC's flow control.
//! 2. **Timers.** If [`Session::poll_timeout`] has passed, [`Session::handle_timeout`].
//! 3. **Output.** Every [`Command`] from [`Session::poll_command`], in order; each is one transport
//!    call. A [`Command::Write`] carries `Bytes` clones of the queued data (never copies) and is
//!    answered later by one [`TransportEvent::Written`] saying how much the transport took; until
//!    then the bytes stay in the core, where the delivery policy can still drop a stale group.
//! 4. **Application events.** Every [`Event`] from [`Session::poll_event`].
//! 5. **Wait** for transport input, an application call, or the deadline from
//!    [`Session::poll_timeout`].
//!
//! Application calls ([`Session::subscribe`], [`Session::write_frame`], …) may happen at any
//! point; whatever they produce leaves in the next step 3. Here is the loop, with one turn per
//! call, running two sessions over the crate's in-memory [`Wire`](testing::Wire):
//!
//! ```
//! use std::time::Instant;
//! use moqt_proto::session::{Perspective, SubscribeParams};
//! use moqt_proto::testing::{Wire, WireOptions};
//! use moqt_proto::{Config, Event, Session, Version};
//!
//! /// One turn of the run loop for the session on `side` of `wire`.
//! fn turn(session: &mut Session, wire: &mut Wire, side: usize, events: &mut Vec<Event>) {
//!     let now = Instant::now();
//!     while let Some(event) = wire.poll_event(side) {
//!         session.handle(now, event); // 1. input
//!     }
//!     if session.poll_timeout().is_some_and(|at| at <= now) {
//!         session.handle_timeout(now); // 2. timers
//!     }
//!     while let Some(command) = session.poll_command() {
//!         wire.execute(side, command); // 3. output
//!     }
//!     events.extend(std::iter::from_fn(|| session.poll_event())); // 4. application events
//! }
//!
//! let now = Instant::now();
//! let mut client = Session::new(Config::new(Version::Lite06, Perspective::Client), now);
//! let mut server = Session::new(Config::new(Version::Lite06, Perspective::Server), now);
//! let mut wire = Wire::new(WireOptions::default());
//! let (mut client_events, mut server_events) = (Vec::new(), Vec::new());
//!
//! client.subscribe("room/alice".into(), "video", SubscribeParams::default()).unwrap();
//! let mut frames = Vec::new();
//! for _ in 0..10 {
//!     turn(&mut client, &mut wire, 0, &mut client_events);
//!     turn(&mut server, &mut wire, 1, &mut server_events);
//!     wire.transmit(); // 5. here the "network" moves bytes instead of waiting
//!     for event in server_events.drain(..) {
//!         if let Event::SubscribeRequest { publication, .. } = event {
//!             server.accept_subscription(publication, Default::default()).unwrap();
//!             let group = server.open_group(publication, 0).unwrap();
//!             server.write_frame(group, 0, "hello".into()).unwrap();
//!             server.finish_group(group).unwrap();
//!         }
//!     }
//!     frames.extend(client_events.drain(..).filter_map(|e| match e {
//!         Event::Frame { payload, .. } => Some(payload),
//!         _ => None,
//!     }));
//! }
//! assert_eq!(frames, ["hello"]);
//! ```
//!
//! The shape follows quinn-proto and str0m: one state machine, `&mut self` everywhere, time
//! passed in, output pulled. Peer misbehaviour never returns `Err` to the driver: it becomes a
//! reset or close command plus an event. `Result` is for the application's mistakes only.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod coding;
pub mod message;
pub mod path;
pub mod reconnect;
pub mod relay;
pub mod session;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timer;
pub mod version;

pub use coding::{DecodeError, Limits};
pub use message::Codec;
pub use path::Path;
pub use session::{
    Command, Config, Event, FetchId, GroupId, InterestId, Perspective, ProbeId, PublicationId, Session, StreamId,
    SubscriptionId, TrackRequestId, TransportEvent,
};
pub use stream::{Frame, Side, StreamDecoder, StreamEncoder, StreamMessage, StreamType};
pub use version::{Dialect, Version};

/// The repository README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
