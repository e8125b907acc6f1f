//! [`Wire`]: an in-memory transport between two ends that honours the driver contract of
//! [`crate::session`]'s `io` module exactly: writes are answered by `Written`, reads only
//! happen under a read grant, resets cancel writes, and priorities decide which stream's bytes
//! cross first when the wire is congested.
//!
//! Each direction keeps, per stream, the bytes the sender's transport has accepted but not yet
//! transmitted (bounded by [`WireOptions::send_window`]) and the bytes transmitted but not yet
//! read (bounded by [`WireOptions::recv_window`], like QUIC stream flow control).
//! [`Wire::transmit`] moves bytes across, highest priority first, at most
//! [`WireOptions::bandwidth`] per call. Nothing here reads a clock.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use rustc_hash::FxHashMap;

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
}

/// The sending half of one stream.
#[derive(Debug, Default)]
struct SendHalf {
    /// The receiver's name for the stream.
    peer: StreamId,
    priority: i32,
    /// Accepted, not transmitted.
    queued: VecDeque<Bytes>,
    queued_bytes: usize,
    /// FIN accepted (after `queued`).
    fin: bool,
    /// A write that could not be taken yet.
    blocked: Option<(Chunks, bool)>,
    /// Reset or stopped: nothing more is sent.
    done: bool,
}

/// The receiving half of one stream.
#[derive(Debug, Default)]
struct RecvHalf {
    /// The sender's name for the stream.
    from: StreamId,
    unread: VecDeque<Bytes>,
    unread_bytes: usize,
    fin: bool,
    /// The reader's grant.
    grant: Option<usize>,
}

/// One end of the wire.
#[derive(Debug, Default)]
struct End {
    sends: FxHashMap<StreamId, SendHalf>,
    recvs: FxHashMap<StreamId, RecvHalf>,
    next_remote: u64,
    /// Streams with unread data or FIN and a grant, to hand to the reader.
    readable: VecDeque<StreamId>,
    datagrams: VecDeque<Bytes>,
    events: VecDeque<TransportEvent>,
    held: bool,
    queued_bytes: usize,
}

/// A connection between side 0 and side 1. See the module docs.
#[derive(Debug, Default)]
pub struct Wire {
    ends: [End; 2],
    opts: WireOptions,
    closed: bool,
    stats: WireStats,
    rng: u64,
}

impl Wire {
    /// A fresh connection.
    pub fn new(opts: WireOptions) -> Self {
        let rng = opts.shuffle.unwrap_or(0) | 1;
        Self { ends: Default::default(), opts, closed: false, stats: WireStats::default(), rng }
    }

    /// The options.
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

    /// Stops (or resumes) transmitting `side`'s bytes, as a stalled network path would.
    pub fn hold(&mut self, side: usize, held: bool) {
        self.ends[side].held = held;
    }

    /// The next transport event for `side`.
    pub fn poll_event(&mut self, side: usize) -> Option<TransportEvent> {
        if let Some(ev) = self.ends[side].events.pop_front() {
            return Some(ev);
        }
        if let Some(d) = self.ends[side].datagrams.pop_front() {
            return Some(TransportEvent::Datagram(d));
        }
        self.next_read(side)
    }

