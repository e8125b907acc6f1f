//! `moqt interop server` and `moqt interop client`: gomoqt's interop scenario (docs/peers.md),
//! with its wiring bugs fixed, over raw QUIC or WebTransport.
//!
//! Each side prints one line per step, `step: ok [(detail)]`, `step: FAILED reason` or
//! `step: skipped (reason)`; every wait is bounded by `--timeout`. The scenario:
//!
//! | client                                                 | server                                          |
//! |--------------------------------------------------------|-------------------------------------------------|
//! | `connect`                                              | `session` (publishes `interop/server`)          |
//! | publishes `interop/client` (track `hello`: `HELLO`)    |                                                 |
//! | `discover`: `interop/server` announced under `/`       | `discover-client`: `interop/client` under `/`   |
//! | `subscribe`: reads `HELLO` from `interop/server/hello` | `read-client`: reads `HELLO` back               |
//! | `fetch`: group 0 of `hello` is `HELLO`                 | serves the fetch (`serve-fetch`)                |
//! | `probe`: the server answers with a report              | `probe-client`: the client answers              |
//! | `server/…`: the server's verdicts, from track `result` | writes its verdicts on `result`                 |
//! | unannounces `interop/client` (done)                    | `client-finished`: sees the unannouncement      |
//! | `goaway`: reports the next session URI (lite-04+)      | `goaway`: sends GOAWAY with `--next-uri`        |
//! | `close`: closes with code 0                            | `close`: sees code 0                            |
//!
//! Without GOAWAY (lite-03) the server closes the session with code 0 once it has seen the
//! unannouncement, and the client's `close` step checks that close instead.
//!
//! The client exits non-zero if any step (its own or the server's) failed; the server with
//! `--sessions N` exits after N sessions, non-zero if any of its steps failed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Args, Subcommand};
use moqt_driver_quinn::{Announcement, BroadcastPublisher, BroadcastRequest, Client, Server, Session, TrackPublisher};
use moqt_driver_tokio::tls::Identity;
use moqt_driver_tokio::transport::{ClientConfig, ServerConfig};
use moqt_proto::session::{session_code, stream_code, SubscribeParams};
use moqt_proto::{Path, Version};

use crate::cli::{parse_version, ConnectArgs};

/// The broadcast the server publishes.
pub const SERVER_BROADCAST: &str = "interop/server";
/// The broadcast the client publishes.
pub const CLIENT_BROADCAST: &str = "interop/client";
/// The track carrying `HELLO` (any other name is answered the same way, except `result`).
pub const HELLO_TRACK: &str = "hello";
/// The server's verdicts, one frame per step, in group 0.
pub const RESULT_TRACK: &str = "result";
/// The payload both sides send.
pub const HELLO: &str = "HELLO";
/// The probe target bitrate.
pub const PROBE_BITRATE: u64 = 1_000_000;

#[derive(Debug, Subcommand)]
pub enum InteropCommand {
    /// Accept sessions and run the server side of the scenario on each.
    #[command(after_help = crate::cli::INTEROP_EXAMPLES)]
    Server(ServerArgs),
    /// Run the client side against URL; exits non-zero if any step failed.
    #[command(after_help = crate::cli::INTEROP_EXAMPLES)]
    Client(ClientArgs),
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// UDP address for raw QUIC and WebTransport.
    #[arg(long, default_value = "[::]:9000")]
    pub listen: SocketAddr,
    /// The next session URI sent in GOAWAY.
    #[arg(long, default_value = "moqt://127.0.0.1:1/next")]
    pub next_uri: String,
    /// PEM certificate chain (with --tls-key) [default: a generated certificate].
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Only these versions (repeatable) [default: all].
    #[arg(long = "version", value_parser = parse_version)]
    pub versions: Vec<Version>,
    /// Exit after this many sessions (non-zero if any step failed) [default: serve forever].
    #[arg(long)]
    pub sessions: Option<u64>,
    /// Seconds each step may wait.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Seconds each step may wait.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

/// Step lines and whether any failed.
struct Steps {
    prefix: String,
    failed: bool,
}

impl Steps {
    fn new(prefix: impl Into<String>) -> Steps {
        Steps { prefix: prefix.into(), failed: false }
    }

