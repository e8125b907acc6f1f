//! The relay driver: one owner task holds the `moqt-proto` relay [`Node`] (origin, every
//! session, every track) inside a [`NodeDriver`], which also drives every connection's
//! [`ConnectionIo`](crate::io::ConnectionIo) in the same task.
//!
//! Transport events go straight from quinn into the node and the node's commands straight to
//! quinn: there is no channel and no task hop per frame. A frame fanned out to N subscribers
//! costs N `Bytes` clones inside the node and N `write_chunks` calls, each completed at once
//! when quinn has room (no future is boxed then). Only control messages (new connections,
//! admission decisions, GOAWAY, stats) reach the owner over a channel. Counters are gathered
//! only when asked ([`Relay::stats`]), so no wake-up walks every session. What a connection may
//! make the owner hold is bounded by the core's read grants: a stream is read only when the
//! node asked for more, so QUIC flow control and stream credit push back on the peer, and the
//! driver takes at most a few dozen events from one connection before the others get a turn.
//! Datagrams are bounded by quinn's datagram receive buffer. Runtime services (spawn, timers)
//! come from the [`Runtime`] the driver passes in.
//!
//! To use more than one core, run one [`Relay`] per worker (see `moqt relay --workers`).

use std::task::Poll;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use moqt_proto::relay::{Node, NodeConfig, NodeEvent, NodeStats, SessionId};
use moqt_proto::session::{session_code, Config, Perspective};
use moqt_proto::{Dialect, Version};
use rustc_hash::FxHashMap;

use crate::connection::Connection;
use crate::driver::NodeDriver;
use crate::rt::{Runtime, Sleep};

mod gate;
mod pool;

pub use gate::{AccessHandle, AdmissionRequest, Decision, Gate, Gatekeeper};
pub use pool::{worker_hop_id, RelayPool, LINK_PATH};

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
    /// Datagrams dropped because a connection's queue to the owner was full (always 0 since
    /// the owner drives its connections itself; kept for the metrics family).
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
    /// Unused: the owner drives its connections itself, so datagrams wait only in quinn's
    /// datagram receive buffer (kept so that configurations keep working; default 256).
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
    /// A link between workers of one relay ([`RelayPool`]): trusted with full access, and not
    /// counted as a session (so a drain does not wait for it).
    pub internal: bool,
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
            driver: NodeDriver::new(Node::new(node_config, Instant::now()), runtime.clone()),
            gate: config.gate,
            template: config.session,
            conns: FxHashMap::default(),
            tx: tx.clone(),
            runtime: runtime.clone(),
            sessions_total: 0,
            sessions_closed: [0; CLOSE_CODES.len() + 1],
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

/// What the owner keeps about one session besides its node state and I/O.
struct Conn {
    done: Option<oneshot::Sender<()>>,
    internal: bool,
    kind: crate::connection::TransportKind,
    version: Version,
    remote: Option<std::net::SocketAddr>,
    admission: gate::Admission,
    /// The session's name for the gatekeeper (unique across the workers sharing it).
    gate_id: u64,
    label: Option<String>,
}

struct Owner {
    driver: NodeDriver,
    template: Config,
    conns: FxHashMap<SessionId, Conn>,
    tx: mpsc::UnboundedSender<OwnerMsg>,
    runtime: Runtime,
    sessions_total: u64,
    sessions_closed: [u64; CLOSE_CODES.len() + 1],
    gate: Option<Gate>,
}

impl Owner {
    fn node(&mut self) -> &mut Node {
        self.driver.node()
    }

