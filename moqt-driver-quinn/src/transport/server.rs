//! The server side: [`Listener`] accepts raw QUIC and WebTransport on one UDP socket. One accept
//! task drives every handshake concurrently (each bounded by the handshake timeout), applies the
//! [`Admission`] limits (sessions node-wide and per address, concurrent handshakes) and counts
//! what it refused in [`ListenerStats`]; finished sessions arrive on a channel read by
//! [`Listener::accept`]. A connection counts against the limits from its first packet until it
//! has closed.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::task::Poll;

use futures::channel::mpsc;
use futures::future::{AbortHandle, BoxFuture};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use moqt_proto::session::session_code;
use moqt_proto::Version;
use quinn::crypto::rustls::QuicServerConfig;
use url::Url;
use web_transport_quinn as wtq;

use super::{
    bind_endpoint, dedup_versions, negotiate_wt_protocol, negotiated_alpn, pick_runtime, TransportError, ALPN_H3,
};
use crate::connection::{Connection, StreamCredit, TransportKind};
use crate::limits::{address_key, Admission, Gate, ListenerStats, Refusal};
use crate::rt::BoxedStream;
use crate::rt::{self, Runtime};
use crate::tls::Identity;
use crate::websocket::{self, Negotiated, WsConfig};

/// Connection attempts quinn keeps before the accept loop has seen them.
pub const MAX_INCOMING: usize = 4096;
/// Bytes quinn buffers for one connection attempt before it is accepted (0-RTT, handshake).
pub const INCOMING_BUFFER: usize = 64 << 10;
/// Bytes quinn buffers for all connection attempts before they are accepted.
pub const INCOMING_BUFFER_TOTAL: usize = 16 << 20;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The UDP address to bind (e.g. `127.0.0.1:0`, `[::]:4443`).
    pub bind: SocketAddr,
    /// The certificate chain and key presented to clients.
    pub identity: Identity,
    /// Versions accepted, in the server's preference order (used for raw-QUIC ALPN selection).
    pub versions: Vec<Version>,
    /// Accept raw QUIC connections (moq-lite ALPNs).
    pub raw_quic: bool,
    /// Accept WebTransport sessions (ALPN `h3`).
    pub webtransport: bool,
    /// Upper bound on QUIC handshake + HTTP/3 SETTINGS + CONNECT for one connection.
    pub handshake_timeout: Duration,
    /// QUIC transport parameters; `None` means [`QuicLimits::server_transport_config`] of the
    /// default limits, with their [`StreamCredit`].
    ///
    /// [`QuicLimits::server_transport_config`]: crate::QuicLimits::server_transport_config
    pub transport: Option<Arc<quinn::TransportConfig>>,
    /// How the peer's stream limits grow with use when [`ServerConfig::transport`] is set (its
    /// initial limits must be that config's); `None` leaves them as configured.
    pub stream_credit: Option<StreamCredit>,
    /// Who may hold a session (sessions node-wide and per address, concurrent handshakes).
    pub admission: Admission,
    /// The runtime for the socket, tasks and timers; `None` means [`quinn::default_runtime`].
    pub runtime: Option<Runtime>,
    /// Limits of WebSocket (QMux) sessions handed over by a [`WsAcceptor`]; the defaults are
    /// [`QuicLimits::default`](crate::QuicLimits)'s (use [`WsConfig::from_quic`] with the QUIC
    /// limits in use).
    pub websocket: WsConfig,
}

impl ServerConfig {
    /// All versions, both transports, a 10 s handshake timeout.
    pub fn new(bind: SocketAddr, identity: Identity) -> ServerConfig {
        ServerConfig {
            bind,
            identity,
            versions: Version::ALL.to_vec(),
            raw_quic: true,
            webtransport: true,
            handshake_timeout: Duration::from_secs(10),
            transport: None,
            stream_credit: None,
            admission: Admission::default(),
            runtime: None,
            websocket: WsConfig::default(),
        }
    }
}

/// A session the server accepted.
#[derive(Debug)]
pub struct Accepted {
    /// The negotiated version (also [`Connection::version`]).
    pub version: Version,
    /// Raw QUIC or WebTransport.
    pub kind: TransportKind,
    /// The WebTransport `:path` or WebSocket request path, including any `?query`; `None` on raw
    /// QUIC (lite-05+ sends the path in SETUP instead).
    pub path: Option<String>,
    /// The full WebTransport / WebSocket request URL; `None` on raw QUIC.
    pub url: Option<Url>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The session.
    pub connection: Connection,
}

