//! The driver-facing vocabulary: stream handles, what the transport reports
//! ([`TransportEvent`]) and what the core asks of it ([`Command`]).
//!
//! The contract is small enough to state in full:
//!
//! * **Streams.** The core opens streams with [`Command::Open`] under an id it picks; the driver
//!   names streams the peer opens with [`StreamId::remote`] and reports them with
//!   [`TransportEvent::StreamOpened`].
//! * **Reading.** The driver reads a stream only when the core grants it: one
//!   [`Command::Read`] allows one read of at most `max` bytes, answered by one
//!   [`TransportEvent::StreamData`] (at least one byte, or FIN) or [`TransportEvent::StreamReset`].
//!   Data the core has not asked for stays in the transport, so QUIC flow control pushes back on
//!   the peer.
//! * **Writing.** One [`Command::Write`] per stream is in flight at a time. The driver hands the
//!   chunks to the transport, finishes the stream if `fin` is set and every byte was taken, and
//!   answers with exactly one [`TransportEvent::Written`] once the transport took at least one
//!   byte (or, for an empty write, the FIN), or took nothing because the stream can take no
//!   more. The core keeps the bytes until then, so a blocked stream is a queue inside the core,
//!   where the delivery policy can drop a stale group instead of buffering it.
//! * **Everything else** ([`Command::Reset`], [`Command::StopSending`], …) is one transport call
//!   each, with no answer. A reset cancels the stream's write in flight; a `Written` that races
//!   with it is ignored.

use bytes::Bytes;
use smallvec::SmallVec;

/// An opaque stream handle.
///
/// Bit 0 says who opened the stream (0 = this endpoint, 1 = the peer), bit 1 whether it is
/// unidirectional, and the rest is a counter. The core picks the ids of streams it opens; the
/// driver picks the ids of streams the peer opens (any unique counter, e.g. with
/// [`StreamId::remote`]). They never collide, and they need not match QUIC stream ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// At most this many chunks go into one [`Command::Write`] (so it never allocates): a frame's
/// header and payload, or a few control messages. Commands are moved through queues by value,
/// so this also keeps them small.
pub const MAX_WRITE_CHUNKS: usize = 4;

/// The chunks of one write: clones of the core's queued `Bytes`, never copies.
pub type Chunks = SmallVec<[Bytes; MAX_WRITE_CHUNKS]>;

/// Something that happened on the transport, fed to [`crate::Session::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// The peer opened a stream; its kind is in the id bits.
    StreamOpened(StreamId),
    /// The answer to a [`Command::Read`]: bytes (at least one unless `fin`), possibly with FIN.
    StreamData {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Bytes,
        /// The peer finished its send side after these bytes.
        fin: bool,
    },
    /// The peer reset its send side (RESET_STREAM).
    StreamReset {
        /// The stream.
        stream: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// The peer asked us to stop sending (STOP_SENDING).
    StopSending {
        /// The stream.
        stream: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// The answer to a [`Command::Write`]: the transport took the first `bytes` bytes of its
    /// chunks (and the FIN, if it was asked for and every byte was taken).
    Written {
        /// The stream.
        stream: StreamId,
        /// How many bytes were taken.
        bytes: usize,
    },
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

/// Something the driver must do, in FIFO order. One command is one transport call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open a stream (uni or bidi per the id bits) and map it to this id.
    Open {
        /// The core-chosen handle.
        stream: StreamId,
        /// Initial send priority (higher first).
        priority: i32,
    },
    /// Read at most `max` bytes from the stream once; answered by one
    /// [`TransportEvent::StreamData`] or [`TransportEvent::StreamReset`].
    Read {
        /// The stream.
        stream: StreamId,
        /// The byte budget.
        max: usize,
    },
    /// Write these chunks, then FIN if `fin` and all of them were taken; answered by one
    /// [`TransportEvent::Written`].
    Write {
        /// The stream.
        stream: StreamId,
        /// The data.
        chunks: Chunks,
        /// FIN after the chunks.
        fin: bool,
    },
    /// Reset our send side with this code (cancelling a write in flight).
    Reset {
        /// The stream.
        stream: StreamId,
        /// The code.
        code: u64,
    },
    /// Ask the peer to stop sending on this stream, and discard what arrives.
    StopSending {
        /// The stream.
        stream: StreamId,
        /// The code.
        code: u64,
    },
    /// Change the send priority (higher first).
    SetPriority {
        /// The stream.
        stream: StreamId,
        /// The new priority.
        priority: i32,
    },
    /// Send one datagram (the transport may drop it).
    SendDatagram(Bytes),
    /// Close the connection.
    Close {
        /// The session close code.
        code: u64,
        /// A reason for logs.
        reason: String,
    },
}
