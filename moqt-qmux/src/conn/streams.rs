//! Per-stream state and the application's stream calls: open, write, finish, reset, read,
//! stop, priorities; receive-window replenishment (MAX_STREAM_DATA, MAX_DATA) as data is
//! read, and MAX_STREAMS replenishment as peer streams end.

use std::cmp::Reverse;
use std::collections::VecDeque;

use bytes::Bytes;

use super::{Connection, Event};
use crate::error::{OpenError, ReadError, WriteError};
use crate::frame::Frame;
use crate::stream_id::{Dir, StreamId, MAX_STREAM_COUNT};
use crate::varint;

/// Where the send side of a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendState {
    /// Writable.
    Open,
    /// `finish` was called; the FIN goes with the last queued byte.
    Finishing,
    /// RESET_STREAM is queued (by `reset` or in answer to STOP_SENDING).
    ResetQueued,
}

/// The send side of a stream. Dropped (set to `None`) once its FIN or RESET is sent.
#[derive(Debug)]
pub(super) struct SendHalf {
    /// Data accepted by `write`, not yet framed: slices of what the application gave.
    pub queue: VecDeque<Bytes>,
    pub queued: u64,
    /// Bytes sent so far.
    pub offset: u64,
    /// The peer's MAX_STREAM_DATA.
    pub max: u64,
    pub state: SendState,
    /// STOP_SENDING code, once received.
    pub stopped: Option<u64>,
    pub priority: i32,
    /// Key in `Connection::ready` while the stream has something sendable.
    pub ready_key: Option<(Reverse<i32>, u64)>,
    /// A write was refused or cut short: emit `Writable` when room appears.
    pub want_writable: bool,
    pub in_buffer_waiters: bool,
}

impl SendHalf {
    pub(super) fn new(max: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            queued: 0,
            offset: 0,
            max,
            state: SendState::Open,
            stopped: None,
            priority: 0,
            ready_key: None,
            want_writable: false,
            in_buffer_waiters: false,
        }
    }

    /// Whether a frame can be built ignoring connection credit: data within stream credit, or
    /// a bare FIN.
    pub(super) fn sendable(&self) -> bool {
        match self.state {
            SendState::ResetQueued => false,
            SendState::Finishing if self.queued == 0 => true,
            _ => self.queued > 0 && self.offset < self.max,
        }
    }

    /// Whether the next frame is a bare FIN (needs no connection credit).
    pub(super) fn fin_only(&self) -> bool {
        self.state == SendState::Finishing && self.queued == 0
    }
}

/// The receive side of a stream. Dropped once read to the end, reset, or stopped.
#[derive(Debug)]
pub(super) struct RecvHalf {
    /// Received, unread data: slices of the records it came in.
    pub chunks: VecDeque<Bytes>,
    pub buffered: u64,
    /// Bytes received (and discarded) so far.
    pub received: u64,
    /// Bytes read by the application.
    pub consumed: u64,
    /// Our MAX_STREAM_DATA as last advertised.
    pub max: u64,
    pub window: u64,
    pub fin: bool,
    /// `Readable` was emitted and the data not yet drained.
    pub signalled: bool,
    /// In `Connection::max_stream_data_queue`.
    pub update_queued: bool,
}

impl RecvHalf {
    pub(super) fn new(window: u64) -> Self {
        Self {
            chunks: VecDeque::new(),
            buffered: 0,
            received: 0,
            consumed: 0,
            max: window,
            window,
            fin: false,
            signalled: false,
            update_queued: false,
        }
    }
}

/// One stream: either half may be gone already.
#[derive(Debug)]
pub(super) struct Stream {
    pub send: Option<SendHalf>,
    pub recv: Option<RecvHalf>,
}

impl Connection {
    /// The send credit the peer gives a stream of ours or its own, from its parameters.
    pub(super) fn peer_stream_window(&self, id: StreamId) -> u64 {
        if !self.version.is_qmux() {
            return varint::MAX;
        }
        let Some(p) = &self.peer_params else { return 0 };
        match (id.dir(), id.initiator() == self.role) {
            (Dir::Uni, _) => p.initial_max_stream_data_uni,
            (Dir::Bi, true) => p.initial_max_stream_data_bidi_remote,
            (Dir::Bi, false) => p.initial_max_stream_data_bidi_local,
        }
    }

    /// Our receive window for a stream.
    pub(super) fn local_stream_window(&self, id: StreamId) -> u64 {
        match (id.dir(), id.initiator() == self.role) {
            (Dir::Uni, _) => self.config.max_stream_data_uni,
            (Dir::Bi, true) => self.config.max_stream_data_bidi_local,
            (Dir::Bi, false) => self.config.max_stream_data_bidi_remote,
        }
    }

    /// A fresh stream with the halves `id` has for us.
    pub(super) fn new_stream(&self, id: StreamId) -> Stream {
        Stream {
            send: id.can_send(self.role).then(|| SendHalf::new(self.peer_stream_window(id))),
            recv: id.can_recv(self.role).then(|| RecvHalf::new(self.local_stream_window(id))),
        }
    }

