//! Loopback tests of the transport layer: raw QUIC and WebTransport on one server socket, version
//! negotiation, certificate pinning, and bytes moving both ways on uni and bidi streams.
//!
//! Every wait is on a readiness signal (an accepted session, a stream, a read); nothing sleeps.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use moqt_driver_quinn::transport::ALPN_H3;
use moqt_driver_quinn::{
    Accepted, ClientConfig, Connection, ConnectionError, Connector, Fingerprint, Identity, Listener, ServerConfig,
    StreamError, TransportError, TransportKind, Verification,
};
use moqt_proto::Version;

/// A whole test step must finish within this (guards against hangs; never used as a delay).
const STEP: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn server_with(versions: &[Version]) -> (Listener, Fingerprint) {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1", "::1"]).unwrap();
    let fingerprint = identity.fingerprint();
    let mut config = ServerConfig::new(loopback(), identity);
    config.versions = versions.to_vec();
    (Listener::bind(config).unwrap(), fingerprint)
}

fn client(fingerprint: Fingerprint, version: Option<Version>) -> Connector {
    let mut config = ClientConfig::new(Verification::pinned(fingerprint));
    if let Some(v) = version {
        config = config.with_version(v);
    }
    Connector::new(config).unwrap()
}

fn raw_url(server: &Listener, path: &str) -> String {
    format!("moqt://{}{path}", server.local_addr())
}

fn wt_url(server: &Listener, path: &str) -> String {
    format!("https://{}{path}", server.local_addr())
}

/// Connects and accepts concurrently; returns (client session, server's accepted).
/// `scheme` is `moqt` (raw QUIC) or `https` (WebTransport).
async fn connect(server: &mut Listener, client: &Connector, scheme: &str, path: &str) -> (Connection, Accepted) {
    let url = format!("{scheme}://{}{path}", server.local_addr());
    let (c, s) = within("connect", async { tokio::join!(client.connect(&url), server.accept()) }).await;
    (c.unwrap(), s.expect("server stopped"))
}

/// Moves bytes both ways on uni and bidi streams, then exercises reset, stop-sending, a datagram
/// and a close with code and reason.
async fn exchange(client: &Connection, server: &Connection) {
    // Uni, client -> server.
    let mut send = within("open uni", client.open_uni()).await.unwrap();
    send.set_priority(5).unwrap();
    send.write(Bytes::from_static(b"hello ")).await.unwrap();
    send.write(Bytes::from_static(b"server")).await.unwrap();
    send.finish().unwrap();
    let mut recv = within("accept uni", server.accept_uni()).await.unwrap();
    assert_eq!(within("read uni", recv.read_to_end(1024)).await.unwrap(), b"hello server");

    // Uni, server -> client, through write_chunks.
    let mut send = within("open uni", server.open_uni()).await.unwrap();
    let mut chunks = [Bytes::from_static(b"hello "), Bytes::from_static(b"client")];
    let mut written = 0;
    while written < 12 {
        written += send.write_chunks(&mut chunks).await.unwrap().bytes;
    }
    send.finish().unwrap();
    let mut recv = within("accept uni", client.accept_uni()).await.unwrap();
    assert_eq!(within("read uni", recv.read_to_end(1024)).await.unwrap(), b"hello client");

    // Bidi opened by the client: request, response.
    let (mut c_send, mut c_recv) = within("open bi", client.open_bi()).await.unwrap();
    c_send.write(Bytes::from_static(b"ping")).await.unwrap();
    c_send.finish().unwrap();
    let (mut s_send, mut s_recv) = within("accept bi", server.accept_bi()).await.unwrap();
    assert_eq!(within("read bi", s_recv.read_to_end(1024)).await.unwrap(), b"ping");
    s_send.write(Bytes::from_static(b"pong")).await.unwrap();
    s_send.finish().unwrap();
    assert_eq!(within("read bi", c_recv.read_to_end(1024)).await.unwrap(), b"pong");

    // Bidi opened by the server.
    let (mut s_send, mut s_recv) = within("open bi", server.open_bi()).await.unwrap();
    s_send.write(Bytes::from_static(b"marco")).await.unwrap();
    s_send.finish().unwrap();
    let (mut c_send, mut c_recv) = within("accept bi", client.accept_bi()).await.unwrap();
    assert_eq!(within("read bi", c_recv.read_to_end(1024)).await.unwrap(), b"marco");
    c_send.write(Bytes::from_static(b"polo")).await.unwrap();
    c_send.finish().unwrap();
    assert_eq!(within("read bi", s_recv.read_to_end(1024)).await.unwrap(), b"polo");

    // Reset with a code: the reader sees it. The reader takes the stream and its first bytes before
    // the reset (on WebTransport a reset that beats the stream header makes the stream invisible).
    let mut send = within("open uni", client.open_uni()).await.unwrap();
    send.write(Bytes::from_static(b"doomed")).await.unwrap();
    let mut recv = within("accept uni", server.accept_uni()).await.unwrap();
    assert_eq!(within("read", recv.read_chunk(6)).await.unwrap().as_deref(), Some(&b"doomed"[..]));
    send.reset(7).unwrap();
    let err = within("read reset", recv.read_to_end(1024)).await.unwrap_err();
    assert_eq!(err, StreamError::Reset(7));

    // Stop-sending with a code: the writer sees it.
    let (mut c_send, _c_recv) = within("open bi", client.open_bi()).await.unwrap();
    c_send.write(Bytes::from_static(b"x")).await.unwrap();
    let (_s_send, mut s_recv) = within("accept bi", server.accept_bi()).await.unwrap();
    s_recv.stop(9).unwrap();
    assert_eq!(within("stopped", c_send.stopped()).await.unwrap(), Some(9));

    // A datagram each way (loopback does not drop them).
    assert!(client.max_datagram_size() > 100, "datagrams unsupported");
    client.send_datagram(Bytes::from_static(b"dgram up")).unwrap();
    assert_eq!(within("datagram", server.read_datagram()).await.unwrap(), &b"dgram up"[..]);
    server.send_datagram(Bytes::from_static(b"dgram down")).unwrap();
    assert_eq!(within("datagram", client.read_datagram()).await.unwrap(), &b"dgram down"[..]);

    // Close with code and reason: the peer sees both.
    client.close(42, "bye");
    assert_eq!(within("closed", server.closed()).await, ConnectionError::Closed { code: 42, reason: "bye".into() });
}

