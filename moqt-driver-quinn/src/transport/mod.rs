//! QUIC endpoints: one server socket for raw QUIC and WebTransport, and a client for both.
//!
//! This module owns version negotiation at the transport edge:
//! * raw QUIC: the TLS ALPN is the moq-lite version (`moq-lite-06` … `moq-lite-03`). The server's
//!   rustls picks the first entry of *its* list the client also offers; ours is newest-first, the
//!   same order clients use, so both sides normally agree on the newest common version.
//! * WebTransport (ALPN `h3`): the client lists versions in `wt-available-protocols`; the server
//!   picks the **first client-offered** one it supports ([`negotiate_wt_protocol`]) and always
//!   echoes it in `wt-protocol`. A request offering nothing we speak is refused with HTTP 400.
//!
//! The server side ([`Listener`], in `server.rs`) runs one accept task that drives every
//! connection's handshake concurrently (each bounded by a timeout) and applies the session
//! admission limits, so a slow peer never blocks others; finished sessions arrive on a channel
//! read by [`Listener::accept`]. The client resolves `moqt://` / `https://` URLs with the configured
//! [`Resolver`] and binds an ephemeral socket of the target's address family.
//!
//! Runtime-agnostic: sockets are wrapped, tasks spawned and timeouts run through the
//! [`quinn::Runtime`] in the config (or [`quinn::default_runtime`]); no tokio runtime feature is
//! used here.
//!
//! This module never parses moq-lite messages and never decides anything about paths beyond
//! reporting them: that belongs to the session layer above.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moqt_proto::Version;
use quinn::crypto::rustls::QuicClientConfig;
use url::Url;
use web_transport_quinn as wtq;

use crate::connection::{Connection, TransportKind};
use crate::limits::QuicLimits;
use crate::rt::{self, Resolver, Runtime, ThreadResolver};
use crate::tls::{Identity, TlsError, Verification};

/// The TLS ALPN of HTTP/3, which carries WebTransport.
pub const ALPN_H3: &str = "h3";

/// The port used when a URL names none.
pub const DEFAULT_PORT: u16 = 443;

/// Errors from binding, dialing or handshaking.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TLS material or configuration problem.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The rustls config cannot drive QUIC (it lacks a TLS 1.3 initial cipher suite).
    #[error("TLS config unusable for QUIC: {0}")]
    QuicTls(String),
    /// No version is enabled.
    #[error("no moq-lite version enabled")]
    NoVersions,
    /// The UDP socket could not be bound.
    #[error("cannot bind UDP socket on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The URL does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL text.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The URL scheme is none of `moqt`/`moql` (raw QUIC), `https` (WebTransport), `ws`/`wss`
    /// (WebSocket).
    #[error(
        "unsupported URL scheme {0:?}: use moqt:// (raw QUIC), https:// (WebTransport) or ws:// / wss:// (WebSocket)"
    )]
    UnsupportedScheme(String),
    /// Host name resolution failed.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Host name resolution returned no address.
    #[error("{0} resolved to no address")]
    NoAddress(String),
    /// quinn refused to start the connection (e.g. an invalid server name).
    #[error("cannot start connection to {addr}: {source}")]
    Connect {
        /// The server address.
        addr: SocketAddr,
        /// quinn's reason.
        source: quinn::ConnectError,
    },
    /// The QUIC or TLS handshake failed (unreachable, certificate refused, no common ALPN, ...).
    #[error("QUIC/TLS handshake with {addr} failed: {source}")]
    Handshake {
        /// The server address.
        addr: SocketAddr,
        /// quinn's reason; certificate refusals show up as a crypto transport error.
        source: quinn::ConnectionError,
    },
    /// The HTTP/3 SETTINGS or CONNECT exchange failed or was refused.
    #[error("WebTransport session setup with {addr} failed: {source}")]
    WebTransport {
        /// The server address.
        addr: SocketAddr,
        /// web-transport-quinn's reason (includes the HTTP status on refusal).
        source: wtq::ClientError,
    },
    /// The peer did not select one of our versions (missing or unknown ALPN / `wt-protocol`).
    #[error("peer selected no moq-lite version we offered (got {0:?})")]
    NoVersion(Option<String>),
    /// The whole connection setup took longer than the configured handshake timeout.
    #[error("connection setup timed out after {0:?}")]
    Timeout(Duration),
    /// No async runtime was given and none could be detected.
    #[error("no async runtime: pass one in the config or run inside tokio/smol")]
    NoRuntime,
    /// A `ws://` / `wss://` URL (or the WebSocket fallback) needs [`ClientConfig::tcp`].
    #[error("no TCP connector for WebSocket: set ClientConfig::tcp (the tokio and smol drivers provide one)")]
    NoTcp,
    /// The TCP connection (or its TLS handshake) failed.
    #[error("TCP connection to {addr} failed: {source}")]
    Tcp {
        /// The server address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The WebSocket upgrade or the QMux handshake failed.
    #[error("WebSocket session with {addr} failed: {source}")]
    WebSocket {
        /// The server address.
        addr: SocketAddr,
        /// Why.
        source: crate::websocket::WsConnectError,
    },
    /// Both QUIC and the WebSocket fallback failed.
    #[error("{quic}; WebSocket fallback: {websocket}")]
    Fallback {
        /// Why QUIC failed.
        quic: Box<TransportError>,
        /// Why the WebSocket failed.
        websocket: Box<TransportError>,
    },
}

