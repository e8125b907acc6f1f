//! Error types: QUIC transport error codes, why a connection ended, and what the stream and
//! datagram calls of [`crate::Connection`] can refuse.

use std::fmt;

use bytes::Bytes;

/// A QUIC transport error code (RFC 9000 §20.1), as carried by CONNECTION_CLOSE (0x1c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportErrorCode(pub u64);

impl TransportErrorCode {
    /// NO_ERROR (0x0).
    pub const NO_ERROR: Self = Self(0x0);
    /// INTERNAL_ERROR (0x1).
    pub const INTERNAL_ERROR: Self = Self(0x1);
    /// FLOW_CONTROL_ERROR (0x3): the peer sent more than the credit it was given.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// STREAM_LIMIT_ERROR (0x4): the peer opened more streams than allowed.
    pub const STREAM_LIMIT_ERROR: Self = Self(0x4);
    /// STREAM_STATE_ERROR (0x5): a frame for a stream in a state that cannot take it.
    pub const STREAM_STATE_ERROR: Self = Self(0x5);
    /// FINAL_SIZE_ERROR (0x6): data past a stream's final size.
    pub const FINAL_SIZE_ERROR: Self = Self(0x6);
    /// FRAME_ENCODING_ERROR (0x7): a malformed, unknown, prohibited or oversized frame/record.
    pub const FRAME_ENCODING_ERROR: Self = Self(0x7);
    /// TRANSPORT_PARAMETER_ERROR (0x8): malformed or forbidden transport parameters.
    pub const TRANSPORT_PARAMETER_ERROR: Self = Self(0x8);
    /// PROTOCOL_VIOLATION (0xa): any other breach of the protocol.
    pub const PROTOCOL_VIOLATION: Self = Self(0xa);

    /// The RFC 9000 name, or `None` for codes this crate never sends.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "INTERNAL_ERROR",
            0x2 => "CONNECTION_REFUSED",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "STREAM_LIMIT_ERROR",
            0x5 => "STREAM_STATE_ERROR",
            0x6 => "FINAL_SIZE_ERROR",
            0x7 => "FRAME_ENCODING_ERROR",
            0x8 => "TRANSPORT_PARAMETER_ERROR",
            0x9 => "CONNECTION_ID_LIMIT_ERROR",
            0xa => "PROTOCOL_VIOLATION",
            _ => return None,
        })
    }
}

impl fmt::Display for TransportErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// A protocol error found in what the peer sent: the code and reason for our CONNECTION_CLOSE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct TransportError {
    /// The transport error code.
    pub code: TransportErrorCode,
    /// The type of the frame that caused it (0 when no single frame did).
    pub frame_type: u64,
    /// A short description, sent as the close reason.
    pub reason: &'static str,
}

impl TransportError {
    /// An error of `code` caused by no particular frame.
    pub const fn new(code: TransportErrorCode, reason: &'static str) -> Self {
        Self { code, frame_type: 0, reason }
    }

    /// The same error, attributed to a frame type.
    pub const fn frame(mut self, frame_type: u64) -> Self {
        self.frame_type = frame_type;
        self
    }
}

/// Why a connection ended. Delivered once, as the last [`crate::Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// We found a protocol error in the peer's input and sent CONNECTION_CLOSE (0x1c).
    #[error("local transport error: {0}")]
    LocalTransport(TransportError),
    /// The peer sent CONNECTION_CLOSE (0x1c): it found a protocol error.
    #[error("peer transport error {code}: {}", String::from_utf8_lossy(reason))]
    PeerTransport {
        /// The peer's transport error code.
        code: TransportErrorCode,
        /// The frame type the peer blamed (0 = none).
        frame_type: u64,
        /// The peer's reason bytes (UTF-8 by convention, not guaranteed).
        reason: Bytes,
    },
    /// The application closed the connection ([`crate::Connection::close`]); APPLICATION_CLOSE
    /// (0x1d) was sent.
    #[error("closed locally with code {code}")]
    LocalClose {
        /// The application code.
        code: u64,
        /// The reason.
        reason: Bytes,
    },
    /// The peer sent APPLICATION_CLOSE (0x1d): a deliberate close.
    #[error("closed by peer with code {code}: {}", String::from_utf8_lossy(reason))]
    PeerClose {
        /// The peer's application code.
        code: u64,
        /// The peer's reason bytes.
        reason: Bytes,
    },
    /// Nothing was received or sent for the negotiated idle timeout; closed silently.
    #[error("idle timeout")]
    IdleTimeout,
    /// The peer's QX_TRANSPORT_PARAMETERS did not arrive in time; closed silently.
    #[error("no transport parameters from the peer within the handshake timeout")]
    HandshakeTimeout,
    /// The underlying WebSocket / byte stream ended ([`crate::Connection::handle_transport_closed`]).
    #[error("transport closed")]
    TransportClosed,
}

