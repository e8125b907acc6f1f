//! End-to-end tests of the async moq-lite API over real quinn on loopback, for raw QUIC and
//! WebTransport and every version: announce discovery, subscribe and in-order groups, fetch
//! served by the application, GOAWAY, close codes, and a misbehaving client that is closed while
//! another client's subscription keeps flowing.
//!
//! Every wait is on a readiness signal; `within` only guards against hangs.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use moqt_driver_quinn::{Announcement, BroadcastRequest, Client, CloseInfo, Error, Server, Session, SubscribeParams};
use moqt_driver_quinn::{ClientConfig, Fingerprint, Identity, ServerConfig, TransportKind, Verification};
use moqt_proto::session::{session_code, stream_code, APPLICATION_BASE};
use moqt_proto::{Path, Version};

const STEP: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn server(versions: &[Version]) -> (Server, Fingerprint) {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let fp = identity.fingerprint();
    let mut config = ServerConfig::new("127.0.0.1:0".parse::<SocketAddr>().unwrap(), identity);
    config.versions = versions.to_vec();
    (Server::bind(config).unwrap(), fp)
}

fn client(fp: Fingerprint, version: Version) -> Client {
    Client::new(ClientConfig::new(Verification::pinned(fp)).with_version(version)).unwrap()
}

async fn connect(server: &mut Server, client: &Client, scheme: &str, path: &str) -> (Session, Session) {
    let url = format!("{scheme}://{}{path}", server.local_addr());
    let (c, s) = within("connect", async { tokio::join!(client.connect(&url), server.accept()) }).await;
    (c.unwrap(), s.expect("server stopped"))
}

fn params() -> SubscribeParams {
    SubscribeParams { priority: 1, ordered: true, max_latency: 30_000, ..SubscribeParams::default() }
}

fn frame(g: u64, f: u64) -> Bytes {
    // Varied sizes, some larger than a QUIC packet.
    let len = 1 + ((g * 7 + f * 13) % 5) as usize * 700;
    let mut v = format!("g{g}f{f}:").into_bytes();
    v.resize(len.max(v.len()), b'a' + (f % 26) as u8);
    Bytes::from(v)
}

const GROUPS: u64 = 8;
const FRAMES: u64 = 5;

async fn scenario(scheme: &str, version: Version) {
    let (mut server, fp) = server(&[version]);
    let client = client(fp, version);
    let (c, s) = connect(&mut server, &client, scheme, "/moq").await;
    let kind = if scheme == "moqt" { TransportKind::RawQuic } else { TransportKind::WebTransport };
    assert_eq!((c.version(), s.version()), (version, version));
    assert_eq!((c.kind(), s.kind()), (kind, kind));
    if kind == TransportKind::WebTransport {
        assert_eq!(s.path(), Some("/moq"));
    }

    // The server publishes a broadcast with a track; the client discovers it.
    let broadcast = s.publish("live/cam");
    let track = broadcast.create_track("video");
    let mut announced = within("announced", c.announced("")).await.unwrap();
    let first = within("announcement", announced.next()).await.unwrap();
    assert_eq!(first, Some(Announcement::Active(Path::new("live/cam"))), "{scheme} {version}");

    // Subscribe and receive every group intact and in order.
    let mut reader = within("subscribe", c.subscribe("live/cam", "video", params())).await.unwrap();
    within("subscribed", track.wait_subscribers(1)).await.unwrap();
    for g in 0..GROUPS {
        let group = track.open_group(g);
        for f in 0..FRAMES {
            group.write_frame(frame(g, f)).unwrap();
        }
        group.finish();
        let mut got = within("group", reader.next_group()).await.unwrap().expect("track ended early");
        assert_eq!(got.sequence(), g, "{scheme} {version}");
        let frames = within("frames", got.read_all()).await.unwrap();
        let want: Vec<Bytes> = (0..FRAMES).map(|f| frame(g, f)).collect();
        assert_eq!(frames, want, "{scheme} {version} group {g}");
    }

    // A fetch of a recent group is served from the publisher's cache: the application only
    // hears that it was.
    let mut fetch = within("fetch cached", c.fetch("live/cam", "video", 3)).await.unwrap();
    let fetched = within("fetch cached frames", fetch.read_all()).await.unwrap();
    assert_eq!(fetched, (0..FRAMES).map(|f| frame(3, f)).collect::<Vec<_>>(), "{scheme} {version}");
    match within("fetch served", broadcast.next_request()).await {
        Some(BroadcastRequest::FetchServed { track, group }) => assert_eq!((track.as_str(), group), ("video", 3)),
        other => panic!("expected a served fetch, got {other:?}"),
    }

    // A fetch of a group no cache holds is served by the application.
    const OLD: u64 = 1000;
    let serve = async {
        match within("fetch request", broadcast.next_request()).await {
            Some(BroadcastRequest::Fetch(req)) => {
                assert_eq!((req.track(), req.group()), ("video", OLD));
                for f in 0..FRAMES {
                    req.write_frame(frame(OLD, f));
                }
                req.finish();
            }
            other => panic!("expected a fetch, got {other:?}"),
        }
    };
    let fetch = async {
        let mut fetch = within("fetch", c.fetch("live/cam", "video", OLD)).await.unwrap();
        within("fetch frames", fetch.read_all()).await.unwrap()
    };
    let ((), fetched) = tokio::join!(serve, fetch);
    assert_eq!(fetched, (0..FRAMES).map(|f| frame(OLD, f)).collect::<Vec<_>>(), "{scheme} {version}");

    // GOAWAY from the server reaches the client (lite-04+).
    if version.has_goaway() {
        within("goaway", s.goaway("moqt://elsewhere.invalid/")).await.unwrap();
        assert_eq!(within("goaway received", c.goaway_received()).await, "moqt://elsewhere.invalid/");
        // New requests are refused after GOAWAY; existing ones keep working.
        let mut refused = within("subscribe after goaway", c.subscribe("live/cam", "audio", params())).await.unwrap();
        let err = within("refusal", refused.next_group()).await.err();
        assert_eq!(err, Some(Error::Code(stream_code::GOING_AWAY)), "{scheme} {version}");
    } else {
        assert!(s.goaway("").await.is_err());
    }

    // Close codes propagate both ways.
    let code = APPLICATION_BASE + 7;
    s.close(code, "bye");
    let want = CloseInfo { code, reason: "bye".into() };
    assert_eq!(within("server closed", s.closed()).await, want);
    assert_eq!(within("client closed", c.closed()).await, want, "{scheme} {version}");
    // The subscription ends with the session.
    let end = within("track end", reader.next_group()).await.map(|g| g.map(|g| g.sequence()));
    assert!(end.is_err(), "{scheme} {version}: {end:?}");
}

