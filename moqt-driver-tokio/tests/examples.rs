//! The examples (`cargo run --example broadcast|echo|native_quic|relay|clock`), run in-process
//! through the functions their `main`s call, over loopback, for raw QUIC and WebTransport. Each
//! example file is included here as a module, with its own copy of `examples/common`.
//! Readiness comes from the servers being bound before their tasks start (and the relay's
//! `ready` callback), never from sleeps; `within` only guards against hangs.

// Each example's `main` and command line go unused here.
#[allow(dead_code)]
#[path = "../examples/broadcast.rs"]
mod broadcast;
#[allow(dead_code)]
#[path = "../examples/clock.rs"]
mod clock;
#[allow(dead_code)]
#[path = "../examples/echo.rs"]
mod echo;
#[allow(dead_code)]
#[path = "../examples/native_quic.rs"]
mod native_quic;
#[allow(dead_code)]
#[path = "../examples/relay.rs"]
mod relay;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use moqt_driver_tokio::tls::Fingerprint;
use moqt_driver_tokio::Session;
use moqt_proto::Version;

const WAIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Both transports' URLs for a server at `addr` (WebTransport with `path`).
fn urls(addr: SocketAddr, path: &str) -> [String; 2] {
    [format!("moqt://{addr}"), format!("https://{addr}{path}")]
}

/// A frame as the tests keep it: `(broadcast, group, payload)`.
type Frame = (String, u64, String);

