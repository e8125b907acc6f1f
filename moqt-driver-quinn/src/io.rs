//! Per-connection I/O: a transport [`Session`] turned into a stream of [`TransportEvent`]s, and
//! [`IoCommand`]s carrying owned chunks turned into stream operations. Plus [`Pump`], the
//! mapping between a `moqt-proto` core and this vocabulary.
//!
//! # Design
//!
//! The protocol state (`moqt_proto::Session`) is owned by exactly one task and never locked.
//! The I/O for one connection is split off into [`ConnectionIo`], which knows nothing about
//! moq-lite:
//!
//! * it accepts uni/bidi streams and names them `StreamId::remote(counter, uni)`;
//! * it reads a stream only when granted ([`IoCommand::Read`] with the core's `recv_credit`),
//!   one read in flight per stream, so unread data stays in quinn and QUIC flow control pushes
//!   back on the peer; chunks are handed over as the `Bytes` quinn produced (zero copy);
//! * it writes owned chunks ([`IoCommand::Write`], clones of the core's queued `Bytes`) with one
//!   `write_chunks` in flight per stream and reports how much the transport took
//!   ([`IoEvent::Written`]); the core keeps the bytes until then, so a blocked stream shows up as
//!   a queue inside the core, where stale groups are dropped instead of buffered;
//! * it opens streams asynchronously for [`IoCommand::Open`], holding the first write, read
//!   grant, reset or priority until the open completes;
//! * a reset or stop for a stream with an operation in flight cancels that operation (quinn's
//!   `write_chunks`/`read_chunk` are cancel safe) and then applies the code;
//! * it moves datagrams both ways and reports the end of the connection once, as
//!   `TransportEvent::Closed`.
//!
//! Every pending operation is one boxed future in a `FuturesUnordered`, woken individually, so
//! a connection with thousands of streams costs nothing per idle stream.
//!
//! Two owners use the same pieces:
//! * a *client* owner (one session per task, [`crate::moq`]) holds the core, a `ConnectionIo`
//!   and a [`Pump`] in one task and calls [`ConnectionIo::poll_event`] /
//!   [`ConnectionIo::command`] directly;
//! * a future *relay* owner (one task owning many sessions) can run each `ConnectionIo` in its
//!   own task, forwarding `IoEvent`s to the owner over a channel and executing the `IoCommand`s
//!   it sends back (batched per wakeup), with one `Pump` per session inside the owner. Every
//!   value crossing that boundary is owned (`Bytes`, ids, codes), so this needs no change here.
//!
//! Stream error codes: web-transport-quinn maps WebTransport codes to and from the HTTP/3 space;
//! on raw QUIC codes travel as they are. Codes above `u32::MAX` are clamped when sent.
//!
//! This module never parses moq-lite and never decides what to do with a stream.

use std::collections::VecDeque;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{BoxFuture, Either};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use moqt_proto::relay::{Node, SessionId};
use moqt_proto::session::{session_code, Command, Session as Core, StreamId, TransportEvent};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;

use crate::session::{RecvStream, SendStream, Session, SessionError, StreamError, Written};

/// Owned chunks of one write.
pub type Chunks = SmallVec<[Bytes; 4]>;

/// At most this many chunks go into one write.
const MAX_CHUNKS_PER_WRITE: usize = 16;

