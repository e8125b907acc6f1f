//! Shared helpers of moqt-media's integration tests: the committed fixtures and a driver that
//! pushes a buffer through an [`Importer`] in chosen chunk sizes.
#![allow(dead_code)]

use bytes::Bytes;
use moqt_media::{Catalog, Frame, ImportConfig, ImportEvent, Importer};

pub const H264_OPUS: &[u8] = include_bytes!("../fixtures/h264_opus.mp4");
pub const H265: &[u8] = include_bytes!("../fixtures/h265.mp4");
pub const AV1: &[u8] = include_bytes!("../fixtures/av1.mp4");
pub const VP9: &[u8] = include_bytes!("../fixtures/vp9.mp4");
pub const AAC: &[u8] = include_bytes!("../fixtures/aac.mp4");

/// Everything one import produced.
#[derive(Debug, Default)]
pub struct Imported {
    pub catalogs: Vec<Catalog>,
    pub frames: Vec<Frame>,
    pub error: Option<moqt_media::Error>,
}

impl Imported {
    pub fn track(&self, name: &str) -> Vec<&Frame> {
        self.frames.iter().filter(|f| &*f.track == name).collect()
    }
}

fn drain(importer: &mut Importer, out: &mut Imported) {
    while let Some(event) = importer.poll() {
        match event {
            ImportEvent::Catalog(c) => out.catalogs.push(c),
            ImportEvent::Frame(f) => out.frames.push(f),
        }
    }
}

/// Imports `data` pushed in chunks whose sizes cycle through `chunks` (empty: all at once), then
/// finishes. Stops at the first error, keeping what came before it.
pub fn import_chunked(data: &[u8], chunks: &[usize], config: ImportConfig) -> Imported {
    let mut importer = Importer::new(config);
    let mut out = Imported::default();
    let data = Bytes::copy_from_slice(data);
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let n = if chunks.is_empty() { data.len() } else { chunks[i % chunks.len()].max(1) };
        let end = (pos + n).min(data.len());
        let result = importer.push(data.slice(pos..end));
        drain(&mut importer, &mut out);
        if let Err(e) = result {
            out.error = Some(e);
            return out;
        }
        pos = end;
        i += 1;
    }
    if let Err(e) = importer.finish() {
        out.error = Some(e);
    }
    drain(&mut importer, &mut out);
    out
}

/// Imports `data` in one piece with the default settings.
pub fn import(data: &[u8]) -> Imported {
    import_chunked(data, &[], ImportConfig::default())
}

/// The raw codec payload of a legacy frame.
pub fn legacy_payload(frame: &Frame) -> Bytes {
    moqt_media::container::legacy::decode(&frame.payload).expect("legacy frame").1
}
