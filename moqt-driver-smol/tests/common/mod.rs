//! Helpers shared by the smol driver's tests. The moq-lite API is the same type on both
//! runtimes (it lives in `moqt-driver-quinn`), so the publisher and subscriber below run
//! unchanged on smol or on tokio; only the client config and the executor differ.
//!
//! Readiness is signalled, never slept for: the publisher sends a `hello` group first and waits
//! until every subscriber has received it (a relay hands its latest group to late subscribers),
//! so everything after it reaches everyone.

#![allow(dead_code)] // each test binary uses a part

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use moqt_driver_smol::{Announcement, Client, Session, SubscribeParams};
use moqt_driver_smol::{ClientConfig, Fingerprint, Verification};
use moqt_proto::Version;

/// Upper bound for any one step; only guards against hangs.
pub const STEP: Duration = Duration::from_secs(20);
pub const TRACK: &str = "t";
pub const GROUPS: u64 = 6;
pub const FRAMES: u64 = 5;
pub const HELLO: &[u8] = b"hello";

#[path = "../../examples/smol_relay.rs"]
pub mod relay_example;

/// Starts the relay example on smol's global executor; resolves to its address and fingerprint
/// once it is listening.
pub async fn start_relay_example() -> (SocketAddr, Fingerprint) {
    let (ready_tx, ready_rx) = oneshot::channel();
    smol::spawn(async move {
        let ready = |addr, fp| {
            let _ = ready_tx.send((addr, fp));
        };
        relay_example::run("127.0.0.1:0".parse().unwrap(), ready).await.unwrap();
    })
    .detach();
    within("relay example ready", ready_rx).await.expect("relay example failed")
}

/// The executor a client runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Smol,
    Tokio,
}

/// Runs `fut` on its own thread, under `smol::block_on` or a fresh current-thread tokio runtime.
pub fn run_on<T: Send + 'static>(
    on: On,
    fut: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> + Send + 'static {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let out = match on {
            On::Smol => smol::block_on(fut),
            On::Tokio => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(fut),
        };
        let _ = tx.send(out);
    });
    async move { rx.await.expect("client thread panicked") }
}

/// Waits for `fut` on smol's timer, panicking after [`STEP`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    let fut = async { Some(fut.await) };
    let timer = async {
        smol::Timer::after(STEP).await;
        None
    };
    smol::future::or(fut, timer).await.unwrap_or_else(|| panic!("timed out: {what}"))
}

/// A client config for `on`, pinned to `fp`, offering only `version`.
pub fn client_config(on: On, fp: Fingerprint, version: Version) -> ClientConfig {
    match on {
        On::Smol => moqt_driver_smol::client_config(Verification::pinned(fp)),
        On::Tokio => {
            let mut c = ClientConfig::new(Verification::pinned(fp));
            c.runtime = Some(moqt_driver_tokio::runtime());
            c.resolver = Some(std::sync::Arc::new(moqt_driver_tokio::TokioResolver));
            c
        }
    }
    .with_version(version)
}

pub async fn connect(on: On, url: &str, fp: Fingerprint, version: Version) -> Session {
    let client = Client::new(client_config(on, fp, version)).unwrap();
    let session = client.connect(url).await.unwrap_or_else(|e| panic!("{on:?} connect {url}: {e}"));
    assert_eq!(session.version(), version);
    session
}

pub fn url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{addr}/")
}

/// Frame `f` of group `g`: printable, no newline, sizes from 1 byte-ish to past a QUIC packet.
pub fn frame(g: u64, f: u64) -> Bytes {
    let len = 1 + ((g * 7 + f * 13) % 5) as usize * 700;
    let mut v = format!("g{g}f{f}:").into_bytes();
    v.resize(len.max(v.len()), b'a' + ((g + f) % 26) as u8);
    Bytes::from(v)
}

/// Every frame the subscribers must get, in order, after `hello`.
pub fn expected() -> Vec<(u64, Vec<Bytes>)> {
    (1..=GROUPS).map(|g| (g, (0..FRAMES).map(|f| frame(g, f)).collect())).collect()
}

/// Asserts `got` is exactly [`expected`], describing frames by prefix and length on failure.
pub fn check(got: &[(u64, Vec<Bytes>)], what: &str) {
    let want = expected();
    if got != want.as_slice() {
        let brief = |groups: &[(u64, Vec<Bytes>)]| -> Vec<String> {
            let brief_frame = |f: &Bytes| format!("{}({})", String::from_utf8_lossy(&f[..f.len().min(6)]), f.len());
            groups
                .iter()
                .map(|(g, fs)| format!("{g}: {}", fs.iter().map(brief_frame).collect::<Vec<_>>().join(" ")))
                .collect()
        };
        panic!("{what}: frames differ\n got: {:?}\nwant: {:?}", brief(got), brief(&want));
    }
}

