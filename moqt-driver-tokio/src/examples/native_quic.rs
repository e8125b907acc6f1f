//! `native_quic`: the smallest moq-lite exchange over raw QUIC (no HTTP/3, no WebTransport): the
//! client dials `moqt://127.0.0.1:4445/nativequic`, the QUIC handshake negotiates a moq-lite
//! version by ALPN, the moq-lite session starts, and the client closes it with code 0; the server
//! reports each session and how it closed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::tls::Fingerprint;
use crate::{CloseInfo, Server};

/// The port both sides use by default.
pub const DEFAULT_PORT: u16 = 4445;
/// How long the server waits for a session to close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's default listen address.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
}

/// The client's default URL.
pub fn default_url() -> String {
    format!("moqt://127.0.0.1:{DEFAULT_PORT}/nativequic")
}

/// Binds a raw-QUIC-only server (moq-lite ALPNs, no `h3`) with a generated certificate.
pub fn bind(listen: SocketAddr) -> Result<(Server, Fingerprint)> {
    let (mut config, fingerprint) = super::server_config(listen)?;
    config.webtransport = false;
    let server = Server::bind(config).with_context(|| format!("cannot listen on {listen}"))?;
    Ok((server, fingerprint))
}

/// What the server saw of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReport {
    /// The negotiated version (`moq-lite-0N`).
    pub version: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// How the session closed.
    pub closed: CloseInfo,
}

/// Accepts sessions one at a time and waits for each to close; returns after `count` sessions if
/// given. Each report also goes to `on_session`.
pub async fn serve(
    mut server: Server,
    count: Option<u64>,
    mut on_session: impl FnMut(&SessionReport),
) -> Result<Vec<SessionReport>> {
    let mut reports = Vec::new();
    while count.is_none_or(|c| (reports.len() as u64) < c) {
        let Some(session) = server.accept().await else { break };
        let (version, peer) = (session.version().to_string(), session.connection().peer_addr());
        eprintln!("session from {peer}: {version} over {:?}", session.kind());
        let closed = match tokio::time::timeout(CLOSE_TIMEOUT, session.closed()).await {
            Ok(info) => info,
            Err(_) => {
                session.close(moqt_proto::session::session_code::TIMEOUT, "idle");
                session.closed().await
            }
        };
        let report = SessionReport { version, peer, closed };
        on_session(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Connects, then closes the session with code 0 and waits until the close is done; returns the
/// negotiated version and the close as the client saw it.
pub async fn client(url: &str, connect: &super::ConnectArgs) -> Result<(String, CloseInfo)> {
    let (client, session) = connect.connect(url).await?;
    let version = session.version().to_string();
    eprintln!("connected: {version} over {:?} to {}", session.kind(), session.connection().peer_addr());
    session.close(0, "done");
    let closed = tokio::time::timeout(CLOSE_TIMEOUT, session.closed()).await.context("close did not complete")?;
    // Wait until the CONNECTION_CLOSE is out, so the server learns at once.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, client.wait_idle()).await;
    Ok((version, closed))
}
