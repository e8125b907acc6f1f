//! Importing the committed fragmented-MP4 fixtures (made by `tests/fixtures/make.sh`).
//!
//! Expected values were measured with ffprobe 5.1 on the committed files:
//!
//! ```sh
//! ffprobe -v error -show_entries stream=index,codec_name,codec_tag_string,width,height,sample_rate,channels,time_base -of compact F
//! ffprobe -v error -select_streams N -show_entries packet=pts,dts,size,flags -of csv=p=0 F
//! ```
//!
//! | fixture | stream | packets | keyframes | bytes | time base | pts (first..max) |
//! |---|---|---|---|---|---|---|
//! | h264_opus | h264 High 320x180 | 75 | 3 | 40115 | 1/12800 | 1024..38912 |
//! | h264_opus | opus 48 kHz stereo | 151 | 151 | 14271 | 1/48000 | 0..144000 |
//! | h265 | hevc (hvc1) 160x90 | 25 | 3 | 8811 | 1/12800 | 1024..13312 |
//! | av1 | av1 160x90 | 25 | 3 | 8035 | 1/12800 | 0..12288 |
//! | vp9 | vp9 160x90 | 25 | 3 | 18788 | 1/12800 | 0..12288 |
//! | aac | aac LC 44.1 kHz mono | 45 | 45 | 4143 | 1/44100 | 0..45056 |
//!
//! ffprobe's pts for H.264 and H.265 are 1024 ticks (80 ms) later than the MP4 composition
//! times: the files use version-1 `trun` boxes with negative composition offsets, and ffmpeg's
//! demuxer shifts such tracks so that no pts precedes its dts. The importer reports composition
//! times as ISO/IEC 14496-12 defines them (decode time + offset), as `@moq/watch` does, so its
//! timestamps are ffprobe's minus 80 ms for those two. Frame spacing is identical.

mod common;

use bytes::Bytes;
use common::*;
use moqt_media::container::cmaf::decode_fragment;
use moqt_media::container::init::parse_init;
use moqt_media::{AudioGroups, Container, ContainerKind, Error, ImportConfig};

struct Expect {
    track: &'static str,
    frames: usize,
    keyframes: usize,
    bytes: usize,
    /// Sorted presentation times are `k * step` µs for k in 0..frames (after rounding).
    step_num: u64,
    step_den: u64,
}

fn check(imported: &Imported, expect: &[Expect]) {
    assert!(imported.error.is_none(), "unexpected error: {:?}", imported.error);
    assert_eq!(imported.catalogs.len(), 1);
    for e in expect {
        let frames = imported.track(e.track);
        assert_eq!(frames.len(), e.frames, "{}: frame count", e.track);
        assert_eq!(frames.iter().filter(|f| f.keyframe).count(), e.keyframes, "{}: keyframes", e.track);
        let bytes: usize = frames.iter().map(|f| legacy_payload(f).len()).sum();
        assert_eq!(bytes, e.bytes, "{}: payload bytes", e.track);
        assert!(frames[0].keyframe && frames[0].group_start, "{}: starts on a keyframe", e.track);
        let mut ts: Vec<u64> = frames.iter().map(|f| f.timestamp_us).collect();
        // Each frame's legacy timestamp is the one reported.
        for f in &frames {
            let (t, _) = moqt_media::container::legacy::decode(&f.payload).unwrap();
            assert_eq!(t, f.timestamp_us);
        }
        ts.sort_unstable();
        let expected: Vec<u64> =
            (0..e.frames as u64).map(|k| (k * e.step_num * 1_000_000 + e.step_den / 2) / e.step_den).collect();
        assert_eq!(ts, expected, "{}: presentation times", e.track);
    }
}

const CHUNKINGS: &[&[usize]] = &[&[], &[1], &[7, 1, 4096, 13], &[65536], &[100, 3000]];

