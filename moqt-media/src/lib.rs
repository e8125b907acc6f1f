//! # moqt-media
//!
//! The sans-IO media layer of moqt: it turns fragmented MP4 into MoQ broadcasts and back, with
//! no sockets, no clocks and no tasks. Bytes go in, catalogs and frames (or MP4 bytes) come out.
//!
//! - [`catalog`]: the hang catalog (`catalog.json`) and the MSF catalog (`catalog`).
//! - [`container`]: the per-frame packaging: legacy (varint timestamp + payload) and CMAF
//!   (`moof`+`mdat`), plus init segments.
//! - [`codec`]: WebCodecs codec strings and descriptions for H.264, H.265, AV1, VP9, Opus and
//!   AAC, from and to MP4 sample entries.
//! - [`import`]: [`Importer`], an incremental fragmented-MP4 reader that publishes.
//! - [`export`]: [`Recorder`], which writes a playable fragmented MP4 from a catalog and frames.
//!
//! The publishing model (track names, groups, what each frame holds) is described in
//! `docs/media.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalog;
pub mod codec;
pub mod container;
pub mod error;
pub mod export;
pub mod import;
mod mp4;

pub use catalog::{AudioConfig, Catalog, Container, VideoConfig};
pub use error::{Error, Result};
pub use export::{Recorder, RecorderConfig};
pub use import::{AudioGroups, ContainerKind, Frame, ImportConfig, ImportEvent, Importer};