/// A server listening on one UDP socket for raw QUIC and WebTransport.
///
/// Dropping it stops accepting (pending handshakes are abandoned); established sessions live on
/// until closed.
#[derive(Debug)]
pub struct Listener {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    accepted: mpsc::Receiver<Accepted>,
    task: AbortHandle,
    runtime: Runtime,
    stats: Arc<ListenerStats>,
    websocket: mpsc::Sender<WsIncoming>,
    versions: Vec<Version>,
}

/// An upgraded WebSocket connection handed to the accept loop.
struct WsIncoming {
    stream: BoxedStream,
    negotiated: Negotiated,
    peer: SocketAddr,
    url: Url,
}

/// Hands WebSocket connections the embedding HTTP server upgraded to a [`Listener`]'s accept
/// loop (admission limits, handshake timeout, then [`Listener::accept`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct WsAcceptor {
    tx: mpsc::Sender<WsIncoming>,
    versions: Vec<Version>,
    stats: Arc<ListenerStats>,
}

impl WsAcceptor {
    /// The moq-lite versions the listener accepts (for [`websocket::select`]).
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Takes an upgraded connection: `stream` is the byte stream after the `101` response,
    /// `negotiated` the subprotocol that response named, `url` the request's URL (its path and
    /// query are the session's scope and credentials). When the loop is overloaded (or gone) the
    /// stream is dropped and the refusal counted.
    pub fn accept(&self, stream: BoxedStream, negotiated: Negotiated, peer: SocketAddr, url: Url) {
        let mut tx = self.tx.clone();
        if tx.try_send(WsIncoming { stream, negotiated, peer, url }).is_err() {
            self.stats.refused(Refusal::Handshakes);
            tracing::debug!(%peer, "dropping WebSocket connection: accept queue full");
        }
    }
}

impl std::fmt::Debug for WsIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsIncoming").field("peer", &self.peer).field("url", &self.url.as_str()).finish()
    }
}

#[derive(Debug, Clone)]
struct ServerShared {
    websocket: WsConfig,
    versions: Vec<Version>,
    raw_quic: bool,
    webtransport: bool,
    handshake_timeout: Duration,
    runtime: Runtime,
    stream_credit: Option<StreamCredit>,
}

impl Listener {
    /// Binds the socket and starts accepting on the config's runtime (or the detected one).
    pub fn bind(config: ServerConfig) -> Result<Listener, TransportError> {
        let runtime = pick_runtime(&config.runtime)?;
        let versions = dedup_versions(&config.versions);
        if versions.is_empty() || !(config.raw_quic || config.webtransport) {
            return Err(TransportError::NoVersions);
        }
        let mut alpns: Vec<&[u8]> = Vec::new();
        if config.raw_quic {
            alpns.extend(versions.iter().map(|v| v.alpn().as_bytes()));
        }
        if config.webtransport {
            alpns.push(ALPN_H3.as_bytes());
        }
        let tls = config.identity.server_config(&alpns)?;
        let tls = QuicServerConfig::try_from(tls).map_err(|e| TransportError::QuicTls(e.to_string()))?;
        let mut quic = quinn::ServerConfig::with_crypto(Arc::new(tls));
        let (transport, stream_credit) = match &config.transport {
            Some(t) => (t.clone(), config.stream_credit),
            None => {
                let limits = crate::QuicLimits::default();
                (Arc::new(limits.server_transport_config()), Some(limits.stream_credit()))
            }
        };
        quic.transport_config(transport);
        // Connection attempts not yet accepted or refused, and what quinn buffers for them. The
        // accept loop disposes of each at once, so these only bound a burst (quinn's defaults:
        // 65536 attempts, 10 MiB each, 100 MiB in total).
        quic.max_incoming(MAX_INCOMING);
        quic.incoming_buffer_size(INCOMING_BUFFER as u64);
        quic.incoming_buffer_size_total(INCOMING_BUFFER_TOTAL as u64);

        let endpoint = bind_endpoint(config.bind, Some((quic, &config.identity)), runtime.clone())?;
        let local_addr = endpoint.local_addr().map_err(|source| TransportError::Bind { addr: config.bind, source })?;
        tracing::info!(%local_addr, ?versions, raw_quic = config.raw_quic, webtransport = config.webtransport, "server listening");

        let shared = ServerShared {
            websocket: config.websocket.clone(),
            versions: versions.clone(),
            raw_quic: config.raw_quic,
            webtransport: config.webtransport,
            handshake_timeout: config.handshake_timeout,
            runtime: runtime.clone(),
            stream_credit,
        };
        let (tx, accepted) = mpsc::channel(64);
        let (ws_tx, ws_rx) = mpsc::channel(256);
        let (task, registration) = AbortHandle::new_pair();
        let stats = Arc::new(ListenerStats::default());
        let gate = Gate::new(config.admission);
        let accept = futures::future::Abortable::new(
            accept_loop(endpoint.clone(), shared, gate, stats.clone(), tx, ws_rx),
            registration,
        );
        rt::spawn(&runtime, async move {
            let _ = accept.await;
        });
        Ok(Listener { endpoint, local_addr, accepted, task, runtime, stats, websocket: ws_tx, versions })
    }

