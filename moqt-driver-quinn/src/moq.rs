//! The friendly async moq-lite API: [`Client`], [`Server`], and the cloneable [`Session`] handle
//! with its publisher and subscriber handles. Runtime-agnostic (tasks and timers go through
//! `quinn::Runtime`).
//!
//! # Shape
//!
//! Each connection gets one task (the *owner*, [`run`]) that owns the `moqt-proto` core, a
//! [`ConnectionIo`] and a [`Pump`]; nothing else touches protocol state, so it is never locked.
//! Handles talk to the owner with owned request values on one unbounded channel (sending never
//! waits, so `write_frame` is a plain call; the core bounds what it queues for the network and
//! drops stale groups). The owner talks back through per-handle [`Queue`]s that it pushes into
//! without ever waiting; where a slow application could make them grow, the owner bounds them:
//! a subscription keeps at most [`SessionOptions::max_pending_groups`] unread groups (the oldest
//! unread group is dropped and its stream stopped), a group or fetch at most
//! [`SessionOptions::max_buffered_bytes`] unread bytes (beyond that it is stopped and ends with
//! `TOO_FAR_BEHIND`), an announcement stream at most [`SessionOptions::max_pending_announcements`]
//! unread events (beyond that the interest is cancelled). Dropping a handle cancels what it
//! stands for (unsubscribe, stop the group, cancel the interest or fetch, unannounce).
//!
//! The owner ends when the connection closes or every handle is dropped (which closes the session
//! with code 0).
//!
//! Publishing: [`Session::publish`] announces a path and returns a [`BroadcastPublisher`]. Tracks
//! created on it with [`BroadcastPublisher::create_track`] accept the peer's subscriptions
//! automatically; subscriptions to tracks that do not exist yet wait, and the track name is
//! reported by [`BroadcastPublisher::next_request`] so the application can create it; fetches of
//! past groups are reported there too, for the application to serve from its own storage.
//! [`TrackPublisher::open_group`] opens the group for every current subscriber of the track;
//! late subscribers start with the next group.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use moqt_proto::message::{Probe, TrackInfo};
use moqt_proto::session::{
    session_code, stream_code, Config, Error as CoreError, Event, Perspective, PublishParams, Session as Core,
    SessionLimits, StreamId,
};
use moqt_proto::{Path, Version};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

pub use moqt_proto::session::SubscribeParams;

use crate::io::{ConnectionIo, Pump};
use crate::rt::{self, Runtime, Sleep};
use crate::session::{Session as Transport, TransportKind};
use crate::sync::{Counter, End, Latch, Queue};
use crate::transport::{self, TransportError};

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
    #[error("ended with code {0:#x}")]
    Code(u64),
    /// The session is closed.
    #[error("session closed")]
    Closed,
}

/// The next item of a handle's queue: `Ok(None)` when its source ended cleanly, `Err` otherwise.
async fn next_from<T>(queue: &Queue<T>) -> Result<Option<T>, Error> {
    match queue.pop().await {
        Ok(item) => Ok(Some(item)),
        Err(end) => end_error(end).map_or(Ok(None), Err),
    }
}

fn end_error(end: End) -> Option<Error> {
    match end {
        End::Done => None,
        End::Code(code) => Some(Error::Code(code)),
    }
}

/// Limits on what the owner buffers for a slow application, and core settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Unread groups per subscription before the oldest unread one is dropped (default 16).
    pub max_pending_groups: usize,
    /// Unread bytes per group or fetch before it is stopped (default 8 MiB).
    pub max_buffered_bytes: usize,
    /// Unread announcement events per stream before the interest is cancelled (default 4096).
    pub max_pending_announcements: usize,
    /// The core's session limits.
    pub limits: SessionLimits,
    /// Our hop id (0 = none).
    pub hop_id: u64,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            max_pending_groups: 16,
            max_buffered_bytes: 8 << 20,
            max_pending_announcements: 4096,
            limits: SessionLimits::default(),
            hop_id: 0,
        }
    }
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
    /// A fetch of a past group, for the application to serve.
    Fetch(FetchRequest),
}

// ----- requests from handles to the owner -----

