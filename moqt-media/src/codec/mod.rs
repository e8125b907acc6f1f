//! Codecs: WebCodecs codec strings and decoder descriptions, derived from MP4 sample entries
//! (import) and turned back into sample entries (export).
//!
//! Supported: H.264 (`avc1`/`avc3` + `avcC`), H.265 (`hvc1`/`hev1` + `hvcC`), AV1 (`av01` +
//! `av1C`), VP9 (`vp09` + `vpcC`), Opus (`Opus` + `dOps`) and AAC (`mp4a` + `esds`). The string
//! rules are in `docs/media.md`; [`annexb`] converts start-code H.264/H.265 streams (what
//! browsers publish) to the length-prefixed form MP4 stores, and [`audio`] holds the Opus and
//! AAC records.

pub mod annexb;
pub mod audio;
mod entry;
mod strings;

pub use entry::{sample_entry, SampleEntry};
pub use strings::{aac_string, av1_string, avc_string, hevc_string, parse_av1, parse_vp9, vp9_string};

use bytes::Bytes;
use mp4_atom::Codec;

use crate::catalog::{AudioConfig, VideoConfig};
use crate::error::{Error, Result};

/// A track's decoder config as derived from its MP4 sample entry.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryConfig {
    /// A video track.
    Video(VideoConfig),
    /// An audio track.
    Audio(AudioConfig),
}

/// Encodes a box body (no header) with mp4-atom.
pub(crate) fn body<T: mp4_atom::Atom>(atom: &T) -> Result<Bytes> {
    let mut buf = Vec::new();
    atom.encode_body(&mut buf).map_err(Error::Mp4Encode)?;
    Ok(Bytes::from(buf))
}

/// The WebCodecs decoder config for one sample entry (codec string, description, size / rate).
/// The container is left at its default; the importer sets it.
pub fn config_from_entry(track_id: u32, entry: &Codec) -> Result<EntryConfig> {
    let video = |codec: String, visual: &mp4_atom::Visual, description: Option<Bytes>| {
        let mut config = VideoConfig::new(codec);
        config.description = description;
        if visual.width > 0 && visual.height > 0 {
            config.coded_width = Some(visual.width.into());
            config.coded_height = Some(visual.height.into());
        }
        Ok(EntryConfig::Video(config))
    };
    match entry {
        Codec::Avc1(e) => video(avc_string("avc1", &e.avcc), &e.visual, Some(body(&e.avcc)?)),
        Codec::Avc3(e) => video(avc_string("avc3", &e.avcc), &e.visual, Some(body(&e.avcc)?)),
        Codec::Hvc1(e) => video(hevc_string("hvc1", &e.hvcc), &e.visual, Some(body(&e.hvcc)?)),
        Codec::Hev1(e) => video(hevc_string("hev1", &e.hvcc), &e.visual, Some(body(&e.hvcc)?)),
        // AV1 and VP9 decoders need no description: the sequence header is in-band.
        Codec::Av01(e) => video(av1_string(&e.av1c, e.colr.as_ref()), &e.visual, None),
        Codec::Vp09(e) => video(vp9_string(&e.vpcc), &e.visual, None),
        Codec::Opus(e) => {
            let channels = u32::from(e.dops.output_channel_count);
            if channels == 0 {
                return Err(Error::InvalidCodecConfig(format!("track {track_id}: Opus with 0 channels")));
            }
            // Opus always decodes at 48 kHz, whatever rate the source had.
            let mut config = AudioConfig::new("opus", 48_000, channels);
            config.description = Some(audio::opus_head(&e.dops));
            Ok(EntryConfig::Audio(config))
        }
        Codec::Mp4a(e) => {
            let dec = &e.esds.es_desc.dec_config;
            let asc = dec.dec_specific.as_ref().map(|d| d.raw.clone()).unwrap_or_default();
            let info = audio::AacConfig::parse(&asc).ok_or_else(|| {
                Error::InvalidCodecConfig(format!("track {track_id}: AAC without AudioSpecificConfig"))
            })?;
            let codec = aac_string(dec.object_type_indication, info.object_type).ok_or_else(|| {
                Error::UnsupportedCodec { track_id, codec: format!("mp4a.{:02x}", dec.object_type_indication) }
            })?;
            let entry_rate = u32::from(e.audio.sample_rate.integer());
            let rate = info.sample_rate.or((entry_rate > 0).then_some(entry_rate)).unwrap_or(0);
            let channels = match info.channels {
                Some(c) => c,
                None => u32::from(e.audio.channel_count),
            };
            if rate == 0 || channels == 0 {
                return Err(Error::InvalidCodecConfig(format!("track {track_id}: AAC without rate or channels")));
            }
            let mut config = AudioConfig::new(codec, rate, channels);
            config.description = Some(Bytes::from(asc));
            if dec.avg_bitrate > 0 {
                config.bitrate = Some(dec.avg_bitrate.into());
            }
            Ok(EntryConfig::Audio(config))
        }
        other => Err(Error::UnsupportedCodec { track_id, codec: entry_name(other) }),
    }
}

/// The four-character code of a sample entry, for messages.
fn entry_name(entry: &Codec) -> String {
    match entry {
        Codec::Unknown(kind, _) => kind.to_string(),
        Codec::Mp3(_) => "mp3".into(),
        Codec::Flac(_) => "fLaC".into(),
        Codec::Vp08(_) => "vp08".into(),
        Codec::Ac3(_) => "ac-3".into(),
        Codec::Eac3(_) => "ec-3".into(),
        other => {
            let debug = format!("{other:?}");
            debug.split('(').next().unwrap_or("unknown").to_string()
        }
    }
}

/// Whether `kind` is the four-character code of a sample entry this crate supports.
pub fn is_supported_fourcc(kind: &[u8; 4]) -> bool {
    matches!(kind, b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"av01" | b"vp09" | b"Opus" | b"mp4a")
}

#[cfg(test)]
mod tests;
