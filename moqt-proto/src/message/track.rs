//! lite-05+ TRACK (request) and TRACK_INFO (the publisher's fixed track properties).

use bytes::{BufMut, BytesMut};

use super::{put_path, read_bool, read_path, read_string, Codec, Message};
use crate::coding::{put_str, put_varint, DecodeError, Reader};
use crate::path::Path;

/// TRACK: ask for a track's properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Track {
    /// The broadcast.
    pub path: Path,
    /// The track.
    pub track: String,
}

impl Message for Track {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        put_path(buf, codec, &self.path);
        put_str(buf, &self.track);
    }

    fn decode_body(r: &mut Reader<'_>, _codec: &Codec) -> Result<Self, DecodeError> {
        Ok(Self { path: read_path(r)?, track: read_string(r)? })
    }
}

/// TRACK_INFO: fixed properties of a track, then FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    /// Publisher priority.
    pub priority: u8,
    /// Publisher group order (lite-05 only).
    pub ordered: bool,
    /// Retention bound in milliseconds (max latency on lite-05, max age on lite-06).
    pub max_latency: u64,
    /// Timestamp units per second; never 0.
    pub timescale: u64,
}

impl Default for TrackInfo {
    /// moq-net's defaults: priority 0x7f, 5000 ms, timescale 1000.
    fn default() -> Self {
        Self { priority: 0x7f, ordered: false, max_latency: 5000, timescale: 1000 }
    }
}

impl Message for TrackInfo {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        buf.put_u8(self.priority);
        if codec.version.has_ordered() {
            buf.put_u8(u8::from(self.ordered));
        }
        put_varint(buf, self.max_latency);
        put_varint(buf, self.timescale);
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let priority = r.u8()?;
        let ordered = if codec.version.has_ordered() { read_bool(r)? } else { false };
        let max_latency = r.varint()?;
        let timescale = r.varint()?;
        if timescale == 0 {
            return Err(DecodeError::InvalidValue("timescale 0"));
        }
        Ok(Self { priority, ordered, max_latency, timescale })
    }
}
