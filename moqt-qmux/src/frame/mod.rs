//! QMux frames: the QUIC v1 frames QMux keeps, QMux's own (QX_TRANSPORT_PARAMETERS, QX_PING),
//! RFC 9221 DATAGRAM, RESET_STREAM_AT (decode only), and the legacy `webtransport` format.
//!
//! Payloads ([`Frame::Stream`], [`Frame::Datagram`], close reasons) are `Bytes` slices of the
//! record they were decoded from: decoding never copies them.

mod decode;
mod encode;

use bytes::Bytes;

use crate::params::TransportParams;
use crate::stream_id::{Dir, StreamId};

pub use decode::{decode, decode_legacy};
pub use encode::{encode, encode_legacy, encoded_len, legacy_len, stream_header_len, NotEncodable};

/// Frame type numbers.
pub mod ty {
    /// PADDING.
    pub const PADDING: u64 = 0x00;
    /// RESET_STREAM.
    pub const RESET_STREAM: u64 = 0x04;
    /// STOP_SENDING.
    pub const STOP_SENDING: u64 = 0x05;
    /// STREAM (0x08..=0x0f; bit 2 = OFF, bit 1 = LEN, bit 0 = FIN).
    pub const STREAM: u64 = 0x08;
    /// STREAM with OFF and LEN set, as every QMux sender writes it (0x0f with FIN).
    pub const STREAM_OFF_LEN: u64 = 0x0e;
    /// MAX_DATA.
    pub const MAX_DATA: u64 = 0x10;
    /// MAX_STREAM_DATA.
    pub const MAX_STREAM_DATA: u64 = 0x11;
    /// MAX_STREAMS (bidi).
    pub const MAX_STREAMS_BIDI: u64 = 0x12;
    /// MAX_STREAMS (uni).
    pub const MAX_STREAMS_UNI: u64 = 0x13;
    /// DATA_BLOCKED.
    pub const DATA_BLOCKED: u64 = 0x14;
    /// STREAM_DATA_BLOCKED.
    pub const STREAM_DATA_BLOCKED: u64 = 0x15;
    /// STREAMS_BLOCKED (bidi).
    pub const STREAMS_BLOCKED_BIDI: u64 = 0x16;
    /// STREAMS_BLOCKED (uni).
    pub const STREAMS_BLOCKED_UNI: u64 = 0x17;
    /// CONNECTION_CLOSE (transport error; carries a frame type).
    pub const CONNECTION_CLOSE: u64 = 0x1c;
    /// CONNECTION_CLOSE of the application variant ("APPLICATION_CLOSE"; no frame type).
    pub const APPLICATION_CLOSE: u64 = 0x1d;
    /// RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset; qmux-02).
    pub const RESET_STREAM_AT: u64 = 0x24;
    /// DATAGRAM without a length: the payload runs to the end of the record.
    pub const DATAGRAM: u64 = 0x30;
    /// DATAGRAM with a length.
    pub const DATAGRAM_LEN: u64 = 0x31;
    /// QX_TRANSPORT_PARAMETERS (`"\xffQMX\r\n\r\n"` on the wire).
    pub const QX_TRANSPORT_PARAMETERS: u64 = 0x3f51_5330_0d0a_0d0a;
    /// QX_PING request.
    pub const QX_PING: u64 = 0x348c_6752_9ef8_c7bd;
    /// QX_PING response.
    pub const QX_PONG: u64 = 0x348c_6752_9ef8_c7be;
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// PADDING (one zero byte).
    Padding,
    /// RESET_STREAM: the sender abandons its send side.
    ResetStream {
        /// The stream.
        id: StreamId,
        /// Application error code.
        code: u64,
        /// Bytes the sender had sent (0 in the legacy format, which has no such field).
        final_size: u64,
    },
    /// RESET_STREAM_AT (decoded, never sent): a reset that keeps the first `reliable_size` bytes.
    ResetStreamAt {
        /// The stream.
        id: StreamId,
        /// Application error code.
        code: u64,
        /// Bytes the sender had sent.
        final_size: u64,
        /// Bytes the receiver must still deliver (at most `final_size`).
        reliable_size: u64,
    },
    /// STOP_SENDING: the receiver asks the sender to reset.
    StopSending {
        /// The stream.
        id: StreamId,
        /// Application error code.
        code: u64,
    },
    /// STREAM: stream data and/or FIN.
    Stream {
        /// The stream.
        id: StreamId,
        /// Offset of `data` in the stream (0 when the OFF bit is clear, and in the legacy format).
        offset: u64,
        /// The payload.
        data: Bytes,
        /// The last frame of the stream.
        fin: bool,
    },
    /// MAX_DATA: connection-level credit.
    MaxData(u64),
    /// MAX_STREAM_DATA: stream-level credit.
    MaxStreamData {
        /// The stream.
        id: StreamId,
        /// The new limit (absolute offset).
        max: u64,
    },
    /// MAX_STREAMS: cumulative stream count the peer may open.
    MaxStreams {
        /// Which kind.
        dir: Dir,
        /// The new count.
        max: u64,
    },
    /// DATA_BLOCKED (informational).
    DataBlocked(u64),
    /// STREAM_DATA_BLOCKED (informational).
    StreamDataBlocked {
        /// The stream.
        id: StreamId,
        /// The limit the sender is blocked at.
        limit: u64,
    },
    /// STREAMS_BLOCKED (informational).
    StreamsBlocked {
        /// Which kind.
        dir: Dir,
        /// The limit the sender is blocked at.
        limit: u64,
    },
    /// CONNECTION_CLOSE (0x1c): the sender found a transport error.
    ConnectionClose {
        /// Transport error code.
        code: u64,
        /// The frame type that caused it (0 in the legacy format).
        frame_type: u64,
        /// Reason bytes.
        reason: Bytes,
    },
    /// APPLICATION_CLOSE (0x1d): a deliberate close.
    ApplicationClose {
        /// Application code.
        code: u64,
        /// Reason bytes.
        reason: Bytes,
    },
    /// QX_TRANSPORT_PARAMETERS.
    TransportParameters(TransportParams),
    /// QX_PING request with its sequence number.
    Ping(u64),
    /// QX_PING response echoing a request's sequence number.
    Pong(u64),
    /// DATAGRAM (encoded with a length, 0x31; 0x30 decodes too).
    Datagram(Bytes),
}

