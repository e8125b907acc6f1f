//! The uniform session and stream handles the driver moves bytes through.
//!
//! This module owns [`Connection`], [`SendStream`] and [`RecvStream`]: thin wrappers over
//! `web_transport_quinn`'s types, or over the QMux handles of [`crate::websocket`], that look the
//! same whether the connection is raw QUIC (a moq-lite ALPN), a WebTransport session over HTTP/3
//! or QMux over a WebSocket, carry the negotiated [`Version`], and report errors as this crate's
//! [`ConnectionError`] / [`StreamError`] instead of the library's.
//!
//! Data is `bytes::Bytes` end to end: reads hand out the chunks quinn received, writes take owned
//! `Bytes` without copying. Application error codes are `u32` on both transports (WebTransport maps
//! them into the HTTP/3 code space on the wire; raw QUIC sends them as is).
//!
//! WebTransport caveat: a stream the peer resets before its WebTransport stream header arrives is
//! never handed to `accept_uni` / `accept_bi` (the header is lost with the reset; web-transport-quinn
//! logs and skips it). Raw QUIC surfaces such streams and the reset.
//!
//! Nothing here knows moq-lite messages; that is the sans-IO core's job.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moqt_proto::Version;
use web_transport_quinn as wtq;

use crate::websocket::{QmuxConnection, QmuxRecv, QmuxSend};

/// Which transport carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Raw QUIC; the version came from the TLS ALPN.
    RawQuic,
    /// WebTransport over HTTP/3 (ALPN `h3`); the version came from `wt-protocol`.
    WebTransport,
    /// QMux over a WebSocket on TCP; the version came from `Sec-WebSocket-Protocol`.
    WebSocket,
}

/// Why a session ended, or why a session-level operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The peer closed the session with an application code and reason.
    #[error("session closed by peer: code {code}, reason {reason:?}")]
    Closed {
        /// The application error code.
        code: u64,
        /// The reason text (lossily decoded as UTF-8).
        reason: String,
    },
    /// This side closed the session.
    #[error("session closed locally")]
    LocallyClosed,
    /// The idle timeout expired.
    #[error("session timed out")]
    TimedOut,
    /// The peer did not negotiate datagram support.
    #[error("peer does not accept datagrams")]
    DatagramsUnsupported,
    /// The datagram exceeds [`Connection::max_datagram_size`].
    #[error("datagram too large")]
    DatagramTooLarge,
    /// Any other transport failure (protocol violation, stateless reset, ...).
    #[error("transport error: {0}")]
    Transport(String),
}

impl From<quinn::ConnectionError> for ConnectionError {
    fn from(e: quinn::ConnectionError) -> Self {
        match e {
            quinn::ConnectionError::ApplicationClosed(close) => ConnectionError::Closed {
                code: close.error_code.into_inner(),
                reason: String::from_utf8_lossy(&close.reason).into_owned(),
            },
            quinn::ConnectionError::LocallyClosed => ConnectionError::LocallyClosed,
            quinn::ConnectionError::TimedOut => ConnectionError::TimedOut,
            other => ConnectionError::Transport(other.to_string()),
        }
    }
}

impl From<wtq::SessionError> for ConnectionError {
    fn from(e: wtq::SessionError) -> Self {
        match e {
            wtq::SessionError::ConnectionError(e) => e.into(),
            wtq::SessionError::WebTransportError(wtq::WebTransportError::Closed(code, reason)) => {
                ConnectionError::Closed { code: code.into(), reason }
            }
            wtq::SessionError::WebTransportError(other) => ConnectionError::Transport(other.to_string()),
            wtq::SessionError::SendDatagramError(e) => match e {
                quinn::SendDatagramError::UnsupportedByPeer | quinn::SendDatagramError::Disabled => {
                    ConnectionError::DatagramsUnsupported
                }
                quinn::SendDatagramError::TooLarge => ConnectionError::DatagramTooLarge,
                quinn::SendDatagramError::ConnectionLost(e) => e.into(),
            },
        }
    }
}

