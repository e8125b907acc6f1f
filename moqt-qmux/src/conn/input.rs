//! What the peer sends: records (WebSocket messages or byte-stream records), decoded frame by
//! frame and applied. Any violation ends the connection with CONNECTION_CLOSE and the QUIC
//! error code the drafts give for it.

use std::time::Instant;

use bytes::Bytes;

use super::streams::SendState;
use super::{Connection, Event};
use crate::error::{TransportError, TransportErrorCode as Code};
use crate::frame::{self, ty, Frame};
use crate::params::{TransportParams, DEFAULT_MAX_RECORD_SIZE};
use crate::stream_id::{Dir, StreamId};
use crate::Version;

/// The largest frame qmux-00 allows (its initial `max_frame_size`), also applied to the legacy
/// format, whose senders keep to it.
pub const MAX_FRAME_SIZE: usize = 16384;

fn err(code: Code, reason: &'static str, frame_type: u64) -> TransportError {
    TransportError::new(code, reason).frame(frame_type)
}

/// What a frame's stream id refers to.
enum Target {
    /// A stream we track.
    Live,
    /// A stream that existed and is forgotten: its frames are dropped.
    Gone,
}

impl Connection {
    /// Handles one WebSocket binary message (qmux-01+: a record of frames; qmux-00 and legacy:
    /// one frame). Only for [`crate::Framing::WebSocket`]; byte streams use
    /// [`handle_bytes`](Self::handle_bytes).
    pub fn handle_record(&mut self, now: Instant, record: Bytes) {
        if self.closed {
            return;
        }
        self.stats.bytes_received += record.len() as u64;
        if let Err(e) = self.process_record(now, record) {
            self.fail(e);
        }
    }

    /// The transport refused a message because it was larger than it buffers (e.g. the
    /// WebSocket library's message limit, set above `max_record_size`): the same
    /// FRAME_ENCODING_ERROR as a record over `max_record_size` that did arrive.
    pub fn handle_oversized_record(&mut self) {
        if !self.closed {
            self.fail(err(Code::FRAME_ENCODING_ERROR, "record larger than max_record_size", 0));
        }
    }

    /// A WebSocket text message arrived: QMux is carried in binary messages only, so this is
    /// PROTOCOL_VIOLATION.
    pub fn handle_text_message(&mut self) {
        if !self.closed {
            self.fail(err(Code::PROTOCOL_VIOLATION, "text message", 0));
        }
    }

    /// Handles bytes read from a byte stream ([`crate::Framing::ByteStream`]): reassembles
    /// size-prefixed records and processes each complete one.
    pub fn handle_bytes(&mut self, now: Instant, bytes: Bytes) {
        if self.closed {
            return;
        }
        self.stats.bytes_received += bytes.len() as u64;
        let Some(reader) = self.reader.as_mut() else {
            self.fail(err(Code::INTERNAL_ERROR, "handle_bytes on a WebSocket connection", 0));
            return;
        };
        reader.push(bytes);
        loop {
            let next = match self.reader.as_mut().map(|r| r.next_record()) {
                Some(Ok(Some(record))) => record,
                Some(Ok(None)) | None => return,
                Some(Err(e)) => return self.fail(e),
            };
            if let Err(e) = self.process_record(now, next) {
                return self.fail(e);
            }
            if self.closed {
                return;
            }
        }
    }

    fn process_record(&mut self, now: Instant, mut record: Bytes) -> Result<(), TransportError> {
        self.stats.records_received += 1;
        self.last_recv = now;
        self.send_restarts_idle = true;
        let limit = if self.version.has_records() { self.config.max_record_size } else { MAX_FRAME_SIZE as u64 };
        if record.len() as u64 > limit {
            return Err(err(Code::FRAME_ENCODING_ERROR, "record larger than max_record_size", 0));
        }
        if !self.version.is_qmux() {
            let frame = frame::decode_legacy(record)?;
            return self.on_frame(now, frame, 0);
        }
        // qmux-00 messages hold one frame, but reading on is harmless and lenient.
        while !record.is_empty() && !self.closed {
            let before = record.len();
            let frame = frame::decode(&mut record)?;
            self.on_frame(now, frame, before - record.len())?;
        }
        Ok(())
    }

