//! The MSF catalog (MOQT Streaming Format, draft-ietf-moq-msf), published on the track
//! `catalog`.
//!
//! Two drafts are read and written:
//! - **draft-00**: `"version": 1` (a number), each track's init data inline in `initData`
//!   (base64). gomoqt's `msf` package reads this shape (its `version` is an integer).
//! - **draft-01**: `"version": "draft-01"` (a string); init data moves to a root `initDataList` of
//!   `{"id","type":"inline","data"}` entries that tracks point at with `initRef`. moq-dev
//!   (`moq-msf`, `@moq/msf`) writes this shape and reads both.
//!
//! Reading accepts either (a numeric version is draft-00, a string is draft-01) and always
//! resolves `initRef` to inline init data. [`MsfCatalog::from_hang`] and [`MsfCatalog::to_hang`]
//! convert to and from the hang [`Catalog`]; `packaging` carries the hang container kind
//! (`legacy` and `cmaf`; `legacy` is moq-dev's extension, not in the drafts).

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AudioConfig, Catalog, Container, VideoConfig};
use crate::error::{Error, Result};

/// Which MSF draft shape to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MsfVersion {
    /// `"version": 1`, inline `initData`.
    Draft00,
    /// `"version": "draft-01"`, `initDataList` + `initRef`.
    #[default]
    Draft01,
}

/// An MSF catalog with init data resolved inline, whatever draft it came in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MsfCatalog {
    /// `generatedAt`: wall-clock milliseconds since the Unix epoch, if given.
    pub generated_at: Option<u64>,
    /// `isComplete`: the broadcast has ended.
    pub is_complete: bool,
    /// The tracks.
    pub tracks: Vec<MsfTrack>,
    /// Root members this crate does not interpret, kept verbatim.
    pub extra: Map<String, Value>,
}

