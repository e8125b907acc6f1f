//! The `media_import` target: moqt-media's fragmented-MP4 importer (and the recorder behind
//! it) on arbitrary input. `moqt-media/tests/fuzz_corpus.rs` includes this file to replay the
//! corpus under `cargo test`.
//!
//! Input: `[cfg, chunk, mp4 bytes…]`. `cfg` bit 0 selects the CMAF container (else legacy),
//! bit 1 the audio group policy (100 ms groups, else one per frame), bit 2 a small box-size
//! limit (64 KiB); `chunk` is the push size (0 = everything at once).
//!
//! Checks: nothing panics; pushing in chunks gives exactly the events and the error of one
//! push; nothing comes out after an error; every frame names a track of the current catalog
//! and decodes in its container to one sample at the frame's timestamp; a clean import
//! recorded with `Recorder` and imported again gives the same frame count per track.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use moqt_media::container::cmaf::decode_fragment;
use moqt_media::container::init::parse_init;
use moqt_media::container::{legacy, to_micros};
use moqt_media::{
    AudioGroups, Catalog, Container, ContainerKind, Frame, ImportConfig, ImportEvent, Importer, Recorder,
};

/// Everything one run produced.
#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<ImportEvent>,
    error: Option<String>,
}

fn run(data: &[u8], chunk: usize, config: ImportConfig) -> Run {
    let mut importer = Importer::new(config);
    let mut events = Vec::new();
    let input = Bytes::copy_from_slice(data);
    let step = if chunk == 0 { input.len().max(1) } else { chunk };
    let mut error = None;
    let mut pos = 0;
    while pos < input.len() {
        let end = (pos + step).min(input.len());
        let result = importer.push(input.slice(pos..end));
        while let Some(e) = importer.poll() {
            events.push(e);
        }
        if let Err(e) = result {
            error = Some(e.to_string());
            assert!(importer.push(Bytes::from_static(b"x")).is_err(), "input accepted after an error");
            assert!(importer.poll().is_none(), "events after an error");
            break;
        }
        pos = end;
    }
    if error.is_none() {
        if let Err(e) = importer.finish() {
            error = Some(e.to_string());
        }
        while let Some(e) = importer.poll() {
            events.push(e);
        }
    }
    Run { events, error }
}

/// Checks one frame against the catalog in force when it came out.
fn check_frame(catalog: &Catalog, frame: &Frame) {
    let rendition = catalog.rendition(&frame.track).expect("frame of a track the catalog lacks");
    match rendition.container() {
        Container::Legacy => {
            let (ts, _) = legacy::decode(&frame.payload).expect("legacy frame does not decode");
            assert_eq!(ts, frame.timestamp_us);
        }
        Container::Cmaf { init } => {
            let (_, tracks) = parse_init(init).expect("catalog init segment does not parse");
            let track = &tracks[0];
            // The importer always writes a tfdt, so the decode time to continue from is unused.
            let samples = decode_fragment(&frame.payload, track.track_id(), track.defaults(0))
                .expect("cmaf frame does not decode");
            assert_eq!(samples.len(), 1);
            assert_eq!(to_micros(samples[0].pts(), track.timescale()), frame.timestamp_us);
            assert_eq!(samples[0].keyframe, frame.keyframe);
        }
        other => panic!("importer wrote container {}", other.kind()),
    }
}

/// Records a clean import and imports the recording: same frames per track.
fn check_recording(catalog: &Catalog, frames: &[&Frame]) {
    let Ok(mut recorder) = Recorder::new(catalog) else { return };
    for f in frames {
        recorder.frame(&f.track, f.group_start, f.payload.clone()).expect("recorder refused an imported frame");
    }
    recorder.finish().expect("recorder finish");
    let mut file = BytesMut::new();
    while let Some(piece) = recorder.poll_output() {
        file.extend_from_slice(&piece);
    }
    let again = run(&file, 0, ImportConfig::default());
    assert_eq!(again.error, None, "a recording does not import");
    let count = |events: &mut dyn Iterator<Item = &Frame>| {
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for f in events {
            *per.entry(f.track.to_string()).or_default() += 1;
        }
        per
    };
    let mut again_frames = again.events.iter().filter_map(|e| match e {
        ImportEvent::Frame(f) => Some(f),
        _ => None,
    });
    assert_eq!(count(&mut frames.iter().copied()), count(&mut again_frames), "recording lost frames");
}

/// Runs one input; returns whether the import finished without an error.
pub fn media_import(data: &[u8]) -> bool {
    let [cfg, chunk, rest @ ..] = data else { return false };
    let config = ImportConfig {
        container: if cfg & 1 != 0 { ContainerKind::Cmaf } else { ContainerKind::Legacy },
        audio_groups: if cfg & 2 != 0 { AudioGroups::Duration(100_000) } else { AudioGroups::PerFrame },
        max_box_size: if cfg & 4 != 0 { 64 << 10 } else { 64 << 20 },
    };
    let whole = run(rest, 0, config);
    if *chunk != 0 {
        assert_eq!(run(rest, usize::from(*chunk), config), whole, "chunked import differs");
    }
    let mut catalog: Option<&Catalog> = None;
    let mut segments: Vec<(&Catalog, Vec<&Frame>)> = Vec::new();
    for event in &whole.events {
        match event {
            ImportEvent::Catalog(c) => {
                catalog = Some(c);
                segments.push((c, Vec::new()));
            }
            ImportEvent::Frame(f) => {
                let c = catalog.expect("frame before any catalog");
                check_frame(c, f);
                if let Some((_, frames)) = segments.last_mut() {
                    frames.push(f);
                }
            }
        }
    }
    if whole.error.is_none() {
        for (c, frames) in &segments {
            check_recording(c, frames);
        }
    }
    whole.error.is_none()
}
