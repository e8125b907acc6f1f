//! Allocations on the relay's thread per delivered frame, over real quinn connections on
//! loopback: the relay driver (`Relay`: the node, every connection's I/O, and quinn's endpoint
//! and connection drivers) runs alone on one thread with a current-thread runtime, counted by
//! the counting allocator; one publisher and N subscribers run on another runtime, uncounted.
//!
//! ```text
//! cargo run --release -p moqt-benches --example relay_alloc_quinn -- [subscribers=20] [seconds=5]
//! ```
//!
//! Prints allocations and bytes per delivered frame (a frame delivered to N subscribers counts N
//! times), for 1 KiB frames at 100 per second, 30 per group. What remains is quinn's (packet
//! buffers, ACK bookkeeping, stream state per group) plus the core's per-group work.

#[path = "../src/counting.rs"]
mod counting;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moqt_driver_tokio::relay::{Relay, RelayConfig};
use moqt_driver_tokio::tls::{Identity, Verification};
use moqt_driver_tokio::transport::{ClientConfig, Listener, ServerConfig};
use moqt_driver_tokio::{Client, GroupPublisher, SessionOptions};
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::{Perspective, SubscribeParams};
use moqt_proto::Dialect;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);

    // The relay, alone on its thread.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(SocketAddr, String)>();
    let (count_tx, count_rx) = std::sync::mpsc::channel::<bool>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, usize)>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let identity = Identity::self_signed(&["localhost".to_string()]).expect("certificate");
            let fingerprint = identity.fingerprint().to_string();
            let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), identity);
            config.runtime = Some(moqt_driver_tokio::runtime());
            let mut server = Listener::bind(config).expect("bind");
            let node = NodeConfig { hop_id: 1, ..NodeConfig::default() };
            let relay = Relay::start(RelayConfig { node, ..RelayConfig::default() }, moqt_driver_tokio::runtime());
            ready_tx.send((server.local_addr(), fingerprint)).unwrap();
            // Counting is switched on and off from the other thread, between two wake-ups.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                loop {
                    tick.tick().await;
                    if let Ok(on) = count_rx.try_recv() {
                        if !on {
                            counting::count_this_thread(false);
                            done_tx.send(counting::totals()).unwrap();
                            return;
                        }
                        let _ = done_tx.send(counting::totals());
                        counting::count_this_thread(true);
                    }
                }
            });
            while let Some(accepted) = server.accept().await {
                let relay = relay.clone();
                tokio::spawn(async move {
                    relay.serve(accepted.connection, accepted.version, Perspective::Server, Dialect::Draft).await;
                });
            }
        });
    });
    let (addr, fingerprint) = ready_rx.recv().unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let frames = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let mut config = ClientConfig::new(Verification::pinned(fingerprint.parse().unwrap()));
        config.runtime = Some(moqt_driver_tokio::runtime());
        let client = Arc::new(Client::new(config).unwrap().with_options(SessionOptions::default()));
        let url = format!("moqt://{addr}");
        let publisher = client.connect(&url).await.unwrap();
        let broadcast = publisher.publish("alloc");
        let track = broadcast.create_track("t");
        tokio::spawn(async move {
            let _keep = (&publisher, &broadcast);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let payload = Bytes::from(vec![0x5a; 1024]);
            let mut current = None;
            for n in 0u64.. {
                tick.tick().await;
                if n % 30 == 0 {
                    if let Some(g) = current.take() {
                        GroupPublisher::finish(g);
                    }
                    current = Some(track.open_group(n / 30));
                }
                if let Some(g) = &current {
                    let _ = g.write_frame(payload.clone());
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..subscribers {
            let (client, url, frames) = (client.clone(), url.clone(), frames.clone());
            tokio::spawn(async move {
                let session = client.connect(&url).await.unwrap();
                let params = SubscribeParams { max_latency: 10_000, ..SubscribeParams::default() };
                let mut reader = session.subscribe("alloc", "t", params).await.unwrap();
                while let Ok(Some(mut group)) = reader.next_group().await {
                    while let Ok(Some(_)) = group.next_frame().await {
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Warm up, then count.
        tokio::time::sleep(Duration::from_secs(2)).await;
        count_tx.send(true).unwrap();
        let (a0, b0) = done_rx.recv().unwrap();
        let f0 = frames.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        count_tx.send(false).unwrap();
        let (a1, b1) = done_rx.recv().unwrap();
        let delivered = frames.load(Ordering::Relaxed) - f0;
        println!(
            "{subscribers} subscribers, {seconds} s: {delivered} frames delivered, {} allocations ({:.2} per frame, {:.0} B per frame) on the relay's thread",
            a1 - a0,
            (a1 - a0) as f64 / delivered.max(1) as f64,
            (b1 - b0) as f64 / delivered.max(1) as f64,
        );
    });
}