/// Publishes `broadcast`: a `hello` group once the relay subscribes, then (after every `ready`
/// fired) groups 1..=GROUPS. Keeps the session open until `done` fires.
pub async fn publish(
    session: Session,
    broadcast: String,
    ready: Vec<oneshot::Receiver<()>>,
    done: oneshot::Receiver<()>,
) {
    let publisher = session.publish(&broadcast);
    let track = publisher.create_track(TRACK);
    within("upstream subscription", track.wait_subscribers(1)).await.unwrap();
    let hello = track.open_group(0);
    hello.write_frame(Bytes::from_static(HELLO)).unwrap();
    hello.finish();
    for r in ready {
        within("subscriber ready", r).await.expect("a subscriber gave up");
    }
    for g in 1..=GROUPS {
        let group = track.open_group(g);
        for f in 0..FRAMES {
            group.write_frame(frame(g, f)).unwrap();
        }
        group.finish();
    }
    let _ = within("subscribers done", done).await;
    drop((track, publisher));
    session.close(0, "");
}

/// Waits for `broadcast` to be announced on `session` (so a relay can route a subscription).
pub async fn await_announced(session: &Session, broadcast: &str) {
    let mut announced = within("announced", session.announced("")).await.unwrap();
    loop {
        match within("announcement", announced.next()).await.unwrap() {
            Some(Announcement::Active(p)) if p.as_str() == broadcast => return,
            Some(_) => {}
            None => panic!("announcements ended before {broadcast}"),
        }
    }
}

/// Subscribes to `broadcast` once announced, fires `ready` on the `hello` group, then collects
/// groups 1..=GROUPS.
pub async fn receive(session: Session, broadcast: String, ready: oneshot::Sender<()>) -> Vec<(u64, Vec<Bytes>)> {
    await_announced(&session, &broadcast).await;
    let params = SubscribeParams { priority: 1, ordered: true, max_latency: 30_000, ..SubscribeParams::default() };
    let mut reader = within("subscribe", session.subscribe(&broadcast, TRACK, params)).await.unwrap();
    let mut hello = within("hello group", reader.next_group()).await.unwrap().expect("track ended");
    assert_eq!(hello.sequence(), 0);
    assert_eq!(within("hello", hello.read_all()).await.unwrap(), vec![Bytes::from_static(HELLO)]);
    let _ = ready.send(());
    let mut got = Vec::new();
    while got.len() < GROUPS as usize {
        let mut group = within("group", reader.next_group()).await.unwrap().expect("track ended early");
        let frames = within("frames", group.read_all()).await.unwrap();
        got.push((group.sequence(), frames));
    }
    got.sort_by_key(|(g, _)| *g);
    session.close(0, "");
    got
}

/// One publisher on `publisher` and one subscriber on each of `subscribers`, all through the
/// relay at `addr`; asserts every subscriber got every frame intact.
pub async fn through_relay(
    addr: SocketAddr,
    fp: Fingerprint,
    scheme: &str,
    version: Version,
    publisher: On,
    subscribers: &[On],
) {
    let broadcast = format!("test/{scheme}/{version}/{publisher:?}");
    let url = url(scheme, addr);
    let (done_tx, done_rx) = oneshot::channel();
    let (ready_tx, ready_rx): (Vec<_>, Vec<_>) = subscribers.iter().map(|_| oneshot::channel()).unzip();
    // Each client connects on the executor it then runs on (a tokio session's tasks live in
    // the runtime of its thread).
    let (b, u) = (broadcast.clone(), url.clone());
    let publishing =
        run_on(
            publisher,
            async move { publish(connect(publisher, &u, fp, version).await, b, ready_rx, done_rx).await },
        );
    let mut subs = Vec::new();
    for (&on, tx) in subscribers.iter().zip(ready_tx) {
        let (b, u) = (broadcast.clone(), url.clone());
        subs.push((on, run_on(on, async move { receive(connect(on, &u, fp, version).await, b, tx).await })));
    }
    for (on, sub) in subs {
        let got = within("subscriber", sub).await;
        check(&got, &format!("{on:?} subscriber, publisher {publisher:?}, {scheme} {version}"));
    }
    let _ = done_tx.send(());
    within("publisher", publishing).await;
}

/// A minimal HTTP server on smol that answers WebSocket upgrades and hands them to `acceptor`
/// (the job `moqt relay`'s hyper server does), offering moq-lite `version` only. Returns its TCP
/// port.
pub async fn websocket_upgrades(acceptor: moqt_driver_smol::transport::WsAcceptor, version: Version) -> u16 {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use moqt_driver_smol::websocket;

    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    smol::spawn(async move {
        while let Ok((mut stream, peer)) = listener.accept().await {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                if stream.read_exact(&mut b).await.is_err() {
                    break;
                }
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let offered = header("sec-websocket-protocol").unwrap_or_default();
            let negotiated = websocket::select([offered.as_str()], &[version]).expect("a subprotocol for the version");
            let accept = websocket::accept_key(&header("sec-websocket-key").unwrap_or_default());
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
                negotiated.subprotocol
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            let url = url::Url::parse(&format!("ws://127.0.0.1:{port}{target}")).unwrap();
            acceptor.accept(Box::new(stream), negotiated, peer, url);
        }
    })
    .detach();
    port
}
