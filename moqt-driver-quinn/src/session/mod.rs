//! The async moq-lite API: [`Client`], [`Server`], and the cloneable [`Session`] handle with its
//! publisher and subscriber handles. Runtime-agnostic (tasks and timers go through
//! `quinn::Runtime`).
//!
//! # Shape
//!
//! Each connection gets one task (the *owner*, in [`owner`](self::owner)) that owns a
//! one-session `moqt_proto::relay::Node` and the connection's I/O. The node is the same sans-IO
//! policy a relay runs: it accepts subscriptions to tracks the application created, parks those
//! to tracks not created yet while the application is asked for them, starts late subscribers at
//! the current group, serves fetches from its cache, answers TRACK and probe requests. This layer
//! keeps only handles and queues.
//!
//! Handles talk to the owner with owned request values on one unbounded channel (sending never
//! waits, so `write_frame` is a plain call; the core bounds what it queues for the network and
//! drops stale groups). The owner talks back through per-handle queues that it pushes into
//! without ever waiting; where a slow application could make them grow, they are bounded: a
//! subscription keeps at most [`SessionOptions::max_pending_groups`] unread groups (the oldest
//! unread group is dropped), a group or fetch at most [`SessionOptions::max_buffered_bytes`]
//! unread bytes (beyond that it ends with `TOO_FAR_BEHIND`), an announcement stream at most
//! [`SessionOptions::max_pending_announcements`] unread events (beyond that it is cancelled).
//! Dropping a handle cancels what it stands for (unsubscribe, stop the group, cancel the watch or
//! fetch, unannounce).
//!
//! The owner ends when the connection closes or every handle is dropped (which closes the
//! session with code 0).
//!
//! # Reconnection
//!
//! With [`SessionOptions::reconnect`] enabled, a client session outlives its connections: the
//! owner dials again after a loss (backoff with jitter, `moqt_proto::reconnect`), follows a
//! GOAWAY's next URI make-before-break, and the node moves every subscription and broadcast
//! over (subscriptions resume from the next group; published broadcasts are announced again).
//! Handles stay valid throughout; [`Session::next_state`] reports what happens.

mod link;
mod owner;
mod publish;
mod route;
mod subscribe;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::channel::{mpsc, oneshot};
use moqt_proto::session::{Error as CoreError, Perspective, SessionLimits};
use moqt_proto::{Path, Version};

pub use moqt_proto::reconnect::ReconnectPolicy;
pub use moqt_proto::session::SubscribeParams;
pub use publish::{BroadcastPublisher, FetchRequest, GroupPublisher, TrackPublisher};
pub use subscribe::{Announced, FetchReader, GroupReader, ProbeReader, TrackReader};

use crate::connection::{Connection, TransportKind};
use crate::rt::{self, Runtime};
use crate::sync::{End, Latch, Queue};
use crate::transport::{self, TransportError};
use owner::{Owner, Request};

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The session close code (see `moqt_proto::session::session_code`; application codes are
    /// `APPLICATION_BASE + n`).
    pub code: u64,
    /// The reason text.
    pub reason: String,
}

/// Why a request failed or a stream ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The core refused the call.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The peer (or our own flow control) ended the stream with this code.
    #[error("ended with code {0:#x} ({name})", name = moqt_proto::session::describe_stream_code(*.0))]
    Code(u64),
    /// The session is closed.
    #[error("session closed")]
    Closed,
}

/// The next item of a handle's queue: `Ok(None)` when its source ended cleanly, `Err` otherwise.
async fn next_from<T>(queue: &Queue<T>) -> Result<Option<T>, Error> {
    match queue.pop().await {
        Ok(item) => Ok(Some(item)),
        Err(End::Done) => Ok(None),
        Err(End::Code(code)) => Err(Error::Code(code)),
    }
}