    fn line(&self, step: &str, outcome: &str) -> String {
        format!("{}{step}: {outcome}", self.prefix)
    }

    /// Prints the step's outcome and returns the line (without the prefix).
    fn report(&mut self, step: &str, result: Result<String>) -> String {
        let outcome = match result {
            Ok(detail) if detail.is_empty() => "ok".to_owned(),
            Ok(detail) => format!("ok ({detail})"),
            Err(e) => {
                self.failed = true;
                format!("FAILED {e:#}")
            }
        };
        println!("{}", self.line(step, &outcome));
        format!("{step}: {outcome}")
    }

    fn skip(&mut self, step: &str, why: &str) -> String {
        let outcome = format!("skipped ({why})");
        println!("{}", self.line(step, &outcome));
        format!("{step}: {outcome}")
    }
}

async fn within<T>(timeout: Duration, what: &str, fut: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(timeout, fut).await.map_err(|_| anyhow::anyhow!("timed out after {timeout:?} {what}"))
}

fn seconds(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|e| anyhow::anyhow!("--timeout: {e}"))
}

fn params() -> SubscribeParams {
    SubscribeParams { priority: 128, ordered: true, max_latency: 10_000, ..SubscribeParams::default() }
}

/// A track whose group 0 is the single frame `HELLO` (late subscribers get it too).
fn hello_track(broadcast: &BroadcastPublisher, name: &str) -> TrackPublisher {
    let track = broadcast.create_track(name);
    let group = track.open_group(0);
    let _ = group.write_frame(Bytes::from_static(HELLO.as_bytes()));
    group.finish();
    track
}

/// Answers requests for a broadcast: any unknown track name gets a `HELLO` track; a fetch of
/// group 0 of a `HELLO` track gets `HELLO` (and sets `fetched`), anything else `NOT_FOUND`.
async fn serve_requests(broadcast: Arc<BroadcastPublisher>, fetched: Arc<AtomicBool>) {
    let mut tracks = Vec::new();
    while let Some(request) = broadcast.next_request().await {
        match request {
            BroadcastRequest::Track(name) => tracks.push(hello_track(&broadcast, &name)),
            BroadcastRequest::Fetch(fetch) if fetch.group() == 0 && fetch.track() != RESULT_TRACK => {
                fetch.write_frame(Bytes::from_static(HELLO.as_bytes()));
                fetch.finish();
                fetched.store(true, Ordering::Relaxed);
            }
            BroadcastRequest::Fetch(fetch) => fetch.reject(stream_code::NOT_FOUND),
            // Answered from the cache.
            BroadcastRequest::FetchServed { track, group } if group == 0 && track != RESULT_TRACK => {
                fetched.store(true, Ordering::Relaxed)
            }
            BroadcastRequest::FetchServed { .. } => {}
        }
    }
}

/// Waits for `path` to be announced on `announced`.
async fn await_announced(announced: &mut moqt_driver_quinn::Announced, path: &str) -> Result<()> {
    let want = Path::new(path);
    loop {
        match announced.next().await? {
            Some(Announcement::Active(p)) if p == want => return Ok(()),
            Some(_) => {}
            None => bail!("announcements ended before {path} appeared"),
        }
    }
}

/// Subscribes to `path`/`track` and returns the frames of the first group.
async fn read_first_group(session: &Session, path: &str, track: &str) -> Result<Vec<String>> {
    let mut reader = session.subscribe(path, track, params()).await.context("subscribe")?;
    let mut group = reader.next_group().await.context("group")?.context("the track ended without a group")?;
    let frames = group.read_all().await.context("frames")?;
    Ok(frames.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect())
}

