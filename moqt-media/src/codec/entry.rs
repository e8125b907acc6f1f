//! Sample entries from catalog renditions: what the recorder writes into `stsd` for a track that
//! arrives in the legacy container (a CMAF rendition brings its own in the init segment).

use bytes::Bytes;
use mp4_atom::{esds, Audio, Av01, Av1c, Avc1, Avcc, Codec, Esds, Hev1, Hvc1, Hvcc, Mp4a, Opus, Visual, Vp09, VpcC};

use super::annexb::{avcc_from_annexb, hvcc_from_annexb, is_annexb};
use super::audio::{default_dops, dops_from_head, AacConfig};
use super::strings::{parse_av1, parse_vp9};
use crate::catalog::{AudioConfig, Rendition, VideoConfig};
use crate::error::{Error, Result};

/// A sample entry for a recorded track and the form its payloads must be rewritten to.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEntry {
    /// The `stsd` entry.
    pub codec: Codec,
    /// Payloads arrive in Annex B and must become length-prefixed.
    pub annexb: bool,
}

/// The sample entry for a rendition. `keyframe` is the first keyframe's payload: H.264 / H.265
/// without a description carry their parameter sets there, so `Ok(None)` means "wait for one".
pub fn sample_entry(rendition: Rendition<'_>, keyframe: Option<&[u8]>) -> Result<Option<SampleEntry>> {
    match rendition {
        Rendition::Video(v) => video_entry(v, keyframe),
        Rendition::Audio(a) => audio_entry(a).map(Some),
    }
}

fn invalid(what: impl Into<String>) -> Error {
    Error::InvalidCodecConfig(what.into())
}

fn visual(v: &VideoConfig) -> Visual {
    let clamp = |x: Option<u32>| x.map_or(0, |x| u16::try_from(x).unwrap_or(u16::MAX));
    Visual { data_reference_index: 1, width: clamp(v.coded_width), height: clamp(v.coded_height), ..Default::default() }
}

fn decode_record<T: mp4_atom::Atom>(description: &Bytes) -> Result<T> {
    let mut buf = &description[..];
    let record = T::decode_body(&mut buf).map_err(|e| Error::mp4(T::KIND, 0, e))?;
    Ok(record)
}

fn video_entry(v: &VideoConfig, keyframe: Option<&[u8]>) -> Result<Option<SampleEntry>> {
    let prefix = v.codec.split('.').next().unwrap_or_default();
    let visual = visual(v);
    match prefix {
        "avc1" | "avc3" => {
            let (avcc, annexb) = match &v.description {
                Some(d) => (decode_record::<Avcc>(d)?, false),
                None => match keyframe {
                    None => return Ok(None),
                    Some(k) if is_annexb(k) => {
                        (avcc_from_annexb(k).ok_or_else(|| invalid("H.264 keyframe without SPS/PPS"))?, true)
                    }
                    Some(_) => return Err(invalid("H.264 without description and not Annex B")),
                },
            };
            let codec = if prefix == "avc3" && !annexb {
                Codec::Avc3(mp4_atom::Avc3 { visual, avcc, ..Default::default() })
            } else {
                Codec::Avc1(Avc1 { visual, avcc, ..Default::default() })
            };
            Ok(Some(SampleEntry { codec, annexb }))
        }
        "hvc1" | "hev1" => {
            let (hvcc, annexb) = match &v.description {
                Some(d) => (decode_record::<Hvcc>(d)?, false),
                None => match keyframe {
                    None => return Ok(None),
                    Some(k) if is_annexb(k) => {
                        (hvcc_from_annexb(k).ok_or_else(|| invalid("H.265 keyframe without VPS/SPS/PPS"))?, true)
                    }
                    Some(_) => return Err(invalid("H.265 without description and not Annex B")),
                },
            };
            // Parameter sets kept in-band make the entry hev1.
            let codec = if prefix == "hvc1" && !annexb {
                Codec::Hvc1(Hvc1 { visual, hvcc, ..Default::default() })
            } else {
                Codec::Hev1(Hev1 { visual, hvcc, ..Default::default() })
            };
            Ok(Some(SampleEntry { codec, annexb }))
        }
        "av01" => {
            let av1c = match &v.description {
                Some(d) if !d.is_empty() => decode_record::<Av1c>(d)?,
                _ => {
                    let s = parse_av1(&v.codec).ok_or_else(|| invalid(format!("bad AV1 codec {:?}", v.codec)))?;
                    Av1c {
                        seq_profile: s.profile,
                        seq_level_idx_0: s.level,
                        seq_tier_0: s.high_tier,
                        high_bitdepth: s.bit_depth > 8,
                        twelve_bit: s.bit_depth == 12,
                        monochrome: s.monochrome,
                        chroma_subsampling_x: s.subsampling_x,
                        chroma_subsampling_y: s.subsampling_y,
                        chroma_sample_position: s.sample_position,
                        initial_presentation_delay: None,
                        config_obus: Vec::new(),
                    }
                }
            };
            Ok(Some(SampleEntry { codec: Codec::Av01(Av01 { visual, av1c, ..Default::default() }), annexb: false }))
        }
        "vp09" => {
            let s = parse_vp9(&v.codec).ok_or_else(|| invalid(format!("bad VP9 codec {:?}", v.codec)))?;
            let vpcc = VpcC {
                profile: s.profile,
                level: s.level,
                bit_depth: s.bit_depth,
                chroma_subsampling: s.chroma_subsampling,
                video_full_range_flag: s.full_range,
                color_primaries: s.color_primaries,
                transfer_characteristics: s.transfer_characteristics,
                matrix_coefficients: s.matrix_coefficients,
                codec_initialization_data: Vec::new(),
            };
            Ok(Some(SampleEntry { codec: Codec::Vp09(Vp09 { visual, vpcc, ..Default::default() }), annexb: false }))
        }
        _ => Err(Error::UnsupportedCodec { track_id: 0, codec: v.codec.clone() }),
    }
}

