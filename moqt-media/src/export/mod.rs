//! The recorder: a catalog plus the frames of its tracks in, a playable fragmented MP4 out.
//!
//! Output is written incrementally, so it can go to a pipe (`| ffplay -`): first the init segment
//! (`ftyp` + `moov` with one `trak` per recorded track, ids 1…n in catalog order, and `mvex`),
//! then one `moof`+`mdat` per track fragment. A video fragment is one group (keyframe to
//! keyframe); audio fragments gather at least [`RecorderConfig::audio_fragment_us`].
//!
//! The init segment waits until every recorded track has its sample entry. Legacy tracks
//! without a description (H.264/H.265 in Annex B, as browsers publish) get theirs from the
//! parameter sets of their first keyframe. If that takes more than
//! [`RecorderConfig::max_pending_bytes`] of other tracks' fragments, the tracks still waiting
//! are left out of the file.
//!
//! A refused frame (bad bytes, unknown track) is an error for that frame only; the recording
//! stays consistent and continues.

mod track;

use std::collections::VecDeque;

use bytes::Bytes;
use mp4_atom::Mvhd;

use crate::catalog::{Catalog, Container, Rendition};
use crate::container::cmaf::{decode_fragment, encode_fragment};
use crate::container::init::{build_init, default_ftyp, parse_init};
use crate::container::{from_micros, legacy};
use crate::error::{Error, Result};
use track::{Config, Pending, RecTrack, Source, LEGACY_TIMESCALE};

/// Recorder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Audio fragments span at least this long (µs) before a new one starts.
    pub audio_fragment_us: u64,
    /// Most samples one fragment gathers before it is written anyway.
    pub max_fragment_samples: usize,
    /// Fragment bytes held back while waiting for the init segment before giving up on the
    /// tracks that still have no sample entry.
    pub max_pending_bytes: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig { audio_fragment_us: 200_000, max_fragment_samples: 1024, max_pending_bytes: 8 << 20 }
    }
}

/// Writes a fragmented MP4 from a catalog and the frames of its tracks.
#[derive(Debug)]
pub struct Recorder {
    config: RecorderConfig,
    tracks: Vec<RecTrack>,
    out: VecDeque<Bytes>,
    /// Fragments written before the init segment could be.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    init_written: bool,
    sequence: u32,
    finished: bool,
}

impl Recorder {
    /// Records every rendition of `catalog` this crate can write; the others are skipped (and
    /// logged). Fails if none is left.
    pub fn new(catalog: &Catalog) -> Result<Self> {
        Self::build(catalog, None, RecorderConfig::default())
    }

    /// Records the named renditions, in that order. Fails on a name the catalog lacks or a
    /// rendition that cannot be recorded.
    pub fn select(catalog: &Catalog, tracks: &[&str], config: RecorderConfig) -> Result<Self> {
        Self::build(catalog, Some(tracks), config)
    }