enum Request {
    Publish {
        key: u64,
        path: Path,
        queue: Arc<Queue<BroadcastRequest>>,
    },
    Unpublish {
        key: u64,
    },
    CreateTrack {
        broadcast: u64,
        key: u64,
        name: String,
        subscribers: Arc<Counter>,
    },
    DropTrack {
        key: u64,
    },
    OpenGroup {
        track: u64,
        key: u64,
        sequence: u64,
        dropped: Arc<AtomicBool>,
    },
    WriteFrame {
        group: u64,
        timestamp: u64,
        payload: Bytes,
    },
    FinishGroup {
        group: u64,
        reset: Option<u64>,
    },
    Subscribe {
        path: Path,
        track: String,
        params: SubscribeParams,
        reply: oneshot::Sender<Result<TrackReader, Error>>,
    },
    Unsubscribe {
        id: u64,
    },
    StopGroup {
        stream: StreamId,
    },
    Announced {
        prefix: Path,
        reply: oneshot::Sender<Result<Announced, Error>>,
    },
    CancelAnnounced {
        interest: StreamId,
    },
    Fetch {
        path: Path,
        track: String,
        group: u64,
        reply: oneshot::Sender<Result<FetchReader, Error>>,
    },
    CancelFetch {
        stream: StreamId,
    },
    Serve {
        stream: StreamId,
        action: Serve,
    },
    Probe {
        target: Option<u64>,
        reply: oneshot::Sender<Result<ProbeReader, Error>>,
    },
    ProbeClose {
        stream: StreamId,
    },
    Goaway {
        uri: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Close {
        code: u64,
        reason: String,
    },
    /// Every application handle is gone.
    Dropped,
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

enum Serve {
    Frame(u64, Bytes),
    Finish,
    Reject(u64),
}

struct Shared {
    closed: Latch<CloseInfo>,
    goaway: Latch<String>,
    next_key: AtomicU64,
    version: Version,
    kind: TransportKind,
    path: Option<String>,
    transport: Transport,
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
            .field("version", &self.shared.version)
            .field("kind", &self.shared.kind)
            .field("path", &self.shared.path)
            .finish()
    }
}

impl Session {
    /// Starts the owner task for an established transport session on `runtime`.
    /// `path` is the WebTransport request path (server side) or the URL path (client side).
    pub fn start(
        transport: Transport,
        perspective: Perspective,
        path: Option<String>,
        options: SessionOptions,
        runtime: Runtime,
    ) -> Session {
        let version = transport.version();
        let mut config = Config::new(version, perspective);
        config.session_limits = options.limits;
        config.hop_id = options.hop_id;
        if perspective == Perspective::Client && transport.kind() == TransportKind::RawQuic {
            config.setup_path = path.clone().filter(|p| !p.is_empty() && p != "/");
        }
        let (tx, rx) = mpsc::unbounded();
        let shared = Arc::new(Shared {
            closed: Latch::new(),
            goaway: Latch::new(),
            next_key: AtomicU64::new(1),
            version,
            kind: transport.kind(),
            path,
            transport: transport.clone(),
        });
        let internal = Session { tx: tx.clone(), shared: shared.clone(), _token: None };
        let owner = Owner::new(Core::new(config, Instant::now()), transport, options, rx, internal, &runtime);
        rt::spawn(&runtime, run(owner));
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

    /// The negotiated version.
    pub fn version(&self) -> Version {
        self.shared.version
    }

    /// Raw QUIC or WebTransport.
    pub fn kind(&self) -> TransportKind {
        self.shared.kind
    }

    /// The WebTransport request path (server side) or the dialed URL's path (client side).
    pub fn path(&self) -> Option<&str> {
        self.shared.path.as_deref()
    }

    /// The transport session (addresses, RTT, ...).
    pub fn transport(&self) -> &Transport {
        &self.shared.transport
    }

    /// Announces `path` and returns its publisher handle (dropping it unannounces).
    pub fn publish(&self, path: &str) -> BroadcastPublisher {
        let key = self.key();
        let queue = Arc::new(Queue::new());
        self.send(Request::Publish { key, path: Path::new(path), queue: queue.clone() });
        BroadcastPublisher { session: self.clone(), key, queue }
    }

    /// Subscribes to `track` of broadcast `path`.
    pub async fn subscribe(&self, path: &str, track: &str, params: SubscribeParams) -> Result<TrackReader, Error> {
        let (path, track) = (Path::new(path), track.to_owned());
        let mut reader = self.ask(|reply| Request::Subscribe { path, track, params, reply }).await?;
        reader.session = self.clone();
        Ok(reader)
    }

    /// Announcements of broadcasts under `prefix` ("" for all).
    pub async fn announced(&self, prefix: &str) -> Result<Announced, Error> {
        let prefix = Path::new(prefix);
        let mut reader = self.ask(|reply| Request::Announced { prefix, reply }).await?;
        reader.session = self.clone();
        Ok(reader)
    }

    /// Fetches one past group of a track; its frames arrive on the reader.
    pub async fn fetch(&self, path: &str, track: &str, group: u64) -> Result<FetchReader, Error> {
        let (path, track) = (Path::new(path), track.to_owned());
        let mut reader = self.ask(|reply| Request::Fetch { path, track, group, reply }).await?;
        reader.session = self.clone();
        Ok(reader)
    }

    /// Opens a probe stream (optionally with a target bitrate); reports arrive on the reader.
    pub async fn probe(&self, target: Option<u64>) -> Result<ProbeReader, Error> {
        let mut reader = self.ask(|reply| Request::Probe { target, reply }).await?;
        reader.session = self.clone();
        Ok(reader)
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
    /// `APPLICATION_BASE + n`) and `reason`.
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

// ----- publisher handles -----

/// A broadcast we announce. Dropping it unannounces the broadcast.
pub struct BroadcastPublisher {
    session: Session,
    key: u64,
    queue: Arc<Queue<BroadcastRequest>>,
}

impl BroadcastPublisher {
    /// Creates a track; the peer's subscriptions to it are accepted automatically.
    pub fn create_track(&self, name: &str) -> TrackPublisher {
        let key = self.session.key();
        let subscribers = Arc::new(Counter::default());
        self.session.send(Request::CreateTrack {
            broadcast: self.key,
            key,
            name: name.to_owned(),
            subscribers: subscribers.clone(),
        });
        TrackPublisher { session: self.session.clone(), key, subscribers }
    }

    /// The next request for this broadcast (unknown track, fetch); `None` once the session ends.
    pub async fn next_request(&self) -> Option<BroadcastRequest> {
        self.queue.pop().await.ok()
    }
}

impl Drop for BroadcastPublisher {
    fn drop(&mut self) {
        self.session.send(Request::Unpublish { key: self.key });
    }
}

/// A track we publish. Dropping it ends its subscriptions.
pub struct TrackPublisher {
    session: Session,
    key: u64,
    subscribers: Arc<Counter>,
}

impl TrackPublisher {
    /// Subscriptions currently accepted for this track.
    pub fn subscribers(&self) -> usize {
        self.subscribers.get()
    }

    /// Waits until at least `n` subscriptions are active (or the session closes).
    pub async fn wait_subscribers(&self, n: usize) -> Result<(), Error> {
        let subscribed = std::pin::pin!(self.subscribers.at_least(n));
        let closed = std::pin::pin!(self.session.closed());
        match futures::future::select(subscribed, closed).await {
            futures::future::Either::Left(_) => Ok(()),
            futures::future::Either::Right(_) => Err(Error::Closed),
        }
    }

    /// Opens group `sequence` for every current subscriber.
    pub fn open_group(&self, sequence: u64) -> GroupPublisher {
        let key = self.session.key();
        let dropped = Arc::new(AtomicBool::new(false));
        self.session.send(Request::OpenGroup { track: self.key, key, sequence, dropped: dropped.clone() });
        GroupPublisher { session: self.session.clone(), key, sequence, dropped, finished: false }
    }
}

impl Drop for TrackPublisher {
    fn drop(&mut self) {
        self.session.send(Request::DropTrack { key: self.key });
    }
}

/// A group we publish. Dropping it without [`GroupPublisher::finish`] finishes it too.
pub struct GroupPublisher {
    session: Session,
    key: u64,
    sequence: u64,
    dropped: Arc<AtomicBool>,
    finished: bool,
}

impl GroupPublisher {
    /// The group sequence.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Appends a frame (not copied). Fails once every subscriber's copy of the group was dropped
    /// (expired, over budget, stopped) or the group was finished.
    pub fn write_frame(&self, payload: Bytes) -> Result<(), Error> {
        self.write_frame_at(0, payload)
    }

    /// [`GroupPublisher::write_frame`] with an absolute timestamp (lite-05+ carries it).
    pub fn write_frame_at(&self, timestamp: u64, payload: Bytes) -> Result<(), Error> {
        if self.finished {
            return Err(CoreError::InvalidState.into());
        }
        if self.dropped.load(Ordering::Relaxed) {
            return Err(CoreError::GroupDropped.into());
        }
        self.session.send(Request::WriteFrame { group: self.key, timestamp, payload });
        Ok(())
    }

    /// Ends the group cleanly.
    pub fn finish(mut self) {
        self.finished = true;
        self.session.send(Request::FinishGroup { group: self.key, reset: None });
    }

    /// Abandons the group (reset with `code`).
    pub fn reset(mut self, code: u64) {
        self.finished = true;
        self.session.send(Request::FinishGroup { group: self.key, reset: Some(code) });
    }
}

impl Drop for GroupPublisher {
    fn drop(&mut self) {
        if !self.finished {
            self.session.send(Request::FinishGroup { group: self.key, reset: None });
        }
    }
}

/// A fetch the peer asked of one of our broadcasts. Dropping it unanswered rejects it with
/// `NOT_FOUND`; dropping it after frames finishes it.
pub struct FetchRequest {
    session: Session,
    stream: StreamId,
    track: String,
    group: u64,
    done: bool,
}

impl std::fmt::Debug for FetchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchRequest").field("track", &self.track).field("group", &self.group).finish()
    }
}

impl FetchRequest {
    /// The track.
    pub fn track(&self) -> &str {
        &self.track
    }

