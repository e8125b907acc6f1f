//! moq-lite over WebSocket: QMux (`moqt-qmux`, sans-IO) carried in WebSocket binary messages,
//! for browsers without a usable WebTransport and networks that block UDP.
//!
//! This module owns the WebSocket edge: which `Sec-WebSocket-Protocol` values are offered and
//! accepted ([`server_subprotocols`], [`select`], [`client_subprotocols`]), the QMux limits
//! derived from the QUIC ones ([`WsConfig::from_quic`], so a WebSocket session gets the same
//! flow-control windows, stream limits and send budget as a QUIC one), and starting a
//! connection on an upgraded byte stream ([`start`]) or dialing one ([`connect`]). The
//! connection itself is the shared state in `session.rs`, its handles in `handles.rs` and its
//! I/O task in `task.rs`; [`crate::connection::Connection`] wraps the handles so the session
//! layer and the relay cannot tell it from QUIC.
//!
//! Runtime-agnostic: the byte stream is any futures-io stream (the driver adapts its own TCP
//! type), the task runs on the [`Runtime`]. The HTTP server side (answering the upgrade) is the
//! embedding program's: it calls [`select`] and [`accept_key`], answers 101 and hands the
//! upgraded stream to [`crate::transport::WsAcceptor`].

mod handles;
mod session;
mod task;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite::handshake::client::generate_key;
use async_tungstenite::tungstenite::http;
use async_tungstenite::tungstenite::protocol::{Role as WsRole, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use moqt_proto::Version;
use moqt_qmux::{Role, Subprotocol, Version as Wire};
use url::Url;

pub use handles::{QmuxConnection, QmuxRecv, QmuxSend};
pub use task::CLOSE_LINGER;

use crate::connection::ConnectionError;
use crate::limits::QuicLimits;
use crate::rt::{self, BoxedStream, Runtime};
use session::Shared;
use task::KeepAlive;

/// The QMux drafts a server accepts, in its order of preference per application protocol
/// (moq-relay's order, then qmux-02 for clients that offer only that).
pub const SERVER_WIRE_VERSIONS: [Wire; 3] = [Wire::Qmux01, Wire::Qmux00, Wire::Qmux02];

/// The QMux drafts a client offers, most preferred first.
pub const CLIENT_WIRE_VERSIONS: [Wire; 3] = [Wire::Qmux01, Wire::Qmux02, Wire::Qmux00];

/// Settings of WebSocket connections.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// The QMux limits (windows, stream counts, send budget, idle timeout).
    pub qmux: moqt_qmux::Config,
    /// A WebSocket Ping goes out this often (default 5 s, as moq-dev's peers).
    pub ping_interval: Duration,
    /// A peer silent this long (not even a Pong) is dropped (default 30 s).
    pub silence_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig::from_quic(&QuicLimits::default())
    }
}

impl WsConfig {
    /// The same budgets as a QUIC connection with `limits`: receive windows, concurrent streams,
    /// send window and idle timeout.
    pub fn from_quic(limits: &QuicLimits) -> WsConfig {
        let qmux = moqt_qmux::Config {
            max_streams_bidi: limits.max_concurrent_bidi_streams.into(),
            max_streams_uni: limits.max_concurrent_uni_streams.into(),
            max_data: limits.receive_window.max(limits.stream_receive_window),
            max_stream_data_bidi_local: limits.stream_receive_window,
            max_stream_data_bidi_remote: limits.stream_receive_window,
            max_stream_data_uni: limits.stream_receive_window,
            idle_timeout: limits.idle_timeout.max(Duration::from_millis(100)),
            send_buffer: limits.send_window,
            ..moqt_qmux::Config::default()
        };
        WsConfig { qmux, ping_interval: Duration::from_secs(5), silence_timeout: Duration::from_secs(30) }
    }

    fn websocket(&self) -> WebSocketConfig {
        // Records above max_record_size are the QMux layer's error; this only stops a peer from
        // making tungstenite buffer a huge message first.
        let max = usize::try_from(self.qmux.max_record_size).unwrap_or(usize::MAX).saturating_add(1024);
        WebSocketConfig::default().max_message_size(Some(max)).max_frame_size(Some(max))
    }