#[test]
fn h264_opus_frames_codecs_and_times() {
    for chunks in CHUNKINGS {
        let imported = import_chunked(H264_OPUS, chunks, ImportConfig::default());
        check(
            &imported,
            &[
                Expect { track: "video0", frames: 75, keyframes: 3, bytes: 40115, step_num: 512, step_den: 12800 },
                Expect { track: "audio0", frames: 151, keyframes: 151, bytes: 14271, step_num: 960, step_den: 48000 },
            ],
        );
        let catalog = &imported.catalogs[0];
        let video = &catalog.video.renditions["video0"];
        assert_eq!(video.codec, "avc1.64000c");
        assert_eq!((video.coded_width, video.coded_height), (Some(320), Some(180)));
        // From the first sample's duration: 512 ticks of 1/12800 s.
        assert_eq!(video.framerate, Some(25.0));
        assert_eq!(video.container, Container::Legacy);
        // The description is the avcC record: version 1, then profile/compat/level.
        let desc = video.description.as_ref().unwrap();
        assert_eq!(&desc[..4], &[1, 0x64, 0x00, 0x0c]);
        let audio = &catalog.audio.renditions["audio0"];
        assert_eq!((audio.codec.as_str(), audio.sample_rate, audio.number_of_channels), ("opus", 48_000, 2));
        // OpusHead: magic, version 1, 2 channels, pre-skip 312 (0x138).
        let head = audio.description.as_ref().unwrap();
        assert_eq!(&head[..12], b"OpusHead\x01\x02\x38\x01");
        // Keyframes every 25 video frames, each starting a group; every audio frame is a group.
        let video_frames = imported.track("video0");
        let keys: Vec<usize> = (0..video_frames.len()).filter(|&i| video_frames[i].keyframe).collect();
        assert_eq!(keys, vec![0, 25, 50]);
        assert!(video_frames.iter().all(|f| f.group_start == f.keyframe));
        assert!(imported.track("audio0").iter().all(|f| f.group_start && f.keyframe));
        // Audio times strictly increase; video decode order differs from presentation order.
        let audio_ts: Vec<u64> = imported.track("audio0").iter().map(|f| f.timestamp_us).collect();
        assert!(audio_ts.windows(2).all(|w| w[0] < w[1]));
        let video_ts: Vec<u64> = video_frames.iter().map(|f| f.timestamp_us).collect();
        assert_eq!(&video_ts[..5], &[0, 160_000, 80_000, 40_000, 120_000]);
    }
}

#[test]
fn other_codecs_frames_and_strings() {
    let cases: [(&[u8], &str, Expect); 4] = [
        (
            H265,
            "hvc1.1.6.L30.90",
            Expect { track: "video0", frames: 25, keyframes: 3, bytes: 8811, step_num: 512, step_den: 12800 },
        ),
        (
            AV1,
            "av01.0.00M.08",
            Expect { track: "video0", frames: 25, keyframes: 3, bytes: 8035, step_num: 512, step_den: 12800 },
        ),
        (
            VP9,
            "vp09.00.10.08",
            Expect { track: "video0", frames: 25, keyframes: 3, bytes: 18788, step_num: 512, step_den: 12800 },
        ),
        (
            AAC,
            "mp4a.40.2",
            Expect { track: "audio0", frames: 45, keyframes: 45, bytes: 4143, step_num: 1024, step_den: 44100 },
        ),
    ];
    for (data, codec, expect) in cases {
        for chunks in CHUNKINGS {
            let imported = import_chunked(data, chunks, ImportConfig::default());
            check(&imported, std::slice::from_ref(&expect));
            let rendition = imported.catalogs[0].rendition(expect.track).unwrap();
            assert_eq!(rendition.codec(), codec);
        }
    }
    let aac = import(AAC);
    let audio = &aac.catalogs[0].audio.renditions["audio0"];
    assert_eq!((audio.sample_rate, audio.number_of_channels), (44_100, 1));
    // AudioSpecificConfig: object type 2, frequency index 4 (44.1 kHz), 1 channel.
    assert_eq!(&audio.description.as_ref().unwrap()[..2], &[0x12, 0x08]);
    let h265 = import(H265);
    let desc = h265.catalogs[0].video.renditions["video0"].description.clone().unwrap();
    assert_eq!(desc[0], 1, "hvcC configuration version");
    for (data, w, h) in [(AV1, 160, 90), (VP9, 160, 90)] {
        let v = &import(data).catalogs[0].video.renditions["video0"];
        assert_eq!((v.coded_width, v.coded_height), (Some(w), Some(h)));
        assert!(v.description.is_none());
    }
}

#[test]
fn cmaf_container_frames_decode_with_the_catalog_init() {
    let config = ImportConfig { container: ContainerKind::Cmaf, ..Default::default() };
    let cmaf = import_chunked(H264_OPUS, &[999], config);
    let legacy = import(H264_OPUS);
    assert!(cmaf.error.is_none());
    assert_eq!(cmaf.frames.len(), legacy.frames.len());
    let catalog = &cmaf.catalogs[0];
    for (name, rendition) in catalog.renditions() {
        let Container::Cmaf { init } = rendition.container() else { panic!("{name}: not cmaf") };
        let (_, tracks) = parse_init(init).unwrap();
        assert_eq!(tracks.len(), 1, "{name}: one track per init segment");
        let track = &tracks[0];
        let mut next = 0;
        for (c, l) in cmaf.track(name).iter().zip(legacy.track(name)) {
            assert_eq!(c.timestamp_us, l.timestamp_us);
            assert_eq!((c.keyframe, c.group_start), (l.keyframe, l.group_start));
            let samples = decode_fragment(&c.payload, track.track_id(), track.defaults(next)).unwrap();
            assert_eq!(samples.len(), 1);
            let s = &samples[0];
            assert_eq!(s.data, legacy_payload(l), "{name}: same sample bytes");
            assert_eq!(s.keyframe, l.keyframe);
            assert_eq!(moqt_media::container::to_micros(s.pts(), track.timescale()), l.timestamp_us);
            next = s.dts + u64::from(s.duration);
        }
    }
}

