//! Frame encoding, in the shapes moq-dev's peers write: STREAM always with OFF and LEN
//! (0x0e/0x0f), DATAGRAM always with a length (0x31), CONNECTION_CLOSE with its frame-type field
//! and APPLICATION_CLOSE without one.

use bytes::BufMut;

use super::{ty, Frame};
use crate::stream_id::StreamId;
use crate::varint;

/// A frame that this crate does not send in the requested format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame type {0:#x} cannot be encoded in this format")]
pub struct NotEncodable(pub u64);

/// The bytes a QMux STREAM frame header takes: type, id, offset and the length of `len`.
pub fn stream_header_len(id: StreamId, offset: u64, len: usize) -> usize {
    1 + varint::len(id.0) + varint::len(offset) + varint::len(len as u64)
}

fn close_len(code: u64, extra: Option<u64>, reason: usize) -> usize {
    1 + varint::len(code) + extra.map_or(0, varint::len) + varint::len(reason as u64) + reason
}

/// The encoded size of `frame` in QMux format (0 for frames [`encode`] refuses).
pub fn encoded_len(frame: &Frame) -> usize {
    let v = varint::len;
    match frame {
        Frame::Padding => 1,
        Frame::ResetStream { id, code, final_size } => 1 + v(id.0) + v(*code) + v(*final_size),
        Frame::ResetStreamAt { .. } => 0,
        Frame::StopSending { id, code } => 1 + v(id.0) + v(*code),
        Frame::Stream { id, offset, data, .. } => stream_header_len(*id, *offset, data.len()) + data.len(),
        Frame::MaxData(n) | Frame::DataBlocked(n) => 1 + v(*n),
        Frame::MaxStreams { max: n, .. } | Frame::StreamsBlocked { limit: n, .. } => 1 + v(*n),
        Frame::MaxStreamData { id, max: n } | Frame::StreamDataBlocked { id, limit: n } => 1 + v(id.0) + v(*n),
        Frame::ConnectionClose { code, frame_type, reason } => close_len(*code, Some(*frame_type), reason.len()),
        Frame::ApplicationClose { code, reason } => close_len(*code, None, reason.len()),
        Frame::TransportParameters(p) => {
            let body = p.encoded_len();
            8 + v(body as u64) + body
        }
        Frame::Ping(seq) | Frame::Pong(seq) => 8 + v(*seq),
        Frame::Datagram(data) => 1 + v(data.len() as u64) + data.len(),
    }
}

/// Appends `frame` in QMux format. RESET_STREAM_AT is decode-only and refused.
pub fn encode<B: BufMut>(frame: &Frame, buf: &mut B) -> Result<(), NotEncodable> {
    let put = varint::put::<B>;
    if matches!(frame, Frame::ResetStreamAt { .. }) {
        return Err(NotEncodable(ty::RESET_STREAM_AT));
    }
    put(buf, frame.ty());
    match frame {
        Frame::Padding | Frame::ResetStreamAt { .. } => {}
        Frame::ResetStream { id, code, final_size } => {
            put(buf, id.0);
            put(buf, *code);
            put(buf, *final_size);
        }
        Frame::StopSending { id, code } => {
            put(buf, id.0);
            put(buf, *code);
        }
        Frame::Stream { id, offset, data, .. } => {
            put(buf, id.0);
            put(buf, *offset);
            put(buf, data.len() as u64);
            buf.put_slice(data);
        }
        Frame::MaxData(n) | Frame::DataBlocked(n) => put(buf, *n),
        Frame::MaxStreams { max: n, .. } | Frame::StreamsBlocked { limit: n, .. } => put(buf, *n),
        Frame::MaxStreamData { id, max: n } | Frame::StreamDataBlocked { id, limit: n } => {
            put(buf, id.0);
            put(buf, *n);
        }
        Frame::ConnectionClose { code, frame_type, reason } => {
            put(buf, *code);
            put(buf, *frame_type);
            put(buf, reason.len() as u64);
            buf.put_slice(reason);
        }
        Frame::ApplicationClose { code, reason } => {
            put(buf, *code);
            put(buf, reason.len() as u64);
            buf.put_slice(reason);
        }
        Frame::TransportParameters(p) => {
            put(buf, p.encoded_len() as u64);
            p.encode(buf);
        }
        Frame::Ping(seq) | Frame::Pong(seq) => put(buf, *seq),
        Frame::Datagram(data) => {
            put(buf, data.len() as u64);
            buf.put_slice(data);
        }
    }
    Ok(())
}

/// The encoded size of `frame` in the legacy format (0 for frames it cannot carry).
pub fn legacy_len(frame: &Frame) -> usize {
    let v = varint::len;
    match frame {
        Frame::Stream { id, data, .. } => 1 + v(id.0) + data.len(),
        Frame::ResetStream { id, code, .. } | Frame::StopSending { id, code } => 1 + v(id.0) + v(*code),
        Frame::ConnectionClose { code, reason, .. } | Frame::ApplicationClose { code, reason } => {
            1 + v(*code) + reason.len()
        }
        _ => 0,
    }
}

/// Appends `frame` in the legacy `webtransport` format: only STREAM (no offset, payload to the
/// end), RESET_STREAM (no final size), STOP_SENDING and the two closes (reason to the end).
pub fn encode_legacy<B: BufMut>(frame: &Frame, buf: &mut B) -> Result<(), NotEncodable> {
    let put = varint::put::<B>;
    match frame {
        Frame::Stream { id, data, fin, .. } => {
            buf.put_u8(if *fin { 0x09 } else { 0x08 });
            put(buf, id.0);
            buf.put_slice(data);
        }
        Frame::ResetStream { id, code, .. } => {
            buf.put_u8(0x04);
            put(buf, id.0);
            put(buf, *code);
        }
        Frame::StopSending { id, code } => {
            buf.put_u8(0x05);
            put(buf, id.0);
            put(buf, *code);
        }
        Frame::ConnectionClose { code, reason, .. } => {
            buf.put_u8(0x1c);
            put(buf, *code);
            buf.put_slice(reason);
        }
        Frame::ApplicationClose { code, reason } => {
            buf.put_u8(0x1d);
            put(buf, *code);
            buf.put_slice(reason);
        }
        other => return Err(NotEncodable(other.ty())),
    }
    Ok(())
}