fn pick_runtime(runtime: &Option<Runtime>) -> Result<Runtime, TransportError> {
    runtime.clone().or_else(rt::default_runtime).ok_or(TransportError::NoRuntime)
}

fn bind_endpoint(
    addr: SocketAddr,
    server: Option<(quinn::ServerConfig, &Identity)>,
    runtime: Runtime,
) -> Result<quinn::Endpoint, TransportError> {
    let socket = std::net::UdpSocket::bind(addr).map_err(|source| TransportError::Bind { addr, source })?;
    grow_buffers(&socket);
    // A server's stateless-reset key comes from its private key: restarted with the same
    // identity, it resets its predecessor's connections, so their clients learn at once (instead
    // of at their idle timeout) and reconnect.
    let endpoint = match &server {
        Some((_, identity)) => {
            // Both the reset key and the connection-ID key: an endpoint only resets packets
            // whose connection ID it recognises as one it could have issued.
            let secret = identity.derived_secret(b"moqt quic stateless reset key\0");
            let mut config =
                quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret)));
            let cid_key = u64::from_be_bytes(
                identity.derived_secret(b"moqt quic connection id key\0")[..8].try_into().expect("8 bytes"),
            );
            config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
            config
        }
        None => quinn::EndpointConfig::default(),
    };
    quinn::Endpoint::new(endpoint, server.map(|(s, _)| s), socket, runtime)
        .map_err(|source| TransportError::Bind { addr, source })
}

/// The socket buffer size asked for (the system caps it at `net.core.rmem_max` / `wmem_max`).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Asks for [`SOCKET_BUFFER`]-byte receive and send buffers: one socket carries every
/// connection of an endpoint, and with the default (about 200 KiB) a burst of a relay's
/// fan-out, or of its subscribers' ACKs, overflows it, and the lost packets come back as
/// retransmissions tens of milliseconds later (the tail of the latency).
fn grow_buffers(socket: &std::net::UdpSocket) {
    let Ok(state) = quinn::udp::UdpSocketState::new(socket.into()) else { return };
    if let Err(e) = state.set_recv_buffer_size(socket.into(), SOCKET_BUFFER) {
        tracing::debug!(%e, "cannot grow the socket's receive buffer");
    }
    if let Err(e) = state.set_send_buffer_size(socket.into(), SOCKET_BUFFER) {
        tracing::debug!(%e, "cannot grow the socket's send buffer");
    }
}

