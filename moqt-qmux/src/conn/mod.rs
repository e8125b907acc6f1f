//! The [`Connection`] state machine: one QMux connection, driven by records in, records out,
//! application stream calls and time passed in.
//!
//! It owns: stream ids and states, both directions of flow control (the peer's credit for what
//! we send, our credit for what it sends), MAX_STREAMS replenishment, datagram queues, QX_PING
//! and idle/handshake timers, and the close handshake. Submodules split it along those lines:
//! `streams` (application stream calls and per-stream state), `input` (records and frames
//! from the peer), `output` (building records), `timers`.

mod input;
mod output;
pub use output::MAX_STREAM_PAYLOAD;
mod streams;
mod timers;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::config::{Config, Framing};
use crate::error::{ConfigError, ConnectionError, TransportError};
use crate::frame::Frame;
use crate::params::TransportParams;
use crate::record::RecordReader;
use crate::stream_id::{Dir, Role, StreamId, MAX_STREAM_COUNT};
use crate::varint;
use crate::Version;

use streams::Stream;

/// How far past its limits a legacy peer may go before it is an error: the legacy format
/// cannot announce limits, so they are only a signal to pause reading
/// ([`Connection::receive_paused`]), enforced at twice their value.
fn legacy_headroom(version: Version) -> u64 {
    if version.is_qmux() {
        1
    } else {
        2
    }
}

/// Something the application should react to. Pulled with [`Connection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's transport parameters arrived (immediately for the legacy format): streams
    /// can be opened within its limits and datagrams sent if it accepts them.
    Connected,
    /// The peer opened a stream (delivered in id order; lower ids it skipped come first).
    StreamOpened(StreamId),
    /// Data or the end of the stream can be read; [`Connection::read`] until `Blocked` or end.
    Readable(StreamId),
    /// A write that was refused or cut short can be retried.
    Writable(StreamId),
    /// The peer raised its stream limit after [`Connection::open`] returned `Blocked`.
    StreamsAvailable(Dir),
    /// The peer reset its send side (RESET_STREAM / RESET_STREAM_AT); unread data is dropped.
    Reset {
        /// The stream.
        id: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// The peer sent STOP_SENDING; our send side was reset with the same code.
    StopSending {
        /// The stream.
        id: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// Datagrams are waiting in [`Connection::recv_datagram`].
    DatagramsReadable,
    /// The connection ended; always the last event.
    Closed(ConnectionError),
}

/// Counters, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records (WebSocket messages) sent.
    pub records_sent: u64,
    /// Records received.
    pub records_received: u64,
    /// Record bytes sent (with the size prefix on byte streams).
    pub bytes_sent: u64,
    /// Record bytes received.
    pub bytes_received: u64,
    /// Stream payload bytes sent.
    pub stream_bytes_sent: u64,
    /// Stream payload bytes received (including discarded ones).
    pub stream_bytes_received: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Outgoing datagrams dropped because the send queue was full.
    pub datagrams_dropped_send: u64,
    /// Incoming datagrams dropped because nobody read them in time.
    pub datagrams_dropped_recv: u64,
    /// QX_PING requests sent.
    pub pings_sent: u64,
    /// Latest QX_PING round trip.
    pub rtt: Option<Duration>,
}

/// Per-direction state of the streams we open.
#[derive(Debug, Clone, Copy)]
struct LocalStreams {
    /// Index of the next stream we open.
    next: u64,
    /// The peer's MAX_STREAMS.
    max: u64,
    /// `open` was refused since the last [`Event::StreamsAvailable`].
    blocked: bool,
}

/// Per-direction state of the streams the peer opens.
#[derive(Debug, Clone, Copy)]
struct RemoteStreams {
    /// Streams opened so far (highest index seen + 1).
    opened: u64,
    /// Streams that ended and were forgotten.
    closed: u64,
    /// Our MAX_STREAMS as last advertised.
    max: u64,
    /// How many may be open at once (the config value).
    limit: u64,
    /// A MAX_STREAMS frame is due.
    dirty: bool,
}