/// Limits on what the owner buffers for a slow application, and core settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Unread groups per subscription before the oldest unread one is dropped (default 16).
    pub max_pending_groups: usize,
    /// Unread bytes per group or fetch before it is stopped (default 8 MiB).
    pub max_buffered_bytes: usize,
    /// Unread announcement events per stream before the watch is cancelled (default 4096).
    pub max_pending_announcements: usize,
    /// The core's session limits.
    pub limits: SessionLimits,
    /// Our hop id (0 = none).
    pub hop_id: u64,
    /// Whether and how a client session reconnects (default: it does not).
    pub reconnect: ReconnectPolicy,
    /// How long a clean close ([`Session::close`] with code 0, or dropping every handle) waits
    /// for what was already written to reach the peer: queued frames, the ends of groups and
    /// tracks (default 2 s; zero closes at once, discarding what is still in flight).
    pub close_linger: std::time::Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            max_pending_groups: 16,
            max_buffered_bytes: 8 << 20,
            max_pending_announcements: 4096,
            limits: SessionLimits::default(),
            hop_id: 0,
            reconnect: ReconnectPolicy::disabled(),
            close_linger: std::time::Duration::from_secs(2),
        }
    }
}

/// What happens to a session's connection (see [`Session::next_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// A connection is up (the first, or a new one after a loss or a GOAWAY).
    Connected {
        /// The URL dialled (empty on the server side).
        url: String,
        /// The negotiated version.
        version: Version,
    },
    /// The connection was lost; a new one will be dialled.
    Lost {
        /// The close code.
        code: u64,
        /// The reason.
        reason: String,
    },
    /// The peer sent GOAWAY: moving to `uri` (empty: the same URL, after the drain).
    Moving {
        /// The next URI.
        uri: String,
    },
    /// The session is over.
    Closed(CloseInfo),
}

/// An announcement event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// A broadcast is live.
    Active(Path),
    /// A broadcast ended.
    Ended(Path),
}

/// Something the peer asks of a broadcast we publish.
#[derive(Debug)]
pub enum BroadcastRequest {
    /// A subscription to a track that does not exist: create it to accept the subscription.
    Track(String),
    /// A fetch of a past group that is not cached, for the application to serve.
    Fetch(FetchRequest),
    /// For information: a fetch was answered from the cache, without the application.
    FetchServed {
        /// The track.
        track: String,
        /// The group.
        group: u64,
    },
}

/// Held by application handles; the last one dropped closes the session.
struct Token {
    tx: mpsc::UnboundedSender<Request>,
}

impl Drop for Token {
    fn drop(&mut self) {
        let _ = self.tx.unbounded_send(Request::Dropped);
    }
}

/// What every handle of a session shares.
struct Shared {
    closed: Latch<CloseInfo>,
    goaway: Latch<String>,
    next_key: AtomicU64,
    path: Option<String>,
    /// The connection in use (it changes when the session reconnects).
    current: Mutex<Connection>,
    states: Queue<ConnectionState>,
}

impl Shared {
    fn current(&self) -> Connection {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// How an owner dials again.
pub(crate) struct Redial {
    connector: Arc<transport::Connector>,
    url: String,
}

/// A moq-lite session. Cheap to clone; every clone (and every handle made from it) keeps the
/// session open; when all are dropped the session closes with code 0.
#[derive(Clone)]
pub struct Session {
    tx: mpsc::UnboundedSender<Request>,
    shared: Arc<Shared>,
    /// `None` only in the owner's internal handle.
    _token: Option<Arc<Token>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version())
            .field("kind", &self.kind())
            .field("path", &self.shared.path)
            .finish()
    }
}

impl Session {
    /// Starts the owner task for an established connection on `runtime`. `path` is the
    /// WebTransport request path (server side) or the URL path (client side).
    pub fn start(
        connection: Connection,
        perspective: Perspective,
        path: Option<String>,
        options: SessionOptions,
        runtime: Runtime,
    ) -> Session {
        Self::start_with(connection, perspective, path, options, runtime, None)
    }