#[tokio::test]
async fn raw_quic_default_negotiates_lite06_and_moves_bytes() {
    let (mut server, fp) = server_with(&Version::ALL);
    let client = client(fp, None);
    let (c, s) = connect(&mut server, &client, "moqt", "/ignored").await;
    assert_eq!(c.version(), Version::Lite06);
    assert_eq!(s.version, Version::Lite06);
    assert_eq!(s.connection.version(), Version::Lite06);
    assert_eq!((c.kind(), s.kind), (TransportKind::RawQuic, TransportKind::RawQuic));
    assert_eq!(s.path, None);
    assert_eq!(s.peer.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(c.peer_addr(), server.local_addr());
    assert_eq!(c.wt_protocol(), None);
    exchange(&c, &s.connection).await;
}

#[tokio::test]
async fn raw_quic_pinned_versions() {
    let (mut server, fp) = server_with(&Version::ALL);
    for v in Version::ALL {
        let client = client(fp, Some(v));
        let (c, s) = connect(&mut server, &client, "moqt", "").await;
        assert_eq!((c.version(), s.version), (v, v), "pinned {v}");
        exchange(&c, &s.connection).await;
    }
}

#[tokio::test]
async fn webtransport_default_negotiates_lite06_with_path() {
    let (mut server, fp) = server_with(&Version::ALL);
    let client = client(fp, None);
    let (c, s) = connect(&mut server, &client, "https", "/room/alice?jwt=abc").await;
    assert_eq!(c.version(), Version::Lite06);
    assert_eq!(s.version, Version::Lite06);
    assert_eq!((c.kind(), s.kind), (TransportKind::WebTransport, TransportKind::WebTransport));
    assert_eq!(s.path.as_deref(), Some("/room/alice?jwt=abc"));
    assert_eq!(s.url.as_ref().map(|u| u.path()), Some("/room/alice"));
    assert_eq!(c.wt_protocol(), Some("moq-lite-06"));
    assert_eq!(s.peer.ip(), std::net::Ipv4Addr::LOCALHOST);
    exchange(&c, &s.connection).await;
}

#[tokio::test]
async fn webtransport_pinned_versions() {
    let (mut server, fp) = server_with(&Version::ALL);
    for v in Version::ALL {
        let client = client(fp, Some(v));
        let (c, s) = connect(&mut server, &client, "https", "/moq").await;
        assert_eq!((c.version(), s.version), (v, v), "pinned {v}");
        assert_eq!(c.wt_protocol(), Some(v.wt_protocol()));
        assert_eq!(s.path.as_deref(), Some("/moq"));
        exchange(&c, &s.connection).await;
    }
}

/// A wrong pin is refused with a clear error on both transports, and the server never yields a
/// session for it (the next session it yields is the good one).
#[tokio::test]
async fn wrong_fingerprint_is_refused() {
    let (mut server, fp) = server_with(&Version::ALL);
    let wrong = Identity::self_signed(&["localhost"]).unwrap().fingerprint();
    assert_ne!(wrong, fp);
    let bad = client(wrong, None);
    for url in [raw_url(&server, ""), wt_url(&server, "/moq")] {
        let err = within("bad connect", bad.connect(&url)).await.unwrap_err();
        assert!(matches!(err, TransportError::Handshake { .. }), "{url}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("does not match the pinned fingerprint"), "{url}: {msg}");
        assert!(msg.contains(&fp.to_string()), "{url}: message should name the presented fingerprint: {msg}");
    }
    let good = client(fp, None);
    let (c, s) = connect(&mut server, &good, "https", "/after").await;
    assert_eq!(s.path.as_deref(), Some("/after"));
    assert_eq!(c.version(), Version::Lite06);
}

/// The server picks the first client-offered protocol it supports and echoes it in `wt-protocol`.
#[tokio::test]
async fn server_echoes_wt_protocol() {
    // Restricted server: lite-04 and lite-05 only. Our client offers 06, 05, 04, 03 -> 05.
    let (mut server, fp) = server_with(&[Version::Lite04, Version::Lite05]);
    let ours = client(fp, None);
    let (c, s) = connect(&mut server, &ours, "https", "/moq").await;
    assert_eq!(c.wt_protocol(), Some("moq-lite-05"));
    assert_eq!((c.version(), s.version), (Version::Lite05, Version::Lite05));

    // A plain web-transport-quinn client offering what moq-net/gomoqt send: the client's order wins
    // and the header comes back even though the client put an unknown protocol first.
    let wt = web_transport_quinn::ClientBuilder::new().with_server_certificate_hashes(vec![fp.0.to_vec()]).unwrap();
    let url: url::Url = wt_url(&server, "/moq").parse().unwrap();
    for (offered, expected) in [
        (vec!["moql", "moq-lite-04", "moq-lite-05"], "moq-lite-04"),
        (vec!["moq-lite-06", "moq-lite-05"], "moq-lite-05"),
    ] {
        let request = web_transport_quinn::proto::ConnectRequest::new(url.clone())
            .with_protocols(offered.iter().map(|p| p.to_string()));
        let (session, accepted) =
            within("plain wt connect", async { tokio::join!(wt.connect(request), server.accept()) }).await;
        let session = session.unwrap();
        assert_eq!(session.response().and_then(|r| r.protocol.as_deref()), Some(expected), "offered {offered:?}");
        assert_eq!(session.protocol(), Some(expected));
        assert_eq!(accepted.unwrap().version.wt_protocol(), expected);
    }

    // Nothing in common: refused with an HTTP error, no session.
    let pinned06 = client(fp, Some(Version::Lite06));
    let err = within("refused", pinned06.connect(&wt_url(&server, "/moq"))).await.unwrap_err();
    assert!(matches!(err, TransportError::WebTransport { .. }), "{err:?}");
    assert!(err.to_string().contains("400"), "{err}");
}

/// Raw QUIC with a restricted server: the ALPN picks a common version, or the handshake fails.
#[tokio::test]
async fn raw_quic_restricted_server() {
    let (mut server, fp) = server_with(&[Version::Lite04]);
    let (c, s) = connect(&mut server, &client(fp, None), "moqt", "").await;
    assert_eq!((c.version(), s.version), (Version::Lite04, Version::Lite04));

    let err =
        within("no common alpn", client(fp, Some(Version::Lite06)).connect(&raw_url(&server, ""))).await.unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "{err:?}");

    // The server still offers h3 on the same socket.
    let (c, _s) = connect(&mut server, &client(fp, None), "https", "/x").await;
    assert_eq!(c.version(), Version::Lite04);
    assert!(ALPN_H3 == "h3");
}

/// WebPKI verification against the generated certificate as a root, checking the IP SAN.
#[tokio::test]
async fn root_verification_checks_the_name() {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let root = identity.leaf().clone();
    let mut server = Listener::bind(ServerConfig::new(loopback(), identity)).unwrap();
    let client = Connector::new(ClientConfig::new(Verification::Roots(vec![root]))).unwrap();
    let (c, _s) = connect(&mut server, &client, "moqt", "").await;
    assert_eq!(c.version(), Version::Lite06);

    // A certificate for another name is refused.
    let other = Identity::self_signed(&["example.invalid"]).unwrap();
    let other_root = other.leaf().clone();
    let server2 = Listener::bind(ServerConfig::new(loopback(), other)).unwrap();
    let client2 = Connector::new(ClientConfig::new(Verification::Roots(vec![other_root]))).unwrap();
    let err = within("name mismatch", client2.connect(&raw_url(&server2, ""))).await.unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "{err:?}");
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    let client = Connector::new(ClientConfig::new(Verification::InsecureNoVerification)).unwrap();
    let err = client.connect("http://127.0.0.1:1/").await.unwrap_err();
    assert!(matches!(err, TransportError::UnsupportedScheme(ref s) if s == "http"), "{err:?}");
    let err = client.connect("not a url").await.unwrap_err();
    assert!(matches!(err, TransportError::InvalidUrl { .. }), "{err:?}");
}