#[test]
fn audio_group_policy_by_duration() {
    let config = ImportConfig { audio_groups: AudioGroups::Duration(100_000), ..Default::default() };
    let imported = import_chunked(H264_OPUS, &[], config);
    let audio = imported.track("audio0");
    let starts: Vec<usize> = (0..audio.len()).filter(|&i| audio[i].group_start).collect();
    // 20 ms frames: a new group every 5 frames (100 ms).
    assert_eq!(starts, (0..audio.len()).step_by(5).collect::<Vec<_>>());
    assert!(audio.iter().all(|f| f.keyframe));
}

#[test]
fn a_repeated_init_segment_continues_the_timeline() {
    let twice = [H264_OPUS, H264_OPUS].concat();
    let imported = import_chunked(&twice, &[4096], ImportConfig::default());
    assert!(imported.error.is_none(), "{:?}", imported.error);
    assert_eq!(imported.catalogs.len(), 1, "same tracks: no second catalog");
    for (name, n, step) in [("video0", 75usize, 40_000u64), ("audio0", 151, 20_000)] {
        let frames = imported.track(name);
        assert_eq!(frames.len(), 2 * n);
        let mut first: Vec<u64> = frames[..n].iter().map(|f| f.timestamp_us).collect();
        let mut second: Vec<u64> = frames[n..].iter().map(|f| f.timestamp_us).collect();
        first.sort_unstable();
        second.sort_unstable();
        // The second pass starts where the furthest track of the first ended: the last Opus
        // packet (3.0 s) lasts 312 samples, so 3.0065 s, in each track's timescale.
        let shift = second[0] - first[0];
        assert!(shift.abs_diff(3_006_500) < 80, "{name}: shift {shift}");
        assert!(second.iter().zip(&first).all(|(b, a)| b - a == shift));
        assert!(second[0] > *first.last().unwrap() && second[1] - second[0] == step);
    }
}

#[test]
fn a_different_init_segment_publishes_a_new_catalog() {
    let both = [H264_OPUS, AAC].concat();
    let imported = import(&both);
    assert!(imported.error.is_none(), "{:?}", imported.error);
    assert_eq!(imported.catalogs.len(), 2);
    assert_eq!(imported.catalogs[1].audio.renditions["audio0"].codec, "mp4a.40.2");
    assert_eq!(imported.frames.len(), 75 + 151 + 45);
}

#[test]
fn fragments_before_the_init_segment_are_refused() {
    // Drop ftyp + moov: the stream starts with a moof.
    let moov_end = 28 + u32::from_be_bytes(H264_OPUS[28..32].try_into().unwrap()) as usize;
    let imported = import(&H264_OPUS[moov_end..]);
    assert!(matches!(imported.error, Some(Error::BeforeInit { ref kind, offset: 0 }) if kind == "moof"));
    assert!(imported.frames.is_empty() && imported.catalogs.is_empty());
}

/// Top-level boxes of a fixture: (type, start, end).
fn top_level_boxes(data: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        out.push((data[pos + 4..pos + 8].try_into().unwrap(), pos, pos + size));
        pos += size;
    }
    out
}

#[test]
fn truncated_input_is_an_error_at_finish_and_keeps_earlier_frames() {
    let full = import(H264_OPUS);
    let boxes = top_level_boxes(H264_OPUS);
    // ffmpeg ends the file with an mfra index after the last moof+mdat.
    let kinds: Vec<&[u8]> = boxes.iter().map(|(k, _, _)| &k[..]).collect();
    assert_eq!(&kinds[..3], &[&b"ftyp"[..], b"moov", b"moof"]);
    assert_eq!(kinds.last().unwrap(), b"mfra");
    let last_moof = boxes.iter().rev().find(|(k, _, _)| k == b"moof").unwrap().1;
    let cut = import(&H264_OPUS[..last_moof + 1000]);
    assert!(matches!(cut.error, Some(Error::Truncated { .. })), "{:?}", cut.error);
    // Only the last fragment is lost: one GOP of video and 54 Opus packets (its trun counts).
    assert_eq!(cut.frames.len(), full.frames.len() - 25 - 54);
    assert_eq!(&full.frames[..cut.frames.len()], &cut.frames[..]);
    assert!(matches!(import(&[]).error, Some(Error::NoInit)));
    assert!(matches!(import(&H264_OPUS[..40]).error, Some(Error::Truncated { buffered: 12 })));
}