    fn build(catalog: &Catalog, names: Option<&[&str]>, config: RecorderConfig) -> Result<Self> {
        let chosen: Vec<(&str, Rendition<'_>)> = match names {
            Some(names) => names
                .iter()
                .map(|n| catalog.rendition(n).map(|r| (*n, r)).ok_or_else(|| Error::UnknownTrack(n.to_string())))
                .collect::<Result<_>>()?,
            None => catalog.renditions().collect(),
        };
        let mut tracks = Vec::new();
        let mut first_error = None;
        for (name, rendition) in chosen {
            let track_id = tracks.len() as u32 + 1;
            match new_track(name, track_id, rendition) {
                Ok(track) => tracks.push(track),
                Err(e) if names.is_none() => {
                    tracing::warn!(track = name, error = %e, "rendition not recorded");
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if tracks.is_empty() {
            return Err(first_error.unwrap_or_else(|| Error::Catalog("no renditions to record".into())));
        }
        let mut recorder = Recorder {
            config,
            tracks,
            out: VecDeque::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            init_written: false,
            sequence: 1,
            finished: false,
        };
        recorder.maybe_write_init(false)?;
        Ok(recorder)
    }

    /// The recorded track names, in file order (track id 1 first).
    pub fn tracks(&self) -> impl Iterator<Item = &str> {
        self.tracks.iter().map(|t| t.name.as_str())
    }

    /// Records one MoQ frame of `track` as received (packaged in the rendition's container).
    /// `group_start` is true for the first frame of a group, which is a keyframe.
    pub fn frame(&mut self, track: &str, group_start: bool, payload: Bytes) -> Result<()> {
        let index = self.index(track)?;
        match self.tracks[index].source.clone() {
            Source::Legacy => {
                let (timestamp_us, data) = legacy::decode(&payload)?;
                if data.is_empty() {
                    return Ok(()); // a marker, not a sample
                }
                self.sample(track, timestamp_us, group_start, data)
            }
            Source::Cmaf { track_id, mut defaults } => {
                let t = &self.tracks[index];
                defaults.next_dts = t.next_dts.unwrap_or(0);
                let samples = decode_fragment(&payload, track_id, defaults)?;
                for (i, s) in samples.into_iter().enumerate() {
                    let keyframe = s.keyframe || (group_start && i == 0);
                    let pending =
                        Pending { pts: s.pts(), keyframe, data: s.data, timed: Some((s.dts, s.cts, s.duration)) };
                    self.push(index, pending)?;
                }
                Ok(())
            }
        }
    }

    /// Records one codec payload of a legacy-container `track` with its presentation time.
    pub fn sample(&mut self, track: &str, timestamp_us: u64, keyframe: bool, data: Bytes) -> Result<()> {
        let index = self.index(track)?;
        let t = &mut self.tracks[index];
        if !matches!(t.source, Source::Legacy) {
            return Err(Error::Catalog(format!("track {track:?} is not a legacy-container track")));
        }
        let keyframe = keyframe || t.audio;
        if t.init.is_none() {
            if !keyframe || t.abandoned {
                return Ok(());
            }
            if !t.configure(Some(&data))? {
                return Ok(());
            }
            self.maybe_write_init(false)?;
        }
        let t = &self.tracks[index];
        let pending = Pending {
            pts: i128::from(from_micros(timestamp_us, t.timescale)),
            keyframe,
            data: t.payload(data),
            timed: None,
        };
        self.push(index, pending)
    }

    /// Ends the recording: writes every gathered fragment (and the init segment, if it was
    /// still waiting). Frames after this are refused.
    pub fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Err(Error::Closed);
        }
        self.finished = true;
        for index in 0..self.tracks.len() {
            self.flush(index, None)?;
        }
        self.maybe_write_init(true)
    }

    /// The next piece of output, in file order.
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    fn index(&self, track: &str) -> Result<usize> {
        if self.finished {
            return Err(Error::Closed);
        }
        self.tracks.iter().position(|t| t.name == track).ok_or_else(|| Error::UnknownTrack(track.to_string()))
    }

    fn push(&mut self, index: usize, pending: Pending) -> Result<()> {
        let audio_span = i128::from(from_micros(self.config.audio_fragment_us, self.tracks[index].timescale));
        let t = &mut self.tracks[index];
        if t.abandoned {
            return Ok(());
        }
        if !t.audio && !t.started {
            if !pending.keyframe {
                return Ok(());
            }
            t.started = true;
        }
        let cut = !t.buffer.is_empty()
            && (t.buffer.len() >= self.config.max_fragment_samples
                || if t.audio { t.span() >= audio_span } else { pending.keyframe });
        if cut {
            self.flush(index, Some(pending.pts))?;
        }
        self.tracks[index].buffer.push(pending);
        Ok(())
    }

    fn flush(&mut self, index: usize, next: Option<i128>) -> Result<()> {
        let samples = self.tracks[index].take_fragment(next);
        if samples.is_empty() {
            return Ok(());
        }
        let fragment = encode_fragment(self.tracks[index].track_id, self.sequence, &samples)?;
        self.sequence = self.sequence.wrapping_add(1).max(1);
        if self.init_written {
            self.out.push_back(fragment);
            return Ok(());
        }
        self.pending_bytes += fragment.len();
        self.pending.push_back(fragment);
        let force = self.pending_bytes > self.config.max_pending_bytes;
        self.maybe_write_init(force)
    }

    /// Writes the init segment once every track has its entry, or (`force`) with the tracks
    /// that have one, abandoning the rest.
    fn maybe_write_init(&mut self, force: bool) -> Result<()> {
        if self.init_written {
            return Ok(());
        }
        let ready = self.tracks.iter().all(|t| t.init.is_some() || t.abandoned);
        if !ready && !force {
            return Ok(());
        }
        for t in self.tracks.iter_mut().filter(|t| t.init.is_none() && !t.abandoned) {
            tracing::warn!(track = %t.name, "no sample entry yet; track left out of the recording");
            t.abandoned = true;
        }
        let inits: Vec<_> = self.tracks.iter().filter_map(|t| t.init.clone()).collect();
        if inits.is_empty() {
            return Err(Error::Catalog("no recorded track ever got a sample entry".into()));
        }
        let init = build_init(&default_ftyp(), &Mvhd::default(), &inits)?;
        self.out.push_back(init);
        self.out.extend(self.pending.drain(..));
        self.pending_bytes = 0;
        self.init_written = true;
        Ok(())
    }
}

/// A recorded track for one rendition, configured at once unless it needs a first keyframe.
fn new_track(name: &str, track_id: u32, rendition: Rendition<'_>) -> Result<RecTrack> {
    let config = match rendition {
        Rendition::Video(v) => Config::Video(v.clone()),
        Rendition::Audio(a) => Config::Audio(a.clone()),
    };
    match rendition.container() {
        Container::Legacy => {
            let mut track = RecTrack::new(name.to_string(), track_id, config, Source::Legacy, LEGACY_TIMESCALE);
            track.configure(None)?;
            Ok(track)
        }
        Container::Cmaf { init } => {
            let (_, inits) = parse_init(init)?;
            let mut source = inits.into_iter().next().ok_or(Error::NoTracks)?;
            let timescale = source.timescale();
            if timescale == 0 || source.entry().is_none() {
                return Err(Error::InvalidCodecConfig(format!("track {name:?}: unusable CMAF init segment")));
            }
            let src_id = source.track_id();
            let defaults = source.defaults(0);
            source.trak.tkhd.track_id = track_id;
            if let Some(trex) = &mut source.trex {
                trex.track_id = track_id;
            }
            let mut track = RecTrack::new(
                name.to_string(),
                track_id,
                config,
                Source::Cmaf { track_id: src_id, defaults },
                timescale,
            );
            track.init = Some(source);
            Ok(track)
        }
        other => Err(Error::Catalog(format!("track {name:?}: container {:?} cannot be recorded", other.kind()))),
    }
}
