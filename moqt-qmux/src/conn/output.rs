//! Building records: QX_TRANSPORT_PARAMETERS first, then control frames (QX_PING responses,
//! MAX_DATA / MAX_STREAMS / MAX_STREAM_DATA, RESET_STREAM, STOP_SENDING, QX_PING), then
//! datagrams, then stream data by priority. qmux-01+ packs frames up to the record size;
//! qmux-00 and the legacy format send one frame per message.

use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::streams::SendState;
use super::Connection;
use crate::config::Framing;
use crate::error::DatagramError;
use crate::frame::{self, Frame};
use crate::params::DEFAULT_MAX_RECORD_SIZE;
use crate::stream_id::{Dir, StreamId};
use crate::varint;

use super::input::MAX_FRAME_SIZE;

/// The most STREAM payload put in one frame. moq-dev's released receivers reject larger ones
/// (16384 - 32), whatever the record size.
pub const MAX_STREAM_PAYLOAD: usize = MAX_FRAME_SIZE - 32;

/// Largest `n` with `n + varint::len(n) <= avail`: a payload and its length field.
fn fit_with_length(avail: usize) -> usize {
    let mut best = 0;
    for width in [1usize, 2, 4, 8] {
        if avail < width {
            break;
        }
        let n = avail - width;
        if varint::len(n as u64) <= width {
            best = best.max(n);
        } else {
            // The largest value of this width.
            let cap = match width {
                1 => 63,
                2 => 16_383,
                4 => (1 << 30) - 1,
                _ => usize::MAX,
            };
            best = best.max(cap.min(n));
        }
    }
    best
}

/// A record under construction.
struct Builder {
    buf: BytesMut,
    budget: usize,
    one_frame: bool,
    legacy: bool,
}

impl Builder {
    fn room(&self) -> usize {
        if self.one_frame && !self.buf.is_empty() {
            0
        } else {
            self.budget - self.buf.len()
        }
    }

    /// Appends `frame` if it fits.
    fn push(&mut self, frame: &Frame) -> bool {
        let len = if self.legacy { frame::legacy_len(frame) } else { frame::encoded_len(frame) };
        if len == 0 || len > self.room() {
            return false;
        }
        let ok =
            if self.legacy { frame::encode_legacy(frame, &mut self.buf) } else { frame::encode(frame, &mut self.buf) };
        ok.is_ok()
    }
}

impl Connection {
    /// The largest record we may send now.
    fn record_budget(&self) -> usize {
        if !self.version.has_records() {
            return MAX_FRAME_SIZE;
        }
        let peer = self.peer_params.as_ref().map_or(DEFAULT_MAX_RECORD_SIZE, |p| p.max_record_size);
        peer.min(self.config.send_record_size).min(1 << 24) as usize
    }

