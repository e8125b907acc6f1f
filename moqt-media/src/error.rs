//! The one error type of the crate: every way an input (MP4 bytes, a MoQ frame, a catalog) can be
//! refused, plus the caller mistakes the API can detect. No input panics; each failure is one of
//! these variants.

/// Everything that can go wrong in the media layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An MP4 box did not decode (mp4-atom refused it).
    #[error("bad MP4 box {kind} at byte {offset}: {source}")]
    Mp4 {
        /// The box's four-character code.
        kind: String,
        /// Where the box starts in the input stream (or in the frame).
        offset: u64,
        /// What mp4-atom reported.
        source: mp4_atom::Error,
    },

    /// An MP4 box could not be encoded (a value out of range for its field).
    #[error("cannot encode MP4 box: {0}")]
    Mp4Encode(mp4_atom::Error),

    /// A box header gave a size that is smaller than the header itself.
    #[error("invalid size {size} for box {kind} at byte {offset}")]
    InvalidBoxSize {
        /// The box's four-character code.
        kind: String,
        /// The declared size in bytes.
        size: u64,
        /// Where the box starts.
        offset: u64,
    },

    /// A box is larger than the configured limit.
    #[error("box {kind} at byte {offset} is {size} bytes, more than the limit of {max}")]
    BoxTooLarge {
        /// The box's four-character code.
        kind: String,
        /// The declared size in bytes.
        size: u64,
        /// The limit.
        max: u64,
        /// Where the box starts.
        offset: u64,
    },

    /// A box declared "extends to the end of the file" (size 0), which a live stream cannot frame.
    #[error("box {kind} at byte {offset} has no size (size 0): not supported in a stream")]
    UnsizedBox {
        /// The box's four-character code.
        kind: String,
        /// Where the box starts.
        offset: u64,
    },

    /// A box that needs the init segment arrived before the `moov`.
    #[error("{kind} at byte {offset} before the init segment (moov)")]
    BeforeInit {
        /// The box's four-character code.
        kind: String,
        /// Where the box starts.
        offset: u64,
    },

    /// A `moof` was not followed by its `mdat`.
    #[error("moof at byte {offset} is not followed by an mdat")]
    MissingMdat {
        /// Where the `moof` starts.
        offset: u64,
    },

    /// The init segment has no track this crate can carry.
    #[error("the init segment has no supported audio or video track")]
    NoTracks,

    /// A track's codec is not one of H.264, H.265, AV1, VP9, Opus or AAC.
    #[error("track {track_id}: unsupported codec {codec}")]
    UnsupportedCodec {
        /// The MP4 track id (0 when the codec came from a catalog).
        track_id: u32,
        /// The sample entry or codec string.
        codec: String,
    },

    /// A codec configuration record is malformed or inconsistent.
    #[error("invalid codec configuration: {0}")]
    InvalidCodecConfig(String),

    /// A track fragment names a track the init segment does not declare.
    #[error("fragment for unknown track id {0}")]
    UnknownTrackId(u32),

    /// A sample's bytes lie outside the `mdat` that follows its `moof`.
    #[error("track {track_id}: sample {index} lies outside its mdat")]
    SampleOutOfBounds {
        /// The MP4 track id.
        track_id: u32,
        /// The sample's index in its fragment.
        index: usize,
    },

    /// A sample of zero bytes (nothing a decoder could take).
    #[error("track {track_id}: sample {index} is empty")]
    EmptySample {
        /// The MP4 track id.
        track_id: u32,
        /// The sample's index in its fragment.
        index: usize,
    },

    /// A fragment declares more samples than the limit.
    #[error("fragment declares {count} samples, more than the limit of {max}")]
    TooManySamples {
        /// The declared count.
        count: u64,
        /// The limit.
        max: u64,
    },

    /// A timestamp does not fit the types on the way (decode time + offsets overflow).
    #[error("timestamp out of range")]
    TimestampOverflow,

    /// The input ended in the middle of a box.
    #[error("input ended inside a box: {buffered} bytes left over")]
    Truncated {
        /// Bytes that never formed a complete box.
        buffered: usize,
    },

    /// The input ended before a complete init segment.
    #[error("input ended before the init segment (moov)")]
    NoInit,

    /// The importer or recorder already failed or finished; it takes no more input.
    #[error("no more input is accepted after an error or finish()")]
    Closed,

    /// A legacy frame is too short to hold its timestamp varint.
    #[error("legacy frame: truncated timestamp")]
    LegacyTruncated,

    /// A CMAF frame did not hold exactly the expected moof+mdat.
    #[error("CMAF frame: {0}")]
    CmafFrame(String),

    /// Catalog JSON that does not parse or does not match the schema.
    #[error("catalog JSON: {0}")]
    CatalogJson(#[from] serde_json::Error),

    /// A catalog that parses but says something this crate cannot use.
    #[error("catalog: {0}")]
    Catalog(String),

    /// The caller named a track the catalog (or recorder) does not have.
    #[error("unknown track {0:?}")]
    UnknownTrack(String),
}

impl Error {
    /// Wraps an mp4-atom decode error with the box kind and position it refers to.
    pub(crate) fn mp4(kind: impl std::fmt::Display, offset: u64, source: mp4_atom::Error) -> Self {
        Error::Mp4 { kind: kind.to_string(), offset, source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
