//! Two Sessions joined by an in-memory stream pipe: each side's commands become the other
//! side's transport events. Delivery can be chunked and interleaved across streams (per-stream
//! order is always kept) by a seeded PRNG, and pulling from send queues can be capped per
//! turn to model flow control. Time only moves when the test says so.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moqt_proto::session::{Command, Config, Event, Perspective, Session, StreamId, TransportEvent};
use moqt_proto::Version;

/// Which end of the pipe.
pub const A: usize = 0;
/// The other end.
pub const B: usize = 1;

/// Knobs for delivery.
#[derive(Debug, Clone, Copy)]
pub struct PipeOptions {
    /// Split stream data into chunks of at most this many bytes.
    pub max_chunk: usize,
    /// Bytes pulled per `Transmit`/`Writable` turn before waiting for another `Writable`.
    pub max_pull: usize,
    /// Deliver in a shuffled order across streams (seeded), instead of FIFO.
    pub shuffle: Option<u64>,
}

impl Default for PipeOptions {
    fn default() -> Self {
        Self { max_chunk: usize::MAX, max_pull: usize::MAX, shuffle: None }
    }
}

/// Two sessions and the wire between them.
pub struct Pipe {
    pub sides: [Session; 2],
    pub now: Instant,
    pub opts: PipeOptions,
    /// Events each side's application has received, in order.
    pub events: [Vec<Event>; 2],
    /// Commands each side issued (for assertions on resets, priorities, closes).
    pub commands: [Vec<Command>; 2],
    /// While set, a side's send queues are not pulled (a stalled transport).
    pub hold: [bool; 2],
    map: [HashMap<StreamId, StreamId>; 2],
    next_remote: [u64; 2],
    pending: VecDeque<(usize, TransportEvent)>,
    rng: u64,
}

fn stream_of(ev: &TransportEvent) -> Option<StreamId> {
    match ev {
        TransportEvent::StreamOpened(id) | TransportEvent::Writable(id) => Some(*id),
        TransportEvent::StreamData { id, .. }
        | TransportEvent::StreamReset { id, .. }
        | TransportEvent::StopSending { id, .. } => Some(*id),
        TransportEvent::Datagram(_) | TransportEvent::Closed { .. } => None,
    }
}

impl Pipe {
    /// A client (A) and a server (B) on `version`, with hop ids 0xA and 0xB.
    pub fn new(version: Version) -> Self {
        let mut a = Config::new(version, Perspective::Client);
        a.hop_id = 0xA;
        let mut b = Config::new(version, Perspective::Server);
        b.hop_id = 0xB;
        Self::with_configs(a, b, PipeOptions::default())
    }

