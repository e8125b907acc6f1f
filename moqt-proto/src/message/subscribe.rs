//! The subscribe stream: SUBSCRIBE and SUBSCRIBE_UPDATE from the subscriber, and the typed
//! responses from the publisher (SUBSCRIBE_OK/DROP on lite-03/04, START/END/DROP on lite-05+).

use bytes::{BufMut, BytesMut};

use super::{encode_typed, put_opt, put_path, read_bool, read_path, read_string, Codec, Message};
use crate::coding::{put_str, put_varint, DecodeError, Reader};
use crate::path::Path;
use crate::version::Dialect;

/// SUBSCRIBE: the first message on a subscribe stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscribe {
    /// Chosen by the subscriber, unique within the session.
    pub id: u64,
    /// The broadcast.
    pub path: Path,
    /// The track within the broadcast.
    pub track: String,
    /// Subscriber priority; higher is sent first.
    pub priority: u8,
    /// Oldest group first (lite-03 to lite-05; lite-06 is always newest first).
    pub ordered: bool,
    /// Max latency (lite-03 to 05) / max age (lite-06), in milliseconds.
    pub max_latency: u64,
    /// First group wanted: `None` = the latest (lite-05-) or no floor (lite-06).
    pub start_group: Option<u64>,
    /// Last group wanted, inclusive: `None` = unbounded.
    pub end_group: Option<u64>,
    /// First frame within the start group (lite-06).
    pub start_frame: u64,
    /// Last frame within the end group, inclusive (lite-06): `None` = to the end of the group.
    pub end_frame: Option<u64>,
}

/// SUBSCRIBE_UPDATE: new parameters for the subscription on this stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeUpdate {
    /// Subscriber priority.
    pub priority: u8,
    /// Oldest group first (lite-03 to lite-05).
    pub ordered: bool,
    /// Max latency / max age in milliseconds.
    pub max_latency: u64,
    /// First group wanted (see [`Subscribe::start_group`]).
    pub start_group: Option<u64>,
    /// Last group wanted, inclusive.
    pub end_group: Option<u64>,
    /// First frame within the start group (lite-06).
    pub start_frame: u64,
    /// Last frame within the end group (lite-06).
    pub end_frame: Option<u64>,
}

/// The fields SUBSCRIBE and SUBSCRIBE_UPDATE share after the track name.
struct Params {
    priority: u8,
    ordered: bool,
    max_latency: u64,
    start_group: Option<u64>,
    end_group: Option<u64>,
    start_frame: u64,
    end_frame: Option<u64>,
}

impl Params {
    fn encode(&self, codec: &Codec, buf: &mut BytesMut) {
        buf.put_u8(self.priority);
        if codec.version.has_ordered() {
            buf.put_u8(u8::from(self.ordered));
            put_varint(buf, self.max_latency);
            put_opt(buf, self.start_group);
            put_opt(buf, self.end_group);
        } else {
            put_varint(buf, self.max_latency);
            put_varint(buf, self.start_group.unwrap_or(0));
            put_opt(buf, self.end_group);
            put_varint(buf, self.start_frame);
            put_opt(buf, self.end_frame);
        }
    }

    fn decode(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let priority = r.u8()?;
        if codec.version.has_ordered() {
            Ok(Self {
                priority,
                ordered: read_bool(r)?,
                max_latency: r.varint()?,
                start_group: r.opt_plus_one()?,
                end_group: r.opt_plus_one()?,
                start_frame: 0,
                end_frame: None,
            })
        } else {
            let max_latency = r.varint()?;
            let start = r.varint()?;
            let end_group = r.opt_plus_one()?;
            let start_frame = r.varint()?;
            let end_frame = r.opt_plus_one()?;
            if end_frame.is_some() && end_group.is_none() {
                return Err(DecodeError::InvalidValue("subscribe location: end frame without end group"));
            }
            let start_group = (start != 0 || start_frame != 0).then_some(start);
            Ok(Self { priority, ordered: false, max_latency, start_group, end_group, start_frame, end_frame })
        }
    }
}

impl Message for Subscribe {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        put_varint(buf, self.id);
        put_path(buf, codec, &self.path);
        put_str(buf, &self.track);
        Params {
            priority: self.priority,
            ordered: self.ordered,
            max_latency: self.max_latency,
            start_group: self.start_group,
            end_group: self.end_group,
            start_frame: self.start_frame,
            end_frame: self.end_frame,
        }
        .encode(codec, buf);
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let id = r.varint()?;
        let path = read_path(r)?;
        let track = read_string(r)?;
        let p = Params::decode(r, codec)?;
        Ok(Self {
            id,
            path,
            track,
            priority: p.priority,
            ordered: p.ordered,
            max_latency: p.max_latency,
            start_group: p.start_group,
            end_group: p.end_group,
            start_frame: p.start_frame,
            end_frame: p.end_frame,
        })
    }
}

impl Message for SubscribeUpdate {
    fn encode_body(&self, codec: &Codec, buf: &mut BytesMut) {
        Params {
            priority: self.priority,
            ordered: self.ordered,
            max_latency: self.max_latency,
            start_group: self.start_group,
            end_group: self.end_group,
            start_frame: self.start_frame,
            end_frame: self.end_frame,
        }
        .encode(codec, buf);
    }

