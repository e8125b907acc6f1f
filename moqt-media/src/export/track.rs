//! One recorded track: its sample entry (possibly waiting for a first keyframe), the samples of
//! the fragment being gathered, and the decode timeline.
//!
//! Legacy frames carry only a presentation time. With B-frames those arrive out of order, so a
//! fragment is gathered up to the next keyframe (a group) and its decode times are the sorted
//! presentation times of the group (kept strictly increasing and after the previous
//! fragment); each sample's composition offset is then its presentation time minus that. The
//! last sample lasts until the next fragment's first decode time. CMAF frames bring their own
//! decode times, durations and offsets, which are kept.

use bytes::Bytes;

use crate::catalog::{AudioConfig, Rendition, VideoConfig};
use crate::codec::annexb::to_length_prefixed;
use crate::codec::{sample_entry, SampleEntry};
use crate::container::cmaf::TrackDefaults;
use crate::container::init::{new_track, InitTrack};
use crate::container::Sample;
use crate::error::Result;

/// The timescale of tracks recorded from legacy frames (their timestamps are microseconds).
pub(crate) const LEGACY_TIMESCALE: u32 = 1_000_000;

/// Owned copy of a rendition config.
#[derive(Debug, Clone)]
pub(crate) enum Config {
    Video(VideoConfig),
    Audio(AudioConfig),
}

impl Config {
    pub fn rendition(&self) -> Rendition<'_> {
        match self {
            Config::Video(v) => Rendition::Video(v),
            Config::Audio(a) => Rendition::Audio(a),
        }
    }
}

/// Where a track's frames come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Legacy frames: microsecond timestamps, payloads to wrap.
    Legacy,
    /// CMAF frames of the init segment's track `track_id`.
    Cmaf { track_id: u32, defaults: TrackDefaults },
}

/// A sample waiting in the current fragment.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Presentation time in the track timescale.
    pub pts: i128,
    pub keyframe: bool,
    pub data: Bytes,
    /// Decode time, offset and duration when the source had them (CMAF).
    pub timed: Option<(u64, i32, u32)>,
}

/// One track of the recording.
#[derive(Debug)]
pub(crate) struct RecTrack {
    pub name: String,
    /// Output track id (1-based, in recording order).
    pub track_id: u32,
    pub config: Config,
    pub source: Source,
    pub timescale: u32,
    /// The track box, once the sample entry is known.
    pub init: Option<InitTrack>,
    /// Payloads are Annex B and get rewritten.
    pub annexb: bool,
    pub audio: bool,
    /// A keyframe has been recorded.
    pub started: bool,
    /// Gave up waiting for a sample entry; frames are ignored.
    pub abandoned: bool,
    pub buffer: Vec<Pending>,
    /// Decode time where the next fragment starts.
    pub next_dts: Option<u64>,
    /// Duration of the last sample written, the fallback for a final sample.
    pub last_duration: u32,
}

impl RecTrack {
    pub fn new(name: String, track_id: u32, config: Config, source: Source, timescale: u32) -> Self {
        let audio = matches!(config, Config::Audio(_));
        let fallback_us: u64 = match &config {
            Config::Video(v) => v.framerate.filter(|f| *f >= 1.0).map_or(33_333, |f| (1e6 / f) as u64),
            Config::Audio(a) if a.codec.starts_with("mp4a") && a.sample_rate > 0 => {
                1024 * 1_000_000 / u64::from(a.sample_rate)
            }
            Config::Audio(_) => 20_000,
        };
        let last_duration =
            u32::try_from(crate::container::from_micros(fallback_us, timescale)).unwrap_or(u32::MAX).max(1);
        RecTrack {
            name,
            track_id,
            config,
            source,
            timescale,
            init: None,
            annexb: false,
            audio,
            started: false,
            abandoned: false,
            buffer: Vec::new(),
            next_dts: None,
            last_duration,
        }
    }

    /// Sets up the sample entry of a legacy track from its config, using `keyframe` when the
    /// parameter sets are in-band. Returns whether the track is configured.
    pub fn configure(&mut self, keyframe: Option<&[u8]>) -> Result<bool> {
        if self.init.is_some() {
            return Ok(true);
        }
        let Some(SampleEntry { codec, annexb }) = sample_entry(self.config.rendition(), keyframe)? else {
            return Ok(false);
        };
        let video = match &self.config {
            Config::Video(v) => {
                let dim = |x: Option<u32>| x.map_or(0, |x| u16::try_from(x).unwrap_or(u16::MAX));
                Some((dim(v.coded_width), dim(v.coded_height)))
            }
            Config::Audio(_) => None,
        };
        self.annexb = annexb;
        self.init = Some(new_track(self.track_id, self.timescale, codec, video));
        Ok(true)
    }

    /// Rewrites a payload to the form MP4 stores.
    pub fn payload(&self, data: Bytes) -> Bytes {
        if self.annexb && crate::codec::annexb::is_annexb(&data) {
            to_length_prefixed(&data)
        } else {
            data
        }
    }

    /// Presentation span of the gathered samples, in ticks.
    pub fn span(&self) -> i128 {
        let min = self.buffer.iter().map(|p| p.pts).min().unwrap_or(0);
        let max = self.buffer.iter().map(|p| p.pts).max().unwrap_or(0);
        max - min
    }

    /// Times the gathered samples and empties the buffer. `next` is the presentation time of
    /// the sample that follows, which ends the last one.
    pub fn take_fragment(&mut self, next: Option<i128>) -> Vec<Sample> {
        let pending = std::mem::take(&mut self.buffer);
        if pending.is_empty() {
            return Vec::new();
        }
        let samples: Vec<Sample> = if pending.iter().all(|p| p.timed.is_some()) {
            pending
                .into_iter()
                .filter_map(|p| {
                    let (dts, cts, duration) = p.timed?;
                    Some(Sample { dts, cts, duration, keyframe: p.keyframe, data: p.data })
                })
                .collect()
        } else {
            self.time_legacy(pending, next)
        };
        if let Some(last) = samples.last() {
            self.next_dts = Some(last.dts.saturating_add(u64::from(last.duration)));
            if last.duration > 0 {
                self.last_duration = last.duration;
            }
        }
        samples
    }

    fn time_legacy(&self, pending: Vec<Pending>, next: Option<i128>) -> Vec<Sample> {
        let mut sorted: Vec<i128> = pending.iter().map(|p| p.pts.max(0)).collect();
        sorted.sort_unstable();
        let mut dts = Vec::with_capacity(sorted.len());
        let mut prev: Option<i128> = self.next_dts.map(|d| i128::from(d) - 1);
        for s in &sorted {
            let d = match prev {
                Some(p) => (*s).max(p + 1),
                None => *s,
            };
            dts.push(d);
            prev = Some(d);
        }
        let n = pending.len();
        let mut out = Vec::with_capacity(n);
        for (i, p) in pending.into_iter().enumerate() {
            let d = dts[i];
            let duration = match dts.get(i + 1) {
                Some(following) => following - d,
                None => match next {
                    Some(next) if next > d => next - d,
                    _ => i128::from(self.last_duration),
                },
            };
            let duration = u32::try_from(duration.max(1)).unwrap_or(u32::MAX);
            let cts = (p.pts - d).clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
            let dts = u64::try_from(d).unwrap_or(u64::MAX);
            out.push(Sample { dts, cts, duration, keyframe: p.keyframe, data: p.data });
        }
        out
    }
}