/// What the owner asks the I/O layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoCommand {
    /// Open a stream (uni or bidi per the id bits) and map it to `id`.
    Open {
        /// The core's handle.
        id: StreamId,
        /// Initial send priority (higher first).
        priority: i32,
    },
    /// Read at most `max` bytes from `id` once (0: stop reading and forget the receive side).
    Read {
        /// The stream.
        id: StreamId,
        /// The byte budget (the core's `recv_credit`).
        max: usize,
    },
    /// Write these chunks (then FIN if `fin` and all of them were taken). Answered by exactly
    /// one [`IoEvent::Written`].
    Write {
        /// The stream.
        id: StreamId,
        /// The data (clones of the core's queue).
        chunks: Chunks,
        /// FIN after the chunks.
        fin: bool,
    },
    /// Reset our send side.
    Reset {
        /// The stream.
        id: StreamId,
        /// The code.
        code: u64,
    },
    /// Ask the peer to stop sending.
    StopSending {
        /// The stream.
        id: StreamId,
        /// The code.
        code: u64,
    },
    /// Change the send priority.
    SetPriority {
        /// The stream.
        id: StreamId,
        /// Higher first.
        priority: i32,
    },
    /// Send a datagram (dropped if it does not fit now).
    Datagram(Bytes),
    /// Close the connection.
    Close {
        /// Session close code.
        code: u64,
        /// Reason.
        reason: String,
    },
}

/// What the I/O layer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoEvent {
    /// A transport event for the core.
    Transport(TransportEvent),
    /// A [`IoCommand::Write`] completed.
    Written {
        /// The stream.
        id: StreamId,
        /// Bytes the transport took (a prefix of the chunks).
        bytes: usize,
        /// FIN was handed over too.
        fin: bool,
        /// The stream cannot take more (stopped, reset, gone): do not write again.
        closed: bool,
    },
}

/// Operations not yet applicable because the stream is opening or busy.
#[derive(Debug, Default)]
struct Pending {
    write: Option<(Chunks, bool)>,
    reset: Option<u64>,
    priority: Option<i32>,
}

#[derive(Debug)]
enum SendSlot {
    Opening(Pending),
    Idle(SendStream),
    Busy { cancel: Option<oneshot::Sender<()>>, pending: Pending },
}

#[derive(Debug)]
enum RecvSlot {
    Opening { grant: Option<usize>, stop: Option<u64> },
    Idle(RecvStream),
    Busy { cancel: Option<oneshot::Sender<()>>, stop: Option<u64> },
}

enum Done {
    AcceptUni(Result<RecvStream, SessionError>),
    AcceptBi(Result<(SendStream, RecvStream), SessionError>),
    Opened { id: StreamId, result: Result<(SendStream, Option<RecvStream>), SessionError> },
    Read { id: StreamId, stream: RecvStream, result: Option<Result<Option<Bytes>, StreamError>> },
    Wrote { id: StreamId, stream: SendStream, total: usize, fin: bool, result: Option<Result<Written, StreamError>> },
    Datagram(Result<Bytes, SessionError>),
    Closed(SessionError),
}

fn clamp(code: u64) -> u32 {
    u32::try_from(code).unwrap_or(u32::MAX)
}

/// The I/O of one connection. See the module docs.
pub struct ConnectionIo {
    session: Session,
    futures: FuturesUnordered<BoxFuture<'static, Done>>,
    ready: VecDeque<IoEvent>,
    sends: FxHashMap<StreamId, SendSlot>,
    recvs: FxHashMap<StreamId, RecvSlot>,
    next_remote: u64,
    local_close: Option<(u64, String)>,
    closed: bool,
}