    /// The group wanted.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// Sends one frame of the group.
    pub fn write_frame(&self, payload: Bytes) {
        self.session.send(Request::Serve { stream: self.stream, action: Serve::Frame(0, payload) });
    }

    /// Ends the fetch after the frames written.
    pub fn finish(mut self) {
        self.done = true;
        self.session.send(Request::Serve { stream: self.stream, action: Serve::Finish });
    }

    /// Refuses the fetch with a stream code (e.g. `stream_code::NOT_FOUND`).
    pub fn reject(mut self, code: u64) {
        self.done = true;
        self.session.send(Request::Serve { stream: self.stream, action: Serve::Reject(code) });
    }
}

impl Drop for FetchRequest {
    fn drop(&mut self) {
        if !self.done {
            self.session.send(Request::Serve { stream: self.stream, action: Serve::Reject(stream_code::NOT_FOUND) });
        }
    }
}

// ----- subscriber handles -----

/// One of our subscriptions: yields groups. Dropping it unsubscribes.
pub struct TrackReader {
    session: Session,
    id: u64,
    queue: Arc<Queue<GroupReader>>,
}

impl TrackReader {
    /// The next group: `Ok(None)` when the publisher ended the track, `Err` when it was
    /// rejected, reset or the session closed.
    pub async fn next_group(&mut self) -> Result<Option<GroupReader>, Error> {
        next_from(&self.queue).await
    }
}

impl Drop for TrackReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        self.session.send(Request::Unsubscribe { id: self.id });
    }
}

/// One group of a subscription: yields frames. Dropping it early stops the group.
pub struct GroupReader {
    session: Option<Session>,
    stream: Option<StreamId>,
    sequence: u64,
    queue: Arc<Queue<Bytes>>,
}

impl GroupReader {
    /// The group sequence.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The next frame: `Ok(None)` at the end of the group, `Err` if it was cut short.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, Error> {
        next_from(&self.queue).await
    }

    /// Every remaining frame.
    pub async fn read_all(&mut self) -> Result<Vec<Bytes>, Error> {
        let mut out = Vec::new();
        while let Some(f) = self.next_frame().await? {
            out.push(f);
        }
        Ok(out)
    }
}