    fn start_with(
        connection: Connection,
        perspective: Perspective,
        path: Option<String>,
        options: SessionOptions,
        runtime: Runtime,
        redial: Option<Redial>,
    ) -> Session {
        let (tx, rx) = mpsc::unbounded();
        let shared = Arc::new(Shared {
            closed: Latch::new(),
            goaway: Latch::new(),
            next_key: AtomicU64::new(1),
            path: path.clone(),
            current: Mutex::new(connection.clone()),
            states: Queue::new(),
        });
        let internal = Session { tx: tx.clone(), shared: shared.clone(), _token: None };
        let owner = Owner::new(connection, perspective, path, options, rx, internal, &runtime, redial);
        rt::spawn(&runtime, owner.run());
        let token = Some(Arc::new(Token { tx: tx.clone() }));
        Session { tx, shared, _token: token }
    }

    fn key(&self) -> u64 {
        self.shared.next_key.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, req: Request) {
        let _ = self.tx.unbounded_send(req);
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Request) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx.unbounded_send(make(reply)).map_err(|_| Error::Closed)?;
        rx.await.unwrap_or(Err(Error::Closed))
    }

    /// Sends a request that creates a handle fed by `queue`; fails if the session is closed.
    fn open<T>(&self, queue: &Arc<Queue<T>>, req: Request) -> Result<(), Error> {
        if self.shared.closed.get().is_some() {
            queue.close(End::Code(moqt_proto::session::session_code::NO_ERROR));
            return Err(Error::Closed);
        }
        self.tx.unbounded_send(req).map_err(|_| Error::Closed)
    }

    /// The negotiated version (of the current connection).
    pub fn version(&self) -> Version {
        self.shared.current().version()
    }

    /// Raw QUIC or WebTransport (of the current connection).
    pub fn kind(&self) -> TransportKind {
        self.shared.current().kind()
    }

    /// The WebTransport request path (server side) or the dialed URL's path and query (client
    /// side), `?query` included when there is one.
    pub fn path(&self) -> Option<&str> {
        self.shared.path.as_deref()
    }

    /// The current transport connection (addresses, RTT, ...).
    pub fn connection(&self) -> Connection {
        self.shared.current()
    }

    /// The next change of the connection (a single consumer; unread states beyond 64 are
    /// dropped, oldest first). `None` once the session is over and every state was read.
    pub async fn next_state(&self) -> Option<ConnectionState> {
        self.shared.states.pop().await.ok()
    }

    /// Announces `path` and returns its publisher handle (dropping it unannounces).
    pub fn publish(&self, path: &str) -> BroadcastPublisher {
        let key = self.key();
        let queue = Arc::new(Queue::new());
        self.send(Request::Publish { key, path: Path::new(path), queue: queue.clone() });
        BroadcastPublisher::new(self.clone(), key, queue)
    }

    /// Subscribes to `track` of broadcast `path`.
    pub async fn subscribe(&self, path: &str, track: &str, params: SubscribeParams) -> Result<TrackReader, Error> {
        let key = self.key();
        let queue = Arc::new(Queue::new());
        let (path, track) = (Path::new(path), track.to_owned());
        self.open(&queue, Request::Subscribe { key, path, track, params, queue: queue.clone() })?;
        Ok(TrackReader::new(self.clone(), key, queue))
    }

    /// Announcements of broadcasts under `prefix` ("" for all).
    pub async fn announced(&self, prefix: &str) -> Result<Announced, Error> {
        let key = self.key();
        let queue = Arc::new(Queue::new());
        self.open(&queue, Request::Watch { key, prefix: Path::new(prefix), queue: queue.clone() })?;
        Ok(Announced::new(self.clone(), key, queue))
    }

    /// Fetches one past group of a track; its frames arrive on the reader.
    pub async fn fetch(&self, path: &str, track: &str, group: u64) -> Result<FetchReader, Error> {
        let key = self.key();
        let queue = Arc::new(Queue::new());
        let (path, track) = (Path::new(path), track.to_owned());
        self.open(&queue, Request::Fetch { key, path, track, group, queue: queue.clone() })?;
        Ok(FetchReader::new(self.clone(), key, queue))
    }

    /// Opens a probe stream (optionally with a target bitrate); reports arrive on the reader.
    pub async fn probe(&self, target: Option<u64>) -> Result<ProbeReader, Error> {
        let key = self.key();
        let queue = Arc::new(Queue::new());
        self.ask(|reply| Request::Probe { key, target, queue: queue.clone(), reply }).await?;
        Ok(ProbeReader::new(self.clone(), key, queue))
    }

    /// Sends GOAWAY (lite-04+), optionally naming where to reconnect.
    pub async fn goaway(&self, uri: &str) -> Result<(), Error> {
        let uri = uri.to_owned();
        self.ask(|reply| Request::Goaway { uri, reply }).await
    }

    /// Waits for the peer's GOAWAY and returns its URI ("" = none). Never resolves if the
    /// session closes without one; race it with [`Session::closed`].
    pub async fn goaway_received(&self) -> String {
        self.shared.goaway.wait().await
    }

    /// Closes the session with `code` (see `session_code`; application codes are
    /// `APPLICATION_BASE + n`) and `reason`. A clean close (code 0) first lets what was already
    /// written reach the peer, for up to [`SessionOptions::close_linger`]; any other code closes
    /// at once.
    pub fn close(&self, code: u64, reason: &str) {
        self.send(Request::Close { code, reason: reason.to_owned() });
    }

    /// Waits until the session has closed and says why.
    pub async fn closed(&self) -> CloseInfo {
        self.shared.closed.wait().await
    }

    /// Why the session closed, or `None` while open.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.shared.closed.get()
    }
}