/// Why a stream operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The peer reset the stream (RESET_STREAM) with this code; seen when reading.
    #[error("stream reset by peer with code {0}")]
    Reset(u32),
    /// The peer asked us to stop (STOP_SENDING) with this code; seen when writing.
    #[error("peer sent STOP_SENDING with code {0}")]
    Stopped(u32),
    /// The peer used a code that does not map to a WebTransport application code.
    #[error("peer used an invalid stream error code {0}")]
    InvalidCode(u64),
    /// The stream was already finished, reset or stopped locally.
    #[error("stream already closed")]
    ClosedStream,
    /// [`RecvStream::read_to_end`] hit its limit (the stream was stopped with code 0).
    #[error("stream data exceeds the {0}-byte limit")]
    TooLong(usize),
    /// The whole session failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl From<wtq::WriteError> for StreamError {
    fn from(e: wtq::WriteError) -> Self {
        match e {
            wtq::WriteError::Stopped(code) => StreamError::Stopped(code),
            wtq::WriteError::InvalidStopped(code) => StreamError::InvalidCode(code.into_inner()),
            wtq::WriteError::SessionError(e) => StreamError::Connection(e.into()),
            wtq::WriteError::ClosedStream => StreamError::ClosedStream,
        }
    }
}

impl From<wtq::ReadError> for StreamError {
    fn from(e: wtq::ReadError) -> Self {
        match e {
            wtq::ReadError::Reset(code) => StreamError::Reset(code),
            wtq::ReadError::InvalidReset(code) => StreamError::InvalidCode(code.into_inner()),
            wtq::ReadError::SessionError(e) => StreamError::Connection(e.into()),
            // IllegalOrderedRead cannot happen: every read here is ordered.
            wtq::ReadError::ClosedStream | wtq::ReadError::IllegalOrderedRead => StreamError::ClosedStream,
        }
    }
}

impl From<wtq::ClosedStream> for StreamError {
    fn from(_: wtq::ClosedStream) -> Self {
        StreamError::ClosedStream
    }
}

impl From<quinn::ClosedStream> for StreamError {
    fn from(_: quinn::ClosedStream) -> Self {
        StreamError::ClosedStream
    }
}

/// How much a [`SendStream::write_chunks`] call wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Bytes accepted.
    pub bytes: usize,
    /// Chunks accepted in full (a partially written chunk is not counted).
    pub chunks: usize,
}

/// An established moq-lite session over raw QUIC, WebTransport or WebSocket. Cheap to clone;
/// clones share the connection.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Inner,
    version: Version,
    kind: TransportKind,
    /// Stream credit that follows the peer's use (QUIC servers; see [`StreamCredit`]).
    credit: Option<Arc<Credit>>,
}

/// How a QUIC connection's limits on the peer's concurrent streams grow with use. quinn keeps a
/// slot for every stream the peer may open (about 24 bytes each, allocated up front), so a
/// connection that starts at the maximum (1024 + 256 by default) holds ~60 KiB it rarely uses. With
/// this, the connection starts at the `initial_*` limits and doubles a limit, up to its `max_*`,
/// whenever the peer has three quarters of it open. The initial limits must be the ones the
/// connection's `quinn::TransportConfig` has ([`crate::QuicLimits::server_transport_config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCredit {
    /// The unidirectional limit the connection starts with.
    pub initial_uni: u32,
    /// The most unidirectional streams the peer may have open.
    pub max_uni: u32,
    /// The bidirectional limit the connection starts with.
    pub initial_bidi: u32,
    /// The most bidirectional streams the peer may have open.
    pub max_bidi: u32,
}

/// One connection's stream credit: per direction (uni, bidi), the current limit and the peer's
/// streams open.
#[derive(Debug)]
struct Credit {
    max: [u32; 2],
    limit: [AtomicU32; 2],
    open: [AtomicU32; 2],
}

const UNI: usize = 0;
const BIDI: usize = 1;

impl Credit {
    fn new(c: StreamCredit) -> Credit {
        Credit {
            max: [c.max_uni, c.max_bidi],
            limit: [AtomicU32::new(c.initial_uni), AtomicU32::new(c.initial_bidi)],
            open: [AtomicU32::new(0), AtomicU32::new(0)],
        }
    }

    /// The peer opened a stream of direction `dir`: raises that limit when three quarters of it
    /// are open. The guard counts the stream until it is dropped.
    fn opened(self: &Arc<Self>, dir: usize, conn: &quinn::Connection) -> Arc<CreditGuard> {
        let open = self.open[dir].fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.limit[dir].load(Ordering::Relaxed);
        if u64::from(open) * 4 >= u64::from(limit) * 3 && limit < self.max[dir] {
            let next = limit.saturating_mul(2).max(1).min(self.max[dir]);
            self.limit[dir].store(next, Ordering::Relaxed);
            tracing::debug!(id = conn.stable_id(), uni = dir == UNI, open, limit = next, "raising stream credit");
            match dir {
                UNI => conn.set_max_concurrent_uni_streams(next.into()),
                _ => conn.set_max_concurrent_bi_streams(next.into()),
            }
        }
        Arc::new(CreditGuard { credit: self.clone(), dir })
    }
}

