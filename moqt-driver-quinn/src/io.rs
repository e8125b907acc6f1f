//! Per-connection I/O: [`ConnectionIo`] executes the core's [`Command`]s on one transport
//! [`Connection`] and reports what happens as [`TransportEvent`]s, following the driver contract
//! in `moqt_proto::session::io` to the letter:
//!
//! * peer streams are accepted and named `StreamId::remote(counter, uni)`;
//! * a stream is read only under a `Read` grant, one read in flight per stream, so unread data
//!   stays in quinn and QUIC flow control pushes back on the peer; chunks are the `Bytes` quinn
//!   produced (zero copy);
//! * each `Write` becomes one `write_chunks` (then `finish` if asked and everything was taken) and
//!   is answered by exactly one `Written`;
//! * streams open asynchronously; a write, grant, reset or priority for a stream still opening
//!   waits for it;
//! * a reset or stop for a stream with an operation in flight cancels that operation (quinn's
//!   `write_chunks`/`read_chunk` are cancel safe) and then applies the code;
//! * datagrams move both ways and the end of the connection is reported once, as
//!   `TransportEvent::Closed`.
//!
//! A write or a read is first tried at once, with the waker of the task that drives this
//! connection: when quinn has room (or data), it completes on the spot with no allocation, and
//! its `Written` (or `StreamData`) is queued for the next poll. Only an operation that has to
//! wait becomes one boxed future in a `FuturesUnordered`, woken individually, so a connection
//! with thousands of streams costs nothing per idle stream.
//!
//! Stream error codes: web-transport-quinn maps WebTransport codes to and from the HTTP/3 space;
//! on raw QUIC codes travel as they are. Codes above `u32::MAX` are clamped when sent.
//!
//! This module never parses moq-lite and never decides what to do with a stream.

use std::collections::VecDeque;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{BoxFuture, Either};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use moqt_proto::session::{session_code, Chunks, Command, StreamId, TransportEvent};
use rustc_hash::FxHashMap;

use crate::connection::{Connection, ConnectionError, RecvStream, SendStream, StreamError, Written};

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
    AcceptUni(Result<RecvStream, ConnectionError>),
    AcceptBi(Result<(SendStream, RecvStream), ConnectionError>),
    Opened {
        id: StreamId,
        result: Result<(SendStream, Option<RecvStream>), ConnectionError>,
    },
    Read {
        id: StreamId,
        stream: RecvStream,
        result: Option<Result<Option<Bytes>, StreamError>>,
    },
    Wrote {
        id: StreamId,
        stream: SendStream,
        total: usize,
        fin: bool,
        result: Option<Result<Written, StreamError>>,
    },
    Datagram(Result<Bytes, ConnectionError>),
    Closed(ConnectionError),
    /// A finished stream's data was all acknowledged (or the stream or connection ended).
    Acked,
}

fn clamp(code: u64) -> u32 {
    u32::try_from(code).unwrap_or(u32::MAX)
}

/// The I/O of one connection. See the module docs.
pub struct ConnectionIo {
    connection: Connection,
    futures: FuturesUnordered<BoxFuture<'static, Done>>,
    ready: VecDeque<TransportEvent>,
    sends: FxHashMap<StreamId, SendSlot>,
    recvs: FxHashMap<StreamId, RecvSlot>,
    next_remote: u64,
    local_close: Option<(u64, String)>,
    closed: bool,
    /// Whether finished streams are followed until the peer acknowledges them ([`Self::flushed`]).
    track_acks: bool,
    /// Finished streams not acknowledged yet (counted with `track_acks`).
    unacked: usize,
    /// The waker of the task polling this connection (for operations tried at once).
    waker: Option<Waker>,
}