impl std::fmt::Debug for ConnectionIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionIo")
            .field("session", &self.session.id())
            .field("sends", &self.sends.len())
            .field("recvs", &self.recvs.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl ConnectionIo {
    /// Starts accepting streams and datagrams on `session`.
    pub fn new(session: Session) -> ConnectionIo {
        let mut io = ConnectionIo {
            session,
            futures: FuturesUnordered::new(),
            ready: VecDeque::new(),
            sends: FxHashMap::default(),
            recvs: FxHashMap::default(),
            next_remote: 0,
            local_close: None,
            closed: false,
        };
        io.accept_uni();
        io.accept_bi();
        io.read_datagram();
        let s = io.session.clone();
        io.futures.push(Box::pin(async move { Done::Closed(s.closed().await) }));
        io
    }

    /// The transport session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn accept_uni(&mut self) {
        let s = self.session.clone();
        self.futures.push(Box::pin(async move { Done::AcceptUni(s.accept_uni().await) }));
    }

    fn accept_bi(&mut self) {
        let s = self.session.clone();
        self.futures.push(Box::pin(async move { Done::AcceptBi(s.accept_bi().await) }));
    }

    fn read_datagram(&mut self) {
        let s = self.session.clone();
        self.futures.push(Box::pin(async move { Done::Datagram(s.read_datagram().await) }));
    }

    fn remote_id(&mut self, uni: bool) -> StreamId {
        let id = StreamId::remote(self.next_remote, uni);
        self.next_remote += 1;
        id
    }

    /// The next event; `None` once the connection has closed and `Closed` was reported.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<IoEvent>> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Poll::Ready(Some(ev));
            }
            if self.closed {
                return Poll::Ready(None);
            }
            match self.futures.poll_next_unpin(cx) {
                Poll::Ready(Some(done)) => self.complete(done),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Waits for the next event.
    pub async fn next_event(&mut self) -> Option<IoEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn complete(&mut self, done: Done) {
        if self.closed {
            return;
        }
        match done {
            Done::AcceptUni(Ok(stream)) => {
                self.accept_uni();
                let id = self.remote_id(true);
                self.recvs.insert(id, RecvSlot::Idle(stream));
                self.ready.push_back(IoEvent::Transport(TransportEvent::StreamOpened(id)));
            }
            Done::AcceptBi(Ok((send, recv))) => {
                self.accept_bi();
                let id = self.remote_id(false);
                self.sends.insert(id, SendSlot::Idle(send));
                self.recvs.insert(id, RecvSlot::Idle(recv));
                self.ready.push_back(IoEvent::Transport(TransportEvent::StreamOpened(id)));
            }
            // The connection is going away; `Closed` reports it.
            Done::AcceptUni(Err(_)) | Done::AcceptBi(Err(_)) => {}
            Done::Opened { id, result } => self.on_opened(id, result),
            Done::Read { id, stream, result } => self.on_read(id, stream, result),
            Done::Wrote { id, stream, total, fin, result } => self.on_wrote(id, stream, total, fin, result),
            Done::Datagram(Ok(data)) => {
                self.read_datagram();
                self.ready.push_back(IoEvent::Transport(TransportEvent::Datagram(data)));
            }
            Done::Datagram(Err(_)) => {}
            Done::Closed(err) => {
                let (code, reason) = match err {
                    SessionError::Closed { code, reason } => (code, reason),
                    SessionError::LocallyClosed => self.local_close.clone().unwrap_or((0, String::new())),
                    SessionError::TimedOut => (session_code::TIMEOUT, "idle timeout".to_owned()),
                    other => (session_code::INTERNAL, other.to_string()),
                };
                tracing::debug!(id = self.session.id(), code, reason, "connection closed");
                self.ready.push_back(IoEvent::Transport(TransportEvent::Closed { code, reason }));
                self.shut();
            }
        }
    }

    /// Forgets every stream and pending operation.
    fn shut(&mut self) {
        self.closed = true;
        self.futures = FuturesUnordered::new();
        self.sends.clear();
        self.recvs.clear();
    }

    fn on_opened(&mut self, id: StreamId, result: Result<(SendStream, Option<RecvStream>), SessionError>) {
        let send_slot = self.sends.remove(&id);
        let recv_slot = self.recvs.remove(&id);
        let Ok((send, recv)) = result else {
            // Only a dying connection fails to open; report the pending write as stuck.
            if let Some(SendSlot::Opening(p)) = send_slot {
                if p.write.is_some() {
                    self.ready.push_back(IoEvent::Written { id, bytes: 0, fin: false, closed: true });
                }
            }
            return;
        };
        if let (Some(recv), Some(RecvSlot::Opening { grant, stop })) = (recv, recv_slot) {
            self.recvs.insert(id, RecvSlot::Idle(recv));
            if let Some(code) = stop {
                self.stop(id, code);
            } else if let Some(max) = grant {
                self.read(id, max);
            }
        }
        match send_slot {
            Some(SendSlot::Opening(pending)) => {
                self.sends.insert(id, SendSlot::Idle(send));
                self.apply_pending(id, pending);
            }
            // Reset before it opened: abandon the fresh stream.
            _ => {
                let mut send = send;
                let _ = send.reset(0);
            }
        }
    }

    fn apply_pending(&mut self, id: StreamId, pending: Pending) {
        if let Some(priority) = pending.priority {
            self.set_priority(id, priority);
        }
        if let Some(code) = pending.reset {
            if pending.write.is_some() {
                self.ready.push_back(IoEvent::Written { id, bytes: 0, fin: false, closed: true });
            }
            self.reset(id, code);
            return;
        }
        if let Some((chunks, fin)) = pending.write {
            self.write(id, chunks, fin);
        }
    }

    fn on_read(&mut self, id: StreamId, mut stream: RecvStream, result: Option<Result<Option<Bytes>, StreamError>>) {
        let stop = match self.recvs.remove(&id) {
            Some(RecvSlot::Busy { stop, .. }) => stop,
            _ => None,
        };
        match result {
            None => {
                // Cancelled: apply the stop that cancelled it.
                let _ = stream.stop(clamp(stop.unwrap_or(0)));
            }
            Some(Ok(Some(data))) => {
                if let Some(code) = stop {
                    let _ = stream.stop(clamp(code));
                    return;
                }
                self.recvs.insert(id, RecvSlot::Idle(stream));
                self.ready.push_back(IoEvent::Transport(TransportEvent::StreamData { id, data, fin: false }));
            }
            Some(Ok(None)) => self.ready.push_back(IoEvent::Transport(TransportEvent::StreamData {
                id,
                data: Bytes::new(),
                fin: true,
            })),
            Some(Err(StreamError::Reset(code))) => {
                self.ready.push_back(IoEvent::Transport(TransportEvent::StreamReset { id, code: code.into() }))
            }
            Some(Err(StreamError::InvalidCode(code))) => {
                self.ready.push_back(IoEvent::Transport(TransportEvent::StreamReset { id, code }))
            }
            Some(Err(_)) => {}
        }
    }

    fn on_wrote(
        &mut self,
        id: StreamId,
        mut stream: SendStream,
        total: usize,
        fin: bool,
        result: Option<Result<Written, StreamError>>,
    ) {
        let pending = match self.sends.remove(&id) {
            Some(SendSlot::Busy { pending, .. }) => pending,
            _ => Pending::default(),
        };
        match result {
            Some(Ok(written)) => {
                let mut fin_sent = false;
                if fin && written.bytes == total {
                    fin_sent = stream.finish().is_ok();
                }
                self.ready.push_back(IoEvent::Written { id, bytes: written.bytes, fin: fin_sent, closed: fin_sent });
                if !fin_sent {
                    self.sends.insert(id, SendSlot::Idle(stream));
                    self.apply_pending(id, pending);
                }
            }
            Some(Err(err)) => {
                self.ready.push_back(IoEvent::Written { id, bytes: 0, fin: false, closed: true });
                match err {
                    StreamError::Stopped(code) => {
                        self.ready.push_back(IoEvent::Transport(TransportEvent::StopSending { id, code: code.into() }))
                    }
                    StreamError::InvalidCode(code) => {
                        self.ready.push_back(IoEvent::Transport(TransportEvent::StopSending { id, code }))
                    }
                    _ => {}
                }
            }
            None => {
                // Cancelled by a reset: nothing of this write was taken.
                self.ready.push_back(IoEvent::Written { id, bytes: 0, fin: false, closed: true });
                let _ = stream.reset(clamp(pending.reset.unwrap_or(0)));
            }
        }
    }

    /// Executes one command.
    pub fn command(&mut self, cmd: IoCommand) {
        if self.closed {
            return;
        }
        match cmd {
            IoCommand::Open { id, priority } => self.open(id, priority),
            IoCommand::Read { id, max } => self.read(id, max),
            IoCommand::Write { id, chunks, fin } => self.write(id, chunks, fin),
            IoCommand::Reset { id, code } => self.reset(id, code),
            IoCommand::StopSending { id, code } => self.stop(id, code),
            IoCommand::SetPriority { id, priority } => self.set_priority(id, priority),
            IoCommand::Datagram(data) => {
                if let Err(err) = self.session.send_datagram(data) {
                    tracing::trace!(%err, "datagram not sent");
                }
            }
            IoCommand::Close { code, reason } => {
                self.local_close = Some((code, reason.clone()));
                self.session.close(clamp(code), &reason);
            }
        }
    }

    fn open(&mut self, id: StreamId, priority: i32) {
        let s = self.session.clone();
        let uni = id.is_uni();
        self.sends.insert(id, SendSlot::Opening(Pending { priority: Some(priority), ..Pending::default() }));
        if !uni {
            self.recvs.insert(id, RecvSlot::Opening { grant: None, stop: None });
        }
        self.futures.push(Box::pin(async move {
            let result = if uni {
                s.open_uni().await.map(|send| (send, None))
            } else {
                s.open_bi().await.map(|(send, recv)| (send, Some(recv)))
            };
            Done::Opened { id, result }
        }));
    }

    fn read(&mut self, id: StreamId, max: usize) {
        match self.recvs.get_mut(&id) {
            Some(RecvSlot::Opening { grant, .. }) => *grant = Some(max),
            Some(RecvSlot::Idle(_)) if max == 0 => {
                self.recvs.remove(&id);
            }
            Some(RecvSlot::Idle(_)) => {
                let Some(RecvSlot::Idle(mut stream)) = self.recvs.remove(&id) else { unreachable!() };
                let (tx, rx) = oneshot::channel();
                self.recvs.insert(id, RecvSlot::Busy { cancel: Some(tx), stop: None });
                self.futures.push(Box::pin(async move {
                    let result = {
                        let read = std::pin::pin!(stream.read_chunk(max));
                        match futures::future::select(read, rx).await {
                            Either::Left((r, _)) => Some(r),
                            Either::Right(_) => None,
                        }
                    };
                    Done::Read { id, stream, result }
                }));
            }
            // A read is in flight (the grant is a duplicate) or the stream is gone.
            Some(RecvSlot::Busy { .. }) | None => {}
        }
    }

    fn write(&mut self, id: StreamId, chunks: Chunks, fin: bool) {
        match self.sends.get_mut(&id) {
            Some(SendSlot::Opening(p)) | Some(SendSlot::Busy { pending: p, .. }) => p.write = Some((chunks, fin)),
            Some(SendSlot::Idle(_)) => {
                let Some(SendSlot::Idle(mut stream)) = self.sends.remove(&id) else { unreachable!() };
                let total: usize = chunks.iter().map(Bytes::len).sum();
                if total == 0 {
                    let fin_sent = fin && stream.finish().is_ok();
                    self.ready.push_back(IoEvent::Written { id, bytes: 0, fin: fin_sent, closed: fin_sent });
                    if !fin_sent {
                        self.sends.insert(id, SendSlot::Idle(stream));
                    }
                    return;
                }
                let (tx, rx) = oneshot::channel();
                self.sends.insert(id, SendSlot::Busy { cancel: Some(tx), pending: Pending::default() });
                let mut chunks = chunks;
                self.futures.push(Box::pin(async move {
                    let result = {
                        let write = std::pin::pin!(stream.write_chunks(&mut chunks));
                        match futures::future::select(write, rx).await {
                            Either::Left((r, _)) => Some(r),
                            Either::Right(_) => None,
                        }
                    };
                    Done::Wrote { id, stream, total, fin, result }
                }));
            }
            None => self.ready.push_back(IoEvent::Written { id, bytes: 0, fin: false, closed: true }),
        }
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        match self.sends.get_mut(&id) {
            Some(SendSlot::Opening(p)) => {
                if p.write.take().is_some() {
                    self.ready.push_back(IoEvent::Written { id, bytes: 0, fin: false, closed: true });
                }
                // Opened streams without a slot are reset on arrival.
                self.sends.remove(&id);
            }
            Some(SendSlot::Busy { cancel, pending }) => {
                pending.reset = Some(code);
                if let Some(c) = cancel.take() {
                    let _ = c.send(());
                }
            }
            Some(SendSlot::Idle(_)) => {
                if let Some(SendSlot::Idle(mut stream)) = self.sends.remove(&id) {
                    let _ = stream.reset(clamp(code));
                }
            }
            None => {}
        }
    }

    fn stop(&mut self, id: StreamId, code: u64) {
        match self.recvs.get_mut(&id) {
            Some(RecvSlot::Opening { stop, .. }) => *stop = Some(code),
            Some(RecvSlot::Busy { cancel, stop }) => {
                *stop = Some(code);
                if let Some(c) = cancel.take() {
                    let _ = c.send(());
                }
            }
            Some(RecvSlot::Idle(_)) => {
                if let Some(RecvSlot::Idle(mut stream)) = self.recvs.remove(&id) {
                    let _ = stream.stop(clamp(code));
                }
            }
            None => {}
        }
    }

    fn set_priority(&mut self, id: StreamId, priority: i32) {
        match self.sends.get_mut(&id) {
            Some(SendSlot::Opening(p)) | Some(SendSlot::Busy { pending: p, .. }) => p.priority = Some(priority),
            Some(SendSlot::Idle(stream)) => {
                let _ = stream.set_priority(priority);
            }
            None => {}
        }
    }
}

