//! Sessions that survive, on smol (no tokio runtime in this binary): a publisher and a subscriber
//! with `SessionOptions::reconnect` keep their broadcast and subscription across a relay restart
//! (the subscription resumes from the next group, no group twice) and across a rolling restart
//! (GOAWAY with the next relay's URI: make-before-break, no group lost or twice), over raw QUIC
//! and WebTransport. Readiness comes from connection-state events and received groups; the only
//! timer is the publisher's pace.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::within;
use moqt_driver_smol::relay::{Relay, RelayConfig};
use moqt_driver_smol::session::{ConnectionState, ReconnectPolicy};
use moqt_driver_smol::{Client, Error, GroupReader, Identity, Listener, Session, SessionOptions, Verification};
use moqt_driver_smol::{Fingerprint, SubscribeParams, TrackPublisher};
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::{session_code, Perspective};
use moqt_proto::{Dialect, Version};

/// The certificate every relay of a test presents (clients pin one fingerprint).
struct Cert {
    dir: PathBuf,
    fp: Fingerprint,
}

impl Cert {
    fn new(name: &str) -> Cert {
        let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let dir = std::env::temp_dir().join(format!("moqt-smol-reconnect-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), identity.chain_pem()).unwrap();
        std::fs::write(dir.join("key.pem"), identity.key_pem()).unwrap();
        Cert { fp: identity.fingerprint(), dir }
    }

    fn identity(&self) -> Identity {
        Identity::load(self.dir.join("cert.pem"), self.dir.join("key.pem")).unwrap()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_relay(hop_id: u64) -> Relay {
    let config = RelayConfig { node: NodeConfig { hop_id, ..NodeConfig::default() }, ..RelayConfig::default() };
    Relay::start(config, moqt_driver_smol::runtime())
}

/// A relay on a port of its own; [`Site::restart`] replaces the relay (every session and all
/// state lost) while the port stays.
struct Site {
    addr: SocketAddr,
    current: Arc<Mutex<Relay>>,
}

impl Site {
    fn start(cert: &Cert, hop_id: u64) -> Site {
        let config = moqt_driver_smol::server_config("127.0.0.1:0".parse().unwrap(), cert.identity());
        let mut listener = Listener::bind(config).unwrap();
        let addr = listener.local_addr();
        let current = Arc::new(Mutex::new(new_relay(hop_id)));
        let serving = current.clone();
        smol::spawn(async move {
            while let Some(accepted) = listener.accept().await {
                let relay = serving.lock().unwrap().clone();
                smol::spawn(async move {
                    relay.serve(accepted.connection, accepted.version, Perspective::Server, Dialect::Draft).await;
                })
                .detach();
            }
        })
        .detach();
        Site { addr, current }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/", self.addr)
    }

    fn relay(&self) -> Relay {
        self.current.lock().unwrap().clone()
    }

    /// A crash and a restart: a fresh relay serves new connections, the old one drops its
    /// sessions with an error.
    fn restart(&self, hop_id: u64) {
        let old = std::mem::replace(&mut *self.current.lock().unwrap(), new_relay(hop_id));
        old.close_all(session_code::INTERNAL, "relay restarting");
    }
}

/// A client that reconnects at once (a little jitter, short backoff). It keeps every unread
/// group (the test reads groups only between its other steps).
async fn connect(url: &str, fp: Fingerprint, version: Version) -> Session {
    let config = moqt_driver_smol::client_config(Verification::pinned(fp)).with_version(version);
    let policy = ReconnectPolicy { initial_backoff: Duration::from_millis(20), ..ReconnectPolicy::default() };
    let options = SessionOptions { reconnect: policy, max_pending_groups: usize::MAX, ..Default::default() };
    let client = Client::new(config).unwrap().with_options(options);
    within("connect", client.connect(url)).await.unwrap()
}

/// Publishes one frame per group (the frame is the group number) every 10 ms until stopped.
async fn pace(track: TrackPublisher, stop: Arc<AtomicBool>) {
    let mut g = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let group = track.open_group(g);
        group.write_frame(Bytes::copy_from_slice(&g.to_be_bytes())).unwrap();
        group.finish();
        g += 1;
        smol::Timer::after(Duration::from_millis(10)).await;
    }
}

/// What the subscriber sees next: a connection change or a group.
enum Seen {
    State(ConnectionState),
    Group(u64),
}

/// The subscriber's view: groups (with their one frame checked) and connection states, in the
/// order they happen.
struct Watch {
    session: Session,
    reader: moqt_driver_smol::TrackReader,
    states_open: bool,
}

impl Watch {
    async fn next(&mut self) -> Seen {
        loop {
            let states = async {
                if self.states_open {
                    Ok(self.session.next_state().await)
                } else {
                    std::future::pending().await
                }
            };
            let group = async { Err::<Option<ConnectionState>, _>(self.reader.next_group().await) };
            match within("a state or a group", smol::future::or(states, group)).await {
                Ok(Some(state)) => return Seen::State(state),
                Ok(None) => self.states_open = false,
                Err(group) => return Seen::Group(read_group(group).await),
            }
        }
    }
}

async fn read_group(group: Result<Option<GroupReader>, Error>) -> u64 {
    let mut group = group.expect("the subscription survives").expect("the track goes on");
    let frames = within("frames", group.read_all()).await.unwrap();
    let want = vec![Bytes::copy_from_slice(&group.sequence().to_be_bytes())];
    assert_eq!(frames, want, "group {}", group.sequence());
    group.sequence()
}

/// The next state of a session other than the subscriber's.
async fn next_state(session: &Session) -> ConnectionState {
    within("a connection state", session.next_state()).await.expect("session over")
}

/// A publisher of broadcast `name` and its subscriber through `url`, each reconnecting; returns
/// them and the subscriber's view once groups flow.
async fn pub_and_sub(url: &str, name: &str, fp: Fingerprint, version: Version) -> (Session, Arc<AtomicBool>, Watch) {
    let publisher = connect(url, fp, version).await;
    assert!(matches!(next_state(&publisher).await, ConnectionState::Connected { .. }));
    let subscriber = connect(url, fp, version).await;
    let broadcast = publisher.publish(name);
    let track = broadcast.create_track("t");
    common::await_announced(&subscriber, name).await;
    let params = SubscribeParams { max_latency: 30_000, ..SubscribeParams::default() };
    let reader = within("subscribe", subscriber.subscribe(name, "t", params)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let pacing = stop.clone();
    smol::spawn(async move {
        let _broadcast = broadcast;
        pace(track, pacing).await;
    })
    .detach();
    let mut watch = Watch { session: subscriber, reader, states_open: true };
    assert!(matches!(watch.next().await, Seen::State(ConnectionState::Connected { .. })));
    (publisher, stop, watch)
}

#[test]
fn a_relay_restart_keeps_the_broadcast_and_the_subscription() {
    smol::block_on(async {
        let cert = Cert::new("restart");
        let site = Site::start(&cert, 0x11);
        for (scheme, version) in [("moqt", Version::Lite06), ("https", Version::Lite05), ("moqt", Version::Lite03)] {
            let url = site.url(scheme);
            let (publisher, stop, mut watch) =
                pub_and_sub(&url, &format!("restart/{scheme}/{version}"), cert.fp, version).await;
            let mut before = BTreeSet::new();
            while before.len() < 3 {
                match watch.next().await {
                    Seen::Group(g) => assert!(before.insert(g), "{scheme} {version}: group {g} twice"),
                    Seen::State(s) => panic!("{scheme} {version}: unexpected {s:?}"),
                }
            }
            site.restart(0x11);
            // Both learn of the loss and connect again; the subscription resumes after it.
            assert!(matches!(next_state(&publisher).await, ConnectionState::Lost { .. }));
            assert!(matches!(next_state(&publisher).await, ConnectionState::Connected { .. }));
            let (mut lost, mut connected, mut after) = (false, false, BTreeSet::new());
            while after.len() < 5 {
                match watch.next().await {
                    Seen::State(ConnectionState::Lost { code, .. }) => {
                        assert_eq!(code, session_code::INTERNAL, "{scheme} {version}");
                        lost = true;
                    }
                    Seen::State(ConnectionState::Connected { url: dialled, version: v }) => {
                        assert!(lost, "{scheme} {version}: connected again after the loss");
                        assert_eq!((dialled.as_str(), v), (url.as_str(), version));
                        connected = true;
                    }
                    Seen::State(s) => panic!("{scheme} {version}: unexpected {s:?}"),
                    Seen::Group(g) if connected => {
                        assert!(!before.contains(&g) && after.insert(g), "{scheme} {version}: group {g} twice");
                    }
                    // Groups already on their way before the loss was noticed.
                    Seen::Group(g) => assert!(before.insert(g), "{scheme} {version}: group {g} twice"),
                }
            }
            let (last, first) = (*before.last().unwrap(), *after.first().unwrap());
            assert!(first > last, "{scheme} {version}: resumed from a later group ({last} then {first})");
            stop.store(true, Ordering::Relaxed);
            publisher.close(0, "done");
            watch.session.close(0, "done");
        }
    });
}

#[test]
fn a_goaway_moves_publisher_and_subscriber_without_losing_a_group() {
    smol::block_on(async {
        let cert = Cert::new("goaway");
        for (scheme, version) in [("moqt", Version::Lite06), ("https", Version::Lite05), ("moqt", Version::Lite04)] {
            let (a, b) = (Site::start(&cert, 0x21), Site::start(&cert, 0x22));
            let (url_a, url_b) = (a.url(scheme), b.url(scheme));
            let (publisher, stop, mut watch) =
                pub_and_sub(&url_a, &format!("goaway/{scheme}/{version}"), cert.fp, version).await;
            let mut groups = Vec::new();
            while groups.len() < 3 {
                match watch.next().await {
                    Seen::Group(g) => groups.push(g),
                    Seen::State(s) => panic!("{scheme} {version}: unexpected {s:?}"),
                }
            }
            a.relay().goaway(&url_b);
            let moved = |s: ConnectionState| match s {
                ConnectionState::Moving { uri } => assert_eq!(uri, url_b, "{scheme} {version}"),
                ConnectionState::Connected { url, .. } => assert_eq!(url, url_b, "{scheme} {version}"),
                s => panic!("{scheme} {version}: unexpected {s:?}"),
            };
            moved(next_state(&publisher).await);
            moved(next_state(&publisher).await);
            let mut states = 0;
            let mut after = 0;
            while states < 2 || after < 10 {
                match watch.next().await {
                    Seen::State(s) => {
                        moved(s);
                        states += 1;
                    }
                    Seen::Group(g) => {
                        groups.push(g);
                        after += usize::from(states == 2);
                    }
                }
            }
            // Both leave the old relay once nothing flows through it any more.
            a.relay().drained(&moqt_driver_smol::runtime(), Duration::from_secs(15)).await;
            assert_eq!(a.relay().sessions().await, 0, "{scheme} {version}: the old relay is empty");
            for _ in 0..5 {
                match watch.next().await {
                    Seen::Group(g) => groups.push(g),
                    Seen::State(s) => panic!("{scheme} {version}: unexpected {s:?}"),
                }
            }
            let mut sorted = groups.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), groups.len(), "{scheme} {version}: no group twice: {groups:?}");
            let want: Vec<u64> = (sorted[0]..=*sorted.last().unwrap()).collect();
            assert_eq!(sorted, want, "{scheme} {version}: no group lost");
            stop.store(true, Ordering::Relaxed);
            publisher.close(0, "done");
            watch.session.close(0, "done");
        }
    });
}
