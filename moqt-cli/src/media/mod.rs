//! `moqt pub --media` and `moqt sub --media`: real audio and video.
//!
//! This module owns the media flags of both commands and the pieces they share; the work is in
//! [`publish`] (fragmented MP4 in, a hang or MSF broadcast out, through `moqt-media`'s
//! `Importer`) and [`record`] (a broadcast in, a playable fragmented MP4 out, through its
//! `Recorder`). The broadcast layout is described in `docs/media.md`.

pub mod publish;
pub mod record;
mod reorder;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use moqt_media::catalog::msf::MsfVersion;
use moqt_media::catalog::{HANG_TRACK, MSF_TRACK};

/// The catalog formats a broadcast can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatalogFormat {
    /// moq-dev's hang catalog on track `catalog.json` (what `<moq-watch>` reads for `NAME.hang`).
    Hang,
    /// The MoQ Streaming Format catalog (draft-ietf-moq-msf) on track `catalog`.
    Msf,
}

impl CatalogFormat {
    /// The catalog track name.
    pub fn track(self) -> &'static str {
        match self {
            CatalogFormat::Hang => HANG_TRACK,
            CatalogFormat::Msf => MSF_TRACK,
        }
    }

    /// The broadcast-name suffix players use to pick this format.
    pub fn suffix(self) -> &'static str {
        match self {
            CatalogFormat::Hang => ".hang",
            CatalogFormat::Msf => ".msf",
        }
    }

    /// The format a player picks for a broadcast name: `….msf` is MSF, anything else hang.
    pub fn for_name(name: &str) -> Self {
        if name.ends_with(".msf") {
            CatalogFormat::Msf
        } else {
            CatalogFormat::Hang
        }
    }
}

/// How each frame of a rendition is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContainerArg {
    /// A varint timestamp (µs) then the codec payload: what `<moq-watch>` 0.4 and
    /// `<moq-publish>` use.
    Legacy,
    /// One CMAF fragment (moof+mdat) per frame, the init segment in the catalog.
    Cmaf,
}

/// The MSF draft whose JSON shape is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MsfDraft {
    /// draft-ietf-moq-msf-00: `"version": 1`, inline `initData` (gomoqt's msf package).
    #[value(name = "draft-00")]
    Draft00,
    /// draft-ietf-moq-msf-01: `"version": "draft-01"`, `initDataList` (moq-dev's moq-msf, @moq/msf).
    #[value(name = "draft-01")]
    Draft01,
}

impl From<MsfDraft> for MsfVersion {
    fn from(d: MsfDraft) -> Self {
        match d {
            MsfDraft::Draft00 => MsfVersion::Draft00,
            MsfDraft::Draft01 => MsfVersion::Draft01,
        }
    }
}

/// `moqt pub` media flags.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Media (fragmented MP4 in, a hang or MSF broadcast out)")]
pub struct MediaPubArgs {
    /// Publish fragmented MP4 (CMAF, e.g. ffmpeg `-f mp4 -movflags cmaf+frag_keyframe+empty_moov`)
    /// from FILE, or from stdin with `-` or no value.
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-")]
    pub media: Option<String>,
    /// Replay FILE from the start when it ends, the timeline continuing (paced by its timestamps).
    #[arg(long = "loop", requires = "media")]
    pub loop_file: bool,
    /// Frame packaging [default: legacy, what <moq-watch> 0.4 plays best].
    #[arg(long, value_enum, requires = "media")]
    pub container: Option<ContainerArg>,
    /// Catalog format(s), comma-separated: hang (track catalog.json) and/or msf (track catalog,
    /// draft-ietf-moq-msf-00 or -01) [default: hang].
    #[arg(long, value_enum, value_delimiter = ',', requires = "media")]
    pub catalog: Vec<CatalogFormat>,
    /// The MSF draft to write [default: draft-01].
    #[arg(long, value_enum, requires = "media")]
    pub msf_draft: Option<MsfDraft>,
    /// Send frames at the pace of their timestamps also from stdin (a file always is paced).
    #[arg(long, requires = "media")]
    pub pace: bool,
    /// The catalog's `jitter` (ms) for every rendition [default: from stdin, the first
    /// fragment's duration (frames come a fragment at a time); from a paced file, none].
    #[arg(long, value_name = "MS", requires = "media")]
    pub jitter: Option<u64>,
}

