//! Session throughput: a publisher Session → an in-memory pipe → a subscriber Session, no
//! network. One iteration publishes one group of 30 frames (open_group, 30 × write_frame,
//! finish_group), the driver pulls the chunks and hands them over as shared `Bytes`, and the
//! subscriber decodes them into `GroupStarted`, 30 `Frame` and `GroupEnded` events.
//!
//! `Throughput::Elements(30)`: criterion's rate is frames per second; multiply by the frame size
//! for bytes per second (README.md lists both).

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moqt_proto::session::{Command, Config, Event, Perspective, PublishParams, Session, StreamId, SubscribeParams};
use moqt_proto::{Path, TransportEvent, Version};

const FRAMES: u64 = 30;
const SUB: usize = 0;
const PUB: usize = 1;

/// Two sessions and a minimal driver between them.
struct Pipe {
    sides: [Session; 2],
    now: Instant,
    map: [Vec<(StreamId, StreamId)>; 2],
    next_remote: [u64; 2],
    inbox: [VecDeque<TransportEvent>; 2],
    frames: u64,
    setup_events: [Vec<Event>; 2],
}

impl Pipe {
    fn new(v: Version) -> Self {
        let now = Instant::now();
        let mut pipe = Self {
            sides: [
                Session::new(Config::new(v, Perspective::Client), now),
                Session::new(Config::new(v, Perspective::Server), now),
            ],
            now,
            map: [Vec::new(), Vec::new()],
            next_remote: [0, 0],
            inbox: [VecDeque::with_capacity(256), VecDeque::with_capacity(256)],
            frames: 0,
            setup_events: [Vec::new(), Vec::new()],
        };
        pipe.run();
        pipe
    }

    fn peer_of(&self, side: usize, id: StreamId) -> Option<StreamId> {
        // Newest first: group streams are looked up right after they open.
        self.map[side].iter().rev().find(|(l, _)| *l == id).map(|(_, p)| *p)
    }

    fn run(&mut self) {
        loop {
            let mut busy = false;
            for side in [SUB, PUB] {
                busy |= self.drain(side);
            }
            if !busy {
                return;
            }
        }
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
                                fin: true,
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
                Command::SetPriority { .. } | Command::SendDatagram(_) | Command::Close { .. } => {}
            }
        }
        while let Some(ev) = self.sides[side].poll_event() {
            busy = true;
            match ev {
                Event::Frame { payload, .. } => {
                    self.frames += 1;
                    black_box(payload);
                }
                Event::GroupStarted { .. } | Event::GroupEnded { .. } => {}
                other => self.setup_events[side].push(other),
            }
        }
        busy
    }

    /// Subscribes and accepts; returns the publisher's subscription stream.
    fn subscribe(&mut self) -> StreamId {
        let params = SubscribeParams { max_latency: u64::from(u32::MAX), ..Default::default() };
        self.sides[SUB].subscribe(Path::new("room/alice"), "video", params).unwrap();
        self.run();
        let stream = self.setup_events[PUB]
            .iter()
            .find_map(|e| match e {
                Event::SubscribeRequest { stream, .. } => Some(*stream),
                _ => None,
            })
            .unwrap();
        self.sides[PUB].accept_subscription(stream, PublishParams::default()).unwrap();
        self.run();
        stream
    }

    /// One group of `FRAMES` frames, published and delivered.
    fn group(&mut self, publication: StreamId, sequence: u64, payload: &Bytes) {
        let group = self.sides[PUB].open_group(publication, sequence).unwrap();
        for f in 0..FRAMES {
            self.sides[PUB].write_frame(group, sequence * FRAMES + f, payload.clone()).unwrap();
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

fn bench_session(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(FRAMES));
    for v in [Version::Lite06, Version::Lite03] {
        for size in [64usize, 1024, 64 * 1024] {
            let payload: Bytes = (0..size).map(|i| i as u8).collect::<Vec<u8>>().into();
            let mut pipe = Pipe::new(v);
            let publication = pipe.subscribe();
            let mut sequence = 0;
            let name = format!("{v}/{}", if size >= 1024 { format!("{}KiB", size / 1024) } else { format!("{size}B") });
            g.bench_function(BenchmarkId::new("pub_to_sub_30_frames", name), |b| {
                b.iter(|| {
                    pipe.group(publication, sequence, &payload);
                    sequence += 1;
                })
            });
            assert_eq!(pipe.frames, sequence * FRAMES, "every frame delivered");
        }
    }
    g.finish();
}

criterion_group!(benches, bench_session);
criterion_main!(benches);
