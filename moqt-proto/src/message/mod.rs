//! Every moq-lite message and stream header, for lite-03 to lite-06, in both lite-04 dialects.
//!
//! One Rust type per message, the same type for every version: fields a version cannot carry
//! are simply not written (and decode to their default). Each type implements [`Message`], which
//! handles the `Msg{}` length framing; the typed responses (`Typed(T){}`) have their own enums.
//! The per-stream sequencing (which message may follow which) lives in [`crate::stream`].

mod announce;
mod fetch;
mod goaway;
mod group;
mod probe;
mod setup;
mod subscribe;
mod track;

pub use announce::{
    encode_unknown_announce, kind as announce_kind, Announce, AnnounceEnd, AnnounceOk, AnnounceRequest,
    AnnounceRestart, AnnounceStart, AnnounceStatus, Hops, RouteCost,
};
pub use fetch::Fetch;
pub use goaway::Goaway;
pub use group::{Datagram, FrameHeader, GroupHeader};
pub use probe::Probe;
pub use setup::{ProbeLevel, Role, Setup};
pub use subscribe::{Subscribe, SubscribeDrop, SubscribeOk, SubscribeResponse, SubscribeUpdate};
pub use track::{Track, TrackInfo};

use bytes::BytesMut;

use crate::coding::{encode_msg, put_varint, DecodeError, Limits, Reader};
use crate::path::{Path, WirePath};
use crate::version::{Dialect, Version};

/// Everything that decides how bytes are spelled: version, lite-04 dialect, and decode limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// The negotiated version.
    pub version: Version,
    /// The lite-04 dialect (ignored by other versions' encodings except for path spelling).
    pub dialect: Dialect,
    /// Bounds applied while decoding.
    pub limits: Limits,
}

impl Codec {
    /// The draft dialect with default limits.
    pub fn new(version: Version) -> Self {
        Self { version, dialect: Dialect::Draft, limits: Limits::default() }
    }

    /// The same codec in another dialect.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// The same codec with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// A length-prefixed (`Msg{}`) control message.
pub trait Message: Sized {
    /// Appends the body (without the length prefix).
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut);

    /// Reads the body's fields.
    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError>;

    /// Appends the message with its length prefix.
    fn encode(&self, codec: &Codec, buf: &mut BytesMut) {
        encode_msg(buf, |buf| self.encode_body(codec, buf));
    }

    /// Decodes one complete body; bytes left over are an error.
    fn decode(body: &[u8], codec: &Codec) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, &codec.limits);
        let msg = Self::decode_body(&mut r, codec)?;
        r.finish()?;
        Ok(msg)
    }
}

/// Appends `Typed(T){ body }`.
pub(crate) fn encode_typed(buf: &mut BytesMut, kind: u64, body: impl FnOnce(&mut BytesMut)) {
    put_varint(buf, kind);
    encode_msg(buf, body);
}

pub(crate) fn put_wire_path(buf: &mut BytesMut, path: WirePath<'_>) {
    put_varint(buf, path.len() as u64);
    path.write_to(buf);
}

/// Writes a full broadcast path in the codec's dialect.
pub(crate) fn put_path(buf: &mut BytesMut, codec: &Codec, path: &Path) {
    put_wire_path(buf, path.wire_path(codec.dialect));
}

/// Reads a broadcast path (either spelling) and normalises it. The path limit applies to the
/// normalised path; the wire form may carry gomoqt's two extra slashes on top of it, so that a
/// path accepted in one dialect can always be re-encoded in the other.
pub(crate) fn read_path(r: &mut Reader<'_>) -> Result<Path, DecodeError> {
    let limits = r.limits();
    let s = r.str_max((limits.max_path_len as u64).saturating_add(2)).map_err(|e| match e {
        DecodeError::StringTooLong(n) => DecodeError::PathTooLong(n as usize),
        e => e,
    })?;
    Path::decode(s, limits)
}

/// Reads a track name or other bounded string as an owned `String`.
pub(crate) fn read_string(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    r.str().map(str::to_owned)
}

/// Writes an `opt+1` group field.
pub(crate) fn put_opt(buf: &mut BytesMut, value: Option<u64>) {
    put_varint(buf, value.map_or(0, |v| v + 1));
}

/// Reads the u8 Ordered flag (any non-zero value is true, as both peers do).
pub(crate) fn read_bool(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    Ok(r.u8()? != 0)
}
