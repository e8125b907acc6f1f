//! From an init segment to published tracks: which MP4 tracks become MoQ tracks, their names,
//! decoder configs and (for CMAF) single-track init segments, and the catalog that lists them.

use std::collections::BTreeSet;
use std::sync::Arc;

use mp4_atom::{Ftyp, Moov};

use super::{ContainerKind, ImportConfig};
use crate::catalog::{Catalog, Container};
use crate::codec::{config_from_entry, EntryConfig};
use crate::container::init::{build_init, default_ftyp, tracks_of, InitTrack, AUDIO_HANDLER, VIDEO_HANDLER};
use crate::error::{Error, Result};

/// One MP4 track being published as one MoQ track.
#[derive(Debug)]
pub(crate) struct ImportTrack {
    /// MoQ track name (`video0`, `audio0`, …).
    pub name: Arc<str>,
    /// The MP4 track id and defaults.
    pub init: InitTrack,
    /// Media timescale.
    pub timescale: u32,
    /// Audio: every sample is a keyframe; groups follow the audio policy.
    pub audio: bool,
    /// Decode time after the last sample read (for a `traf` without `tfdt`).
    pub next_dts: u64,
    /// End of the last sample in output microseconds (loop offset included).
    pub end_us: u64,
    /// Added to every decode time (a repeated init segment continues the timeline).
    pub offset_ticks: u64,
    /// A keyframe has been seen (video frames before the first one are dropped).
    pub started: bool,
    /// Start of the current audio group in microseconds.
    pub group_start_us: Option<u64>,
    /// Next CMAF `mfhd` sequence number.
    pub sequence: u32,
}

/// The tracks of one init segment and the catalog describing them.
pub(crate) struct Setup {
    pub tracks: Vec<ImportTrack>,
    /// Track ids present in the `moov` but not published (unsupported handler or codec).
    pub ignored: BTreeSet<u32>,
    pub catalog: Catalog,
}

/// Builds the published tracks and the catalog from a `moov`.
pub(crate) fn setup(config: &ImportConfig, ftyp: Option<&Ftyp>, moov: &Moov) -> Result<Setup> {
    let mut tracks = Vec::new();
    let mut ignored = BTreeSet::new();
    let mut catalog = Catalog::default();
    let mut first_error = None;
    let (mut videos, mut audios) = (0usize, 0usize);
    let ftyp = ftyp.cloned().unwrap_or_else(default_ftyp);
    for init in tracks_of(moov) {
        let track_id = init.track_id();
        let handler = init.trak.mdia.hdlr.handler;
        if handler != VIDEO_HANDLER && handler != AUDIO_HANDLER {
            tracing::debug!(track_id, handler = %handler, "track is neither audio nor video; not published");
            ignored.insert(track_id);
            continue;
        }
        let timescale = init.timescale();
        let derived = match init.entry() {
            None => Err(Error::UnsupportedCodec { track_id, codec: "(no sample entry)".into() }),
            Some(_) if timescale == 0 => Err(Error::InvalidCodecConfig(format!("track {track_id}: timescale 0"))),
            Some(entry) => config_from_entry(track_id, entry),
        };
        let mut derived = match derived {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(track_id, error = %e, "track not published");
                ignored.insert(track_id);
                first_error.get_or_insert(e);
                continue;
            }
        };
        let container = match config.container {
            ContainerKind::Legacy => Container::Legacy,
            ContainerKind::Cmaf => {
                Container::Cmaf { init: build_init(&ftyp, &moov.mvhd, std::slice::from_ref(&init))? }
            }
        };
        let (name, audio) = match &mut derived {
            EntryConfig::Video(v) => {
                v.container = container;
                let name = format!("video{videos}");
                videos += 1;
                catalog.video.renditions.insert(name.clone(), v.clone());
                (name, false)
            }
            EntryConfig::Audio(a) => {
                a.container = container;
                let name = format!("audio{audios}");
                audios += 1;
                catalog.audio.renditions.insert(name.clone(), a.clone());
                (name, true)
            }
        };
        tracks.push(ImportTrack {
            name: name.into(),
            init,
            timescale,
            audio,
            next_dts: 0,
            end_us: 0,
            offset_ticks: 0,
            started: false,
            group_start_us: None,
            sequence: 1,
        });
    }
    if tracks.is_empty() {
        return Err(first_error.unwrap_or(Error::NoTracks));
    }
    Ok(Setup { tracks, ignored, catalog })
}

/// Whether two catalogs describe the same tracks with the same decoding parameters (a repeated
/// init segment, as when a file is looped). CMAF init segments are compared by their sample
/// entries, not their bytes.
pub(crate) fn same_tracks(old: &[ImportTrack], new: &[ImportTrack]) -> bool {
    old.len() == new.len()
        && old.iter().zip(new).all(|(a, b)| {
            a.name == b.name
                && a.init.track_id() == b.init.track_id()
                && a.timescale == b.timescale
                && a.init.entry() == b.init.entry()
        })
}
