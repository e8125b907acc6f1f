//! The importer: fragmented MP4 (CMAF) in, a catalog and MoQ frames out.
//!
//! Bytes are pushed in chunks of any size ([`Importer::push`]), for example straight from
//! `ffmpeg -f mp4 -movflags cmaf+frag_keyframe+empty_moov+default_base_moof -`. Whole top-level
//! boxes are framed out of the input; `moov` gives the tracks, each `moof`+`mdat` pair gives one
//! [`ImportEvent::Frame`] per sample, in decode-time order across tracks. Frames carry the
//! payload already packaged in the configured container.
//!
//! The [`ImportEvent::Catalog`] comes out just before the first fragment's frames (or at
//! [`Importer::finish`] if none follows), so that each video rendition's `framerate` can be
//! filled in from the duration of its first sample: the frames could not be sent earlier anyway.
//!
//! Group policy: a video frame starts a group when it is a keyframe (video frames before the
//! first keyframe are dropped); an audio frame starts one according to [`AudioGroups`].
//!
//! Errors are typed and final: after one, the importer refuses further input, while every frame
//! already returned stays valid. A second `moov` that describes the same tracks (a looped file)
//! continues the timeline; a different one publishes a new catalog.

mod buffer;
mod tracks;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use mp4_atom::{Ftyp, Moof, Moov};

use crate::catalog::Catalog;
use crate::container::cmaf::{encode_fragment, parse_moof};
use crate::container::{from_micros, legacy, to_micros, Sample};
use crate::error::{Error, Result};
use crate::mp4::{decode_box, fourcc_name, read_header};
use buffer::ChunkBuf;
use tracks::{same_tracks, setup, ImportTrack};

/// The largest frame timestamp the importer produces: 2^61 - 1 µs. Every timestamp then fits a
/// QUIC varint, and so does the zigzag-coded difference of any two (moq-lite 05+ frame
/// timestamps). A later one is [`Error::TimestampOverflow`].
pub const MAX_TIMESTAMP_US: u64 = (1 << 61) - 1;

/// How each MoQ frame is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerKind {
    /// `varint(timestamp_us)` + codec payload.
    #[default]
    Legacy,
    /// One `moof`+`mdat` per frame; the catalog carries each track's init segment.
    Cmaf,
}

/// When an audio frame starts a new group. Audio frames are all independently decodable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioGroups {
    /// Every audio frame is its own group (what moq-dev's publishers do): lowest latency, a late
    /// or dropped frame never holds up the next, one QUIC stream per frame.
    PerFrame,
    /// A frame starts a new group once the current group spans at least this many microseconds.
    Duration(u64),
}

/// Importer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportConfig {
    /// The container of the published frames.
    pub container: ContainerKind,
    /// The audio group policy.
    pub audio_groups: AudioGroups,
    /// The largest top-level box accepted (an `mdat` holds a whole fragment).
    pub max_box_size: u64,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig { container: ContainerKind::Legacy, audio_groups: AudioGroups::PerFrame, max_box_size: 64 << 20 }
    }
}

/// One sample, ready to be written as one MoQ frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The MoQ track name (a rendition name of the catalog).
    pub track: Arc<str>,
    /// Presentation time in microseconds.
    pub timestamp_us: u64,
    /// Decode duration in microseconds.
    pub duration_us: u64,
    /// A keyframe (every audio frame is one).
    pub keyframe: bool,
    /// Open a new group with this frame.
    pub group_start: bool,
    /// The frame payload in the configured container.
    pub payload: Bytes,
}

/// What the importer produces.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportEvent {
    /// The catalog to publish (first after the init segment, again if the tracks change).
    Catalog(Catalog),
    /// One frame of one track.
    Frame(Frame),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Closed,
}

/// Incremental fragmented-MP4 importer.
#[derive(Debug)]
pub struct Importer {
    config: ImportConfig,
    buf: ChunkBuf,
    /// Stream position of the first buffered byte.
    offset: u64,
    ftyp: Option<Ftyp>,
    tracks: Vec<ImportTrack>,
    ignored: BTreeSet<u32>,
    catalog: Option<Catalog>,
    /// The catalog has not been emitted yet (it waits for the first fragment).
    catalog_pending: bool,
    /// A `moof` waiting for its `mdat`, with its stream position.
    moof: Option<(Moof, u64)>,
    events: VecDeque<ImportEvent>,
    state: State,
    dropped: u64,
}

