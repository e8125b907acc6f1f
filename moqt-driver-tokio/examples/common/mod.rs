//! Helpers the examples share: a generated certificate and a server config for it, the ready
//! lines a server prints, the accept loop, the client's certificate and version options and its
//! connect/close, and the frame generator and announcement watcher of `broadcast` and `echo`.
//!
//! Each example includes this file as its `pub mod common` (public so that `tests/examples.rs`,
//! which includes the example files, reaches it); no example uses all of it.
//!
//! Servers generate a certificate at start and print its SHA-256 fingerprint; clients pin it
//! with `--fingerprint HEX` (or skip verification with `--insecure`).

// Each example uses a part.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use moqt_proto::Version;
use tokio::task::JoinSet;

use moqt_driver_tokio::tls::{Fingerprint, Identity, Verification};
use moqt_driver_tokio::transport::{ClientConfig, ServerConfig};
use moqt_driver_tokio::{Announcement, Client, Server, Session, SubscribeParams, TrackPublisher};

/// The names the generated certificates are valid for.
pub const CERT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// `127.0.0.1:port`, the examples' default listen address.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// How a server bound by [`bind`] accepts sessions.
pub const BOTH: &str = "raw QUIC + WebTransport";

/// A freshly generated certificate and a server config for it (both transports, every version,
/// tokio runtime).
pub fn server_config(listen: SocketAddr) -> Result<(ServerConfig, Fingerprint)> {
    let identity = Identity::self_signed(&CERT_NAMES).context("cannot generate a certificate")?;
    let fingerprint = identity.fingerprint();
    let mut config = ServerConfig::new(listen, identity);
    config.runtime = Some(moqt_driver_tokio::runtime());
    Ok((config, fingerprint))
}

/// Binds a moq-lite server on `listen` with a generated certificate.
pub fn bind(listen: SocketAddr) -> Result<(Server, Fingerprint)> {
    let (config, fingerprint) = server_config(listen)?;
    let server = Server::bind(config).with_context(|| format!("cannot listen on {listen}"))?;
    Ok((server, fingerprint))
}

/// Prints what a server's user needs on stderr: the address and `transports`, the fingerprint,
/// and the client command line that connects to it.
pub fn print_ready(example: &str, addr: SocketAddr, transports: &str, fingerprint: &Fingerprint, client_args: &str) {
    eprintln!("listening on {addr} ({transports})");
    eprintln!("certificate sha256 {fingerprint}");
    eprintln!(
        "connect with: cargo run -p moqt-driver-tokio --example {example} -- {client_args} --fingerprint {fingerprint}"
    );
}

/// Accepts sessions until `server` stops, running `serve` on each in a task of its own.
pub async fn serve_each<F>(mut server: Server, mut serve: impl FnMut(Session) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut sessions = JoinSet::new();
    while let Some(session) = server.accept().await {
        eprintln!("session: {} over {:?}, path {:?}", session.version(), session.kind(), session.path());
        sessions.spawn(serve(session));
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
    }
}

/// The client's certificate and version options, shared by every example.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// Accept only a server certificate with this SHA-256 fingerprint (hex, as the server prints).
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// Do not verify the server certificate (development only).
    #[arg(long, conflicts_with = "fingerprint")]
    pub insecure: bool,
    /// Offer only this version (lite-03, lite-04, lite-05, lite-06) [default: all, lite-06 first].
    #[arg(long, value_parser = parse_version)]
    pub version: Option<Version>,
}

fn parse_version(s: &str) -> Result<Version, String> {
    s.parse::<Version>().map_err(|e| e.to_string())
}

impl ConnectArgs {
    /// Pins `fingerprint` and offers only `version` (what `--fingerprint HEX --version V` gives).
    pub fn pinned(fingerprint: &Fingerprint, version: Version) -> ConnectArgs {
        ConnectArgs { fingerprint: Some(fingerprint.to_string()), insecure: false, version: Some(version) }
    }

    /// How the server certificate is checked: the pinned fingerprint, none, or the system roots.
    pub fn verification(&self) -> Result<Verification> {
        Ok(match (&self.fingerprint, self.insecure) {
            (Some(fp), _) => {
                Verification::pinned(fp.parse::<Fingerprint>().map_err(|e| anyhow::anyhow!("--fingerprint: {e}"))?)
            }
            (None, true) => Verification::InsecureNoVerification,
            (None, false) => Verification::SystemRoots,
        })
    }