impl Drop for GroupReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        if let (Some(session), Some(stream)) = (&self.session, self.stream) {
            if !self.queue.is_ended() {
                session.send(Request::StopGroup { stream });
            }
        }
    }
}

/// Announcements under a prefix. Dropping it cancels the interest.
pub struct Announced {
    session: Session,
    interest: StreamId,
    queue: Arc<Queue<Announcement>>,
}

impl Announced {
    /// The next announcement; `Ok(None)` when the publisher closed the interest cleanly.
    pub async fn next(&mut self) -> Result<Option<Announcement>, Error> {
        next_from(&self.queue).await
    }
}

impl Drop for Announced {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        self.session.send(Request::CancelAnnounced { interest: self.interest });
    }
}

/// One of our fetches: yields the group's frames. Dropping it early cancels the fetch.
pub struct FetchReader {
    session: Session,
    stream: StreamId,
    queue: Arc<Queue<Bytes>>,
}

impl FetchReader {
    /// The next frame: `Ok(None)` at the end, `Err` if refused or cut short.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, Error> {
        next_from(&self.queue).await
    }

    /// Every frame of the group.
    pub async fn read_all(&mut self) -> Result<Vec<Bytes>, Error> {
        let mut out = Vec::new();
        while let Some(f) = self.next_frame().await? {
            out.push(f);
        }
        Ok(out)
    }
}

impl Drop for FetchReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        if !self.queue.is_ended() {
            self.session.send(Request::CancelFetch { stream: self.stream });
        }
    }
}

/// One of our probe streams: yields reports. Dropping it closes the probe.
pub struct ProbeReader {
    session: Session,
    stream: StreamId,
    queue: Arc<Queue<Probe>>,
}

impl ProbeReader {
    /// The next report (bitrate, RTT); `Ok(None)` when the peer ended the probe.
    pub async fn next_report(&mut self) -> Result<Option<Probe>, Error> {
        next_from(&self.queue).await
    }
}

impl Drop for ProbeReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        self.session.send(Request::ProbeClose { stream: self.stream });
    }
}

// ----- client and server -----

/// Dials moq-lite servers (`moqt://` raw QUIC, `https://` WebTransport) and starts sessions.
#[derive(Debug)]
pub struct Client {
    transport: transport::Client,
    options: SessionOptions,
}

impl Client {
    /// A client with these transport settings (versions offered, TLS verification, runtime).
    pub fn new(config: transport::ClientConfig) -> Result<Client, TransportError> {
        Ok(Client { transport: transport::Client::new(config)?, options: SessionOptions::default() })
    }

    /// Replaces the session options.
    pub fn with_options(mut self, options: SessionOptions) -> Client {
        self.options = options;
        self
    }

    /// Waits until every connection of this client has finished closing.
    pub async fn wait_idle(&self) {
        self.transport.wait_idle().await;
    }

    /// Connects and starts a session.
    pub async fn connect(&self, url: &str) -> Result<Session, TransportError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| TransportError::InvalidUrl { url: url.to_owned(), reason: e.to_string() })?;
        let transport = self.transport.connect_url(&parsed).await?;
        let path = Some(parsed.path().to_owned());
        Ok(Session::start(transport, Perspective::Client, path, self.options.clone(), self.transport.runtime().clone()))
    }
}

/// Accepts moq-lite sessions over raw QUIC and WebTransport on one UDP socket.
#[derive(Debug)]
pub struct Server {
    transport: transport::Server,
    options: SessionOptions,
}

impl Server {
    /// Binds and starts accepting.
    pub fn bind(config: transport::ServerConfig) -> Result<Server, TransportError> {
        Ok(Server { transport: transport::Server::bind(config)?, options: SessionOptions::default() })
    }

    /// Replaces the session options for sessions accepted from now on.
    pub fn with_options(mut self, options: SessionOptions) -> Server {
        self.options = options;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.transport.local_addr()
    }

    /// The next session (version, kind and path known), or `None` once the endpoint stopped.
    pub async fn accept(&mut self) -> Option<Session> {
        let accepted = self.transport.accept().await?;
        let runtime = self.transport.runtime().clone();
        Some(Session::start(accepted.session, Perspective::Server, accepted.path, self.options.clone(), runtime))
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self, code: u32, reason: &str) {
        self.transport.close(code, reason);
    }
}

// ----- the owner task -----

struct BroadcastState {
    path: Path,
    queue: Arc<Queue<BroadcastRequest>>,
    tracks: FxHashMap<String, u64>,
    /// Subscriptions waiting for a track to be created: (subscribe stream, track).
    waiting: Vec<(StreamId, String)>,
}

struct TrackState {
    broadcast: u64,
    name: String,
    subscribers: Arc<Counter>,
    /// Accepted subscriptions (the peer's subscribe streams).
    subs: SmallVec<[StreamId; 2]>,
    /// The newest group, kept so a late subscriber starts at its first frame.
    current: Option<CurrentGroup>,
}

/// The newest group of a track we publish: its frames are shared `Bytes`, not copies.
struct CurrentGroup {
    key: u64,
    sequence: u64,
    frames: Vec<(u64, Bytes)>,
    finished: bool,
}

struct GroupOutState {
    track: u64,
    streams: SmallVec<[StreamId; 2]>,
    dropped: Arc<AtomicBool>,
}