impl Importer {
    /// An importer with the given settings.
    pub fn new(config: ImportConfig) -> Self {
        Importer {
            config,
            buf: ChunkBuf::default(),
            offset: 0,
            ftyp: None,
            tracks: Vec::new(),
            ignored: BTreeSet::new(),
            catalog: None,
            catalog_pending: false,
            moof: None,
            events: VecDeque::new(),
            state: State::Running,
            dropped: 0,
        }
    }

    /// Feeds input bytes and processes every box they complete. On error the importer is closed;
    /// events queued before the error can still be polled.
    pub fn push(&mut self, data: Bytes) -> Result<()> {
        if self.state != State::Running {
            return Err(Error::Closed);
        }
        self.buf.push(data);
        let result = self.drain();
        if result.is_err() {
            self.close();
        }
        result
    }

    /// Declares the end of the input: an error if it stopped inside a box or before any init
    /// segment. The importer is closed afterwards.
    pub fn finish(&mut self) -> Result<()> {
        if self.state != State::Running {
            return Err(Error::Closed);
        }
        let leftover = self.buf.len();
        let pending_moof = self.moof.as_ref().map(|(_, at)| *at);
        self.close();
        self.emit_catalog();
        if leftover > 0 {
            return Err(Error::Truncated { buffered: leftover });
        }
        if let Some(offset) = pending_moof {
            return Err(Error::MissingMdat { offset });
        }
        if self.catalog.is_none() {
            return Err(Error::NoInit);
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll(&mut self) -> Option<ImportEvent> {
        self.events.pop_front()
    }

    /// The current catalog, once an init segment has been read.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
    }

    /// Bytes of input framed into boxes so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Video frames dropped because they came before the track's first keyframe.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.buf.clear();
        self.moof = None;
    }

    fn drain(&mut self) -> Result<()> {
        loop {
            let mut head = [0u8; 16];
            let n = self.buf.peek(&mut head);
            let Some(header) = read_header(&head[..n], self.offset, self.config.max_box_size)? else {
                return Ok(());
            };
            // Fits usize: it is at most max_box_size, itself bounded by what is buffered below.
            let size = usize::try_from(header.size).unwrap_or(usize::MAX);
            if self.buf.len() < size {
                return Ok(());
            }
            let bytes = self.buf.take(size);
            let at = self.offset;
            self.offset += header.size;
            match &header.kind {
                b"ftyp" => self.ftyp = Some(decode_box(&bytes, at)?),
                b"moov" => self.on_moov(decode_box(&bytes, at)?)?,
                b"moof" => {
                    if self.catalog.is_none() {
                        return Err(Error::BeforeInit { kind: "moof".into(), offset: at });
                    }
                    if let Some((_, prev)) = self.moof.take() {
                        return Err(Error::MissingMdat { offset: prev });
                    }
                    self.moof = Some((decode_box(&bytes, at)?, at));
                }
                b"mdat" => {
                    if self.catalog.is_none() {
                        return Err(Error::BeforeInit { kind: "mdat".into(), offset: at });
                    }
                    match self.moof.take() {
                        Some((moof, moof_at)) => {
                            let payload = bytes.slice(header.header_len..);
                            self.on_fragment(&moof, moof_at, &payload, at + header.header_len as u64)?;
                        }
                        None => tracing::debug!(offset = at, "mdat without a moof ignored"),
                    }
                }
                other => tracing::trace!(kind = %fourcc_name(other), offset = at, "box skipped"),
            }
        }
    }

    fn on_moov(&mut self, moov: Moov) -> Result<()> {
        if let Some((_, at)) = self.moof.take() {
            return Err(Error::MissingMdat { offset: at });
        }
        let setup = setup(&self.config, self.ftyp.as_ref(), &moov)?;
        let mut tracks = setup.tracks;
        if self.catalog.is_some() && same_tracks(&self.tracks, &tracks) {
            // A looped file: continue every track after the furthest end seen so far.
            let end = self.tracks.iter().map(|t| t.end_us).max().unwrap_or(0);
            for (new, old) in tracks.iter_mut().zip(&self.tracks) {
                new.offset_ticks = from_micros(end, new.timescale);
                new.end_us = end;
                new.sequence = old.sequence;
                new.group_start_us = None;
            }
            self.tracks = tracks;
            self.ignored = setup.ignored;
            return Ok(());
        }
        self.tracks = tracks;
        self.ignored = setup.ignored;
        // Emit a catalog still waiting for a fragment before it is replaced.
        self.emit_catalog();
        self.catalog = Some(setup.catalog);
        self.catalog_pending = true;
        Ok(())
    }

