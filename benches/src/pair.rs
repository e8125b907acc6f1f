//! Two sessions and the least machinery that moves bytes between them: a minimal in-memory
//! driver for benchmarks and allocation tests. Stream maps and queues are pre-sized and reused,
//! chunks are handed over as the shared `Bytes` the core queued, so the rig itself allocates
//! nothing per frame.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use moqt_proto::session::{Command, Config, Event, Perspective, PublishParams, Session, StreamId, SubscribeParams};
use moqt_proto::{Path, TransportEvent, Version};

/// The subscribing side.
pub const SUB: usize = 0;
/// The publishing side.
pub const PUB: usize = 1;

/// Two sessions (client = subscriber, server = publisher) joined in memory.
pub struct SessionPair {
    /// The two sessions, indexed by [`SUB`] and [`PUB`].
    pub sides: [Session; 2],
    now: Instant,
    /// (local id on this side, the peer's handle for it), per side.
    map: [Vec<(StreamId, StreamId)>; 2],
    next_remote: [u64; 2],
    inbox: [VecDeque<TransportEvent>; 2],
    /// Frames the subscriber's application received.
    pub frames: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Events other than frames and group boundaries, kept while `record` is set.
    pub events: [Vec<Event>; 2],
    /// Keep other events (setup); clear it before measuring.
    pub record: bool,
}

impl SessionPair {
    /// A connected pair on `version` (SETUP exchanged where the version has one).
    pub fn new(version: Version) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            sides: [
                Session::new(Config::new(version, Perspective::Client), now),
                Session::new(Config::new(version, Perspective::Server), now),
            ],
            now,
            map: [Vec::with_capacity(64), Vec::with_capacity(64)],
            next_remote: [0, 0],
            inbox: [VecDeque::with_capacity(256), VecDeque::with_capacity(256)],
            frames: 0,
            bytes: 0,
            events: [Vec::new(), Vec::new()],
            record: true,
        };
        pair.run();
        pair
    }

    fn peer_of(&self, side: usize, id: StreamId) -> Option<StreamId> {
        // Newest first: group streams are looked up right after they open.
        self.map[side].iter().rev().find(|(l, _)| *l == id).map(|(_, p)| *p)
    }

    /// Moves everything until both sides are quiet.
    pub fn run(&mut self) {
        while self.drain(SUB) | self.drain(PUB) {}
    }

    fn drain(&mut self, side: usize) -> bool {
        let other = 1 - side;
        let mut busy = false;
        while let Some(ev) = self.inbox[side].pop_front() {
            busy = true;
            self.sides[side].handle(self.now, ev);
        }
        while let Some(cmd) = self.sides[side].poll_command() {
            busy = true;
            match cmd {
                Command::Open { id, .. } => {
                    let pid = StreamId::remote(self.next_remote[other], id.is_uni());
                    self.next_remote[other] += 1;
                    self.map[side].push((id, pid));
                    self.map[other].push((pid, id));
                    self.inbox[other].push_back(TransportEvent::StreamOpened(pid));
                }
                Command::Transmit(id) => {
                    let Some(pid) = self.peer_of(side, id) else { continue };
                    while let Some((chunks, fin)) = self.sides[side].send_chunks(id) {
                        let mut n = 0;
                        for c in chunks {
                            n += c.len();
                            self.inbox[other].push_back(TransportEvent::StreamData {
                                id: pid,
                                data: c.clone(),
                                fin: false,
                            });
                        }
                        if fin {
                            self.inbox[other].push_back(TransportEvent::StreamData {
                                id: pid,
                                data: Bytes::new(),
                                fin,
                            });
                        }
                        self.sides[side].advance_send(id, n, fin);
                        if fin {
                            break;
                        }
                    }
                }
                Command::Reset { id, code } => {
                    if let Some(pid) = self.peer_of(side, id) {
                        self.inbox[other].push_back(TransportEvent::StreamReset { id: pid, code });
                    }
                }
                Command::StopSending { id, code } => {
                    if let Some(pid) = self.peer_of(side, id) {
                        self.inbox[other].push_back(TransportEvent::StopSending { id: pid, code });
                    }
                }
                Command::SetPriority { .. } => {}
                Command::SendDatagram(data) => self.inbox[other].push_back(TransportEvent::Datagram(data)),
                Command::Close { code, reason } => self.inbox[other].push_back(TransportEvent::Closed { code, reason }),
            }
        }
        while let Some(ev) = self.sides[side].poll_event() {
            busy = true;
            match ev {
                Event::Frame { payload, .. } => {
                    self.frames += 1;
                    self.bytes += payload.len() as u64;
                }
                ev if self.record => self.events[side].push(ev),
                _ => {}
            }
        }
        busy
    }

    /// The subscriber subscribes (large max latency) and the publisher accepts; returns the
    /// publisher's handle for the subscription.
    pub fn subscribe(&mut self) -> StreamId {
        let params = SubscribeParams { max_latency: u64::from(u32::MAX), ..Default::default() };
        self.sides[SUB].subscribe(Path::new("room/alice"), "video", params).unwrap();
        self.run();
        let stream = self.events[PUB]
            .iter()
            .find_map(|e| match e {
                Event::SubscribeRequest { stream, .. } => Some(*stream),
                _ => None,
            })
            .expect("subscribe request");
        self.sides[PUB].accept_subscription(stream, PublishParams::default()).unwrap();
        self.run();
        stream
    }

    /// Publishes one frame on an open group and delivers it.
    pub fn frame(&mut self, group: StreamId, timestamp: u64, payload: &Bytes) {
        self.sides[PUB].write_frame(group, timestamp, payload.clone()).unwrap();
        self.run();
    }

    /// Publishes and delivers a whole group of `frames` frames.
    pub fn group(&mut self, publication: StreamId, sequence: u64, frames: u64, payload: &Bytes) {
        let group = self.sides[PUB].open_group(publication, sequence).unwrap();
        for f in 0..frames {
            self.sides[PUB].write_frame(group, sequence * frames + f, payload.clone()).unwrap();
        }
        self.sides[PUB].finish_group(group).unwrap();
        self.run();
        // Forget mappings of finished group streams so lookups stay short.
        for m in &mut self.map {
            if m.len() > 64 {
                m.drain(8..m.len() - 8);
            }
        }
    }
}
