//! The deterministic QUIC simulator ([`super::sim`]) as a [`Link`] of the rig's `Net`, so that
//! sessions over lossy, reordering, congestion-controlled QUIC run on the same loop as every
//! other test.
//!
//! Owns the translation between the driver contract and quinn-proto's stream API, per side: the
//! two-way map of stream ids (the peer's streams get `StreamId::remote(counter, uni)` handles),
//! opens that wait for stream credit, one write in flight per stream (retried when quinn says the
//! stream is writable, answered by exactly one `Written`), and read grants (a stream is read only
//! under a grant, one chunk per grant, so QUIC flow control pushes back on the peer). Commands
//! naming streams never opened are recorded as violations. Nothing iterates a std `HashMap`, so
//! the same simulator seed gives the same run, event for event.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use moqt_proto::session::{session_code, Chunks, Command, StreamId, TransportEvent};
use moqt_proto::testing::Link;
use quinn_proto::ConnectionError;

use super::sim::{Dir, NetEvent, Side, Sim, StreamError, StreamId as QuicId};

/// One side's translation state.
#[derive(Debug, Default)]
struct End {
    to_moqt: BTreeMap<QuicId, StreamId>,
    to_quic: BTreeMap<StreamId, QuicId>,
    /// Every id the endpoint may name: ones it opened and ones it was told about.
    known: BTreeSet<StreamId>,
    next_remote: u64,
    /// Opens waiting for stream credit, per direction (index: uni), in order.
    waiting_open: [VecDeque<(StreamId, i32)>; 2],
    /// The write in flight per stream, not yet (fully) answered.
    writes: BTreeMap<StreamId, (Chunks, bool)>,
    /// Read grants.
    grants: BTreeMap<StreamId, usize>,
    events: VecDeque<TransportEvent>,
    /// Streams this side reset (RESET_STREAM sent).
    resets: u64,
}

/// The simulator, driven as a link. See the module docs.
pub struct SimLink {
    /// The simulator (for stats and link changes).
    pub sim: Sim,
    ends: [End; 2],
    closed: bool,
    violations: Vec<String>,
}

impl std::fmt::Debug for SimLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLink").field("elapsed", &self.sim.elapsed()).field("closed", &self.closed).finish()
    }
}

fn side_of(index: usize) -> Side {
    if index == 0 {
        Side::Client
    } else {
        Side::Server
    }
}

impl SimLink {
    /// Wraps a simulator whose handshake has completed (side 0 is its client, side 1 its server).
    pub fn new(sim: Sim) -> Self {
        Self { sim, ends: [End::default(), End::default()], closed: false, violations: Vec::new() }
    }

    /// Streams each side reset.
    pub fn resets(&self) -> [u64; 2] {
        [self.ends[0].resets, self.ends[1].resets]
    }

    fn check(&mut self, side: usize, stream: StreamId, cmd: &Command) -> bool {
        if self.ends[side].known.contains(&stream) {
            return true;
        }
        self.violations.push(format!("side {side}: stream never opened: {cmd:?}"));
        false
    }

    /// Maps a freshly opened quinn stream and sends what already waits for it.
    fn bind(&mut self, side: usize, id: StreamId, q: QuicId, priority: i32) {
        let end = &mut self.ends[side];
        end.to_moqt.insert(q, id);
        end.to_quic.insert(id, q);
        let _ = self.sim.peer(side_of(side)).set_priority(q, priority);
        self.try_write(side, id);
    }

    /// Opens streams that waited for credit, in order. Returns whether any opened.
    fn retry_opens(&mut self, side: usize) -> bool {
        let mut opened = false;
        for uni in [false, true] {
            while let Some(&(id, priority)) = self.ends[side].waiting_open[usize::from(uni)].front() {
                let dir = if uni { Dir::Uni } else { Dir::Bi };
                let Some(q) = self.sim.peer(side_of(side)).open(dir) else { break };
                self.ends[side].waiting_open[usize::from(uni)].pop_front();
                self.bind(side, id, q, priority);
                opened = true;
            }
        }
        opened
    }