/// The QUIC transport parameters used unless a config supplies its own: [`QuicLimits::default`]
/// (10 s idle timeout with keep-alives every third of it, 1 MiB stream / 4 MiB connection receive
/// windows, 2 MiB send window, 1024 concurrent uni streams (one per group in flight) and 256 bidi
/// streams (one per subscription / announce interest)).
pub fn default_transport_config() -> quinn::TransportConfig {
    QuicLimits::default().transport_config()
}

mod server;
mod ws_client;

pub use ws_client::FALLBACK_DELAY;

pub use server::{Accepted, Listener, ServerConfig, WsAcceptor, INCOMING_BUFFER, INCOMING_BUFFER_TOTAL, MAX_INCOMING};

/// Picks the WebTransport sub-protocol: the first client-offered string that names a version in
/// `supported` (so the client's preference wins).
pub fn negotiate_wt_protocol(offered: &[String], supported: &[Version]) -> Option<Version> {
    offered.iter().filter_map(|p| Version::from_alpn(p.as_bytes())).find(|v| supported.contains(v))
}

fn dedup_versions(versions: &[Version]) -> Vec<Version> {
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        if !out.contains(v) {
            out.push(*v);
        }
    }
    out
}

fn negotiated_alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?.downcast::<quinn::crypto::rustls::HandshakeData>().ok()?.protocol
}

/// Connector settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How the server certificate is checked.
    pub verification: Verification,
    /// Versions offered, most preferred first (one entry pins the version).
    pub versions: Vec<Version>,
    /// Local address to bind; `None` picks an ephemeral port of the target's family (loopback
    /// targets get a loopback socket).
    pub bind: Option<SocketAddr>,
    /// Upper bound on resolution + QUIC handshake + HTTP/3 SETTINGS + CONNECT.
    pub handshake_timeout: Duration,
    /// QUIC transport parameters; `None` means [`default_transport_config`].
    pub transport: Option<Arc<quinn::TransportConfig>>,
    /// The runtime for sockets and timers; `None` means [`quinn::default_runtime`].
    pub runtime: Option<Runtime>,
    /// Host-name resolution; `None` means [`ThreadResolver`].
    pub resolver: Option<Arc<dyn Resolver>>,
    /// Opens TCP connections for `ws://` / `wss://` URLs and the WebSocket fallback; `None`
    /// means WebSocket is unavailable (the tokio and smol drivers' config helpers set one).
    pub tcp: Option<Arc<dyn crate::rt::TcpConnector>>,
    /// Limits of WebSocket (QMux) connections.
    pub websocket: crate::websocket::WsConfig,
    /// An `https://` connection falls back to WebSocket (`wss://`, same host and port) when
    /// QUIC has not connected within [`FALLBACK_DELAY`] or failed, as the browser libraries do;
    /// whichever connects first is used. Needs [`ClientConfig::tcp`]. Default on.
    pub websocket_fallback: bool,
}

impl ClientConfig {
    /// All versions (lite-06 first), a 10 s handshake timeout.
    pub fn new(verification: Verification) -> ClientConfig {
        ClientConfig {
            verification,
            versions: Version::ALL.to_vec(),
            bind: None,
            handshake_timeout: Duration::from_secs(10),
            transport: None,
            runtime: None,
            resolver: None,
            tcp: None,
            websocket: crate::websocket::WsConfig::default(),
            websocket_fallback: true,
        }
    }

    /// Offers only `version`.
    pub fn with_version(mut self, version: Version) -> ClientConfig {
        self.versions = vec![version];
        self
    }
}

