//! The data plane: the GROUP header of a group uni stream, FRAME headers, and lite-05+
//! DATAGRAMs. Payloads are never copied here: a frame's payload travels as its own `Bytes`.

use bytes::{Bytes, BytesMut};

use super::{Codec, Message};
use crate::coding::{put_varint, put_zigzag, DecodeError, Reader};

/// GROUP: the header of a group uni stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupHeader {
    /// The subscription this group answers.
    pub subscribe_id: u64,
    /// The group sequence number.
    pub sequence: u64,
    /// Index of the first frame on this stream (lite-06; 0 = the whole group).
    pub frame_start: u64,
}

impl Message for GroupHeader {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        put_varint(buf, self.subscribe_id);
        put_varint(buf, self.sequence);
        if codec.version.has_frame_bounds() {
            put_varint(buf, self.frame_start);
        }
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let subscribe_id = r.varint()?;
        let sequence = r.varint()?;
        let frame_start = if codec.version.has_frame_bounds() { r.varint()? } else { 0 };
        Ok(Self { subscribe_id, sequence, frame_start })
    }
}

/// The header in front of each frame payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// Signed timestamp delta to the previous frame on this stream (lite-05+).
    pub timestamp_delta: i64,
    /// Payload size in bytes.
    pub size: u64,
}

impl FrameHeader {
    /// Appends the header; the payload follows as a separate chunk.
    pub fn encode(&self, codec: &Codec, buf: &mut BytesMut) {
        if codec.version.has_frame_timestamps() {
            put_zigzag(buf, self.timestamp_delta);
        }
        put_varint(buf, self.size);
    }
}

/// DATAGRAM (lite-05+): a whole single-frame group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The subscription.
    pub subscribe_id: u64,
    /// The group sequence.
    pub group: u64,
    /// Absolute timestamp in the track's timescale.
    pub timestamp: u64,
    /// The frame payload.
    pub payload: Bytes,
}

impl Datagram {
    /// Appends the datagram header and payload (a datagram is sent as one buffer).
    pub fn encode(&self, _codec: &Codec, buf: &mut BytesMut) {
        put_varint(buf, self.subscribe_id);
        put_varint(buf, self.group);
        put_varint(buf, self.timestamp);
        buf.extend_from_slice(&self.payload);
    }

    /// Decodes a datagram; the payload is a slice of `data`.
    pub fn decode(data: &Bytes, codec: &Codec) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data, &codec.limits);
        let subscribe_id = r.varint()?;
        let group = r.varint()?;
        let timestamp = r.varint()?;
        let header = data.len() - r.remaining();
        Ok(Self { subscribe_id, group, timestamp, payload: data.slice(header..) })
    }
}
