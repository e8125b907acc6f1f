//! Two moq-lite [`Session`]s over the deterministic QUIC simulator ([`super::sim`]).
//!
//! This is a minimal driver: each side's [`Command`]s become stream operations on its quinn-proto
//! connection, and the connection's [`NetEvent`]s become [`TransportEvent`]s. Streams are mapped
//! both ways (quinn id ↔ moqt id); the peer's streams get `StreamId::remote(counter, uni)` handles.
//! Outgoing bytes are pulled from the session only as far as the connection accepts them; incoming
//! bytes are read only up to the session's `recv_credit`. Nothing iterates a std `HashMap`, so the
//! same simulator seed gives the same run, event for event.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use moqt_proto::session::{session_code, Command, Event, Session, StreamId, TransportEvent};
use quinn_proto::ConnectionError;

use super::sim::{Dir, NetEvent, Side, Sim, StreamError, StreamId as QuicId};

/// One side's driver state.
pub struct Driver {
    pub session: Session,
    side: Side,
    to_moqt: BTreeMap<QuicId, StreamId>,
    to_quic: BTreeMap<StreamId, QuicId>,
    next_remote: u64,
    /// Streams the session opened that wait for stream credit, per direction (index: uni).
    waiting_open: [VecDeque<(StreamId, i32)>; 2],
    /// Streams to try reading.
    readable: BTreeSet<QuicId>,
    /// Application events, in order, for the test to consume.
    pub events: VecDeque<Event>,
    /// Every command the session issued, in order (for invariant checks).
    pub commands: usize,
    /// Commands that named a stream the session never opened nor was told about.
    pub unknown_stream_commands: usize,
    /// Hash over every application event, in order.
    pub event_hash: u64,
}

fn mix(h: &mut u64, x: u64) {
    *h = (*h ^ x).wrapping_mul(0x0100_0000_01b3);
}

fn hash_event(h: &mut u64, ev: &Event) {
    match ev {
        // Frames are the bulk: hash their fields and payload bytes directly.
        Event::Frame { stream, subscription, sequence, timestamp, payload } => {
            for x in [1, stream.0, *subscription, *sequence, timestamp.unwrap_or(u64::MAX), payload.len() as u64] {
                mix(h, x);
            }
            for chunk in payload.chunks(8) {
                let mut b = [0u8; 8];
                b[..chunk.len()].copy_from_slice(chunk);
                mix(h, u64::from_le_bytes(b));
            }
        }
        other => {
            for b in format!("{other:?}").bytes() {
                mix(h, u64::from(b));
            }
        }
    }
}

impl Driver {
    fn new(session: Session, side: Side) -> Self {
        Self {
            session,
            side,
            to_moqt: BTreeMap::new(),
            to_quic: BTreeMap::new(),
            next_remote: 0,
            waiting_open: [VecDeque::new(), VecDeque::new()],
            readable: BTreeSet::new(),
            events: VecDeque::new(),
            commands: 0,
            unknown_stream_commands: 0,
            event_hash: 0xcbf2_9ce4_8422_2325,
        }
    }

