//! The CMAF container: each MoQ frame is one `moof`+`mdat` fragment of a single track.
//!
//! Writing ([`encode_fragment`]): `moof` = `mfhd` (sequence number) + one `traf` = `tfhd`
//! (track id, default-base-is-moof) + `tfdt` (decode time of the first sample) + `trun` (data
//! offset = size of the `moof` + 8, then per sample: duration, size, flags, and composition
//! offset when any is nonzero, version 1 so offsets may be negative), then `mdat` with the
//! samples back to back.
//!
//! Reading ([`decode_fragment`], and the importer through the same code): sample fields come from the `trun`, else
//! the `tfhd` defaults, else the `trex` defaults of the init segment. Data offsets are relative
//! to the `tfhd` base data offset, else the `moof` (default-base-is-moof, or the first `traf`),
//! else the end of the previous `traf`'s data. A sample is a keyframe when its
//! `sample_is_non_sync_sample` flag (0x10000) is clear; audio samples always are.

use bytes::Bytes;
use mp4_atom::{Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry};

use super::{Sample, NON_SYNC_BIT, NON_SYNC_FLAGS, SYNC_FLAGS};
use crate::error::{Error, Result};
use crate::mp4::{decode_box, encode_into, split_boxes};

/// The most samples one fragment may declare before it is refused (also never more than the
/// bytes of its `mdat`: samples are not empty).
pub const MAX_SAMPLES_PER_FRAGMENT: usize = 1 << 20;

/// What a track contributes to reading its fragments: `trex` defaults and whether it is audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackDefaults {
    /// `trex` default sample duration.
    pub duration: u32,
    /// `trex` default sample size.
    pub size: u32,
    /// `trex` default sample flags.
    pub flags: u32,
    /// Decode time to use when a `traf` has no `tfdt`.
    pub next_dts: u64,
    /// Audio: every sample is a keyframe whatever its flags say.
    pub audio: bool,
}

/// Encodes samples of one track (in decode order, contiguous decode times) as `moof`+`mdat`.
pub fn encode_fragment(track_id: u32, sequence: u32, samples: &[Sample]) -> Result<Bytes> {
    let first = samples.first().ok_or_else(|| Error::CmafFrame("no samples to encode".into()))?;
    let any_cts = samples.iter().any(|s| s.cts != 0);
    let mut data_len = 0usize;
    let mut entries = Vec::with_capacity(samples.len());
    for s in samples {
        let size = u32::try_from(s.data.len()).map_err(|_| Error::CmafFrame("sample over 4 GiB".into()))?;
        data_len += s.data.len();
        entries.push(TrunEntry {
            duration: Some(s.duration),
            size: Some(size),
            flags: Some(if s.keyframe { SYNC_FLAGS } else { NON_SYNC_FLAGS }),
            cts: any_cts.then_some(i64::from(s.cts)),
        });
    }
    let mdat_size = u32::try_from(data_len + 8).map_err(|_| Error::CmafFrame("fragment over 4 GiB".into()))?;
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number: sequence },
        traf: vec![Traf {
            tfhd: Tfhd { track_id, default_base_is_moof: true, ..Default::default() },
            tfdt: Some(Tfdt { base_media_decode_time: first.dts }),
            trun: vec![Trun { data_offset: Some(0), samples: entries.into() }],
            ..Default::default()
        }],
    };
    // The data offset counts from the start of the moof to the first sample byte, so it needs
    // the moof's own size; the field has a fixed width, so one trial encoding gives it.
    let mut probe = Vec::new();
    encode_into(&moof, &mut probe)?;
    let offset = i32::try_from(probe.len() + 8).map_err(|_| Error::CmafFrame("moof too large".into()))?;
    moof.traf[0].trun[0].data_offset = Some(offset);
    let mut out = Vec::with_capacity(probe.len() + 8 + data_len);
    encode_into(&moof, &mut out)?;
    out.extend_from_slice(&mdat_size.to_be_bytes());
    out.extend_from_slice(b"mdat");
    for s in samples {
        out.extend_from_slice(&s.data);
    }
    Ok(Bytes::from(out))
}

