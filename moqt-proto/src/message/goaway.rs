//! GOAWAY (lite-04+): the sender is shutting down; optionally where to go instead.

use bytes::BytesMut;

use super::{Codec, Message};
use crate::coding::{put_str, DecodeError, Reader};

/// GOAWAY.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Goaway {
    /// Where to reconnect ("" = nowhere in particular).
    pub uri: String,
}

impl Message for Goaway {
    fn encode_body(&self, _codec: &Codec, buf: &mut BytesMut) {
        put_str(buf, &self.uri);
    }

    fn decode_body(r: &mut Reader<'_>, _codec: &Codec) -> Result<Self, DecodeError> {
        Ok(Self { uri: r.str_max(r.limits().max_goaway_uri)?.to_owned() })
    }
}