struct Owner {
    core: Core,
    io: ConnectionIo,
    pump: Pump,
    runtime: Runtime,
    timer: Option<Sleep>,
    requests: mpsc::UnboundedReceiver<Request>,
    /// A handle without a token for handles the owner creates (it never keeps the session open).
    handle: Session,
    options: SessionOptions,
    shared: Arc<Shared>,
    broadcasts: FxHashMap<u64, BroadcastState>,
    paths: FxHashMap<Path, u64>,
    tracks: FxHashMap<u64, TrackState>,
    /// The peer's subscribe stream → our track.
    publications: FxHashMap<StreamId, u64>,
    groups_out: FxHashMap<u64, GroupOutState>,
    group_streams_out: FxHashMap<StreamId, u64>,
    subs: FxHashMap<u64, Arc<Queue<GroupReader>>>,
    groups_in: FxHashMap<StreamId, Arc<Queue<Bytes>>>,
    interests: FxHashMap<StreamId, Arc<Queue<Announcement>>>,
    fetches: FxHashMap<StreamId, Arc<Queue<Bytes>>>,
    probes: FxHashMap<StreamId, Arc<Queue<Probe>>>,
    requests_open: bool,
}

enum Step {
    Io(Option<crate::io::IoEvent>),
    Request(Option<Request>),
    Timeout,
}

impl Owner {
    fn new(
        core: Core,
        transport: Transport,
        options: SessionOptions,
        requests: mpsc::UnboundedReceiver<Request>,
        handle: Session,
        runtime: &Runtime,
    ) -> Owner {
        let shared = handle.shared.clone();
        Owner {
            core,
            io: ConnectionIo::new(transport),
            pump: Pump::new(),
            runtime: runtime.clone(),
            timer: None,
            requests,
            handle,
            options,
            shared,
            broadcasts: FxHashMap::default(),
            paths: FxHashMap::default(),
            tracks: FxHashMap::default(),
            publications: FxHashMap::default(),
            groups_out: FxHashMap::default(),
            group_streams_out: FxHashMap::default(),
            subs: FxHashMap::default(),
            groups_in: FxHashMap::default(),
            interests: FxHashMap::default(),
            fetches: FxHashMap::default(),
            probes: FxHashMap::default(),
            requests_open: true,
        }
    }
}

/// The owner loop: waits for I/O, a request or the core's timer, feeds the core, executes its
/// commands and routes its events, until the connection is closed.
async fn run(mut owner: Owner) {
    let mut turn = false;
    loop {
        owner.flush();
        if owner.core.is_closed() {
            break;
        }
        let deadline = owner.core.poll_timeout();
        match (deadline, &mut owner.timer) {
            (Some(d), Some(t)) => t.reset(d),
            (Some(d), None) => owner.timer = Some(Sleep::until(&owner.runtime, d)),
            (None, _) => owner.timer = None,
        }
        // Alternate which source goes first, so neither a busy network nor a busy application
        // starves the other.
        turn = !turn;
        let step = std::future::poll_fn(|cx| {
            let requests_first = turn && owner.requests_open;
            if requests_first {
                if let Poll::Ready(req) = owner.requests.poll_next_unpin(cx) {
                    return Poll::Ready(Step::Request(req));
                }
            }
            if let Poll::Ready(ev) = owner.io.poll_event(cx) {
                return Poll::Ready(Step::Io(ev));
            }
            if owner.requests_open && !requests_first {
                if let Poll::Ready(req) = owner.requests.poll_next_unpin(cx) {
                    return Poll::Ready(Step::Request(req));
                }
            }
            if let Some(timer) = &mut owner.timer {
                if timer.poll_expired(cx).is_ready() {
                    return Poll::Ready(Step::Timeout);
                }
            }
            Poll::Pending
        })
        .await;
        let now = Instant::now();
        match step {
            Step::Io(Some(ev)) => {
                let Owner { core, io, pump, .. } = &mut owner;
                pump.handle(core, now, ev, &mut |cmd| io.command(cmd));
            }
            Step::Io(None) => {
                // The transport is gone; make sure the core knows.
                if !owner.core.is_closed() {
                    owner.core.handle(
                        now,
                        moqt_proto::TransportEvent::Closed {
                            code: session_code::INTERNAL,
                            reason: "transport ended".into(),
                        },
                    );
                }
            }
            Step::Request(Some(req)) => owner.request(req),
            Step::Request(None) => {
                owner.requests_open = false;
                owner.core.close(session_code::NO_ERROR, "session dropped");
            }
            Step::Timeout => {
                owner.timer = None;
                owner.core.handle_timeout(now);
            }
        }
        // Batch: take whatever else is ready before routing (bounded, to stay fair).
        for _ in 0..64 {
            let polled = futures::FutureExt::now_or_never(std::future::poll_fn(|cx| match owner.io.poll_event(cx) {
                Poll::Ready(Some(ev)) => Poll::Ready(Some(ev)),
                _ => Poll::Ready(None),
            }));
            match polled.flatten() {
                Some(ev) => {
                    let Owner { core, io, pump, .. } = &mut owner;
                    pump.handle(core, Instant::now(), ev, &mut |cmd| io.command(cmd));
                }
                None => break,
            }
        }
    }
    owner.finish();
}

impl Owner {
    /// Executes the core's commands and routes its events.
    fn flush(&mut self) {
        loop {
            {
                let Owner { core, io, pump, .. } = self;
                pump.drain(core, &mut |cmd| io.command(cmd));
            }
            let Some(ev) = self.core.poll_event() else { break };
            self.event(ev);
        }
    }

