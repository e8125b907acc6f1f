//! The relay driver: one owner task holds the `moqt-proto` relay [`Node`] (origin, every
//! session, every track) and one I/O task per connection moves bytes for it.
//!
//! Per connection, a [`ConnectionIo`] runs in its own task and forwards its transport events to
//! the owner over a channel of owned values; the owner feeds them to the node, drains every ready
//! message before looking at the node's commands, and then hands each connection all of its
//! commands in one message. A frame fanned out to N
//! subscribers therefore costs N `Bytes` clones inside the node and about N channel sends, and
//! no lock is ever taken around protocol state. `flush` visits only the connections that have
//! commands waiting, and counters are gathered only when asked ([`Relay::stats`]), so no
//! wake-up walks every session. What a connection has sent the owner is bounded: past
//! [`MAX_BACKLOG`] unhandled events its I/O task stops taking more from quinn (so QUIC flow
//! control and stream credit push back on the peer), and datagrams, which have no flow control,
//! wait in a bounded per-connection queue (`max_queued_datagrams`) past which they are dropped
//! and counted. Runtime services (spawn, timers) come from the [`Runtime`] the driver passes in.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::task::AtomicWaker;
use futures::{FutureExt, StreamExt};
use moqt_proto::relay::{Node, NodeConfig, NodeEvent, NodeStats, SessionId};
use moqt_proto::session::{session_code, Command, Config, Perspective};
use moqt_proto::{Dialect, TransportEvent, Version};
use rustc_hash::FxHashMap;

use crate::connection::Connection;
use crate::io::ConnectionIo;
use crate::rt::{Runtime, Sleep};

mod gate;

pub use gate::{AccessHandle, AdmissionRequest, Decision, Gate, Gatekeeper};

/// A snapshot of the relay's counters and gauges, for `/metrics` (see [`crate::metrics`]).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RelayStats {
    /// The node's counters, its limit counters and the sum of its sessions' limit counters.
    pub node: NodeStats,
    /// Bytes received and not yet decoded, across sessions (bounded by the node's
    /// `max_recv_buffered`).
    pub recv_buffered: usize,
    /// Bytes queued in the sessions for sending, not yet handed to QUIC.
    pub queued_bytes: usize,
    /// Bytes held in group caches (bounded by `max_cache_bytes`).
    pub cache_bytes: usize,
    /// QUIC stream directions open across connections (a bidirectional stream counts twice).
    pub open_streams: usize,
    /// Sessions served since start.
    pub sessions_total: u64,
    /// Datagrams dropped because a connection's queue to the owner was full.
    pub datagrams_dropped: u64,
    /// Sessions ended, by close code (indexed like [`CLOSE_CODES`]; the last entry counts the rest).
    pub sessions_closed: [u64; CLOSE_CODES.len() + 1],
}

/// The session close codes counted one by one in [`RelayStats::sessions_closed`], with their
/// metrics labels.
pub const CLOSE_CODES: [(u64, &str); 7] = [
    (session_code::NO_ERROR, "no_error"),
    (session_code::INTERNAL, "internal"),
    (session_code::PROTOCOL_VIOLATION, "protocol_violation"),
    (session_code::GOAWAY_TIMEOUT, "goaway_timeout"),
    (session_code::TIMEOUT, "timeout"),
    (session_code::VERSION, "version"),
    (session_code::LIMIT_EXCEEDED, "limit_exceeded"),
];

/// Relay settings beyond the node's.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The node (hop id, linger, cache).
    pub node: NodeConfig,
    /// Template for each session's configuration (limits, dialect); version and side are set
    /// per connection.
    pub session: Config,
    /// Datagrams one connection may have waiting for the owner; more are dropped and counted
    /// (default 256).
    pub max_queued_datagrams: usize,
    /// Who decides what accepted sessions may do (`None`: everyone may do everything).
    pub gate: Option<Gate>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            node: NodeConfig::default(),
            session: Config::new(Version::Lite06, Perspective::Server),
            max_queued_datagrams: 256,
            gate: None,
        }
    }
}