    /// Applies one frame; `len` is its encoded size (for the datagram size limit).
    fn on_frame(&mut self, now: Instant, frame: Frame, len: usize) -> Result<(), TransportError> {
        let t = frame.ty();
        if self.version.is_qmux() && !matches!(frame, Frame::Padding) {
            let is_params = matches!(frame, Frame::TransportParameters(_));
            if is_params && self.peer_params.is_some() {
                return Err(err(Code::PROTOCOL_VIOLATION, "second QX_TRANSPORT_PARAMETERS", t));
            }
            // qmux-02 requires the parameters first; earlier drafts are taken leniently.
            if self.version == Version::Qmux02 && !is_params && self.peer_params.is_none() {
                return Err(err(Code::PROTOCOL_VIOLATION, "first frame is not QX_TRANSPORT_PARAMETERS", t));
            }
        }
        match frame {
            Frame::Padding | Frame::DataBlocked(_) | Frame::StreamDataBlocked { .. } | Frame::StreamsBlocked { .. } => {
            }
            Frame::TransportParameters(p) => self.on_params(p)?,
            Frame::Stream { id, offset, data, fin } => self.on_stream(id, offset, data, fin)?,
            Frame::ResetStream { id, code, final_size } => self.on_reset(id, code, final_size, t)?,
            Frame::ResetStreamAt { id, code, final_size, .. } => {
                if !self.local_params.reset_stream_at {
                    return Err(err(Code::PROTOCOL_VIOLATION, "RESET_STREAM_AT without reset_stream_at", t));
                }
                // On an ordered transport the reliable part has arrived already; treated as a
                // plain reset, like moq-dev's peers.
                self.on_reset(id, code, final_size, t)?;
            }
            Frame::StopSending { id, code } => self.on_stop_sending(id, code, t)?,
            Frame::MaxData(max) => self.conn_send_max = self.conn_send_max.max(max),
            Frame::MaxStreamData { id, max } => self.on_max_stream_data(id, max, t)?,
            Frame::MaxStreams { dir, max } => self.on_max_streams(dir, max),
            Frame::ConnectionClose { code, frame_type, reason } => {
                self.terminate(crate::ConnectionError::PeerTransport { code: Code(code), frame_type, reason });
            }
            Frame::ApplicationClose { code, reason } => {
                self.terminate(crate::ConnectionError::PeerClose { code, reason });
            }
            Frame::Ping(seq) => {
                if self.version == Version::Qmux02 && self.last_ping_recv.is_some_and(|last| seq <= last) {
                    return Err(err(Code::PROTOCOL_VIOLATION, "QX_PING sequence not increasing", t));
                }
                self.last_ping_recv = Some(self.last_ping_recv.map_or(seq, |l| l.max(seq)));
                self.pong = Some(self.pong.map_or(seq, |p| p.max(seq)));
            }
            Frame::Pong(seq) => {
                if self.version == Version::Qmux02 && seq >= self.next_ping_seq {
                    return Err(err(Code::PROTOCOL_VIOLATION, "QX_PING response to a ping never sent", t));
                }
                if let Some((sent_seq, at)) = self.ping_in_flight {
                    if sent_seq == seq {
                        self.ping_in_flight = None;
                        self.stats.rtt = Some(now.saturating_duration_since(at));
                    }
                }
            }
            Frame::Datagram(data) => self.on_datagram(data, len, t)?,
        }
        Ok(())
    }

