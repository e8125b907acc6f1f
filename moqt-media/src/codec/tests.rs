use bytes::Bytes;
use mp4_atom::{Av1c, Avcc, Codec, Hvcc, OpusChannelMapping, VpcC};

use super::annexb::{avcc_from_annexb, hvcc_from_annexb, is_annexb, nal_units, to_length_prefixed};
use super::audio::{default_dops, dops_from_head, opus_head, AacConfig};
use super::*;
use crate::catalog::{AudioConfig, Rendition, VideoConfig};

#[test]
fn avc_strings() {
    let avcc = Avcc {
        avc_profile_indication: 0x42,
        profile_compatibility: 0xe0,
        avc_level_indication: 0x1e,
        ..Default::default()
    };
    assert_eq!(avc_string("avc1", &avcc), "avc1.42e01e");
    assert_eq!(avc_string("avc3", &avcc), "avc3.42e01e");
}

#[test]
fn hevc_strings() {
    // Main profile: compatibility flags 1 and 2 (0x60000000) reversed read 0x6.
    let mut hvcc = Hvcc {
        general_profile_idc: 1,
        general_profile_compatibility_flags: [0x60, 0, 0, 0],
        general_level_idc: 93,
        general_constraint_indicator_flags: [0xb0, 0, 0, 0, 0, 0],
        ..Hvcc::new()
    };
    assert_eq!(hevc_string("hvc1", &hvcc), "hvc1.1.6.L93.B0");
    // Main 10, high tier, profile space 1, two constraint bytes, a zero byte in between kept.
    hvcc.general_profile_idc = 2;
    hvcc.general_profile_compatibility_flags = [0x20, 0, 0, 0];
    hvcc.general_tier_flag = true;
    hvcc.general_level_idc = 120;
    hvcc.general_profile_space = 1;
    hvcc.general_constraint_indicator_flags = [0x90, 0, 0x01, 0, 0, 0];
    assert_eq!(hevc_string("hev1", &hvcc), "hev1.A2.4.H120.90.0.1");
    hvcc.general_constraint_indicator_flags = [0; 6];
    assert_eq!(hevc_string("hev1", &hvcc), "hev1.A2.4.H120");
}

fn av1c(level: u8, high_tier: bool, high_bitdepth: bool, mono: bool) -> Av1c {
    Av1c {
        seq_profile: 0,
        seq_level_idx_0: level,
        seq_tier_0: high_tier,
        high_bitdepth,
        twelve_bit: false,
        monochrome: mono,
        chroma_subsampling_x: true,
        chroma_subsampling_y: true,
        chroma_sample_position: 0,
        initial_presentation_delay: None,
        config_obus: Vec::new(),
    }
}

#[test]
fn av1_strings_and_parse() {
    assert_eq!(av1_string(&av1c(4, false, false, false), None), "av01.0.04M.08");
    assert_eq!(av1_string(&av1c(13, true, true, false), None), "av01.0.13H.10");
    let mono = av1_string(&av1c(8, false, false, true), None);
    assert_eq!(mono, "av01.0.08M.08.1.110.01.01.01.0");
    let parsed = parse_av1(&mono).unwrap();
    assert!(parsed.monochrome && parsed.subsampling_x && parsed.subsampling_y);
    let parsed = parse_av1("av01.0.13H.10").unwrap();
    assert_eq!((parsed.profile, parsed.level, parsed.high_tier, parsed.bit_depth), (0, 13, true, 10));
    assert!(parse_av1("av01.0.13X.10").is_none());
    assert!(parse_av1("av01.0").is_none());
    assert!(parse_av1("av01.0.04M.08.0.9").is_none());
}

#[test]
fn vp9_strings_and_parse() {
    let mut vpcc = VpcC { profile: 0, level: 10, bit_depth: 8, chroma_subsampling: 1, ..Default::default() };
    assert_eq!(vp9_string(&vpcc), "vp09.00.10.08");
    vpcc.profile = 1;
    vpcc.level = 20;
    vpcc.chroma_subsampling = 3;
    vpcc.color_primaries = 2;
    vpcc.transfer_characteristics = 1;
    vpcc.matrix_coefficients = 1;
    assert_eq!(vp9_string(&vpcc), "vp09.01.20.08.03.01.01.01.00");
    let p = parse_vp9("vp09.01.20.08.03.01.01.01.00").unwrap();
    assert_eq!((p.profile, p.level, p.bit_depth, p.chroma_subsampling, p.full_range), (1, 20, 8, 3, false));
    let p = parse_vp9("vp09.02.10.10").unwrap();
    assert_eq!((p.chroma_subsampling, p.color_primaries), (1, 1));
    assert!(parse_vp9("vp09.00.10").is_none());
    assert!(parse_vp9("vp09.00.xx.08").is_none());
}