/// How a connection reached the relay, beyond its version and side.
#[derive(Debug, Clone, Default)]
pub struct ConnectInfo {
    /// The path and query: as the WebTransport request carried it (accepted sessions), or to send
    /// in the SETUP Path parameter (raw QUIC links this relay dials).
    pub target: Option<String>,
    /// The peer's address.
    pub remote: Option<std::net::SocketAddr>,
    /// The link's price (a cluster link): sent as our SETUP Cost and added to the cost of every
    /// route the peer announces. `None`: the peer's SETUP Cost, else 1.
    pub cost: Option<u64>,
    /// A name for the link (a cluster peer's URL, redacted), for [`Relay::links`] and
    /// [`Relay::close_link`].
    pub label: Option<String>,
}

/// One labelled link (a cluster peer) as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStats {
    /// The link's label ([`ConnectInfo::label`]).
    pub label: String,
    /// The negotiated version.
    pub version: Version,
    /// The price added to the routes it announces.
    pub price: u64,
    /// Broadcasts it offers a route to.
    pub routes: usize,
    /// Our upstream subscriptions through it.
    pub upstream_subscriptions: usize,
}

enum OwnerMsg {
    Connect {
        connection: Box<Connection>,
        version: Version,
        perspective: Perspective,
        dialect: Dialect,
        info: ConnectInfo,
        done: oneshot::Sender<()>,
    },
    Decided {
        sid: SessionId,
        decision: Decision,
    },
    Io {
        sid: SessionId,
        event: TransportEvent,
    },
    Goaway {
        uri: String,
    },
    CloseAll {
        code: u64,
        reason: String,
    },
    Sessions(oneshot::Sender<usize>),
    Stats(oneshot::Sender<RelayStats>),
    Links(oneshot::Sender<Vec<LinkStats>>),
    CloseLink {
        label: String,
        code: u64,
        reason: String,
    },
}

/// A handle to a running relay owner.
#[derive(Clone)]
pub struct Relay {
    tx: mpsc::UnboundedSender<OwnerMsg>,
}

impl Relay {
    /// Starts the owner task on `runtime`.
    pub fn start(config: RelayConfig, runtime: Runtime) -> Relay {
        let (tx, rx) = mpsc::unbounded();
        let mut node_config = config.node.clone();
        node_config.require_access |= config.gate.is_some();
        let owner = Owner {
            node: Node::new(node_config, Instant::now()),
            gate: config.gate,
            template: config.session,
            max_queued_datagrams: config.max_queued_datagrams,
            conns: FxHashMap::default(),
            pending: Vec::new(),
            tx: tx.clone(),
            runtime: runtime.clone(),
            sessions_total: 0,
            sessions_closed: [0; CLOSE_CODES.len() + 1],
            datagrams_dropped: Arc::new(AtomicU64::new(0)),
        };
        runtime.spawn(Box::pin(owner.run(rx)));
        Relay { tx }
    }