/// Dials moq-lite servers over raw QUIC (`moqt://host:port[/path]`) or WebTransport
/// (`https://host:port/path`). Reuses one UDP socket per local bind address.
#[derive(Debug)]
pub struct Connector {
    versions: Vec<Version>,
    raw: quinn::ClientConfig,
    wt: quinn::ClientConfig,
    bind: Option<SocketAddr>,
    handshake_timeout: Duration,
    endpoints: Mutex<HashMap<SocketAddr, quinn::Endpoint>>,
    runtime: Runtime,
    resolver: Arc<dyn Resolver>,
    tcp: Option<Arc<dyn crate::rt::TcpConnector>>,
    websocket: crate::websocket::WsConfig,
    websocket_fallback: bool,
    /// TLS for `wss://` (ALPN `http/1.1`).
    wss: Arc<rustls::ClientConfig>,
}

impl Connector {
    /// Builds the TLS configs (loading roots now, so file errors surface here).
    pub fn new(config: ClientConfig) -> Result<Connector, TransportError> {
        let runtime = pick_runtime(&config.runtime)?;
        let resolver = config.resolver.clone().unwrap_or_else(|| Arc::new(ThreadResolver));
        let versions = dedup_versions(&config.versions);
        if versions.is_empty() {
            return Err(TransportError::NoVersions);
        }
        let transport = config.transport.clone().unwrap_or_else(|| Arc::new(default_transport_config()));
        let build = |alpns: &[&[u8]]| -> Result<quinn::ClientConfig, TransportError> {
            let tls = config.verification.client_config(alpns)?;
            let tls = QuicClientConfig::try_from(tls).map_err(|e| TransportError::QuicTls(e.to_string()))?;
            let mut quic = quinn::ClientConfig::new(Arc::new(tls));
            quic.transport_config(transport.clone());
            Ok(quic)
        };
        let alpns: Vec<&[u8]> = versions.iter().map(|v| v.alpn().as_bytes()).collect();
        let raw = build(&alpns)?;
        let wt = build(&[ALPN_H3.as_bytes()])?;
        let wss = Arc::new(config.verification.client_config(&[b"http/1.1"])?);
        Ok(Connector {
            versions,
            raw,
            wt,
            bind: config.bind,
            handshake_timeout: config.handshake_timeout,
            endpoints: Mutex::new(HashMap::new()),
            runtime,
            resolver,
            tcp: config.tcp.clone(),
            websocket: config.websocket.clone(),
            websocket_fallback: config.websocket_fallback,
            wss,
        })
    }

    /// Waits until every connection this client made has finished closing (its
    /// CONNECTION_CLOSE has been sent), so a process can exit without leaving peers to time out.
    pub async fn wait_idle(&self) {
        let endpoints: Vec<quinn::Endpoint> =
            self.endpoints.lock().map(|e| e.values().cloned().collect()).unwrap_or_default();
        for e in endpoints {
            e.wait_idle().await;
        }
    }