    /// A handle for the HTTP server to hand WebSocket upgrades to this listener.
    pub fn websocket(&self) -> WsAcceptor {
        WsAcceptor { tx: self.websocket.clone(), versions: self.versions.clone(), stats: self.stats.clone() }
    }

    /// What this listener admitted and refused.
    pub fn stats(&self) -> Arc<ListenerStats> {
        self.stats.clone()
    }

    /// The runtime this server runs on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next established session, or `None` once the endpoint stopped.
    pub async fn accept(&mut self) -> Option<Accepted> {
        self.accepted.next().await
    }

    /// Stops accepting (handshakes under way are dropped); established connections go on.
    pub fn stop_accepting(&self) {
        self.task.abort();
    }

    /// Closes every connection with `code` and `reason` and stops accepting.
    pub fn close(&self, code: u32, reason: &str) {
        self.task.abort();
        self.endpoint.close(code.into(), reason.as_bytes());
    }

    /// Waits until every connection has been closed and acknowledged (after [`Listener::close`],
    /// or after the sessions were closed one by one).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What finished in the accept task.
enum Finished {
    /// A refused attempt's handshake (done only to deliver the reason) ended.
    Refused,
    /// An admitted attempt's handshake failed or timed out: its session slot is free again.
    Failed(IpAddr),
    /// A handshake ended with an established session, now handed to [`Listener::accept`].
    Established { key: IpAddr, connection: Box<Connection> },
    /// An admitted session's connection closed.
    Closed(IpAddr),
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: ServerShared,
    mut gate: Gate,
    stats: Arc<ListenerStats>,
    tx: mpsc::Sender<Accepted>,
    mut ws_rx: mpsc::Receiver<WsIncoming>,
) {
    // Handshakes and close watchers are futures owned by this task, so aborting it abandons them.
    let mut tasks: FuturesUnordered<BoxFuture<'static, Finished>> = FuturesUnordered::new();
    let mut accept = Box::pin(endpoint.accept());
    loop {
        let next = futures::future::poll_fn(|cx| {
            while let Poll::Ready(Some(done)) = tasks.poll_next_unpin(cx) {
                match done {
                    Finished::Refused => gate.handshake_done(),
                    Finished::Failed(key) => {
                        gate.handshake_done();
                        gate.release(key);
                    }
                    Finished::Established { key, connection } => {
                        gate.handshake_done();
                        tasks.push(Box::pin(async move {
                            connection.closed().await;
                            Finished::Closed(key)
                        }));
                    }
                    Finished::Closed(key) => gate.release(key),
                }
                stats.gauges(&gate);
            }
            if let Poll::Ready(Some(ws)) = ws_rx.poll_next_unpin(cx) {
                return Poll::Ready(Next::Ws(ws));
            }
            accept.as_mut().poll(cx).map(Next::Quic)
        })
        .await;
        let incoming = match next {
            Next::Quic(Some(incoming)) => incoming,
            Next::Quic(None) => break,
            Next::Ws(ws) => {
                if let Some(task) = ws_admit(ws, &shared, &mut gate, &stats, &tx) {
                    tasks.push(task);
                }
                continue;
            }
        };
        accept = Box::pin(endpoint.accept());
        let peer = incoming.remote_address();
        let key = address_key(peer);
        if !gate.may_handshake() {
            // Stateless: no cryptography, no state kept.
            stats.refused(Refusal::Handshakes);
            tracing::debug!(%peer, "refusing connection: too many handshakes");
            incoming.refuse();
            continue;
        }
        stats.handshakes_total.fetch_add(1, Ordering::Relaxed);
        let admitted = gate.start(key);
        stats.gauges(&gate);
        if let Err(why) = admitted {
            stats.refused(why);
            tracing::debug!(%peer, reason = why.reason(), "refusing session");
            let timeout = shared.handshake_timeout;
            let runtime = shared.runtime.clone();
            tasks.push(Box::pin(async move {
                // Finish the QUIC handshake so the client reads the reason, then close.
                if let Ok(connecting) = incoming.accept() {
                    if let Ok(Ok(conn)) = rt::timeout(&runtime, timeout, connecting).await {
                        let code = quinn::VarInt::from_u64(session_code::LIMIT_EXCEEDED).unwrap_or_default();
                        conn.close(code, why.reason().as_bytes());
                    }
                }
                Finished::Refused
            }));
            continue;
        }
        let shared = shared.clone();
        let mut tx = tx.clone();
        let stats = stats.clone();
        tasks.push(Box::pin(async move {
            let timeout = shared.handshake_timeout;
            let accepted = match rt::timeout(&shared.runtime, timeout, handshake(incoming, &shared)).await {
                Ok(Ok(accepted)) => accepted,
                Ok(Err(err)) => {
                    stats.handshakes_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, %err, "handshake failed");
                    return Finished::Failed(key);
                }
                Err(_) => {
                    stats.handshakes_timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, ?timeout, "handshake timed out");
                    return Finished::Failed(key);
                }
            };
            tracing::debug!(%peer, version = %accepted.version, kind = ?accepted.kind,
                path = ?accepted.path, "session accepted");
            let connection = accepted.connection.clone();
            if tx.send(accepted).await.is_err() {
                connection.close(0, "server shutting down");
            }
            Finished::Established { key, connection: Box::new(connection) }
        }));
    }
    tracing::debug!("accept loop ended");
}
/// What the accept loop woke up for (short-lived: not worth boxing).
#[allow(clippy::large_enum_variant)]
enum Next {
    Quic(Option<quinn::Incoming>),
    Ws(WsIncoming),
}

