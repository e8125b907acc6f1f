//! Prints the relay's cost per delivered frame over successive rounds (it must stay flat).
use std::time::Instant;

use bytes::Bytes;
use moqt_benches::fanout::FanOut;
use moqt_proto::Version;

fn main() {
    let payload = Bytes::from(vec![0x5au8; 1024]);
    for n in [1usize, 10, 100, 1000] {
        let mut rig = FanOut::new(Version::Lite06, n);
        for round in 0..3 {
            let frames = (60_000 / n).max(60);
            let t = Instant::now();
            for _ in 0..frames {
                rig.frame(&payload);
            }
            let ns = t.elapsed().as_nanos() as f64 / (frames * n) as f64;
            println!("n={n:<5} round {round}: {ns:.0} ns per delivered frame");
        }
    }
}
