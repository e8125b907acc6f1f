//! The announce stream's messages: the request for a prefix, lite-05+ ANNOUNCE_OK, the
//! lite-03 to lite-05 ANNOUNCE, and lite-06's typed START / END / RESTART.

use bytes::BytesMut;
use smallvec::SmallVec;

use super::{encode_typed, put_wire_path, read_path, Codec, Message};
use crate::coding::{encode_msg, put_varint, DecodeError, Reader};
use crate::path::Path;
use crate::version::Version;

/// A hop-id chain, oldest first. Hop id 0 means "unknown".
pub type Hops = SmallVec<[u64; 8]>;

/// ANNOUNCE_PLEASE (lite-03/04) / ANNOUNCE_REQUEST (lite-05/06): interest in a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The prefix of interest (the root for everything).
    pub prefix: Path,
    /// Do not announce paths whose hop chain holds this id (lite-04/05; 0 = none).
    pub exclude_hop: u64,
}

impl Message for AnnounceRequest {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        put_wire_path(buf, self.prefix.wire_prefix(codec.dialect));
        if codec.version.has_exclude_hop() {
            put_varint(buf, self.exclude_hop);
        }
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let prefix = read_path(r)?;
        let exclude_hop = if codec.version.has_exclude_hop() { r.varint()? } else { 0 };
        Ok(Self { prefix, exclude_hop })
    }
}

/// ANNOUNCE_OK (lite-05+): the publisher's hop id and the size of the initial batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnnounceOk {
    /// The responding publisher's hop id, appended by the receiver to every chain.
    pub hop_id: u64,
    /// How many active announcements follow as the initial set.
    pub active_count: u64,
}

impl Message for AnnounceOk {
    fn encode_body(&self, _codec: &Codec, buf: &mut BytesMut) {
        put_varint(buf, self.hop_id);
        put_varint(buf, self.active_count);
    }

    fn decode_body(r: &mut Reader<'_>, _codec: &Codec) -> Result<Self, DecodeError> {
        Ok(Self { hop_id: r.varint()?, active_count: r.varint()? })
    }
}

/// The status byte of a lite-03 to lite-05 ANNOUNCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceStatus {
    /// The broadcast is gone.
    Ended = 0,
    /// The broadcast is live.
    Active = 1,
    /// lite-05 only (accepted, never required): live again, replacing the previous announcement.
    Restart = 2,
}

/// ANNOUNCE (lite-03 to lite-05): one path becomes active or ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Active or ended.
    pub status: AnnounceStatus,
    /// The path below the requested prefix.
    pub suffix: Path,
    /// The hop chain; on lite-03 only its length travels (entries decode as 0).
    pub hops: Hops,
}

impl Message for Announce {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        put_varint(buf, self.status as u64);
        put_wire_path(buf, self.suffix.wire_path(crate::version::Dialect::Draft));
        if codec.version.has_hop_list() {
            put_hops(buf, &self.hops);
        } else {
            put_varint(buf, self.hops.len() as u64);
        }
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let status = match (r.varint()?, codec.version) {
            (0, _) => AnnounceStatus::Ended,
            (1, _) => AnnounceStatus::Active,
            (2, Version::Lite05) => AnnounceStatus::Restart,
            _ => return Err(DecodeError::InvalidValue("announce status")),
        };
        let suffix = read_path(r)?;
        let hops = if codec.version.has_hop_list() {
            read_hops(r, false)?
        } else {
            let n = r.varint()?;
            if n > r.limits().max_hops {
                return Err(DecodeError::TooManyHops(n));
            }
            std::iter::repeat_n(0, n as usize).collect()
        };
        Ok(Self { status, suffix, hops })
    }
}

/// lite-06 route cost: the warm and cold halves, each saturating at 2^62-1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteCost {
    /// Cost while the route is warm (already carrying the track).
    pub warm: u64,
    /// Cost to bring the route up.
    pub cold: u64,
}

