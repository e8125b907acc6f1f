//! The soak's population: publishers that come and go, subscribers that come and go, and
//! stalled subscribers that subscribe and never read (raw lite-04 over tiny QUIC windows, so
//! the relay's queues, not the client's, take the pressure).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use moqt_driver_quinn::transport::{ClientConfig, Connector};
use moqt_driver_quinn::{Client, QuicLimits, SubscribeParams, Verification};
use moqt_proto::message::Subscribe;
use moqt_proto::stream::{StreamEncoder, StreamMessage, StreamType};
use moqt_proto::{Codec, Path, Version};

use crate::rng::Rng;

/// What the population did, for the reports.
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Frames subscribers received.
    pub frames_delivered: AtomicU64,
    /// Frames publishers wrote.
    pub frames_published: AtomicU64,
    /// Sessions started (all kinds).
    pub sessions: AtomicU64,
    /// Connection attempts that failed (loss can defeat a handshake; the peer retries).
    pub connect_errors: AtomicU64,
    /// Subscriptions that ended in an error (the publisher left, the relay dropped it...).
    pub subscribe_errors: AtomicU64,
}

/// Shared settings of the population.
#[derive(Debug, Clone)]
pub struct World {
    pub url: String,
    pub fingerprint: String,
    pub fps: u64,
    pub size: usize,
    pub stall: f64,
    pub live: Arc<Mutex<Vec<String>>>,
    pub stats: Arc<PeerStats>,
    pub until: Instant,
}

impl World {
    fn config(&self, small: bool) -> ClientConfig {
        let mut cc = ClientConfig::new(Verification::pinned(self.fingerprint.parse().expect("fingerprint")));
        cc.runtime = Some(moqt_driver_tokio::runtime());
        cc.handshake_timeout = Duration::from_secs(20);
        let mut limits = QuicLimits { idle_timeout: Duration::from_secs(20), ..QuicLimits::default() };
        if small {
            limits.stream_receive_window = 16 << 10;
            limits.receive_window = 64 << 10;
        }
        cc.transport = Some(Arc::new(limits.transport_config()));
        cc
    }

    fn pick(&self, rng: &mut Rng) -> Option<String> {
        let live = self.live.lock().ok()?;
        (!live.is_empty()).then(|| live[rng.range(0, live.len() as u64) as usize].clone())
    }
}

fn frame(counter: u64, size: usize) -> Bytes {
    let mut b = BytesMut::zeroed(size.max(8));
    b[..8].copy_from_slice(&counter.to_be_bytes());
    b.freeze()
}

/// One publisher slot: publish `soak/pSLOT-GEN` for 20–90 s, leave, come back as a new one.
pub async fn publisher(world: World, slot: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for generation in 0u64.. {
        if Instant::now() >= world.until {
            return;
        }
        let Ok(client) = Client::new(world.config(false)) else { return };
        let session = match client.connect(&world.url).await {
            Ok(s) => s,
            Err(_) => {
                world.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        world.stats.sessions.fetch_add(1, Ordering::Relaxed);
        let name = format!("soak/p{slot}-{generation}");
        let broadcast = session.publish(&name);
        let track = broadcast.create_track("t");
        if let Ok(mut live) = world.live.lock() {
            live.push(name.clone());
        }
        let end = (Instant::now() + Duration::from_secs(rng.range(20, 90))).min(world.until);
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / world.fps.max(1) as f64));
        let mut group = None;
        let mut n = 0u64;
        while Instant::now() < end {
            tick.tick().await;
            if n % world.fps.max(1) == 0 {
                if let Some(g) = group.take() {
                    moqt_driver_quinn::GroupPublisher::finish(g);
                }
                group = Some(track.open_group(n / world.fps.max(1)));
            }
            if let Some(g) = &group {
                if g.write_frame(frame(n, world.size)).is_err() {
                    break;
                }
            }
            world.stats.frames_published.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
        if let Some(g) = group.take() {
            moqt_driver_quinn::GroupPublisher::finish(g);
        }
        if let Ok(mut live) = world.live.lock() {
            live.retain(|l| *l != name);
        }
        session.close(0, "leaving");
        let _ = tokio::time::timeout(Duration::from_secs(2), client.wait_idle()).await;
    }
}

/// One subscriber slot: subscribe to a random live broadcast for 5–40 s (or stall on it), leave,
/// come back.
pub async fn subscriber(world: World, seed: u64) {
    let mut rng = Rng::new(seed);
    while Instant::now() < world.until {
        let Some(name) = world.pick(&mut rng) else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let end = (Instant::now() + Duration::from_secs(rng.range(5, 40))).min(world.until);
        if rng.chance(world.stall) {
            stalled(&world, &name, end).await;
            continue;
        }
        let Ok(client) = Client::new(world.config(false)) else { return };
        let session = match client.connect(&world.url).await {
            Ok(s) => s,
            Err(_) => {
                world.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        world.stats.sessions.fetch_add(1, Ordering::Relaxed);
        let params = SubscribeParams { max_latency: 2000, ..SubscribeParams::default() };
        let read = async {
            let mut reader = session.subscribe(&name, "t", params).await?;
            while let Some(mut group) = reader.next_group().await? {
                while let Some(_frame) = group.next_frame().await? {
                    world.stats.frames_delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), moqt_driver_quinn::Error>(())
        };
        if let Ok(Err(_)) = tokio::time::timeout_at(end.into(), read).await {
            world.stats.subscribe_errors.fetch_add(1, Ordering::Relaxed);
        }
        session.close(0, "leaving");
        let _ = tokio::time::timeout(Duration::from_secs(2), client.wait_idle()).await;
    }
}

/// Subscribes over raw lite-04 with tiny windows and never reads, until `end`.
async fn stalled(world: &World, name: &str, end: Instant) {
    let Ok(connector) = Connector::new(world.config(true).with_version(Version::Lite04)) else { return };
    let Ok(conn) = connector.connect(&world.url).await else {
        world.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    world.stats.sessions.fetch_add(1, Ordering::Relaxed);
    let mut enc = StreamEncoder::new(Codec::new(Version::Lite04));
    let mut buf = BytesMut::new();
    enc.encode(&StreamMessage::Type(StreamType::Subscribe), &mut buf);
    let sub = Subscribe { id: 0, path: Path::new(name), track: "t".into(), max_latency: 2000, ..Subscribe::default() };
    enc.encode(&StreamMessage::Subscribe(sub), &mut buf);
    if let Ok((mut send, _recv)) = conn.open_bi().await {
        if send.write(buf.freeze()).await.is_ok() {
            tokio::time::sleep_until(end.into()).await;
        }
    }
    conn.close(0, "leaving");
    let _ = tokio::time::timeout(Duration::from_secs(2), connector.wait_idle()).await;
}
