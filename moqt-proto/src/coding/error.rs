//! The one error type of the wire layer. Variants carry only static data so that reporting an
//! error on the hot path never allocates.

/// Why a byte sequence is not a valid moq-lite message for the configured version and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A message body ended before all of its fields were read.
    #[error("message body ends before its last field")]
    Truncated,
    /// A message body had bytes left over after its last field.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// The stream ended (FIN) in the middle of a message or frame.
    #[error("stream ended in the middle of a message")]
    FinMidMessage,
    /// A varint did not use its shortest form and strict varints are configured.
    #[error("varint is not minimally encoded")]
    NonMinimalVarint,
    /// A control message is larger than the configured limit.
    #[error("control message of {0} bytes exceeds the limit")]
    MessageTooLarge(u64),
    /// A frame is larger than the configured limit.
    #[error("frame of {0} bytes exceeds the limit")]
    FrameTooLarge(u64),
    /// A string or byte string is longer than allowed.
    #[error("string of {0} bytes exceeds the limit")]
    StringTooLong(u64),
    /// A string is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A broadcast path is longer than allowed, in bytes.
    #[error("path of {0} bytes exceeds the limit")]
    PathTooLong(usize),
    /// A broadcast path has more segments than allowed.
    #[error("path has more segments than allowed")]
    PathTooDeep,
    /// A hop list has more entries than allowed.
    #[error("hop list of {0} entries exceeds the limit")]
    TooManyHops(u64),
    /// A hop list names the same non-zero hop twice (lite-06).
    #[error("hop list repeats a hop id")]
    DuplicateHop,
    /// SETUP carries more parameters than allowed.
    #[error("SETUP has {0} parameters, more than allowed")]
    TooManyParameters(u64),
    /// SETUP carries the same parameter twice.
    #[error("SETUP repeats parameter {0:#x}")]
    DuplicateParameter(u64),
    /// A numeric SETUP parameter has bytes after its varint.
    #[error("SETUP parameter {0:#x} has a malformed value")]
    InvalidParameter(u64),
    /// A stream type this version does not define.
    #[error("unknown stream type {0:#x}")]
    UnknownStreamType(u64),
    /// A typed message whose type is not defined where it appeared.
    #[error("unknown message type {0:#x}")]
    UnknownMessageType(u64),
    /// A field holds a value the protocol does not allow.
    #[error("invalid {0}")]
    InvalidValue(&'static str),
    /// Bytes arrived after the last message a stream direction may carry.
    #[error("unexpected bytes after the last message of this stream")]
    UnexpectedData,
    /// A frame timestamp delta took the absolute timestamp out of range.
    #[error("frame timestamp out of range")]
    TimestampOutOfRange,
}
