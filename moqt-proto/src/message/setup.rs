//! lite-05+ SETUP: the single message on each side's uni Setup stream, a list of parameters.

use bytes::{BufMut, BytesMut};
use smallvec::SmallVec;

use super::{Codec, Message};
use crate::coding::{put_varint, varint_len, DecodeError, Reader, VarInt};

/// SETUP parameter ids.
mod id {
    pub const PROBE: u64 = 0x1;
    pub const PATH: u64 = 0x2;
    pub const ROLE: u64 = 0x3;
    pub const COST: u64 = 0x4;
    pub const HOP: u64 = 0x5;
}

/// How much bandwidth probing an endpoint supports (each level includes the ones below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeLevel {
    /// No probing.
    None = 0,
    /// Can report estimates.
    Report = 1,
    /// Can also raise its send rate to probe for more.
    Increase = 2,
}

/// Which halves of the protocol a client will use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Publisher and subscriber (the default; also what unknown values mean).
    #[default]
    Both = 0,
    /// Publisher only.
    Publisher = 1,
    /// Subscriber only.
    Subscriber = 2,
}

/// SETUP: the capabilities of the sender. Absent parameters are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setup {
    /// Probe level (0x1).
    pub probe: Option<ProbeLevel>,
    /// Request path and query, on URI-less transports only (0x2).
    pub path: Option<String>,
    /// Client role (0x3).
    pub role: Option<Role>,
    /// Price of the sender's egress, for lite-06 route cost (0x4; absent means 1).
    pub cost: Option<u64>,
    /// The sender's hop id, for split horizon (0x5; 0 decodes as absent).
    pub hop: Option<u64>,
}

impl Message for Setup {
    /// Parameters are written in id order (peers must not depend on any order).
    fn encode_body(&self, _codec: &Codec, buf: &mut BytesMut) {
        let count =
            [self.probe.is_some(), self.path.is_some(), self.role.is_some(), self.cost.is_some(), self.hop.is_some()]
                .into_iter()
                .filter(|b| *b)
                .count();
        put_varint(buf, count as u64);
        let put_num = |buf: &mut BytesMut, id: u64, v: u64| {
            put_varint(buf, id);
            put_varint(buf, varint_len(v) as u64);
            put_varint(buf, v);
        };
        if let Some(p) = self.probe {
            put_num(buf, id::PROBE, p as u64);
        }
        if let Some(path) = &self.path {
            put_varint(buf, id::PATH);
            put_varint(buf, path.len() as u64);
            buf.put_slice(path.as_bytes());
        }
        if let Some(role) = self.role {
            put_num(buf, id::ROLE, role as u64);
        }
        if let Some(cost) = self.cost {
            put_num(buf, id::COST, cost);
        }
        if let Some(hop) = self.hop {
            put_num(buf, id::HOP, hop);
        }
    }

    fn decode_body(r: &mut Reader<'_>, _codec: &Codec) -> Result<Self, DecodeError> {
        let limits = r.limits();
        let count = r.varint()?;
        if count > limits.max_setup_params {
            return Err(DecodeError::TooManyParameters(count));
        }
        let mut seen: SmallVec<[u64; 8]> = SmallVec::new();
        let mut setup = Setup::default();
        for _ in 0..count {
            let pid = r.varint()?;
            if seen.contains(&pid) {
                return Err(DecodeError::DuplicateParameter(pid));
            }
            seen.push(pid);
            let len = r.varint()?;
            let value = r.raw(usize::try_from(len).map_err(|_| DecodeError::Truncated)?)?;
            match pid {
                id::PROBE => {
                    setup.probe = Some(match numeric(pid, value, limits.strict_varints)? {
                        0 => ProbeLevel::None,
                        1 => ProbeLevel::Report,
                        _ => ProbeLevel::Increase,
                    })
                }
                id::PATH => {
                    let path = std::str::from_utf8(value).map_err(|_| DecodeError::InvalidUtf8)?;
                    setup.path = Some(path.to_owned());
                }
                id::ROLE => {
                    setup.role = Some(match numeric(pid, value, limits.strict_varints)? {
                        1 => Role::Publisher,
                        2 => Role::Subscriber,
                        _ => Role::Both,
                    })
                }
                id::COST => setup.cost = Some(numeric(pid, value, limits.strict_varints)?),
                id::HOP => setup.hop = Some(numeric(pid, value, limits.strict_varints)?).filter(|&h| h != 0),
                _ => {} // unknown parameters are skipped
            }
        }
        Ok(setup)
    }
}

/// A numeric parameter value: exactly one varint.
fn numeric(pid: u64, value: &[u8], strict: bool) -> Result<u64, DecodeError> {
    match VarInt::decode(value) {
        Some((v, n, minimal)) if n == value.len() => {
            if strict && !minimal {
                Err(DecodeError::NonMinimalVarint)
            } else {
                Ok(v)
            }
        }
        _ => Err(DecodeError::InvalidParameter(pid)),
    }
}
