//! Recording: catalog + frames → fragmented MP4, checked by importing the result again (always)
//! and by ffprobe / ffmpeg when they are installed (the test prints `SKIPPED` otherwise).

mod common;

use std::process::Command;

use bytes::{Bytes, BytesMut};
use common::*;
use moqt_media::container::legacy;
use moqt_media::{Catalog, ContainerKind, Error, ImportConfig, Recorder, RecorderConfig};

/// Records every frame of an import, polling the output after each frame as a live writer
/// would. Returns the file and how many output pieces existed before `finish`.
fn record(imported: &Imported) -> (Bytes, usize) {
    let mut recorder = Recorder::new(&imported.catalogs[0]).expect("recorder");
    let mut out = BytesMut::new();
    let mut before_finish = 0;
    for frame in &imported.frames {
        recorder.frame(&frame.track, frame.group_start, frame.payload.clone()).expect("frame");
        while let Some(piece) = recorder.poll_output() {
            out.extend_from_slice(&piece);
            before_finish += 1;
        }
    }
    recorder.finish().expect("finish");
    while let Some(piece) = recorder.poll_output() {
        out.extend_from_slice(&piece);
    }
    (out.freeze(), before_finish)
}

/// Same tracks, codecs, descriptions, frame counts, keyframes, timestamps and payload bytes.
fn assert_same_media(original: &Imported, again: &Imported) {
    assert!(again.error.is_none(), "re-import failed: {:?}", again.error);
    let (a, b) = (&original.catalogs[0], &again.catalogs[0]);
    let names_a: Vec<_> = a.renditions().map(|(n, r)| (n.to_string(), r.codec().to_string())).collect();
    let names_b: Vec<_> = b.renditions().map(|(n, r)| (n.to_string(), r.codec().to_string())).collect();
    assert_eq!(names_a, names_b);
    for (name, v) in &a.video.renditions {
        let w = &b.video.renditions[name];
        assert_eq!(v.description, w.description, "{name}: description");
        assert_eq!((v.coded_width, v.coded_height), (w.coded_width, w.coded_height));
    }
    for (name, x) in &a.audio.renditions {
        let y = &b.audio.renditions[name];
        assert_eq!(
            (x.sample_rate, x.number_of_channels, &x.description),
            (y.sample_rate, y.number_of_channels, &y.description)
        );
    }
    for (name, _) in a.renditions() {
        let (fa, fb) = (original.track(name), again.track(name));
        assert_eq!(fa.len(), fb.len(), "{name}: frame count");
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(x.timestamp_us, y.timestamp_us, "{name}: timestamp");
            assert_eq!(x.keyframe, y.keyframe, "{name}: keyframe");
            assert_eq!(legacy_payload(x), legacy_payload(y), "{name}: payload");
        }
    }
}

/// Runs ffprobe on a recording; `None` (and a printed notice) when ffprobe is not installed.
/// Returns per stream: (codec name, packet count, dts strictly increasing).
fn ffprobe(file: &[u8], label: &str) -> Option<Vec<(String, usize, bool)>> {
    if Command::new("ffprobe").arg("-version").output().is_err() {
        println!("SKIPPED ffprobe check of {label}: ffprobe not found");
        return None;
    }
    let path = std::env::temp_dir().join(format!("moqt-media-{}-{label}.mp4", std::process::id()));
    std::fs::write(&path, file).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(&path).output().unwrap();
        assert!(out.status.success(), "ffprobe failed on {label}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "ffprobe complained on {label}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let streams = run(&["-count_packets", "-show_entries", "stream=codec_name,nb_read_packets", "-of", "csv=p=0"]);
    let mut result = Vec::new();
    for (index, line) in streams.lines().enumerate() {
        let mut parts = line.split(',');
        let codec = parts.next().unwrap().to_string();
        let packets: usize = parts.next().unwrap().parse().unwrap();
        let dts = run(&["-select_streams", &index.to_string(), "-show_entries", "packet=dts", "-of", "csv=p=0"]);
        let dts: Vec<i64> = dts.lines().map(|l| l.trim_end_matches(',').parse().unwrap()).collect();
        result.push((codec, packets, dts.windows(2).all(|w| w[0] < w[1])));
    }
    // A full decode must run without a single decoder error.
    if Command::new("ffmpeg").arg("-version").output().is_ok() {
        let out =
            Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&path).args(["-f", "null", "-"]).output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "ffmpeg decode of {label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(&path);
    Some(result)
}

#[test]
fn legacy_round_trip_of_every_fixture() {
    type Case = (&'static str, &'static [u8], &'static [(&'static str, usize)]);
    let cases: [Case; 5] = [
        ("h264_opus", H264_OPUS, &[("h264", 75), ("opus", 151)]),
        ("h265", H265, &[("hevc", 25)]),
        ("av1", AV1, &[("av1", 25)]),
        ("vp9", VP9, &[("vp9", 25)]),
        ("aac", AAC, &[("aac", 45)]),
    ];
    for (label, data, expect) in cases {
        let original = import(data);
        let (file, _) = record(&original);
        assert_same_media(&original, &import(&file));
        if let Some(streams) = ffprobe(&file, label) {
            let got: Vec<(&str, usize)> = streams.iter().map(|(c, n, _)| (c.as_str(), *n)).collect();
            assert_eq!(got, expect, "{label}: ffprobe streams");
            assert!(streams.iter().all(|(_, _, monotonic)| *monotonic), "{label}: dts not increasing");
        }
    }
}

