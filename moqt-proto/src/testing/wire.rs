//! [`Wire`]: an in-memory transport between two ends that behaves like a QUIC connection as the
//! driver contract of [`crate::session`]'s `io` module describes it, and checks that contract:
//! writes are answered by `Written`, reads only happen under a read grant, resets cancel writes,
//! and priorities decide which stream's bytes cross first when the wire is congested.
//!
//! Each direction keeps, per stream, the bytes the sender's transport has accepted but not yet
//! transmitted (bounded per side by [`WireOptions::send_window`], like a QUIC send buffer) and
//! the bytes transmitted but not yet read (bounded per stream by [`WireOptions::recv_window`],
//! like QUIC stream flow control). [`Wire::transmit`] moves bytes across, highest priority first,
//! at most [`WireOptions::bandwidth`] per direction per call. As in QUIC, a stream the peer opened
//! sends at priority 0 until its endpoint says otherwise. Nothing here reads a clock, and in
//! steady state (no new streams) nothing allocates.
//!
//! Breaches of the contract (a command naming a stream never opened, a second write or read
//! grant in flight, a write after FIN, opening an id twice) are recorded as
//! [`Wire::violations`]; [`Net`](super::Net) fails the test on them.
//!
//! Tests can also play an endpoint by hand through the *raw* API (in [`raw`](super::raw)).

use std::any::Any;
use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rustc_hash::{FxHashMap, FxHashSet};

use super::link::Link;
use crate::session::{Chunks, Command, StreamId, TransportEvent};

/// How the wire behaves.
#[derive(Debug, Clone, Copy)]
pub struct WireOptions {
    /// Bytes the sender's transport accepts but has not transmitted, per connection side.
    pub send_window: usize,
    /// Unread bytes a receiver holds per stream before the sender is blocked.
    pub recv_window: usize,
    /// Bytes moved across per direction per [`Wire::transmit`] call.
    pub bandwidth: usize,
    /// Largest `StreamData` handed to a reader (reads are split to this size).
    pub max_read: usize,
    /// Datagrams queued per direction before new ones are dropped.
    pub max_datagrams: usize,
    /// Hand readable streams to the reader in a seeded random order instead of FIFO (per-stream
    /// order always holds).
    pub shuffle: Option<u64>,
}

impl Default for WireOptions {
    fn default() -> Self {
        Self {
            send_window: usize::MAX,
            recv_window: usize::MAX,
            bandwidth: usize::MAX,
            max_read: usize::MAX,
            max_datagrams: 1024,
            shuffle: None,
        }
    }
}

/// What a wire counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Stream bytes transmitted, per direction (index = sending side).
    pub bytes: [u64; 2],
    /// Datagrams dropped because the queue was full.
    pub datagrams_dropped: u64,
    /// Streams reset by their sender, per sending side.
    pub resets: [u64; 2],
}

/// The sending half of one stream.
#[derive(Debug, Default)]
pub(super) struct SendHalf {
    /// The receiver's name for the stream.
    peer: StreamId,
    priority: i32,
    /// Accepted, not transmitted.
    pub(super) queued: VecDeque<Bytes>,
    pub(super) queued_bytes: usize,
    /// FIN accepted (after `queued`).
    pub(super) fin: bool,
    /// A write that could not be taken yet.
    blocked: Option<(Chunks, bool)>,
    /// A `Written` for this stream is queued and not yet polled.
    answering: bool,
    /// Stopped by the peer: nothing more is sent.
    pub(super) done: bool,
}

/// The receiving half of one stream.
#[derive(Debug, Default)]
pub(super) struct RecvHalf {
    /// The sender's name for the stream.
    from: StreamId,
    pub(super) unread: VecDeque<Bytes>,
    pub(super) unread_bytes: usize,
    pub(super) fin: bool,
    /// The reader's grant.
    grant: Option<usize>,
}

impl RecvHalf {
    fn readable(&self) -> bool {
        !self.unread.is_empty() || self.fin
    }
}