#[test]
fn aac_strings_and_configs() {
    assert_eq!(aac_string(0x40, 2).as_deref(), Some("mp4a.40.2"));
    assert_eq!(aac_string(0x40, 29).as_deref(), Some("mp4a.40.29"));
    assert_eq!(aac_string(0x67, 0).as_deref(), Some("mp4a.67"));
    assert_eq!(aac_string(0x6b, 0), None);
    // AAC-LC 44.1 kHz stereo: 00010 0100 0010 000 = 0x12 0x10.
    assert_eq!(&AacConfig::encode(2, 44_100, 2)[..], &[0x12, 0x10]);
    assert_eq!(&AacConfig::encode(2, 48_000, 2)[..], &[0x11, 0x90]);
    assert_eq!(
        AacConfig::parse(&[0x12, 0x10]),
        Some(AacConfig { object_type: 2, sample_rate: Some(44_100), channels: Some(2) })
    );
    // A rate without an index is written explicitly (index 15 + 24 bits).
    let odd = AacConfig::encode(2, 37_800, 1);
    assert_eq!(odd.len(), 5);
    assert_eq!(
        AacConfig::parse(&odd),
        Some(AacConfig { object_type: 2, sample_rate: Some(37_800), channels: Some(1) })
    );
    // Escaped object type (31 + 6 bits), 8 channels (configuration 7).
    let esc = AacConfig::parse(&[0xf8, 0x0a, 0x38]).unwrap();
    assert_eq!(esc.object_type, 32);
    assert_eq!(AacConfig::parse(&[0x12]), None);
}

#[test]
fn opus_head_round_trip() {
    let dops = default_dops(2);
    let head = opus_head(&dops);
    assert_eq!(&head[..], b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00");
    assert_eq!(dops_from_head(&head), Some(dops));
    let surround = default_dops(6);
    assert_eq!(
        surround.channel_mapping,
        Some(OpusChannelMapping {
            family: 1,
            stream_count: 3,
            coupled_count: 3,
            channel_mapping: vec![0, 1, 2, 3, 4, 5]
        })
    );
    let head = opus_head(&surround);
    assert_eq!(head.len(), 19 + 2 + 6);
    assert_eq!(dops_from_head(&head), Some(surround));
    assert_eq!(dops_from_head(b"OpusTags\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"), None);
    assert_eq!(dops_from_head(&head[..20]), None, "mapping table cut short");
}

/// An H.264 SPS (Baseline 3.0) and PPS, as x264 would write them.
const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

#[test]
fn annexb_conversions() {
    let mut stream = vec![0, 0, 0, 1];
    stream.extend_from_slice(SPS);
    stream.extend_from_slice(&[0, 0, 1]);
    stream.extend_from_slice(PPS);
    stream.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x00]); // IDR with trailing zeros
    assert!(is_annexb(&stream));
    assert!(!is_annexb(&[0, 0, 2, 1]));
    let nals = nal_units(&stream);
    assert_eq!(nals, vec![SPS, PPS, &[0x65, 0x88, 0x84][..]]);
    let prefixed = to_length_prefixed(&stream);
    assert_eq!(&prefixed[..4], &(SPS.len() as u32).to_be_bytes());
    assert_eq!(prefixed.len(), 3 * 4 + SPS.len() + PPS.len() + 3);
    let avcc = avcc_from_annexb(&stream).unwrap();
    assert_eq!(avc_string("avc1", &avcc), "avc1.42c01e");
    assert_eq!(avcc.sequence_parameter_sets, vec![SPS.to_vec()]);
    assert_eq!(avcc.picture_parameter_sets, vec![PPS.to_vec()]);
    assert!(avcc_from_annexb(&[0, 0, 1, 0x65, 1]).is_none(), "no parameter sets");
}

#[test]
fn hvcc_from_annexb_reads_profile_tier_level() {
    // VPS / SPS / PPS NAL headers (types 32, 33, 34). The SPS has an emulation-prevention byte
    // inside its compatibility flags (00 00 03 00) that must be removed before reading.
    let vps = [0x40, 0x01, 0x0c];
    let sps = [
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x5d,
        0xa0,
    ];
    let pps = [0x44, 0x01, 0xc1];
    let mut stream = Vec::new();
    for nal in [&vps[..], &sps, &pps] {
        stream.extend_from_slice(&[0, 0, 0, 1]);
        stream.extend_from_slice(nal);
    }
    let hvcc = hvcc_from_annexb(&stream).unwrap();
    assert_eq!(hevc_string("hev1", &hvcc), "hev1.1.6.L93.90");
    assert_eq!(hvcc.arrays.len(), 3);
    assert_eq!(hvcc.arrays[1].nalus[0], sps.to_vec());
    assert!(hvcc_from_annexb(&stream[..12]).is_none());
}