/// One QMux connection (sans-IO).
///
/// Feed it what arrives ([`handle_record`](Self::handle_record) for WebSocket messages,
/// [`handle_bytes`](Self::handle_bytes) for byte streams), send what
/// [`poll_transmit`](Self::poll_transmit) returns until `None`, react to
/// [`poll_event`](Self::poll_event), and call [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout). See the crate docs for the loop.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    version: Version,
    config: Config,
    local_params: TransportParams,
    peer_params: Option<TransportParams>,

    streams: FxHashMap<StreamId, Stream>,
    local: [LocalStreams; 2],
    remote: [RemoteStreams; 2],

    // Send-side flow control (the peer's credit).
    conn_send_max: u64,
    conn_sent: u64,
    /// Stream bytes accepted by `write` and not yet sent.
    queued_total: u64,
    /// Streams with something sendable, keyed by (descending priority, FIFO sequence).
    ready: BTreeMap<(std::cmp::Reverse<i32>, u64), StreamId>,
    ready_seq: u64,
    /// Streams whose write was limited by the connection send buffer.
    buffer_waiters: VecDeque<StreamId>,

    // Receive-side flow control (our credit).
    conn_recv_max: u64,
    conn_received: u64,
    conn_consumed: u64,
    max_data_dirty: bool,

    // Control output.
    params_sent: bool,
    control: VecDeque<Frame>,
    max_stream_data_queue: VecDeque<StreamId>,
    pong: Option<u64>,
    ping_due: bool,
    next_ping_seq: u64,
    ping_in_flight: Option<(u64, Instant)>,
    last_ping_recv: Option<u64>,

    // Datagrams.
    datagrams_out: VecDeque<Bytes>,
    datagrams_in: VecDeque<Bytes>,
    datagrams_signalled: bool,

    events: VecDeque<Event>,
    /// The close frame still to send (CONNECTION_CLOSE or APPLICATION_CLOSE).
    close_frame: Option<Frame>,
    closed: bool,

    // Timers.
    created: Instant,
    idle_timeout: Option<Duration>,
    last_recv: Instant,
    last_send: Instant,
    /// The last send allowed to restart the idle timer (the first after each receive).
    idle_send: Instant,
    send_restarts_idle: bool,

    reader: Option<RecordReader>,
    stats: Stats,
}

impl Connection {
    /// A new connection as `role`, speaking `version` (from the negotiated subprotocol).
    /// QMux versions queue their QX_TRANSPORT_PARAMETERS at once: call `poll_transmit`.
    pub fn new(role: Role, version: Version, config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        if config.framing == Framing::ByteStream && !version.has_records() {
            return Err(ConfigError::ByteStreamNeedsRecords(version));
        }
        let legacy = !version.is_qmux();
        // The legacy format has no limits on the wire: the peer's are unbounded, ours are
        // enforced locally.
        let unlimited = if legacy { MAX_STREAM_COUNT } else { 0 };
        let local = LocalStreams { next: 0, max: unlimited, blocked: false };
        let cap = |limit: u64| (limit * legacy_headroom(version)).min(MAX_STREAM_COUNT);
        let remote = |limit: u64| RemoteStreams { opened: 0, closed: 0, max: cap(limit), limit, dirty: false };
        let reader = (config.framing == Framing::ByteStream).then(|| RecordReader::new(config.max_record_size));
        let mut conn = Self {
            role,
            version,
            local_params: config.transport_params(version),
            peer_params: None,
            streams: FxHashMap::default(),
            local: [local; 2],
            remote: [remote(config.max_streams_bidi), remote(config.max_streams_uni)],
            conn_send_max: if legacy { varint::MAX } else { 0 },
            conn_sent: 0,
            queued_total: 0,
            ready: BTreeMap::new(),
            ready_seq: 0,
            buffer_waiters: VecDeque::new(),
            conn_recv_max: config.max_data,
            conn_received: 0,
            conn_consumed: 0,
            max_data_dirty: false,
            params_sent: legacy,
            control: VecDeque::new(),
            max_stream_data_queue: VecDeque::new(),
            pong: None,
            ping_due: false,
            next_ping_seq: 0,
            ping_in_flight: None,
            last_ping_recv: None,
            datagrams_out: VecDeque::new(),
            datagrams_in: VecDeque::new(),
            datagrams_signalled: false,
            events: VecDeque::new(),
            close_frame: None,
            closed: false,
            created: now,
            idle_timeout: None,
            last_recv: now,
            last_send: now,
            idle_send: now,
            send_restarts_idle: true,
            reader,
            stats: Stats::default(),
            config,
        };
        if legacy {
            conn.events.push_back(Event::Connected);
        }
        Ok(conn)
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The wire version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The transport parameters we send (nothing is sent in the legacy format).
    pub fn local_params(&self) -> &TransportParams {
        &self.local_params
    }

    /// The peer's transport parameters, once received.
    pub fn peer_params(&self) -> Option<&TransportParams> {
        self.peer_params.as_ref()
    }

    /// Whether the peer's transport parameters arrived (always true for the legacy format).
    pub fn is_connected(&self) -> bool {
        self.peer_params.is_some() || !self.version.is_qmux()
    }

    /// Whether the connection ended. A close frame may still be waiting in `poll_transmit`;
    /// see [`is_drained`](Self::is_drained).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the connection ended and its close frame (if any) was handed out: the driver
    /// can close the WebSocket / byte stream now.
    pub fn is_drained(&self) -> bool {
        self.closed && self.close_frame.is_none()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The latest QX_PING round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.stats.rtt
    }

    /// Stream bytes accepted by `write` and not yet sent, over all streams.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_total
    }