    /// Hands the write in flight on `id` to quinn; answers it once quinn took something (or
    /// nothing will ever be taken).
    fn try_write(&mut self, side: usize, id: StreamId) {
        let Some(&q) = self.ends[side].to_quic.get(&id) else { return }; // written once opened
        let Some((mut chunks, fin)) = self.ends[side].writes.remove(&id) else { return };
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let mut peer = self.sim.peer(side_of(side));
        let written = if total == 0 { Ok(0) } else { peer.write_chunks(q, &mut chunks) };
        let bytes = match written {
            Ok(n) => {
                if n == total && fin {
                    let _ = peer.finish(q);
                }
                n
            }
            // Flow or congestion control: wait for `Writable`.
            Err(StreamError::Blocked) => {
                self.ends[side].writes.insert(id, (chunks, fin));
                return;
            }
            // Stopped (the `Stopped` event tells the session), reset or gone: nothing is taken.
            Err(_) => 0,
        };
        self.ends[side].events.push_back(TransportEvent::Written { stream: id, bytes });
    }

    /// One read under a grant, if any granted stream has something.
    fn next_read(&mut self, side: usize) -> Option<TransportEvent> {
        let grants: Vec<(StreamId, usize)> = self.ends[side].grants.iter().map(|(s, m)| (*s, *m)).collect();
        for (id, max) in grants {
            let Some(&q) = self.ends[side].to_quic.get(&id) else { continue };
            let event = match self.sim.peer(side_of(side)).read_chunk(q, max) {
                Ok((data, fin)) => TransportEvent::StreamData { stream: id, data: data.unwrap_or_default(), fin },
                Err(StreamError::Blocked) => continue,
                Err(StreamError::Reset(code)) => TransportEvent::StreamReset { stream: id, code },
                Err(_) => {
                    self.ends[side].grants.remove(&id);
                    continue;
                }
            };
            self.ends[side].grants.remove(&id);
            return Some(event);
        }
        None
    }

    /// Turns what quinn reported to `side` into transport events. Returns whether there was any.
    fn on_net_events(&mut self, side: usize) -> bool {
        let mut any = false;
        while let Some(ev) = self.sim.peer(side_of(side)).poll_event() {
            any = true;
            let end = &mut self.ends[side];
            match ev {
                NetEvent::Connected
                | NetEvent::Finished { .. }
                | NetEvent::DatagramsUnblocked
                | NetEvent::Readable { .. } => {}
                NetEvent::Opened { id: q } => {
                    let id = StreamId::remote(end.next_remote, q.dir() == Dir::Uni);
                    end.next_remote += 1;
                    end.to_moqt.insert(q, id);
                    end.to_quic.insert(id, q);
                    end.known.insert(id);
                    end.events.push_back(TransportEvent::StreamOpened(id));
                }
                NetEvent::Writable { id: q } => {
                    if let Some(&id) = end.to_moqt.get(&q) {
                        self.try_write(side, id);
                    }
                }
                NetEvent::Stopped { id: q, code } => {
                    if let Some(&id) = end.to_moqt.get(&q) {
                        if end.writes.remove(&id).is_some() {
                            end.events.push_back(TransportEvent::Written { stream: id, bytes: 0 });
                        }
                        end.events.push_back(TransportEvent::StopSending { stream: id, code });
                    }
                }
                NetEvent::Available { .. } => {
                    self.retry_opens(side);
                }
                NetEvent::Datagram(data) => end.events.push_back(TransportEvent::Datagram(data)),
                NetEvent::Closed(err) => {
                    let (code, reason) = match err {
                        ConnectionError::ApplicationClosed(c) => {
                            (c.error_code.into_inner(), String::from_utf8_lossy(&c.reason).into_owned())
                        }
                        other => (session_code::INTERNAL, other.to_string()),
                    };
                    end.events.push_back(TransportEvent::Closed { code, reason });
                }
            }
        }
        any
    }
}