    /// Queues the catalog event if it is still pending.
    fn emit_catalog(&mut self) {
        if self.catalog_pending {
            self.catalog_pending = false;
            if let Some(catalog) = &self.catalog {
                self.events.push_back(ImportEvent::Catalog(catalog.clone()));
            }
        }
    }

    /// Fills each video rendition's frame rate from the first sample of the first fragment.
    fn fill_framerates(&mut self, samples: &[(u32, Sample)]) {
        let Some(catalog) = self.catalog.as_mut() else { return };
        for track in self.tracks.iter().filter(|t| !t.audio) {
            let first = samples.iter().find(|(id, _)| *id == track.init.track_id());
            let Some((_, sample)) = first else { continue };
            if sample.duration == 0 {
                continue;
            }
            if let Some(config) = catalog.video.renditions.get_mut(&*track.name) {
                let fps = f64::from(track.timescale) / f64::from(sample.duration);
                // Three decimals: 30000/1001 → 29.97.
                config.framerate = Some((fps * 1000.0).round() / 1000.0);
            }
        }
    }

    fn on_fragment(&mut self, moof: &Moof, moof_at: u64, mdat: &Bytes, mdat_at: u64) -> Result<()> {
        let samples = parse_moof(moof, moof_at, mdat, mdat_at, |id| {
            match self.tracks.iter().find(|t| t.init.track_id() == id) {
                Some(t) => Ok(Some(t.init.defaults(t.next_dts))),
                None if self.ignored.contains(&id) => Ok(None),
                None => Err(Error::UnknownTrackId(id)),
            }
        })?;
        if self.catalog_pending {
            self.fill_framerates(&samples);
            self.emit_catalog();
        }
        // Interleave tracks by decode time so that a paced sender keeps them in step.
        let mut timed: Vec<(u64, usize, Sample)> = Vec::with_capacity(samples.len());
        for (id, sample) in samples {
            let Some(index) = self.tracks.iter().position(|t| t.init.track_id() == id) else { continue };
            let track = &mut self.tracks[index];
            track.next_dts = sample.dts.saturating_add(u64::from(sample.duration));
            let dts = i128::from(sample.dts) + i128::from(track.offset_ticks);
            timed.push((to_micros(dts, track.timescale), index, sample));
        }
        timed.sort_by_key(|(at, _, _)| *at);
        for (_, index, sample) in timed {
            self.emit(index, sample)?;
        }
        Ok(())
    }

    fn emit(&mut self, index: usize, mut sample: Sample) -> Result<()> {
        let container = self.config.container;
        let policy = self.config.audio_groups;
        let track = &mut self.tracks[index];
        if !track.audio && !track.started {
            if !sample.keyframe {
                self.dropped += 1;
                return Ok(());
            }
            track.started = true;
        }
        sample.dts = sample.dts.checked_add(track.offset_ticks).ok_or(Error::TimestampOverflow)?;
        let timestamp_us = to_micros(sample.pts(), track.timescale);
        if timestamp_us > MAX_TIMESTAMP_US {
            return Err(Error::TimestampOverflow);
        }
        let duration_us = to_micros(sample.duration.into(), track.timescale);
        let end = to_micros(i128::from(sample.dts) + i128::from(sample.duration), track.timescale);
        track.end_us = track.end_us.max(end);
        let group_start = if track.audio {
            match policy {
                AudioGroups::PerFrame => true,
                AudioGroups::Duration(span) => match track.group_start_us {
                    Some(start) if timestamp_us.saturating_sub(start) < span && timestamp_us >= start => false,
                    _ => {
                        track.group_start_us = Some(timestamp_us);
                        true
                    }
                },
            }
        } else {
            sample.keyframe
        };
        let payload = match container {
            ContainerKind::Legacy => legacy::encode(timestamp_us, &sample.data),
            ContainerKind::Cmaf => {
                let sequence = track.sequence;
                track.sequence = track.sequence.wrapping_add(1).max(1);
                encode_fragment(track.init.track_id(), sequence, std::slice::from_ref(&sample))?
            }
        };
        self.events.push_back(ImportEvent::Frame(Frame {
            track: track.name.clone(),
            timestamp_us,
            duration_us,
            keyframe: sample.keyframe,
            group_start,
            payload,
        }));
        Ok(())
    }
}