    /// Runs this side until neither the connection nor the session has anything more to say at the
    /// current simulated time. Returns whether anything happened.
    fn pump(&mut self, sim: &mut Sim) -> bool {
        let mut any = false;
        loop {
            let mut progress = false;
            let now = sim.now();
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
            }
            while let Some(ev) = sim.peer(self.side).poll_event() {
                progress = true;
                self.on_net(sim, ev);
            }
            progress |= self.retry_opens(sim);
            while let Some(cmd) = self.session.poll_command() {
                progress = true;
                self.on_command(sim, cmd);
            }
            let readable: Vec<QuicId> = self.readable.iter().copied().collect();
            for q in readable {
                progress |= self.read(sim, q);
            }
            while let Some(ev) = self.session.poll_event() {
                progress = true;
                hash_event(&mut self.event_hash, &ev);
                self.events.push_back(ev);
            }
            if !progress {
                return any;
            }
            any = true;
        }
    }

    fn on_net(&mut self, sim: &mut Sim, ev: NetEvent) {
        let now = sim.now();
        match ev {
            NetEvent::Connected | NetEvent::Finished { .. } | NetEvent::DatagramsUnblocked => {}
            NetEvent::Opened { id: q } => {
                let id = StreamId::remote(self.next_remote, q.dir() == Dir::Uni);
                self.next_remote += 1;
                self.to_moqt.insert(q, id);
                self.to_quic.insert(id, q);
                self.session.handle(now, TransportEvent::StreamOpened(id));
                self.readable.insert(q);
            }
            NetEvent::Readable { id: q } => {
                self.readable.insert(q);
            }
            NetEvent::Writable { id: q } => {
                if let Some(&id) = self.to_moqt.get(&q) {
                    self.session.handle(now, TransportEvent::Writable(id));
                }
            }
            NetEvent::Stopped { id: q, code } => {
                if let Some(&id) = self.to_moqt.get(&q) {
                    self.session.handle(now, TransportEvent::StopSending { id, code });
                }
            }
            NetEvent::Available { .. } => {}
            NetEvent::Datagram(data) => self.session.handle(now, TransportEvent::Datagram(data)),
            NetEvent::Closed(err) => {
                let (code, reason) = match err {
                    ConnectionError::ApplicationClosed(c) => {
                        (c.error_code.into_inner(), String::from_utf8_lossy(&c.reason).into_owned())
                    }
                    other => (session_code::INTERNAL, other.to_string()),
                };
                self.session.handle(now, TransportEvent::Closed { code, reason });
            }
        }
    }

    /// Opens streams that waited for credit, in order. Returns whether any opened.
    fn retry_opens(&mut self, sim: &mut Sim) -> bool {
        let mut opened = false;
        for uni in [false, true] {
            while let Some(&(id, priority)) = self.waiting_open[usize::from(uni)].front() {
                let dir = if uni { Dir::Uni } else { Dir::Bi };
                let Some(q) = sim.peer(self.side).open(dir) else { break };
                self.waiting_open[usize::from(uni)].pop_front();
                self.bind(sim, id, q, priority);
                opened = true;
            }
        }
        opened
    }

    /// Maps a freshly opened quinn stream and sends whatever the session already queued on it.
    fn bind(&mut self, sim: &mut Sim, id: StreamId, q: QuicId, priority: i32) {
        self.to_moqt.insert(q, id);
        self.to_quic.insert(id, q);
        let _ = sim.peer(self.side).set_priority(q, priority);
        if q.dir() == Dir::Bi {
            self.readable.insert(q);
        }
        self.transmit(sim, id);
    }

    fn known(&self, id: StreamId) -> bool {
        self.to_quic.contains_key(&id) || self.waiting_open.iter().flatten().any(|(w, _)| *w == id)
    }

    fn on_command(&mut self, sim: &mut Sim, cmd: Command) {
        self.commands += 1;
        let named = match &cmd {
            Command::Transmit(id)
            | Command::Reset { id, .. }
            | Command::StopSending { id, .. }
            | Command::SetPriority { id, .. } => Some(*id),
            _ => None,
        };
        if named.is_some_and(|id| !self.known(id)) {
            self.unknown_stream_commands += 1;
        }
        match cmd {
            Command::Open { id, priority } => {
                let slot = usize::from(id.is_uni());
                let dir = if id.is_uni() { Dir::Uni } else { Dir::Bi };
                // Keep opening order: once one waits, later ones of that direction wait too.
                let opened = if self.waiting_open[slot].is_empty() { sim.peer(self.side).open(dir) } else { None };
                match opened {
                    Some(q) => self.bind(sim, id, q, priority),
                    None => self.waiting_open[slot].push_back((id, priority)),
                }
            }
            Command::Transmit(id) => self.transmit(sim, id),
            Command::Reset { id, code } => match self.to_quic.get(&id) {
                Some(&q) => {
                    let _ = sim.peer(self.side).reset(q, code);
                }
                // Never opened on the wire: the peer need not hear of it.
                None => self.waiting_open.iter_mut().for_each(|w| w.retain(|(x, _)| *x != id)),
            },
            Command::StopSending { id, code } => {
                if let Some(&q) = self.to_quic.get(&id) {
                    let _ = sim.peer(self.side).stop_sending(q, code);
                    self.readable.remove(&q);
                }
            }
            Command::SetPriority { id, priority } => {
                if let Some(&q) = self.to_quic.get(&id) {
                    let _ = sim.peer(self.side).set_priority(q, priority);
                } else {
                    for w in self.waiting_open.iter_mut().flatten() {
                        if w.0 == id {
                            w.1 = priority;
                        }
                    }
                }
            }
            Command::SendDatagram(data) => {
                let _ = sim.peer(self.side).send_datagram(data);
            }
            Command::Close { code, reason } => sim.peer(self.side).close(code, reason.as_bytes()),
        }
    }

    /// Pulls the session's queued bytes for `id` into the connection until it is empty or the
    /// connection stops accepting (a later `Writable` resumes it).
    fn transmit(&mut self, sim: &mut Sim, id: StreamId) {
        let Some(&q) = self.to_quic.get(&id) else { return }; // sent once opened
        let mut peer = sim.peer(self.side);
        loop {
            let Some((chunks, fin)) = self.session.send_chunks(id) else { return };
            let total: usize = chunks.iter().map(Bytes::len).sum();
            let mut copy: Vec<Bytes> = chunks.to_vec();
            let written = if total == 0 {
                0
            } else {
                match peer.write_chunks(q, &mut copy) {
                    Ok(n) => n,
                    Err(StreamError::Blocked) => return,
                    // Stopped: the `Stopped` event tells the session. Closed: reset or gone.
                    Err(_) => return,
                }
            };
            let all = written == total;
            let fin = fin && all && peer.finish(q).is_ok();
            self.session.advance_send(id, written, fin);
            if !all || fin {
                return;
            }
        }
    }

    /// Reads stream `q` up to the session's credit, repeatedly. Returns whether anything was read.
    fn read(&mut self, sim: &mut Sim, q: QuicId) -> bool {
        let now = sim.now();
        let Some(&id) = self.to_moqt.get(&q) else {
            self.readable.remove(&q);
            return false;
        };
        let mut any = false;
        loop {
            let credit = self.session.recv_credit(id);
            // No credit means the session reads no more of this stream: drain and discard so the
            // peer's flow control is not stuck on bytes nobody wants.
            let max = if credit == 0 { usize::MAX } else { credit };
            match sim.peer(self.side).read(q, max) {
                Ok(r) => {
                    any = true;
                    if credit == 0 {
                        if r.fin {
                            self.readable.remove(&q);
                            return any;
                        }
                        continue;
                    }
                    let n = r.chunks.len();
                    if n == 0 {
                        self.session.handle(now, TransportEvent::StreamData { id, data: Bytes::new(), fin: r.fin });
                    }
                    for (i, data) in r.chunks.into_iter().enumerate() {
                        let fin = r.fin && i + 1 == n;
                        self.session.handle(now, TransportEvent::StreamData { id, data, fin });
                    }
                    if r.fin {
                        self.readable.remove(&q);
                        return any;
                    }
                }
                Err(StreamError::Blocked) => {
                    self.readable.remove(&q);
                    return any;
                }
                Err(StreamError::Reset(code)) => {
                    self.readable.remove(&q);
                    self.session.handle(now, TransportEvent::StreamReset { id, code });
                    return true;
                }
                Err(_) => {
                    self.readable.remove(&q);
                    return any;
                }
            }
        }
    }
}

