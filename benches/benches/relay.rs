//! Relay fan-out: 1 KiB frames from one publisher through a relay node to N = 1, 10, 100 and
//! 1000 subscribers, in memory. Throughput is counted in frames delivered (N per published frame).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moqt_benches::fanout::FanOut;
use moqt_proto::Version;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay_fanout_1KiB");
    let payload = Bytes::from(vec![0x5au8; 1024]);
    for n in [1usize, 10, 100, 1000] {
        let mut rig = FanOut::new(Version::Lite06, n);
        for _ in 0..300 {
            rig.frame(&payload);
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| rig.frame(black_box(&payload)));
        });
    }
    group.finish();
}

/// The same fan-out over two linked nodes (`moqt relay --workers 2`): the subscribers split
/// between them, the second node fed by a link from the first.
fn sharded(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay_fanout_1KiB_2_shards");
    let payload = Bytes::from(vec![0x5au8; 1024]);
    for n in [10usize, 100] {
        let mut rig = FanOut::sharded(Version::Lite06, n, 2);
        for _ in 0..300 {
            rig.frame(&payload);
        }
        let before = rig.delivered_bytes();
        rig.frame(&payload);
        assert!(rig.delivered_bytes() >= before + (n as u64) * 1024, "every subscriber got the frame");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| rig.frame(black_box(&payload)));
        });
    }
    group.finish();
}

criterion_group!(benches, fanout, sharded);
criterion_main!(benches);