#[tokio::test]
async fn raw_quic_every_version() {
    for v in Version::ALL {
        scenario("moqt", v).await;
    }
}

#[tokio::test]
async fn webtransport_every_version() {
    for v in Version::ALL {
        scenario("https", v).await;
    }
}

/// The client closes; the server sees its code.
#[tokio::test]
async fn client_close_code_reaches_the_server() {
    let (mut server, fp) = server(&Version::ALL);
    for scheme in ["moqt", "https"] {
        let (c, s) = connect(&mut server, &client(fp, Version::Lite06), scheme, "/x").await;
        c.close(APPLICATION_BASE + 42, "done here");
        let want = CloseInfo { code: APPLICATION_BASE + 42, reason: "done here".into() };
        assert_eq!(within("server closed", s.closed()).await, want, "{scheme}");
        assert_eq!(within("client closed", c.closed()).await, want, "{scheme}");
    }
}

/// A clean close right after the last write still delivers everything written (the session
/// lingers until the peer has acknowledged it): every frame of several large groups, then the end
/// of the track.
#[tokio::test]
async fn a_clean_close_delivers_what_was_written() {
    let (mut server, fp) = server(&Version::ALL);
    for (scheme, version) in [("moqt", Version::Lite06), ("https", Version::Lite05), ("moqt", Version::Lite03)] {
        let (c, s) = connect(&mut server, &client(fp, version), scheme, "/x").await;
        let broadcast = s.publish("bulk");
        let track = broadcast.create_track("t");
        let mut reader = within("subscribe", c.subscribe("bulk", "t", params())).await.unwrap();
        within("subscribed", track.wait_subscribers(1)).await.unwrap();
        let payload = Bytes::from(vec![7u8; 64 << 10]);
        const GROUPS: u64 = 4;
        const FRAMES: usize = 8; // 2 MiB in all: within the subscription's queue budget
        for g in 0..GROUPS {
            let group = track.open_group(g);
            for _ in 0..FRAMES {
                group.write_frame(payload.clone()).unwrap();
            }
            group.finish();
        }
        drop(track);
        drop(broadcast);
        s.close(session_code::NO_ERROR, "done");
        let mut received = 0;
        while let Some(mut group) = within("next group", reader.next_group()).await.unwrap() {
            let frames = within("group", group.read_all()).await.unwrap();
            received += frames.iter().map(Bytes::len).sum::<usize>();
        }
        assert_eq!(received, GROUPS as usize * FRAMES * payload.len(), "{scheme} {version}");
        assert_eq!(within("closed", c.closed()).await.code, session_code::NO_ERROR, "{scheme} {version}");
    }
}

