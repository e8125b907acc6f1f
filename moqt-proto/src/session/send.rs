//! Per-stream plumbing: the send queue behind [`Command::Write`], the read grants behind
//! [`Command::Read`], and opening, finishing, resetting and forgetting streams.
//!
//! Outgoing bytes stay queued here (as `Bytes`, never copied) until the transport reports them
//! written, so the delivery policy sees what QUIC flow control holds back. Each stream has at
//! most one write in flight; the write is built when the driver polls, so frames queued in one
//! burst leave in one write. Every queued byte counts against the session's `max_queued`; a
//! control stream whose queue passes `max_queued_control` is reset (its peer does not read).
//!
//! Incoming bytes are read only under grants, and a grant is sized to what is left of the
//! session's receive allowance (`max_recv_buffered`, or less when the node shares out a smaller
//! budget). A stream with nothing left waits on the *deferred* list and is granted again when
//! a fair share of the allowance is free. Since a read returns only what the transport already
//! holds, the core's receive buffers stay within the allowance plus one QUIC connection window.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::io::{Chunks, MAX_WRITE_CHUNKS};
use super::{stream_code, Command, Role, Session, SessionTimer, StreamId};
use crate::message::Codec;
use crate::stream::{StreamDecoder, StreamType};

/// The scratch buffer that headers and messages are encoded into is refilled in blocks of this
/// size (each block lives until the transport has taken every header cut from it; a smaller
/// block means an allocation every few dozen frames of a subscriber)...
const SCRATCH_BLOCK: usize = 16 * 1024;
/// ...when less than this is left.
const SCRATCH_LOW: usize = 1024;

/// Bytes waiting for the transport on one stream.
#[derive(Debug, Default)]
pub(super) struct SendQueue {
    chunks: VecDeque<Bytes>,
    /// Queued bytes, including those of the write in flight.
    pub(super) bytes: usize,
    /// FIN after the queued bytes.
    pub(super) fin: bool,
    /// FIN handed to the transport, or reset: nothing more will be sent.
    pub(super) closed: bool,
    /// The write in flight: its byte count and whether it carries FIN.
    in_flight: Option<(usize, bool)>,
    /// A write is due in the command queue.
    due: bool,
}

/// One stream's state.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) role: Role,
    /// Decoder for the peer's direction; `None` on our uni streams or once reading stopped.
    pub(super) recv: Option<StreamDecoder>,
    /// A read grant is out.
    pub(super) reading: bool,
    /// Waiting on the deferred list for receive allowance.
    pub(super) deferred: bool,
    /// Undecoded bytes of this stream counted in the session's `recv_buffered`.
    pub(super) counted: usize,
    /// When bytes last arrived while a partial message was buffered.
    pub(super) progress: Option<Instant>,
    pub(super) send: SendQueue,
}

impl Stream {
    pub(super) fn new(role: Role, recv: Option<StreamDecoder>) -> Self {
        Self { role, recv, reading: false, deferred: false, counted: 0, progress: None, send: SendQueue::default() }
    }

    /// Whether this endpoint can send on stream `id`.
    pub(super) fn has_send(id: StreamId) -> bool {
        !id.is_remote() || !id.is_uni()
    }
}

/// An entry of the command queue: a finished command, or a write to build when polled.
#[derive(Debug)]
pub(super) enum Pending {
    Ready(Command),
    Write(StreamId),
}

impl Session {
    /// Builds the write for `id` from its queue, if one is due and none is in flight.
    pub(super) fn build_write(&mut self, id: StreamId) -> Option<Command> {
        let q = &mut self.streams.get_mut(&id)?.send;
        q.due = false;
        if q.closed || q.in_flight.is_some() {
            return None;
        }
        let chunks: Chunks = q.chunks.iter().take(MAX_WRITE_CHUNKS).cloned().collect();
        let fin = q.fin && chunks.len() == q.chunks.len();
        if chunks.is_empty() && !fin {
            return None;
        }
        let bytes = chunks.iter().map(Bytes::len).sum();
        q.in_flight = Some((bytes, fin));
        Some(Command::Write { stream: id, chunks, fin })
    }

