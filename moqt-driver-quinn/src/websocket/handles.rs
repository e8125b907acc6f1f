//! The application's handles on a QMux connection: [`QmuxConnection`] (streams, datagrams,
//! close) and the stream halves [`QmuxSend`] / [`QmuxRecv`]. Each call is a poll function on
//! the shared state (`session.rs`); `crate::connection` wraps them in the same async methods
//! quinn's handles have.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use moqt_qmux::{DatagramError, Dir, OpenError, ReadError, StreamId, WriteError};

use super::session::{Shared, State};
use crate::connection::{ConnectionError, StreamError, Written};

/// Closes the connection (code 0) when the last handle goes.
#[derive(Debug)]
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.with(true, |s| {
            if !s.conn.is_closed() {
                s.conn.close(0, b"");
            }
        });
    }
}

fn closed(s: &State) -> ConnectionError {
    s.closed_error()
}

/// A QMux connection over a WebSocket. Cheap to clone; streams keep it open too.
#[derive(Clone, Debug)]
pub struct QmuxConnection {
    owner: Arc<Owner>,
}

impl QmuxConnection {
    pub(crate) fn new(shared: Arc<Shared>) -> QmuxConnection {
        QmuxConnection { owner: Arc::new(Owner { shared }) }
    }

    fn shared(&self) -> &Shared {
        &self.owner.shared
    }