    /// Open sessions, links between workers not counted.
    fn sessions(&self) -> usize {
        self.conns.values().filter(|c| !c.internal).count()
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<OwnerMsg>) {
        std::future::poll_fn(|cx| loop {
            // Control messages first (they are few), then the node and its connections until
            // nothing moves; the driver runs the node's timers.
            loop {
                match rx.poll_next_unpin(cx) {
                    Poll::Ready(Some(msg)) => self.on_msg(msg),
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            match self.driver.poll_event(cx) {
                Poll::Ready(event) => self.on_event(event),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await;
        self.driver.abort(session_code::NO_ERROR, "");
    }

    fn on_msg(&mut self, msg: OwnerMsg) {
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
                let sid = self.driver.add(*connection, config);
                let internal = info.internal;
                self.sessions_total += u64::from(!internal);
                let admission = gate::Admission::Open;
                let label = info.label.clone();
                let conn = Conn {
                    done: Some(done),
                    internal,
                    kind,
                    version,
                    remote: info.remote,
                    admission,
                    gate_id: 0,
                    label,
                };
                self.conns.insert(sid, conn);
                let admission = if internal {
                    self.node().set_access(sid, moqt_proto::access::Access::full(&moqt_proto::Path::root()), None);
                    gate::Admission::Open
                } else {
                    self.admission_start(sid, perspective, kind, version, info.target)
                };
                if let Some(conn) = self.conns.get_mut(&sid) {
                    conn.admission = admission;
                }
            }
            OwnerMsg::Decided { sid, decision } => self.decided(sid, decision),
            OwnerMsg::Goaway { uri } => self.node().goaway_all(&uri),
            OwnerMsg::CloseAll { code, reason } => {
                for sid in self.node().session_ids() {
                    self.node().close_session(sid, code, &reason);
                }
            }
            OwnerMsg::Sessions(reply) => {
                let _ = reply.send(self.sessions());
            }
            OwnerMsg::Links(reply) => {
                let node = self.driver.node();
                let mut links: Vec<LinkStats> = self
                    .conns
                    .iter()
                    .filter_map(|(sid, conn)| {
                        Some(LinkStats {
                            label: conn.label.clone()?,
                            version: conn.version,
                            price: node.link_price(*sid),
                            routes: node.routes_via(*sid),
                            upstream_subscriptions: node.feeds_through(*sid),
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
                    self.node().close_session(sid, code, &reason);
                }
            }
            OwnerMsg::Stats(reply) => {
                let internal = self.conns.len() - self.sessions();
                let node = self.driver.node();
                let queued_bytes =
                    node.session_ids().into_iter().filter_map(|id| node.session(id)).map(|s| s.queued_bytes()).sum();
                let mut node_stats = node.stats();
                // Links between workers are plumbing: leave them out of the figures.
                node_stats.sessions = node_stats.sessions.saturating_sub(internal);
                for (sid, _) in self.conns.iter().filter(|(_, c)| c.internal) {
                    let (served, held) = node.session_subscriptions(*sid);
                    node_stats.subscriptions = node_stats.subscriptions.saturating_sub(served);
                    node_stats.upstream_subscriptions = node_stats.upstream_subscriptions.saturating_sub(held);
                }
                let _ = reply.send(RelayStats {
                    node: node_stats,
                    recv_buffered: node.recv_buffered(),
                    queued_bytes,
                    cache_bytes: node.cache_bytes(),
                    open_streams: self.driver.open_streams(),
                    sessions_total: self.sessions_total,
                    datagrams_dropped: 0,
                    sessions_closed: self.sessions_closed,
                });
            }
        }
    }

    fn on_event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::SessionClosed { session, code, reason } => {
                tracing::debug!(?session, code, reason, "session closed");
                if !self.conns.get(&session).is_some_and(|c| c.internal) {
                    let slot = CLOSE_CODES.iter().position(|(c, _)| *c == code).unwrap_or(CLOSE_CODES.len());
                    self.sessions_closed[slot] += 1;
                }
                // The node has queued everything it had for the connection; the connection ends
                // once it has run those commands.
                self.driver.close(session, session_code::NO_ERROR, "");
                if let Some(mut conn) = self.conns.remove(&session) {
                    self.admission_ended(conn.admission, conn.gate_id, &reason);
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
}
