//! The `container` member of a rendition: how each MoQ frame of the track is packaged.
//!
//! JSON shapes: `{"kind":"legacy"}`, `{"kind":"cmaf","init":"<base64 ftyp+moov>"}`,
//! `{"kind":"loc"}`. A missing member means legacy. An unknown `kind` is kept verbatim as
//! [`Container::Unknown`] so one future rendition does not make the whole catalog unreadable.

use base64::Engine as _;
use bytes::Bytes;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The packaging of the frames of one track.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Container {
    /// A QUIC varint timestamp in microseconds, then the raw codec payload.
    #[default]
    Legacy,
    /// Each frame is a `moof`+`mdat` fragment; `init` is the track's `ftyp`+`moov`.
    Cmaf {
        /// The init segment (base64 in JSON).
        init: Bytes,
    },
    /// The Low Overhead Container (draft-ietf-moq-loc); recognised, not encoded here.
    Loc,
    /// A kind this crate does not know, with all its members.
    Unknown(Map<String, Value>),
}

impl Container {
    /// The `kind` string as it appears in JSON.
    pub fn kind(&self) -> &str {
        match self {
            Container::Legacy => "legacy",
            Container::Cmaf { .. } => "cmaf",
            Container::Loc => "loc",
            Container::Unknown(map) => map.get("kind").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

impl Serialize for Container {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        match self {
            Container::Legacy => {
                map.insert("kind".into(), "legacy".into());
            }
            Container::Cmaf { init } => {
                map.insert("kind".into(), "cmaf".into());
                map.insert("init".into(), base64::engine::general_purpose::STANDARD.encode(init).into());
            }
            Container::Loc => {
                map.insert("kind".into(), "loc".into());
            }
            Container::Unknown(unknown) => return unknown.serialize(serializer),
        }
        map.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Container {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        match map.get("kind").and_then(Value::as_str) {
            Some("legacy") => Ok(Container::Legacy),
            Some("loc") => Ok(Container::Loc),
            Some("cmaf") => {
                // A known kind must be well-formed: a cmaf container without its init segment
                // cannot be decoded, so it is an error rather than an unknown container.
                let init = map
                    .get("init")
                    .and_then(Value::as_str)
                    .ok_or_else(|| de::Error::custom("cmaf container without init"))?;
                let init = base64::engine::general_purpose::STANDARD
                    .decode(init)
                    .map_err(|e| de::Error::custom(format!("cmaf init is not base64: {e}")))?;
                Ok(Container::Cmaf { init: Bytes::from(init) })
            }
            _ => Ok(Container::Unknown(map)),
        }
    }
}