    /// The transport took `bytes` of stream `id`'s write in flight.
    pub(super) fn on_written(&mut self, id: StreamId, mut bytes: usize) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let q = &mut stream.send;
        let Some((sent, fin)) = q.in_flight.take() else { return };
        if q.closed {
            return;
        }
        if bytes == 0 && sent > 0 {
            // The stream can take no more (the peer stopped it, or the connection is going):
            // writing again would be answered the same way at once. Drop what is queued; the
            // driver reports what ended it (`StopSending` or `Closed`), which ends its role.
            self.discard_send(id);
            return;
        }
        bytes = bytes.min(sent);
        let taken = bytes;
        while bytes > 0 {
            let Some(front) = q.chunks.front_mut() else { break };
            if front.len() <= bytes {
                bytes -= front.len();
                q.chunks.pop_front();
            } else {
                let _ = front.split_to(bytes);
                bytes = 0;
            }
        }
        q.bytes -= taken;
        let done = fin && taken == sent;
        if done {
            q.closed = true;
        } else if (!q.chunks.is_empty() || q.fin) && !q.due {
            q.due = true;
            self.commands.push_back(Pending::Write(id));
        }
        self.queued -= taken;
        if let Role::GroupOut(g) = &mut stream.role {
            if taken > 0 {
                g.progress = self.now;
            }
            let publication = g.publication;
            if let Some(p) = self.publication_mut(publication) {
                p.queued -= taken;
            }
            if done {
                self.group_done(id);
            }
        } else if done {
            self.gc(id);
        }
    }

    /// Grants the driver one read of stream `id`, if it is being read and none is out, within
    /// the receive allowance (otherwise the stream waits on the deferred list).
    pub(super) fn grant_read(&mut self, id: StreamId) {
        let limits = self.codec.limits;
        let room = self.recv_allowance.saturating_sub(self.recv_buffered);
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let Some(decoder) = stream.recv.as_ref() else { return };
        if stream.reading || stream.deferred {
            return;
        }
        let limit = if decoder.in_frames() { limits.max_frame_size } else { limits.max_message_size };
        let max = (limit as usize + 32).saturating_sub(decoder.buffered()).min(room);
        if max == 0 {
            stream.deferred = true;
            self.deferred.push(id);
            self.stats.reads_deferred += 1;
            return;
        }
        stream.reading = true;
        self.commands.push_back(Pending::Ready(Command::Read { stream: id, max }));
    }

    /// Sets the receive allowance (the node's share of its budget, at most `max_recv_buffered`).
    pub fn set_recv_allowance(&mut self, allowance: usize) {
        let allowance = allowance.min(self.config.session_limits.max_recv_buffered);
        if allowance != self.recv_allowance {
            self.recv_allowance = allowance;
            self.resume_reads();
        }
    }

    /// Bytes received and not yet decoded, across the session.
    pub fn recv_buffered(&self) -> usize {
        self.recv_buffered
    }

    /// Whether some stream waits for receive allowance.
    pub fn reads_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Grants deferred streams again once an eighth of the allowance is free (the hysteresis
    /// keeps a session at its limit from rescanning its deferred streams on every byte).
    pub(super) fn resume_reads(&mut self) {
        let room = self.recv_allowance.saturating_sub(self.recv_buffered);
        if self.deferred.is_empty() || room < (self.recv_allowance / 8).max(1) {
            return;
        }
        for id in std::mem::take(&mut self.deferred) {
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.deferred = false;
                self.grant_read(id);
            }
        }
    }

    /// Records how many undecoded bytes stream `id` now holds, and when it last made progress.
    pub(super) fn account_recv(&mut self, id: StreamId, arrived: bool) {
        let now = self.now;
        let timeout = self.config.session_limits.partial_timeout;
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let held = stream.recv.as_ref().map_or(0, StreamDecoder::buffered);
        let before = std::mem::replace(&mut stream.counted, held);
        self.recv_buffered = self.recv_buffered - before + held;
        if held == 0 {
            stream.progress = None;
        } else if arrived || stream.progress.is_none() {
            stream.progress = Some(now);
            if let Some(at) = now.checked_add(timeout) {
                self.timers.arm(SessionTimer::Partial(id), at);
            }
        }
        if held < before {
            self.resume_reads();
        }
    }

    /// A stalled-partial timer fired: reset the stream if it made no progress for the timeout.
    pub(super) fn check_partial(&mut self, id: StreamId) {
        let timeout = self.config.session_limits.partial_timeout;
        let Some(stream) = self.streams.get(&id) else { return };
        let Some(since) = stream.progress else { return };
        if self.now.saturating_duration_since(since) < timeout {
            if let Some(at) = since.checked_add(timeout) {
                self.timers.arm(SessionTimer::Partial(id), at);
            }
            return;
        }
        self.stats.partial_timeouts += 1;
        tracing::debug!(?id, "a partial message stalled: resetting the stream");
        let data = matches!(stream.role, Role::GroupIn(_) | Role::FetchOut);
        let code = if data { stream_code::DELIVERY_TIMEOUT } else { stream_code::CONTROL_TIMEOUT };
        self.stop_recv(id, code);
        self.on_reset(id, code);
    }

    /// Opens a local stream, queues its type, and returns its handle.
    pub(super) fn open(&mut self, ty: StreamType, role: Role, priority: i32) -> StreamId {
        let uni = ty.is_uni();
        let counter = &mut self.next_local[usize::from(uni)];
        let id = StreamId::local(*counter, uni);
        *counter += 1;
        self.commands.push_back(Pending::Ready(Command::Open { stream: id, priority }));
        let recv = (!uni).then(|| StreamDecoder::responder(self.codec, ty));
        self.streams.insert(id, Stream::new(role, recv));
        self.write_msg(id, |buf, _| ty.encode(buf));
        self.grant_read(id);
        id
    }

    /// Encodes into the shared scratch buffer and queues the result on stream `id`.
    pub(super) fn write_msg(&mut self, id: StreamId, encode: impl FnOnce(&mut BytesMut, &Codec)) -> usize {
        self.refill_scratch();
        encode(&mut self.scratch, &self.codec);
        let bytes = self.scratch.split().freeze();
        let n = bytes.len();
        self.queue(id, bytes);
        n
    }

    /// Makes room in the scratch buffer *before* encoding: by then the transport has usually
    /// taken the headers split off earlier, so `reserve` reclaims the same allocation instead of
    /// making a new one. A session starts with no block, so an idle one holds none.
    pub(super) fn refill_scratch(&mut self) {
        if self.scratch.capacity() < SCRATCH_LOW {
            self.scratch.reserve(SCRATCH_BLOCK);
        }
    }

    fn schedule_write(commands: &mut VecDeque<Pending>, id: StreamId, q: &mut SendQueue) {
        if !q.due && q.in_flight.is_none() {
            q.due = true;
            commands.push_back(Pending::Write(id));
        }
    }

    /// Queues a chunk on stream `id` (no copy).
    pub(super) fn queue(&mut self, id: StreamId, data: Bytes) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let q = &mut stream.send;
        if q.closed || q.fin || data.is_empty() {
            return;
        }
        let n = data.len();
        if q.bytes == 0 {
            if let Role::GroupOut(g) = &mut stream.role {
                g.progress = self.now;
            }
        }
        let q = &mut stream.send;
        q.bytes += n;
        q.chunks.push_back(data);
        Self::schedule_write(&mut self.commands, id, q);
        // Every queued byte counts against the session's budget; group bytes also against the
        // subscription's.
        self.queued += n;
        match &stream.role {
            Role::GroupOut(g) => {
                let publication = g.publication;
                if let Some(p) = self.publication_mut(publication) {
                    p.queued += n;
                }
            }
            _ if stream.send.bytes > self.config.session_limits.max_queued_control => {
                self.stats.control_overflows += 1;
                tracing::debug!(?id, "the peer does not read a control stream: resetting it");
                self.on_stop(id, stream_code::TOO_FAR_BEHIND);
            }
            // Control bytes count against the session's budget too, and go before media: the
            // oldest queued groups make room for them.
            _ => self.shed_groups(id),
        }
    }

    /// Queues FIN on stream `id`.
    pub(super) fn finish(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let q = &mut stream.send;
        if q.closed || q.fin {
            return;
        }
        q.fin = true;
        Self::schedule_write(&mut self.commands, id, q);
    }

    /// Resets our send side of `id` (dropping what is queued).
    pub(super) fn reset_send(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        if !Stream::has_send(id) || stream.send.closed {
            return;
        }
        self.discard_send(id);
        self.commands.push_back(Pending::Ready(Command::Reset { stream: id, code }));
    }

    /// Closes our send side of `id` without a word to the transport, dropping what is queued.
    fn discard_send(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let q = &mut stream.send;
        let dropped = q.bytes;
        q.chunks.clear();
        q.bytes = 0;
        q.closed = true;
        q.in_flight = None;
        self.queued -= dropped;
        if let Role::GroupOut(g) = &stream.role {
            let publication = g.publication;
            if let Some(p) = self.publication_mut(publication) {
                p.queued -= dropped;
            }
        }
    }

    /// Stops reading `id` (STOP_SENDING) and discards what is buffered.
    pub(super) fn stop_recv(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        if stream.recv.take().is_some() {
            stream.reading = false;
            self.commands.push_back(Pending::Ready(Command::StopSending { stream: id, code }));
            self.account_recv(id, false);
        }
    }

    /// Abandons a stream in both directions and forgets it.
    pub(super) fn abort(&mut self, id: StreamId, code: u64) {
        self.reset_send(id, code);
        self.stop_recv(id, code);
        self.remove_stream(id);
    }

    /// Forgets `id` once both directions are done.
    pub(super) fn gc(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get(&id) else { return };
        let send_done = !Stream::has_send(id) || stream.send.closed;
        if send_done && stream.recv.is_none() {
            self.remove_stream(id);
        }
    }

    pub(super) fn remove_stream(&mut self, id: StreamId) {
        let _ = self.take_stream(id);
    }

    /// Removes a stream and settles everything counted for it.
    pub(super) fn take_stream(&mut self, id: StreamId) -> Option<Stream> {
        let stream = self.streams.remove(&id)?;
        if id.is_remote() {
            self.remote_streams -= 1;
        }
        if matches!(stream.role, Role::InterestIn(_)) {
            self.peer_interests -= 1;
        }
        self.queued -= stream.send.bytes;
        if let Role::GroupOut(g) = &stream.role {
            let publication = g.publication;
            let bytes = stream.send.bytes;
            if let Some(p) = self.publication_mut(publication) {
                p.queued -= bytes;
            }
        }
        if stream.counted > 0 {
            self.recv_buffered -= stream.counted;
            self.resume_reads();
        }
        Some(stream)
    }
}