    /// Opens a stream of our own. `Err(Blocked)` when the peer's stream limit (or its missing
    /// transport parameters) does not allow it yet: wait for [`Event::StreamsAvailable`].
    pub fn open(&mut self, dir: Dir) -> Result<StreamId, OpenError> {
        if self.closed {
            return Err(OpenError::Closed);
        }
        let local = &mut self.local[dir.idx()];
        if local.next >= local.max {
            local.blocked = true;
            return Err(OpenError::Blocked);
        }
        let id = StreamId::new(self.role, dir, local.next);
        local.next += 1;
        let stream = self.new_stream(id);
        self.streams.insert(id, stream);
        Ok(id)
    }

    /// Queues `data` on a stream. Returns how many bytes were taken (a prefix of `data`, kept
    /// as a slice): at most the peer's remaining stream credit and what fits in the send
    /// buffer. `Err(Blocked)` when nothing fits; [`Event::Writable`] follows either way when
    /// less than everything was taken.
    pub fn write(&mut self, id: StreamId, data: Bytes) -> Result<usize, WriteError> {
        if self.closed {
            return Err(WriteError::Closed);
        }
        let buffer_room = self.config.send_buffer.saturating_sub(self.queued_total);
        let send = self.send_half(id)?;
        if data.is_empty() {
            return Ok(0);
        }
        let stream_room = send.max.saturating_sub(send.offset + send.queued);
        let n = (data.len() as u64).min(stream_room).min(buffer_room) as usize;
        let mut wait_buffer = false;
        if n < data.len() {
            send.want_writable = true;
            if buffer_room < stream_room && !send.in_buffer_waiters {
                send.in_buffer_waiters = true;
                wait_buffer = true;
            }
        }
        if n > 0 {
            send.queue.push_back(data.slice(..n));
            send.queued += n as u64;
        }
        if wait_buffer {
            self.buffer_waiters.push_back(id);
        }
        if n == 0 {
            return Err(WriteError::Blocked);
        }
        self.queued_total += n as u64;
        self.update_ready(id);
        Ok(n)
    }

    /// Ends the send side after the queued data (FIN).
    pub fn finish(&mut self, id: StreamId) -> Result<(), WriteError> {
        if self.closed {
            return Err(WriteError::Closed);
        }
        self.send_half(id)?.state = SendState::Finishing;
        self.update_ready(id);
        Ok(())
    }

    /// Whether the send side of `id` still has data, a FIN or a RESET_STREAM waiting for
    /// `poll_transmit` (false once everything was handed out, or for an unknown stream).
    pub fn send_pending(&self, id: StreamId) -> bool {
        self.streams.get(&id).and_then(|s| s.send.as_ref()).is_some()
    }

    /// Abandons the send side: drops queued data and sends RESET_STREAM with `code`.
    pub fn reset(&mut self, id: StreamId, code: u64) -> Result<(), WriteError> {
        if self.closed {
            return Err(WriteError::Closed);
        }
        if code > varint::MAX {
            return Err(WriteError::InvalidCode);
        }
        match self.streams.get(&id).and_then(|s| s.send.as_ref()) {
            None => return Err(WriteError::UnknownStream),
            Some(s) if s.state == SendState::ResetQueued => return Err(WriteError::Finished),
            Some(_) => {}
        }
        self.reset_send(id, code);
        Ok(())
    }