/// Counts one stream of the peer's as open while it lives (shared by both halves of a
/// bidirectional stream: quinn returns the credit when both are done).
#[derive(Debug)]
struct CreditGuard {
    credit: Arc<Credit>,
    dir: usize,
}

impl Drop for CreditGuard {
    fn drop(&mut self) {
        self.credit.open[self.dir].fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Debug)]
enum Inner {
    /// Boxed: a quinn session is ~800 bytes, a QMux handle one pointer.
    Quic(Box<wtq::Session>),
    Ws(QmuxConnection),
}

impl Connection {
    /// Wraps an established `web_transport_quinn` session whose version is already known.
    pub fn new(inner: wtq::Session, version: Version, kind: TransportKind) -> Connection {
        Connection { inner: Inner::Quic(Box::new(inner)), version, kind, credit: None }
    }

    /// Lets the limits on the peer's concurrent streams grow with use (see [`StreamCredit`]).
    pub fn with_stream_credit(mut self, credit: StreamCredit) -> Connection {
        if matches!(self.inner, Inner::Quic(_)) {
            self.credit = Some(Arc::new(Credit::new(credit)));
        }
        self
    }

    /// The current limits on the peer's concurrent (uni, bidi) streams, when they grow with use.
    pub fn stream_limits(&self) -> Option<(u32, u32)> {
        let c = self.credit.as_ref()?;
        Some((c.limit[UNI].load(Ordering::Relaxed), c.limit[BIDI].load(Ordering::Relaxed)))
    }

    /// Wraps an established QMux-over-WebSocket connection.
    pub fn websocket(inner: QmuxConnection, version: Version) -> Connection {
        Connection { inner: Inner::Ws(inner), version, kind: TransportKind::WebSocket, credit: None }
    }

    /// The negotiated moq-lite version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Raw QUIC, WebTransport or WebSocket.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The peer's address (UDP for QUIC, TCP for WebSocket).
    pub fn peer_addr(&self) -> SocketAddr {
        match &self.inner {
            Inner::Quic(s) => s.remote_address(),
            Inner::Ws(c) => c.peer_addr(),
        }
    }

    /// A process-unique id for this connection (quinn's stable id, or the QMux state's address).
    pub fn id(&self) -> usize {
        match &self.inner {
            Inner::Quic(s) => s.stable_id(),
            Inner::Ws(c) => c.id(),
        }
    }

    /// The WebTransport sub-protocol the server answered with (`wt-protocol`); on WebSocket the
    /// negotiated `Sec-WebSocket-Protocol`; `None` on raw QUIC.
    pub fn wt_protocol(&self) -> Option<&str> {
        match &self.inner {
            Inner::Quic(s) => s.response().and_then(|r| r.protocol.as_deref()),
            Inner::Ws(c) => Some(c.subprotocol()),
        }
    }

    /// The current RTT estimate (WebSocket: the latest QX_PING round trip, zero before one).
    pub fn rtt(&self) -> Duration {
        match &self.inner {
            Inner::Quic(s) => s.rtt(),
            Inner::Ws(c) => c.rtt(),
        }
    }

    /// Opens a unidirectional stream (waits for stream credit).
    pub async fn open_uni(&self) -> Result<SendStream, ConnectionError> {
        Ok(match &self.inner {
            Inner::Quic(s) => SendStream::new(SendInner::Quic(s.open_uni().await?)),
            Inner::Ws(c) => SendStream::new(SendInner::Ws(c.open_uni().await?)),
        })
    }

