//! Frame decoding: QMux frames from a record, and legacy `webtransport` frames from a message.
//!
//! Every length is checked against what is left of the record before anything is sliced;
//! nothing is allocated here except the transport-parameter struct.

use bytes::{Buf, Bytes};

use super::{ty, Frame};
use crate::error::{TransportError, TransportErrorCode};
use crate::params::TransportParams;
use crate::stream_id::{Dir, StreamId, MAX_STREAM_COUNT};
use crate::varint;

fn encoding(reason: &'static str, frame_type: u64) -> TransportError {
    TransportError::new(TransportErrorCode::FRAME_ENCODING_ERROR, reason).frame(frame_type)
}

/// Reads fields of one frame of type `ty`, attributing truncation to that type.
struct Fields<'a> {
    buf: &'a mut Bytes,
    ty: u64,
}

impl Fields<'_> {
    fn varint(&mut self) -> Result<u64, TransportError> {
        varint::read(self.buf).map_err(|_| encoding("truncated frame", self.ty))
    }

    fn id(&mut self) -> Result<StreamId, TransportError> {
        self.varint().map(StreamId)
    }

    /// `len` bytes as a slice of the record.
    fn take(&mut self, len: u64) -> Result<Bytes, TransportError> {
        if len > self.buf.len() as u64 {
            return Err(encoding("truncated frame", self.ty));
        }
        Ok(self.buf.split_to(len as usize))
    }

    /// A varint length, then that many bytes.
    fn prefixed(&mut self) -> Result<Bytes, TransportError> {
        let len = self.varint()?;
        self.take(len)
    }

    /// The rest of the record.
    fn rest(&mut self) -> Bytes {
        self.buf.split_to(self.buf.len())
    }

    fn stream_count(&mut self) -> Result<u64, TransportError> {
        let n = self.varint()?;
        if n > MAX_STREAM_COUNT {
            return Err(encoding("stream count above 2^60", self.ty));
        }
        Ok(n)
    }
}

/// Whether `t` is a QUIC v1 frame type QMux prohibits (PING, ACK, CRYPTO, NEW_TOKEN, connection
/// id and path frames, HANDSHAKE_DONE).
fn prohibited(t: u64) -> bool {
    matches!(t, 0x01..=0x03 | 0x06 | 0x07 | 0x18..=0x1b | 0x1e)
}

/// Decodes one QMux frame from the front of `buf` (a record, or what is left of it) and
/// advances past it. A STREAM frame without the LEN bit and a DATAGRAM of type 0x30 take the
/// rest of the record.
///
/// Errors: FRAME_ENCODING_ERROR for truncated, unknown or prohibited frames and out-of-range
/// fields; TRANSPORT_PARAMETER_ERROR for a bad QX_TRANSPORT_PARAMETERS body.
pub fn decode(buf: &mut Bytes) -> Result<Frame, TransportError> {
    let t = varint::read(buf).map_err(|_| encoding("truncated frame type", 0))?;
    let mut f = Fields { buf, ty: t };
    let frame = match t {
        ty::PADDING => Frame::Padding,
        0x08..=0x0f => {
            let id = f.id()?;
            let offset = if t & 0x04 != 0 { f.varint()? } else { 0 };
            let data = if t & 0x02 != 0 { f.prefixed()? } else { f.rest() };
            if offset.saturating_add(data.len() as u64) > varint::MAX {
                return Err(encoding("stream offset beyond 2^62", t));
            }
            Frame::Stream { id, offset, data, fin: t & 0x01 != 0 }
        }
        ty::RESET_STREAM => Frame::ResetStream { id: f.id()?, code: f.varint()?, final_size: f.varint()? },
        ty::RESET_STREAM_AT => {
            let (id, code, final_size, reliable_size) = (f.id()?, f.varint()?, f.varint()?, f.varint()?);
            if reliable_size > final_size {
                return Err(encoding("RESET_STREAM_AT reliable size above final size", t));
            }
            Frame::ResetStreamAt { id, code, final_size, reliable_size }
        }
        ty::STOP_SENDING => Frame::StopSending { id: f.id()?, code: f.varint()? },
        ty::MAX_DATA => Frame::MaxData(f.varint()?),
        ty::MAX_STREAM_DATA => Frame::MaxStreamData { id: f.id()?, max: f.varint()? },
        ty::MAX_STREAMS_BIDI => Frame::MaxStreams { dir: Dir::Bi, max: f.stream_count()? },
        ty::MAX_STREAMS_UNI => Frame::MaxStreams { dir: Dir::Uni, max: f.stream_count()? },
        ty::DATA_BLOCKED => Frame::DataBlocked(f.varint()?),
        ty::STREAM_DATA_BLOCKED => Frame::StreamDataBlocked { id: f.id()?, limit: f.varint()? },
        ty::STREAMS_BLOCKED_BIDI => Frame::StreamsBlocked { dir: Dir::Bi, limit: f.stream_count()? },
        ty::STREAMS_BLOCKED_UNI => Frame::StreamsBlocked { dir: Dir::Uni, limit: f.stream_count()? },
        ty::CONNECTION_CLOSE => {
            Frame::ConnectionClose { code: f.varint()?, frame_type: f.varint()?, reason: f.prefixed()? }
        }
        ty::APPLICATION_CLOSE => Frame::ApplicationClose { code: f.varint()?, reason: f.prefixed()? },
        ty::QX_TRANSPORT_PARAMETERS => {
            let body = f.prefixed()?;
            Frame::TransportParameters(TransportParams::decode(body).map_err(|e| e.frame(t))?)
        }
        ty::QX_PING => Frame::Ping(f.varint()?),
        ty::QX_PONG => Frame::Pong(f.varint()?),
        ty::DATAGRAM => Frame::Datagram(f.rest()),
        ty::DATAGRAM_LEN => Frame::Datagram(f.prefixed()?),
        t if prohibited(t) => return Err(encoding("frame type prohibited by QMux", t)),
        t => return Err(encoding("unknown frame type", t)),
    };
    Ok(frame)
}

/// Decodes the single legacy-format frame that makes up a WebSocket message: a `u8` type, then
/// STREAM (0x08/0x09: id, payload to the end), RESET_STREAM (0x04: id, code), STOP_SENDING
/// (0x05: id, code) or a close (0x1c/0x1d: code, reason to the end). Trailing bytes after a
/// RESET/STOP are an error.
pub fn decode_legacy(mut msg: Bytes) -> Result<Frame, TransportError> {
    if msg.is_empty() {
        return Err(encoding("empty message", 0));
    }
    let t = u64::from(msg.get_u8());
    let mut f = Fields { buf: &mut msg, ty: t };
    let frame = match t {
        0x08 | 0x09 => Frame::Stream { id: f.id()?, offset: 0, data: f.rest(), fin: t == 0x09 },
        ty::RESET_STREAM => Frame::ResetStream { id: f.id()?, code: f.varint()?, final_size: 0 },
        ty::STOP_SENDING => Frame::StopSending { id: f.id()?, code: f.varint()? },
        ty::CONNECTION_CLOSE => Frame::ConnectionClose { code: f.varint()?, frame_type: 0, reason: f.rest() },
        ty::APPLICATION_CLOSE => Frame::ApplicationClose { code: f.varint()?, reason: f.rest() },
        t => return Err(encoding("unknown legacy frame type", t)),
    };
    if !msg.is_empty() {
        return Err(encoding("trailing bytes after a legacy frame", t));
    }
    Ok(frame)
}
