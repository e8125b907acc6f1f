//! A lossy UDP proxy on loopback: every client address gets its own upstream socket to the
//! relay, and each datagram in either direction is dropped with the configured probability.
//! QUIC's loss recovery, the relay's queues and its expiry then run as they would on a bad link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::rng::Rng;

/// Datagrams forwarded and dropped.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Datagrams forwarded (both directions).
    pub forwarded: AtomicU64,
    /// Datagrams dropped on purpose (both directions).
    pub dropped: AtomicU64,
}

struct Flow {
    upstream: Arc<UdpSocket>,
    last: Instant,
}

/// Starts the proxy; returns the address clients dial.
pub async fn start(relay: SocketAddr, loss: f64, seed: u64, stats: Arc<ProxyStats>) -> std::io::Result<SocketAddr> {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let addr = front.local_addr()?;
    let flows: Arc<Mutex<HashMap<SocketAddr, Flow>>> = Arc::default();
    let rng = Arc::new(Mutex::new(Rng::new(seed)));
    let drop_it = move |rng: &Mutex<Rng>| loss > 0.0 && rng.lock().map(|mut r| r.chance(loss)).unwrap_or(false);

    // Forget flows idle for a minute (their clients are long gone).
    let sweep = flows.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let now = Instant::now();
            if let Ok(mut f) = sweep.lock() {
                f.retain(|_, flow| now - flow.last < Duration::from_secs(60));
            }
        }
    });

    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else { continue };
            let existing = flows.lock().ok().and_then(|mut f| {
                f.get_mut(&client).map(|flow| {
                    flow.last = Instant::now();
                    flow.upstream.clone()
                })
            });
            let upstream = match existing {
                Some(u) => u,
                None => {
                    let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else { continue };
                    if sock.connect(relay).await.is_err() {
                        continue;
                    }
                    let sock = Arc::new(sock);
                    if let Ok(mut f) = flows.lock() {
                        f.insert(client, Flow { upstream: sock.clone(), last: Instant::now() });
                    }
                    // Relay → client for this flow.
                    let (back, front, rng, stats) = (sock.clone(), front.clone(), rng.clone(), stats.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65_536];
                        loop {
                            let n = match tokio::time::timeout(Duration::from_secs(60), back.recv(&mut buf)).await {
                                Ok(Ok(n)) => n,
                                _ => return,
                            };
                            if drop_it(&rng) {
                                stats.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            stats.forwarded.fetch_add(1, Ordering::Relaxed);
                            let _ = front.send_to(&buf[..n], client).await;
                        }
                    });
                    sock
                }
            };
            if drop_it(&rng) {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            stats.forwarded.fetch_add(1, Ordering::Relaxed);
            let _ = upstream.send(&buf[..n]).await;
        }
    });
    Ok(addr)
}