/// Sessions over `max_sessions_per_address` are closed with LIMIT_EXCEEDED and a reason; a slot
/// freed by a closed session is taken again; the refusals are counted.
#[tokio::test]
async fn sessions_past_the_per_address_limit_are_refused_with_a_reason() {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1", "::1"]).unwrap();
    let fingerprint = identity.fingerprint();
    let mut config = ServerConfig::new(loopback(), identity);
    config.admission.max_sessions_per_address = 2;
    let mut server = Listener::bind(config).unwrap();
    let stats = server.stats();
    let client = client(fingerprint, Some(Version::Lite06));
    let (a, _sa) = connect(&mut server, &client, "moqt", "").await;
    let (_b, _sb) = connect(&mut server, &client, "moqt", "").await;

    // The third completes its handshake and is closed at once with the reason.
    let refused = within("connect", client.connect(&raw_url(&server, ""))).await.unwrap();
    let why = within("refusal", refused.closed()).await;
    assert_eq!(why, ConnectionError::Closed { code: 0x16, reason: "too many sessions from this address".into() });
    assert_eq!(stats.refusals(moqt_driver_quinn::Refusal::PerAddress), 1);
    assert_eq!(stats.sessions.load(std::sync::atomic::Ordering::Relaxed), 2);

    // A session leaves: its slot is free again (the listener sees the close first).
    a.close(0, "bye");
    within("server sees the close", _sa.connection.closed()).await;
    // The accept loop handles finished connections before new attempts, so this one fits.
    let (_c, _sc) = connect(&mut server, &client, "moqt", "").await;
    assert_eq!(stats.sessions.load(std::sync::atomic::Ordering::Relaxed), 2);
}

