//! moq-lite driver for tokio.
//!
//! The transport/TLS layer and the glue to the sans-IO core live in the runtime-agnostic
//! `moqt-driver-quinn` crate, shared with `moqt-driver-smol`; this crate re-exports them and
//! supplies the tokio specifics ([`TokioResolver`], [`runtime`]).
//!
//! * The async moq-lite API at the crate root ([`Client::connect`], [`Server::accept`], the
//!   [`Session`] handle and its publisher/subscriber handles). Under a tokio runtime, quinn's
//!   runtime detection picks tokio, so the configs need no runtime; set `ClientConfig::resolver`
//!   to [`TokioResolver`] to resolve names with tokio instead of a helper thread, and
//!   `ClientConfig::tcp` to [`TokioTcp`] for `ws://` / `wss://` URLs ([`client_config`] does
//!   both).
//! * [`relay`]: the relay driver (`relay::Relay::start(config, runtime())`).
//! * [`transport`], [`tls`], [`connection`], [`io`], [`rt`]: the layers underneath, shared with
//!   `moqt-driver-smol`.
//!
//! The programs in `examples/` (broadcast, echo, native_quic, relay, clock) use only this API.

pub use moqt_driver_quinn::*;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;

/// quinn's tokio runtime, for configs that want it explicitly.
pub fn runtime() -> moqt_driver_quinn::Runtime {
    Arc::new(quinn::TokioRuntime)
}

/// Opens TCP connections with `tokio::net::TcpStream` (for `ws://`, `wss://` and the WebSocket
/// fallback), adapted to futures-io.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioTcp;

impl rt::TcpConnector for TokioTcp {
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<rt::BoxedStream>> {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream.compat()) as rt::BoxedStream)
        })
    }
}

/// A client config on tokio: [`runtime`], [`TokioResolver`] and [`TokioTcp`] (so `ws://` /
/// `wss://` URLs and the WebSocket fallback work), offering every version.
pub fn client_config(verification: Verification) -> ClientConfig {
    let mut config = ClientConfig::new(verification);
    config.runtime = Some(runtime());
    config.resolver = Some(Arc::new(TokioResolver));
    config.tcp = Some(Arc::new(TokioTcp));
    config
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
