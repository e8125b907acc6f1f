//! Init segments (`ftyp`+`moov`): reading a track's timing and defaults from one, and building
//! them, both single-track (the `init` of a CMAF rendition) and multi-track (the head of a
//! recorded file).
//!
//! A fragmented init segment has `moov` = `mvhd` + one `trak` per track (with an empty sample
//! table: `stts`, `stsc`, `stsz`, `stco` without entries) + `mvex` holding one `trex` (default
//! sample description, duration, size and flags) per track.

use bytes::Bytes;
use mp4_atom::{
    Codec, Dinf, Dref, DrefEntry, FourCC, Ftyp, Hdlr, Mdhd, Mdia, Minf, Moov, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Tkhd,
    Trak, Trex, Url, Vmhd,
};

use super::cmaf::TrackDefaults;
use crate::error::{Error, Result};
use crate::mp4::{decode_box, encode_into, split_boxes};

/// The handler type of a video track.
pub const VIDEO_HANDLER: FourCC = FourCC::new(b"vide");
/// The handler type of an audio track.
pub const AUDIO_HANDLER: FourCC = FourCC::new(b"soun");

/// One track of an init segment with what reading its fragments needs.
#[derive(Debug, Clone, PartialEq)]
pub struct InitTrack {
    /// The track box.
    pub trak: Trak,
    /// Its `trex` from `mvex`, if present.
    pub trex: Option<Trex>,
}

impl InitTrack {
    /// The track id.
    pub fn track_id(&self) -> u32 {
        self.trak.tkhd.track_id
    }

    /// The media timescale (ticks per second).
    pub fn timescale(&self) -> u32 {
        self.trak.mdia.mdhd.timescale
    }

    /// Whether the handler is `soun`.
    pub fn is_audio(&self) -> bool {
        self.trak.mdia.hdlr.handler == AUDIO_HANDLER
    }

    /// The first sample entry.
    pub fn entry(&self) -> Option<&Codec> {
        self.trak.mdia.minf.stbl.stsd.codecs.first()
    }

    /// `trex` defaults for reading fragments, with decode time starting at `next_dts`.
    pub fn defaults(&self, next_dts: u64) -> TrackDefaults {
        let trex = self.trex.clone().unwrap_or_default();
        TrackDefaults {
            duration: trex.default_sample_duration,
            size: trex.default_sample_size,
            flags: trex.default_sample_flags,
            next_dts,
            audio: self.is_audio(),
        }
    }
}

/// The `ftyp` written in front of every init segment built here.
pub fn default_ftyp() -> Ftyp {
    Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0x200,
        compatible_brands: vec![FourCC::new(b"iso6"), FourCC::new(b"cmfc"), FourCC::new(b"mp41")],
    }
}

/// Reads every track of an init segment (`ftyp` optional, `moov` required).
pub fn parse_init(init: &Bytes) -> Result<(Moov, Vec<InitTrack>)> {
    let mut offset = 0u64;
    for (header, bytes) in split_boxes(init, 0)? {
        if &header.kind == b"moov" {
            let moov: Moov = decode_box(&bytes, offset)?;
            let tracks = tracks_of(&moov);
            return Ok((moov, tracks));
        }
        offset += header.size;
    }
    Err(Error::NoInit)
}

/// The tracks of a `moov` paired with their `trex`.
pub(crate) fn tracks_of(moov: &Moov) -> Vec<InitTrack> {
    moov.trak
        .iter()
        .map(|trak| InitTrack {
            trak: trak.clone(),
            trex: moov.mvex.as_ref().and_then(|m| m.trex.iter().find(|t| t.track_id == trak.tkhd.track_id)).cloned(),
        })
        .collect()
}

/// An init segment holding `tracks` (in order), with `mvhd` taken from `mvhd` (its next track id
/// fixed up). Edit lists are dropped: fragment timing is carried by `tfdt` and offsets.
pub fn build_init(ftyp: &Ftyp, mvhd: &Mvhd, tracks: &[InitTrack]) -> Result<Bytes> {
    let mut mvhd = mvhd.clone();
    mvhd.next_track_id = tracks.iter().map(InitTrack::track_id).max().unwrap_or(0).saturating_add(1);
    let moov = Moov {
        mvhd,
        meta: None,
        mvex: Some(Mvex {
            mehd: None,
            trex: tracks
                .iter()
                .map(|t| {
                    let mut trex = t.trex.clone().unwrap_or_default();
                    trex.track_id = t.track_id();
                    trex.default_sample_description_index = trex.default_sample_description_index.max(1);
                    trex
                })
                .collect(),
        }),
        trak: tracks
            .iter()
            .map(|t| {
                let mut trak = t.trak.clone();
                trak.edts = None;
                trak
            })
            .collect(),
        udta: None,
        ainf: None,
    };
    let mut out = Vec::new();
    encode_into(ftyp, &mut out)?;
    encode_into(&moov, &mut out)?;
    Ok(Bytes::from(out))
}

/// A fresh track for a sample entry: `video` gives the display size for `tkhd`.
pub fn new_track(track_id: u32, timescale: u32, entry: Codec, video: Option<(u16, u16)>) -> InitTrack {
    let (handler, name, vmhd, smhd) = match video {
        Some(_) => (VIDEO_HANDLER, "VideoHandler", Some(Vmhd::default()), None),
        None => (AUDIO_HANDLER, "SoundHandler", None, Some(Smhd::default())),
    };
    let (w, h) = video.unwrap_or((0, 0));
    let trak = Trak {
        tkhd: Tkhd {
            track_id,
            enabled: true,
            in_movie: true,
            volume: if video.is_some() { 0.into() } else { 1.into() },
            width: w.into(),
            height: h.into(),
            ..Default::default()
        },
        edts: None,
        meta: None,
        mdia: Mdia {
            mdhd: Mdhd { timescale, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler, name: name.into() },
            minf: Minf {
                vmhd,
                smhd,
                dinf: Dinf { dref: Dref { entries: vec![DrefEntry::Url(Url::default())] } },
                stbl: Stbl { stsd: Stsd { codecs: vec![entry] }, stco: Some(Stco::default()), ..Default::default() },
                ..Default::default()
            },
        },
        senc: None,
        tref: None,
        udta: None,
    };
    InitTrack { trak, trex: Some(Trex { track_id, default_sample_description_index: 1, ..Default::default() }) }
}
