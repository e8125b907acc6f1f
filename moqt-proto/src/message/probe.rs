//! PROBE: a target bitrate (subscriber) or a report of bitrate and RTT (publisher).

use bytes::BytesMut;

use super::{Codec, Message};
use crate::coding::{put_varint, DecodeError, Reader};

/// PROBE. Each field uses 0 for "unknown".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    /// Bits per second.
    pub bitrate: u64,
    /// Smoothed RTT in milliseconds (lite-04+).
    pub rtt_ms: u64,
}

impl Message for Probe {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        put_varint(buf, self.bitrate);
        if codec.version.probe_has_rtt() {
            put_varint(buf, self.rtt_ms);
        }
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let bitrate = r.varint()?;
        let rtt_ms = if codec.version.probe_has_rtt() { r.varint()? } else { 0 };
        Ok(Self { bitrate, rtt_ms })
    }
}
