//! Allocation accounting for the Session's frame path, with a counting global allocator.
//!
//! Two sessions on the rig ([`SessionPair`]: `moqt_proto::testing::Net`, commands not recorded,
//! events drained into a reused buffer). After warm-up, each frame goes: `write_frame` on the
//! publisher → `Command::Write` carrying the already-shared `Bytes` chunks (refcount clones) →
//! the wire → `StreamData` under the subscriber's read grant → decode → `Event::Frame` → the
//! application drops it. That whole round, rig included, allocates nothing per frame.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use moqt_benches::pair::{SessionPair, PUB, SUB};
use moqt_proto::session::{Event, GroupId};
use moqt_proto::Version;

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

/// Subscribes, accepts, opens group 0 and returns the publisher's group stream.
fn open_group(pair: &mut SessionPair) -> GroupId {
    let publication = pair.subscribe();
    let group = pair.net.session(PUB).open_group(publication, 0).unwrap();
    pair.run();
    assert!(pair.events[SUB].iter().any(|e| matches!(e, Event::GroupStarted { .. })));
    group
}

/// Frames published, pulled, delivered, decoded and reported, one at a time.
fn publish(pair: &mut SessionPair, group: GroupId, payload: &Bytes, from: u64, count: u64) {
    for i in from..from + count {
        pair.frame(group, i * 33, payload);
    }
}

const WARMUP: u64 = 2_000;
const N: u64 = 20_000;

fn check(v: Version, size: usize) -> usize {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lean = SessionPair::new(v);
    let group = open_group(&mut lean);
    lean.record = false;
    let payload: Bytes = (0..size).map(|i| i as u8).collect::<Vec<u8>>().into();
    // Warm-up: queues, scratch buffers and the payload's shared representation reach steady state.
    publish(&mut lean, group, &payload, 0, WARMUP);
    assert_eq!(lean.frames, WARMUP);
    let ((), allocs) = measure(|| publish(&mut lean, group, &payload, WARMUP, N));
    assert_eq!(lean.frames, WARMUP + N, "{v}: every frame must arrive");
    assert_eq!(lean.bytes, (WARMUP + N) * size as u64, "{v}");
    assert_eq!(lean.net.session(PUB).queued_bytes(), 0, "{v}: everything pulled");
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
    let mut lean = SessionPair::new(Version::Lite06);
    let (_, allocs) = measure(|| open_group(&mut lean));
    assert!(allocs > 0);
}
