//! Containers: how one media sample becomes the payload of one MoQ frame, and back.
//!
//! - [`legacy`]: a QUIC varint timestamp in microseconds, then the codec payload.
//! - [`cmaf`]: one `moof`+`mdat` fragment per frame, decodable with the track's init segment
//!   ([`init`] builds and reads those).
//!
//! [`Sample`] is the unit both sides share: one coded frame with its MP4 timing.

pub mod cmaf;
pub mod init;
pub mod legacy;

use bytes::Bytes;

/// The flags of a sync sample (`sample_depends_on` = 2: depends on no other sample).
pub const SYNC_FLAGS: u32 = 0x0200_0000;
/// The flags of a non-sync sample (`sample_depends_on` = 1, `sample_is_non_sync_sample`).
pub const NON_SYNC_FLAGS: u32 = 0x0101_0000;
/// The `sample_is_non_sync_sample` bit of MP4 sample flags.
pub const NON_SYNC_BIT: u32 = 0x0001_0000;

/// One coded frame with its timing in the track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time.
    pub dts: u64,
    /// Composition offset: presentation time minus decode time.
    pub cts: i32,
    /// Decode duration.
    pub duration: u32,
    /// A sync sample (keyframe); every audio sample is one.
    pub keyframe: bool,
    /// The codec payload.
    pub data: Bytes,
}

impl Sample {
    /// Presentation time in the track's timescale (negative only for a malformed offset).
    pub fn pts(&self) -> i128 {
        i128::from(self.dts) + i128::from(self.cts)
    }
}

/// Converts a time in `timescale` units to microseconds, rounding to nearest; negative times
/// become 0 and times beyond `u64` saturate.
pub fn to_micros(ticks: i128, timescale: u32) -> u64 {
    if ticks <= 0 || timescale == 0 {
        return 0;
    }
    let ts = i128::from(timescale);
    let us = (ticks * 1_000_000 + ts / 2) / ts;
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// Converts microseconds to `timescale` units, rounding to nearest.
pub fn from_micros(us: u64, timescale: u32) -> u64 {
    let v = (u128::from(us) * u128::from(timescale) + 500_000) / 1_000_000;
    u64::try_from(v).unwrap_or(u64::MAX)
}
