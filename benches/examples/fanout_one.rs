//! One fan-out configuration, for profilers: `fanout_one N FRAMES`.
use bytes::Bytes;
use moqt_benches::fanout::FanOut;
use moqt_proto::Version;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let frames: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let payload = Bytes::from(vec![0x5au8; 1024]);
    let mut rig = FanOut::new(Version::Lite06, n);
    for _ in 0..frames {
        rig.frame(&payload);
    }
}