    /// Ends every handle after the session closed.
    fn finish(&mut self) {
        let info = self.shared.closed.get().unwrap_or(CloseInfo { code: 0, reason: String::new() });
        let end = End::Code(info.code);
        for q in self.subs.values() {
            q.close(end);
        }
        for q in self.groups_in.values().chain(self.fetches.values()) {
            q.close(end);
        }
        for q in self.interests.values() {
            q.close(end);
        }
        for q in self.probes.values() {
            q.close(end);
        }
        for b in self.broadcasts.values() {
            b.queue.close(end);
        }
        for g in self.groups_out.values() {
            g.dropped.store(true, Ordering::Relaxed);
        }
        self.shared.closed.set(info);
    }

    fn request(&mut self, req: Request) {
        match req {
            Request::Publish { key, path, queue } => {
                if self.core.announce(path.clone()).is_err() {
                    queue.close(End::Code(session_code::INTERNAL));
                }
                if let Some(old) = self.paths.insert(path.clone(), key) {
                    self.broadcasts.remove(&old);
                }
                self.broadcasts
                    .insert(key, BroadcastState { path, queue, tracks: FxHashMap::default(), waiting: Vec::new() });
            }
            Request::Unpublish { key } => {
                let Some(b) = self.broadcasts.remove(&key) else { return };
                b.queue.close(End::Done);
                if self.paths.get(&b.path) == Some(&key) {
                    self.paths.remove(&b.path);
                    let _ = self.core.unannounce(&b.path);
                }
                for (stream, _) in b.waiting {
                    let _ = self.core.reject_subscription(stream, stream_code::NOT_FOUND);
                }
            }
            Request::CreateTrack { broadcast, key, name, subscribers } => {
                let Some(b) = self.broadcasts.get_mut(&broadcast) else { return };
                b.tracks.insert(name.clone(), key);
                let waiting: Vec<StreamId> = {
                    let (now, later): (Vec<_>, Vec<_>) = b.waiting.drain(..).partition(|(_, t)| *t == name);
                    b.waiting = later;
                    now.into_iter().map(|(s, _)| s).collect()
                };
                self.tracks
                    .insert(key, TrackState { broadcast, name, subscribers, subs: SmallVec::new(), current: None });
                for stream in waiting {
                    self.accept(stream, key);
                }
            }
            Request::DropTrack { key } => {
                let Some(t) = self.tracks.remove(&key) else { return };
                if let Some(b) = self.broadcasts.get_mut(&t.broadcast) {
                    if b.tracks.get(&t.name) == Some(&key) {
                        b.tracks.remove(&t.name);
                    }
                }
                for stream in t.subs {
                    self.publications.remove(&stream);
                    let _ = self.core.end_subscription(stream, None);
                }
            }
            Request::OpenGroup { track, key, sequence, dropped } => {
                let mut streams = SmallVec::new();
                if let Some(t) = self.tracks.get_mut(&track) {
                    if t.current.as_ref().is_none_or(|c| sequence >= c.sequence) {
                        t.current = Some(CurrentGroup { key, sequence, frames: Vec::new(), finished: false });
                    }
                }
                if let Some(t) = self.tracks.get(&track) {
                    for &sub in &t.subs {
                        match self.core.open_group(sub, sequence) {
                            Ok(g) => {
                                streams.push(g);
                                self.group_streams_out.insert(g, key);
                            }
                            Err(err) => tracing::debug!(%err, sequence, "cannot open group"),
                        }
                    }
                }
                self.groups_out.insert(key, GroupOutState { track, streams, dropped });
            }
            Request::WriteFrame { group, timestamp, payload } => {
                let Some(g) = self.groups_out.get_mut(&group) else { return };
                if let Some(cur) = self.tracks.get_mut(&g.track).and_then(|t| t.current.as_mut()) {
                    if cur.key == group {
                        cur.frames.push((timestamp, payload.clone()));
                    }
                }
                let mut failed: SmallVec<[StreamId; 2]> = SmallVec::new();
                for &s in &g.streams {
                    if self.core.write_frame(s, timestamp, payload.clone()).is_err() {
                        failed.push(s);
                    }
                }
                for s in failed {
                    self.group_out_gone(s);
                }
            }
            Request::FinishGroup { group, reset } => {
                let Some(g) = self.groups_out.remove(&group) else { return };
                if let Some(t) = self.tracks.get_mut(&g.track) {
                    if t.current.as_ref().is_some_and(|c| c.key == group) {
                        match reset {
                            None => t.current.as_mut().expect("checked").finished = true,
                            Some(_) => t.current = None,
                        }
                    }
                }
                for s in g.streams {
                    self.group_streams_out.remove(&s);
                    let _ = match reset {
                        None => self.core.finish_group(s),
                        Some(code) => self.core.reset_group(s, code),
                    };
                }
            }
            Request::Subscribe { path, track, params, reply } => {
                let result = self.core.subscribe(path, &track, params).map(|id| {
                    let queue = Arc::new(Queue::new());
                    self.subs.insert(id, queue.clone());
                    TrackReader { session: self.handle_for_reply(), id, queue }
                });
                self.reply(reply, result);
            }
            Request::Unsubscribe { id } => {
                if self.subs.remove(&id).is_some() {
                    let _ = self.core.unsubscribe(id);
                }
            }
            Request::StopGroup { stream } => {
                if self.groups_in.remove(&stream).is_some() {
                    let _ = self.core.stop_group(stream, stream_code::CANCEL);
                }
            }
            Request::Announced { prefix, reply } => {
                let result = self.core.announce_interest(prefix).map(|interest| {
                    let queue = Arc::new(Queue::new());
                    self.interests.insert(interest, queue.clone());
                    Announced { session: self.handle_for_reply(), interest, queue }
                });
                self.reply(reply, result);
            }
            Request::CancelAnnounced { interest } => {
                if self.interests.remove(&interest).is_some() {
                    let _ = self.core.cancel_announce_interest(interest);
                }
            }
            Request::Fetch { path, track, group, reply } => {
                let result = self.core.fetch(path, &track, 0, group).map(|stream| {
                    let queue = Arc::new(Queue::new());
                    self.fetches.insert(stream, queue.clone());
                    FetchReader { session: self.handle_for_reply(), stream, queue }
                });
                self.reply(reply, result);
            }
            Request::CancelFetch { stream } => {
                if self.fetches.remove(&stream).is_some() {
                    let _ = self.core.cancel_fetch(stream);
                }
            }
            Request::Serve { stream, action } => {
                let _ = match action {
                    Serve::Frame(ts, payload) => self.core.fetch_frame(stream, ts, payload),
                    Serve::Finish => self.core.fetch_finish(stream),
                    Serve::Reject(code) => self.core.fetch_reject(stream, code),
                };
            }
            Request::Probe { target, reply } => {
                let result = self.core.probe(target).map(|stream| {
                    let queue = Arc::new(Queue::new());
                    self.probes.insert(stream, queue.clone());
                    ProbeReader { session: self.handle_for_reply(), stream, queue }
                });
                self.reply(reply, result);
            }
            Request::ProbeClose { stream } => {
                if self.probes.remove(&stream).is_some() {
                    let _ = self.core.probe_close(stream);
                }
            }
            Request::Goaway { uri, reply } => {
                let result = self.core.goaway(&uri);
                self.reply(reply, result);
            }
            Request::Close { code, reason } => self.core.close(code, &reason),
            Request::Dropped => self.core.close(session_code::NO_ERROR, "session dropped"),
        }
    }