/// ANNOUNCE_START (lite-06, T=0): a new live path; takes the next announce id on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceStart {
    /// The path below the requested prefix.
    pub suffix: Path,
    /// The hop chain, without the responding publisher.
    pub hops: Hops,
    /// The route cost.
    pub cost: RouteCost,
}

/// ANNOUNCE_END (lite-06, T=1): the announcement with this id is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceEnd {
    /// The announce id.
    pub id: u64,
}

/// ANNOUNCE_RESTART (lite-06, T=2): a live announcement's hops or cost changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRestart {
    /// The announce id.
    pub id: u64,
    /// The new hop chain.
    pub hops: Hops,
    /// The new route cost.
    pub cost: RouteCost,
}

/// The lite-06 announce message types.
pub mod kind {
    /// ANNOUNCE_START.
    pub const START: u64 = 0;
    /// ANNOUNCE_END.
    pub const END: u64 = 1;
    /// ANNOUNCE_RESTART.
    pub const RESTART: u64 = 2;
}

impl AnnounceStart {
    /// Appends `Typed(0){…}`.
    pub fn encode(&self, _codec: &Codec, buf: &mut BytesMut) {
        encode_typed(buf, kind::START, |buf| {
            put_wire_path(buf, self.suffix.wire_path(crate::version::Dialect::Draft));
            put_hops(buf, &self.hops);
            put_cost(buf, self.cost);
        });
    }

    /// Decodes a T=0 body.
    pub fn decode(body: &[u8], codec: &Codec) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, &codec.limits);
        let msg = Self { suffix: read_path(&mut r)?, hops: read_hops(&mut r, true)?, cost: read_cost(&mut r)? };
        r.finish()?;
        Ok(msg)
    }
}

impl AnnounceEnd {
    /// Appends `Typed(1){…}`.
    pub fn encode(&self, _codec: &Codec, buf: &mut BytesMut) {
        encode_typed(buf, kind::END, |buf| put_varint(buf, self.id));
    }

    /// Decodes a T=1 body.
    pub fn decode(body: &[u8], codec: &Codec) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, &codec.limits);
        let msg = Self { id: r.varint()? };
        r.finish()?;
        Ok(msg)
    }
}

impl AnnounceRestart {
    /// Appends `Typed(2){…}`.
    pub fn encode(&self, _codec: &Codec, buf: &mut BytesMut) {
        encode_typed(buf, kind::RESTART, |buf| {
            put_varint(buf, self.id);
            put_hops(buf, &self.hops);
            put_cost(buf, self.cost);
        });
    }

    /// Decodes a T=2 body.
    pub fn decode(body: &[u8], codec: &Codec) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, &codec.limits);
        let msg = Self { id: r.varint()?, hops: read_hops(&mut r, true)?, cost: read_cost(&mut r)? };
        r.finish()?;
        Ok(msg)
    }
}

/// Appends an unknown typed announce message (for tests of the skip rule).
pub fn encode_unknown_announce(buf: &mut BytesMut, kind: u64, body: &[u8]) {
    put_varint(buf, kind);
    encode_msg(buf, |buf| buf.extend_from_slice(body));
}

fn put_hops(buf: &mut BytesMut, hops: &[u64]) {
    put_varint(buf, hops.len() as u64);
    for &h in hops {
        put_varint(buf, h);
    }
}

fn read_hops(r: &mut Reader<'_>, unique: bool) -> Result<Hops, DecodeError> {
    let n = r.count(r.limits().max_hops, DecodeError::TooManyHops)?;
    let mut hops = Hops::with_capacity(n);
    for _ in 0..n {
        let h = r.varint()?;
        if unique && h != 0 && hops.contains(&h) {
            return Err(DecodeError::DuplicateHop);
        }
        hops.push(h);
    }
    Ok(hops)
}

fn put_cost(buf: &mut BytesMut, cost: RouteCost) {
    put_varint(buf, cost.warm);
    put_varint(buf, cost.cold);
}

fn read_cost(r: &mut Reader<'_>) -> Result<RouteCost, DecodeError> {
    Ok(RouteCost { warm: r.varint()?, cold: r.varint()? })
}
