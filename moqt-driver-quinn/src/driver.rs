//! A node and its connections in one task: the sans-IO [`Node`] plus one [`ConnectionIo`] per
//! session, driven from a single owner without locks or channels between them. Both the client
//! API (one session, more while it reconnects or migrates) and each relay worker (many sessions)
//! run on it.
//!
//! Every connection gets its own waker, which files the connection on a ready list before waking
//! the owner; a wake-up polls only the connections on the list, so a relay with thousands of
//! connections never scans them all. The loop in [`NodeDriver::poll_event`] follows the core's
//! run loop: timers that are due, then the node's commands to their connections, then the
//! node's events out, then the woken connections' transport events in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::task::{waker, ArcWake, AtomicWaker};
use moqt_proto::relay::{Node, NodeEvent, SessionId};
use moqt_proto::session::{session_code, Command, Config};
use moqt_proto::TransportEvent;
use rustc_hash::FxHashMap;

use crate::connection::Connection;
use crate::io::ConnectionIo;
use crate::rt::{Runtime, Sleep};

/// Transport events taken from one connection before the others get a turn.
const EVENTS_PER_TURN: usize = 64;

/// Node time one connection may take in a turn before the others get theirs: one event can cost
/// milliseconds (a chunk of announcements fanned out to many watchers), and sixty-four of those
/// in a row would hold every other connection's media back. Much shorter turns cost throughput:
/// a publisher's frames then wait a whole round of subscriber connections each (see docs/perf.md).
const TURN_BUDGET: Duration = Duration::from_millis(5);

/// Turns over the ready connections in one poll before the task yields to the runtime.
const ROUNDS_PER_POLL: usize = 32;

/// The connections that asked to be polled, and the owner task to wake.
#[derive(Default)]
struct Ready {
    list: Mutex<Vec<SessionId>>,
    owner: AtomicWaker,
}

/// One connection's waker: files it on the ready list (once) and wakes the owner.
struct ConnWaker {
    ready: Arc<Ready>,
    session: SessionId,
    filed: AtomicBool,
}

impl ArcWake for ConnWaker {
    fn wake_by_ref(this: &Arc<Self>) {
        if !this.filed.swap(true, Ordering::AcqRel) {
            this.ready.list.lock().unwrap_or_else(|e| e.into_inner()).push(this.session);
        }
        this.ready.owner.wake();
    }
}

struct Conn {
    io: ConnectionIo,
    waker: Arc<ConnWaker>,
    task_waker: Waker,
}

/// A node and the I/O of its connections. See the module docs.
pub struct NodeDriver {
    node: Node,
    conns: FxHashMap<SessionId, Conn>,
    ready: Arc<Ready>,
    /// Polled this turn already (so a busy connection cannot starve the others).
    batch: Vec<SessionId>,
    runtime: Runtime,
    timer: Option<Sleep>,
    /// Connections added from now on follow finished streams until acknowledged.
    track_acks: bool,
}

impl std::fmt::Debug for NodeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDriver").field("connections", &self.conns.len()).finish()
    }
}

impl NodeDriver {
    /// A driver for `node`, with timers on `runtime`.
    pub fn new(node: Node, runtime: Runtime) -> Self {
        Self {
            node,
            conns: FxHashMap::default(),
            ready: Arc::default(),
            batch: Vec::new(),
            runtime,
            timer: None,
            track_acks: false,
        }
    }

    /// Makes [`NodeDriver::flushed`] wait for the peer's acknowledgement of finished streams on
    /// connections added from now on (see [`ConnectionIo::track_acks`]).
    pub fn track_acks(&mut self) {
        self.track_acks = true;
    }

    /// Whether a session has nothing left to deliver: its core queues are empty, every track it
    /// ended was confirmed by the subscriber, and its connection has no write in flight (and,
    /// with [`NodeDriver::track_acks`], every finished stream was acknowledged). A session that
    /// is gone counts as flushed.
    pub fn flushed(&self, session: SessionId) -> bool {
        let core = self.node.session(session).is_none_or(|s| s.queued_bytes() == 0 && s.unconfirmed_ends() == 0);
        core && self.conns.get(&session).is_none_or(|c| c.io.flushed())
    }

    /// The node, for the application's calls; what they produce goes out on the next poll.
    pub fn node(&mut self) -> &mut Node {
        &mut self.node
    }

    /// Connections being driven.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The connection of a session.
    pub fn connection(&self, session: SessionId) -> Option<&Connection> {
        self.conns.get(&session).map(|c| c.io.connection())
    }