impl Frame {
    /// The frame type this frame is written with (QMux numbering).
    pub fn ty(&self) -> u64 {
        match self {
            Frame::Padding => ty::PADDING,
            Frame::ResetStream { .. } => ty::RESET_STREAM,
            Frame::ResetStreamAt { .. } => ty::RESET_STREAM_AT,
            Frame::StopSending { .. } => ty::STOP_SENDING,
            Frame::Stream { fin, .. } => ty::STREAM_OFF_LEN | u64::from(*fin),
            Frame::MaxData(_) => ty::MAX_DATA,
            Frame::MaxStreamData { .. } => ty::MAX_STREAM_DATA,
            Frame::MaxStreams { dir: Dir::Bi, .. } => ty::MAX_STREAMS_BIDI,
            Frame::MaxStreams { dir: Dir::Uni, .. } => ty::MAX_STREAMS_UNI,
            Frame::DataBlocked(_) => ty::DATA_BLOCKED,
            Frame::StreamDataBlocked { .. } => ty::STREAM_DATA_BLOCKED,
            Frame::StreamsBlocked { dir: Dir::Bi, .. } => ty::STREAMS_BLOCKED_BIDI,
            Frame::StreamsBlocked { dir: Dir::Uni, .. } => ty::STREAMS_BLOCKED_UNI,
            Frame::ConnectionClose { .. } => ty::CONNECTION_CLOSE,
            Frame::ApplicationClose { .. } => ty::APPLICATION_CLOSE,
            Frame::TransportParameters(_) => ty::QX_TRANSPORT_PARAMETERS,
            Frame::Ping(_) => ty::QX_PING,
            Frame::Pong(_) => ty::QX_PONG,
            Frame::Datagram(_) => ty::DATAGRAM_LEN,
        }
    }
}
