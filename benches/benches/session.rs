//! Session throughput: a publisher Session → the rig's in-memory wire → a subscriber Session, no
//! network. One iteration publishes one group of 30 frames (open_group, 30 × write_frame,
//! finish_group), the rig's loop carries the writes across as shared `Bytes`, and the subscriber
//! decodes them into `GroupStarted`, 30 `Frame` and `GroupEnded` events.
//!
//! `Throughput::Elements(30)`: criterion's rate is frames per second; multiply by the frame size
//! for bytes per second (README.md lists both).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moqt_benches::pair::SessionPair;
use moqt_proto::Version;

const FRAMES: u64 = 30;

fn bench_session(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(FRAMES));
    for v in [Version::Lite06, Version::Lite03] {
        for size in [64usize, 1024, 64 * 1024] {
            let payload: Bytes = (0..size).map(|i| i as u8).collect::<Vec<u8>>().into();
            let mut pipe = SessionPair::new(v);
            let publication = pipe.subscribe();
            pipe.record = false;
            let mut sequence = 0;
            let name = format!("{v}/{}", if size >= 1024 { format!("{}KiB", size / 1024) } else { format!("{size}B") });
            g.bench_function(BenchmarkId::new("pub_to_sub_30_frames", name), |b| {
                b.iter(|| {
                    pipe.group(publication, sequence, FRAMES, black_box(&payload));
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
