//! Allocation accounting for the Session's frame path, with a counting global allocator.
//!
//! Two sessions joined by a lean inline pipe (a fixed stream map and pre-sized queues, nothing
//! that grows per frame). After warm-up, each frame goes: `write_frame` on the publisher → the
//! driver pulls `send_chunks` and hands the already-shared `Bytes` chunks (refcount clones) to the
//! subscriber as `StreamData` → decode → `Event::Frame` → the application drops it. That whole
//! round allocates nothing per frame.
//!
//! Frame headers are encoded into one shared scratch buffer and split off as `Bytes`. The session
//! makes room in it *before* encoding, when the transport has already taken (and dropped) the
//! headers split off earlier, so `BytesMut::reserve` reclaims the same allocation. The steady state
//! is therefore exactly zero allocations per frame, which is what this test asserts.
//!
//! As in `alloc.rs`, only allocations made by the measuring thread inside [`measure`] count, and a
//! mutex serialises the tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use moqt_proto::session::{Command, Config, Event, Perspective, PublishParams, Session, StreamId, SubscribeParams};
use moqt_proto::{Path, TransportEvent, Version};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if ACTIVE.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

/// How many allocations `f` made on this thread.
fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let a0 = ALLOCS.load(Ordering::SeqCst);
    ACTIVE.with(|a| a.set(true));
    let r = f();
    ACTIVE.with(|a| a.set(false));
    (r, ALLOCS.load(Ordering::SeqCst) - a0)
}

/// Two sessions and the least machinery that moves bytes between them.
struct Lean {
    sides: [Session; 2],
    now: Instant,
    /// (local id on this side, the peer's handle for it), per side; a linear scan is fine here.
    map: [Vec<(StreamId, StreamId)>; 2],
    next_remote: [u64; 2],
    inbox: [VecDeque<TransportEvent>; 2],
    /// Frames the subscriber's application received, and their payload bytes.
    frames: usize,
    bytes: usize,
    /// Any other event, kept only during setup.
    other: [Vec<Event>; 2],
    record_other: bool,
}

const SUB: usize = 0;
const PUB: usize = 1;

impl Lean {
    fn new(v: Version) -> Self {
        let now = Instant::now();
        let mut lean = Self {
            sides: [
                Session::new(Config::new(v, Perspective::Client), now),
                Session::new(Config::new(v, Perspective::Server), now),
            ],
            now,
            map: [Vec::with_capacity(64), Vec::with_capacity(64)],
            next_remote: [0, 0],
            inbox: [VecDeque::with_capacity(256), VecDeque::with_capacity(256)],
            frames: 0,
            bytes: 0,
            other: [Vec::new(), Vec::new()],
            record_other: true,
        };
        lean.run();
        lean
    }

    fn peer_of(&self, side: usize, id: StreamId) -> Option<StreamId> {
        self.map[side].iter().find(|(l, _)| *l == id).map(|(_, p)| *p)
    }

    /// Moves everything until both sides are quiet.
    fn run(&mut self) {
        loop {
            let mut busy = false;
            for side in [0, 1] {
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
                    self.bytes += payload.len();
                }
                ev if self.record_other => self.other[side].push(ev),
                ev => panic!("unexpected during measurement: {ev:?}"),
            }
        }
        busy
    }
}

/// Subscribes, accepts, opens group 0 and returns the publisher's group stream.
fn open_group(lean: &mut Lean) -> StreamId {
    let params = SubscribeParams { max_latency: 60_000, ..Default::default() };
    lean.sides[SUB].subscribe(Path::new("room/alice"), "video", params).unwrap();
    lean.run();
    let stream = lean.other[PUB]
        .iter()
        .find_map(|e| match e {
            Event::SubscribeRequest { stream, .. } => Some(*stream),
            _ => None,
        })
        .expect("subscribe request");
    lean.sides[PUB].accept_subscription(stream, PublishParams::default()).unwrap();
    let group = lean.sides[PUB].open_group(stream, 0).unwrap();
    lean.run();
    assert!(lean.other[SUB].iter().any(|e| matches!(e, Event::GroupStarted { .. })));
    group
}

/// Frames published, pulled, delivered, decoded and reported, one at a time.
fn publish(lean: &mut Lean, group: StreamId, payload: &Bytes, from: u64, count: u64) {
    for i in from..from + count {
        lean.sides[PUB].write_frame(group, i * 33, payload.clone()).unwrap();
        lean.run();
    }
}

const WARMUP: u64 = 2_000;
const N: u64 = 20_000;

fn check(v: Version, size: usize) -> usize {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lean = Lean::new(v);
    let group = open_group(&mut lean);
    lean.record_other = false;
    let payload: Bytes = (0..size).map(|i| i as u8).collect::<Vec<u8>>().into();
    // Warm-up: queues, scratch buffers and the payload's shared representation reach steady state.
    publish(&mut lean, group, &payload, 0, WARMUP);
    assert_eq!(lean.frames, WARMUP as usize);
    let ((), allocs) = measure(|| publish(&mut lean, group, &payload, WARMUP, N));
    assert_eq!(lean.frames, (WARMUP + N) as usize, "{v}: every frame must arrive");
    assert_eq!(lean.bytes, (WARMUP + N) as usize * size, "{v}");
    assert_eq!(lean.sides[PUB].queued_bytes(), 0, "{v}: everything pulled");
    println!("{v}: {size} B frames: {allocs} allocations for {N} frames");
    allocs
}

#[test]
fn frame_path_allocates_nothing_in_steady_state() {
    for v in Version::ALL {
        for size in [1, 64, 1200, 64 * 1024] {
            let allocs = check(v, size);
            assert_eq!(allocs, 0, "{v}, {size} B frames: {allocs} allocations for {N} frames");
        }
    }
}

/// The counter is live: the same path does allocate while a group opens (so a zero above means
/// something).
#[test]
fn counter_sees_group_setup() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lean = Lean::new(Version::Lite06);
    let (_, allocs) = measure(|| open_group(&mut lean));
    assert!(allocs > 0);
}