/// The simulator with a session on each side: `sides[0]` on the client's connection, `sides[1]`
/// on the server's.
pub struct SimSessions {
    pub sim: Sim,
    pub sides: [Driver; 2],
}

impl SimSessions {
    /// Wraps a connected simulator (see `connect` in the tests) and two fresh sessions.
    pub fn new(sim: Sim, client: Session, server: Session) -> Self {
        Self { sim, sides: [Driver::new(client, Side::Client), Driver::new(server, Side::Server)] }
    }

    /// Runs both sides until neither has anything to do at the current simulated time.
    pub fn pump(&mut self) {
        loop {
            let a = self.sides[0].pump(&mut self.sim);
            let b = self.sides[1].pump(&mut self.sim);
            if !a && !b {
                return;
            }
        }
    }

    /// One simulator step, never past `deadline` (deliveries, timers), then pumps both sides.
    /// Session timers count as deadlines too. Returns false once nothing is left to do.
    pub fn step_until(&mut self, deadline: Instant) -> bool {
        self.pump();
        let session_timer = self.sides.iter().filter_map(|d| d.session.poll_timeout()).min();
        let deadline = session_timer.map_or(deadline, |t| t.max(self.sim.now()).min(deadline));
        let more = self.sim.step_until(deadline);
        self.pump();
        more
    }

    /// Steps until `deadline`.
    pub fn run_to(&mut self, deadline: Instant) {
        while self.sim.now() < deadline {
            self.step_until(deadline);
        }
        self.pump();
    }
}