    /// Opens a bidirectional stream (waits for stream credit).
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        Ok(match &self.inner {
            Inner::Quic(s) => {
                let (send, recv) = s.open_bi().await?;
                (SendStream::new(SendInner::Quic(send)), RecvStream { inner: RecvInner::Quic(recv), _credit: None })
            }
            Inner::Ws(c) => {
                let (send, recv) = c.open_bi().await?;
                (SendStream::new(SendInner::Ws(send)), RecvStream { inner: RecvInner::Ws(recv), _credit: None })
            }
        })
    }

    /// Waits for the peer to open a unidirectional stream.
    pub async fn accept_uni(&self) -> Result<RecvStream, ConnectionError> {
        Ok(match &self.inner {
            Inner::Quic(s) => {
                let recv = s.accept_uni().await?;
                let credit = self.credit.as_ref().map(|c| c.opened(UNI, s));
                RecvStream { inner: RecvInner::Quic(recv), _credit: credit }
            }
            Inner::Ws(c) => RecvStream { inner: RecvInner::Ws(c.accept_uni().await?), _credit: None },
        })
    }

    /// Waits for the peer to open a bidirectional stream.
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        Ok(match &self.inner {
            Inner::Quic(s) => {
                let (send, recv) = s.accept_bi().await?;
                let credit = self.credit.as_ref().map(|c| c.opened(BIDI, s));
                let mut send = SendStream::new(SendInner::Quic(send));
                send._credit = credit.clone();
                (send, RecvStream { inner: RecvInner::Quic(recv), _credit: credit })
            }
            Inner::Ws(c) => {
                let (send, recv) = c.accept_bi().await?;
                (SendStream::new(SendInner::Ws(send)), RecvStream { inner: RecvInner::Ws(recv), _credit: None })
            }
        })
    }

    /// Sends an unreliable datagram; fails instead of waiting when the send buffer is full.
    pub fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        match &self.inner {
            Inner::Quic(s) => Ok(s.send_datagram(data)?),
            Inner::Ws(c) => c.send_datagram(data),
        }
    }

    /// Waits for the next datagram from the peer.
    pub async fn read_datagram(&self) -> Result<Bytes, ConnectionError> {
        match &self.inner {
            Inner::Quic(s) => Ok(s.read_datagram().await?),
            Inner::Ws(c) => c.read_datagram().await,
        }
    }

    /// The largest datagram payload [`Connection::send_datagram`] accepts now (0 if unsupported).
    pub fn max_datagram_size(&self) -> usize {
        match &self.inner {
            Inner::Quic(s) => s.max_datagram_size(),
            Inner::Ws(c) => c.max_datagram_size(),
        }
    }

    /// Closes the session with an application code and reason. On WebTransport this sends
    /// CLOSE_WEBTRANSPORT_SESSION first, in the background; on WebSocket APPLICATION_CLOSE, then
    /// the WebSocket Close.
    pub fn close(&self, code: u32, reason: &str) {
        tracing::debug!(id = self.id(), code, reason, "closing session");
        match &self.inner {
            Inner::Quic(s) => s.close(code, reason.as_bytes()),
            Inner::Ws(c) => c.close(code, reason),
        }
    }

    /// Waits until the session is closed (for any reason) and says why.
    pub async fn closed(&self) -> ConnectionError {
        match &self.inner {
            Inner::Quic(s) => s.closed().await.into(),
            Inner::Ws(c) => c.closed().await,
        }
    }

    /// Why the session closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        match &self.inner {
            Inner::Quic(s) => s.close_reason().map(Into::into),
            Inner::Ws(c) => c.close_reason(),
        }
    }

    /// The underlying `web_transport_quinn` session (e.g. for the CONNECT request headers);
    /// `None` on WebSocket.
    pub fn inner(&self) -> Option<&wtq::Session> {
        match &self.inner {
            Inner::Quic(s) => Some(s),
            Inner::Ws(_) => None,
        }
    }

    /// The QMux connection of a WebSocket session (`None` on QUIC).
    pub fn qmux(&self) -> Option<&QmuxConnection> {
        match &self.inner {
            Inner::Quic(_) => None,
            Inner::Ws(c) => Some(c),
        }
    }
}

/// The sending half of a stream. Dropped without [`SendStream::finish`] or
/// [`SendStream::reset`], it is reset with `GOING_AWAY` (quinn would finish it: a stream cut
/// short when its session closes must not look complete to the peer).
#[derive(Debug)]
pub struct SendStream {
    inner: SendInner,
    /// Finished or reset.
    ended: bool,
    /// Counts a peer's bidirectional stream against its stream credit while it lives.
    _credit: Option<Arc<CreditGuard>>,
}

impl Drop for SendStream {
    fn drop(&mut self) {
        if !self.ended {
            let code = moqt_proto::session::stream_code::GOING_AWAY as u32;
            let _ = match &mut self.inner {
                SendInner::Quic(s) => s.reset(code).map_err(StreamError::from),
                SendInner::Ws(s) => s.reset(code),
            };
        }
    }
}

#[derive(Debug)]
enum SendInner {
    Quic(wtq::SendStream),
    Ws(QmuxSend),
}

impl SendStream {
    fn new(inner: SendInner) -> SendStream {
        SendStream { inner, ended: false, _credit: None }
    }

