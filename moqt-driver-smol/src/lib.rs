//! moq-lite driver for smol.
//!
//! The same library as `moqt-driver-tokio`, on smol: the transport/TLS layer and all the glue to
//! the sans-IO core (per-connection I/O executing the core's commands, the owner task of the
//! async API, timers, the relay driver) live in the runtime-agnostic `moqt-driver-quinn` crate
//! and are re-exported here. This crate supplies only what is specific to smol: [`runtime`] (quinn's
//! [`quinn::SmolRuntime`]: tasks on smol's global executor, `async-io` timers and UDP sockets)
//! and [`SmolResolver`] (host names through `smol::net::resolve`). No tokio runtime is started.
//!
//! * The async moq-lite API at the crate root ([`Client::connect`] for `moqt://`, `https://`,
//!   `ws://` and `wss://`,
//!   [`Server::accept`], the [`Session`] handle to publish, subscribe, watch announcements,
//!   fetch, probe, send GOAWAY and close). Build the configs with [`client_config`] and
//!   [`server_config`], which set the smol runtime and resolver.
//! * [`relay`]: the relay driver (`relay::Relay::start(config, runtime())`).
//! * [`transport`], [`tls`], [`connection`], [`io`], [`rt`]: the layers underneath, shared with
//!   `moqt-driver-tokio`.
//!
//! ```no_run
//! use moqt_driver_smol::{Client, Verification};
//!
//! smol::block_on(async {
//!     let client = Client::new(moqt_driver_smol::client_config(Verification::SystemRoots)).unwrap();
//!     let session = client.connect("moqt://relay.example:4443").await.unwrap();
//!     let broadcast = session.publish("demo");
//!     let track = broadcast.create_track("seconds");
//!     # drop(track);
//! });
//! ```

// Everything runtime-agnostic, under the same paths as in `moqt-driver-tokio` (`session`, `relay`,
// `transport`, `tls`, `connection`, `io`, `rt`, and the root-level types).
pub use moqt_driver_quinn::*;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;

/// quinn's smol runtime: tasks on smol's global executor, `async-io` timers and sockets.
pub fn runtime() -> Runtime {
    Arc::new(quinn::SmolRuntime)
}

/// Resolves host names with `smol::net::resolve` (the std resolver on smol's blocking pool).
#[derive(Debug, Default, Clone, Copy)]
pub struct SmolResolver;

impl Resolver for SmolResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { smol::net::resolve((host.as_str(), port)).await })
    }
}

/// Opens TCP connections with `smol::net::TcpStream` (for `ws://`, `wss://` and the
/// WebSocket fallback); no tokio involved.
#[derive(Debug, Default, Clone, Copy)]
pub struct SmolTcp;

impl rt::TcpConnector for SmolTcp {
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<rt::BoxedStream>> {
        Box::pin(async move {
            let stream = smol::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as rt::BoxedStream)
        })
    }
}

/// A client config on smol: [`runtime`], [`SmolResolver`] and [`SmolTcp`], offering every
/// version.
pub fn client_config(verification: Verification) -> ClientConfig {
    let mut config = ClientConfig::new(verification);
    config.runtime = Some(runtime());
    config.resolver = Some(Arc::new(SmolResolver));
    config.tcp = Some(Arc::new(SmolTcp));
    config
}

/// A server config on smol: [`runtime`], raw QUIC and WebTransport, every version.
pub fn server_config(bind: SocketAddr, identity: Identity) -> ServerConfig {
    let mut config = ServerConfig::new(bind, identity);
    config.runtime = Some(runtime());
    config
}