/// One end of the wire.
#[derive(Debug, Default)]
pub(super) struct End {
    pub(super) sends: FxHashMap<StreamId, SendHalf>,
    pub(super) recvs: FxHashMap<StreamId, RecvHalf>,
    /// Every stream this end ever knew, with the other end's name for it.
    names: FxHashMap<StreamId, StreamId>,
    /// Streams driven through the raw API: their events bypass this end's endpoint.
    pub(super) raw: FxHashSet<StreamId>,
    /// Streams that may have bytes or a FIN to transmit (so idle streams cost nothing).
    pub(super) active: FxHashSet<StreamId>,
    /// Streams with a write waiting for room in the send window.
    blocked: FxHashSet<StreamId>,
    next_remote: u64,
    pub(super) next_raw: u64,
    /// Streams with unread data or FIN and a grant, to hand to the reader.
    readable: VecDeque<StreamId>,
    datagrams: VecDeque<Bytes>,
    events: VecDeque<TransportEvent>,
    pub(super) raw_events: VecDeque<TransportEvent>,
    held: bool,
    /// Everything this end sends is taken at once and dropped (an infinitely fast sink).
    discard: bool,
    pub(super) queued_bytes: usize,
}

impl End {
    fn emit(&mut self, ev: TransportEvent) {
        let raw = stream_of(&ev).is_some_and(|id| self.raw.contains(&id));
        if raw {
            self.raw_events.push_back(ev);
        } else {
            self.events.push_back(ev);
        }
    }
}

fn stream_of(ev: &TransportEvent) -> Option<StreamId> {
    match ev {
        TransportEvent::StreamOpened(id) => Some(*id),
        TransportEvent::StreamData { stream, .. }
        | TransportEvent::StreamReset { stream, .. }
        | TransportEvent::StopSending { stream, .. }
        | TransportEvent::Written { stream, .. } => Some(*stream),
        TransportEvent::Datagram(_) | TransportEvent::Closed { .. } => None,
    }
}

/// A connection between side 0 and side 1. See the module docs.
#[derive(Debug, Default)]
pub struct Wire {
    pub(super) ends: [End; 2],
    opts: WireOptions,
    pub(super) closed: bool,
    stats: WireStats,
    rng: u64,
    violations: Vec<String>,
    /// Scratch for the per-transmit priority order (kept to avoid allocating).
    order: Vec<(Reverse<i32>, StreamId)>,
}

impl Wire {
    /// A fresh connection.
    pub fn new(opts: WireOptions) -> Self {
        let rng = opts.shuffle.unwrap_or(0) | 1;
        Self { opts, rng, ..Self::default() }
    }

    /// The options (they may be changed at any time, e.g. to congest a running wire).
    pub fn options_mut(&mut self) -> &mut WireOptions {
        &mut self.opts
    }