    /// The send half of `id`, if it is still writable.
    fn send_half(&mut self, id: StreamId) -> Result<&mut super::streams::SendHalf, WriteError> {
        let send = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()).ok_or(WriteError::UnknownStream)?;
        match (send.state, send.stopped) {
            (SendState::Open, _) => Ok(send),
            (_, Some(code)) => Err(WriteError::Stopped(code)),
            _ => Err(WriteError::Finished),
        }
    }

    /// Drops the queued data of a send half and queues RESET_STREAM (final size = bytes sent).
    pub(super) fn reset_send(&mut self, id: StreamId, code: u64) {
        let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) else { return };
        self.queued_total -= send.queued;
        send.queue.clear();
        send.queued = 0;
        send.state = SendState::ResetQueued;
        let final_size = send.offset;
        self.update_ready(id);
        self.control.push_back(Frame::ResetStream { id, code, final_size });
    }

    /// Sets a stream's send priority (higher goes first; equal priorities take turns).
    pub fn set_priority(&mut self, id: StreamId, priority: i32) {
        if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) {
            if send.priority != priority {
                send.priority = priority;
                if let Some(key) = send.ready_key.take() {
                    self.ready.remove(&key);
                }
                self.update_ready(id);
            }
        }
    }

    /// Puts a stream in or out of the send schedule according to whether it can send.
    pub(super) fn update_ready(&mut self, id: StreamId) {
        let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) else { return };
        match (send.sendable(), send.ready_key) {
            (true, None) => {
                let key = (Reverse(send.priority), self.ready_seq);
                self.ready_seq += 1;
                send.ready_key = Some(key);
                self.ready.insert(key, id);
            }
            (false, Some(key)) => {
                send.ready_key = None;
                self.ready.remove(&key);
            }
            _ => {}
        }
    }

    /// Reads up to `max` bytes (at least 1) from a stream: `Ok(Some(bytes))`, a slice of what
    /// arrived; `Ok(None)` at the end of the stream (after which the stream is forgotten);
    /// `Err(Blocked)` when nothing is buffered. Reading extends the peer's credit.
    pub fn read(&mut self, id: StreamId, max: usize) -> Result<Option<Bytes>, ReadError> {
        if self.closed {
            return Err(ReadError::Closed);
        }
        let recv = self.streams.get_mut(&id).and_then(|s| s.recv.as_mut()).ok_or(ReadError::UnknownStream)?;
        let Some(front) = recv.chunks.front_mut() else {
            recv.signalled = false;
            if !recv.fin {
                return Err(ReadError::Blocked);
            }
            if let Some(s) = self.streams.get_mut(&id) {
                s.recv = None;
            }
            self.maybe_forget(id);
            return Ok(None);
        };
        let chunk = if front.len() <= max.max(1) {
            recv.chunks.pop_front().unwrap_or_default()
        } else {
            front.split_to(max.max(1))
        };
        let n = chunk.len() as u64;
        recv.buffered -= n;
        if recv.buffered == 0 && !recv.fin {
            recv.signalled = false;
        }
        self.consumed(id, n);
        Ok(Some(chunk))
    }

    /// Stops reading: drops buffered data and, unless the FIN already arrived, sends
    /// STOP_SENDING with `code`. What the peer still sends is discarded.
    pub fn stop(&mut self, id: StreamId, code: u64) -> Result<(), ReadError> {
        if self.closed {
            return Err(ReadError::Closed);
        }
        if code > varint::MAX {
            return Err(ReadError::InvalidCode);
        }
        let recv = self.streams.get_mut(&id).and_then(|s| s.recv.take()).ok_or(ReadError::UnknownStream)?;
        self.conn_consumed(recv.buffered);
        if !recv.fin {
            self.control.push_back(Frame::StopSending { id, code });
        }
        self.maybe_forget(id);
        Ok(())
    }

    /// Accounts `n` bytes read from stream `id`, extending its window and the connection's.
    fn consumed(&mut self, id: StreamId, n: u64) {
        let qmux = self.version.is_qmux();
        if let Some(recv) = self.streams.get_mut(&id).and_then(|s| s.recv.as_mut()) {
            recv.consumed += n;
            if let Some(new_max) = replenish(recv.consumed, recv.max, recv.window, !qmux) {
                recv.max = new_max;
                if qmux && !recv.fin && !recv.update_queued {
                    recv.update_queued = true;
                    self.max_stream_data_queue.push_back(id);
                }
            }
        }
        self.conn_consumed(n);
    }

    /// Accounts `n` connection-level bytes as gone (read or discarded), extending MAX_DATA.
    pub(super) fn conn_consumed(&mut self, n: u64) {
        self.conn_consumed += n;
        let legacy = !self.version.is_qmux();
        if let Some(new_max) = replenish(self.conn_consumed, self.conn_recv_max, self.config.max_data, legacy) {
            self.conn_recv_max = new_max;
            self.max_data_dirty = !legacy;
        }
    }

    /// Forgets a stream once both halves are done, replenishing the peer's stream credit.
    pub(super) fn maybe_forget(&mut self, id: StreamId) {
        let done = self.streams.get(&id).is_some_and(|s| s.send.is_none() && s.recv.is_none());
        if !done {
            return;
        }
        self.streams.remove(&id);
        if id.initiator() == self.role {
            return;
        }
        let qmux = self.version.is_qmux();
        let r = &mut self.remote[id.dir().idx()];
        r.closed += 1;
        let new_max = (r.closed + r.limit * super::legacy_headroom(self.version)).min(MAX_STREAM_COUNT);
        // Batch updates (an eighth of the limit), but never leave the peer nearly out of credit.
        let step = (r.limit / 8).max(1);
        if new_max > r.max && (!qmux || new_max - r.max >= step || r.max - r.opened < step) {
            r.max = new_max;
            r.dirty = qmux;
        }
    }

    /// Emits `Writable` for streams that waited on the send buffer, now that it drained.
    pub(super) fn wake_buffer_waiters(&mut self) {
        while self.queued_total < self.config.send_buffer {
            let Some(id) = self.buffer_waiters.pop_front() else { return };
            if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) {
                send.in_buffer_waiters = false;
                if send.want_writable && send.state == SendState::Open {
                    send.want_writable = false;
                    self.events.push_back(Event::Writable(id));
                }
            }
        }
    }
}

/// The new receive limit once the unused part of a window falls to half of it (both of
/// moq-dev's peers do the same), or always in the legacy format where limits are local.
fn replenish(consumed: u64, max: u64, window: u64, always: bool) -> Option<u64> {
    let new_max = consumed.saturating_add(window).min(varint::MAX);
    (new_max > max && (always || max.saturating_sub(consumed) <= window / 2)).then_some(new_max)
}
