//! Catalogs: the JSON document a broadcast publishes so that a player knows which tracks exist
//! and how to decode them.
//!
//! This module owns the hang catalog (moq-dev's format, read by `@moq/watch` from the track
//! `catalog.json`): [`Catalog`] with its [`VideoConfig`] / [`AudioConfig`] renditions (WebCodecs
//! decoder configs) and each rendition's [`Container`]. The MSF catalog (the IETF MoQ Streaming
//! Format, track `catalog`) is in [`msf`], with conversions both ways.
//!
//! Unknown fields are kept (in `extra` maps) so a catalog read and written again loses nothing.

mod container;
pub mod msf;
mod serde_util;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use container::Container;

use crate::error::Result;

/// Name of the track that carries the hang catalog as plain JSON.
pub const HANG_TRACK: &str = "catalog.json";
/// Name of the track that carries the hang catalog DEFLATE-compressed (not produced here).
pub const HANG_TRACK_COMPRESSED: &str = "catalog.json.z";
/// Name of the track that carries the MSF catalog.
pub const MSF_TRACK: &str = "catalog";

/// The hang catalog: video and audio renditions keyed by track name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// Video renditions and shared video properties.
    #[serde(default, skip_serializing_if = "Video::is_empty")]
    pub video: Video,
    /// Audio renditions.
    #[serde(default, skip_serializing_if = "Audio::is_empty")]
    pub audio: Audio,
    /// Root sections this crate does not interpret, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `video` section: renditions plus display properties.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Video {
    /// Track name → decoder config.
    #[serde(default)]
    pub renditions: BTreeMap<String, VideoConfig>,
    /// Other members (`display`, `rotation`, `flip`, …), kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `audio` section: renditions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Audio {
    /// Track name → decoder config.
    #[serde(default)]
    pub renditions: BTreeMap<String, AudioConfig>,
    /// Other members, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Video {
    /// Whether the section has nothing to say (then it is left out of the JSON).
    pub fn is_empty(&self) -> bool {
        self.renditions.is_empty() && self.extra.is_empty()
    }
}

impl Audio {
    /// Whether the section has nothing to say (then it is left out of the JSON).
    pub fn is_empty(&self) -> bool {
        self.renditions.is_empty() && self.extra.is_empty()
    }
}

/// One video rendition: a WebCodecs `VideoDecoderConfig` plus its container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoConfig {
    /// WebCodecs codec string (`avc1.64001f`, `hvc1.1.6.L93.B0`, `av01.0.04M.08`, `vp09.00.10.08`).
    pub codec: String,
    /// Decoder description (avcC / hvcC record), hex in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_util::hex_opt")]
    pub description: Option<Bytes>,
    /// Coded width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coded_width: Option<u32>,
    /// Coded height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coded_height: Option<u32>,
    /// Display aspect width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_aspect_width: Option<u32>,
    /// Display aspect height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_aspect_height: Option<u32>,
    /// Frames per second.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_util::number_opt")]
    pub framerate: Option<f64>,
    /// Bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// WebCodecs `optimizeForLatency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize_for_latency: Option<bool>,
    /// How each MoQ frame of the track is packaged (default `legacy`).
    #[serde(default)]
    pub container: Container,
    /// Largest delay in milliseconds between frames leaving the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
    /// Members this crate does not interpret (`broadcast`, `label`, `timeline`, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One audio rendition: a WebCodecs `AudioDecoderConfig` plus its container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioConfig {
    /// WebCodecs codec string (`opus`, `mp4a.40.2`).
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub number_of_channels: u32,
    /// Bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// Decoder description (AudioSpecificConfig for AAC, OpusHead for Opus), hex in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_util::hex_opt")]
    pub description: Option<Bytes>,
    /// How each MoQ frame of the track is packaged (default `legacy`).
    #[serde(default)]
    pub container: Container,
    /// Largest delay in milliseconds between frames leaving the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
    /// Members this crate does not interpret, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl VideoConfig {
    /// A config with only the codec string set and the legacy container.
    pub fn new(codec: impl Into<String>) -> Self {
        VideoConfig {
            codec: codec.into(),
            description: None,
            coded_width: None,
            coded_height: None,
            display_aspect_width: None,
            display_aspect_height: None,
            framerate: None,
            bitrate: None,
            optimize_for_latency: None,
            container: Container::Legacy,
            jitter: None,
            extra: Default::default(),
        }
    }
}

impl AudioConfig {
    /// A config with codec, sample rate and channel count set and the legacy container.
    pub fn new(codec: impl Into<String>, sample_rate: u32, number_of_channels: u32) -> Self {
        AudioConfig {
            codec: codec.into(),
            sample_rate,
            number_of_channels,
            bitrate: None,
            description: None,
            container: Container::Legacy,
            jitter: None,
            extra: Default::default(),
        }
    }
}

/// A rendition of either kind, borrowed from a catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rendition<'a> {
    /// A video rendition.
    Video(&'a VideoConfig),
    /// An audio rendition.
    Audio(&'a AudioConfig),
}

impl Rendition<'_> {
    /// The rendition's container.
    pub fn container(&self) -> &Container {
        match self {
            Rendition::Video(v) => &v.container,
            Rendition::Audio(a) => &a.container,
        }
    }

    /// The rendition's codec string.
    pub fn codec(&self) -> &str {
        match self {
            Rendition::Video(v) => &v.codec,
            Rendition::Audio(a) => &a.codec,
        }
    }
}

impl Catalog {
    /// Parses catalog JSON (one `catalog.json` snapshot frame).
    pub fn from_json(json: &[u8]) -> Result<Self> {
        Ok(serde_json::from_slice(json)?)
    }

    /// Serialises the catalog as compact JSON, the payload of a `catalog.json` frame.
    pub fn to_json(&self) -> Result<Bytes> {
        Ok(Bytes::from(serde_json::to_vec(self)?))
    }

    /// The rendition published on `track`, if any.
    pub fn rendition(&self, track: &str) -> Option<Rendition<'_>> {
        if let Some(v) = self.video.renditions.get(track) {
            return Some(Rendition::Video(v));
        }
        self.audio.renditions.get(track).map(Rendition::Audio)
    }

    /// Every track name with its rendition: video first, then audio, each in name order.
    pub fn renditions(&self) -> impl Iterator<Item = (&str, Rendition<'_>)> {
        let video = self.video.renditions.iter().map(|(k, v)| (k.as_str(), Rendition::Video(v)));
        let audio = self.audio.renditions.iter().map(|(k, a)| (k.as_str(), Rendition::Audio(a)));
        video.chain(audio)
    }
}

#[cfg(test)]
mod tests;
