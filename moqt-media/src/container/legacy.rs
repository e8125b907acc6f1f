//! The legacy container: `varint(timestamp_us) payload`.
//!
//! The timestamp is a QUIC variable-length integer (RFC 9000 §16: the two top bits of the first
//! byte give the length, 1/2/4/8 bytes) holding the presentation time in microseconds. The rest
//! of the frame is the raw codec payload (for H.264/H.265 with a description: length-prefixed
//! NAL units). An empty payload is a marker that players skip. There is no keyframe flag: the
//! first frame of a group is the keyframe.

use bytes::{Bytes, BytesMut};
use moqt_proto::coding::{put_varint, varint_len, VarInt, MAX_VARINT};

use crate::error::{Error, Result};

/// The largest timestamp a legacy frame can carry (2^62 - 1 µs).
pub const MAX_TIMESTAMP: u64 = MAX_VARINT;

/// Builds a legacy frame. Timestamps above [`MAX_TIMESTAMP`] are clamped to it.
pub fn encode(timestamp_us: u64, payload: &[u8]) -> Bytes {
    let ts = timestamp_us.min(MAX_TIMESTAMP);
    let mut out = BytesMut::with_capacity(varint_len(ts) + payload.len());
    put_varint(&mut out, ts);
    out.extend_from_slice(payload);
    out.freeze()
}

/// Splits a legacy frame into its timestamp (µs) and payload (a slice of `frame`, no copy).
/// Any varint encoding is accepted, the shortest or not.
pub fn decode(frame: &Bytes) -> Result<(u64, Bytes)> {
    let (ts, len, _) = VarInt::decode(frame).ok_or(Error::LegacyTruncated)?;
    Ok((ts, frame.slice(len..)))
}