    /// The QUIC (or QMux) stream id (on WebTransport the ids are not contiguous).
    pub fn id(&self) -> u64 {
        match &self.inner {
            SendInner::Quic(s) => s.quic_id().into(),
            SendInner::Ws(s) => s.id(),
        }
    }

    /// Writes the whole chunk, waiting for flow-control credit as needed. Not cancel safe.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StreamError> {
        match &mut self.inner {
            SendInner::Quic(s) => Ok(s.write_chunk(data).await?),
            SendInner::Ws(s) => s.write(data).await,
        }
    }

    /// Writes as much of `chunks` as flow control allows now (waiting only until at least one byte
    /// fits). Fully written chunks are left empty and a partially written one keeps its unwritten
    /// suffix. Cancel safe: if it does not resolve, nothing was written.
    pub async fn write_chunks(&mut self, chunks: &mut [Bytes]) -> Result<Written, StreamError> {
        match &mut self.inner {
            SendInner::Quic(s) => {
                let w = s.write_chunks(chunks).await?;
                Ok(Written { bytes: w.bytes, chunks: w.chunks })
            }
            SendInner::Ws(s) => s.write_chunks(chunks).await,
        }
    }

    /// Ends the stream cleanly (FIN) after the data already written.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        match &mut self.inner {
            SendInner::Quic(s) => s.finish()?,
            SendInner::Ws(s) => s.finish()?,
        }
        self.ended = true;
        Ok(())
    }

    /// Abandons the stream with RESET_STREAM and an application code.
    pub fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        self.ended = true;
        match &mut self.inner {
            SendInner::Quic(s) => Ok(s.reset(code)?),
            SendInner::Ws(s) => s.reset(code),
        }
    }

    /// Sets the send priority: higher values are sent first (quinn semantics, default 0).
    pub fn set_priority(&self, priority: i32) -> Result<(), StreamError> {
        match &self.inner {
            SendInner::Quic(s) => Ok(s.set_priority(priority)?),
            SendInner::Ws(s) => s.set_priority(priority),
        }
    }

    /// Waits until the peer sends STOP_SENDING (`Some(code)`) or has acknowledged all data after
    /// [`SendStream::finish`] (`None`; on WebSocket: handed to the TCP connection).
    pub async fn stopped(&self) -> Result<Option<u32>, ConnectionError> {
        match &self.inner {
            SendInner::Quic(s) => Ok(s.stopped().await?),
            SendInner::Ws(s) => s.stopped().await,
        }
    }
}

/// The receiving half of a stream.
#[derive(Debug)]
pub struct RecvStream {
    inner: RecvInner,
    /// Counts the stream against the peer's stream credit while it lives.
    _credit: Option<Arc<CreditGuard>>,
}

#[derive(Debug)]
enum RecvInner {
    Quic(wtq::RecvStream),
    Ws(QmuxRecv),
}

impl RecvStream {
    /// The QUIC (or QMux) stream id (on WebTransport the ids are not contiguous).
    pub fn id(&self) -> u64 {
        match &self.inner {
            RecvInner::Quic(s) => s.quic_id().into(),
            RecvInner::Ws(s) => s.id(),
        }
    }

    /// Reads the next in-order chunk as received, without copying; `None` at the end of the stream.
    pub async fn read(&mut self) -> Result<Option<Bytes>, StreamError> {
        self.read_chunk(usize::MAX).await
    }

    /// Reads the next in-order chunk of at most `max` bytes; `None` at the end of the stream.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        match &mut self.inner {
            RecvInner::Quic(s) => Ok(s.read_chunk(max, true).await?.map(|c| c.bytes)),
            RecvInner::Ws(s) => s.read_chunk(max).await,
        }
    }

    /// Reads everything up to FIN (at most `limit` bytes) into one buffer. Convenience for tests
    /// and small control streams.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.read().await? {
            if out.len() + chunk.len() > limit {
                self.stop(0).ok();
                return Err(StreamError::TooLong(limit));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Asks the peer to stop sending (STOP_SENDING) with an application code.
    pub fn stop(&mut self, code: u32) -> Result<(), StreamError> {
        match &mut self.inner {
            RecvInner::Quic(s) => Ok(s.stop(code)?),
            RecvInner::Ws(s) => s.stop(code),
        }
    }

    /// Waits until the peer resets the stream (`Some(code)`) or it ends cleanly (`None`).
    pub async fn received_reset(&mut self) -> Result<Option<u32>, ConnectionError> {
        match &mut self.inner {
            RecvInner::Quic(s) => Ok(s.received_reset().await?),
            RecvInner::Ws(s) => s.received_reset().await,
        }
    }
}