/// Decodes one CMAF frame (`moof`+`mdat`, optionally behind `styp`/`sidx`/`prft`/`emsg`) of the
/// track described by `track_id` and `defaults`. Sample payloads are slices of `frame`.
pub fn decode_fragment(frame: &Bytes, track_id: u32, defaults: TrackDefaults) -> Result<Vec<Sample>> {
    let boxes = split_boxes(frame, 0)?;
    let mut offsets = Vec::with_capacity(boxes.len());
    let mut at = 0u64;
    for (header, _) in &boxes {
        offsets.push(at);
        at += header.size;
    }
    let moof_at =
        boxes.iter().position(|(h, _)| &h.kind == b"moof").ok_or_else(|| Error::CmafFrame("no moof".into()))?;
    let mdat_at =
        (moof_at + 1..boxes.len()).find(|&i| &boxes[i].0.kind == b"mdat").ok_or(Error::MissingMdat { offset: 0 })?;
    let (mdat_header, mdat) = &boxes[mdat_at];
    let moof_start = offsets[moof_at];
    let mdat_start = offsets[mdat_at];
    let moof: Moof = decode_box(&boxes[moof_at].1, moof_start)?;
    let payload = mdat.slice(mdat_header.header_len..);
    let samples = parse_moof(&moof, moof_start, &payload, mdat_start + mdat_header.header_len as u64, |id| {
        if id == track_id {
            Ok(Some(defaults))
        } else {
            Err(Error::UnknownTrackId(id))
        }
    })?;
    Ok(samples.into_iter().map(|(_, s)| s).collect())
}

/// Resolves every sample of a `moof` against the `mdat` payload that follows it.
///
/// `moof_start` and `mdat_start` (first payload byte) are absolute positions in the stream, the
/// frame the offsets refer to. `lookup` gives a track's defaults: `Ok(None)` walks the track's
/// samples (their sizes still place the next `traf`'s data) without returning them, `Err`
/// refuses the fragment. Samples come back per `traf`, each in decode order.
pub(crate) fn parse_moof(
    moof: &Moof,
    moof_start: u64,
    mdat: &Bytes,
    mdat_start: u64,
    mut lookup: impl FnMut(u32) -> Result<Option<TrackDefaults>>,
) -> Result<Vec<(u32, Sample)>> {
    let mdat_end = mdat_start + mdat.len() as u64;
    let mut out = Vec::new();
    // Every sample takes at least one byte of the mdat, which bounds the work a small input
    // can ask for.
    let mut budget = MAX_SAMPLES_PER_FRAGMENT.min(mdat.len());
    let mut prev_traf_end = moof_start;
    for (t, traf) in moof.traf.iter().enumerate() {
        let tfhd = &traf.tfhd;
        let track_id = tfhd.track_id;
        let emit = lookup(track_id)?;
        // Ignored tracks still need their sizes walked; only their trex defaults are unknown,
        // which a tfhd without defaults would leave at 0.
        let defaults = emit.unwrap_or_default();
        let base = match tfhd.base_data_offset {
            Some(base) => base,
            None if tfhd.default_base_is_moof || t == 0 => moof_start,
            None => prev_traf_end,
        };
        let mut dts = traf.tfdt.as_ref().map_or(defaults.next_dts, |t| t.base_media_decode_time);
        let mut pos = base;
        for (r, trun) in traf.trun.iter().enumerate() {
            let count = trun.samples.len();
            if count > budget {
                return Err(Error::TooManySamples { count: count as u64, max: budget as u64 });
            }
            budget -= count;
            if let Some(off) = trun.data_offset {
                pos = base.checked_add_signed(i64::from(off)).ok_or(Error::SampleOutOfBounds { track_id, index: 0 })?;
            } else if r == 0 {
                pos = base;
            }
            for (index, entry) in trun.samples.iter().enumerate() {
                let size = entry.size.or(tfhd.default_sample_size).unwrap_or(defaults.size);
                let duration = entry.duration.or(tfhd.default_sample_duration).unwrap_or(defaults.duration);
                let flags = entry.flags.or(tfhd.default_sample_flags).unwrap_or(defaults.flags);
                if size == 0 {
                    return Err(Error::EmptySample { track_id, index });
                }
                let end = pos.checked_add(u64::from(size)).ok_or(Error::SampleOutOfBounds { track_id, index })?;
                if emit.is_some() {
                    if pos < mdat_start || end > mdat_end {
                        return Err(Error::SampleOutOfBounds { track_id, index });
                    }
                    let cts = i32::try_from(entry.cts.unwrap_or(0)).map_err(|_| Error::TimestampOverflow)?;
                    let from = (pos - mdat_start) as usize;
                    out.push((
                        track_id,
                        Sample {
                            dts,
                            cts,
                            duration,
                            keyframe: defaults.audio || flags & NON_SYNC_BIT == 0,
                            data: mdat.slice(from..from + size as usize),
                        },
                    ));
                }
                dts = dts.checked_add(u64::from(duration)).ok_or(Error::TimestampOverflow)?;
                pos = end;
            }
        }
        prev_traf_end = pos;
    }
    Ok(out)
}