    /// The next record to send (one WebSocket binary message, or size-prefixed bytes for a
    /// byte stream), or `None` when there is nothing to send. Call until `None` after every
    /// input, application call and timeout.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if let Some(close) = self.close_frame.take() {
            let mut b = self.builder();
            // The parameters are always the first frame, even of a connection closed at once.
            if !self.params_sent {
                self.params_sent = b.push(&Frame::TransportParameters(self.local_params.clone()));
            }
            if !b.push(&close) && !b.buf.is_empty() {
                // qmux-00: one frame per message; the close goes next time.
                self.close_frame = Some(close);
            }
            if b.buf.is_empty() {
                return None;
            }
            return Some(self.finish_record(now, b.buf));
        }
        if self.closed {
            return None;
        }
        let mut b = self.builder();
        self.push_control(&mut b, now);
        self.push_datagrams(&mut b);
        if self.is_connected() {
            self.push_streams(&mut b);
        }
        if b.buf.is_empty() {
            return None;
        }
        Some(self.finish_record(now, b.buf))
    }

    fn builder(&self) -> Builder {
        Builder {
            buf: BytesMut::new(),
            budget: self.record_budget(),
            one_frame: !self.version.has_records(),
            legacy: !self.version.is_qmux(),
        }
    }

    fn finish_record(&mut self, now: Instant, frames: BytesMut) -> Bytes {
        self.stats.records_sent += 1;
        self.last_send = now;
        if self.send_restarts_idle {
            self.send_restarts_idle = false;
            self.idle_send = now;
        }
        let out = match self.config.framing {
            Framing::WebSocket => frames.freeze(),
            Framing::ByteStream => crate::record::prefixed(&frames),
        };
        self.stats.bytes_sent += out.len() as u64;
        out
    }

    fn push_control(&mut self, b: &mut Builder, now: Instant) {
        if !self.params_sent {
            if !b.push(&Frame::TransportParameters(self.local_params.clone())) {
                return;
            }
            self.params_sent = true;
        }
        if let Some(seq) = self.pong {
            if !b.push(&Frame::Pong(seq)) {
                return;
            }
            self.pong = None;
        }
        if self.max_data_dirty {
            if !b.push(&Frame::MaxData(self.conn_recv_max)) {
                return;
            }
            self.max_data_dirty = false;
        }
        for dir in [Dir::Bi, Dir::Uni] {
            let r = &self.remote[dir.idx()];
            if r.dirty {
                if !b.push(&Frame::MaxStreams { dir, max: r.max }) {
                    return;
                }
                self.remote[dir.idx()].dirty = false;
            }
        }
        while let Some(&id) = self.max_stream_data_queue.front() {
            let recv = self.streams.get_mut(&id).and_then(|s| s.recv.as_mut());
            let Some(recv) = recv.filter(|r| r.update_queued && !r.fin) else {
                if let Some(r) = self.streams.get_mut(&id).and_then(|s| s.recv.as_mut()) {
                    r.update_queued = false;
                }
                self.max_stream_data_queue.pop_front();
                continue;
            };
            if !b.push(&Frame::MaxStreamData { id, max: recv.max }) {
                return;
            }
            recv.update_queued = false;
            self.max_stream_data_queue.pop_front();
        }
        while let Some(frame) = self.control.front() {
            if !b.push(frame) {
                return;
            }
            if let Some(Frame::ResetStream { id, .. }) = self.control.pop_front() {
                // The reset is out: the send half is done.
                if let Some(s) = self.streams.get_mut(&id) {
                    s.send = None;
                }
                self.maybe_forget(id);
            }
        }
        if self.ping_due {
            let seq = self.next_ping_seq;
            if !b.push(&Frame::Ping(seq)) {
                return;
            }
            self.ping_due = false;
            self.next_ping_seq += 1;
            self.stats.pings_sent += 1;
            self.ping_in_flight = Some((seq, now));
        }
    }

    fn push_datagrams(&mut self, b: &mut Builder) {
        while let Some(data) = self.datagrams_out.front() {
            let frame = Frame::Datagram(data.clone());
            if !b.push(&frame) {
                return;
            }
            self.datagrams_out.pop_front();
            self.stats.datagrams_sent += 1;
        }
    }

    /// Whether the connection credit allows stream data now.
    fn conn_credit(&self) -> u64 {
        self.conn_send_max.saturating_sub(self.conn_sent)
    }

    fn push_streams(&mut self, b: &mut Builder) {
        loop {
            let credit = self.conn_credit();
            // Highest priority first; FIFO among equals, and a stream goes to the back after
            // each frame. Without connection credit only a bare FIN can go.
            let next = if credit > 0 {
                self.ready.iter().next().map(|(_, id)| *id)
            } else {
                self.ready
                    .values()
                    .copied()
                    .find(|id| self.streams.get(id).and_then(|s| s.send.as_ref()).is_some_and(|s| s.fin_only()))
            };
            let Some(id) = next else { return };
            if !self.push_stream_frame(b, id, credit) {
                return;
            }
        }
    }

    /// Appends one STREAM frame for `id`; false if the record has no room for it.
    fn push_stream_frame(&mut self, b: &mut Builder, id: StreamId, conn_credit: u64) -> bool {
        let legacy = b.legacy;
        let room = b.room();
        let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) else { return false };
        let header = if legacy { 1 + varint::len(id.0) } else { 1 + varint::len(id.0) + varint::len(send.offset) };
        if room < header + usize::from(!legacy) {
            return false;
        }
        let space = if legacy { room - header } else { fit_with_length(room - header) };
        let credit = send.max.saturating_sub(send.offset).min(conn_credit);
        let n = send.queued.min(credit).min(space as u64).min(MAX_STREAM_PAYLOAD as u64) as usize;
        if n == 0 && !send.fin_only() {
            return false;
        }
        let fin = send.state == SendState::Finishing && send.queued == n as u64;
        let frame_type = if legacy { 0x08 } else { frame::ty::STREAM_OFF_LEN } | u64::from(fin);
        if legacy {
            b.buf.put_u8(frame_type as u8);
            varint::put(&mut b.buf, id.0);
        } else {
            varint::put(&mut b.buf, frame_type);
            varint::put(&mut b.buf, id.0);
            varint::put(&mut b.buf, send.offset);
            varint::put(&mut b.buf, n as u64);
        }
        let mut left = n;
        while left > 0 {
            let Some(front) = send.queue.front_mut() else { break };
            let take = left.min(front.len());
            b.buf.put_slice(&front[..take]);
            front.advance(take);
            if front.is_empty() {
                send.queue.pop_front();
            }
            left -= take;
        }
        send.queued -= n as u64;
        send.offset += n as u64;
        let done = fin;
        self.queued_total -= n as u64;
        self.conn_sent += n as u64;
        self.stats.stream_bytes_sent += n as u64;
        // Round robin: back of the queue for its priority.
        if let Some(key) = send.ready_key.take() {
            self.ready.remove(&key);
        }
        if done {
            if let Some(s) = self.streams.get_mut(&id) {
                s.send = None;
            }
            self.maybe_forget(id);
        } else {
            self.update_ready(id);
        }
        if n > 0 {
            self.wake_buffer_waiters();
        }
        true
    }

    /// The largest datagram payload the peer accepts, or `None` without datagram support
    /// (qmux-00, legacy, the peer's `max_datagram_frame_size` is 0 or not known yet).
    pub fn max_datagram_size(&self) -> Option<usize> {
        if !self.version.has_records() {
            return None;
        }
        let peer = self.peer_params.as_ref()?;
        if peer.max_datagram_frame_size == 0 {
            return None;
        }
        let cap = peer.max_datagram_frame_size.min(self.record_budget() as u64) as usize;
        Some(fit_with_length(cap.saturating_sub(1)))
    }

    /// Queues a datagram (sent ahead of stream data, after control frames). When the send
    /// queue is full the oldest queued datagram is dropped and counted.
    pub fn send_datagram(&mut self, data: Bytes) -> Result<(), DatagramError> {
        if self.closed {
            return Err(DatagramError::Closed);
        }
        let max = self.max_datagram_size().ok_or(DatagramError::Unsupported)?;
        if data.len() > max {
            return Err(DatagramError::TooLarge(max));
        }
        if self.config.datagram_send_queue == 0 {
            self.stats.datagrams_dropped_send += 1;
            return Ok(());
        }
        if self.datagrams_out.len() >= self.config.datagram_send_queue {
            self.datagrams_out.pop_front();
            self.stats.datagrams_dropped_send += 1;
        }
        self.datagrams_out.push_back(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::fit_with_length;
    use crate::varint;

    #[test]
    fn fit_is_tight() {
        for avail in (0..200).chain(16_370..16_400) {
            let n = fit_with_length(avail);
            if avail > 0 {
                assert!(n + varint::len(n as u64) <= avail, "avail {avail} n {n}");
                assert!(n + 1 + varint::len(n as u64 + 1) > avail, "avail {avail} n {n} not tight");
            }
        }
        assert_eq!(fit_with_length(16_384), 16_382);
    }
}