    /// Counters.
    pub fn stats(&self) -> WireStats {
        self.stats
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Stalls (or resumes) `side`'s sending, as a path whose send buffer is full would: nothing
    /// of `side` is accepted or transmitted while held; writes wait and are taken on release.
    pub fn hold(&mut self, side: usize, held: bool) {
        self.ends[side].held = held;
    }

    /// Makes (or stops making) `side`'s transport an infinitely fast sink: every write is taken
    /// whole at once, counted in [`WireStats::bytes`] and dropped, and streams `side` opens from
    /// now on are never shown to the other side. For benchmarks that measure one endpoint's own
    /// work.
    pub fn discard(&mut self, side: usize, discard: bool) {
        self.ends[side].discard = discard;
    }

    /// Bytes `side`'s transport has accepted and not yet transmitted.
    pub fn queued(&self, side: usize) -> usize {
        self.ends[side].queued_bytes
    }

    /// Whether `side` ever knew this stream (opened it, or was told the peer opened it).
    pub fn knows(&self, side: usize, stream: StreamId) -> bool {
        self.ends[side].names.contains_key(&stream)
    }

    /// The other side's name for a stream `side` knows.
    pub fn peer_name(&self, side: usize, stream: StreamId) -> Option<StreamId> {
        self.ends[side].names.get(&stream).copied()
    }

    /// The next transport event for `side`.
    pub fn poll_event(&mut self, side: usize) -> Option<TransportEvent> {
        if let Some(ev) = self.ends[side].events.pop_front() {
            if let TransportEvent::Written { stream, .. } = &ev {
                if let Some(s) = self.ends[side].sends.get_mut(stream) {
                    s.answering = false;
                }
            }
            return Some(ev);
        }
        if let Some(d) = self.ends[side].datagrams.pop_front() {
            return Some(TransportEvent::Datagram(d));
        }
        self.next_read(side)
    }

    fn violation(&mut self, side: usize, what: &str, cmd: &Command) {
        self.violations.push(format!("side {side}: {what}: {cmd:?}"));
    }

    /// Checks that `side` may name `stream` in `cmd` (`send`: for sending, else for reading).
    fn check(&mut self, side: usize, stream: StreamId, send: bool, cmd: &Command) -> bool {
        if !self.knows(side, stream) {
            self.violation(side, "stream never opened", cmd);
            return false;
        }
        let wrong_way = stream.is_uni() && (stream.is_remote() == send);
        if wrong_way {
            self.violation(side, "wrong direction for this stream", cmd);
            return false;
        }
        true
    }

    /// Executes one command of `side`.
    pub fn execute(&mut self, side: usize, cmd: Command) {
        if self.closed {
            return;
        }
        let other = 1 - side;
        match cmd {
            Command::Open { stream, priority } => {
                if stream.is_remote() || self.knows(side, stream) {
                    return self.violation(side, "opens a remote or known id", &cmd);
                }
                self.open(side, stream, priority);
            }
            Command::Read { stream, max } => {
                if !self.check(side, stream, false, &cmd) {
                    return;
                }
                let Some(r) = self.ends[side].recvs.get_mut(&stream) else { return };
                if r.grant.is_some() || max == 0 {
                    return self.violation(side, "read grant while one is out, or of zero bytes", &cmd);
                }
                r.grant = Some(max);
                if r.readable() {
                    self.ends[side].readable.push_back(stream);
                }
            }
            Command::Write { stream, chunks, fin } => {
                if !self.check(side, stream, true, &Command::Write { stream, chunks: Chunks::new(), fin }) {
                    return;
                }
                let Some(s) = self.ends[side].sends.get_mut(&stream) else {
                    self.violation(side, "write after FIN or reset", &Command::Write { stream, chunks, fin });
                    return self.ends[side].emit(TransportEvent::Written { stream, bytes: 0 });
                };
                if s.answering || s.blocked.is_some() || s.fin {
                    let what = if s.fin { "write after FIN" } else { "write while one is in flight" };
                    return self.violation(side, what, &Command::Write { stream, chunks, fin });
                }
                if s.done {
                    s.answering = true;
                    return self.ends[side].emit(TransportEvent::Written { stream, bytes: 0 });
                }
                s.blocked = Some((chunks, fin));
                self.accept(side, stream);
            }
            Command::Reset { stream, code } => {
                if !self.check(side, stream, true, &cmd) {
                    return;
                }
                let end = &mut self.ends[side];
                let Some(s) = end.sends.remove(&stream) else { return };
                end.queued_bytes -= s.queued_bytes;
                end.active.remove(&stream);
                end.blocked.remove(&stream);
                if s.done {
                    return;
                }
                self.stats.resets[side] += 1;
                if self.ends[other].recvs.remove(&s.peer).is_some() {
                    self.ends[other].emit(TransportEvent::StreamReset { stream: s.peer, code });
                }
            }
            Command::StopSending { stream, code } => {
                if !self.check(side, stream, false, &cmd) {
                    return;
                }
                let Some(r) = self.ends[side].recvs.remove(&stream) else { return };
                let peer = r.from;
                let end = &mut self.ends[other];
                let Some(s) = end.sends.get_mut(&peer) else { return };
                if s.done {
                    return;
                }
                s.done = true;
                s.queued.clear();
                end.queued_bytes -= std::mem::take(&mut s.queued_bytes);
                end.active.remove(&peer);
                end.blocked.remove(&peer);
                if s.blocked.take().is_some() {
                    s.answering = true;
                    end.emit(TransportEvent::Written { stream: peer, bytes: 0 });
                }
                end.emit(TransportEvent::StopSending { stream: peer, code });
            }
            Command::SetPriority { stream, priority } => {
                if !self.check(side, stream, true, &cmd) {
                    return;
                }
                if let Some(s) = self.ends[side].sends.get_mut(&stream) {
                    s.priority = priority;
                }
            }
            Command::SendDatagram(data) => {
                if self.ends[other].datagrams.len() >= self.opts.max_datagrams {
                    self.stats.datagrams_dropped += 1;
                } else {
                    self.ends[other].datagrams.push_back(data);
                }
            }
            Command::Close { code, reason } => {
                self.ends[other].events.push_back(TransportEvent::Closed { code, reason: reason.clone() });
                self.ends[side].events.push_back(TransportEvent::Closed { code, reason });
                self.closed = true;
            }
        }
    }

    /// Creates both halves of a stream `side` opens and tells the other side; returns the other
    /// side's name for it.
    pub(super) fn open(&mut self, side: usize, stream: StreamId, priority: i32) -> StreamId {
        let other = 1 - side;
        let uni = stream.is_uni();
        let peer = StreamId::remote(self.ends[other].next_remote, uni);
        self.ends[other].next_remote += 1;
        self.ends[side].names.insert(stream, peer);
        self.ends[side].sends.insert(stream, SendHalf { peer, priority, ..Default::default() });
        if self.ends[side].discard {
            return peer;
        }
        self.ends[other].names.insert(peer, stream);
        self.ends[other].recvs.insert(peer, RecvHalf { from: stream, ..Default::default() });
        if !uni {
            // As in QUIC, the accepting side sends at the default priority until told otherwise.
            self.ends[other].sends.insert(peer, SendHalf { peer: stream, priority: 0, ..Default::default() });
            self.ends[side].recvs.insert(stream, RecvHalf { from: peer, ..Default::default() });
        }
        self.ends[other].emit(TransportEvent::StreamOpened(peer));
        peer
    }

    /// Closes the connection under both ends (a lost path), with `code`.
    pub fn disconnect(&mut self, code: u64, reason: &str) {
        if self.closed {
            return;
        }
        for end in &mut self.ends {
            end.events.push_back(TransportEvent::Closed { code, reason: reason.to_string() });
        }
        self.closed = true;
    }

    /// Moves accepted bytes across in both directions (at most `bandwidth` each), highest
    /// priority first. Returns whether anything moved.
    pub fn transmit(&mut self) -> bool {
        let mut moved = false;
        for side in [0, 1] {
            moved |= self.transmit_from(side);
        }
        moved
    }

    /// The contract breaches seen so far.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Accepts as much of `stream`'s blocked write as the send window allows.
    fn accept(&mut self, side: usize, stream: StreamId) {
        let window = self.opts.send_window;
        let end = &mut self.ends[side];
        let Some(s) = end.sends.get_mut(&stream) else { return };
        let Some((mut chunks, fin)) = s.blocked.take() else { return };
        if end.discard {
            let taken: usize = chunks.iter().map(Bytes::len).sum();
            self.stats.bytes[side] += taken as u64;
            if fin {
                end.sends.remove(&stream);
            } else {
                s.answering = true;
            }
            return end.emit(TransportEvent::Written { stream, bytes: taken });
        }
        let room = if end.held { 0 } else { window.saturating_sub(end.queued_bytes) };
        let total: usize = chunks.iter().map(Bytes::len).sum();
        if (total > 0 && room == 0) || (total == 0 && end.held) {
            s.blocked = Some((chunks, fin));
            end.blocked.insert(stream);
            return;
        }
        end.blocked.remove(&stream);
        let mut taken = 0;
        for chunk in chunks.iter_mut() {
            let take = chunk.len().min(room - taken);
            if take == 0 {
                break;
            }
            s.queued.push_back(chunk.split_to(take));
            taken += take;
        }
        s.queued_bytes += taken;
        end.queued_bytes += taken;
        if taken == total && fin {
            s.fin = true;
        }
        if s.fin || taken > 0 {
            end.active.insert(stream);
        }
        s.answering = true;
        end.emit(TransportEvent::Written { stream, bytes: taken });
    }

    fn transmit_from(&mut self, side: usize) -> bool {
        let end = &self.ends[side];
        if end.held || self.closed || (end.active.is_empty() && end.blocked.is_empty()) {
            return false;
        }
        // Highest priority first; equal priorities in stream order.
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        let end = &mut self.ends[side];
        let sends = &end.sends;
        end.active.retain(|id| sends.get(id).is_some_and(|s| !s.done && (!s.queued.is_empty() || s.fin)));
        order.extend(end.active.iter().map(|id| (Reverse(sends[id].priority), *id)));
        order.sort_unstable();
        let mut budget = self.opts.bandwidth;
        let mut moved = false;
        for &(_, id) in &order {
            if budget == 0 {
                break;
            }
            let [a, b] = &mut self.ends;
            let (from, to) = if side == 0 { (a, b) } else { (b, a) };
            let Some(s) = from.sends.get_mut(&id) else { continue };
            let peer = s.peer;
            let Some(r) = to.recvs.get_mut(&peer) else {
                // The reader is gone: what was queued is discarded.
                from.queued_bytes -= std::mem::take(&mut s.queued_bytes);
                s.queued.clear();
                s.done = true;
                from.active.remove(&id);
                continue;
            };
            let was_readable = r.readable();
            while budget > 0 && r.unread_bytes < self.opts.recv_window {
                let Some(front) = s.queued.front_mut() else { break };
                let room = (self.opts.recv_window - r.unread_bytes).min(budget);
                let chunk =
                    if front.len() <= room { s.queued.pop_front().expect("front") } else { front.split_to(room) };
                let n = chunk.len();
                s.queued_bytes -= n;
                from.queued_bytes -= n;
                budget -= n;
                self.stats.bytes[side] += n as u64;
                r.unread_bytes += n;
                r.unread.push_back(chunk);
                moved = true;
            }
            if s.queued.is_empty() {
                if s.fin {
                    r.fin = true;
                    moved = true;
                    from.sends.remove(&id);
                }
                from.active.remove(&id);
            }
            if !was_readable && r.readable() && r.grant.is_some() {
                to.readable.push_back(peer);
            }
        }
        // Room freed in the send window: take blocked writes, highest priority first.
        order.clear();
        let end = &self.ends[side];
        order.extend(end.blocked.iter().filter_map(|id| end.sends.get(id).map(|s| (Reverse(s.priority), *id))));
        order.sort_unstable();
        for &(_, id) in &order {
            self.accept(side, id);
        }
        self.order = order;
        moved
    }

    /// One read for a granted, readable stream of `side`.
    fn next_read(&mut self, side: usize) -> Option<TransportEvent> {
        let max_read = self.opts.max_read;
        let shuffle = self.opts.shuffle.is_some();
        loop {
            let pick = if shuffle && !self.ends[side].readable.is_empty() {
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                (self.rng % self.ends[side].readable.len() as u64) as usize
            } else {
                0
            };
            let end = &mut self.ends[side];
            let id = end.readable.remove(pick)?;
            let Some(r) = end.recvs.get_mut(&id) else { continue };
            let Some(grant) = r.grant else { continue };
            if !r.readable() {
                continue;
            }
            let limit = grant.min(max_read).max(1);
            let data = match r.unread.front_mut() {
                Some(front) if front.len() <= limit => r.unread.pop_front().expect("front"),
                Some(front) => front.split_to(limit),
                None => Bytes::new(),
            };
            r.unread_bytes -= data.len();
            let fin = r.fin && r.unread.is_empty();
            r.grant = None;
            if fin {
                end.recvs.remove(&id);
            }
            return Some(TransportEvent::StreamData { stream: id, data, fin });
        }
    }
}

impl Link for Wire {
    fn execute(&mut self, side: usize, cmd: Command) {
        Wire::execute(self, side, cmd);
    }

    fn poll_event(&mut self, side: usize) -> Option<TransportEvent> {
        Wire::poll_event(self, side)
    }

    fn transmit(&mut self, _now: Instant) -> bool {
        Wire::transmit(self)
    }

    fn disconnect(&mut self, code: u64, reason: &str) {
        Wire::disconnect(self, code, reason);
    }

    fn violations(&self) -> &[String] {
        &self.violations
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
