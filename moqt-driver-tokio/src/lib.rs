//! moq-lite driver for tokio.
//!
//! The transport/TLS layer and the glue to the sans-IO core live in the runtime-agnostic
//! `moqt-driver-quinn` crate, shared with `moqt-driver-smol`; this crate re-exports them and
//! supplies the tokio specifics ([`TokioResolver`], [`runtime`]).
//!
//! * [`moq`]: the async moq-lite API (`moq::Client::connect(url)`, `moq::Server::accept()`, the
//!   `moq::Session` handle). Under a tokio runtime, quinn's runtime detection picks tokio, so the
//!   configs need no runtime; set `ClientConfig::resolver` to [`TokioResolver`] to resolve names
//!   with tokio instead of a helper thread.
//! * [`relay`]: the relay driver (`relay::Relay::start(config, runtime())`).
//! * [`transport`], [`tls`], [`session`], [`io`], [`rt`]: the layers underneath, shared with
//!   `moqt-driver-smol`.
//! * [`examples`]: the logic of the `cargo run --example …` programs (broadcast, echo,
//!   native_quic, relay, clock), callable in-process.

pub use moqt_driver_quinn::{io, moq, relay, rt, session, tls, transport};

pub mod examples;
pub use moqt_driver_quinn::{
    Accepted, Client, ClientConfig, Fingerprint, Identity, RecvStream, Resolver, SendStream, Server, ServerConfig,
    Session, SessionError, StreamError, TlsError, TransportError, TransportKind, Verification, Written,
};

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;

/// quinn's tokio runtime, for configs that want it explicitly.
pub fn runtime() -> moqt_driver_quinn::Runtime {
    Arc::new(quinn::TokioRuntime)
}

/// Resolves host names with `tokio::net::lookup_host`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioResolver;

impl Resolver for TokioResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
    }
}
