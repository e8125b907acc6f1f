//! The uniform session and stream handles the driver moves bytes through.
//!
//! This module owns [`Connection`], [`SendStream`] and [`RecvStream`]: thin wrappers over
//! `web_transport_quinn`'s types that look the same whether the connection is raw QUIC (a moq-lite
//! ALPN) or a WebTransport session over HTTP/3, carry the negotiated [`Version`], and report errors
//! as this crate's [`ConnectionError`] / [`StreamError`] instead of the library's.
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
use std::time::Duration;

use bytes::Bytes;
use moqt_proto::Version;
use web_transport_quinn as wtq;

/// Which transport carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Raw QUIC; the version came from the TLS ALPN.
    RawQuic,
    /// WebTransport over HTTP/3 (ALPN `h3`); the version came from `wt-protocol`.
    WebTransport,
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

/// An established moq-lite session over raw QUIC or WebTransport. Cheap to clone; clones share the
/// connection.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: wtq::Session,
    version: Version,
    kind: TransportKind,
}

impl Connection {
    /// Wraps an established `web_transport_quinn` session whose version is already known.
    pub fn new(inner: wtq::Session, version: Version, kind: TransportKind) -> Connection {
        Connection { inner, version, kind }
    }

    /// The negotiated moq-lite version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Raw QUIC or WebTransport.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The peer's UDP address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.remote_address()
    }

    /// A process-unique id for this connection (quinn's stable id).
    pub fn id(&self) -> usize {
        self.inner.stable_id()
    }

    /// The WebTransport sub-protocol the server answered with (`wt-protocol`), or `None` on raw QUIC.
    pub fn wt_protocol(&self) -> Option<&str> {
        self.inner.response().and_then(|r| r.protocol.as_deref())
    }

    /// The current RTT estimate.
    pub fn rtt(&self) -> Duration {
        self.inner.rtt()
    }

    /// Opens a unidirectional stream (waits for stream credit).
    pub async fn open_uni(&self) -> Result<SendStream, ConnectionError> {
        Ok(SendStream::new(self.inner.open_uni().await?))
    }

    /// Opens a bidirectional stream (waits for stream credit).
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        let (send, recv) = self.inner.open_bi().await?;
        Ok((SendStream::new(send), RecvStream { inner: recv }))
    }

    /// Waits for the peer to open a unidirectional stream.
    pub async fn accept_uni(&self) -> Result<RecvStream, ConnectionError> {
        Ok(RecvStream { inner: self.inner.accept_uni().await? })
    }

    /// Waits for the peer to open a bidirectional stream.
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        let (send, recv) = self.inner.accept_bi().await?;
        Ok((SendStream::new(send), RecvStream { inner: recv }))
    }

    /// Sends an unreliable datagram; fails instead of waiting when the send buffer is full.
    pub fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        Ok(self.inner.send_datagram(data)?)
    }

    /// Waits for the next datagram from the peer.
    pub async fn read_datagram(&self) -> Result<Bytes, ConnectionError> {
        Ok(self.inner.read_datagram().await?)
    }

    /// The largest datagram payload [`Connection::send_datagram`] accepts now (0 if unsupported).
    pub fn max_datagram_size(&self) -> usize {
        self.inner.max_datagram_size()
    }

    /// Closes the session with an application code and reason. On WebTransport this sends
    /// CLOSE_WEBTRANSPORT_SESSION first, in the background.
    pub fn close(&self, code: u32, reason: &str) {
        tracing::debug!(id = self.id(), code, reason, "closing session");
        self.inner.close(code, reason.as_bytes());
    }

    /// Waits until the session is closed (for any reason) and says why.
    pub async fn closed(&self) -> ConnectionError {
        self.inner.closed().await.into()
    }

    /// Why the session closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.inner.close_reason().map(Into::into)
    }

    /// The underlying `web_transport_quinn` session (e.g. for the CONNECT request headers).
    pub fn inner(&self) -> &wtq::Session {
        &self.inner
    }
}

