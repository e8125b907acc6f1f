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
//! Only allocations made by the measuring thread inside `measure` count (`moqt_benches::counting`),
//! and the tests take turns.

use bytes::Bytes;
use moqt_benches::counting::{measure, serial, Counting};
use moqt_benches::pair::{SessionPair, PUB, SUB};
use moqt_proto::session::{Event, GroupId};
use moqt_proto::Version;

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let _serial = serial();
    let mut lean = SessionPair::new(v);
    let group = open_group(&mut lean);
    lean.record = false;
    let payload: Bytes = (0..size).map(|i| i as u8).collect::<Vec<u8>>().into();
    // Warm-up: queues, scratch buffers and the payload's shared representation reach steady state.
    publish(&mut lean, group, &payload, 0, WARMUP);
    assert_eq!(lean.frames, WARMUP);
    let ((), allocs, _) = measure(|| publish(&mut lean, group, &payload, WARMUP, N));
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
    let _serial = serial();
    let mut lean = SessionPair::new(Version::Lite06);
    let (_, allocs, _) = measure(|| open_group(&mut lean));
    assert!(allocs > 0);
}