impl futures::Stream for ConnectionIo {
    type Item = IoEvent;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IoEvent>> {
        self.get_mut().poll_event(cx)
    }
}

/// One session's view of a core, as [`Pump`] needs it: a plain `moqt_proto::Session`, or one
/// session of a relay `Node` ([`NodeView`]).
pub trait CoreIo {
    /// Feeds a transport event.
    fn handle(&mut self, now: Instant, event: TransportEvent);
    /// How much may be read from `id` now.
    fn recv_credit(&self, id: StreamId) -> usize;
    /// The bytes queued for `id` and whether FIN follows them.
    fn send_chunks(&self, id: StreamId) -> Option<(&[Bytes], bool)>;
    /// Records what the transport took from `id`'s queue.
    fn advance_send(&mut self, id: StreamId, bytes: usize, fin: bool);
}

impl CoreIo for Core {
    fn handle(&mut self, now: Instant, event: TransportEvent) {
        Core::handle(self, now, event)
    }
    fn recv_credit(&self, id: StreamId) -> usize {
        Core::recv_credit(self, id)
    }
    fn send_chunks(&self, id: StreamId) -> Option<(&[Bytes], bool)> {
        Core::send_chunks(self, id)
    }
    fn advance_send(&mut self, id: StreamId, bytes: usize, fin: bool) {
        Core::advance_send(self, id, bytes, fin)
    }
}