    pub fn with_configs(a: Config, b: Config, opts: PipeOptions) -> Self {
        let now = Instant::now();
        let mut pipe = Self {
            sides: [Session::new(a, now), Session::new(b, now)],
            now,
            opts,
            events: [Vec::new(), Vec::new()],
            commands: [Vec::new(), Vec::new()],
            hold: [false, false],
            map: [HashMap::new(), HashMap::new()],
            next_remote: [0, 0],
            pending: VecDeque::new(),
            rng: opts.shuffle.unwrap_or(0) | 1,
        };
        pipe.run();
        pipe
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Moves everything until neither side has anything left to say.
    pub fn run(&mut self) {
        loop {
            for side in [A, B] {
                self.drain(side);
            }
            if self.pending.is_empty() {
                break;
            }
            let pick = match self.opts.shuffle {
                Some(_) => {
                    let i = (self.rand() % self.pending.len() as u64) as usize;
                    // Keep per-stream order: deliver the oldest event of the chosen stream.
                    let (to, ev) = &self.pending[i];
                    let key = (*to, stream_of(ev));
                    if key.1.is_none() {
                        i
                    } else {
                        self.pending.iter().position(|(t, e)| (*t, stream_of(e)) == key).unwrap()
                    }
                }
                None => 0,
            };
            let (to, ev) = self.pending.remove(pick).unwrap();
            self.sides[to].handle(self.now, ev);
        }
    }

    /// Advances time by `d` and runs both sides' timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        for side in [A, B] {
            self.sides[side].handle_timeout(self.now);
        }
        self.run();
    }

    /// Takes the events one side has received so far.
    pub fn take_events(&mut self, side: usize) -> Vec<Event> {
        self.drain(side);
        std::mem::take(&mut self.events[side])
    }

    /// The peer's handle for a stream that `side` knows as `id`.
    pub fn peer_id(&self, side: usize, id: StreamId) -> Option<StreamId> {
        self.map[side].get(&id).copied()
    }

    /// Delivers raw bytes on a new stream opened by `from` towards the other side, bypassing
    /// `from`'s session (for garbage and byte-script tests). Returns the receiver's handle.
    pub fn inject_stream(&mut self, to: usize, uni: bool, data: &[u8], fin: bool) -> StreamId {
        let id = StreamId::remote(1_000_000 + self.next_remote[to], uni);
        self.next_remote[to] += 1;
        self.sides[to].handle(self.now, TransportEvent::StreamOpened(id));
        self.sides[to].handle(self.now, TransportEvent::StreamData { id, data: Bytes::copy_from_slice(data), fin });
        self.run();
        id
    }

    fn drain(&mut self, side: usize) {
        let other = 1 - side;
        while let Some(ev) = self.sides[side].poll_event() {
            self.events[side].push(ev);
        }
        while let Some(cmd) = self.sides[side].poll_command() {
            self.commands[side].push(cmd.clone());
            match cmd {
                Command::Open { id, .. } => {
                    let pid = StreamId::remote(self.next_remote[other], id.is_uni());
                    self.next_remote[other] += 1;
                    self.map[side].insert(id, pid);
                    self.map[other].insert(pid, id);
                    self.pending.push_back((other, TransportEvent::StreamOpened(pid)));
                }
                Command::Transmit(id) => self.pull(side, id),
                Command::Reset { id, code } => {
                    if let Some(&pid) = self.map[side].get(&id) {
                        self.pending.push_back((other, TransportEvent::StreamReset { id: pid, code }));
                    }
                }
                Command::StopSending { id, code } => {
                    if let Some(&pid) = self.map[side].get(&id) {
                        self.pending.push_back((other, TransportEvent::StopSending { id: pid, code }));
                    }
                }
                Command::SetPriority { .. } => {}
                Command::SendDatagram(data) => self.pending.push_back((other, TransportEvent::Datagram(data))),
                Command::Close { code, reason } => {
                    self.pending.push_back((other, TransportEvent::Closed { code, reason }))
                }
            }
            while let Some(ev) = self.sides[side].poll_event() {
                self.events[side].push(ev);
            }
        }
    }

    /// Pulls up to `max_pull` bytes from one stream's queue onto the wire.
    fn pull(&mut self, side: usize, id: StreamId) {
        if self.hold[side] {
            return;
        }
        let other = 1 - side;
        let Some(&pid) = self.map[side].get(&id) else { return };
        let mut budget = self.opts.max_pull;
        while budget > 0 {
            let Some((chunks, fin)) = self.sides[side].send_chunks(id) else { return };
            let mut taken: Vec<Bytes> = Vec::new();
            let mut n = 0;
            for c in chunks {
                if n == budget {
                    break;
                }
                let take = c.len().min(budget - n);
                taken.push(c.slice(..take));
                n += take;
            }
            let all = n == chunks.iter().map(Bytes::len).sum::<usize>();
            let fin = fin && all;
            self.sides[side].advance_send(id, n, fin);
            budget -= n;
            let data: Vec<u8> = taken.iter().flat_map(|b| b.iter().copied()).collect();
            let data = Bytes::from(data);
            let mut off = 0;
            loop {
                let end = (off + self.opts.max_chunk).min(data.len());
                let last = end == data.len();
                self.pending.push_back((
                    other,
                    TransportEvent::StreamData { id: pid, data: data.slice(off..end), fin: fin && last },
                ));
                off = end;
                if last {
                    break;
                }
            }
            if fin || n == 0 {
                return;
            }
        }
        // Budget used up: the transport will say when it can take more.
        self.pending.push_back((side, TransportEvent::Writable(id)));
    }

    /// Releases a held side and lets it send what it has queued.
    pub fn release(&mut self, side: usize) {
        self.hold[side] = false;
        let ids: Vec<StreamId> = self.map[side].keys().copied().collect();
        for id in ids {
            self.sides[side].handle(self.now, TransportEvent::Writable(id));
        }
        self.run();
    }
}
