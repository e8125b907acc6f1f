//! smol and tokio clients and relays together, over raw QUIC and WebTransport, every version:
//!
//! * a smol publisher through a tokio relay (the shared relay driver on its own thread with its
//!   own tokio runtime) to a smol subscriber and a tokio subscriber;
//! * the smol relay example serving tokio clients (and a smol one);
//! * the real `moqt relay` and `moqt sub` binaries with smol clients (the binary comes from
//!   `cargo test --workspace`, or `cargo build --bin moqt` before `-p moqt-driver-smol`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::{On, FRAMES, GROUPS, HELLO};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use moqt_driver_smol::relay::{Relay, RelayConfig};
use moqt_driver_smol::{Fingerprint, Identity};
use moqt_proto::session::Perspective;
use moqt_proto::{Dialect, Version};

/// The shared relay driver on a tokio runtime of its own, on its own thread; stops on drop.
struct TokioRelay {
    addr: SocketAddr,
    fp: Fingerprint,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokioRelay {
    fn start() -> TokioRelay {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(async move {
                let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
                let fp = identity.fingerprint();
                let mut config = moqt_driver_tokio::ServerConfig::new("127.0.0.1:0".parse().unwrap(), identity);
                config.runtime = Some(moqt_driver_tokio::runtime());
                let mut server = moqt_driver_tokio::Listener::bind(config).unwrap();
                let relay = Relay::start(RelayConfig::default(), moqt_driver_tokio::runtime());
                ready_tx.send((server.local_addr(), fp)).unwrap();
                let accept = async {
                    while let Some(a) = server.accept().await {
                        let relay = relay.clone();
                        tokio::spawn(async move {
                            relay.serve(a.connection, a.version, Perspective::Server, Dialect::Draft).await;
                        });
                    }
                };
                futures::future::select(Box::pin(accept), stopped).await;
            });
        });
        let (addr, fp) = ready_rx.recv().expect("tokio relay failed to start");
        TokioRelay { addr, fp, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for TokioRelay {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn smol_through_tokio_relay(scheme: &str) {
    let relay = TokioRelay::start();
    smol::block_on(async {
        for v in Version::ALL {
            common::through_relay(relay.addr, relay.fp, scheme, v, On::Smol, &[On::Smol, On::Tokio]).await;
        }
    });
}

#[test]
fn smol_publisher_through_tokio_relay_raw_quic_every_version() {
    smol_through_tokio_relay("moqt");
}

#[test]
fn smol_publisher_through_tokio_relay_webtransport_every_version() {
    smol_through_tokio_relay("https");
}

/// The relay example (on smol's global executor) serves tokio publishers and subscribers.
#[test]
fn smol_relay_example_serves_tokio_clients() {
    smol::block_on(async {
        let (addr, fp) = common::start_relay_example().await;
        for scheme in ["moqt", "https"] {
            for v in Version::ALL {
                common::through_relay(addr, fp, scheme, v, On::Tokio, &[On::Tokio, On::Smol]).await;
            }
        }
    });
}

// ---- the real binaries ----

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/<profile>/moqt`, next to this test's `deps/` directory (or `$MOQT_BIN`).
fn moqt_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("MOQT_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("moqt");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`, or `cargo build --bin moqt` first (or set MOQT_BIN)",
        bin.display()
    );
    bin
}

/// Each line of `reader` into a channel, on a thread.
fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.unbounded_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `moqt ARGS`; returns it with the lines of its stdout (or, if not `stdout`, its stderr).
fn moqt(args: &[&str], stdout: bool) -> (Proc, mpsc::UnboundedReceiver<String>) {
    let piped = |yes: bool| if yes { Stdio::piped() } else { Stdio::null() };
    let mut child = Command::new(moqt_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(piped(stdout))
        .stderr(piped(!stdout))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run moqt {args:?}: {e}"));
    let out = match stdout {
        true => lines(child.stdout.take().unwrap()),
        false => lines(child.stderr.take().unwrap()),
    };
    (Proc(child), out)
}

/// `moqt relay` on loopback; returns it with its address and certificate fingerprint, read from
/// its readiness lines on stderr.
async fn moqt_relay() -> (Proc, SocketAddr, Fingerprint, mpsc::UnboundedReceiver<String>) {
    let (proc, mut stderr) = moqt(&["relay", "--listen", "127.0.0.1:0"], false);
    let mut fp = None;
    loop {
        let line = common::within("moqt relay ready", stderr.next()).await.expect("moqt relay exited");
        if let Some(hex) = line.strip_prefix("certificate sha256 ") {
            fp = Some(hex.trim().parse::<Fingerprint>().unwrap());
        } else if let Some(rest) = line.strip_prefix("listening on ") {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return (proc, addr, fp.expect("fingerprint before address"), stderr);
        }
    }
}

/// `moqt sub` as a subscriber: fires `ready` on the `hello` line, then returns the frame lines.
async fn moqt_sub(
    url: String,
    fp: Fingerprint,
    version: Version,
    broadcast: String,
    ready: oneshot::Sender<()>,
) -> Vec<String> {
    let count = 1 + GROUPS * FRAMES;
    let (fp, count, version) = (fp.to_string(), count.to_string(), version.to_string());
    let args = ["sub", &url, &broadcast, "--track", common::TRACK, "--tls-fingerprint", &fp, "--count", &count];
    let (_proc, mut stdout) = moqt(&[&args[..], &["--version", &version]].concat(), true);
    let first = common::within("moqt sub hello", stdout.next()).await.expect("moqt sub exited");
    assert_eq!(first.as_bytes(), HELLO);
    let _ = ready.send(());
    let mut got = Vec::new();
    while let Some(line) = common::within("moqt sub frame", stdout.next()).await {
        got.push(line);
    }
    got
}

/// A smol publisher through `moqt relay` to a smol subscriber and to `moqt sub`.
///
/// `cargo test --workspace` builds the `moqt` binary (the tokio crate's integration tests need
/// it) before any test runs; with `-p moqt-driver-smol` alone, build it first.
#[test]
fn smol_clients_with_moqt_binaries() {
    smol::block_on(async {
        let (_relay, addr, fp, _stderr) = moqt_relay().await;
        for scheme in ["moqt", "https"] {
            for v in Version::ALL {
                let broadcast = format!("bin/{scheme}/{v}");
                let url = common::url(scheme, addr);
                let (done_tx, done_rx) = oneshot::channel();
                let (smol_ready, smol_ready_rx) = oneshot::channel();
                let (bin_ready, bin_ready_rx) = oneshot::channel();
                let publisher = common::connect(On::Smol, &url, fp, v).await;
                let publishing = smol::spawn(common::publish(
                    publisher,
                    broadcast.clone(),
                    vec![smol_ready_rx, bin_ready_rx],
                    done_rx,
                ));
                // The smol subscriber sees the announcement before `moqt sub` starts, so the
                // relay can route the binary's subscription at once.
                let sub = common::connect(On::Smol, &url, fp, v).await;
                common::await_announced(&sub, &broadcast).await;
                let smol_sub = smol::spawn(common::receive(sub, broadcast.clone(), smol_ready));
                let bin_sub = smol::spawn(moqt_sub(url.clone(), fp, v, broadcast.clone(), bin_ready));
                common::check(&common::within("smol subscriber", smol_sub).await, &format!("smol, {scheme} {v}"));
                // `moqt sub` prints groups as they arrive (possibly interleaved): regroup by the
                // `gGfF:` prefix, keeping the order within each group.
                let mut groups = std::collections::BTreeMap::<u64, Vec<bytes::Bytes>>::new();
                for line in common::within("moqt sub", bin_sub).await {
                    let g = line.strip_prefix('g').and_then(|r| r.split('f').next()).and_then(|g| g.parse().ok());
                    let g = g.unwrap_or_else(|| panic!("unexpected line {:?}", &line[..line.len().min(20)]));
                    groups.entry(g).or_default().push(bytes::Bytes::from(line));
                }
                common::check(&groups.into_iter().collect::<Vec<_>>(), &format!("moqt sub, {scheme} {v}"));
                let _ = done_tx.send(());
                common::within("publisher", publishing).await;
            }
        }
    });
}
