//! FETCH: ask for one past group; the response is that group's frames, then FIN.

use bytes::{BufMut, BytesMut};

use super::{put_opt, put_path, read_path, read_string, Codec, Message};
use crate::coding::{put_str, put_varint, DecodeError, Reader};
use crate::path::Path;

/// FETCH request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    /// The broadcast.
    pub path: Path,
    /// The track.
    pub track: String,
    /// Subscriber priority.
    pub priority: u8,
    /// The group wanted (absolute).
    pub group: u64,
    /// First frame wanted (lite-06).
    pub start_frame: u64,
    /// Last frame wanted, inclusive (lite-06): `None` = to the end.
    pub end_frame: Option<u64>,
}

impl Message for Fetch {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        put_path(buf, codec, &self.path);
        put_str(buf, &self.track);
        buf.put_u8(self.priority);
        put_varint(buf, self.group);
        if codec.version.has_frame_bounds() {
            put_varint(buf, self.start_frame);
            put_opt(buf, self.end_frame);
        }
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let mut fetch = Self {
            path: read_path(r)?,
            track: read_string(r)?,
            priority: r.u8()?,
            group: r.varint()?,
            ..Self::default()
        };
        if codec.version.has_frame_bounds() {
            fetch.start_frame = r.varint()?;
            fetch.end_frame = r.opt_plus_one()?;
            if fetch.end_frame.is_some_and(|end| end < fetch.start_frame) {
                return Err(DecodeError::InvalidValue("fetch frame range"));
            }
        }
        Ok(fetch)
    }
}