impl ConnectionError {
    /// The close code: the transport or application code, or 0 for silent closes.
    pub fn code(&self) -> u64 {
        match self {
            Self::LocalTransport(e) => e.code.0,
            Self::PeerTransport { code, .. } => code.0,
            Self::LocalClose { code, .. } | Self::PeerClose { code, .. } => *code,
            Self::IdleTimeout | Self::HandshakeTimeout | Self::TransportClosed => 0,
        }
    }

    /// The reason text (lossy UTF-8), empty for silent closes.
    pub fn reason(&self) -> String {
        match self {
            Self::LocalTransport(e) => e.reason.to_string(),
            Self::PeerTransport { reason, .. } | Self::LocalClose { reason, .. } | Self::PeerClose { reason, .. } => {
                String::from_utf8_lossy(reason).into_owned()
            }
            Self::IdleTimeout | Self::HandshakeTimeout | Self::TransportClosed => String::new(),
        }
    }

    /// Whether this is a deliberate application close (either side), as opposed to an error.
    pub fn is_application_close(&self) -> bool {
        matches!(self, Self::LocalClose { .. } | Self::PeerClose { .. })
    }
}

/// Why [`crate::Connection::open`] could not open a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The peer's MAX_STREAMS (or its transport parameters, not yet received) allows no more
    /// streams of this direction; [`crate::Event::StreamsAvailable`] follows when it does.
    #[error("stream limit reached")]
    Blocked,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// Why [`crate::Connection::write`], `finish` or `reset` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// No stream credit or send buffer right now; [`crate::Event::Writable`] follows.
    #[error("blocked by flow control or the send buffer")]
    Blocked,
    /// The peer sent STOP_SENDING with this code; the stream has been reset.
    #[error("stopped by peer with code {0}")]
    Stopped(u64),
    /// The send side is already finished or reset.
    #[error("stream already finished or reset")]
    Finished,
    /// No such send stream (never opened, receive-only, or already done).
    #[error("unknown stream")]
    UnknownStream,
    /// An application error code was 2^62 or more.
    #[error("code does not fit in a varint")]
    InvalidCode,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// Why [`crate::Connection::read`] returned no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Nothing buffered yet; [`crate::Event::Readable`] follows when something arrives.
    #[error("no data available")]
    Blocked,
    /// No such receive stream (never opened, send-only, reset, stopped or already read to end).
    #[error("unknown stream")]
    UnknownStream,
    /// An application error code was 2^62 or more (`stop`).
    #[error("code does not fit in a varint")]
    InvalidCode,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// Why [`crate::Connection::send_datagram`] refused a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// The version has no datagrams (qmux-00, legacy), the peer does not accept them, or its
    /// transport parameters have not arrived yet.
    #[error("datagrams not supported by this connection")]
    Unsupported,
    /// Larger than [`crate::Connection::max_datagram_size`].
    #[error("datagram larger than {0} bytes")]
    TooLarge(usize),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// Why [`crate::Connection::new`] rejected a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Byte-stream framing needs the record layer (qmux-01 or later).
    #[error("{0} cannot run over a byte stream (records need qmux-01 or later)")]
    ByteStreamNeedsRecords(crate::Version),
    /// A value is out of its allowed range.
    #[error("invalid config: {0}")]
    Invalid(&'static str),
}