    fn decode_body(r: &mut Reader<'_>, codec: &Codec) -> Result<Self, DecodeError> {
        let p = Params::decode(r, codec)?;
        Ok(Self {
            priority: p.priority,
            ordered: p.ordered,
            max_latency: p.max_latency,
            start_group: p.start_group,
            end_group: p.end_group,
            start_frame: p.start_frame,
            end_frame: p.end_frame,
        })
    }
}

/// lite-03/04 SUBSCRIBE_OK: the publisher's track properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscribeOk {
    /// Publisher priority (a tie-breaker).
    pub priority: u8,
    /// Publisher group order.
    pub ordered: bool,
    /// Publisher max latency in milliseconds.
    pub max_latency: u64,
    /// First group that will be delivered (`None` = not yet known).
    pub start_group: Option<u64>,
    /// Last group that will be delivered (`None` = unbounded).
    pub end_group: Option<u64>,
}

/// SUBSCRIBE_DROP: groups `start..=end` will not be delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscribeDrop {
    /// First dropped group.
    pub start: u64,
    /// Last dropped group, inclusive.
    pub end: u64,
    /// Why (0 = simply unavailable).
    pub error: u64,
}

/// A message from the publisher on a subscribe stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeResponse {
    /// lite-03/04 SUBSCRIBE_OK (T=0).
    Ok(SubscribeOk),
    /// lite-05+ SUBSCRIBE_OK / SUBSCRIBE_START (T=0): the first group that will be delivered.
    Start(u64),
    /// lite-05+ SUBSCRIBE_END (T=1): no group at or above this one will come (exclusive).
    End(u64),
    /// SUBSCRIBE_DROP (T=1 on lite-03/04, T=2 on lite-05+).
    Drop(SubscribeDrop),
}

impl SubscribeResponse {
    /// Appends `Typed(T){…}` in the codec's version and dialect.
    ///
    /// A variant the version does not have is written as its nearest equivalent: `Ok` as
    /// `Start(start_group)` on lite-05+, `Start` as `Ok` on lite-03/04; `End` on lite-03/04 is
    /// not representable and writes nothing.
    pub fn encode(&self, codec: &Codec, buf: &mut BytesMut) {
        let modern = codec.version.has_subscribe_start();
        match (*self, modern) {
            (SubscribeResponse::Ok(ok), false) => encode_typed(buf, 0, |buf| {
                buf.put_u8(ok.priority);
                buf.put_u8(u8::from(ok.ordered));
                put_varint(buf, ok.max_latency);
                put_opt(buf, ok.start_group);
                put_opt(buf, ok.end_group);
            }),
            (SubscribeResponse::Ok(ok), true) => {
                SubscribeResponse::Start(ok.start_group.unwrap_or(0)).encode(codec, buf)
            }
            (SubscribeResponse::Start(group), false) => {
                SubscribeResponse::Ok(SubscribeOk { start_group: Some(group), ..Default::default() }).encode(codec, buf)
            }
            (SubscribeResponse::Start(group), true) => encode_typed(buf, 0, |buf| put_varint(buf, group)),
            (SubscribeResponse::End(group), true) => encode_typed(buf, 1, |buf| put_varint(buf, group)),
            (SubscribeResponse::End(_), false) => {}
            (SubscribeResponse::Drop(drop), modern) => {
                let gomoqt = !modern && codec.dialect == Dialect::Gomoqt;
                encode_typed(buf, if modern { 2 } else { 1 }, |buf| {
                    put_varint(buf, drop_group_out(drop.start, gomoqt));
                    put_varint(buf, drop_group_out(drop.end, gomoqt));
                    put_varint(buf, drop.error);
                })
            }
        }
    }

    /// Decodes a typed response body. Unknown types are an error.
    pub fn decode(kind: u64, body: &[u8], codec: &Codec) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, &codec.limits);
        let modern = codec.version.has_subscribe_start();
        let gomoqt = !modern && codec.dialect == Dialect::Gomoqt;
        let msg = match (kind, modern) {
            (0, false) => SubscribeResponse::Ok(SubscribeOk {
                priority: r.u8()?,
                ordered: read_bool(&mut r)?,
                max_latency: r.varint()?,
                start_group: r.opt_plus_one()?,
                end_group: r.opt_plus_one()?,
            }),
            (0, true) => SubscribeResponse::Start(r.varint()?),
            (1, true) => SubscribeResponse::End(r.varint()?),
            (1, false) | (2, true) => {
                let start = drop_group_in(r.varint()?, gomoqt);
                let end = drop_group_in(r.varint()?, gomoqt);
                if end < start {
                    return Err(DecodeError::InvalidValue("drop range"));
                }
                SubscribeResponse::Drop(SubscribeDrop { start, end, error: r.varint()? })
            }
            (other, _) => return Err(DecodeError::UnknownMessageType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

/// gomoqt writes group 0 as 0 and group N>0 as N+1 in SUBSCRIBE_DROP.
fn drop_group_out(group: u64, gomoqt: bool) -> u64 {
    if gomoqt && group > 0 {
        group + 1
    } else {
        group
    }
}

fn drop_group_in(wire: u64, gomoqt: bool) -> u64 {
    if gomoqt && wire > 0 {
        wire - 1
    } else {
        wire
    }
}