    /// Adds a session to the node for an established connection, and drives its I/O.
    pub fn add(&mut self, connection: Connection, config: Config) -> SessionId {
        let session = self.node.add_session(config, Instant::now());
        let waker = Arc::new(ConnWaker { ready: self.ready.clone(), session, filed: AtomicBool::new(false) });
        let task_waker = waker_of(&waker);
        let mut io = ConnectionIo::new(connection);
        if self.track_acks {
            io.track_acks();
        }
        self.conns.insert(session, Conn { io, waker, task_waker });
        self.file(session);
        session
    }

    /// Closes every connection at once (the node has already closed its sessions or will not
    /// hear from them again).
    pub fn abort(&mut self, code: u64, reason: &str) {
        for conn in self.conns.values_mut() {
            conn.io.command(Command::Close { code, reason: reason.to_owned() });
        }
    }

    /// Closes one session's connection (a no-op if it is closed already or gone); the driver
    /// keeps polling it until the transport reports the end.
    pub fn close(&mut self, session: SessionId, code: u64, reason: &str) {
        if let Some(conn) = self.conns.get_mut(&session) {
            conn.io.command(Command::Close { code, reason: reason.to_owned() });
            self.file(session);
        }
    }

    /// Stream directions open across the connections (walks them: for metrics, not per event).
    pub fn open_streams(&self) -> usize {
        self.conns.values().map(|c| c.io.open_streams()).sum()
    }

    /// Files `session` for polling on the next turn.
    fn file(&self, session: SessionId) {
        if let Some(conn) = self.conns.get(&session) {
            ConnWaker::wake_by_ref(&conn.waker);
        }
    }

    /// Runs the loop until the node has an event for the application (or nothing to do).
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<NodeEvent> {
        self.ready.owner.register(cx.waker());
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > ROUNDS_PER_POLL {
                // Still busy: yield to the runtime (and the owner's other work), then go on.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let now = Instant::now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
            self.flush();
            if let Some(event) = self.node.poll_event() {
                return Poll::Ready(event);
            }
            let moved = self.poll_connections();
            let filed = !self.batch.is_empty() || !self.ready.list.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if !moved && !filed {
                break;
            }
        }
        match (self.node.poll_timeout(), &mut self.timer) {
            (Some(d), Some(t)) => t.reset(d),
            (Some(d), None) => self.timer = Some(Sleep::until(&self.runtime, d)),
            (None, _) => self.timer = None,
        }
        if let Some(timer) = &mut self.timer {
            if timer.poll_expired(cx).is_ready() {
                // Due now: come straight back.
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }

    /// Hands the node's commands to their connections.
    fn flush(&mut self) {
        while let Some((session, cmd)) = self.node.poll_command() {
            if let Some(conn) = self.conns.get_mut(&session) {
                conn.io.command(cmd);
                // The command may have started an operation that needs its first poll.
                if !conn.waker.filed.swap(true, Ordering::AcqRel) {
                    self.batch.push(session);
                }
            }
        }
    }

    /// Feeds the woken connections' events to the node; returns whether any came.
    fn poll_connections(&mut self) -> bool {
        {
            let mut list = self.ready.list.lock().unwrap_or_else(|e| e.into_inner());
            self.batch.append(&mut list);
        }
        if self.batch.is_empty() {
            return false;
        }
        let mut moved = false;
        for session in std::mem::take(&mut self.batch) {
            let Some(conn) = self.conns.get_mut(&session) else { continue };
            conn.waker.filed.store(false, Ordering::Release);
            let task_waker = conn.task_waker.clone();
            let mut cx = Context::from_waker(&task_waker);
            let mut ended = false;
            let mut exhausted = true;
            let start = Instant::now();
            for _ in 0..EVENTS_PER_TURN {
                let Some(conn) = self.conns.get_mut(&session) else { break };
                match conn.io.poll_event(&mut cx) {
                    Poll::Ready(Some(event)) => {
                        moved = true;
                        self.node.handle(session, Instant::now(), event);
                        // Commands may be for this connection: run them before reading on.
                        self.flush();
                        if start.elapsed() >= TURN_BUDGET {
                            // Its time is up: the rest waits for the connection's next turn.
                            break;
                        }
                    }
                    Poll::Ready(None) => {
                        ended = true;
                        break;
                    }
                    Poll::Pending => {
                        exhausted = false;
                        break;
                    }
                }
            }
            if ended {
                self.conns.remove(&session);
                let gone = TransportEvent::Closed { code: session_code::INTERNAL, reason: "transport ended".into() };
                // Harmless if the node already knows (a closed session ignores it).
                self.node.handle(session, Instant::now(), gone);
                moved = true;
            } else if exhausted {
                // Out of turns with events left: come back to it after the others.
                self.file(session);
            }
        }
        moved
    }
}

fn waker_of(w: &Arc<ConnWaker>) -> Waker {
    waker(w.clone())
}
