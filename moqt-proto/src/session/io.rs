//! The driver-facing vocabulary: stream handles, transport events in, commands out.

use bytes::Bytes;

/// An opaque stream handle.
///
/// Bit 0 says who opened the stream (0 = this endpoint, 1 = the peer), bit 1 whether it is
/// unidirectional, and the rest is a counter. The core picks the ids of streams it opens; the
/// driver picks the ids of streams the peer opens (any unique counter, e.g. with
/// [`StreamId::remote`]). They never collide, and they need not match QUIC stream ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64);

impl StreamId {
    /// A handle for a stream the peer opened, from a driver-side counter.
    pub const fn remote(index: u64, uni: bool) -> Self {
        StreamId(index << 2 | (uni as u64) << 1 | 1)
    }

    pub(crate) const fn local(index: u64, uni: bool) -> Self {
        StreamId(index << 2 | (uni as u64) << 1)
    }

    /// Whether the peer opened it.
    pub const fn is_remote(self) -> bool {
        self.0 & 1 == 1
    }

    /// Whether it is unidirectional.
    pub const fn is_uni(self) -> bool {
        self.0 & 2 == 2
    }
}

/// Something that happened on the transport, fed to [`crate::Session::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// The peer opened a stream; its kind is in the id bits.
    StreamOpened(StreamId),
    /// Bytes arrived on a stream, possibly with FIN.
    StreamData {
        /// The stream.
        id: StreamId,
        /// The bytes (may be empty when only `fin` is set).
        data: Bytes,
        /// The peer finished its send side after these bytes.
        fin: bool,
    },
    /// The peer reset its send side (RESET_STREAM).
    StreamReset {
        /// The stream.
        id: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// The peer asked us to stop sending (STOP_SENDING).
    StopSending {
        /// The stream.
        id: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// The transport can take more data for this stream.
    Writable(StreamId),
    /// A datagram arrived.
    Datagram(Bytes),
    /// The connection is gone.
    Closed {
        /// The close code (the peer's, or the local one).
        code: u64,
        /// The reason text.
        reason: String,
    },
}

/// Something the driver must do, in FIFO order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open a stream and map it to this id. Data may already be queued for it.
    Open {
        /// The core-chosen handle (its bits say uni or bidi).
        id: StreamId,
        /// Initial send priority (higher first).
        priority: i32,
    },
    /// The stream has data (or a FIN) queued: pull it with [`crate::Session::send_chunks`] and
    /// [`crate::Session::advance_send`] until nothing is left or the transport is blocked.
    Transmit(StreamId),
    /// Reset our send side with this code.
    Reset {
        /// The stream.
        id: StreamId,
        /// The code.
        code: u64,
    },
    /// Ask the peer to stop sending on this stream, and discard what arrives.
    StopSending {
        /// The stream.
        id: StreamId,
        /// The code.
        code: u64,
    },
    /// Change the send priority (higher first).
    SetPriority {
        /// The stream.
        id: StreamId,
        /// The new priority.
        priority: i32,
    },
    /// Send one datagram.
    SendDatagram(Bytes),
    /// Close the connection.
    Close {
        /// The session close code.
        code: u64,
        /// A reason for logs.
        reason: String,
    },
}
