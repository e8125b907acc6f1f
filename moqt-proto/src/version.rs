//! moq-lite versions, their ALPN / WebTransport protocol strings, and the per-version feature
//! gates every other module asks instead of comparing version numbers.

use std::fmt;
use std::str::FromStr;

/// A moq-lite version this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// draft-lcurley-moq-lite-03.
    Lite03,
    /// draft-lcurley-moq-lite-04 (the version gomoqt speaks).
    Lite04,
    /// draft-lcurley-moq-lite-05.
    Lite05,
    /// moq-lite-06 as implemented by moq-net 0.3.18 / moq-relay 0.17.
    Lite06,
}

/// Returned when a string names no version this crate speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown moq-lite version {0:?}")]
pub struct UnknownVersion(pub String);

impl Version {
    /// Every version, newest (most preferred) first.
    pub const ALL: [Version; 4] = [Version::Lite06, Version::Lite05, Version::Lite04, Version::Lite03];

    /// The raw-QUIC ALPN, which is also the WebTransport sub-protocol string.
    pub const fn alpn(self) -> &'static str {
        match self {
            Version::Lite03 => "moq-lite-03",
            Version::Lite04 => "moq-lite-04",
            Version::Lite05 => "moq-lite-05",
            Version::Lite06 => "moq-lite-06",
        }
    }

    /// The WebTransport sub-protocol (`wt-protocol`) string: the same as the ALPN.
    pub const fn wt_protocol(self) -> &'static str {
        self.alpn()
    }

    /// Parses an ALPN or WebTransport protocol string.
    pub fn from_alpn(alpn: &[u8]) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.alpn().as_bytes() == alpn)
    }

    /// FETCH streams are defined (lite-03+).
    pub const fn has_fetch(self) -> bool {
        true
    }

    /// PROBE carries an RTT field (lite-04+).
    pub const fn probe_has_rtt(self) -> bool {
        !matches!(self, Version::Lite03)
    }

    /// Goaway streams are defined (lite-04+).
    pub const fn has_goaway(self) -> bool {
        !matches!(self, Version::Lite03)
    }

    /// The uni SETUP stream, TRACK/TRACK_INFO, datagrams, frame timestamps and ANNOUNCE_OK (lite-05+).
    pub const fn has_setup(self) -> bool {
        matches!(self, Version::Lite05 | Version::Lite06)
    }

    /// TRACK / TRACK_INFO streams are defined (lite-05+).
    pub const fn has_track(self) -> bool {
        self.has_setup()
    }

    /// Datagrams are defined (lite-05+).
    pub const fn has_datagrams(self) -> bool {
        self.has_setup()
    }

    /// FRAME carries a zigzag timestamp delta (lite-05+).
    pub const fn has_frame_timestamps(self) -> bool {
        self.has_setup()
    }

    /// The publisher answers ANNOUNCE_REQUEST with ANNOUNCE_OK first (lite-05+).
    pub const fn has_announce_ok(self) -> bool {
        self.has_setup()
    }

    /// ANNOUNCE carries an explicit hop-id list rather than a bare count (lite-04+).
    pub const fn has_hop_list(self) -> bool {
        !matches!(self, Version::Lite03)
    }

    /// ANNOUNCE_PLEASE / ANNOUNCE_REQUEST carries an Exclude Hop (lite-04 and lite-05 only).
    pub const fn has_exclude_hop(self) -> bool {
        matches!(self, Version::Lite04 | Version::Lite05)
    }

    /// Announcements are typed START / END / RESTART messages with ids and route cost (lite-06).
    pub const fn has_typed_announce(self) -> bool {
        matches!(self, Version::Lite06)
    }

    /// SUBSCRIBE/UPDATE/TRACK_INFO carry the Ordered byte and `opt+1` start (lite-03 to lite-05).
    pub const fn has_ordered(self) -> bool {
        !matches!(self, Version::Lite06)
    }

    /// SUBSCRIBE/UPDATE/FETCH/GROUP carry frame bounds (lite-06).
    pub const fn has_frame_bounds(self) -> bool {
        matches!(self, Version::Lite06)
    }

    /// Subscribe responses are SUBSCRIBE_START/END/DROP (lite-05+) instead of SUBSCRIBE_OK/DROP.
    pub const fn has_subscribe_start(self) -> bool {
        self.has_setup()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpn())
    }
}

impl FromStr for Version {
    type Err = UnknownVersion;

    /// Accepts the ALPN (`moq-lite-05`) or the short form (`lite-05`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let full = if s.starts_with("lite-") { format!("moq-{s}") } else { s.to_string() };
        Version::from_alpn(full.as_bytes()).ok_or_else(|| UnknownVersion(s.to_string()))
    }
}

/// How lite-04 messages are spelled on the wire. Only lite-04 has two dialects in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Dialect {
    /// The draft and moq-net: paths without leading `/`, plain SUBSCRIBE_DROP group numbers.
    #[default]
    Draft,
    /// gomoqt: absolute paths, prefixes wrapped in `/`, SUBSCRIBE_DROP groups encoded `+1`.
    Gomoqt,
}

impl FromStr for Dialect {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "draft" | "moq-net" => Ok(Dialect::Draft),
            "gomoqt" => Ok(Dialect::Gomoqt),
            other => Err(UnknownVersion(other.to_string())),
        }
    }
}