    /// The runtime this client runs on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The versions offered, most preferred first.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Connects to `url` (`moqt://`/`moql://` for raw QUIC, `https://` for WebTransport) and returns
    /// the session with its negotiated version.
    pub async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        let parsed =
            Url::parse(url).map_err(|e| TransportError::InvalidUrl { url: url.to_owned(), reason: e.to_string() })?;
        self.connect_url(&parsed).await
    }

    /// [`Connector::connect`] with an already parsed URL.
    pub async fn connect_url(&self, url: &Url) -> Result<Connection, TransportError> {
        let timeout = self.handshake_timeout;
        rt::timeout(&self.runtime, timeout, self.connect_inner(url))
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
    }

    async fn connect_inner(&self, url: &Url) -> Result<Connection, TransportError> {
        match url.scheme() {
            "ws" | "wss" => return self.connect_ws(url).await,
            "https" if self.websocket_fallback && self.tcp.is_some() => return self.connect_with_fallback(url).await,
            _ => self.connect_quic(url).await,
        }
    }

    async fn connect_quic(&self, url: &Url) -> Result<Connection, TransportError> {
        let kind = match url.scheme() {
            "moqt" | "moql" => TransportKind::RawQuic,
            "https" => TransportKind::WebTransport,
            other => return Err(TransportError::UnsupportedScheme(other.to_owned())),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => {
                return Err(TransportError::InvalidUrl { url: url.to_string(), reason: "no host".to_owned() });
            }
        };
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let addr = resolve(&*self.resolver, &host, port).await?;
        let endpoint = self.endpoint_for(addr)?;

        let config = match kind {
            TransportKind::RawQuic => self.raw.clone(),
            _ => self.wt.clone(),
        };
        tracing::debug!(%url, %addr, ?kind, versions = ?self.versions, "connecting");
        let connecting =
            endpoint.connect_with(config, addr, &host).map_err(|source| TransportError::Connect { addr, source })?;
        let conn = connecting.await.map_err(|source| TransportError::Handshake { addr, source })?;

        let session = match kind {
            TransportKind::RawQuic => {
                let alpn = negotiated_alpn(&conn);
                let version = alpn.as_deref().and_then(Version::from_alpn).filter(|v| self.versions.contains(v));
                let Some(version) = version else {
                    conn.close(0u32.into(), b"unsupported ALPN");
                    return Err(TransportError::NoVersion(alpn.map(|a| String::from_utf8_lossy(&a).into_owned())));
                };
                Connection::new(wtq::Session::raw(conn), version, TransportKind::RawQuic)
            }
            _ => {
                let request = wtq::proto::ConnectRequest::new(url.clone())
                    .with_protocols(self.versions.iter().map(|v| v.wt_protocol().to_owned()));
                let inner = wtq::Session::connect(conn, request)
                    .await
                    .map_err(|source| TransportError::WebTransport { addr, source })?;
                let selected = inner.response().and_then(|r| r.protocol.clone());
                let version = selected
                    .as_deref()
                    .and_then(|p| Version::from_alpn(p.as_bytes()))
                    .filter(|v| self.versions.contains(v));
                let Some(version) = version else {
                    // No wt-protocol: the server wants a legacy (lite-01/02) handshake we do not speak.
                    inner.close(0, b"no moq-lite version selected");
                    return Err(TransportError::NoVersion(selected));
                };
                Connection::new(inner, version, TransportKind::WebTransport)
            }
        };
        tracing::debug!(%addr, version = %session.version(), ?kind, "connected");
        Ok(session)
    }

    fn endpoint_for(&self, remote: SocketAddr) -> Result<quinn::Endpoint, TransportError> {
        let bind = self.bind.unwrap_or_else(|| match remote.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0),
            IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            IpAddr::V6(ip) if ip.is_loopback() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0),
            IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
        });
        let mut endpoints = self.endpoints.lock().expect("endpoint map poisoned");
        if let Some(endpoint) = endpoints.get(&bind) {
            return Ok(endpoint.clone());
        }
        let endpoint = bind_endpoint(bind, None, self.runtime.clone())?;
        endpoints.insert(bind, endpoint.clone());
        Ok(endpoint)
    }
}

async fn resolve(resolver: &dyn Resolver, host: &str, port: u16) -> Result<SocketAddr, TransportError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs = resolver
        .resolve(host, port)
        .await
        .map_err(|source| TransportError::Resolve { host: host.to_owned(), source })?;
    addrs.into_iter().next().ok_or_else(|| TransportError::NoAddress(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn wt_negotiation_prefers_the_client_order() {
        let all = Version::ALL;
        assert_eq!(negotiate_wt_protocol(&s(&["moq-lite-04", "moq-lite-06"]), &all), Some(Version::Lite04));
        assert_eq!(
            negotiate_wt_protocol(&s(&["moql", "moq-lite-05", "moq-lite-04"]), &[Version::Lite04, Version::Lite05]),
            Some(Version::Lite05)
        );
        assert_eq!(negotiate_wt_protocol(&s(&["moq-lite-06"]), &[Version::Lite04]), None);
        assert_eq!(negotiate_wt_protocol(&s(&["moqt-19", "moq-lite-06-wip"]), &all), None);
        assert_eq!(negotiate_wt_protocol(&[], &all), None);
    }
}
