//! The shared state of one QMux-over-WebSocket connection and the handles the application holds
//! on it ([`QmuxConnection`], [`QmuxSend`], [`QmuxRecv`]).
//!
//! The sans-IO [`moqt_qmux::Connection`] sits behind one mutex with the wakers of everything
//! waiting on it. Handle calls lock it for a few instructions (never across an await), call the
//! connection, route the events it produced to the waiting tasks and wake the I/O task
//! (`task.rs`), which moves records between the connection and the WebSocket. Each operation
//! that cannot proceed registers its waker under the stream or queue it waits on, so a
//! connection with thousands of idle streams costs nothing per poll.
//!
//! Semantics follow quinn's where the driver relies on them: dropping a send half finishes it,
//! dropping a receive half that was not read to the end stops it with code 0, dropping the last
//! handle closes the connection with code 0, a STOP_SENDING is reported by writes and by
//! [`QmuxSend::poll_stopped`], a reset by reads. "Acknowledged" (what `stopped` waits for after
//! a FIN) means handed to the WebSocket: TCP delivers in order, so a close sent later cannot
//! overtake it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

use moqt_qmux::{Connection as Qmux, Dir, Event, StreamId};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::connection::ConnectionError;

/// Wakers of the tasks waiting on one condition; registering twice is a no-op.
#[derive(Debug, Default)]
struct Waiters(Vec<Waker>);

impl Waiters {
    fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    fn drain_into(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.0);
    }
}

fn dir_idx(dir: Dir) -> usize {
    match dir {
        Dir::Bi => 0,
        Dir::Uni => 1,
    }
}

/// Maps how the sans-IO connection ended to this crate's error.
fn close_error(err: &moqt_qmux::ConnectionError) -> ConnectionError {
    use moqt_qmux::ConnectionError as E;
    match err {
        E::PeerClose { code, reason } => {
            ConnectionError::Closed { code: *code, reason: String::from_utf8_lossy(reason).into_owned() }
        }
        E::LocalClose { .. } => ConnectionError::LocallyClosed,
        E::IdleTimeout | E::HandshakeTimeout => ConnectionError::TimedOut,
        E::LocalTransport(e) => ConnectionError::Transport(format!("qmux: peer sent bad input: {e}")),
        E::PeerTransport { .. } => ConnectionError::Transport(format!("qmux: {err}")),
        E::TransportClosed => ConnectionError::Transport("WebSocket closed".to_owned()),
    }
}

/// Everything behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// The sans-IO connection.
    pub(crate) conn: Qmux,
    /// Peer streams not accepted yet, per direction (bidi, uni).
    incoming: [VecDeque<StreamId>; 2],
    accepting: [Waiters; 2],
    opening: [Waiters; 2],
    readers: FxHashMap<StreamId, Waker>,
    writers: FxHashMap<StreamId, Waker>,
    /// `stopped` futures: woken by STOP_SENDING or once the send half has left.
    watchers: FxHashMap<StreamId, Waker>,
    /// Receive halves a handle exists (or waits to be accepted) for.
    recv_live: FxHashSet<StreamId>,
    /// Send halves a handle exists (or waits to be accepted) for.
    send_live: FxHashSet<StreamId>,
    /// Peer resets not yet reported to a reader.
    resets: FxHashMap<StreamId, u64>,
    /// Peer STOP_SENDING codes, reported by every later write.
    stops: FxHashMap<StreamId, u64>,
    datagrams: Waiters,
    closing: Waiters,
    /// Waiting for the peer's transport parameters.
    connecting: Waiters,
    closed: Option<ConnectionError>,
    /// The I/O task.
    driver: Option<Waker>,
    /// Wakers to call once the lock is released.
    wake: Vec<Waker>,
}

impl State {
    fn new(conn: Qmux) -> State {
        State {
            conn,
            incoming: Default::default(),
            accepting: Default::default(),
            opening: Default::default(),
            readers: FxHashMap::default(),
            writers: FxHashMap::default(),
            watchers: FxHashMap::default(),
            recv_live: FxHashSet::default(),
            send_live: FxHashSet::default(),
            resets: FxHashMap::default(),
            stops: FxHashMap::default(),
            datagrams: Waiters::default(),
            closing: Waiters::default(),
            connecting: Waiters::default(),
            closed: None,
            driver: None,
            wake: Vec::new(),
        }
    }