    /// A token-less handle for a reader created in reply to a request (the requester swaps in
    /// its own handle).
    fn handle_for_reply(&self) -> Session {
        self.handle.clone()
    }

    fn reply<T>(&self, reply: oneshot::Sender<Result<T, Error>>, result: Result<T, CoreError>) {
        let _ = reply.send(result.map_err(Error::Core));
    }

    /// Accepts the peer's subscription `stream` for our track `key`.
    fn accept(&mut self, stream: StreamId, key: u64) {
        let Some(t) = self.tracks.get_mut(&key) else { return };
        if self.core.accept_subscription(stream, PublishParams::default()).is_err() {
            return;
        }
        t.subs.push(stream);
        t.subscribers.add(1);
        self.publications.insert(stream, key);
        // A late subscriber starts at the first frame of the newest group.
        let Some(cur) = t.current.as_ref() else { return };
        let Ok(g) = self.core.open_group(stream, cur.sequence) else { return };
        for (ts, payload) in &cur.frames {
            if self.core.write_frame(g, *ts, payload.clone()).is_err() {
                return;
            }
        }
        if cur.finished {
            let _ = self.core.finish_group(g);
        } else if let Some(out) = self.groups_out.get_mut(&cur.key) {
            out.streams.push(g);
            self.group_streams_out.insert(g, cur.key);
        }
    }