/// A server connection starts with room for 64 uni and 32 bidi streams of the peer's (quinn
/// allocates a slot per stream up front) and raises each limit, up to the maximum, as the peer
/// uses it: a peer holding many streams open at once is never stuck at the initial limits.
#[tokio::test]
async fn the_peers_stream_limits_grow_with_use_up_to_the_maximum() {
    for scheme in ["moqt", "https"] {
        let identity = Identity::self_signed(&["localhost", "127.0.0.1", "::1"]).unwrap();
        let fingerprint = identity.fingerprint();
        let mut config = ServerConfig::new(loopback(), identity);
        let limits = moqt_driver_quinn::QuicLimits {
            max_concurrent_uni_streams: 200,
            max_concurrent_bidi_streams: 100,
            ..Default::default()
        };
        config.transport = Some(std::sync::Arc::new(limits.server_transport_config()));
        config.stream_credit = Some(limits.stream_credit());
        let mut server = Listener::bind(config).unwrap();
        let client = client(fingerprint, None);
        let (c, s) = connect(&mut server, &client, scheme, "/").await;
        let s = s.connection;
        assert_eq!(s.stream_limits(), Some((64, 32)), "{scheme}: the initial limits");
        // Every stream stays open (not finished, still held) while the next ones are opened.
        let (mut uni_sends, mut uni_recvs) = (Vec::new(), Vec::new());
        for i in 0..150u32 {
            let mut send = within(&format!("{scheme}: open uni {i}"), c.open_uni()).await.unwrap();
            send.write(Bytes::from_static(b"x")).await.unwrap();
            uni_recvs.push(within(&format!("{scheme}: accept uni {i}"), s.accept_uni()).await.unwrap());
            uni_sends.push(send);
        }
        let (mut bi_streams, mut bi_accepted) = (Vec::new(), Vec::new());
        for i in 0..40u32 {
            let (mut send, recv) = within(&format!("{scheme}: open bi {i}"), c.open_bi()).await.unwrap();
            send.write(Bytes::from_static(b"y")).await.unwrap();
            bi_accepted.push(within(&format!("{scheme}: accept bi {i}"), s.accept_bi()).await.unwrap());
            bi_streams.push((send, recv));
        }
        // 64 → 128 at 48 open, → 200 (the maximum) at 96; bidi 32 → 64 at 24.
        assert_eq!(s.stream_limits(), Some((200, 64)), "{scheme}");
    }
}