    /// A process-unique id while the connection lives.
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.owner.shared) as usize
    }

    /// The peer's TCP address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared().peer
    }

    /// The negotiated `Sec-WebSocket-Protocol` value (e.g. `qmux-01.moq-lite-05`).
    pub fn subprotocol(&self) -> &str {
        &self.shared().subprotocol
    }

    /// The QMux wire version.
    pub fn wire_version(&self) -> moqt_qmux::Version {
        self.shared().lock().conn.version()
    }

    /// The latest QX_PING round trip (zero before the first, and on versions without pings).
    pub fn rtt(&self) -> Duration {
        self.shared().lock().conn.rtt().unwrap_or_default()
    }

    /// Counters of the sans-IO connection.
    pub fn stats(&self) -> moqt_qmux::Stats {
        self.shared().lock().conn.stats().clone()
    }

    fn stream(&self, id: StreamId) -> (Option<QmuxSend>, Option<QmuxRecv>) {
        let role = self.shared().lock().conn.role();
        let send = id.can_send(role).then(|| QmuxSend { owner: self.owner.clone(), id });
        let recv = id.can_recv(role).then(|| QmuxRecv { owner: self.owner.clone(), id });
        (send, recv)
    }

    fn poll_open(&self, cx: &mut Context<'_>, dir: Dir) -> Poll<Result<StreamId, ConnectionError>> {
        self.shared().with(true, |s| match s.conn.open(dir) {
            Ok(id) => {
                s.live(id);
                Poll::Ready(Ok(id))
            }
            Err(OpenError::Blocked) => {
                s.wait_open(dir, cx.waker());
                Poll::Pending
            }
            Err(OpenError::Closed) => Poll::Ready(Err(closed(s))),
        })
    }

    fn poll_accept(&self, cx: &mut Context<'_>, dir: Dir) -> Poll<Result<StreamId, ConnectionError>> {
        self.shared().with(false, |s| {
            if let Some(id) = s.next_incoming(dir) {
                return Poll::Ready(Ok(id));
            }
            if s.conn.is_closed() {
                return Poll::Ready(Err(closed(s)));
            }
            s.wait_accept(dir, cx.waker());
            Poll::Pending
        })
    }

    /// Opens a unidirectional stream (waits for the peer's stream credit).
    pub async fn open_uni(&self) -> Result<QmuxSend, ConnectionError> {
        let id = poll_fn(|cx| self.poll_open(cx, Dir::Uni)).await?;
        let (send, _) = self.stream(id);
        send.ok_or(ConnectionError::LocallyClosed)
    }

    /// Opens a bidirectional stream (waits for the peer's stream credit).
    pub async fn open_bi(&self) -> Result<(QmuxSend, QmuxRecv), ConnectionError> {
        let id = poll_fn(|cx| self.poll_open(cx, Dir::Bi)).await?;
        match self.stream(id) {
            (Some(send), Some(recv)) => Ok((send, recv)),
            _ => Err(ConnectionError::LocallyClosed),
        }
    }

    /// Waits for the peer to open a unidirectional stream.
    pub async fn accept_uni(&self) -> Result<QmuxRecv, ConnectionError> {
        let id = poll_fn(|cx| self.poll_accept(cx, Dir::Uni)).await?;
        let (_, recv) = self.stream(id);
        recv.ok_or(ConnectionError::LocallyClosed)
    }

    /// Waits for the peer to open a bidirectional stream.
    pub async fn accept_bi(&self) -> Result<(QmuxSend, QmuxRecv), ConnectionError> {
        let id = poll_fn(|cx| self.poll_accept(cx, Dir::Bi)).await?;
        match self.stream(id) {
            (Some(send), Some(recv)) => Ok((send, recv)),
            _ => Err(ConnectionError::LocallyClosed),
        }
    }

    /// Queues a datagram (qmux-01+; the oldest queued one is dropped when the queue is full).
    pub fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        self.shared().with(true, |s| match s.conn.send_datagram(data) {
            Ok(()) => Ok(()),
            Err(DatagramError::Unsupported) => Err(ConnectionError::DatagramsUnsupported),
            Err(DatagramError::TooLarge(_)) => Err(ConnectionError::DatagramTooLarge),
            Err(DatagramError::Closed) => Err(closed(s)),
        })
    }

    /// Waits for the next datagram.
    pub async fn read_datagram(&self) -> Result<Bytes, ConnectionError> {
        poll_fn(|cx| {
            self.shared().with(false, |s| {
                if let Some(d) = s.conn.recv_datagram() {
                    return Poll::Ready(Ok(d));
                }
                if s.conn.is_closed() {
                    return Poll::Ready(Err(closed(s)));
                }
                s.wait_datagram(cx.waker());
                Poll::Pending
            })
        })
        .await
    }

    /// The largest datagram payload accepted now (0 without datagram support).
    pub fn max_datagram_size(&self) -> usize {
        self.shared().lock().conn.max_datagram_size().unwrap_or(0)
    }

    /// Closes with APPLICATION_CLOSE, then the WebSocket.
    pub fn close(&self, code: u32, reason: &str) {
        self.shared().with(true, |s| s.conn.close(code.into(), reason.as_bytes()));
    }

    /// Waits for the peer's transport parameters (at once on the legacy format); fails if the
    /// connection ends first.
    pub async fn connected(&self) -> Result<(), ConnectionError> {
        poll_fn(|cx| {
            self.shared().with(false, |s| {
                if let Some(err) = s.closed_reason() {
                    return Poll::Ready(Err(err));
                }
                if s.conn.is_connected() {
                    return Poll::Ready(Ok(()));
                }
                s.wait_connected(cx.waker());
                Poll::Pending
            })
        })
        .await
    }

    /// Waits until the connection has ended and says why.
    pub async fn closed(&self) -> ConnectionError {
        poll_fn(|cx| {
            self.shared().with(false, |s| match s.closed_reason() {
                Some(err) => Poll::Ready(err),
                None => {
                    s.wait_closed(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Why the connection ended, or `None` while it is open.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.shared().lock().closed_reason()
    }
}

/// The sending half of a QMux stream. Dropping it finishes the stream (as quinn does).
#[derive(Debug)]
pub struct QmuxSend {
    owner: Arc<Owner>,
    id: StreamId,
}

fn write_error(s: &State, id: StreamId, e: WriteError) -> StreamError {
    match e {
        WriteError::Stopped(code) => StreamError::Stopped(clamp(code)),
        WriteError::Closed => StreamError::Connection(closed(s)),
        _ => match s.stop_code(id) {
            Some(code) => StreamError::Stopped(clamp(code)),
            None => StreamError::ClosedStream,
        },
    }
}

fn clamp(code: u64) -> u32 {
    u32::try_from(code).unwrap_or(u32::MAX)
}

impl QmuxSend {
    fn shared(&self) -> &Shared {
        &self.owner.shared
    }

    /// The QMux stream id.
    pub fn id(&self) -> u64 {
        self.id.0
    }

    fn poll_write_chunks(&self, cx: &mut Context<'_>, chunks: &mut [Bytes]) -> Poll<Result<Written, StreamError>> {
        let id = self.id;
        self.shared().with(true, |s| {
            if let Some(code) = s.stop_code(id) {
                return Poll::Ready(Err(StreamError::Stopped(clamp(code))));
            }
            let mut written = Written::default();
            let mut blocked = false;
            for chunk in chunks.iter_mut() {
                if chunk.is_empty() {
                    written.chunks += 1;
                    continue;
                }
                match s.conn.write(id, chunk.clone()) {
                    Ok(n) => {
                        chunk.advance(n);
                        written.bytes += n;
                        if !chunk.is_empty() {
                            break;
                        }
                        written.chunks += 1;
                    }
                    Err(WriteError::Blocked) => {
                        blocked = true;
                        break;
                    }
                    Err(e) if written.bytes == 0 => return Poll::Ready(Err(write_error(s, id, e))),
                    Err(_) => break,
                }
            }
            if written.bytes == 0 && blocked {
                s.wait_write(id, cx.waker());
                return Poll::Pending;
            }
            Poll::Ready(Ok(written))
        })
    }

    /// Writes as much of `chunks` as credit allows now (waiting until at least one byte fits).
    /// Cancel safe.
    pub async fn write_chunks(&mut self, chunks: &mut [Bytes]) -> Result<Written, StreamError> {
        poll_fn(|cx| self.poll_write_chunks(cx, chunks)).await
    }

    /// Writes the whole chunk.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StreamError> {
        let mut chunks = [data];
        while !chunks[0].is_empty() {
            self.write_chunks(&mut chunks).await?;
        }
        Ok(())
    }

    /// Ends the stream after the data written (FIN).
    pub fn finish(&mut self) -> Result<(), StreamError> {
        let id = self.id;
        self.shared().with(true, |s| s.conn.finish(id).map_err(|e| write_error(s, id, e)))
    }

    /// Abandons the stream with RESET_STREAM.
    pub fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        let id = self.id;
        self.shared().with(true, |s| s.conn.reset(id, code.into()).map_err(|e| write_error(s, id, e)))
    }

    /// Sets the send priority (higher first).
    pub fn set_priority(&self, priority: i32) -> Result<(), StreamError> {
        let id = self.id;
        self.shared().with(true, |s| s.conn.set_priority(id, priority));
        Ok(())
    }

    /// Waits for STOP_SENDING (`Some(code)`), or until everything including the FIN or reset
    /// has been handed to the WebSocket (`None`).
    pub async fn stopped(&self) -> Result<Option<u32>, ConnectionError> {
        let id = self.id;
        poll_fn(|cx| {
            self.shared().with(false, |s| {
                if let Some(code) = s.stop_code(id) {
                    return Poll::Ready(Ok(Some(clamp(code))));
                }
                if s.conn.is_closed() {
                    return Poll::Ready(Err(closed(s)));
                }
                if !s.conn.send_pending(id) {
                    return Poll::Ready(Ok(None));
                }
                s.wait_stopped(id, cx.waker());
                Poll::Pending
            })
        })
        .await
    }
}

impl Drop for QmuxSend {
    fn drop(&mut self) {
        let id = self.id;
        self.shared().with(true, |s| {
            s.forget_send(id);
            let _ = s.conn.finish(id);
        });
    }
}

/// The receiving half of a QMux stream. Dropping it before the end stops the stream (code 0).
#[derive(Debug)]
pub struct QmuxRecv {
    owner: Arc<Owner>,
    id: StreamId,
}

impl QmuxRecv {
    fn shared(&self) -> &Shared {
        &self.owner.shared
    }

    /// The QMux stream id.
    pub fn id(&self) -> u64 {
        self.id.0
    }

    /// Reads the next chunk of at most `max` bytes; `None` at the end of the stream.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        let id = self.id;
        poll_fn(|cx| {
            self.shared().with(true, |s| {
                if let Some(code) = s.take_reset(id) {
                    return Poll::Ready(Err(match u32::try_from(code) {
                        Ok(code) => StreamError::Reset(code),
                        Err(_) => StreamError::InvalidCode(code),
                    }));
                }
                match s.conn.read(id, max) {
                    Ok(data) => Poll::Ready(Ok(data)),
                    Err(ReadError::Blocked) => {
                        s.wait_read(id, cx.waker());
                        Poll::Pending
                    }
                    Err(ReadError::Closed) => Poll::Ready(Err(StreamError::Connection(closed(s)))),
                    Err(_) => Poll::Ready(Err(StreamError::ClosedStream)),
                }
            })
        })
        .await
    }

    /// Asks the peer to stop sending (STOP_SENDING) and drops what is buffered.
    pub fn stop(&mut self, code: u32) -> Result<(), StreamError> {
        let id = self.id;
        self.shared().with(true, |s| match s.conn.stop(id, code.into()) {
            Ok(()) => Ok(()),
            Err(ReadError::Closed) => Err(StreamError::Connection(closed(s))),
            Err(_) => Err(StreamError::ClosedStream),
        })
    }

    /// Waits until the peer resets the stream (`Some(code)`) or the stream is over (`None`).
    pub async fn received_reset(&mut self) -> Result<Option<u32>, ConnectionError> {
        loop {
            match self.read_chunk(usize::MAX).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(StreamError::ClosedStream) => return Ok(None),
                Err(StreamError::Reset(code)) => return Ok(Some(code)),
                Err(StreamError::InvalidCode(code)) => return Ok(Some(clamp(code))),
                Err(StreamError::Connection(e)) => return Err(e),
                Err(_) => return Ok(None),
            }
        }
    }
}

impl Drop for QmuxRecv {
    fn drop(&mut self) {
        let id = self.id;
        self.shared().with(true, |s| {
            s.forget_recv(id);
            let _ = s.conn.stop(id, 0);
        });
    }
}