/// One MSF track entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MsfTrack {
    /// Track name.
    pub name: String,
    /// Track namespace, when not the catalog's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Packaging: `legacy`, `cmaf`, `loc`, `mediatimeline`, `eventtimeline`, …
    pub packaging: String,
    /// Whether the track is live.
    #[serde(default)]
    pub is_live: bool,
    /// Role: `video`, `audio`, `caption`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// WebCodecs codec string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second (written as an integer when whole).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::serde_util::number_opt")]
    pub framerate: Option<f64>,
    /// Audio sample rate in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samplerate: Option<u32>,
    /// Audio channel configuration, a string (`"2"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_config: Option<String>,
    /// Bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// Init data: the CMAF init segment, or the decoder description for other packagings.
    #[serde(skip)]
    pub init_data: Option<Bytes>,
    /// Tracks with the same render group are played together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_group: Option<u64>,
    /// Tracks with the same alternate group are alternatives of each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_group: Option<u64>,
    /// Members this crate does not interpret, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The wire shape of a track: init data still base64, possibly behind `initRef`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTrack {
    #[serde(flatten)]
    track: MsfTrack,
    #[serde(default)]
    init_data: Option<String>,
    #[serde(default)]
    init_ref: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCatalog {
    version: Value,
    #[serde(default)]
    generated_at: Option<u64>,
    #[serde(default)]
    is_complete: bool,
    #[serde(default)]
    tracks: Vec<WireTrack>,
    #[serde(default)]
    init_data_list: Vec<WireInitData>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct WireInitData {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: String,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(track: &str, data: &str) -> Result<Bytes> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(Bytes::from)
        .map_err(|e| Error::Catalog(format!("MSF track {track:?}: initData is not base64: {e}")))
}

impl MsfCatalog {
    /// Parses MSF catalog JSON of draft-00 or draft-01.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let wire: WireCatalog = serde_json::from_slice(json)?;
        match &wire.version {
            Value::Number(_) | Value::String(_) => {}
            other => return Err(Error::Catalog(format!("MSF version must be a number or a string, got {other}"))),
        }
        let mut list = BTreeMap::new();
        for entry in &wire.init_data_list {
            if entry.kind == "inline" {
                list.insert(entry.id.as_str(), entry.data.as_str());
            }
        }
        let mut tracks = Vec::with_capacity(wire.tracks.len());
        for wt in wire.tracks {
            let mut track = wt.track;
            let inline = match (&wt.init_data, &wt.init_ref) {
                (Some(data), _) => Some(data.as_str()),
                (None, Some(id)) => match list.get(id.as_str()) {
                    Some(data) => Some(*data),
                    None => {
                        return Err(Error::Catalog(format!(
                            "MSF track {:?}: initRef {id:?} names no inline initDataList entry",
                            track.name
                        )))
                    }
                },
                (None, None) => None,
            };
            track.init_data = inline.map(|d| unb64(&track.name, d)).transpose()?;
            tracks.push(track);
        }
        Ok(MsfCatalog { generated_at: wire.generated_at, is_complete: wire.is_complete, tracks, extra: wire.extra })
    }

    /// Serialises the catalog in the shape of `version`.
    pub fn to_json(&self, version: MsfVersion) -> Result<Bytes> {
        let mut root = self.extra.clone();
        root.insert(
            "version".into(),
            match version {
                MsfVersion::Draft00 => Value::from(1),
                MsfVersion::Draft01 => Value::from("draft-01"),
            },
        );
        if let Some(at) = self.generated_at {
            root.insert("generatedAt".into(), at.into());
        }
        if self.is_complete {
            root.insert("isComplete".into(), true.into());
        }
        let mut list: Vec<(String, String)> = Vec::new();
        let mut tracks = Vec::with_capacity(self.tracks.len());
        for track in &self.tracks {
            let mut value = serde_json::to_value(track)?;
            if let (Some(init), Value::Object(obj)) = (&track.init_data, &mut value) {
                let data = b64(init);
                match version {
                    MsfVersion::Draft00 => {
                        obj.insert("initData".into(), data.into());
                    }
                    MsfVersion::Draft01 => {
                        let id = match list.iter().find(|(_, d)| *d == data) {
                            Some((id, _)) => id.clone(),
                            None => {
                                let id = format!("init{}", list.len());
                                list.push((id.clone(), data));
                                id
                            }
                        };
                        obj.insert("initRef".into(), id.into());
                    }
                }
            }
            tracks.push(value);
        }
        root.insert("tracks".into(), Value::Array(tracks));
        if !list.is_empty() {
            let entries = list
                .into_iter()
                .map(|(id, data)| serde_json::json!({ "id": id, "type": "inline", "data": data }))
                .collect();
            root.insert("initDataList".into(), Value::Array(entries));
        }
        Ok(Bytes::from(serde_json::to_vec(&Value::Object(root))?))
    }

    /// The MSF form of a hang catalog: one live track per rendition, render group 1, an
    /// alternate group when a kind has several renditions. Renditions whose container has no
    /// kind are left out.
    pub fn from_hang(catalog: &Catalog) -> Self {
        let mut tracks = Vec::new();
        let multi_video = catalog.video.renditions.len() > 1;
        for (name, v) in &catalog.video.renditions {
            let Some(mut track) = base_track(name, &v.container, v.description.as_ref()) else { continue };
            track.role = Some("video".into());
            track.codec = Some(v.codec.clone());
            track.width = v.coded_width;
            track.height = v.coded_height;
            track.framerate = v.framerate;
            track.bitrate = v.bitrate;
            track.alt_group = multi_video.then_some(1);
            tracks.push(track);
        }
        let multi_audio = catalog.audio.renditions.len() > 1;
        for (name, a) in &catalog.audio.renditions {
            let Some(mut track) = base_track(name, &a.container, a.description.as_ref()) else { continue };
            track.role = Some("audio".into());
            track.codec = Some(a.codec.clone());
            track.samplerate = Some(a.sample_rate);
            track.channel_config = Some(a.number_of_channels.to_string());
            track.bitrate = a.bitrate;
            track.alt_group = multi_audio.then_some(1);
            tracks.push(track);
        }
        MsfCatalog { tracks, ..Default::default() }
    }

    /// The hang form of this catalog. Only `video` and `audio` tracks with a codec and a
    /// packaging of `legacy`, `loc` or `cmaf` (with init data) become renditions; the others
    /// are skipped (logged), so one unusable track does not hide the rest.
    pub fn to_hang(&self) -> Catalog {
        let mut catalog = Catalog::default();
        for track in &self.tracks {
            let Some(codec) = track.codec.clone() else {
                tracing::warn!(track = %track.name, "MSF track without codec skipped");
                continue;
            };
            let (container, description) = match track.packaging.as_str() {
                "cmaf" => match &track.init_data {
                    Some(init) => (Container::Cmaf { init: init.clone() }, None),
                    None => {
                        tracing::warn!(track = %track.name, "MSF cmaf track without initData skipped");
                        continue;
                    }
                },
                "legacy" => (Container::Legacy, track.init_data.clone()),
                "loc" => (Container::Loc, track.init_data.clone()),
                other => {
                    tracing::debug!(track = %track.name, packaging = other, "MSF track packaging not media, skipped");
                    continue;
                }
            };
            match track.role.as_deref() {
                Some("video") => {
                    let mut v = VideoConfig::new(codec);
                    v.container = container;
                    v.description = description;
                    v.coded_width = track.width;
                    v.coded_height = track.height;
                    v.framerate = track.framerate;
                    v.bitrate = track.bitrate;
                    catalog.video.renditions.insert(track.name.clone(), v);
                }
                Some("audio") => {
                    let channels = track
                        .channel_config
                        .as_deref()
                        .and_then(|c| c.split(|ch: char| !ch.is_ascii_digit()).next())
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(2);
                    let mut a = AudioConfig::new(codec, track.samplerate.unwrap_or(48_000), channels);
                    a.container = container;
                    a.description = description;
                    a.bitrate = track.bitrate;
                    catalog.audio.renditions.insert(track.name.clone(), a);
                }
                _ => tracing::debug!(track = %track.name, role = ?track.role, "MSF track role not media, skipped"),
            }
        }
        catalog
    }
}

/// The fields every converted rendition shares; `None` for a container without a kind.
fn base_track(name: &str, container: &Container, description: Option<&Bytes>) -> Option<MsfTrack> {
    let kind = container.kind();
    if kind.is_empty() {
        return None;
    }
    let init_data = match container {
        Container::Cmaf { init } => Some(init.clone()),
        _ => description.cloned(),
    };
    Some(MsfTrack {
        name: name.to_string(),
        packaging: kind.to_string(),
        is_live: true,
        init_data,
        render_group: Some(1),
        ..Default::default()
    })
}