/// Admission and handshake of a WebSocket connection, as for QUIC: refused ones are told why
/// (APPLICATION_CLOSE with LIMIT_EXCEEDED), admitted ones wait (bounded by the handshake timeout)
/// for the client's QMux transport parameters and are delivered to [`Listener::accept`].
fn ws_admit(
    ws: WsIncoming,
    shared: &ServerShared,
    gate: &mut Gate,
    stats: &Arc<ListenerStats>,
    tx: &mpsc::Sender<Accepted>,
) -> Option<BoxFuture<'static, Finished>> {
    let WsIncoming { stream, negotiated, peer, url } = ws;
    let key = address_key(peer);
    if !gate.may_handshake() {
        stats.refused(Refusal::Handshakes);
        tracing::debug!(%peer, "refusing WebSocket connection: too many handshakes");
        return None;
    }
    stats.handshakes_total.fetch_add(1, Ordering::Relaxed);
    let admitted = gate.start(key);
    stats.gauges(gate);
    let shared = shared.clone();
    if let Err(why) = admitted {
        stats.refused(why);
        tracing::debug!(%peer, reason = why.reason(), "refusing WebSocket session");
        return Some(Box::pin(async move {
            let started = websocket::start(
                stream,
                moqt_qmux::Role::Server,
                &negotiated,
                peer,
                &shared.websocket,
                &shared.runtime,
            )
            .await;
            if let Ok(conn) = started {
                let code = u32::try_from(session_code::LIMIT_EXCEEDED).unwrap_or(u32::MAX);
                conn.close(code, why.reason());
                let _ = rt::timeout(&shared.runtime, shared.handshake_timeout, conn.closed()).await;
            }
            Finished::Refused
        }));
    }
    let mut tx = tx.clone();
    let stats = stats.clone();
    Some(Box::pin(async move {
        let timeout = shared.handshake_timeout;
        let handshake = async {
            let conn = websocket::start(
                stream,
                moqt_qmux::Role::Server,
                &negotiated,
                peer,
                &shared.websocket,
                &shared.runtime,
            )
            .await
            .map_err(|e| e.to_string())?;
            conn.connected().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(conn)
        };
        let conn = match rt::timeout(&shared.runtime, timeout, handshake).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => {
                stats.handshakes_failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, %err, "WebSocket handshake failed");
                return Finished::Failed(key);
            }
            Err(_) => {
                stats.handshakes_timed_out.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, ?timeout, "WebSocket handshake timed out");
                return Finished::Failed(key);
            }
        };
        let path = match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_owned(),
        };
        let version = negotiated.version;
        let connection = Connection::websocket(conn, version);
        tracing::debug!(%peer, %version, subprotocol = negotiated.subprotocol, "WebSocket session accepted");
        let accepted = Accepted {
            version,
            kind: TransportKind::WebSocket,
            path: Some(path),
            url: Some(url),
            peer,
            connection: connection.clone(),
        };
        if tx.send(accepted).await.is_err() {
            connection.close(0, "server shutting down");
        }
        Finished::Established { key, connection: Box::new(connection) }
    }))
}

