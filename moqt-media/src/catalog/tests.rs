use bytes::Bytes;
use serde_json::json;

use super::msf::{MsfCatalog, MsfVersion};
use super::*;

fn sample() -> Catalog {
    let mut video = VideoConfig::new("avc1.64001f");
    video.description = Some(Bytes::from_static(&[0x01, 0x64, 0x00, 0x1f]));
    video.coded_width = Some(1280);
    video.coded_height = Some(720);
    video.framerate = Some(30.0);
    video.bitrate = Some(6_000_000);
    let mut audio = AudioConfig::new("opus", 48_000, 2);
    audio.container = Container::Cmaf { init: Bytes::from_static(&[0, 1, 2]) };
    let mut catalog = Catalog::default();
    catalog.video.renditions.insert("video0".into(), video);
    catalog.audio.renditions.insert("audio0".into(), audio);
    catalog
}

#[test]
fn hang_json_shape() {
    let json: serde_json::Value = serde_json::from_slice(&sample().to_json().unwrap()).unwrap();
    assert_eq!(
        json,
        json!({
            "video": {"renditions": {"video0": {
                "codec": "avc1.64001f",
                "description": "0164001f",
                "codedWidth": 1280,
                "codedHeight": 720,
                "framerate": 30,
                "bitrate": 6000000,
                "container": {"kind": "legacy"}
            }}},
            "audio": {"renditions": {"audio0": {
                "codec": "opus",
                "sampleRate": 48000,
                "numberOfChannels": 2,
                "container": {"kind": "cmaf", "init": "AAEC"}
            }}}
        })
    );
}

#[test]
fn hang_round_trip_keeps_unknown_fields() {
    let text = r#"{
        "video": {"renditions": {"v": {"codec": "vp8", "label": "cam", "container": {"kind": "loc"}}},
                  "rotation": 90},
        "audio": {"renditions": {"a": {"codec": "opus", "sampleRate": 48000, "numberOfChannels": 1,
                   "container": {"kind": "future", "x": [1]}}}},
        "chat": {"track": "chat.md"}
    }"#;
    let catalog = Catalog::from_json(text.as_bytes()).unwrap();
    assert_eq!(catalog.video.renditions["v"].container, Container::Loc);
    assert_eq!(catalog.video.renditions["v"].extra["label"], "cam");
    assert_eq!(catalog.video.extra["rotation"], 90);
    assert_eq!(catalog.audio.renditions["a"].container.kind(), "future");
    assert!(catalog.extra.contains_key("chat"));
    let again = Catalog::from_json(&catalog.to_json().unwrap()).unwrap();
    assert_eq!(again, catalog);
}

#[test]
fn hang_defaults_and_refusals() {
    // No container member: legacy. Empty sections: left out when written.
    let c = Catalog::from_json(br#"{"video":{"renditions":{"v":{"codec":"av01.0.04M.08"}}}}"#).unwrap();
    assert_eq!(c.video.renditions["v"].container, Container::Legacy);
    assert_eq!(&Catalog::default().to_json().unwrap()[..], b"{}");
    // A known kind must be complete, a description must be hex.
    assert!(Catalog::from_json(br#"{"video":{"renditions":{"v":{"codec":"x","container":{"kind":"cmaf"}}}}}"#).is_err());
    assert!(Catalog::from_json(br#"{"video":{"renditions":{"v":{"codec":"x","description":"AQI="}}}}"#).is_err());
    assert!(Catalog::from_json(br#"{"audio":{"renditions":{"a":{"codec":"opus"}}}}"#).is_err());
}

#[test]
fn msf_draft01_shape_and_parse() {
    let msf = MsfCatalog::from_hang(&sample());
    let json: serde_json::Value = serde_json::from_slice(&msf.to_json(MsfVersion::Draft01).unwrap()).unwrap();
    assert_eq!(
        json,
        json!({
            "version": "draft-01",
            "tracks": [
                {"name": "video0", "packaging": "legacy", "isLive": true, "role": "video",
                 "codec": "avc1.64001f", "width": 1280, "height": 720, "framerate": 30,
                 "bitrate": 6000000, "renderGroup": 1, "initRef": "init0"},
                {"name": "audio0", "packaging": "cmaf", "isLive": true, "role": "audio",
                 "codec": "opus", "samplerate": 48000, "channelConfig": "2", "renderGroup": 1,
                 "initRef": "init1"}
            ],
            "initDataList": [
                {"id": "init0", "type": "inline", "data": "AWQAHw=="},
                {"id": "init1", "type": "inline", "data": "AAEC"}
            ]
        })
    );
    let parsed = MsfCatalog::from_json(&msf.to_json(MsfVersion::Draft01).unwrap()).unwrap();
    assert_eq!(parsed, msf);
}

#[test]
fn msf_draft00_shape_and_parse() {
    let msf = MsfCatalog::from_hang(&sample());
    let bytes = msf.to_json(MsfVersion::Draft00).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["tracks"][0]["initData"], "AWQAHw==");
    assert_eq!(json["tracks"][1]["initData"], "AAEC");
    assert!(json.get("initDataList").is_none());
    assert_eq!(MsfCatalog::from_json(&bytes).unwrap(), msf);
}

#[test]
fn msf_to_hang_restores_the_renditions() {
    let hang = sample();
    let back = MsfCatalog::from_hang(&hang).to_hang();
    let mut expected = hang.clone();
    // MSF has no optimizeForLatency/jitter and no description next to a CMAF init.
    expected.audio.renditions.get_mut("audio0").unwrap().description = None;
    assert_eq!(back, expected);
}

#[test]
fn msf_reading_is_lenient_per_track_and_strict_on_refs() {
    let text = br#"{"version": 1, "tracks": [
        {"name": "t", "packaging": "eventtimeline", "role": "video", "codec": "x"},
        {"name": "c", "packaging": "cmaf", "role": "video", "codec": "avc1.64001f"},
        {"name": "n", "packaging": "legacy", "role": "audio"},
        {"name": "a", "packaging": "legacy", "role": "audio", "codec": "opus", "channelConfig": "6"}
    ], "extra": true}"#;
    let msf = MsfCatalog::from_json(text).unwrap();
    assert_eq!(msf.extra["extra"], true);
    let hang = msf.to_hang();
    assert!(hang.video.renditions.is_empty(), "timeline and init-less cmaf tracks skipped");
    assert_eq!(hang.audio.renditions.keys().collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(hang.audio.renditions["a"].number_of_channels, 6);
    assert_eq!(hang.audio.renditions["a"].sample_rate, 48_000);
    let dangling = br#"{"version": "draft-01", "tracks": [{"name": "v", "packaging": "cmaf", "initRef": "x"}]}"#;
    assert!(MsfCatalog::from_json(dangling).is_err());
    assert!(MsfCatalog::from_json(br#"{"version": true, "tracks": []}"#).is_err());
    assert!(MsfCatalog::from_json(br#"{"tracks": []}"#).is_err(), "version is required");
}

#[test]
fn rendition_lookup() {
    let c = sample();
    assert!(matches!(c.rendition("video0"), Some(Rendition::Video(_))));
    assert!(matches!(c.rendition("audio0"), Some(Rendition::Audio(_))));
    assert!(c.rendition("catalog.json").is_none());
    let names: Vec<&str> = c.renditions().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["video0", "audio0"]);
}
