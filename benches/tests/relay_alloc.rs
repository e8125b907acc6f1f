//! Counting-allocator check: a relay delivering 1 KiB frames to 100 subscribers allocates
//! nothing per delivered frame in steady state.

use bytes::Bytes;
use moqt_benches::counting::{measure, serial, Counting};
use moqt_benches::fanout::FanOut;
use moqt_proto::Version;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_per_delivered_frame() {
    let _turn = serial();
    for version in [Version::Lite04, Version::Lite06] {
        let subscribers = 100;
        let mut rig = FanOut::new(version, subscribers);
        let payload = Bytes::from(vec![0xabu8; 1024]);
        // Warm up: queues, maps and scratch buffers reach their steady-state capacity.
        for _ in 0..30 * 40 {
            rig.frame(&payload);
        }
        // Open the next group (30 frames per group) and write its first frame, then measure the
        // other 28 frames: no stream opens inside the window, only frames flow.
        rig.frame(&payload);
        rig.frame(&payload);
        let frames = 28;
        let bytes_before = rig.delivered_bytes();
        let ((), allocs, _) = measure(|| {
            for _ in 0..frames {
                rig.frame(&payload);
            }
        });
        let delivered = (frames * subscribers) as u64;
        assert!(rig.delivered_bytes() - bytes_before >= delivered * 1024, "every frame reached every subscriber");
        println!("{version}: {allocs} allocations for {delivered} delivered frames (within one group)");
        // The rig is deterministic, so this count is exact: frame headers reuse each session's
        // scratch buffer, payloads are shared `Bytes`, queues keep their capacity.
        assert_eq!(allocs, 0, "{version}: {allocs} allocations for {delivered} delivered frames");
    }
}

#[test]
fn allocations_scale_with_groups_not_frames() {
    let _turn = serial();
    let subscribers = 100;
    let mut rig = FanOut::new(Version::Lite05, subscribers);
    let payload = Bytes::from(vec![0xabu8; 1024]);
    for _ in 0..30 * 40 {
        rig.frame(&payload);
    }
    let frames = 30 * 20;
    let ((), allocs, _) = measure(|| {
        for _ in 0..frames {
            rig.frame(&payload);
        }
    });
    let groups = frames / 30 * subscribers;
    println!("{allocs} allocations for {} delivered frames in {groups} downstream groups", frames * subscribers);
    assert!(allocs <= groups * 2, "at most about one allocation per downstream group: {allocs} for {groups}");
}