/// Why a server-side handshake failed (logged only).
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("QUIC/TLS: {0}")]
    Quic(#[from] quinn::ConnectionError),
    #[error("WebTransport: {0}")]
    WebTransport(#[from] wtq::ServerError),
    #[error("unexpected ALPN {0:?}")]
    Alpn(Option<String>),
    #[error("client offered no supported WebTransport protocol: {0:?}")]
    NoProtocol(Vec<String>),
}

async fn handshake(incoming: quinn::Incoming, shared: &ServerShared) -> Result<Accepted, HandshakeError> {
    let conn = incoming.await?;
    let peer = conn.remote_address();
    let alpn = negotiated_alpn(&conn);

    if shared.webtransport && alpn.as_deref() == Some(ALPN_H3.as_bytes()) {
        let request = wtq::Request::accept(conn).await?;
        let offered = request.protocols.clone();
        let Some(version) = negotiate_wt_protocol(&offered, &shared.versions) else {
            tracing::debug!(%peer, ?offered, "refusing WebTransport request: no common protocol");
            // Keep the connection until the client has read the refusal and hung up (bounded by the
            // handshake timeout): dropping it now could close the connection before the response
            // is delivered, and the client would see a truncated stream instead of the status.
            let conn = request.conn().clone();
            request.reject(wtq::http::StatusCode::BAD_REQUEST).await?;
            conn.closed().await;
            return Err(HandshakeError::NoProtocol(offered));
        };
        let url = request.url.clone();
        let path = match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_owned(),
        };
        let response = wtq::proto::ConnectResponse::OK.with_protocol(version.wt_protocol());
        let inner = request.respond(response).await?;
        return Ok(Accepted {
            version,
            kind: TransportKind::WebTransport,
            path: Some(path),
            url: Some(url),
            peer,
            connection: with_credit(Connection::new(inner, version, TransportKind::WebTransport), shared),
        });
    }

    let version =
        alpn.as_deref().and_then(Version::from_alpn).filter(|v| shared.raw_quic && shared.versions.contains(v));
    let Some(version) = version else {
        conn.close(0u32.into(), b"unsupported ALPN");
        return Err(HandshakeError::Alpn(alpn.map(|a| String::from_utf8_lossy(&a).into_owned())));
    };
    Ok(Accepted {
        version,
        kind: TransportKind::RawQuic,
        path: None,
        url: None,
        peer,
        connection: with_credit(Connection::new(wtq::Session::raw(conn), version, TransportKind::RawQuic), shared),
    })
}

/// Lets an accepted connection's stream limits grow with use, when the server says so.
fn with_credit(connection: Connection, shared: &ServerShared) -> Connection {
    match shared.stream_credit {
        Some(credit) => connection.with_stream_credit(credit),
        None => connection,
    }
}