    /// Routes the connection's events to the tasks waiting for them.
    pub(crate) fn dispatch(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Connected => {
                    for w in &mut self.opening {
                        w.drain_into(&mut self.wake);
                    }
                    self.connecting.drain_into(&mut self.wake);
                }
                Event::StreamsAvailable(dir) => self.opening[dir_idx(dir)].drain_into(&mut self.wake),
                Event::StreamOpened(id) => {
                    let role = self.conn.role();
                    if id.can_recv(role) {
                        self.recv_live.insert(id);
                    }
                    if id.can_send(role) {
                        self.send_live.insert(id);
                    }
                    self.incoming[dir_idx(id.dir())].push_back(id);
                    self.accepting[dir_idx(id.dir())].drain_into(&mut self.wake);
                }
                Event::Readable(id) => self.wake.extend(self.readers.remove(&id)),
                Event::Writable(id) => self.wake.extend(self.writers.remove(&id)),
                Event::Reset { id, code } => {
                    if self.recv_live.contains(&id) {
                        self.resets.insert(id, code);
                    }
                    self.wake.extend(self.readers.remove(&id));
                }
                Event::StopSending { id, code } => {
                    if self.send_live.contains(&id) {
                        self.stops.insert(id, code);
                    }
                    self.wake.extend(self.writers.remove(&id));
                    self.wake.extend(self.watchers.remove(&id));
                }
                Event::DatagramsReadable => self.datagrams.drain_into(&mut self.wake),
                Event::Closed(err) => {
                    tracing::debug!(%err, "qmux connection closed");
                    self.closed = Some(close_error(&err));
                    self.wake_all();
                }
            }
        }
    }

    /// Wakes every waiting task (the connection ended).
    fn wake_all(&mut self) {
        for w in self.accepting.iter_mut().chain(self.opening.iter_mut()) {
            w.drain_into(&mut self.wake);
        }
        self.wake.extend(self.readers.drain().map(|(_, w)| w));
        self.wake.extend(self.writers.drain().map(|(_, w)| w));
        self.wake.extend(self.watchers.drain().map(|(_, w)| w));
        self.datagrams.drain_into(&mut self.wake);
        self.closing.drain_into(&mut self.wake);
        self.connecting.drain_into(&mut self.wake);
        self.incoming = Default::default();
        self.recv_live.clear();
        self.send_live.clear();
        self.resets.clear();
        self.stops.clear();
    }

    /// Wakes the `stopped` futures whose send half has left the connection.
    pub(crate) fn check_watchers(&mut self) {
        if self.watchers.is_empty() {
            return;
        }
        let conn = &self.conn;
        let done: Vec<StreamId> = self.watchers.keys().copied().filter(|id| !conn.send_pending(*id)).collect();
        for id in done {
            self.wake.extend(self.watchers.remove(&id));
        }
    }

    /// Registers the I/O task's waker.
    pub(crate) fn set_driver(&mut self, waker: &Waker) {
        if !self.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.driver = Some(waker.clone());
        }
    }

    /// Takes the wakers to call after unlocking.
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.wake)
    }

    /// Why the connection ended (for calls refused because it did).
    pub(crate) fn closed_error(&self) -> ConnectionError {
        self.closed.clone().unwrap_or(ConnectionError::LocallyClosed)
    }

    /// Why the connection ended, or `None` while open.
    pub(crate) fn closed_reason(&self) -> Option<ConnectionError> {
        self.closed.clone()
    }

    /// A stream we opened now has handles.
    pub(crate) fn live(&mut self, id: StreamId) {
        let role = self.conn.role();
        if id.can_send(role) {
            self.send_live.insert(id);
        }
        if id.can_recv(role) {
            self.recv_live.insert(id);
        }
    }

    pub(crate) fn next_incoming(&mut self, dir: Dir) -> Option<StreamId> {
        self.incoming[dir_idx(dir)].pop_front()
    }

    pub(crate) fn wait_open(&mut self, dir: Dir, waker: &Waker) {
        self.opening[dir_idx(dir)].register(waker);
    }

    pub(crate) fn wait_accept(&mut self, dir: Dir, waker: &Waker) {
        self.accepting[dir_idx(dir)].register(waker);
    }

    pub(crate) fn wait_datagram(&mut self, waker: &Waker) {
        self.datagrams.register(waker);
    }

    pub(crate) fn wait_connected(&mut self, waker: &Waker) {
        self.connecting.register(waker);
    }

    pub(crate) fn wait_closed(&mut self, waker: &Waker) {
        self.closing.register(waker);
    }

    pub(crate) fn wait_read(&mut self, id: StreamId, waker: &Waker) {
        self.readers.insert(id, waker.clone());
    }

    pub(crate) fn wait_write(&mut self, id: StreamId, waker: &Waker) {
        self.writers.insert(id, waker.clone());
    }

    pub(crate) fn wait_stopped(&mut self, id: StreamId, waker: &Waker) {
        self.watchers.insert(id, waker.clone());
    }

    /// The peer's STOP_SENDING code for a send half, once received.
    pub(crate) fn stop_code(&self, id: StreamId) -> Option<u64> {
        self.stops.get(&id).copied()
    }

    /// The peer's reset of a receive half, reported once.
    pub(crate) fn take_reset(&mut self, id: StreamId) -> Option<u64> {
        self.resets.remove(&id)
    }

    /// The send handle of `id` is gone.
    pub(crate) fn forget_send(&mut self, id: StreamId) {
        self.send_live.remove(&id);
        self.stops.remove(&id);
        self.writers.remove(&id);
        self.watchers.remove(&id);
    }

    /// The receive handle of `id` is gone.
    pub(crate) fn forget_recv(&mut self, id: StreamId) {
        self.recv_live.remove(&id);
        self.resets.remove(&id);
        self.readers.remove(&id);
    }
}

/// The state one connection's handles and its I/O task share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) peer: SocketAddr,
    pub(crate) subprotocol: String,
}

impl Shared {
    pub(crate) fn new(conn: Qmux, peer: SocketAddr, subprotocol: String) -> Shared {
        Shared { state: Mutex::new(State::new(conn)), peer, subprotocol }
    }

    /// Locks the state (a poisoned lock is taken over: every call leaves the state consistent).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the locked state, routes the events it produced, then (unlocked) wakes the
    /// tasks it made ready and, with `kick`, the I/O task (there may be something to send).
    pub(crate) fn with<R>(&self, kick: bool, f: impl FnOnce(&mut State) -> R) -> R {
        let (result, wake) = {
            let mut state = self.lock();
            let result = f(&mut state);
            state.dispatch();
            let mut wake = state.take_wakers();
            if kick {
                wake.extend(state.driver.clone());
            }
            (result, wake)
        };
        for w in wake {
            w.wake();
        }
        result
    }
}
