//! What one timer wake-up costs a relay node: `poll_timeout` + `handle_timeout` at a due
//! deadline, with 100 and with 10,000 downstream subscriptions whose max-latency expiry timers
//! are armed (`src/timers.rs`). Each wake-up expires exactly one group; re-arming it is not
//! timed. With a timer queue the cost grows like log n, not like n.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use moqt_benches::timers::TimerRig;

fn wake(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_wake");
    group.sample_size(20);
    for (sessions, per_session) in [(1usize, 100usize), (10, 10), (10, 100), (100, 100), (1000, 10), (10, 1000)] {
        let mut rig = TimerRig::new(sessions, per_session);
        // A full cycle first, so every track has been re-armed once.
        for _ in 0..rig.len() {
            rig.wake();
        }
        let dropped = rig.dropped();
        let name = format!("{}_subs/{sessions}x{per_session}", rig.len());
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| rig.wake()).sum::<Duration>());
        });
        assert_eq!(rig.dropped() - dropped, rig.wakes - rig.len() as u64, "one expiry per wake-up");
    }
    group.finish();
}

criterion_group!(benches, wake);
criterion_main!(benches);
