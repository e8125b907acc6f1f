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

criterion_group!(benches, fanout);
criterion_main!(benches);