fn expect_hello(frames: &[String]) -> Result<String> {
    match frames {
        [f] if f == HELLO => Ok(format!("payload: {f}")),
        _ => bail!("expected one frame {HELLO:?}, got {frames:?}"),
    }
}

async fn probe(session: &Session) -> Result<String> {
    let mut probe = session.probe(Some(PROBE_BITRATE)).await?;
    let report = probe.next_report().await?.context("the probe ended without a report")?;
    Ok(format!("bitrate {} bps, rtt {} ms", report.bitrate, report.rtt_ms))
}

fn describe(session: &Session) -> String {
    format!("{} over {:?}", session.version(), session.kind())
}

// ----- server -----

pub async fn server(args: ServerArgs) -> Result<()> {
    let timeout = seconds(args.timeout)?;
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Identity::load(cert, key)?,
        _ => Identity::self_signed(&["localhost", "127.0.0.1", "::1"]).context("cannot generate a certificate")?,
    };
    let fingerprint = identity.fingerprint();
    let mut config = ServerConfig::new(args.listen, identity);
    if !args.versions.is_empty() {
        config.versions = args.versions.clone();
    }
    config.runtime = Some(moqt_driver_tokio::runtime());
    let mut server = Server::bind(config).with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("certificate sha256 {fingerprint}");
    eprintln!("listening on {} (udp: raw QUIC + WebTransport)", server.local_addr());

    let mut sessions = tokio::task::JoinSet::new();
    let mut accepted = 0u64;
    let mut failed = false;
    while args.sessions.is_none_or(|n| accepted < n) {
        tokio::select! {
            session = server.accept() => {
                let Some(session) = session else { break };
                accepted += 1;
                sessions.spawn(server_session(session, accepted, args.next_uri.clone(), timeout));
            }
            Some(done) = sessions.join_next(), if !sessions.is_empty() => failed |= !done.unwrap_or(false),
        }
    }
    while let Some(done) = sessions.join_next().await {
        failed |= !done.unwrap_or(false);
    }
    if failed {
        bail!("some interop steps failed");
    }
    Ok(())
}

