//! Runtime-agnostic glue between the sans-IO `moqt-proto` core and quinn / web-transport-quinn,
//! shared by `moqt-driver-tokio` and `moqt-driver-smol`.
//!
//! * [`tls`]: certificates (load from PEM, generate browser-compatible self-signed ones),
//!   fingerprints, and client verification modes.
//! * [`transport`]: a [`Listener`](transport::Listener) that accepts raw QUIC (moq-lite ALPNs) and
//!   WebTransport (`h3`) on one UDP socket, and a [`Connector`](transport::Connector) that dials
//!   `moqt://` and `https://` URLs; both negotiate the moq-lite [`Version`](moqt_proto::Version).
//! * [`connection`]: the uniform [`Connection`] / [`SendStream`] / [`RecvStream`] handles over
//!   either transport.
//! * [`limits`]: quinn's buffers and stream limits ([`QuicLimits`]), session admission
//!   ([`Admission`]) and the listener's refusal counters.
//! * [`io`]: per-connection I/O ([`io::ConnectionIo`]): executes the core's commands on one
//!   connection and reports transport events, for any owner.
//! * [`driver`]: [`driver::NodeDriver`], a node and its connections' I/O in one task, with a
//!   waker per connection; the client API and the relay workers run on it.
//! * [`session`]: the async moq-lite API ([`Client`], [`Server`], [`Session`] and its
//!   publisher/subscriber handles), one owner task per connection running a one-session node.
//! * [`relay`]: the relay driver: one owner task per worker with a `moqt-proto` relay node and
//!   its connections' I/O ([`relay::RelayPool`] for several workers), metrics for `/metrics`.
//! * [`metrics`]: the Prometheus text of the relay's and the listener's counters.
//! * [`rt`]: spawning and timers through [`quinn::Runtime`], name resolution through a
//!   [`Resolver`]; this crate enables no async runtime itself.
//!
//! Nothing in this crate holds protocol logic: that is `moqt-proto`'s.

pub mod connection;
pub mod driver;
pub mod io;
pub mod limits;
pub mod metrics;
pub mod relay;
pub mod rt;
pub mod session;
mod sync;
pub mod tls;
pub mod transport;
pub mod websocket;

pub use connection::{
    Connection, ConnectionError, RecvStream, SendStream, StreamCredit, StreamError, TransportKind, Written,
};
pub use limits::{Admission, ListenerStats, QuicLimits, Refusal};
pub use rt::{Resolver, Runtime, ThreadResolver};
pub use session::{
    Announced, Announcement, BroadcastPublisher, BroadcastRequest, Client, CloseInfo, Error, FetchReader, FetchRequest,
    GroupPublisher, GroupReader, ProbeReader, Server, Session, SessionOptions, SubscribeParams, TrackPublisher,
    TrackReader,
};
pub use tls::{Fingerprint, Identity, TlsError, Verification};
pub use transport::{Accepted, ClientConfig, Connector, Listener, ServerConfig, TransportError};
