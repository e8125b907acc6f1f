//! The relay driver: one owner task holds the `moqt-proto` relay [`Node`] (origin, every
//! session, every track) and one I/O task per connection moves bytes for it.
//!
//! Per connection, a [`ConnectionIo`] runs in its own task and forwards its transport events to
//! the owner over an unbounded channel of owned values; the owner feeds them to the node, drains
//! every ready message before looking at the node's commands, and then hands each connection all
//! of its commands in one message. A frame fanned out to N
//! subscribers therefore costs N `Bytes` clones inside the node and about N channel sends, and
//! no lock is ever taken around protocol state. Runtime services (spawn, timers) come from the
//! [`Runtime`] the driver passes in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use moqt_proto::relay::{Node, NodeConfig, NodeEvent, NodeStats, SessionId};
use moqt_proto::session::{session_code, Command, Config, Perspective};
use moqt_proto::{Dialect, TransportEvent, Version};
use rustc_hash::FxHashMap;

use crate::connection::Connection;
use crate::io::ConnectionIo;
use crate::rt::{Runtime, Sleep};

mod gate;

pub use gate::{AccessHandle, AccessMetrics, AdmissionRequest, Decision, Gate, Gatekeeper};

/// Live counters for `/metrics`, updated by the owner after each batch (no lock).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sessions open.
    pub sessions: AtomicU64,
    /// Downstream subscriptions served.
    pub subscriptions: AtomicU64,
    /// Upstream subscriptions held.
    pub upstream_subscriptions: AtomicU64,
    /// Frames received.
    pub frames_in: AtomicU64,
    /// Frames queued to subscribers.
    pub frames_out: AtomicU64,
    /// Payload bytes received.
    pub bytes_in: AtomicU64,
    /// Payload bytes queued to subscribers.
    pub bytes_out: AtomicU64,
    /// Downstream groups dropped.
    pub groups_dropped: AtomicU64,
    /// Bytes in group caches.
    pub cache_bytes: AtomicU64,
    /// Sessions accepted since start.
    pub sessions_total: AtomicU64,
}

impl Metrics {
    fn store(&self, s: &NodeStats, cache_bytes: usize) {
        self.sessions.store(s.sessions as u64, Ordering::Relaxed);
        self.subscriptions.store(s.subscriptions as u64, Ordering::Relaxed);
        self.upstream_subscriptions.store(s.upstream_subscriptions as u64, Ordering::Relaxed);
        self.frames_in.store(s.frames_in, Ordering::Relaxed);
        self.frames_out.store(s.frames_out, Ordering::Relaxed);
        self.bytes_in.store(s.bytes_in, Ordering::Relaxed);
        self.bytes_out.store(s.bytes_out, Ordering::Relaxed);
        self.groups_dropped.store(s.groups_dropped, Ordering::Relaxed);
        self.cache_bytes.store(cache_bytes as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let g = |n: &str, help: &str, kind: &str, v: &AtomicU64| {
            format!("# HELP moqt_{n} {help}\n# TYPE moqt_{n} {kind}\nmoqt_{n} {}\n", v.load(Ordering::Relaxed))
        };
        [
            g("sessions", "Sessions open.", "gauge", &self.sessions),
            g("sessions_total", "Sessions accepted or dialled since start.", "counter", &self.sessions_total),
            g("subscriptions", "Downstream subscriptions being served.", "gauge", &self.subscriptions),
            g("upstream_subscriptions", "Upstream subscriptions held.", "gauge", &self.upstream_subscriptions),
            g("frames_in_total", "Frames received from publishers.", "counter", &self.frames_in),
            g("frames_out_total", "Frames queued to subscribers.", "counter", &self.frames_out),
            g("bytes_in_total", "Payload bytes received from publishers.", "counter", &self.bytes_in),
            g("bytes_out_total", "Payload bytes queued to subscribers.", "counter", &self.bytes_out),
            g(
                "groups_dropped_total",
                "Subscriber groups dropped (expired, over budget, stopped).",
                "counter",
                &self.groups_dropped,
            ),
            g("cache_bytes", "Bytes held in group caches.", "gauge", &self.cache_bytes),
        ]
        .concat()
    }
}

/// Relay settings beyond the node's.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The node (hop id, linger, cache).
    pub node: NodeConfig,
    /// Template for each session's configuration (limits, dialect); version and side are set
    /// per connection.
    pub session: Config,
    /// Who decides what accepted sessions may do (`None`: everyone may do everything).
    pub gate: Option<Gate>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { node: NodeConfig::default(), session: Config::new(Version::Lite06, Perspective::Server), gate: None }
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
}