#[test]
fn unsupported_entries_are_typed_errors() {
    let err = config_from_entry(7, &Codec::Unknown(mp4_atom::FourCC::new(b"mp4v"), vec![])).unwrap_err();
    assert!(matches!(err, Error::UnsupportedCodec { track_id: 7, ref codec } if codec == "mp4v"), "{err}");
    let opus = mp4_atom::Opus {
        audio: mp4_atom::Audio {
            data_reference_index: 1,
            channel_count: 0,
            sample_size: 16,
            sample_rate: 48000.into(),
        },
        dops: mp4_atom::Dops { output_channel_count: 0, ..default_dops(2) },
        btrt: None,
    };
    assert!(matches!(config_from_entry(1, &Codec::Opus(opus)), Err(Error::InvalidCodecConfig(_))));
    assert!(is_supported_fourcc(b"hev1") && !is_supported_fourcc(b"vp08"));
}

fn entry(rendition: Rendition<'_>, keyframe: Option<&[u8]>) -> Option<SampleEntry> {
    sample_entry(rendition, keyframe).unwrap()
}

#[test]
fn sample_entries_from_renditions() {
    // Audio needs no description.
    let opus = AudioConfig::new("opus", 48_000, 2);
    let e = entry(Rendition::Audio(&opus), None).unwrap();
    let Codec::Opus(o) = e.codec else { panic!() };
    assert_eq!((o.dops.output_channel_count, o.audio.sample_rate.integer()), (2, 48_000));
    let aac = AudioConfig::new("mp4a.40.2", 44_100, 2);
    let Codec::Mp4a(m) = entry(Rendition::Audio(&aac), None).unwrap().codec else { panic!() };
    assert_eq!(m.esds.es_desc.dec_config.object_type_indication, 0x40);
    assert_eq!(m.esds.es_desc.dec_config.dec_specific.unwrap().raw, vec![0x12, 0x10]);
    // AV1 and VP9 entries come from the codec string.
    let av1 = VideoConfig::new("av01.0.13H.10");
    let Codec::Av01(a) = entry(Rendition::Video(&av1), None).unwrap().codec else { panic!() };
    assert_eq!(av1_string(&a.av1c, None), "av01.0.13H.10");
    let vp9 = VideoConfig::new("vp09.00.10.08");
    let Codec::Vp09(v) = entry(Rendition::Video(&vp9), None).unwrap().codec else { panic!() };
    assert_eq!(vp9_string(&v.vpcc), "vp09.00.10.08");
    // H.264: from the description, or from the first Annex B keyframe.
    let avcc = Avcc::new(SPS, PPS).unwrap();
    let mut h264 = VideoConfig::new("avc1.42c01e");
    h264.description = Some(body(&avcc).unwrap());
    let e = entry(Rendition::Video(&h264), None).unwrap();
    assert!(!e.annexb && matches!(e.codec, Codec::Avc1(ref a) if a.avcc == avcc));
    h264.description = None;
    assert_eq!(entry(Rendition::Video(&h264), None), None, "waits for a keyframe");
    let mut key = vec![0, 0, 0, 1];
    key.extend_from_slice(SPS);
    key.extend_from_slice(&[0, 0, 0, 1]);
    key.extend_from_slice(PPS);
    let e = entry(Rendition::Video(&h264), Some(&key)).unwrap();
    assert!(e.annexb && matches!(e.codec, Codec::Avc1(ref a) if a.avcc == avcc));
    assert!(sample_entry(Rendition::Video(&h264), Some(&[0, 0, 0, 5, 1, 2, 3, 4, 5])).is_err());
    // Refusals.
    for codec in ["vp8", "av01.x", "vp09.1"] {
        assert!(sample_entry(Rendition::Video(&VideoConfig::new(codec)), None).is_err(), "{codec}");
    }
    for codec in ["flac", "mp4a.6b", "mp4a.40.x"] {
        assert!(sample_entry(Rendition::Audio(&AudioConfig::new(codec, 48_000, 2)), None).is_err(), "{codec}");
    }
    assert!(sample_entry(Rendition::Audio(&AudioConfig::new("opus", 48_000, 0)), None).is_err());
    let mut bad = VideoConfig::new("hvc1.1.6.L93.B0");
    bad.description = Some(Bytes::from_static(&[2, 0, 0]));
    assert!(sample_entry(Rendition::Video(&bad), None).is_err());
}
