//! Runtime-agnostic glue between the sans-IO `moqt-proto` core and quinn / web-transport-quinn,
//! shared by `moqt-driver-tokio` and `moqt-driver-smol`.
//!
//! * [`tls`]: certificates (load from PEM, generate browser-compatible self-signed ones),
//!   fingerprints, and client verification modes.
//! * [`transport`]: a [`Server`] that accepts raw QUIC (moq-lite ALPNs) and WebTransport (`h3`) on
//!   one UDP socket, and a [`Client`] that dials `moqt://` and `https://` URLs; both negotiate the
//!   moq-lite [`Version`](moqt_proto::Version).
//! * [`session`]: the uniform [`Session`] / [`SendStream`] / [`RecvStream`] handles over either
//!   transport.
//! * [`io`]: per-connection I/O ([`io::ConnectionIo`]: transport events out, owned-chunk
//!   commands in) and the [`io::Pump`] mapping it to a `moqt-proto` core, built so a relay owner
//!   can reuse it.
//! * [`moq`]: the async moq-lite API ([`moq::Client`], [`moq::Server`], [`moq::Session`] and its
//!   publisher/subscriber handles), one owner task per connection.
//! * [`relay`]: the relay driver: one owner task with the `moqt-proto` relay node, one I/O task
//!   per connection, metrics for `/metrics`.
//! * [`rt`]: spawning and timers through [`quinn::Runtime`], name resolution through a
//!   [`Resolver`]; this crate enables no async runtime itself.
//!
//! Nothing in this crate holds protocol logic: that is `moqt-proto`'s.

pub mod io;
pub mod moq;
pub mod relay;
pub mod rt;
pub mod session;
mod sync;
pub mod tls;
pub mod transport;

pub use rt::{Resolver, Runtime, ThreadResolver};
pub use session::{RecvStream, SendStream, Session, SessionError, StreamError, TransportKind, Written};
pub use tls::{Fingerprint, Identity, TlsError, Verification};
pub use transport::{Accepted, Client, ClientConfig, Server, ServerConfig, TransportError};