/// The server side of the scenario on one session; true if every step passed.
async fn server_session(session: Session, n: u64, next_uri: String, timeout: Duration) -> bool {
    let mut steps = Steps::new(format!("[{n}] "));
    let peer = session.connection().peer_addr();
    steps.report("session", Ok(format!("{} from {peer}", describe(&session))));

    // S1: publish interop/server: `hello` (and any other name) carry HELLO; `result` comes later.
    let broadcast = Arc::new(session.publish(SERVER_BROADCAST));
    let _hello = hello_track(&broadcast, HELLO_TRACK);
    let result = broadcast.create_track(RESULT_TRACK);
    let fetched = Arc::new(AtomicBool::new(false));
    let requests = tokio::spawn(serve_requests(broadcast.clone(), fetched.clone()));

    // S2: discover the client's broadcast under the root.
    let mut verdicts = Vec::new();
    let mut announced = within(timeout, "asking for announcements", session.announced("/")).await;
    let discovered = match &mut announced {
        Ok(Ok(a)) => within(timeout, "waiting for the announcement", await_announced(a, CLIENT_BROADCAST))
            .await
            .and_then(|r| r)
            .map(|()| CLIENT_BROADCAST.to_owned()),
        Ok(Err(e)) => Err(anyhow::anyhow!("announced: {e}")),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    verdicts.push(steps.report("discover-client", discovered));

    // S3: subscribe back and read HELLO.
    let read = within(timeout, "reading the client's track", read_first_group(&session, CLIENT_BROADCAST, HELLO_TRACK))
        .await
        .and_then(|r| r)
        .and_then(|frames| expect_hello(&frames));
    verdicts.push(steps.report("read-client", read));

    // S4: probe the client; it answers with a report.
    let probed = within(timeout, "waiting for a probe report", probe(&session)).await.and_then(|r| r);
    verdicts.push(steps.report("probe-client", probed));

    // Tell the client how it went: one frame per step in group 0 of `result`.
    let group = result.open_group(0);
    for v in &verdicts {
        let _ = group.write_frame(Bytes::from(v.clone()));
    }
    group.finish();

    // S5: the client unannounces interop/client once its own steps are done.
    let finished = match &mut announced {
        Ok(Ok(a)) => within(timeout, "waiting for the client to finish", async {
            let want = Path::new(CLIENT_BROADCAST);
            loop {
                match a.next().await? {
                    Some(Announcement::Ended(p)) if p == want => return Ok(String::new()),
                    Some(_) => {}
                    None => return Ok("announcements closed".to_owned()),
                }
            }
        })
        .await
        .and_then(|r| r),
        _ => Err(anyhow::anyhow!("no announcement stream")),
    };
    steps.report("client-finished", finished);
    let served = if fetched.load(Ordering::Relaxed) {
        Ok("group 0".to_owned())
    } else {
        Err(anyhow::anyhow!("the client fetched nothing"))
    };
    steps.report("serve-fetch", served);

    // S6: GOAWAY with the next session URI (lite-04+).
    if session.version().has_goaway() {
        let sent = within(timeout, "sending GOAWAY", session.goaway(&next_uri))
            .await
            .and_then(|r| r.map_err(anyhow::Error::from))
            .map(|()| format!("next session uri {next_uri}"));
        steps.report("goaway", sent);
    } else {
        steps.skip("goaway", &format!("{} has no GOAWAY", short(session.version())));
        // Without GOAWAY the server ends the session itself (the client cannot close right after
        // unannouncing: a close may overtake the unannouncement).
        session.close(session_code::NO_ERROR, "interop done");
    }

    // S7: the client closes the session (lite-04+), or sees our close (lite-03).
    let closed = match within(timeout, "waiting for the client to close", session.closed()).await {
        Ok(info) if info.code == session_code::NO_ERROR => Ok(format!("code 0 {:?}", info.reason)),
        Ok(info) => Err(anyhow::anyhow!("closed with code {:#x} {:?}", info.code, info.reason)),
        Err(e) => {
            session.close(session_code::GOAWAY_TIMEOUT, "interop: the client did not close");
            Err(e)
        }
    };
    steps.report("close", closed);
    requests.abort();
    !steps.failed
}

/// `lite-03` for `Version::Lite03`.
fn short(v: Version) -> String {
    v.to_string().trim_start_matches("moq-").to_owned()
}

// ----- client -----

pub async fn client(args: ClientArgs) -> Result<()> {
    let timeout = seconds(args.timeout)?;
    let mut steps = Steps::new("");
    let mut config = ClientConfig::new(args.connect.verification()?);
    if let Some(v) = args.connect.version {
        config.versions = vec![v];
    }
    config.runtime = Some(moqt_driver_tokio::runtime());
    config.resolver = Some(Arc::new(moqt_driver_tokio::TokioResolver));
    let url = args.connect.url.clone();
    let client = Client::new(config)?;
    let connected = within(timeout, "connecting", async { client.connect(&url).await.map_err(anyhow::Error::from) })
        .await
        .and_then(|r| r);
    let session = match connected {
        Ok(s) => s,
        Err(e) => {
            steps.report("connect", Err(e.context(format!("cannot connect to {url}"))));
            bail!("some interop steps failed");
        }
    };
    steps.report("connect", Ok(describe(&session)));

    // Publish interop/client for the server to discover and read back.
    let broadcast = Arc::new(session.publish(CLIENT_BROADCAST));
    let hello = hello_track(&broadcast, HELLO_TRACK);
    let requests = tokio::spawn(serve_requests(broadcast.clone(), Arc::new(AtomicBool::new(false))));

    // Discover interop/server under the root.
    let discovered = within(timeout, "waiting for the announcement", async {
        let mut announced = session.announced("/").await?;
        await_announced(&mut announced, SERVER_BROADCAST).await?;
        Ok(SERVER_BROADCAST.to_owned())
    })
    .await
    .and_then(|r| r);
    steps.report("discover", discovered);

    // Subscribe to the server's verdicts now so that none is missed.
    let results = {
        let session = session.clone();
        tokio::spawn(async move { read_first_group(&session, SERVER_BROADCAST, RESULT_TRACK).await })
    };

    // Subscribe and read HELLO.
    let read = within(timeout, "reading the server's track", read_first_group(&session, SERVER_BROADCAST, HELLO_TRACK))
        .await
        .and_then(|r| r)
        .and_then(|frames| expect_hello(&frames));
    steps.report("subscribe", read);

    // Fetch group 0 of the same track.
    let fetched = within(timeout, "fetching group 0", async {
        let mut fetch = session.fetch(SERVER_BROADCAST, HELLO_TRACK, 0).await?;
        let frames = fetch.read_all().await?;
        anyhow::Ok(frames.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>())
    })
    .await
    .and_then(|r| r)
    .and_then(|frames| expect_hello(&frames));
    steps.report("fetch", fetched);

    // Probe the server.
    let probed = within(timeout, "waiting for a probe report", probe(&session)).await.and_then(|r| r);
    steps.report("probe", probed);

    // The server's verdicts: it discovered us, read our HELLO, and its probe was answered.
    match within(timeout, "waiting for the server's results", results).await {
        Ok(Ok(Ok(lines))) => {
            for step in ["discover-client", "read-client", "probe-client"] {
                let outcome = lines.iter().find_map(|l| l.strip_prefix(step).and_then(|r| r.strip_prefix(": ")));
                let result = match outcome {
                    Some("ok") => Ok(String::new()),
                    Some(o) if o.starts_with("ok (") => {
                        Ok(o.trim_start_matches("ok (").trim_end_matches(')').to_owned())
                    }
                    Some(o) => Err(anyhow::anyhow!("{}", o.trim_start_matches("FAILED "))),
                    None => Err(anyhow::anyhow!("not reported (got {lines:?})")),
                };
                steps.report(&format!("server/{step}"), result);
            }
        }
        Ok(Ok(Err(e))) => {
            steps.report("server/results", Err(e));
        }
        Ok(Err(e)) => {
            steps.report("server/results", Err(e.into()));
        }
        Err(e) => {
            steps.report("server/results", Err(e));
        }
    }

    // Done: unannounce interop/client; the server answers with GOAWAY (lite-04+).
    requests.abort();
    let _ = requests.await;
    drop(hello);
    drop(broadcast);
    if session.version().has_goaway() {
        let goaway = within(timeout, "waiting for GOAWAY", async {
            tokio::select! {
                uri = session.goaway_received() => Ok(uri),
                info = session.closed() => Err(anyhow::anyhow!("session closed first: code {:#x} {:?}", info.code, info.reason)),
            }
        })
        .await
        .and_then(|r| r)
        .map(|uri| if uri.is_empty() { "no next session uri".to_owned() } else { format!("next session uri {uri}") });
        steps.report("goaway", goaway);
    } else {
        steps.skip("goaway", &format!("{} has no GOAWAY", short(session.version())));
    }

    // Close cleanly (without GOAWAY, the server closes once it has seen the unannouncement).
    if session.version().has_goaway() {
        session.close(session_code::NO_ERROR, "interop done");
    }
    let closed = within(timeout, "closing", session.closed()).await.and_then(|info| {
        if info.code == session_code::NO_ERROR {
            Ok(String::new())
        } else {
            Err(anyhow::anyhow!("closed with code {:#x} {:?}", info.code, info.reason))
        }
    });
    steps.report("close", closed);
    // Exit only once the CONNECTION_CLOSE is out, so the server learns at once.
    let _ = tokio::time::timeout(timeout, client.wait_idle()).await;

    if steps.failed {
        bail!("some interop steps failed");
    }
    Ok(())
}