    /// A snapshot of the counters (walks the sessions once: for metrics, not per event).
    pub async fn stats(&self) -> RelayStats {
        let (tx, rx) = oneshot::channel();
        if self.tx.unbounded_send(OwnerMsg::Stats(tx)).is_err() {
            return RelayStats::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Hands a new connection (accepted, or dialled to a peer relay) to the relay; resolves when
    /// the connection has ended.
    pub async fn serve(&self, connection: Connection, version: Version, perspective: Perspective, dialect: Dialect) {
        let info = ConnectInfo { remote: Some(connection.peer_addr()), ..ConnectInfo::default() };
        self.serve_with(connection, version, perspective, dialect, info).await
    }

    /// [`Relay::serve`] with the path the connection was made for (see [`ConnectInfo`]).
    pub async fn serve_with(
        &self,
        connection: Connection,
        version: Version,
        perspective: Perspective,
        dialect: Dialect,
        info: ConnectInfo,
    ) {
        let (done, ended) = oneshot::channel();
        let msg = OwnerMsg::Connect { connection: Box::new(connection), version, perspective, dialect, info, done };
        if self.tx.unbounded_send(msg).is_ok() {
            let _ = ended.await;
        }
    }

    /// Sends GOAWAY (with an optional next URI) to every session.
    pub fn goaway(&self, uri: &str) {
        let _ = self.tx.unbounded_send(OwnerMsg::Goaway { uri: uri.to_string() });
    }

    /// Closes every session.
    pub fn close_all(&self, code: u64, reason: &str) {
        let _ = self.tx.unbounded_send(OwnerMsg::CloseAll { code, reason: reason.to_string() });
    }

    /// Every labelled link (cluster peers) that is connected now.
    pub async fn links(&self) -> Vec<LinkStats> {
        let (tx, rx) = oneshot::channel();
        if self.tx.unbounded_send(OwnerMsg::Links(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Closes the sessions of the links labelled `label` (a peer removed from the cluster).
    pub fn close_link(&self, label: &str, code: u64, reason: &str) {
        let msg = OwnerMsg::CloseLink { label: label.to_string(), code, reason: reason.to_string() };
        let _ = self.tx.unbounded_send(msg);
    }

    /// The number of open sessions.
    pub async fn sessions(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.tx.unbounded_send(OwnerMsg::Sessions(tx)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Waits until no session is open or `timeout` passes (for a bounded drain on shutdown).
    pub async fn drained(&self, runtime: &Runtime, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut tick = Sleep::until(runtime, Instant::now());
        loop {
            if self.sessions().await == 0 || Instant::now() >= deadline {
                return;
            }
            tick.reset(Instant::now() + Duration::from_millis(50));
            (&mut tick).await;
        }
    }
}

struct Conn {
    io: mpsc::UnboundedSender<Vec<Command>>,
    batch: Vec<Command>,
    done: Option<oneshot::Sender<()>>,
    /// Events sent by the I/O task and not yet handled here.
    backlog: Arc<Backlog>,
    /// Stream directions open, as last seen by the I/O task.
    streams: Arc<AtomicUsize>,
    kind: crate::connection::TransportKind,
    version: Version,
    remote: Option<std::net::SocketAddr>,
    admission: gate::Admission,
    label: Option<String>,
}

struct Owner {
    node: Node,
    template: Config,
    max_queued_datagrams: usize,
    conns: FxHashMap<SessionId, Conn>,
    /// Connections whose batch is not empty: `flush` visits only these.
    pending: Vec<SessionId>,
    tx: mpsc::UnboundedSender<OwnerMsg>,
    runtime: Runtime,
    sessions_total: u64,
    sessions_closed: [u64; CLOSE_CODES.len() + 1],
    datagrams_dropped: Arc<AtomicU64>,
    gate: Option<Gate>,
}

impl Owner {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<OwnerMsg>) {
        let mut timer = Sleep::until(&self.runtime, Instant::now() + Duration::from_secs(3600));
        loop {
            // Timers run first whenever they are due, so steady traffic cannot starve them.
            let now = Instant::now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
                self.flush();
            }
            let deadline = self.node.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            timer.reset(deadline);
            futures::select_biased! {
                msg = rx.next() => {
                    let Some(msg) = msg else { break };
                    self.on_msg(msg);
                    // Drain everything already waiting before looking at the node's output.
                    while let Ok(msg) = rx.try_recv() {
                        self.on_msg(msg);
                    }
                }
                _ = (&mut timer).fuse() => self.node.handle_timeout(Instant::now()),
            }
            self.flush();
        }
    }

    fn on_msg(&mut self, msg: OwnerMsg) {
        let now = Instant::now();
        match msg {
            OwnerMsg::Connect { connection, version, perspective, dialect, info, done } => {
                let mut config = self.template.clone();
                config.version = version;
                config.perspective = perspective;
                config.dialect = dialect;
                config.cost = info.cost.or(config.cost);
                let kind = connection.kind();
                if perspective == Perspective::Client && kind == crate::connection::TransportKind::RawQuic {
                    config.setup_path = info.target.clone().filter(|p| !p.is_empty() && p != "/");
                }
                let sid = self.node.add_session(config, now);
                self.sessions_total += 1;
                let (io_tx, io_rx) = mpsc::unbounded();
                let backlog = Arc::new(Backlog {
                    events: AtomicUsize::new(0),
                    datagrams: AtomicUsize::new(0),
                    max_datagrams: self.max_queued_datagrams,
                    dropped: self.datagrams_dropped.clone(),
                    waker: AtomicWaker::new(),
                });
                let streams = Arc::new(AtomicUsize::new(0));
                let conn = Conn {
                    io: io_tx,
                    batch: Vec::new(),
                    done: Some(done),
                    backlog: backlog.clone(),
                    streams: streams.clone(),
                    kind,
                    version,
                    remote: info.remote,
                    admission: gate::Admission::Open,
                    label: info.label.clone(),
                };
                self.conns.insert(sid, conn);
                let admission = self.admission_start(sid, perspective, kind, version, info.target);
                if let Some(conn) = self.conns.get_mut(&sid) {
                    conn.admission = admission;
                }
                let io = ConnectionIo::new(*connection);
                self.runtime.spawn(Box::pin(io_task(io, sid, self.tx.clone(), io_rx, backlog, streams)));
            }
            OwnerMsg::Decided { sid, decision } => self.decided(sid, decision),
            OwnerMsg::Io { sid, event } => {
                if let Some(conn) = self.conns.get(&sid) {
                    conn.backlog.handled(matches!(event, TransportEvent::Datagram(_)));
                }
                self.node.handle(sid, now, event)
            }
            OwnerMsg::Goaway { uri } => self.node.goaway_all(&uri),
            OwnerMsg::CloseAll { code, reason } => {
                for sid in self.node.session_ids() {
                    self.node.close_session(sid, code, &reason);
                }
            }
            OwnerMsg::Sessions(reply) => {
                let _ = reply.send(self.conns.len());
            }
            OwnerMsg::Links(reply) => {
                let mut links: Vec<LinkStats> = self
                    .conns
                    .iter()
                    .filter_map(|(sid, conn)| {
                        Some(LinkStats {
                            label: conn.label.clone()?,
                            version: conn.version,
                            price: self.node.link_price(*sid),
                            routes: self.node.routes_via(*sid),
                            upstream_subscriptions: self.node.feeds_through(*sid),
                        })
                    })
                    .collect();
                links.sort_by(|a, b| a.label.cmp(&b.label));
                let _ = reply.send(links);
            }
            OwnerMsg::CloseLink { label, code, reason } => {
                let sids: Vec<SessionId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.label.as_deref() == Some(label.as_str()))
                    .map(|(sid, _)| *sid)
                    .collect();
                for sid in sids {
                    self.node.close_session(sid, code, &reason);
                }
            }
            OwnerMsg::Stats(reply) => {
                let queued_bytes = self
                    .node
                    .session_ids()
                    .into_iter()
                    .filter_map(|id| self.node.session(id))
                    .map(|s| s.queued_bytes())
                    .sum();
                let _ = reply.send(RelayStats {
                    node: self.node.stats(),
                    recv_buffered: self.node.recv_buffered(),
                    queued_bytes,
                    cache_bytes: self.node.cache_bytes(),
                    open_streams: self.conns.values().map(|c| c.streams.load(Ordering::Relaxed)).sum(),
                    sessions_total: self.sessions_total,
                    datagrams_dropped: self.datagrams_dropped.load(Ordering::Relaxed),
                    sessions_closed: self.sessions_closed,
                });
            }
        }
    }

    /// Routes the node's commands to their connections, one message per connection.
    fn flush(&mut self) {
        while let Some((sid, cmd)) = self.node.poll_command() {
            if let Some(conn) = self.conns.get_mut(&sid) {
                if conn.batch.is_empty() {
                    self.pending.push(sid);
                }
                conn.batch.push(cmd);
            }
        }
        while let Some(event) = self.node.poll_event() {
            match event {
                NodeEvent::SessionClosed { session, code, reason } => {
                    tracing::debug!(?session, code, reason, "session closed");
                    let slot = CLOSE_CODES.iter().position(|(c, _)| *c == code).unwrap_or(CLOSE_CODES.len());
                    self.sessions_closed[slot] += 1;
                    if let Some(mut conn) = self.conns.remove(&session) {
                        self.admission_ended(conn.admission, session, &reason);
                        if !conn.batch.is_empty() {
                            let _ = conn.io.unbounded_send(std::mem::take(&mut conn.batch));
                        }
                        if let Some(done) = conn.done.take() {
                            let _ = done.send(());
                        }
                    }
                }
                NodeEvent::Goaway { session, uri } => tracing::info!(?session, uri, "peer sent GOAWAY"),
                NodeEvent::AwaitingAccess { session, setup_path } => self.setup_arrived(session, setup_path),
                // The relay runs no local application.
                _ => {}
            }
        }
        for sid in self.pending.drain(..) {
            if let Some(conn) = self.conns.get_mut(&sid) {
                if !conn.batch.is_empty() {
                    let _ = conn.io.unbounded_send(std::mem::take(&mut conn.batch));
                }
            }
        }
    }
}

/// Transport events one connection may have waiting for the owner before its I/O task stops
/// taking more from quinn (then quinn's flow control and stream credit push back on the peer).
pub const MAX_BACKLOG: usize = 1024;

/// What one connection has sent the owner and the owner has not handled yet. Stream events are
/// bounded by [`MAX_BACKLOG`] (the I/O task waits); datagrams, which have no flow control, by
/// `max_queued_datagrams` (past it they are dropped and counted).
struct Backlog {
    events: AtomicUsize,
    datagrams: AtomicUsize,
    max_datagrams: usize,
    dropped: Arc<AtomicU64>,
    /// The I/O task, parked while the backlog is full.
    waker: AtomicWaker,
}

impl Backlog {
    /// Takes a place for one more datagram, or counts it dropped.
    fn admit_datagram(&self) -> bool {
        if self.datagrams.load(Ordering::Relaxed) >= self.max_datagrams {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.datagrams.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The owner handled one event (`datagram`: a datagram).
    fn handled(&self, datagram: bool) {
        if datagram {
            self.datagrams.fetch_sub(1, Ordering::Relaxed);
        }
        if self.events.fetch_sub(1, Ordering::AcqRel) == MAX_BACKLOG {
            self.waker.wake();
        }
    }

    fn full(&self) -> bool {
        self.events.load(Ordering::Acquire) >= MAX_BACKLOG
    }
}

/// Moves one connection's bytes for the owner.
async fn io_task(
    mut io: ConnectionIo,
    sid: SessionId,
    owner: mpsc::UnboundedSender<OwnerMsg>,
    mut commands: mpsc::UnboundedReceiver<Vec<Command>>,
    backlog: Arc<Backlog>,
    streams: Arc<AtomicUsize>,
) {
    loop {
        streams.store(io.open_streams(), Ordering::Relaxed);
        futures::select_biased! {
            batch = commands.next() => match batch {
                Some(batch) => {
                    for cmd in batch {
                        io.command(cmd);
                    }
                }
                None => {
                    io.command(Command::Close { code: session_code::NO_ERROR, reason: String::new() });
                    break;
                }
            },
            event = next_event(&mut io, &backlog).fuse() => match event {
                Some(TransportEvent::Datagram(_)) if !backlog.admit_datagram() => {}
                Some(event) => {
                    backlog.events.fetch_add(1, Ordering::AcqRel);
                    if owner.unbounded_send(OwnerMsg::Io { sid, event }).is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
}

/// The connection's next event, once the owner has room for it.
async fn next_event(io: &mut ConnectionIo, backlog: &Backlog) -> Option<TransportEvent> {
    std::future::poll_fn(|cx| {
        if backlog.full() {
            backlog.waker.register(cx.waker());
            if backlog.full() {
                return Poll::Pending;
            }
        }
        io.poll_event(cx)
    })
    .await
}