/// Dials moq-lite servers (`moqt://` raw QUIC, `https://` WebTransport) and starts sessions.
#[derive(Debug)]
pub struct Client {
    connector: Arc<transport::Connector>,
    options: SessionOptions,
}

impl Client {
    /// A client with these transport settings (versions offered, TLS verification, runtime).
    pub fn new(config: transport::ClientConfig) -> Result<Client, TransportError> {
        Ok(Client { connector: Arc::new(transport::Connector::new(config)?), options: SessionOptions::default() })
    }

    /// Replaces the session options.
    pub fn with_options(mut self, options: SessionOptions) -> Client {
        self.options = options;
        self
    }

    /// Waits until every connection of this client has finished closing.
    pub async fn wait_idle(&self) {
        self.connector.wait_idle().await;
    }

    /// Connects and starts a session (which reconnects if the options say so).
    pub async fn connect(&self, url: &str) -> Result<Session, TransportError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| TransportError::InvalidUrl { url: url.to_owned(), reason: e.to_string() })?;
        let connection = self.connector.connect_url(&parsed).await?;
        // The path and query (a `?jwt=` token among them) go in the lite-05+ SETUP Path on raw QUIC.
        let path = Some(match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        });
        let runtime = self.connector.runtime().clone();
        let redial = Some(Redial { connector: self.connector.clone(), url: url.to_owned() });
        Ok(Session::start_with(connection, Perspective::Client, path, self.options.clone(), runtime, redial))
    }
}

/// Accepts moq-lite sessions over raw QUIC and WebTransport on one UDP socket.
#[derive(Debug)]
pub struct Server {
    listener: transport::Listener,
    options: SessionOptions,
}

impl Server {
    /// Binds and starts accepting.
    pub fn bind(config: transport::ServerConfig) -> Result<Server, TransportError> {
        Ok(Server { listener: transport::Listener::bind(config)?, options: SessionOptions::default() })
    }

    /// Replaces the session options for sessions accepted from now on.
    pub fn with_options(mut self, options: SessionOptions) -> Server {
        self.options = options;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr()
    }

    /// The handle an HTTP server hands WebSocket upgrades to (see [`crate::websocket`]); those
    /// sessions come out of [`Server::accept`] too.
    pub fn websocket(&self) -> transport::WsAcceptor {
        self.listener.websocket()
    }

    /// The next session (version, kind and path known), or `None` once the endpoint stopped.
    pub async fn accept(&mut self) -> Option<Session> {
        let accepted = self.listener.accept().await?;
        let runtime = self.listener.runtime().clone();
        Some(Session::start(accepted.connection, Perspective::Server, accepted.path, self.options.clone(), runtime))
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self, code: u32, reason: &str) {
        self.listener.close(code, reason);
    }
}