/// One session of a relay [`Node`], seen as a [`CoreIo`]. The node's commands for every session
/// come out of `Node::poll_command`; feed each to [`Pump::command`] with this view.
pub struct NodeView<'a> {
    node: &'a mut Node,
    session: SessionId,
}

impl<'a> NodeView<'a> {
    /// The view of `session` in `node`.
    pub fn new(node: &'a mut Node, session: SessionId) -> Self {
        Self { node, session }
    }
}

impl CoreIo for NodeView<'_> {
    fn handle(&mut self, now: Instant, event: TransportEvent) {
        self.node.handle(self.session, now, event)
    }
    fn recv_credit(&self, id: StreamId) -> usize {
        self.node.recv_credit(self.session, id)
    }
    fn send_chunks(&self, id: StreamId) -> Option<(&[Bytes], bool)> {
        self.node.send_chunks(self.session, id)
    }
    fn advance_send(&mut self, id: StreamId, bytes: usize, fin: bool) {
        self.node.advance_send(self.session, id, bytes, fin)
    }
}

/// The mapping between a `moqt-proto` core and [`IoCommand`] / [`IoEvent`], for any owner.
///
/// It tracks which streams have a write in flight so that each stream has at most one, and
/// pulls the core's queue again when a write completes.
#[derive(Debug, Default)]
pub struct Pump {
    writing: FxHashSet<StreamId>,
}