    fn on_params(&mut self, p: TransportParams) -> Result<(), TransportError> {
        let t = ty::QX_TRANSPORT_PARAMETERS;
        if self.version.has_records() && p.max_record_size < DEFAULT_MAX_RECORD_SIZE {
            return Err(err(Code::TRANSPORT_PARAMETER_ERROR, "max_record_size below 16382", t));
        }
        self.events.push_back(Event::Connected);
        self.conn_send_max = self.conn_send_max.max(p.initial_max_data);
        for (dir, max) in [(Dir::Bi, p.initial_max_streams_bidi), (Dir::Uni, p.initial_max_streams_uni)] {
            self.on_max_streams(dir, max);
        }
        if self.version.has_records() {
            let ours = self.local_params.max_idle_timeout;
            let idle = match (ours, p.max_idle_timeout) {
                (0, 0) => 0,
                (0, x) | (x, 0) => x,
                (a, b) => a.min(b),
            };
            self.idle_timeout = (idle > 0).then(|| std::time::Duration::from_millis(idle));
        }
        self.peer_params = Some(p);
        // Streams opened before the parameters (the peer's, on lenient drafts) get their credit.
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in ids {
            let window = self.peer_stream_window(id);
            if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) {
                if window > send.max {
                    send.max = window;
                    if send.want_writable && send.state == SendState::Open && !send.in_buffer_waiters {
                        send.want_writable = false;
                        self.events.push_back(Event::Writable(id));
                    }
                }
            }
            self.update_ready(id);
        }
        Ok(())
    }

    /// Resolves a frame's stream id, opening peer streams it implies (RFC 9000 §3.2: a frame
    /// for stream N opens every lower stream of that kind).
    fn target(&mut self, id: StreamId, t: u64) -> Result<Target, TransportError> {
        let dir = id.dir().idx();
        let index = id.index();
        if id.initiator() == self.role {
            if index >= self.local[dir].next {
                return Err(err(Code::STREAM_STATE_ERROR, "frame for a stream we have not opened", t));
            }
            return Ok(if self.streams.contains_key(&id) { Target::Live } else { Target::Gone });
        }
        let remote = self.remote[dir];
        if index < remote.opened {
            return Ok(if self.streams.contains_key(&id) { Target::Live } else { Target::Gone });
        }
        if index >= remote.max {
            return Err(err(Code::STREAM_LIMIT_ERROR, "peer opened more streams than allowed", t));
        }
        for i in remote.opened..=index {
            let new = StreamId::new(self.role.peer(), id.dir(), i);
            let stream = self.new_stream(new);
            self.streams.insert(new, stream);
            self.events.push_back(Event::StreamOpened(new));
        }
        self.remote[dir].opened = index + 1;
        Ok(Target::Live)
    }

    /// Counts bytes the application will never see against connection credit, and frees them.
    fn discard(&mut self, n: u64, t: u64) -> Result<(), TransportError> {
        if self.version.is_qmux() && self.conn_received + n > self.conn_recv_max {
            return Err(err(Code::FLOW_CONTROL_ERROR, "connection flow control exceeded", t));
        }
        self.conn_received += n;
        self.conn_consumed(n);
        Ok(())
    }

    fn on_stream(&mut self, id: StreamId, offset: u64, data: Bytes, fin: bool) -> Result<(), TransportError> {
        let t = ty::STREAM;
        if !id.can_recv(self.role) {
            return Err(err(Code::STREAM_STATE_ERROR, "STREAM on a send-only stream", t));
        }
        let n = data.len() as u64;
        self.stats.stream_bytes_received += n;
        let target = self.target(id, t)?;
        let conn_room = self.conn_recv_max.saturating_sub(self.conn_received);
        let unread = self.conn_received - self.conn_consumed;
        let qmux = self.version.is_qmux();
        let legacy_cap = 2 * self.config.max_data;
        let recv = match target {
            Target::Live => self.streams.get_mut(&id).and_then(|s| s.recv.as_mut()),
            Target::Gone => None,
        };
        let Some(recv) = recv else { return self.discard(n, t) };
        if recv.fin && n > 0 {
            return Err(err(Code::FINAL_SIZE_ERROR, "STREAM data after FIN", t));
        }
        if qmux && recv.received + n > recv.max {
            return Err(err(Code::FLOW_CONTROL_ERROR, "stream flow control exceeded", t));
        }
        if qmux && n > conn_room {
            return Err(err(Code::FLOW_CONTROL_ERROR, "connection flow control exceeded", t));
        }
        if !qmux && unread + n > legacy_cap {
            return Err(err(Code::FLOW_CONTROL_ERROR, "legacy peer sent twice max_data unread", t));
        }
        if offset != recv.received && qmux {
            // Releases of moq-dev's peers before mid-2026 wrote no offsets; data is taken in
            // arrival order, which the ordered transport makes the stream order.
            tracing::trace!(?id, offset, expected = recv.received, "STREAM offset not contiguous");
        }
        recv.received += n;
        if n > 0 {
            recv.buffered += n;
            recv.chunks.push_back(data);
        }
        recv.fin |= fin;
        let signal = (n > 0 || fin) && !recv.signalled;
        recv.signalled |= signal;
        self.conn_received += n;
        if signal {
            self.events.push_back(Event::Readable(id));
        }
        Ok(())
    }

    fn on_reset(&mut self, id: StreamId, code: u64, final_size: u64, t: u64) -> Result<(), TransportError> {
        if !id.can_recv(self.role) {
            return Err(err(Code::STREAM_STATE_ERROR, "RESET_STREAM on a send-only stream", t));
        }
        let Target::Live = self.target(id, t)? else { return Ok(()) };
        let Some(recv) = self.streams.get_mut(&id).and_then(|s| s.recv.take()) else { return Ok(()) };
        // Releases of moq-dev's peers up to qmux-02 sent 0 here: never let the final size undo
        // bytes already counted.
        let gap = final_size.saturating_sub(recv.received);
        let qmux = self.version.is_qmux();
        if qmux && (recv.received + gap > recv.max || gap > self.conn_recv_max.saturating_sub(self.conn_received)) {
            return Err(err(Code::FLOW_CONTROL_ERROR, "RESET_STREAM final size beyond flow control", t));
        }
        self.conn_received += gap;
        self.conn_consumed(gap + recv.buffered);
        self.events.push_back(Event::Reset { id, code });
        self.maybe_forget(id);
        Ok(())
    }

    fn on_stop_sending(&mut self, id: StreamId, code: u64, t: u64) -> Result<(), TransportError> {
        if !id.can_send(self.role) {
            return Err(err(Code::STREAM_STATE_ERROR, "STOP_SENDING on a receive-only stream", t));
        }
        let Target::Live = self.target(id, t)? else { return Ok(()) };
        let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) else { return Ok(()) };
        if send.state == SendState::ResetQueued {
            return Ok(());
        }
        send.stopped = Some(code);
        self.reset_send(id, code);
        self.events.push_back(Event::StopSending { id, code });
        Ok(())
    }

    fn on_max_stream_data(&mut self, id: StreamId, max: u64, t: u64) -> Result<(), TransportError> {
        if !id.can_send(self.role) {
            return Err(err(Code::STREAM_STATE_ERROR, "MAX_STREAM_DATA on a receive-only stream", t));
        }
        let Target::Live = self.target(id, t)? else { return Ok(()) };
        let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) else { return Ok(()) };
        if max <= send.max {
            return Ok(());
        }
        send.max = max;
        if send.want_writable && send.state == SendState::Open && !send.in_buffer_waiters {
            send.want_writable = false;
            self.events.push_back(Event::Writable(id));
        }
        self.update_ready(id);
        Ok(())
    }

    fn on_max_streams(&mut self, dir: Dir, max: u64) {
        let local = &mut self.local[dir.idx()];
        if max <= local.max {
            return;
        }
        local.max = max;
        if local.blocked && local.next < max {
            local.blocked = false;
            self.events.push_back(Event::StreamsAvailable(dir));
        }
    }

    fn on_datagram(&mut self, data: Bytes, len: usize, t: u64) -> Result<(), TransportError> {
        let max = self.local_params.max_datagram_frame_size;
        if max == 0 {
            return Err(err(Code::PROTOCOL_VIOLATION, "DATAGRAM without max_datagram_frame_size", t));
        }
        if len as u64 > max {
            return Err(err(Code::PROTOCOL_VIOLATION, "DATAGRAM larger than max_datagram_frame_size", t));
        }
        self.stats.datagrams_received += 1;
        if self.config.datagram_recv_queue == 0 {
            self.stats.datagrams_dropped_recv += 1;
            return Ok(());
        }
        if self.datagrams_in.len() >= self.config.datagram_recv_queue {
            self.datagrams_in.pop_front();
            self.stats.datagrams_dropped_recv += 1;
        }
        self.datagrams_in.push_back(data);
        if !self.datagrams_signalled {
            self.datagrams_signalled = true;
            self.events.push_back(Event::DatagramsReadable);
        }
        Ok(())
    }

    /// The next received datagram (oldest first).
    pub fn recv_datagram(&mut self) -> Option<Bytes> {
        let d = self.datagrams_in.pop_front();
        if self.datagrams_in.is_empty() {
            self.datagrams_signalled = false;
        }
        d
    }
}
