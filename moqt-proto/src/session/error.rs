//! The error-code registry and the errors returned to callers.
//!
//! Two disjoint code spaces, as moq-net 0.3 uses them on every lite version: codes that close a
//! session, and codes that reset or stop one stream. Codes from a peer are reported as received;
//! [`describe_stream_code`] and [`describe_session_code`] name the ones we know, including
//! gomoqt's. Application codes are `64 + n`.

/// Session close codes.
pub mod session_code {
    /// Clean end.
    pub const NO_ERROR: u64 = 0x0;
    /// Internal error, or the transport failed.
    pub const INTERNAL: u64 = 0x1;
    /// Not authorised.
    pub const UNAUTHORIZED: u64 = 0x2;
    /// The peer broke the protocol (decode errors, duplicates, unexpected streams).
    pub const PROTOCOL_VIOLATION: u64 = 0x3;
    /// Too many SETUP parameters or other key-value formatting errors.
    pub const KEY_VALUE_FORMATTING: u64 = 0x6;
    /// The peer did not leave after GOAWAY in time.
    pub const GOAWAY_TIMEOUT: u64 = 0x10;
    /// A timeout.
    pub const TIMEOUT: u64 = 0x11;
    /// Unsupported version.
    pub const VERSION: u64 = 0x15;
    /// A session-wide limit was exceeded (too many streams, subscriptions…).
    pub const LIMIT_EXCEEDED: u64 = 0x16;
}

/// Stream reset and STOP_SENDING codes.
pub mod stream_code {
    /// Internal error; also an unexpected stream type.
    pub const INTERNAL: u64 = 0x0;
    /// Normal cancel (unsubscribe, dropped writer).
    pub const CANCEL: u64 = 0x1;
    /// Delivery timeout.
    pub const DELIVERY_TIMEOUT: u64 = 0x2;
    /// A session-scoped reason (unauthorised, protocol violation, version).
    pub const SESSION: u64 = 0x3;
    /// Not authorised: what moq-net resets a refused request with (its session-scoped code,
    /// the same number as [`SESSION`]; the stream registry has no code of its own for it).
    pub const UNAUTHORIZED: u64 = SESSION;
    /// The session is going away.
    pub const GOING_AWAY: u64 = 0x4;
    /// The reader fell too far behind (queue budget exceeded).
    pub const TOO_FAR_BEHIND: u64 = 0x5;
    /// Our decoder rejected the peer's bytes.
    pub const MALFORMED: u64 = 0x12;
    /// A limit on this kind of request was reached.
    pub const LIMIT_EXCEEDED: u64 = 0x13;
    /// A control timeout.
    pub const CONTROL_TIMEOUT: u64 = 0x31;
    /// The group is too large.
    pub const GROUP_TOO_LARGE: u64 = 0x32;
    /// Not found.
    pub const NOT_FOUND: u64 = 0x33;
    /// Old: the group expired (older than the subscriber's max latency).
    pub const EXPIRED: u64 = 0x34;
    /// Evicted under cache pressure.
    pub const EVICTED: u64 = 0x35;
    /// No route to the broadcast.
    pub const UNROUTABLE: u64 = 0x36;
    /// A frame shorter than its size.
    pub const WRONG_SIZE: u64 = 0x37;
    /// A frame larger than allowed.
    pub const FRAME_TOO_LARGE: u64 = 0x38;
    /// Frame timestamps do not fit.
    pub const TIMESTAMP_MISMATCH: u64 = 0x39;
    /// An unknown subscribe id on a group stream.
    pub const UNKNOWN_SUBSCRIPTION: u64 = 0x1;
}

/// The first application code: application code `n` travels as `APPLICATION_BASE + n`.
pub const APPLICATION_BASE: u64 = 64;

/// A human name for a stream code, understanding both moq-net's and gomoqt's numbers.
pub fn describe_stream_code(code: u64) -> &'static str {
    match code {
        0x0 => "internal (gomoqt: internal)",
        0x1 => "cancel",
        0x2 => "delivery timeout (gomoqt group: out of range)",
        0x3 => "session-scoped, e.g. unauthorized (gomoqt subscribe: not found; group: expired)",
        0x4 => "going away (gomoqt: subscribe canceled / unauthorized)",
        0x5 => "too far behind (gomoqt: timeout / publish aborted)",
        0x6 => "gomoqt: closed session",
        0x7 => "gomoqt: invalid subscribe id",
        0x12 => "malformed",
        0x13 => "limit exceeded",
        0x31 => "control timeout",
        0x32 => "group too large",
        0x33 => "not found",
        0x34 => "expired",
        0x35 => "evicted",
        0x36 => "unroutable",
        0x37 => "wrong size",
        0x38 => "frame too large",
        0x39 => "timestamp mismatch",
        c if c >= APPLICATION_BASE && c < APPLICATION_BASE + (1 << 16) => "application",
        _ => "unknown",
    }
}

/// A human name for a session close code, understanding both moq-net's and gomoqt's numbers.
pub fn describe_session_code(code: u64) -> &'static str {
    match code {
        0x0 => "no error",
        0x1 => "internal",
        0x2 => "unauthorized",
        0x3 => "protocol violation",
        0x5 => "gomoqt: parameter length mismatch",
        0x6 => "key-value formatting (gomoqt: too many subscribe)",
        0x10 => "goaway timeout",
        0x11 => "timeout",
        0x12 => "gomoqt: unsupported version",
        0x13 => "gomoqt: setup failed",
        0x15 => "version",
        0x16 => "limit exceeded",
        c if c >= APPLICATION_BASE && c < APPLICATION_BASE + (1 << 16) => "application",
        _ => "unknown",
    }
}

/// Why an application call could not be carried out. Peer misbehaviour is never reported this
/// way: it becomes a reset or close command plus an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The peer sent GOAWAY: no new requests may be opened.
    #[error("session is going away")]
    GoingAway,
    /// No such stream, subscription or request (or it already ended).
    #[error("unknown handle")]
    UnknownHandle,
    /// The handle exists but this call does not fit its state.
    #[error("invalid state for this call")]
    InvalidState,
    /// The negotiated version lacks this feature.
    #[error("not supported by the negotiated version")]
    Unsupported,
    /// A configured limit was reached.
    #[error("limit reached")]
    LimitExceeded,
    /// The group was dropped (expired or over budget); stop writing to it.
    #[error("group dropped")]
    GroupDropped,
    /// The value cannot be encoded (e.g. a datagram that is too large).
    #[error("invalid argument")]
    InvalidArgument,
}