fn audio_entry(a: &AudioConfig) -> Result<SampleEntry> {
    let channels = u16::try_from(a.number_of_channels).ok().filter(|c| (1..=255).contains(c));
    let channels = channels.ok_or_else(|| invalid(format!("{} channels", a.number_of_channels)))?;
    let rate = u16::try_from(a.sample_rate).unwrap_or(0);
    let audio = |rate: u16| Audio {
        data_reference_index: 1,
        channel_count: channels,
        sample_size: 16,
        sample_rate: rate.into(),
    };
    if a.codec == "opus" {
        let dops = match a.description.as_deref().and_then(dops_from_head) {
            Some(dops) => dops,
            None => default_dops(channels as u8),
        };
        return Ok(SampleEntry { codec: Codec::Opus(Opus { audio: audio(48_000), dops, btrt: None }), annexb: false });
    }
    let Some(rest) = a.codec.strip_prefix("mp4a.") else {
        return Err(Error::UnsupportedCodec { track_id: 0, codec: a.codec.clone() });
    };
    let mut parts = rest.split('.');
    let oti = parts.next().and_then(|p| u8::from_str_radix(p, 16).ok());
    let (oti, aot) = match (oti, parts.next()) {
        (Some(0x40), Some(aot)) => (0x40, aot.parse::<u8>().map_err(|_| invalid(format!("bad codec {:?}", a.codec)))?),
        (Some(oti @ 0x66..=0x68), None) => (oti, oti - 0x65),
        _ => return Err(Error::UnsupportedCodec { track_id: 0, codec: a.codec.clone() }),
    };
    let asc = match &a.description {
        Some(d) if AacConfig::parse(d).is_some() => d.clone(),
        _ => AacConfig::encode(aot, a.sample_rate, a.number_of_channels),
    };
    let dec_specific = esds::DecoderSpecific { profile: aot, freq_index: 0, chan_conf: 0, raw: asc.to_vec() };
    let bitrate = a.bitrate.map_or(0, |b| u32::try_from(b).unwrap_or(u32::MAX));
    let esds = Esds {
        es_desc: esds::EsDescriptor {
            es_id: 0,
            dec_config: esds::DecoderConfig {
                object_type_indication: oti,
                stream_type: 5,
                up_stream: 0,
                buffer_size_db: Default::default(),
                max_bitrate: bitrate,
                avg_bitrate: bitrate,
                dec_specific: Some(dec_specific),
            },
            ..Default::default()
        },
    };
    Ok(SampleEntry { codec: Codec::Mp4a(Mp4a { audio: audio(rate), esds, btrt: None, taic: None }), annexb: false })
}