impl std::fmt::Debug for ConnectionIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionIo")
            .field("connection", &self.connection.id())
            .field("sends", &self.sends.len())
            .field("recvs", &self.recvs.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl ConnectionIo {
    /// Starts accepting streams and datagrams on `connection`.
    pub fn new(connection: Connection) -> ConnectionIo {
        let mut io = ConnectionIo {
            connection,
            futures: FuturesUnordered::new(),
            ready: VecDeque::new(),
            sends: FxHashMap::default(),
            recvs: FxHashMap::default(),
            next_remote: 0,
            local_close: None,
            closed: false,
            track_acks: false,
            unacked: 0,
            waker: None,
        };
        io.accept_uni();
        io.accept_bi();
        io.read_datagram();
        let s = io.connection.clone();
        io.futures.push(Box::pin(async move { Done::Closed(s.closed().await) }));
        io
    }

    /// Follows every stream finished from now on until the peer has acknowledged all of its
    /// data, so that [`Self::flushed`] can tell when a clean close would lose nothing. Off by
    /// default: it costs one waiting future per finished stream.
    pub fn track_acks(&mut self) {
        self.track_acks = true;
    }

    /// Whether everything handed to this connection has left it: no write in flight or waiting
    /// for its stream to open, and (with [`Self::track_acks`]) every finished stream
    /// acknowledged by the peer.
    pub fn flushed(&self) -> bool {
        self.unacked == 0
            && self.sends.values().all(|slot| match slot {
                SendSlot::Idle(_) => true,
                SendSlot::Busy { .. } => false,
                SendSlot::Opening(p) => p.write.is_none(),
            })
    }

    /// A stream was finished: follow it until acknowledged, if asked to.
    fn finished(&mut self, stream: SendStream) {
        if self.track_acks {
            self.unacked += 1;
            self.futures.push(Box::pin(async move {
                let _ = stream.stopped().await;
                Done::Acked
            }));
        }
    }

    /// The transport connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Stream directions open (a bidirectional stream counts once per direction still open).
    pub fn open_streams(&self) -> usize {
        self.sends.len() + self.recvs.len()
    }

    fn accept_uni(&mut self) {
        let s = self.connection.clone();
        self.futures.push(Box::pin(async move { Done::AcceptUni(s.accept_uni().await) }));
    }

    fn accept_bi(&mut self) {
        let s = self.connection.clone();
        self.futures.push(Box::pin(async move { Done::AcceptBi(s.accept_bi().await) }));
    }

    fn read_datagram(&mut self) {
        let s = self.connection.clone();
        self.futures.push(Box::pin(async move { Done::Datagram(s.read_datagram().await) }));
    }

    fn remote_id(&mut self, uni: bool) -> StreamId {
        let id = StreamId::remote(self.next_remote, uni);
        self.next_remote += 1;
        id
    }

    /// The next event; `None` once the connection has closed and `Closed` was reported.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<TransportEvent>> {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
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
    pub async fn next_event(&mut self) -> Option<TransportEvent> {
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
                self.ready.push_back(TransportEvent::StreamOpened(id));
            }
            Done::AcceptBi(Ok((send, recv))) => {
                self.accept_bi();
                let id = self.remote_id(false);
                self.sends.insert(id, SendSlot::Idle(send));
                self.recvs.insert(id, RecvSlot::Idle(recv));
                self.ready.push_back(TransportEvent::StreamOpened(id));
            }
            // The connection is going away; `Closed` reports it.
            Done::AcceptUni(Err(_)) | Done::AcceptBi(Err(_)) => {}
            Done::Opened { id, result } => self.on_opened(id, result),
            Done::Read { id, stream, result } => self.on_read(id, stream, result),
            Done::Wrote { id, stream, total, fin, result } => self.on_wrote(id, stream, total, fin, result),
            Done::Datagram(Ok(data)) => {
                self.read_datagram();
                self.ready.push_back(TransportEvent::Datagram(data));
            }
            Done::Datagram(Err(_)) => {}
            Done::Acked => self.unacked = self.unacked.saturating_sub(1),
            Done::Closed(err) => {
                let (code, reason) = match err {
                    ConnectionError::Closed { code, reason } => (code, reason),
                    ConnectionError::LocallyClosed => self.local_close.clone().unwrap_or((0, String::new())),
                    ConnectionError::TimedOut => (session_code::TIMEOUT, "idle timeout".to_owned()),
                    other => (session_code::INTERNAL, other.to_string()),
                };
                tracing::debug!(id = self.connection.id(), code, reason, "connection closed");
                self.ready.push_back(TransportEvent::Closed { code, reason });
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

    fn on_opened(&mut self, id: StreamId, result: Result<(SendStream, Option<RecvStream>), ConnectionError>) {
        let send_slot = self.sends.remove(&id);
        let recv_slot = self.recvs.remove(&id);
        let Ok((send, recv)) = result else {
            // Only a dying connection fails to open; report the pending write as stuck.
            if let Some(SendSlot::Opening(p)) = send_slot {
                if p.write.is_some() {
                    self.ready.push_back(TransportEvent::Written { stream: id, bytes: 0 });
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
                self.ready.push_back(TransportEvent::Written { stream: id, bytes: 0 });
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
                self.ready.push_back(TransportEvent::StreamData { stream: id, data, fin: false });
            }
            Some(Ok(None)) => {
                self.ready.push_back(TransportEvent::StreamData { stream: id, data: Bytes::new(), fin: true })
            }
            Some(Err(StreamError::Reset(code))) => {
                self.ready.push_back(TransportEvent::StreamReset { stream: id, code: code.into() })
            }
            Some(Err(StreamError::InvalidCode(code))) => {
                self.ready.push_back(TransportEvent::StreamReset { stream: id, code })
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
                self.ready.push_back(TransportEvent::Written { stream: id, bytes: written.bytes });
                if fin_sent {
                    self.finished(stream);
                } else {
                    self.sends.insert(id, SendSlot::Idle(stream));
                    self.apply_pending(id, pending);
                }
            }
            Some(Err(err)) => {
                self.ready.push_back(TransportEvent::Written { stream: id, bytes: 0 });
                match err {
                    StreamError::Stopped(code) => {
                        self.ready.push_back(TransportEvent::StopSending { stream: id, code: code.into() })
                    }
                    StreamError::InvalidCode(code) => {
                        self.ready.push_back(TransportEvent::StopSending { stream: id, code })
                    }
                    _ => {}
                }
            }
            None => {
                // Cancelled by a reset: nothing of this write was taken.
                self.ready.push_back(TransportEvent::Written { stream: id, bytes: 0 });
                let _ = stream.reset(clamp(pending.reset.unwrap_or(0)));
            }
        }
    }

    /// Executes one command of the core.
    pub fn command(&mut self, cmd: Command) {
        if self.closed {
            return;
        }
        match cmd {
            Command::Open { stream, priority } => self.open(stream, priority),
            Command::Read { stream, max } => self.read(stream, max),
            Command::Write { stream, chunks, fin } => self.write(stream, chunks, fin),
            Command::Reset { stream, code } => self.reset(stream, code),
            Command::StopSending { stream, code } => self.stop(stream, code),
            Command::SetPriority { stream, priority } => self.set_priority(stream, priority),
            Command::SendDatagram(data) => {
                if let Err(err) = self.connection.send_datagram(data) {
                    tracing::trace!(%err, "datagram not sent");
                }
            }
            Command::Close { code, reason } => {
                self.local_close = Some((code, reason.clone()));
                self.connection.close(clamp(code), &reason);
            }
        }
    }

    fn open(&mut self, id: StreamId, priority: i32) {
        let s = self.connection.clone();
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
                if let Some(waker) = &self.waker {
                    // Data already there: take it now (cancel safe: a pending read took nothing).
                    // A stream's own error is reported once by quinn, so it is taken now; the
                    // connection's end takes the slow path, next to the future that reports it.
                    let now = std::pin::pin!(stream.read_chunk(max)).poll(&mut Context::from_waker(waker));
                    match now {
                        Poll::Ready(Err(StreamError::Connection(_))) | Poll::Pending => {}
                        Poll::Ready(result) => {
                            self.on_read(id, stream, Some(result));
                            return;
                        }
                    }
                }
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
                    self.ready.push_back(TransportEvent::Written { stream: id, bytes: 0 });
                    if fin_sent {
                        self.finished(stream);
                    } else {
                        self.sends.insert(id, SendSlot::Idle(stream));
                    }
                    return;
                }
                let mut chunks = chunks;
                if let Some(waker) = &self.waker {
                    // Room in quinn's send buffer: write now (cancel safe: a pending write took
                    // nothing).
                    // The connection's end takes the slow path, next to the future that reports
                    // it (a core that retries a write answered with 0 bytes would otherwise
                    // spin here, never seeing the end); a stream's own error is taken now.
                    let now = std::pin::pin!(stream.write_chunks(&mut chunks)).poll(&mut Context::from_waker(waker));
                    match now {
                        Poll::Ready(Err(StreamError::Connection(_))) | Poll::Pending => {}
                        Poll::Ready(Ok(w)) if w.bytes == 0 => {}
                        Poll::Ready(result) => {
                            self.on_wrote(id, stream, total, fin, Some(result));
                            return;
                        }
                    }
                }
                let (tx, rx) = oneshot::channel();
                self.sends.insert(id, SendSlot::Busy { cancel: Some(tx), pending: Pending::default() });
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
            None => self.ready.push_back(TransportEvent::Written { stream: id, bytes: 0 }),
        }
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        match self.sends.get_mut(&id) {
            Some(SendSlot::Opening(p)) => {
                if p.write.take().is_some() {
                    self.ready.push_back(TransportEvent::Written { stream: id, bytes: 0 });
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
    type Item = TransportEvent;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TransportEvent>> {
        self.get_mut().poll_event(cx)
    }
}
