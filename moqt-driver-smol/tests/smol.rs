//! The smol driver on its own: no tokio runtime exists in this test binary (any tokio spawn, timer
//! or socket would panic without one), yet the whole API works over raw QUIC, WebTransport and
//! WebSocket (QMux, with a minimal smol HTTP upgrade server in `common`) in every version, names resolve through smol, and the clock and relay examples talk to each other.

mod common;

#[path = "../examples/smol_clock.rs"]
mod clock_example;

use std::net::SocketAddr;

use bytes::Bytes;
use common::within;
use moqt_driver_smol::{Announcement, BroadcastRequest, Client, CloseInfo, Server, SubscribeParams};
use moqt_driver_smol::{Identity, Resolver, SmolResolver, TransportKind, Verification};
use moqt_proto::session::APPLICATION_BASE;
use moqt_proto::{Path, Version};

#[test]
fn resolver_answers_localhost_and_literals() {
    smol::block_on(async {
        let addrs = SmolResolver.resolve("localhost", 4443).await.unwrap();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.port() == 4443 && a.ip().is_loopback()), "{addrs:?}");
        let lit = SmolResolver.resolve("127.0.0.1", 9).await.unwrap();
        assert_eq!(lit, vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
    });
}

/// Every part of the session API, smol client against smol server.
async fn api(scheme: &str, version: Version) {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let fp = identity.fingerprint();
    let mut server = Server::bind(moqt_driver_smol::server_config("127.0.0.1:0".parse().unwrap(), identity)).unwrap();
    // By host name: `localhost` goes through SmolResolver (the server listens on IPv4 only).
    let v4 = SmolResolver.resolve("localhost", 1).await.unwrap().first().is_some_and(|a| a.is_ipv4());
    let host = if v4 { "localhost".to_string() } else { "127.0.0.1".to_string() };
    let url = format!("{scheme}://{host}:{}/room", server.local_addr().port());
    let url = if scheme == "ws" {
        let port = common::websocket_upgrades(server.websocket(), version).await;
        format!("ws://{host}:{port}/room")
    } else {
        url
    };
    let client = Client::new(moqt_driver_smol::client_config(Verification::pinned(fp)).with_version(version)).unwrap();
    let (c, s) = within("connect", futures::future::join(client.connect(&url), server.accept())).await;
    let (c, s) = (c.unwrap(), s.expect("server stopped"));
    let kind = match scheme {
        "moqt" => TransportKind::RawQuic,
        "ws" => TransportKind::WebSocket,
        _ => TransportKind::WebTransport,
    };
    assert_eq!((c.version(), s.version(), c.kind(), s.kind()), (version, version, kind, kind));

    let broadcast = s.publish("live/clock");
    let track = broadcast.create_track("seconds");
    let mut announced = within("announced", c.announced("")).await.unwrap();
    assert_eq!(
        within("announcement", announced.next()).await.unwrap(),
        Some(Announcement::Active(Path::new("live/clock")))
    );

    let params = SubscribeParams { priority: 1, ordered: true, max_latency: 30_000, ..SubscribeParams::default() };
    let mut reader = within("subscribe", c.subscribe("live/clock", "seconds", params)).await.unwrap();
    within("subscribed", track.wait_subscribers(1)).await.unwrap();
    for g in 0..4 {
        let group = track.open_group(g);
        for f in 0..3 {
            group.write_frame(common::frame(g, f)).unwrap();
        }
        group.finish();
        let mut got = within("group", reader.next_group()).await.unwrap().expect("track ended");
        assert_eq!(got.sequence(), g);
        let want: Vec<Bytes> = (0..3).map(|f| common::frame(g, f)).collect();
        assert!(within("frames", got.read_all()).await.unwrap() == want, "{scheme} {version} group {g}");
    }

    // A fetch of a group the publisher no longer caches, served by the application.
    let serve = async {
        match within("fetch request", broadcast.next_request()).await {
            Some(BroadcastRequest::Fetch(req)) => {
                assert_eq!((req.track(), req.group()), ("seconds", 100));
                req.write_frame(Bytes::from_static(b"past"));
                req.finish();
            }
            other => panic!("expected a fetch, got {other:?}"),
        }
    };
    let fetch = async {
        within("fetch frames", within("fetch", c.fetch("live/clock", "seconds", 100)).await.unwrap().read_all()).await
    };
    let ((), fetched) = futures::future::join(serve, fetch).await;
    assert_eq!(fetched.unwrap(), vec![Bytes::from_static(b"past")]);

    let mut probe = within("probe", c.probe(None)).await.unwrap();
    let _ = within("probe report", probe.next_report()).await;

    if version.has_goaway() {
        within("goaway", s.goaway("moqt://next.invalid/")).await.unwrap();
        assert_eq!(within("goaway received", c.goaway_received()).await, "moqt://next.invalid/");
    }

    c.close(APPLICATION_BASE + 3, "client done");
    let want = CloseInfo { code: APPLICATION_BASE + 3, reason: "client done".into() };
    assert_eq!(within("server sees close", s.closed()).await, want, "{scheme} {version}");
    assert_eq!(within("client closed", c.closed()).await, want);
}

#[test]
fn api_on_smol_every_version_every_transport() {
    smol::block_on(async {
        for scheme in ["moqt", "https", "ws"] {
            for v in Version::ALL {
                api(scheme, v).await;
            }
        }
    });
    assert!(tokio::runtime::Handle::try_current().is_err());
}

/// The clock example publishes through the relay example to the clock example's subscriber, which
/// gets lines of the right shape (a date frame, then seconds).
#[test]
fn clock_through_relay_example() {
    smol::block_on(async {
        let (addr, fp) = common::start_relay_example().await;
        let args = |mode: &str, scheme: &str, count: &str| {
            [mode, &format!("{scheme}://{addr}/"), "clock", "--tls-fingerprint", &fp.to_string(), "--count", count]
                .map(String::from)
        };
        // The publisher runs past the subscriber's three lines, so a minute turning over cannot
        // leave the subscriber short.
        let publisher = clock_example::Options::parse(args("publish", "moqt", "5")).unwrap();
        let subscriber = clock_example::Options::parse(args("subscribe", "https", "3")).unwrap();
        assert!(publisher.publish && !subscriber.publish);
        let pub_session = within("publisher connect", publisher.connect()).await.unwrap();
        let publishing = smol::spawn(async move {
            publisher.run(&pub_session, |_| {}).await.unwrap();
            pub_session
        });
        let sub_session = within("subscriber connect", subscriber.connect()).await.unwrap();
        let mut lines = Vec::new();
        within("clock lines", subscriber.run(&sub_session, |l| lines.push(l.to_owned()))).await.unwrap();
        assert_eq!(lines.len(), 3);
        for l in &lines {
            let b = l.as_bytes();
            let shape = b.len() == 19
                && [4, 7].iter().all(|&i| b[i] == b'-')
                && b[10] == b' '
                && [13, 16].iter().all(|&i| b[i] == b':')
                && b.iter().enumerate().all(|(i, c)| [4, 7, 10, 13, 16].contains(&i) || c.is_ascii_digit());
            assert!(shape, "not YYYY-MM-DD HH:MM:SS: {l:?}");
        }
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
        within("publisher", publishing).await.close(0, "");
    });
}