#[test]
fn cmaf_round_trip_keeps_the_source_timing() {
    let legacy = import(H264_OPUS);
    let cmaf = import_chunked(H264_OPUS, &[], ImportConfig { container: ContainerKind::Cmaf, ..Default::default() });
    let (file, _) = record(&cmaf);
    let again = import(&file);
    // The recording's own catalog is legacy; the media is the same as the source's.
    assert_same_media(&legacy, &again);
    if let Some(streams) = ffprobe(&file, "cmaf") {
        assert_eq!(streams, vec![("h264".into(), 75, true), ("opus".into(), 151, true)]);
    }
}

#[test]
fn output_is_incremental() {
    let original = import(H264_OPUS);
    let (file, before_finish) = record(&original);
    // The init segment, then one fragment per finished GOP and per 200 ms of audio, all before
    // finish(); only the last video GOP and audio run wait for it.
    assert!(before_finish > 10, "only {before_finish} pieces before finish");
    assert_eq!(&file[4..8], b"ftyp");
}

/// Rewrites a length-prefixed H.264 payload to Annex B, with the parameter sets of `avcc` in
/// front of keyframes: what a browser's WebCodecs encoder publishes.
fn to_annexb(payload: &[u8], keyframe: bool, avcc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if keyframe {
        // avcC: 5 bytes, then SPS count (low 5 bits), SPS (u16 length + bytes), PPS count, PPS.
        let sps_len = u16::from_be_bytes([avcc[6], avcc[7]]) as usize;
        let sps = &avcc[8..8 + sps_len];
        let pps_at = 8 + sps_len + 1;
        let pps_len = u16::from_be_bytes([avcc[pps_at], avcc[pps_at + 1]]) as usize;
        let pps = &avcc[pps_at + 2..pps_at + 2 + pps_len];
        for nal in [sps, pps] {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    let mut pos = 0;
    while pos + 4 <= payload.len() {
        let len = u32::from_be_bytes(payload[pos..pos + 4].try_into().unwrap()) as usize;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&payload[pos + 4..pos + 4 + len]);
        pos += 4 + len;
    }
    out
}

#[test]
fn annexb_without_description_gets_its_avcc_from_the_first_keyframe() {
    let original = import(H264_OPUS);
    let mut catalog: Catalog = original.catalogs[0].clone();
    let avcc = catalog.video.renditions.get_mut("video0").unwrap().description.take().unwrap();
    let mut recorder = Recorder::new(&catalog).unwrap();
    // Nothing can be written before the first video keyframe brings SPS/PPS.
    assert!(recorder.poll_output().is_none());
    for frame in &original.frames {
        let mut payload = frame.payload.clone();
        if &*frame.track == "video0" {
            let data = to_annexb(&legacy_payload(frame), frame.keyframe, &avcc);
            payload = legacy::encode(frame.timestamp_us, &data);
        }
        recorder.frame(&frame.track, frame.group_start, payload).unwrap();
    }
    recorder.finish().unwrap();
    let mut file = BytesMut::new();
    while let Some(piece) = recorder.poll_output() {
        file.extend_from_slice(&piece);
    }
    let again = import(&file);
    assert!(again.error.is_none(), "{:?}", again.error);
    let video = &again.catalogs[0].video.renditions["video0"];
    assert_eq!(video.codec, "avc1.64000c");
    // The rebuilt avcC holds the same SPS and PPS; ffmpeg's also has the 4-byte High-profile
    // extension (chroma format, bit depths), which is left out when rebuilding.
    let rebuilt = video.description.as_ref().unwrap();
    assert_eq!(rebuilt.len() + 4, avcc.len());
    assert_eq!(rebuilt[..], avcc[..rebuilt.len()]);
    let (a, b) = (original.track("video0"), again.track("video0"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.timestamp_us, x.keyframe), (y.timestamp_us, y.keyframe));
        let (x, y) = (legacy_payload(x), legacy_payload(y));
        if x.len() == y.len() {
            assert_eq!(x, y);
        } else {
            // Keyframes keep their in-band SPS and PPS in front (4 + len each).
            assert!(y.ends_with(&x), "payload tail differs");
        }
    }
    if let Some(streams) = ffprobe(&file, "annexb") {
        assert_eq!(streams, vec![("h264".into(), 75, true), ("opus".into(), 151, true)]);
    }
}