    /// Executes one command of `side`.
    pub fn execute(&mut self, side: usize, cmd: Command) {
        if self.closed {
            return;
        }
        let other = 1 - side;
        match cmd {
            Command::Open { stream, priority } => {
                let peer = StreamId::remote(self.ends[other].next_remote, stream.is_uni());
                self.ends[other].next_remote += 1;
                self.ends[side].sends.insert(stream, SendHalf { peer, priority, ..Default::default() });
                self.ends[other].recvs.insert(peer, RecvHalf { from: stream, ..Default::default() });
                if !stream.is_uni() {
                    self.ends[other].sends.insert(peer, SendHalf { peer: stream, priority, ..Default::default() });
                    self.ends[side].recvs.insert(stream, RecvHalf { from: peer, ..Default::default() });
                }
                self.ends[other].events.push_back(TransportEvent::StreamOpened(peer));
            }
            Command::Read { stream, max } => {
                if let Some(r) = self.ends[side].recvs.get_mut(&stream) {
                    r.grant = Some(max);
                    if !r.unread.is_empty() || r.fin {
                        self.ends[side].readable.push_back(stream);
                    }
                }
            }
            Command::Write { stream, chunks, fin } => {
                let Some(s) = self.ends[side].sends.get_mut(&stream) else {
                    return self.ends[side].events.push_back(TransportEvent::Written { stream, bytes: 0 });
                };
                if s.done {
                    return self.ends[side].events.push_back(TransportEvent::Written { stream, bytes: 0 });
                }
                s.blocked = Some((chunks, fin));
                self.accept(side, stream);
            }
            Command::Reset { stream, code } => {
                let Some(s) = self.ends[side].sends.remove(&stream) else { return };
                if s.done {
                    return;
                }
                let peer = s.peer;
                self.ends[side].queued_bytes -= s.queued_bytes;
                if self.ends[other].recvs.remove(&peer).is_some() {
                    self.ends[other].events.push_back(TransportEvent::StreamReset { stream: peer, code });
                }
            }
            Command::StopSending { stream, code } => {
                let Some(r) = self.ends[side].recvs.remove(&stream) else { return };
                let peer = r.from;
                let Some(s) = self.ends[other].sends.get_mut(&peer) else { return };
                if s.done {
                    return;
                }
                s.done = true;
                let dropped = std::mem::take(&mut s.queued_bytes);
                s.queued.clear();
                self.ends[other].queued_bytes -= dropped;
                if s.blocked.take().is_some() {
                    self.ends[other].events.push_back(TransportEvent::Written { stream: peer, bytes: 0 });
                }
                self.ends[other].events.push_back(TransportEvent::StopSending { stream: peer, code });
            }
            Command::SetPriority { stream, priority } => {
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

    /// Accepts as much of `stream`'s blocked write as the send window allows.
    fn accept(&mut self, side: usize, stream: StreamId) {
        let window = self.opts.send_window;
        let end = &mut self.ends[side];
        let Some(s) = end.sends.get_mut(&stream) else { return };
        let Some((mut chunks, fin)) = s.blocked.take() else { return };
        let room = window.saturating_sub(end.queued_bytes);
        let total: usize = chunks.iter().map(Bytes::len).sum();
        if total > 0 && room == 0 {
            s.blocked = Some((chunks, fin));
            return;
        }
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
        end.events.push_back(TransportEvent::Written { stream, bytes: taken });
    }

    fn transmit_from(&mut self, side: usize) -> bool {
        if self.ends[side].held || self.closed {
            return false;
        }
        // Highest priority first; equal priorities in stream order.
        let mut order: BTreeMap<(std::cmp::Reverse<i32>, StreamId), ()> = BTreeMap::new();
        for (id, s) in &self.ends[side].sends {
            if !s.done && (!s.queued.is_empty() || s.fin) {
                order.insert((std::cmp::Reverse(s.priority), *id), ());
            }
        }
        let mut budget = self.opts.bandwidth;
        let mut moved = false;
        for ((_, id), ()) in order {
            if budget == 0 {
                break;
            }
            let [a, b] = &mut self.ends;
            let (from, to) = if side == 0 { (a, b) } else { (b, a) };
            let Some(s) = from.sends.get_mut(&id) else { continue };
            let Some(r) = to.recvs.get_mut(&s.peer) else {
                // The reader is gone: what was queued is discarded.
                from.queued_bytes -= s.queued_bytes;
                from.sends.remove(&id);
                continue;
            };
            let was_readable = !r.unread.is_empty() || r.fin;
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
            if !was_readable && (!r.unread.is_empty() || (s.fin && s.queued.is_empty())) && r.grant.is_some() {
                to.readable.push_back(s.peer);
            }
            if s.queued.is_empty() && s.fin {
                r.fin = true;
                moved = true;
                if s.blocked.is_none() {
                    from.sends.remove(&id);
                }
            }
        }
        // Room freed in the send window: take blocked writes.
        let blocked: Vec<StreamId> =
            self.ends[side].sends.iter().filter(|(_, s)| s.blocked.is_some()).map(|(id, _)| *id).collect();
        for id in blocked {
            self.accept(side, id);
        }
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
            if r.unread.is_empty() && !r.fin {
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