    /// Stream bytes received and not yet read, over all streams (at most our `max_data`).
    pub fn buffered_bytes(&self) -> u64 {
        self.streams.values().filter_map(|s| s.recv.as_ref()).map(|r| r.buffered).sum()
    }

    /// Streams currently tracked (open in at least one direction, or with frames pending).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Whether the driver should stop reading the WebSocket for now (legacy format only).
    ///
    /// The legacy format has no flow control, so the peer cannot be told to slow down: while
    /// more than `max_data` bytes are unread, or `max_streams_*` peer streams are open, the
    /// driver should leave the socket alone (TCP backpressure) until the application has read
    /// or finished some. A peer that gets twice that far anyway (only possible when the driver
    /// ignores this) is closed with FLOW_CONTROL_ERROR / STREAM_LIMIT_ERROR. Always false for
    /// QMux versions, whose peers respect the credit we give.
    pub fn receive_paused(&self) -> bool {
        !self.version.is_qmux()
            && !self.closed
            && (self.conn_received - self.conn_consumed >= self.config.max_data
                || self.remote.iter().any(|r| r.opened - r.closed >= r.limit))
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Closes the connection deliberately: queues APPLICATION_CLOSE (0x1d) with `code`
    /// (clamped to 2^62 - 1) and `reason` (cut to 1024 bytes), and ends every stream.
    pub fn close(&mut self, code: u64, reason: &[u8]) {
        if self.closed {
            return;
        }
        let code = code.min(varint::MAX);
        let reason = Bytes::copy_from_slice(&reason[..reason.len().min(1024)]);
        self.close_frame = Some(Frame::ApplicationClose { code, reason: reason.clone() });
        self.terminate(ConnectionError::LocalClose { code, reason });
    }

    /// The WebSocket or byte stream ended (or failed). Nothing more is sent, not even a
    /// pending close frame.
    pub fn handle_transport_closed(&mut self) {
        self.close_frame = None;
        if !self.closed {
            self.terminate(ConnectionError::TransportClosed);
        }
    }

    /// Ends the connection on a protocol error in the peer's input: CONNECTION_CLOSE (0x1c).
    fn fail(&mut self, err: TransportError) {
        if self.closed {
            return;
        }
        tracing::debug!(error = %err, frame_type = err.frame_type, "qmux connection error");
        self.close_frame = Some(Frame::ConnectionClose {
            code: err.code.0,
            frame_type: err.frame_type,
            reason: Bytes::from_static(err.reason.as_bytes()),
        });
        self.terminate(ConnectionError::LocalTransport(err));
    }

    /// Drops all state and delivers [`Event::Closed`] as the last event.
    fn terminate(&mut self, err: ConnectionError) {
        self.closed = true;
        self.streams.clear();
        self.ready.clear();
        self.buffer_waiters.clear();
        self.queued_total = 0;
        self.control.clear();
        self.max_stream_data_queue.clear();
        self.datagrams_out.clear();
        self.datagrams_in.clear();
        self.pong = None;
        self.ping_due = false;
        self.events.clear();
        self.events.push_back(Event::Closed(err));
    }
}