enum OwnerMsg {
    Connect {
        connection: Connection,
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
}

/// A handle to a running relay owner.
#[derive(Clone)]
pub struct Relay {
    tx: mpsc::UnboundedSender<OwnerMsg>,
    metrics: Arc<Metrics>,
    access_metrics: Arc<AccessMetrics>,
}

impl Relay {
    /// Starts the owner task on `runtime`.
    pub fn start(config: RelayConfig, runtime: Runtime) -> Relay {
        let (tx, rx) = mpsc::unbounded();
        let metrics = Arc::new(Metrics::default());
        let access_metrics = Arc::new(AccessMetrics::default());
        let mut node_config = config.node.clone();
        node_config.require_access |= config.gate.is_some();
        let owner = Owner {
            node: Node::new(node_config, Instant::now()),
            gate: config.gate,
            access_metrics: access_metrics.clone(),
            template: config.session,
            conns: FxHashMap::default(),
            tx: tx.clone(),
            runtime: runtime.clone(),
            metrics: metrics.clone(),
        };
        runtime.spawn(Box::pin(owner.run(rx)));
        Relay { tx, metrics, access_metrics }
    }

    /// The core's access counters (requests refused, sessions expired).
    pub fn access_metrics(&self) -> Arc<AccessMetrics> {
        self.access_metrics.clone()
    }

    /// The live counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Hands a new connection (accepted, or dialled to a peer relay) to the relay; resolves when
    /// the connection has ended.
    pub async fn serve(&self, connection: Connection, version: Version, perspective: Perspective, dialect: Dialect) {
        let info = ConnectInfo { target: None, remote: Some(connection.peer_addr()) };
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
        let msg = OwnerMsg::Connect { connection, version, perspective, dialect, info, done };
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
    kind: crate::connection::TransportKind,
    version: Version,
    remote: Option<std::net::SocketAddr>,
    admission: gate::Admission,
}

struct Owner {
    node: Node,
    template: Config,
    conns: FxHashMap<SessionId, Conn>,
    tx: mpsc::UnboundedSender<OwnerMsg>,
    runtime: Runtime,
    metrics: Arc<Metrics>,
    gate: Option<Gate>,
    access_metrics: Arc<AccessMetrics>,
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
                let kind = connection.kind();
                if perspective == Perspective::Client && kind == crate::connection::TransportKind::RawQuic {
                    config.setup_path = info.target.clone().filter(|p| !p.is_empty() && p != "/");
                }
                let sid = self.node.add_session(config, now);
                self.metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
                let (io_tx, io_rx) = mpsc::unbounded();
                let admission = gate::Admission::Open;
                let remote = info.remote;
                let conn = Conn { io: io_tx, batch: Vec::new(), done: Some(done), kind, version, remote, admission };
                self.conns.insert(sid, conn);
                let admission = self.admission_start(sid, perspective, kind, version, info.target);
                if let Some(conn) = self.conns.get_mut(&sid) {
                    conn.admission = admission;
                }
                let io = ConnectionIo::new(connection);
                self.runtime.spawn(Box::pin(io_task(io, sid, self.tx.clone(), io_rx)));
            }
            OwnerMsg::Decided { sid, decision } => self.decided(sid, decision),
            OwnerMsg::Io { sid, event } => self.node.handle(sid, now, event),
            OwnerMsg::Goaway { uri } => self.node.goaway_all(&uri),
            OwnerMsg::CloseAll { code, reason } => {
                for sid in self.node.session_ids() {
                    self.node.close_session(sid, code, &reason);
                }
            }
            OwnerMsg::Sessions(reply) => {
                let _ = reply.send(self.conns.len());
            }
        }
    }

    /// Routes the node's commands to their connections, one message per connection.
    fn flush(&mut self) {
        while let Some((sid, cmd)) = self.node.poll_command() {
            if let Some(conn) = self.conns.get_mut(&sid) {
                conn.batch.push(cmd);
            }
        }
        while let Some(event) = self.node.poll_event() {
            match event {
                NodeEvent::SessionClosed { session, code, reason } => {
                    tracing::debug!(?session, code, reason, "session closed");
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
        for conn in self.conns.values_mut() {
            if !conn.batch.is_empty() {
                let _ = conn.io.unbounded_send(std::mem::take(&mut conn.batch));
            }
        }
        let stats = self.node.stats();
        self.metrics.store(&stats, self.node.cache_bytes());
        self.access_metrics.store(&stats.access);
    }
}

/// Moves one connection's bytes for the owner.
async fn io_task(
    mut io: ConnectionIo,
    sid: SessionId,
    owner: mpsc::UnboundedSender<OwnerMsg>,
    mut commands: mpsc::UnboundedReceiver<Vec<Command>>,
) {
    loop {
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
            event = io.next_event().fuse() => match event {
                Some(event) => {
                    if owner.unbounded_send(OwnerMsg::Io { sid, event }).is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
}