    fn keep_alive(&self) -> KeepAlive {
        KeepAlive { ping_interval: self.ping_interval, idle_timeout: self.silence_timeout }
    }
}

/// The subprotocol a server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The `Sec-WebSocket-Protocol` value to echo (e.g. `qmux-01.moq-lite-05`).
    pub subprotocol: String,
    /// The QMux wire format.
    pub wire: Wire,
    /// The moq-lite version.
    pub version: Version,
}

impl Negotiated {
    /// Parses a `qmux-0N.<alpn>` value naming one of `versions`.
    pub fn parse(value: &str, versions: &[Version]) -> Option<Negotiated> {
        let sub = Subprotocol::parse(value)?;
        let version = Version::from_alpn(sub.alpn?.as_bytes()).filter(|v| versions.contains(v))?;
        sub.version.is_qmux().then(|| Negotiated { subprotocol: value.trim().to_owned(), wire: sub.version, version })
    }
}

/// Every `qmux-0N.<alpn>` value a server with `versions` accepts, in preference order: for each
/// version (newest first) the drafts of [`SERVER_WIRE_VERSIONS`]. The bare `qmux-0N` tokens and
/// the legacy `webtransport` format carry no moq-lite version (they mean lite-01/02's SETUP
/// negotiation, which this implementation does not speak), so they are not accepted.
pub fn server_subprotocols(versions: &[Version]) -> Vec<String> {
    versions.iter().flat_map(|v| SERVER_WIRE_VERSIONS.iter().filter_map(move |w| w.subprotocol(v.alpn()))).collect()
}

/// What a client with `versions` offers, most preferred first.
pub fn client_subprotocols(versions: &[Version]) -> Vec<String> {
    versions.iter().flat_map(|v| CLIENT_WIRE_VERSIONS.iter().filter_map(move |w| w.subprotocol(v.alpn()))).collect()
}

/// Picks the subprotocol for an upgrade request: the first entry of the server's list
/// ([`server_subprotocols`]) the client offered. `offered` is every `Sec-WebSocket-Protocol`
/// header value (comma-separated lists allowed). `None`: refuse the upgrade (HTTP 400).
pub fn select<'a>(offered: impl IntoIterator<Item = &'a str>, versions: &[Version]) -> Option<Negotiated> {
    let offered: Vec<&str> =
        offered.into_iter().flat_map(|h| h.split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
    server_subprotocols(versions)
        .into_iter()
        .find(|s| offered.contains(&s.as_str()))
        .and_then(|s| Negotiated::parse(&s, versions))
}

/// The `Sec-WebSocket-Accept` value for a request's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    async_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes())
}

/// Starts a QMux connection on an established WebSocket byte stream (the HTTP handshake is done)
/// and spawns its I/O task on `runtime`.
pub async fn start(
    stream: BoxedStream,
    role: Role,
    negotiated: &Negotiated,
    peer: SocketAddr,
    config: &WsConfig,
    runtime: &Runtime,
) -> Result<QmuxConnection, moqt_qmux::ConfigError> {
    let ws_role = match role {
        Role::Client => WsRole::Client,
        Role::Server => WsRole::Server,
    };
    let ws = WebSocketStream::from_raw_socket(stream, ws_role, Some(config.websocket())).await;
    launch(ws, role, negotiated, peer, config, runtime)
}

fn launch(
    ws: WebSocketStream<BoxedStream>,
    role: Role,
    negotiated: &Negotiated,
    peer: SocketAddr,
    config: &WsConfig,
    runtime: &Runtime,
) -> Result<QmuxConnection, moqt_qmux::ConfigError> {
    let conn = moqt_qmux::Connection::new(role, negotiated.wire, config.qmux.clone(), std::time::Instant::now())?;
    let shared = Arc::new(Shared::new(conn, peer, negotiated.subprotocol.clone()));
    let handle = QmuxConnection::new(shared.clone());
    rt::spawn(runtime, task::run(shared, ws, config.keep_alive(), runtime.clone()));
    Ok(handle)
}