impl Pump {
    /// A pump with no writes in flight.
    pub fn new() -> Pump {
        Pump::default()
    }

    /// Feeds one I/O event to a session and executes every command it queued.
    pub fn handle(&mut self, core: &mut Core, now: Instant, event: IoEvent, out: &mut impl FnMut(IoCommand)) {
        self.handle_io(core, now, event, out);
        self.drain(core, out);
    }

    /// Feeds one I/O event to any core view, emitting the direct follow-ups (read grants, the
    /// next write); the core's own commands are the caller's to route (see [`Pump::command`]).
    pub fn handle_io<C: CoreIo>(
        &mut self,
        core: &mut C,
        now: Instant,
        event: IoEvent,
        out: &mut impl FnMut(IoCommand),
    ) {
        match event {
            IoEvent::Transport(ev) => {
                let grant = match &ev {
                    TransportEvent::StreamOpened(id) => Some(*id),
                    TransportEvent::StreamData { id, fin: false, .. } => Some(*id),
                    _ => None,
                };
                core.handle(now, ev);
                if let Some(id) = grant {
                    out(IoCommand::Read { id, max: core.recv_credit(id) });
                }
            }
            IoEvent::Written { id, bytes, fin, closed } => {
                self.writing.remove(&id);
                core.advance_send(id, bytes, fin);
                if !closed {
                    self.pull(core, id, out);
                }
            }
        }
    }

