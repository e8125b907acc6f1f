//! `native_quic`: the smallest moq-lite exchange over raw QUIC (no HTTP/3, no WebTransport): the
//! client dials `moqt://127.0.0.1:4445/nativequic`, the QUIC handshake negotiates a moq-lite
//! version by ALPN, the moq-lite session starts, and the client closes it with code 0; the server
//! reports each session and how it closed. See `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example native_quic -- server [--listen 127.0.0.1:4445] [--count N]
//! cargo run -p moqt-driver-tokio --example native_quic -- client [URL] --fingerprint HEX
//! ```

pub mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use common::ConnectArgs;
use moqt_driver_tokio::tls::Fingerprint;
use moqt_driver_tokio::{CloseInfo, Server};

/// The port both sides use by default.
pub const DEFAULT_PORT: u16 = 4445;
/// How long either side waits for a session to close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds a raw-QUIC-only server (moq-lite ALPNs, no `h3`) with a generated certificate.
pub fn bind(listen: SocketAddr) -> Result<(Server, Fingerprint)> {
    let (mut config, fingerprint) = common::server_config(listen)?;
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
pub async fn client(url: &str, connect: &ConnectArgs) -> Result<(String, CloseInfo)> {
    let (endpoint, session) = connect.connect(url).await?;
    let version = session.version().to_string();
    eprintln!("connected: {version} over {:?} to {}", session.kind(), session.connection().peer_addr());
    session.close(0, "done");
    let closed = tokio::time::timeout(CLOSE_TIMEOUT, session.closed()).await.context("close did not complete")?;
    // Wait until the CONNECTION_CLOSE is out, so the server learns at once.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, endpoint.wait_idle()).await;
    Ok((version, closed))
}

/// A raw-QUIC moq-lite handshake and a clean close.
#[derive(Parser)]
enum Mode {
    /// Accept raw-QUIC sessions and report how each closed.
    Server {
        #[arg(long, default_value_t = common::loopback(DEFAULT_PORT))]
        listen: SocketAddr,
        /// Exit after this many sessions.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Connect, then close cleanly.
    Client {
        /// moqt://host:port/path.
        #[arg(default_value_t = format!("moqt://127.0.0.1:{DEFAULT_PORT}/nativequic"))]
        url: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Mode::parse() {
        Mode::Server { listen, count } => {
            let (server, fingerprint) = bind(listen)?;
            common::print_ready("native_quic", server.local_addr(), "raw QUIC only", &fingerprint, "client");
            serve(server, count, |r| {
                println!(
                    "session from {}: {}, closed with code {} {:?}",
                    r.peer, r.version, r.closed.code, r.closed.reason
                )
            })
            .await?;
            Ok(())
        }
        Mode::Client { url, connect } => {
            let (version, closed) = client(&url, &connect).await?;
            println!("handshake ok: {version}; closed with code {} {:?}", closed.code, closed.reason);
            Ok(())
        }
    }
}
