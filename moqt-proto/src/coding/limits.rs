//! Configurable bounds on everything a peer can make us hold. Each one is checked against the
//! declared size *before* any buffer for it is allocated.

/// Bounds applied while decoding. The defaults follow moq-net where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest control message body, in bytes (default 64 KiB).
    pub max_message_size: u64,
    /// Largest frame payload, in bytes (default 32 MiB).
    pub max_frame_size: u64,
    /// Longest string field, in bytes (default 16 KiB).
    pub max_string_len: u64,
    /// Longest broadcast path, in bytes (default 4 KiB).
    pub max_path_len: usize,
    /// Most segments in a broadcast path (default 32).
    pub max_path_depth: usize,
    /// Most entries in a hop list (default 32).
    pub max_hops: u64,
    /// Most parameters in one SETUP (default 64).
    pub max_setup_params: u64,
    /// Longest GOAWAY URI, in bytes (default 8192).
    pub max_goaway_uri: u64,
    /// Reject varints that are not minimally encoded (default false: accept any form, as peers do).
    pub strict_varints: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_frame_size: 32 * 1024 * 1024,
            max_string_len: 16 * 1024,
            max_path_len: 4096,
            max_path_depth: 32,
            max_hops: 32,
            max_setup_params: 64,
            max_goaway_uri: 8192,
            strict_varints: false,
        }
    }
}