    /// Executes every command a session has queued.
    pub fn drain(&mut self, core: &mut Core, out: &mut impl FnMut(IoCommand)) {
        while let Some(cmd) = core.poll_command() {
            self.command(core, cmd, out);
        }
    }

    /// Executes one command of a core view.
    pub fn command<C: CoreIo>(&mut self, core: &mut C, cmd: Command, out: &mut impl FnMut(IoCommand)) {
        match cmd {
            Command::Open { id, priority } => {
                out(IoCommand::Open { id, priority });
                if !id.is_uni() {
                    out(IoCommand::Read { id, max: core.recv_credit(id) });
                }
            }
            Command::Transmit(id) => self.pull(core, id, out),
            Command::Reset { id, code } => out(IoCommand::Reset { id, code }),
            Command::StopSending { id, code } => out(IoCommand::StopSending { id, code }),
            Command::SetPriority { id, priority } => out(IoCommand::SetPriority { id, priority }),
            Command::SendDatagram(data) => out(IoCommand::Datagram(data)),
            Command::Close { code, reason } => out(IoCommand::Close { code, reason }),
        }
    }

    fn pull<C: CoreIo>(&mut self, core: &mut C, id: StreamId, out: &mut impl FnMut(IoCommand)) {
        if self.writing.contains(&id) {
            return;
        }
        let Some((chunks, fin)) = core.send_chunks(id) else { return };
        let take: Chunks = chunks.iter().take(MAX_CHUNKS_PER_WRITE).cloned().collect();
        let fin = fin && take.len() == chunks.len();
        if take.is_empty() && !fin {
            return;
        }
        self.writing.insert(id);
        out(IoCommand::Write { id, chunks: take, fin });
    }
}