/// The sending half of a stream. Dropped without [`SendStream::finish`] or
/// [`SendStream::reset`], it is reset with `GOING_AWAY` (quinn would finish it: a stream cut
/// short when its session closes must not look complete to the peer, and on WebTransport the
/// connection outlives a closing session long enough for such a FIN to arrive).
#[derive(Debug)]
pub struct SendStream {
    inner: Option<wtq::SendStream>,
    /// Finished or reset.
    ended: bool,
}

impl Drop for SendStream {
    fn drop(&mut self) {
        if let (Some(inner), false) = (self.inner.as_mut(), self.ended) {
            let _ = inner.reset(moqt_proto::session::stream_code::GOING_AWAY as u32);
        }
    }
}

impl SendStream {
    fn new(inner: wtq::SendStream) -> SendStream {
        SendStream { inner: Some(inner), ended: false }
    }

    fn stream(&mut self) -> &mut wtq::SendStream {
        self.inner.as_mut().expect("only `into_inner` takes it, consuming the handle")
    }

    fn stream_ref(&self) -> &wtq::SendStream {
        self.inner.as_ref().expect("only `into_inner` takes it, consuming the handle")
    }

    /// The QUIC stream id (on WebTransport the ids are not contiguous).
    pub fn id(&self) -> u64 {
        self.stream_ref().quic_id().into()
    }

    /// Writes the whole chunk, waiting for flow-control credit as needed. Not cancel safe.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StreamError> {
        Ok(self.stream().write_chunk(data).await?)
    }

    /// Writes as much of `chunks` as flow control allows now (waiting only until at least one byte
    /// fits). Fully written chunks are left empty and a partially written one keeps its unwritten
    /// suffix. Cancel safe: if it does not resolve, nothing was written.
    pub async fn write_chunks(&mut self, chunks: &mut [Bytes]) -> Result<Written, StreamError> {
        let w = self.stream().write_chunks(chunks).await?;
        Ok(Written { bytes: w.bytes, chunks: w.chunks })
    }

    /// Ends the stream cleanly (FIN) after the data already written.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        self.stream().finish()?;
        self.ended = true;
        Ok(())
    }

    /// Abandons the stream with RESET_STREAM and an application code.
    pub fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        self.ended = true;
        Ok(self.stream().reset(code)?)
    }

    /// Sets the send priority: higher values are sent first (quinn semantics, default 0).
    pub fn set_priority(&self, priority: i32) -> Result<(), StreamError> {
        Ok(self.stream_ref().set_priority(priority)?)
    }

    /// Waits until the peer sends STOP_SENDING (`Some(code)`) or has acknowledged all data after
    /// [`SendStream::finish`] (`None`).
    pub async fn stopped(&self) -> Result<Option<u32>, ConnectionError> {
        Ok(self.stream_ref().stopped().await?)
    }

    /// The underlying `web_transport_quinn` stream.
    pub fn into_inner(mut self) -> wtq::SendStream {
        self.inner.take().expect("taken only here")
    }
}

/// The receiving half of a stream.
#[derive(Debug)]
pub struct RecvStream {
    inner: wtq::RecvStream,
}

impl RecvStream {
    /// The QUIC stream id (on WebTransport the ids are not contiguous).
    pub fn id(&self) -> u64 {
        self.inner.quic_id().into()
    }

    /// Reads the next in-order chunk as received, without copying; `None` at the end of the stream.
    pub async fn read(&mut self) -> Result<Option<Bytes>, StreamError> {
        self.read_chunk(usize::MAX).await
    }

    /// Reads the next in-order chunk of at most `max` bytes; `None` at the end of the stream.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        Ok(self.inner.read_chunk(max, true).await?.map(|c| c.bytes))
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
        Ok(self.inner.stop(code)?)
    }

    /// Waits until the peer resets the stream (`Some(code)`) or it ends cleanly (`None`).
    pub async fn received_reset(&mut self) -> Result<Option<u32>, ConnectionError> {
        Ok(self.inner.received_reset().await?)
    }

    /// The underlying `web_transport_quinn` stream.
    pub fn into_inner(self) -> wtq::RecvStream {
        self.inner
    }
}