impl Link for SimLink {
    fn execute(&mut self, side: usize, cmd: Command) {
        if self.closed {
            return;
        }
        match cmd {
            Command::Open { stream, priority } => {
                let end = &mut self.ends[side];
                if stream.is_remote() || !end.known.insert(stream) {
                    return self.violations.push(format!("side {side}: opens a remote or known id: {cmd:?}"));
                }
                let slot = usize::from(stream.is_uni());
                let dir = if stream.is_uni() { Dir::Uni } else { Dir::Bi };
                // Keep the opening order: once one waits, later ones of that direction wait too.
                let opened =
                    if end.waiting_open[slot].is_empty() { self.sim.peer(side_of(side)).open(dir) } else { None };
                match opened {
                    Some(q) => self.bind(side, stream, q, priority),
                    None => self.ends[side].waiting_open[slot].push_back((stream, priority)),
                }
            }
            Command::Read { stream, max } => {
                if self.check(side, stream, &cmd) && self.ends[side].grants.insert(stream, max).is_some() {
                    self.violations.push(format!("side {side}: read grant while one is out: {cmd:?}"));
                }
            }
            Command::Write { stream, chunks, fin } => {
                let probe = Command::Write { stream, chunks: Chunks::new(), fin };
                if !self.check(side, stream, &probe) {
                    return;
                }
                if self.ends[side].writes.insert(stream, (chunks, fin)).is_some() {
                    return self.violations.push(format!("side {side}: write while one is in flight: {probe:?}"));
                }
                self.try_write(side, stream);
            }
            Command::Reset { stream, code } => {
                if !self.check(side, stream, &cmd) {
                    return;
                }
                let end = &mut self.ends[side];
                end.writes.remove(&stream);
                match end.to_quic.get(&stream) {
                    Some(&q) => {
                        end.resets += 1;
                        let _ = self.sim.peer(side_of(side)).reset(q, code);
                    }
                    // Never opened on the wire: the peer need not hear of it.
                    None => end.waiting_open.iter_mut().for_each(|w| w.retain(|(x, _)| *x != stream)),
                }
            }
            Command::StopSending { stream, code } => {
                if !self.check(side, stream, &cmd) {
                    return;
                }
                self.ends[side].grants.remove(&stream);
                if let Some(&q) = self.ends[side].to_quic.get(&stream) {
                    let _ = self.sim.peer(side_of(side)).stop_sending(q, code);
                }
            }
            Command::SetPriority { stream, priority } => {
                if !self.check(side, stream, &cmd) {
                    return;
                }
                match self.ends[side].to_quic.get(&stream) {
                    Some(&q) => {
                        let _ = self.sim.peer(side_of(side)).set_priority(q, priority);
                    }
                    None => {
                        for w in self.ends[side].waiting_open.iter_mut().flatten() {
                            if w.0 == stream {
                                w.1 = priority;
                            }
                        }
                    }
                }
            }
            Command::SendDatagram(data) => {
                let _ = self.sim.peer(side_of(side)).send_datagram(data);
            }
            Command::Close { code, reason } => self.sim.peer(side_of(side)).close(code, reason.as_bytes()),
        }
    }

    fn poll_event(&mut self, side: usize) -> Option<TransportEvent> {
        if let Some(ev) = self.ends[side].events.pop_front() {
            return Some(ev);
        }
        self.next_read(side)
    }

    fn transmit(&mut self, now: Instant) -> bool {
        let mut moved = self.sim.advance_to(now);
        for side in [0, 1] {
            let before = self.ends[side].events.len();
            moved |= self.on_net_events(side);
            moved |= self.retry_opens(side);
            // Blocked writes: quinn may have room again after acknowledgements.
            let blocked: Vec<StreamId> = self.ends[side].writes.keys().copied().collect();
            for id in blocked {
                self.try_write(side, id);
            }
            moved |= self.ends[side].events.len() > before;
        }
        moved
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.sim.next_deadline()
    }

    fn disconnect(&mut self, code: u64, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        for end in &mut self.ends {
            end.events.push_back(TransportEvent::Closed { code, reason: reason.to_string() });
        }
    }

    fn violations(&self) -> &[String] {
        &self.violations
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
