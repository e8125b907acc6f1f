//! moq-lite driver for tokio: the transport and TLS layer.
//!
//! * [`tls`]: certificates (load from PEM, generate browser-compatible self-signed ones),
//!   fingerprints, and client verification modes.
//! * [`transport`]: a [`Server`] that accepts raw QUIC (moq-lite ALPNs) and WebTransport (`h3`) on
//!   one UDP socket, and a [`Client`] that dials `moqt://` and `https://` URLs; both negotiate the
//!   moq-lite [`Version`](moqt_proto::Version).
//! * [`session`]: the uniform [`Session`] / [`SendStream`] / [`RecvStream`] handles a later layer
//!   uses to move `Bytes` between the network and the sans-IO core.
//!
//! The moq-lite session glue (feeding `moqt-proto`), the CLI and HTTP endpoints are not here yet.

pub mod session;
pub mod tls;
pub mod transport;

pub use session::{RecvStream, SendStream, Session, SessionError, StreamError, TransportKind, Written};
pub use tls::{Fingerprint, Identity, TlsError, Verification};
pub use transport::{Accepted, Client, ClientConfig, Server, ServerConfig, TransportError};