/// A subscription to a track that does not exist yet waits; the application learns the name
/// and creates the track, which accepts it.
#[tokio::test]
async fn track_created_on_request() {
    let (mut server, fp) = server(&Version::ALL);
    let (c, s) = connect(&mut server, &client(fp, Version::Lite05), "moqt", "").await;
    let broadcast = s.publish("room");
    let sub = async { within("subscribe", c.subscribe("room", "audio", params())).await.unwrap() };
    let create = async {
        match within("request", broadcast.next_request()).await {
            Some(BroadcastRequest::Track(name)) => {
                assert_eq!(name, "audio");
                broadcast.create_track(&name)
            }
            other => panic!("expected a track request, got {other:?}"),
        }
    };
    let (mut reader, track) = tokio::join!(sub, create);
    within("subscribed", track.wait_subscribers(1)).await.unwrap();
    let group = track.open_group(0);
    group.write_frame(Bytes::from_static(b"hello")).unwrap();
    group.finish();
    let mut g = within("group", reader.next_group()).await.unwrap().unwrap();
    assert_eq!(within("frames", g.read_all()).await.unwrap(), vec![Bytes::from_static(b"hello")]);

    // A subscription to a broadcast that does not exist is refused.
    let mut missing = within("subscribe", c.subscribe("nowhere", "x", params())).await.unwrap();
    assert!(within("refused", missing.next_group()).await.is_err());
}

/// A client that sends garbage on a stream has its session closed with a protocol violation;
/// another client's subscription on the same server keeps flowing.
#[tokio::test]
async fn garbage_closes_only_the_offender() {
    for scheme in ["moqt", "https"] {
        let (mut server, fp) = server(&Version::ALL);
        let version = Version::Lite04;

        // The good client, subscribed to the server's track.
        let (good, good_s) = connect(&mut server, &client(fp, version), scheme, "/good").await;
        let broadcast = good_s.publish("live");
        let track = broadcast.create_track("t");
        let mut reader = within("subscribe", good.subscribe("live", "t", params())).await.unwrap();
        within("subscribed", track.wait_subscribers(1)).await.unwrap();

        // The bad client: a plain transport session that opens a SUBSCRIBE stream and sends a
        // message whose body does not decode.
        let transport =
            moqt_driver_quinn::Connector::new(ClientConfig::new(Verification::pinned(fp)).with_version(version))
                .unwrap();
        let url = format!("{scheme}://{}/bad", server.local_addr());
        let (bad, bad_s) =
            within("connect bad", async { tokio::join!(transport.connect(&url), server.accept()) }).await;
        let (bad, bad_s) = (bad.unwrap(), bad_s.unwrap());
        let (mut send, _recv) = within("open bi", bad.open_bi()).await.unwrap();
        let mut garbage = vec![0x02, 0x44, 0x00];
        garbage.extend(std::iter::repeat_n(0xff, 1024));
        send.write(Bytes::from(garbage)).await.unwrap();
        send.finish().unwrap();
        let info = within("bad closed", bad_s.closed()).await;
        assert_eq!(info.code, session_code::PROTOCOL_VIOLATION, "{scheme}: {info:?}");
        let seen = within("bad transport closed", bad.closed()).await;
        assert!(
            matches!(seen, moqt_driver_quinn::ConnectionError::Closed { code, .. } if code == session_code::PROTOCOL_VIOLATION),
            "{scheme}: {seen:?}"
        );

        // The good subscription still flows.
        for g in 0..3 {
            let group = track.open_group(g);
            group.write_frame(frame(g, 0)).unwrap();
            group.finish();
            let mut got = within("group", reader.next_group()).await.unwrap().unwrap();
            assert_eq!(got.sequence(), g);
            assert_eq!(within("frames", got.read_all()).await.unwrap(), vec![frame(g, 0)]);
        }
        assert!(good.close_info().is_none() && good_s.close_info().is_none());
    }
}

/// Probe reports come back from the peer.
#[tokio::test]
async fn probe_reports() {
    let (mut server, fp) = server(&Version::ALL);
    let (c, _s) = connect(&mut server, &client(fp, Version::Lite06), "moqt", "").await;
    let mut probe = within("probe", c.probe(None)).await.unwrap();
    let report = within("report", probe.next_report()).await.unwrap();
    assert!(report.is_some());
}