    /// One copy of a group we publish is gone (dropped or failed).
    fn group_out_gone(&mut self, stream: StreamId) {
        let Some(key) = self.group_streams_out.remove(&stream) else { return };
        if let Some(g) = self.groups_out.get_mut(&key) {
            g.streams.retain(|s| *s != stream);
            if g.streams.is_empty() {
                g.dropped.store(true, Ordering::Relaxed);
            }
        }
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::PeerSetup(_) | Event::AnnounceInterest { .. } | Event::AnnounceInterestCancelled { .. } => {}
            Event::Goaway { uri } => self.shared.goaway.set(uri),
            Event::Closed { code, reason } => self.shared.closed.set(CloseInfo { code, reason }),
            Event::Announced { interest, path, .. } => self.announcement(interest, Announcement::Active(path)),
            Event::Unannounced { interest, path } => self.announcement(interest, Announcement::Ended(path)),
            Event::AnnounceSynced { .. } => {}
            Event::AnnounceInterestEnded { interest, code } => {
                if let Some(q) = self.interests.remove(&interest) {
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            Event::SubscribeOk { .. }
            | Event::SubscribeStart { .. }
            | Event::SubscribeEnd { .. }
            | Event::GroupsDropped { .. } => {}
            Event::SubscriptionEnded { id, code } => {
                if let Some(q) = self.subs.remove(&id) {
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            Event::GroupStarted { stream, subscription, sequence, .. } => {
                let Some(sub) = self.subs.get(&subscription) else {
                    let _ = self.core.stop_group(stream, stream_code::CANCEL);
                    return;
                };
                let queue = Arc::new(Queue::new());
                let reader = GroupReader {
                    session: Some(self.handle.clone()),
                    stream: Some(stream),
                    sequence,
                    queue: queue.clone(),
                };
                self.groups_in.insert(stream, queue);
                if let Some(evicted) = sub.push(reader, 0, self.options.max_pending_groups) {
                    // Dropping it sends StopGroup for its stream.
                    tracing::debug!(sequence = evicted.sequence, "dropping an unread group");
                    drop(evicted);
                }
            }
            Event::Frame { stream, payload, .. } => {
                let Some(q) = self.groups_in.get(&stream) else { return };
                let n = payload.len();
                q.push(payload, n, usize::MAX);
                if q.backlog().1 > self.options.max_buffered_bytes {
                    q.close(End::Code(stream_code::TOO_FAR_BEHIND));
                    self.groups_in.remove(&stream);
                    let _ = self.core.stop_group(stream, stream_code::TOO_FAR_BEHIND);
                }
            }
            Event::GroupEnded { stream, code, .. } => {
                if let Some(q) = self.groups_in.remove(&stream) {
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            Event::Datagram { subscription, sequence, payload, .. } => {
                let Some(sub) = self.subs.get(&subscription) else { return };
                let queue = Arc::new(Queue::new());
                let n = payload.len();
                queue.push(payload, n, usize::MAX);
                queue.close(End::Done);
                sub.push(
                    GroupReader { session: None, stream: None, sequence, queue },
                    0,
                    self.options.max_pending_groups,
                );
            }
            Event::SubscribeRequest { stream, subscribe } => {
                let Some(&bkey) = self.paths.get(&subscribe.path) else {
                    let _ = self.core.reject_subscription(stream, stream_code::NOT_FOUND);
                    return;
                };
                let b = self.broadcasts.get_mut(&bkey).expect("paths and broadcasts agree");
                match b.tracks.get(&subscribe.track) {
                    Some(&tkey) => self.accept(stream, tkey),
                    None if b.waiting.len() < 64 && b.queue.receiver_alive() => {
                        b.waiting.push((stream, subscribe.track.clone()));
                        b.queue.push(BroadcastRequest::Track(subscribe.track), 0, 64);
                    }
                    None => {
                        let _ = self.core.reject_subscription(stream, stream_code::NOT_FOUND);
                    }
                }
            }
            Event::SubscribeUpdated { .. } => {}
            Event::SubscribeCancelled { stream, .. } => {
                if let Some(key) = self.publications.remove(&stream) {
                    if let Some(t) = self.tracks.get_mut(&key) {
                        t.subs.retain(|s| *s != stream);
                        t.subscribers.add(-1);
                    }
                }
                for b in self.broadcasts.values_mut() {
                    b.waiting.retain(|(s, _)| *s != stream);
                }
            }
            Event::GroupDropped { stream, code } => {
                tracing::debug!(?stream, code, "group dropped");
                self.group_out_gone(stream);
            }
            Event::FetchRequest { stream, fetch } => {
                let b = self.paths.get(&fetch.path).and_then(|k| self.broadcasts.get(k));
                match b {
                    Some(b) if b.queue.receiver_alive() => {
                        let req = FetchRequest {
                            session: self.handle.clone(),
                            stream,
                            track: fetch.track,
                            group: fetch.group,
                            done: false,
                        };
                        if let Some(BroadcastRequest::Fetch(mut f)) = b.queue.push(BroadcastRequest::Fetch(req), 0, 64)
                        {
                            f.done = true;
                            let s = f.stream;
                            let _ = self.core.fetch_reject(s, stream_code::LIMIT_EXCEEDED);
                        }
                    }
                    _ => {
                        let _ = self.core.fetch_reject(stream, stream_code::NOT_FOUND);
                    }
                }
            }
            Event::FetchCancelled { .. } => {}
            Event::FetchFrame { stream, payload, .. } => {
                let Some(q) = self.fetches.get(&stream) else { return };
                let n = payload.len();
                q.push(payload, n, usize::MAX);
                if q.backlog().1 > self.options.max_buffered_bytes {
                    q.close(End::Code(stream_code::TOO_FAR_BEHIND));
                    self.fetches.remove(&stream);
                    let _ = self.core.cancel_fetch(stream);
                }
            }
            Event::FetchEnded { stream, code } => {
                if let Some(q) = self.fetches.remove(&stream) {
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            Event::TrackRequest { stream, track } => {
                let known = self
                    .paths
                    .get(&track.path)
                    .and_then(|k| self.broadcasts.get(k))
                    .is_some_and(|b| b.tracks.contains_key(&track.track));
                let _ = if known {
                    self.core.track_reply(stream, TrackInfo::default())
                } else {
                    self.core.track_reject(stream, stream_code::NOT_FOUND)
                };
            }
            Event::TrackInfo { .. } | Event::TrackFailed { .. } => {}
            Event::ProbeRequest { stream } | Event::ProbeTarget { stream, .. } => {
                let rtt_ms = self.shared.transport.rtt().as_millis().min(u128::from(u64::MAX)) as u64;
                let _ = self.core.probe_report(stream, Probe { bitrate: 0, rtt_ms });
            }
            Event::ProbeReport { stream, probe } => {
                if let Some(q) = self.probes.get(&stream) {
                    q.push(probe, 0, 16);
                }
            }
            Event::ProbeEnded { stream, code } => {
                if let Some(q) = self.probes.remove(&stream) {
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
        }
    }

    fn announcement(&mut self, interest: StreamId, a: Announcement) {
        let Some(q) = self.interests.get(&interest) else { return };
        q.push(a, 0, usize::MAX);
        if q.backlog().0 > self.options.max_pending_announcements {
            q.close(End::Code(stream_code::TOO_FAR_BEHIND));
            self.interests.remove(&interest);
            let _ = self.core.cancel_announce_interest(interest);
        }
    }
}
