//! The client side of WebSocket sessions: `ws://` and `wss://` URLs (TCP through the
//! configured [`TcpConnector`](crate::rt::TcpConnector), TLS with `futures-rustls` and the same
//! certificate checks as QUIC), and the fallback of `https://` to `wss://` on the same host and
//! port when QUIC is slow or fails.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::{select, Either};
use futures_rustls::TlsConnector;
use rustls_pki_types::ServerName;
use url::Url;

use super::{resolve, Connector, TransportError};
use crate::connection::Connection;
use crate::rt::{self, BoxedStream};
use crate::websocket;

/// How long an `https://` connection gives QUIC before it also tries the WebSocket (the
/// browser libraries wait 500 ms too).
pub const FALLBACK_DELAY: Duration = Duration::from_millis(500);

/// The host of a URL, as a name or an IP literal without brackets.
fn host_of(url: &Url) -> Result<String, TransportError> {
    match url.host() {
        Some(url::Host::Domain(d)) => Ok(d.to_owned()),
        Some(url::Host::Ipv4(ip)) => Ok(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Ok(ip.to_string()),
        None => Err(TransportError::InvalidUrl { url: url.to_string(), reason: "no host".to_owned() }),
    }
}

impl Connector {
    /// Connects over WebSocket: TCP (and TLS for `wss://` / `https://`), the HTTP upgrade
    /// offering our versions, then QMux.
    pub(super) async fn connect_ws(&self, url: &Url) -> Result<Connection, TransportError> {
        let Some(tcp) = self.tcp.clone() else { return Err(TransportError::NoTcp) };
        let tls = matches!(url.scheme(), "wss" | "https");
        let host = host_of(url)?;
        let port = url.port_or_known_default().unwrap_or(super::DEFAULT_PORT);
        let addr: SocketAddr = resolve(&*self.resolver, &host, port).await?;
        tracing::debug!(%url, %addr, tls, versions = ?self.versions, "connecting over WebSocket");
        let stream = tcp.connect(addr).await.map_err(|source| TransportError::Tcp { addr, source })?;
        let stream: BoxedStream = if tls {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| TransportError::InvalidUrl { url: url.to_string(), reason: e.to_string() })?;
            let tls = TlsConnector::from(self.wss.clone())
                .connect(name, stream)
                .await
                .map_err(|source| TransportError::Tcp { addr, source })?;
            Box::new(tls)
        } else {
            stream
        };
        let (conn, negotiated) = websocket::connect(stream, url, &self.versions, addr, &self.websocket, &self.runtime)
            .await
            .map_err(|source| TransportError::WebSocket { addr, source })?;
        tracing::debug!(%addr, version = %negotiated.version, subprotocol = negotiated.subprotocol, "connected over WebSocket");
        Ok(Connection::websocket(conn, negotiated.version))
    }

    /// `https://`: QUIC (WebTransport) first; after [`FALLBACK_DELAY`], or at once when QUIC
    /// fails, the WebSocket too; the first to connect wins (the loser is dropped, closing it).
    pub(super) async fn connect_with_fallback(&self, url: &Url) -> Result<Connection, TransportError> {
        let quic = std::pin::pin!(self.connect_quic(url));
        let delay = std::pin::pin!(rt::Sleep::until(&self.runtime, std::time::Instant::now() + FALLBACK_DELAY));
        let quic = match select(quic, delay).await {
            Either::Left((result, _)) => match result {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    tracing::debug!(%url, "QUIC failed ({e}); trying WebSocket");
                    return self
                        .connect_ws(url)
                        .await
                        .map_err(|ws| TransportError::Fallback { quic: Box::new(e), websocket: Box::new(ws) });
                }
            },
            Either::Right(((), quic)) => quic,
        };
        tracing::debug!(%url, "QUIC slow; racing WebSocket");
        let ws = std::pin::pin!(self.connect_ws(url));
        match select(quic, ws).await {
            Either::Left((Ok(conn), _)) | Either::Right((Ok(conn), _)) => Ok(conn),
            Either::Left((Err(quic), ws)) => {
                ws.await.map_err(|ws| TransportError::Fallback { quic: Box::new(quic), websocket: Box::new(ws) })
            }
            Either::Right((Err(ws), quic)) => {
                quic.await.map_err(|quic| TransportError::Fallback { quic: Box::new(quic), websocket: Box::new(ws) })
            }
        }
    }
}
