//! Connection configuration: our receive limits (advertised as transport parameters), timers,
//! and the bounds on what the connection buffers for sending.

use std::time::Duration;

use crate::error::ConfigError;
use crate::params::{TransportParams, DEFAULT_MAX_RECORD_SIZE};
use crate::stream_id::MAX_STREAM_COUNT;
use crate::varint;

/// How records are delimited on the underlying transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One WebSocket binary message per record (or per frame on qmux-00 and legacy).
    WebSocket,
    /// A byte stream (TCP/TLS): each record is prefixed with its size. qmux-01 and later only.
    ByteStream,
}

/// Connection settings. The defaults match moq-dev's qmux peers (`@moq/qmux`, `qmux` 0.5).
#[derive(Debug, Clone)]
pub struct Config {
    /// How records are delimited.
    pub framing: Framing,
    /// Concurrent bidi streams the peer may have open (`initial_max_streams_bidi`, then kept
    /// topped up with MAX_STREAMS as streams end). Default 100.
    pub max_streams_bidi: u64,
    /// Concurrent uni streams the peer may have open. Default 100.
    pub max_streams_uni: u64,
    /// Connection receive window in bytes (`initial_max_data`). Default 1 MiB.
    pub max_data: u64,
    /// Receive window of bidi streams we open (`initial_max_stream_data_bidi_local`). Default 256 KiB.
    pub max_stream_data_bidi_local: u64,
    /// Receive window of bidi streams the peer opens (`..._bidi_remote`). Default 256 KiB.
    pub max_stream_data_bidi_remote: u64,
    /// Receive window of uni streams (`initial_max_stream_data_uni`). Default 256 KiB.
    pub max_stream_data_uni: u64,
    /// Idle timeout we advertise (`max_idle_timeout`); the smaller non-zero of both sides
    /// applies, qmux-01 and later only. `Duration::ZERO` = none from our side. Default 30 s.
    pub idle_timeout: Duration,
    /// Send a QX_PING when nothing was sent for this long (qmux-01+). `None` = a third of the
    /// negotiated idle timeout, or never without one. Default `None`.
    pub keep_alive: Option<Duration>,
    /// Close if the peer's QX_TRANSPORT_PARAMETERS have not arrived after this long (QMux
    /// versions). Default 10 s.
    pub handshake_timeout: Duration,
    /// Largest record we accept (`max_record_size`, at least 16382). Default 16382.
    pub max_record_size: u64,
    /// Largest record we build, further capped by the peer's `max_record_size`. Default 16382.
    pub send_record_size: u64,
    /// Largest DATAGRAM frame we accept (`max_datagram_frame_size`, qmux-01+); 0 = no
    /// datagrams. Default 16382.
    pub max_datagram_frame_size: u64,
    /// Bytes of stream data accepted by `write` but not yet sent, over all streams. Default 4 MiB.
    pub send_buffer: u64,
    /// Outgoing datagrams queued at most; the oldest is dropped beyond. Default 64.
    pub datagram_send_queue: usize,
    /// Incoming datagrams queued at most for `recv_datagram`; the oldest is dropped beyond.
    /// Default 1024.
    pub datagram_recv_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            framing: Framing::WebSocket,
            max_streams_bidi: 100,
            max_streams_uni: 100,
            max_data: 1 << 20,
            max_stream_data_bidi_local: 256 << 10,
            max_stream_data_bidi_remote: 256 << 10,
            max_stream_data_uni: 256 << 10,
            idle_timeout: Duration::from_secs(30),
            keep_alive: None,
            handshake_timeout: Duration::from_secs(10),
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            send_record_size: DEFAULT_MAX_RECORD_SIZE,
            max_datagram_frame_size: DEFAULT_MAX_RECORD_SIZE,
            send_buffer: 4 << 20,
            datagram_send_queue: 64,
            datagram_recv_queue: 1024,
        }
    }
}

impl Config {
    /// Checks the ranges: windows and counts fit their wire fields, record sizes are at least
    /// 16382.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let windows = [
            self.max_data,
            self.max_stream_data_bidi_local,
            self.max_stream_data_bidi_remote,
            self.max_stream_data_uni,
            self.max_record_size,
            self.max_datagram_frame_size,
        ];
        if windows.iter().any(|w| *w > varint::MAX) {
            return Err(ConfigError::Invalid("a window or size is 2^62 or more"));
        }
        if self.max_streams_bidi > MAX_STREAM_COUNT || self.max_streams_uni > MAX_STREAM_COUNT {
            return Err(ConfigError::Invalid("a stream count is above 2^60"));
        }
        if self.max_record_size < DEFAULT_MAX_RECORD_SIZE || self.send_record_size < DEFAULT_MAX_RECORD_SIZE {
            return Err(ConfigError::Invalid("record sizes must be at least 16382"));
        }
        if self.idle_timeout.as_millis() > u128::from(varint::MAX) {
            return Err(ConfigError::Invalid("idle timeout too large"));
        }
        Ok(())
    }

    /// The transport parameters we send for `version`: datagrams only with records,
    /// `reset_stream_at` only on qmux-02 (as moq-dev's peers do).
    pub(crate) fn transport_params(&self, version: crate::Version) -> TransportParams {
        TransportParams {
            max_idle_timeout: self.idle_timeout.as_millis() as u64,
            initial_max_data: self.max_data,
            initial_max_stream_data_bidi_local: self.max_stream_data_bidi_local,
            initial_max_stream_data_bidi_remote: self.max_stream_data_bidi_remote,
            initial_max_stream_data_uni: self.max_stream_data_uni,
            initial_max_streams_bidi: self.max_streams_bidi,
            initial_max_streams_uni: self.max_streams_uni,
            max_datagram_frame_size: if version.has_records() {
                self.max_datagram_frame_size.min(self.max_record_size)
            } else {
                0
            },
            max_record_size: self.max_record_size,
            reset_stream_at: version == crate::Version::Qmux02,
        }
    }
}