/// `moqt sub` media flags.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Media (a hang or MSF broadcast in, fragmented MP4 out)")]
pub struct MediaSubArgs {
    /// Record the broadcast's audio and video into a fragmented MP4 FILE, or to stdout with `-`
    /// or no value (`| ffplay -`).
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-")]
    pub media: Option<String>,
    /// The catalog to read [default: msf for a name ending in .msf, else hang].
    #[arg(long = "catalog", value_enum, requires = "media")]
    pub catalog_format: Option<CatalogFormat>,
    /// Stop recording this many seconds after the first frame (Ctrl-C also ends the file cleanly).
    #[arg(long, value_name = "SECS", requires = "media")]
    pub duration: Option<f64>,
}

/// What the input reader thread sends.
#[derive(Debug)]
pub enum Input {
    /// The next bytes.
    Data(Bytes),
    /// One pass over the input ended after this many bytes (with `--loop` another follows).
    End { bytes: u64 },
    /// Reading failed.
    Failed(std::io::Error),
}

/// Where media bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file, re-read from the start on every pass when looping.
    File(PathBuf),
}

impl Source {
    /// `-` is stdin, anything else a file path.
    pub fn parse(arg: &str) -> Self {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    /// A printable name.
    pub fn describe(&self) -> String {
        match self {
            Source::Stdin => "stdin".into(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// Reads `source` on its own thread in chunks of up to 64 KiB (a pipe's bytes go on as soon as
/// they arrive), once or, with `repeat`, over and over. The bounded channel holds the reader
/// back while the publisher paces.
pub fn spawn_reader(source: Source, repeat: bool) -> Result<tokio::sync::mpsc::Receiver<Input>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    // Open the file here, so that a missing file is reported at once.
    let first: Box<dyn Read + Send> = match &source {
        Source::Stdin => Box::new(std::io::stdin()),
        Source::File(path) => {
            Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
    };
    std::thread::Builder::new().name("media-input".into()).spawn(move || {
        let mut reader = first;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut bytes = 0u64;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        bytes += n as u64;
                        if tx.blocking_send(Input::Data(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Input::Failed(e));
                        return;
                    }
                }
            }
            if tx.blocking_send(Input::End { bytes }).is_err() || !repeat || bytes == 0 {
                return;
            }
            let Source::File(path) = &source else { return };
            reader = match std::fs::File::open(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    let _ = tx.blocking_send(Input::Failed(e));
                    return;
                }
            };
        }
    })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name_suffix() {
        assert_eq!(CatalogFormat::for_name("room/cam.hang"), CatalogFormat::Hang);
        assert_eq!(CatalogFormat::for_name("cam.msf"), CatalogFormat::Msf);
        assert_eq!(CatalogFormat::for_name("cam"), CatalogFormat::Hang);
        assert_eq!(CatalogFormat::Msf.track(), "catalog");
        assert_eq!(CatalogFormat::Hang.track(), "catalog.json");
    }

    #[tokio::test]
    async fn reader_loops_a_file_pass_by_pass() {
        let dir = std::env::temp_dir().join(format!("moqt-media-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("input.bin");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut rx = spawn_reader(Source::File(path.clone()), true).unwrap();
        let mut passes = 0;
        let mut data = Vec::new();
        while passes < 3 {
            match rx.recv().await.unwrap() {
                Input::Data(b) => data.extend_from_slice(&b),
                Input::End { bytes } => {
                    assert_eq!(bytes, 10);
                    passes += 1;
                }
                Input::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(data, b"012345678901234567890123456789");
        drop(rx);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_reported_at_once() {
        let err = spawn_reader(Source::File("/nonexistent/x.mp4".into()), false).unwrap_err();
        assert!(format!("{err:#}").contains("cannot open /nonexistent/x.mp4"), "{err:#}");
    }
}