/// Connects to the server at `addr` in every version over both transports (WebTransport with
/// `path`), has `frames_of` collect `n` frames on each session, and checks they are `FRAME g` in
/// group g, from `broadcast`, in consecutive groups.
async fn frames_in_every_version<F>(
    addr: SocketAddr,
    fp: &Fingerprint,
    path: &str,
    broadcast: &str,
    n: u64,
    frames_of: impl Fn(Session) -> F,
) where
    F: Future<Output = anyhow::Result<(u64, Vec<Frame>)>>,
{
    use broadcast::common::{close, frame_payload, ConnectArgs};
    for version in Version::ALL {
        for url in urls(addr, path) {
            let what = format!("{url} {version}");
            let (client, session) = within("connect", ConnectArgs::pinned(fp, version).connect(&url)).await.unwrap();
            assert_eq!(session.version(), version);
            let (got, frames) = within("frames", frames_of(session.clone())).await.unwrap();
            assert_eq!((got, frames.len() as u64), (n, n), "{what}");
            for (b, group, payload) in &frames {
                assert_eq!((b.as_str(), payload.clone()), (broadcast, frame_payload(*group)), "{what}");
            }
            for w in frames.windows(2) {
                assert_eq!(w[1].1, w[0].1 + 1, "{what}: {frames:?}");
            }
            close(&client, &session).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_client_discovers_and_prints_frames() {
    let (server, fp) = broadcast::common::bind(loopback()).unwrap();
    let addr = server.local_addr();
    let serving = tokio::spawn(broadcast::serve(server));
    frames_in_every_version(addr, &fp, "/broadcast", broadcast::BROADCAST, 4, |session| async move {
        let mut frames = Vec::new();
        let keep = |f: &broadcast::common::Frame| frames.push((f.broadcast.clone(), f.group, f.payload.clone()));
        let n = broadcast::client(&session, Some(4), keep).await?;
        Ok((n, frames))
    })
    .await;
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_server_republishes_what_the_client_announces() {
    let (server, fp) = echo::common::bind(loopback()).unwrap();
    let addr = server.local_addr();
    let serving = tokio::spawn(echo::serve(server));
    frames_in_every_version(addr, &fp, "/echo", echo::BROADCAST, 3, |session| async move {
        let mut frames = Vec::new();
        let keep = |f: &echo::common::Frame| frames.push((f.broadcast.clone(), f.group, f.payload.clone()));
        let n = echo::client(&session, Some(3), keep).await?;
        Ok((n, frames))
    })
    .await;
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_quic_handshake_and_clean_close() {
    use native_quic::common::ConnectArgs;
    let (server, fp) = native_quic::bind(loopback()).unwrap();
    let addr = server.local_addr();
    let versions = Version::ALL;
    let serving = tokio::spawn(native_quic::serve(server, Some(versions.len() as u64), |_| {}));
    // WebTransport is not offered: an https:// handshake fails (no `h3` ALPN).
    let wt = format!("https://{addr}/nativequic");
    assert!(within("wt refused", ConnectArgs::pinned(&fp, Version::Lite06).connect(&wt)).await.is_err());
    for version in versions {
        let url = format!("moqt://{addr}/nativequic");
        let (got, closed) =
            within("client", native_quic::client(&url, &ConnectArgs::pinned(&fp, version))).await.unwrap();
        assert_eq!(got, version.to_string());
        assert_eq!((closed.code, closed.reason.as_str()), (0, "done"));
    }
    let reports = within("server", serving).await.unwrap().unwrap();
    let seen: Vec<String> = reports.iter().map(|r| r.version.clone()).collect();
    assert_eq!(seen, versions.iter().map(|v| v.to_string()).collect::<Vec<_>>());
    for r in &reports {
        assert_eq!((r.closed.code, r.closed.reason.as_str()), (0, "done"), "{r:?}");
    }
}

/// A clock line: `YYYY-MM-DD HH:MM:SS`.
fn check_clock_line(line: &str) {
    let b = line.as_bytes();
    assert_eq!(b.len(), 19, "{line:?}");
    assert!(b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[16] == b':', "{line:?}");
    let secs: u32 = line[17..].parse().expect("seconds");
    assert!(secs < 60, "{line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_through_the_relay_example() {
    use clock::common::ConnectArgs;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let relaying = tokio::spawn(relay::run(loopback(), move |addr, fp| {
        let _ = ready_tx.send((addr, fp));
    }));
    let (addr, fp) = within("relay ready", ready_rx).await.unwrap();

    // Publish over raw QUIC lite-04, subscribe over WebTransport lite-06 (the relay translates).
    let (_pc, publisher) =
        within("connect", ConnectArgs::pinned(&fp, Version::Lite04).connect(&format!("moqt://{addr}"))).await.unwrap();
    let runtime = moqt_driver_tokio::runtime();
    let publishing = tokio::spawn(async move { moqt_clock::publish(&publisher, "demo/clock", &runtime, None).await });
    let (_sc, subscriber) =
        within("connect", ConnectArgs::pinned(&fp, Version::Lite06).connect(&format!("https://{addr}/")))
            .await
            .unwrap();
    let mut lines = Vec::new();
    let n =
        within("clock lines", moqt_clock::subscribe(&subscriber, "demo/clock", Some(2), |l| lines.push(l.to_owned())))
            .await
            .unwrap();
    assert_eq!(n, 2);
    lines.iter().for_each(|l| check_clock_line(l));
    assert!(lines[0] <= lines[1], "{lines:?}");
    publishing.abort();
    relaying.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_served_directly() {
    use clock::common::{bind, close, ConnectArgs};
    let (server, fp) = bind(loopback()).unwrap();
    let addr = server.local_addr();
    let serving = tokio::spawn(async move { clock::serve(server, moqt_clock::BROADCAST).await });
    for url in urls(addr, "/") {
        let (client, session) =
            within("connect", ConnectArgs::pinned(&fp, Version::Lite05).connect(&url)).await.unwrap();
        let mut lines = Vec::new();
        within(
            "clock lines",
            moqt_clock::subscribe(&session, moqt_clock::BROADCAST, Some(1), |l| lines.push(l.to_owned())),
        )
        .await
        .unwrap();
        check_clock_line(&lines[0]);
        close(&client, &session).await;
    }
    serving.abort();
}