/// Why a WebSocket client connection failed.
#[derive(Debug, thiserror::Error)]
pub enum WsConnectError {
    /// The HTTP upgrade failed (refused, not a WebSocket server, I/O error).
    #[error("WebSocket upgrade failed: {0}")]
    Upgrade(String),
    /// The server answered without one of the subprotocols we offered.
    #[error("server selected no moq-lite version we offered (got {0:?})")]
    NoVersion(Option<String>),
    /// Our QMux settings are invalid.
    #[error("qmux config: {0}")]
    Config(#[from] moqt_qmux::ConfigError),
    /// The connection closed before the server's transport parameters arrived.
    #[error("qmux handshake: {0}")]
    Handshake(crate::connection::ConnectionError),
}

/// Performs the client side of the WebSocket upgrade for `url` (`ws://` or `wss://`; the
/// request goes to its path and query) on `stream`, offering `versions`, then starts QMux and
/// waits for the server's transport parameters.
pub async fn connect(
    stream: BoxedStream,
    url: &Url,
    versions: &[Version],
    peer: SocketAddr,
    config: &WsConfig,
    runtime: &Runtime,
) -> Result<(QmuxConnection, Negotiated), WsConnectError> {
    let host = url.host_str().unwrap_or("localhost");
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut request_url = url.clone();
    if !matches!(request_url.scheme(), "ws" | "wss") {
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        let _ = request_url.set_scheme(scheme);
    }
    let offered = client_subprotocols(versions).join(", ");
    let request = http::Request::builder()
        .method("GET")
        .uri(request_url.as_str())
        .header("Host", authority)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key())
        .header("Sec-WebSocket-Protocol", offered)
        .body(())
        .map_err(|e| WsConnectError::Upgrade(e.to_string()))?;
    let (ws, response) = async_tungstenite::client_async_with_config(request, stream, Some(config.websocket()))
        .await
        .map_err(|e| WsConnectError::Upgrade(e.to_string()))?;
    let selected = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let negotiated = selected
        .as_deref()
        .and_then(|s| Negotiated::parse(s, versions))
        .filter(|n| client_subprotocols(versions).contains(&n.subprotocol));
    let Some(negotiated) = negotiated else {
        return Err(WsConnectError::NoVersion(selected));
    };
    let conn = launch(ws, Role::Client, &negotiated, peer, config, runtime)?;
    match conn.connected().await {
        Ok(()) => {}
        // The server accepted the upgrade and then closed the session with an application code
        // (a refused token, say), possibly before its transport parameters reached us: that is
        // a session that opened and closed, as over QUIC, and the session layer reports the code.
        Err(ConnectionError::Closed { .. }) => {}
        Err(e) => return Err(WsConnectError::Handshake(e)),
    }
    Ok((conn, negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_offer_lands_on_qmux01_lite05() {
        // What @moq/net 0.3.4 offers (docs/qmux.md §1), abridged.
        let offer = "qmux-02.moq-lite-05, qmux-01.moq-lite-05, qmux-00.moq-lite-05, qmux-02.moq-lite-04, \
                     qmux-01.moq-lite-04, qmux-00.moq-lite-04, qmux-02, qmux-01, qmux-00, webtransport";
        let n = select([offer], &Version::ALL).unwrap();
        assert_eq!(n.subprotocol, "qmux-01.moq-lite-05");
        assert_eq!((n.wire, n.version), (Wire::Qmux01, Version::Lite05));
        // Server preference: lite-06 first when offered, whatever the client's order.
        let n = select(["qmux-01.moq-lite-04", "qmux-00.moq-lite-06"], &Version::ALL).unwrap();
        assert_eq!(n.subprotocol, "qmux-00.moq-lite-06");
        // Only bare tokens, nothing, or unknown versions: refused.
        assert_eq!(select(["qmux-01, webtransport"], &Version::ALL), None);
        assert_eq!(select([], &Version::ALL), None);
        assert_eq!(select(["qmux-01.moqt-17"], &Version::ALL), None);
        assert_eq!(select(["qmux-01.moq-lite-06"], &[Version::Lite05]), None);
    }

    #[test]
    fn client_offer_is_accepted_by_our_server() {
        let offer = client_subprotocols(&Version::ALL).join(",");
        let n = select([offer.as_str()], &Version::ALL).unwrap();
        assert_eq!(n.version, Version::ALL[0]);
        assert_eq!(n.wire, Wire::Qmux01);
    }

    #[test]
    fn accept_key_matches_rfc6455() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