    /// Connects to `url` (`moqt://host:port/path` raw QUIC, `https://host:port/path` WebTransport);
    /// keep the client to [`close`] cleanly.
    pub async fn connect(&self, url: &str) -> Result<(Client, Session)> {
        let mut config = ClientConfig::new(self.verification()?);
        if let Some(v) = self.version {
            config = config.with_version(v);
        }
        config.runtime = Some(moqt_driver_tokio::runtime());
        config.resolver = Some(Arc::new(moqt_driver_tokio::TokioResolver));
        let hint = if self.fingerprint.is_none() && !self.insecure {
            " (the example servers use a generated certificate: pass --fingerprint HEX as printed by the server, or --insecure)"
        } else {
            ""
        };
        let client = Client::new(config)?;
        let session = client.connect(url).await.with_context(|| format!("cannot connect to {url}{hint}"))?;
        Ok((client, session))
    }
}

/// The subscription settings the examples use: oldest group first, up to 10 s behind.
pub fn subscribe_params() -> SubscribeParams {
    SubscribeParams { priority: 128, ordered: true, max_latency: 10_000, ..SubscribeParams::default() }
}

/// The payload of the `n`th generated frame.
pub fn frame_payload(n: u64) -> String {
    format!("FRAME {n}")
}

/// Every `interval`, opens group `n` (1, 2, 3, …) on `track` with the single frame `"FRAME n"`;
/// stops after `count` groups if given (runs until the session ends otherwise).
pub async fn generate(track: TrackPublisher, interval: Duration, count: Option<u64>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0;
    while count.is_none_or(|c| n < c) {
        tick.tick().await;
        n += 1;
        let group = track.open_group(n);
        // A write fails only when no subscriber holds the group any more; the next tick retries.
        let _ = group.write_frame(Bytes::from(frame_payload(n)));
        group.finish();
    }
}

/// One frame a client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The broadcast path.
    pub broadcast: String,
    /// The group sequence.
    pub group: u64,
    /// The payload (as text).
    pub payload: String,
}

/// Watches announcements under the root, subscribes to `track` of every broadcast announced, and
/// hands each frame to `on_frame`; returns after `count` frames if given, else when the session
/// ends.
pub async fn watch(
    session: &Session,
    track: &str,
    count: Option<u64>,
    mut on_frame: impl FnMut(&Frame),
) -> Result<u64> {
    let mut announced = session.announced("/").await.context("cannot ask for announcements")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Frame>();
    // Readers live in this set; returning aborts them (and so unsubscribes).
    let mut readers = JoinSet::new();
    let mut received = 0;
    if count == Some(0) {
        return Ok(0);
    }
    let mut announcements_open = true;
    loop {
        tokio::select! {
            a = announced.next(), if announcements_open => match a {
                Ok(Some(Announcement::Active(path))) => {
                    eprintln!("announced: {path}");
                    let (session, track, tx) = (session.clone(), track.to_owned(), tx.clone());
                    readers.spawn(async move {
                        let broadcast = path.as_str().to_owned();
                        let mut reader = match session.subscribe(&broadcast, &track, subscribe_params()).await {
                            Ok(r) => r,
                            Err(e) => return eprintln!("cannot subscribe to {broadcast}/{track}: {e}"),
                        };
                        while let Ok(Some(mut group)) = reader.next_group().await {
                            while let Ok(Some(payload)) = group.next_frame().await {
                                let payload = String::from_utf8_lossy(&payload).into_owned();
                                let frame = Frame { broadcast: broadcast.clone(), group: group.sequence(), payload };
                                if tx.send(frame).is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
                Ok(Some(Announcement::Ended(path))) => eprintln!("unannounced: {path}"),
                Ok(None) | Err(_) => announcements_open = false,
            },
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                on_frame(&frame);
                received += 1;
                if count.is_some_and(|c| received >= c) {
                    break;
                }
            }
            info = session.closed() => anyhow::bail!("session closed: code {:#x} {}", info.code, info.reason),
        }
    }
    Ok(received)
}

/// Connects with `connect` to `url`, reports the session on stderr, runs `run` on it, then
/// closes it cleanly (whether `run` succeeded or not).
pub async fn run_client<T, F>(connect: &ConnectArgs, url: &str, run: impl FnOnce(Session) -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let (client, session) = connect.connect(url).await?;
    eprintln!("connected: {} over {:?}", session.version(), session.kind());
    let result = run(session.clone()).await;
    close(&client, &session).await;
    result
}

/// Closes `session` with code 0 and waits (up to two seconds) until the close has gone out on the
/// wire, so the peer learns at once rather than at its idle timeout.
pub async fn close(client: &Client, session: &Session) {
    session.close(0, "done");
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        session.closed().await;
        client.wait_idle().await;
    })
    .await;
}
