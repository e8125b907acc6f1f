//! The tokio driver's own pieces: the re-exported API runs on an explicit tokio runtime and
//! resolves `localhost` with [`TokioResolver`] (loopback only).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moqt_driver_tokio::{Announcement, Client, Server, SubscribeParams};
use moqt_driver_tokio::{ClientConfig, Identity, Resolver, ServerConfig, TokioResolver, Verification};
use moqt_proto::{Path, Version};

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("timed out")
}

#[tokio::test]
async fn resolver_answers_localhost() {
    let addrs = TokioResolver.resolve("localhost", 4443).await.unwrap();
    assert!(addrs.iter().all(|a| a.port() == 4443 && a.ip().is_loopback()), "{addrs:?}");
    assert!(!addrs.is_empty());
}

#[tokio::test]
async fn publish_and_subscribe_by_host_name() {
    let identity = Identity::self_signed(&["localhost"]).unwrap();
    let fp = identity.fingerprint();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), identity);
    config.runtime = Some(moqt_driver_tokio::runtime());
    let mut server = Server::bind(config).unwrap();
    let port = server.local_addr().port();

    let mut config = ClientConfig::new(Verification::pinned(fp)).with_version(Version::Lite05);
    config.runtime = Some(moqt_driver_tokio::runtime());
    config.resolver = Some(Arc::new(TokioResolver));
    // The client must reach the IPv4 listener: pick the IPv4 answer for localhost.
    let client = Client::new(config).unwrap();
    let url = format!("moqt://localhost:{port}/");
    let v4 = TokioResolver.resolve("localhost", port).await.unwrap().iter().any(|a| a.is_ipv4());
    let url = if v4 { url } else { format!("moqt://127.0.0.1:{port}/") };
    let (c, s) = within(async { tokio::join!(client.connect(&url), server.accept()) }).await;
    let (c, s) = (c.unwrap(), s.unwrap());

    let broadcast = s.publish("demo");
    let track = broadcast.create_track("t");
    let mut announced = within(c.announced("")).await.unwrap();
    assert_eq!(within(announced.next()).await.unwrap(), Some(Announcement::Active(Path::new("demo"))));
    let params = SubscribeParams { ordered: true, max_latency: 10_000, ..SubscribeParams::default() };
    let mut reader = within(c.subscribe("demo", "t", params)).await.unwrap();
    within(track.wait_subscribers(1)).await.unwrap();
    let group = track.open_group(0);
    group.write_frame(Bytes::from_static(b"over tokio")).unwrap();
    group.finish();
    let mut g = within(reader.next_group()).await.unwrap().unwrap();
    assert_eq!(within(g.read_all()).await.unwrap(), vec![Bytes::from_static(b"over tokio")]);
}