#[test]
fn every_truncation_of_small_fixtures_is_a_prefix_of_the_full_import() {
    for data in [AAC, H265] {
        let full = import(data);
        let boxes = top_level_boxes(data);
        let moov_end = boxes.iter().find(|(k, _, _)| k == b"moov").unwrap().2;
        for cut in 0..data.len() {
            let part = import(&data[..cut]);
            // A cut between boxes, after the init segment and not between a moof and its mdat,
            // is a valid shorter stream; every other cut is an error.
            let clean = cut >= moov_end && boxes.iter().any(|(k, _, end)| *end == cut && k != b"moof");
            assert_eq!(part.error.is_none(), clean, "cut at {cut} of {}: {:?}", data.len(), part.error);
            assert!(part.frames.len() <= full.frames.len());
            assert_eq!(&full.frames[..part.frames.len()], &part.frames[..], "cut at {cut}");
            assert!(part.catalogs.len() <= 1);
        }
    }
}

#[test]
fn corruption_at_every_offset_never_panics() {
    for data in [AAC, H265] {
        let mut copy = data.to_vec();
        let mut errors = 0;
        for at in 0..copy.len() {
            for flip in [0xff, 0x80] {
                copy[at] ^= flip;
                let imported = import_chunked(&copy, &[1000], ImportConfig::default());
                if imported.error.is_some() {
                    errors += 1;
                }
                copy[at] ^= flip;
            }
        }
        // Corrupting headers and sample tables is caught; corrupting media bytes is not visible.
        assert!(errors > 100, "only {errors} corruptions detected");
    }
}

#[test]
fn no_more_input_after_an_error() {
    let mut importer = moqt_media::Importer::new(ImportConfig::default());
    let err = importer.push(Bytes::from_static(b"\0\0\0\x04moov")).unwrap_err();
    assert!(matches!(err, Error::InvalidBoxSize { size: 4, .. }), "{err}");
    assert!(matches!(importer.push(Bytes::from_static(H264_OPUS)), Err(Error::Closed)));
    assert!(matches!(importer.finish(), Err(Error::Closed)));
}

#[test]
fn oversized_and_unsized_boxes_are_refused() {
    let config = ImportConfig { max_box_size: 1000, ..Default::default() };
    let imported = import_chunked(H264_OPUS, &[], config);
    assert!(matches!(imported.error, Some(Error::BoxTooLarge { ref kind, max: 1000, .. }) if kind == "moov"));
    let imported = import(b"\0\0\0\0mdat1234");
    assert!(matches!(imported.error, Some(Error::UnsizedBox { ref kind, offset: 0 }) if kind == "mdat"));
}

#[test]
fn timestamps_beyond_the_varint_range_are_refused() {
    // Set the first fragment's tfdt (version 1, 64 bits) to 2^62 ticks of 1/44100 s.
    let mut data = AAC.to_vec();
    let at = data.windows(4).position(|w| w == b"tfdt").unwrap();
    assert_eq!(data[at + 4], 1, "64-bit tfdt");
    data[at + 8..at + 16].copy_from_slice(&(1u64 << 62).to_be_bytes());
    let imported = import(&data);
    assert!(matches!(imported.error, Some(Error::TimestampOverflow)), "{:?}", imported.error);
    assert!(imported.frames.is_empty());
    // 2^61 - 1 µs is the last accepted timestamp.
    assert_eq!(moqt_media::import::MAX_TIMESTAMP_US, (1 << 61) - 1);
}

#[test]
fn the_catalog_comes_before_the_first_frames_or_at_finish() {
    let mut importer = moqt_media::Importer::new(ImportConfig::default());
    let moov_end = 28 + u32::from_be_bytes(H264_OPUS[28..32].try_into().unwrap()) as usize;
    importer.push(Bytes::from_static(&H264_OPUS[..moov_end])).unwrap();
    // Known, but not yet emitted: it waits for the first fragment to learn the frame rate.
    assert!(importer.catalog().is_some());
    assert!(importer.poll().is_none());
    importer.push(Bytes::from_static(&H264_OPUS[moov_end..])).unwrap();
    assert!(
        matches!(importer.poll(), Some(moqt_media::ImportEvent::Catalog(c)) if c.video.renditions["video0"].framerate == Some(25.0))
    );
    assert!(matches!(importer.poll(), Some(moqt_media::ImportEvent::Frame(_))));
    // An init segment alone still gives its catalog, at finish.
    let init_only = import(&AAC[..top_level_boxes(AAC)[1].2]);
    assert!(init_only.error.is_none());
    assert_eq!(init_only.catalogs.len(), 1);
    assert!(init_only.frames.is_empty());
}