#[test]
fn frames_are_refused_one_by_one_and_the_recording_continues() {
    let original = import(AAC);
    let mut recorder = Recorder::new(&original.catalogs[0]).unwrap();
    assert!(matches!(recorder.frame("nope", true, Bytes::new()), Err(Error::UnknownTrack(_))));
    assert!(matches!(recorder.frame("audio0", true, Bytes::new()), Err(Error::LegacyTruncated)));
    // A marker (timestamp, no payload) is not a sample.
    recorder.frame("audio0", true, legacy::encode(5, &[])).unwrap();
    for frame in &original.frames {
        recorder.frame(&frame.track, frame.group_start, frame.payload.clone()).unwrap();
    }
    recorder.finish().unwrap();
    assert!(matches!(recorder.frame("audio0", true, original.frames[0].payload.clone()), Err(Error::Closed)));
    let mut file = BytesMut::new();
    while let Some(piece) = recorder.poll_output() {
        file.extend_from_slice(&piece);
    }
    assert_same_media(&original, &import(&file));
}

#[test]
fn a_subscriber_joining_mid_group_starts_at_the_next_keyframe() {
    let original = import(H265);
    let mut recorder =
        Recorder::select(&original.catalogs[0], &["video0"], RecorderConfig::default()).expect("recorder");
    assert_eq!(recorder.tracks().collect::<Vec<_>>(), vec!["video0"]);
    for frame in &original.frames[3..] {
        recorder.frame(&frame.track, frame.group_start, frame.payload.clone()).unwrap();
    }
    recorder.finish().unwrap();
    let mut file = BytesMut::new();
    while let Some(piece) = recorder.poll_output() {
        file.extend_from_slice(&piece);
    }
    let again = import(&file);
    // The rest of the first GOP is skipped. x265 writes open GOPs here: the second keyframe is
    // decode index 9 (ffprobe: pts 6144, followed by a leading frame at pts 5632), so 16 frames.
    let keys: Vec<usize> = (0..25).filter(|&i| original.frames[i].keyframe).collect();
    assert_eq!(keys, vec![0, 9, 20]);
    assert_eq!(again.frames.len(), 16);
    assert!(again.frames[0].keyframe);
    assert_eq!(again.frames[0].timestamp_us, original.frames[9].timestamp_us);
    assert_eq!(again.frames[1].timestamp_us, original.frames[10].timestamp_us);
}

#[test]
fn select_refuses_unknown_tracks() {
    let original = import(AAC);
    let err = Recorder::select(&original.catalogs[0], &["video0"], RecorderConfig::default()).unwrap_err();
    assert!(matches!(err, Error::UnknownTrack(ref t) if t == "video0"));
}
