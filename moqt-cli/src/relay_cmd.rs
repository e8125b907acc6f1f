//! `moqt relay`: the main job. One UDP port for raw QUIC and WebTransport, HTTP and moq-lite over
//! WebSocket on the same TCP port number (https/wss too with `--http-tls`), optional links to peer relays, every limit from the flags / `[relay.limits]`,
//! and a graceful GOAWAY drain on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use moqt_driver_quinn::metrics::{self, Exposition};
use moqt_driver_quinn::relay::{ConnectInfo, RelayConfig, RelayPool};
use moqt_driver_quinn::websocket::WsConfig;
use moqt_driver_tokio::tls::{Identity, Verification};
use moqt_driver_tokio::transport::{ClientConfig, Connector, Listener, ServerConfig};
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::{session_code, Config, Perspective};
use moqt_proto::{Dialect, Version};

use crate::cli::RelayArgs;
use crate::cluster::{self, Cluster, PeerSpec};
use crate::hints;
use crate::http::routes::{MetricsFn, UpgradeHandler};
use crate::http::websocket::WsHandler;
use crate::http::{self, HttpStats, Site};

const DEFAULT_LISTEN: &str = "[::]:4443";

/// Relay workers: `--workers`, else one.
pub fn workers(args: &RelayArgs) -> usize {
    if clustered(args) {
        return 1;
    }
    // One worker unless asked: a broadcast that crosses workers pays for a loopback link between
    // them, which a few cores do not win back (measure with `moqt bench` before raising it).
    args.workers.unwrap_or(1).max(1)
}

/// Runtime threads for the relay: one per worker, and at least one per core (quinn's
/// per-connection work runs on them whatever the number of nodes).
pub fn threads(args: &RelayArgs) -> usize {
    workers(args).max(cores())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether the relay has cluster peers. A cluster relay runs one node: its peer links, their
/// routes, prices and failover live in one node (several workers would each see the peers only
/// through the others' links, and a move off a draining peer would have to cross them).
fn clustered(args: &RelayArgs) -> bool {
    !args.peers.is_empty() || args.cluster.peer_list.is_some()
}

pub async fn run(args: RelayArgs) -> Result<()> {
    if clustered(&args) && args.workers.is_some_and(|w| w > 1) {
        bail!("--workers above 1 is not supported with cluster peers (--peer, --peer-list) yet: a cluster relay runs one worker");
    }
    let listen: SocketAddr = args.listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Identity::load(cert, key)?,
        (None, None) => {
            let names =
                if args.tls_generate.is_empty() { vec!["localhost".to_string()] } else { args.tls_generate.clone() };
            let mut all = names.clone();
            for extra in ["127.0.0.1", "::1"] {
                if !all.iter().any(|n| n == extra) {
                    all.push(extra.to_string());
                }
            }
            Identity::self_signed(&all).context("cannot generate a certificate")?
        }
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let fingerprint = identity.fingerprint().to_string();
    let runtime = moqt_driver_tokio::runtime();

    let limits = args.limits.resolve()?;
    let mut config = ServerConfig::new(listen, identity);
    if !args.versions.is_empty() {
        config.versions = args.versions.clone();
    }
    config.runtime = Some(runtime.clone());
    config.transport = Some(Arc::new(limits.quic.server_transport_config()));
    config.stream_credit = Some(limits.quic.stream_credit());
    config.admission = limits.admission;
    config.handshake_timeout = limits.handshake_timeout;
    config.websocket = WsConfig::from_quic(&limits.quic);
    let http_tls = if args.http_tls {
        Some(Arc::new(config.identity.server_config(&[b"http/1.1"]).context("TLS for https")?))
    } else {
        None
    };
    let (mut server, http_listener) = bind_both(config.clone()).await?;
    let addr = server.local_addr();
    let listener_stats = server.stats();

    let hop_id = args.hop_id.filter(|h| *h != 0).unwrap_or_else(random_hop_id);
    let (gate, auth_metrics, auth_line) = args.auth.gate()?;
    let mut session = Config::new(Version::Lite06, Perspective::Server);
    session.session_limits = limits.session;
    session.limits = limits.coding;
    let workers = workers(&args);
    let relay = RelayPool::start(
        RelayConfig {
            node: NodeConfig {
                hop_id,
                max_hops: args.cluster.max_hops()?.unwrap_or(limits.node.max_hops),
                ..limits.node.clone()
            },
            session,
            max_queued_datagrams: limits.max_queued_datagrams,
            gate,
        },
        runtime.clone(),
        workers,
        format!("{:016x}", random_hop_id()),
    );

    let verification = if args.peer_disable_verify {
        Verification::InsecureNoVerification
    } else if let Some(fp) = &args.peer_fingerprint {
        Verification::pinned(fp.parse().map_err(|e| anyhow::anyhow!("--peer-fingerprint: {e}"))?)
    } else {
        Verification::SystemRoots
    };
    let mut cc = ClientConfig::new(verification);
    cc.runtime = Some(runtime.clone());
    cc.transport = Some(Arc::new(limits.quic.transport_config()));
    cc.resolver = Some(Arc::new(moqt_driver_tokio::TokioResolver));
    let cluster = Cluster::new(relay.clone(), Connector::new(cc)?);

    let files = web_files(args.web_root.as_deref())?;
    let page_built = files.iter().any(|(p, _, body)| p == "/index.html" && body != FALLBACK.as_bytes());
    let http_stats = Arc::new(HttpStats::default());
    let metrics: MetricsFn = {
        let (relay, http_stats, cluster) = (relay.clone(), http_stats.clone(), cluster.clone());
        Box::new(move || {
            let (relay, listener_stats, http_stats) = (relay.clone(), listener_stats.clone(), http_stats.clone());
            let (auth_metrics, cluster) = (auth_metrics.clone(), cluster.clone());
            Box::pin(async move {
                let mut out = Exposition::new();
                metrics::relay(&mut out, &relay.stats().await);
                metrics::listener(&mut out, &listener_stats);
                cluster.metrics(&mut out).await;
                http_stats.render(&mut out);
                out.finish() + &auth_metrics.render()
            })
        })
    };
    let health: MetricsFn = {
        let cluster = cluster.clone();
        Box::new(move || {
            let cluster = cluster.clone();
            Box::pin(async move { cluster.health().await })
        })
    };
    let websocket: Option<Arc<dyn UpgradeHandler>> =
        (!args.no_websocket).then(|| Arc::new(WsHandler::new(server.websocket())) as Arc<dyn UpgradeHandler>);
    let site = Arc::new(Site { fingerprint: fingerprint.clone(), metrics, files, websocket, health: Some(health) });
    tokio::spawn(http::serve(http_listener, site, limits.http, http_stats, http_tls.clone()));

    eprintln!("certificate sha256 {fingerprint}");
    let tcp = match (http_tls.is_some(), args.no_websocket) {
        (false, false) => "http + WebSocket",
        (true, false) => "http/https + ws/wss",
        (false, true) => "http",
        (true, true) => "http/https",
    };
    eprintln!("listening on {addr} (udp: raw QUIC + WebTransport; tcp: {tcp})");
    eprintln!("{auth_line}");
    for line in
        hints::next_steps(&hints::program(), addr, hints::wildcard_is_dual_stack(addr), &fingerprint, page_built)
    {
        eprintln!("{line}");
    }
    tracing::info!(%addr, hop_id, "relay ready");

    // Peer relays: the static list and the peer list, each dialled and kept dialled.
    let token = args.cluster.token()?;
    let statics = args.peers.iter().map(|p| PeerSpec::parse(p, token.as_deref())).collect::<Result<Vec<PeerSpec>>>()?;
    if !statics.is_empty() || args.cluster.peer_list.is_some() {
        let interval = Duration::from_secs_f64(args.cluster.peer_list_interval.unwrap_or(10.0).max(0.1));
        let source = args.cluster.peer_list.clone();
        tokio::spawn(cluster::run(cluster.clone(), statics, source, interval, token));
    }

    link_workers(&relay, workers, &config, &fingerprint, &runtime)?;

    let accept_relay = relay.clone();
    let (stop_accepting, mut stop) = tokio::sync::oneshot::channel::<()>();
    let accept = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = &mut stop => break,
                accepted = server.accept() => accepted,
            };
            let Some(accepted) = accepted else { break };
            let path = accepted.path.as_deref().map(crate::auth_cmd::redact);
            tracing::info!(peer = %accepted.peer, version = %accepted.version, kind = ?accepted.kind, ?path, "session");
            let relay = accept_relay.clone();
            let info = ConnectInfo { target: accepted.path.clone(), remote: Some(accepted.peer), ..Default::default() };
            tokio::spawn(async move {
                relay
                    .serve_with(accepted.connection, accepted.version, Perspective::Server, Dialect::Draft, info)
                    .await;
            });
        }
        server
    });

    shutdown_signal().await?;
    let drain = Duration::from_secs_f64(args.drain_timeout.unwrap_or(5.0).max(0.0));
    let uri = args.next_uri.clone().unwrap_or_default();
    eprintln!("shutting down: GOAWAY {uri:?}, draining for up to {drain:?}");
    relay.goaway(&uri);
    relay.drained(&runtime, drain).await;
    // Accept no one from here on: a client reconnecting once we close its session must reach
    // our successor, not a relay about to exit (its handshake waits for the next one).
    let _ = stop_accepting.send(());
    let server = accept.await.context("the accept task failed")?;
    server.stop_accepting();
    relay.close_all(session_code::GOAWAY_TIMEOUT, "relay shutting down");
    relay.drained(&runtime, Duration::from_secs(1)).await;
    // The sessions are closed; let the closes reach the peers before the process exits (a
    // WebTransport close takes a round trip for its capsule), or they would see an idle timeout.
    let _ = tokio::time::timeout(Duration::from_secs(2), server.wait_idle()).await;
    Ok(())
}

/// Links every pair of workers: a private WebTransport listener on loopback (not the public
/// one, so links neither count against its admission limits nor show in its metrics) accepts
/// one session per pair, redialled after a pause if it ends, so that every broadcast reaches
/// every worker.
fn link_workers(
    relay: &RelayPool,
    workers: usize,
    public: &ServerConfig,
    fingerprint: &str,
    runtime: &moqt_driver_quinn::Runtime,
) -> Result<()> {
    if workers < 2 {
        return Ok(());
    }
    let loopback: std::net::IpAddr = match public.bind.ip() {
        std::net::IpAddr::V6(ip) if !ip.is_unspecified() && ip.to_ipv4_mapped().is_none() => {
            std::net::Ipv6Addr::LOCALHOST.into()
        }
        _ => std::net::Ipv4Addr::LOCALHOST.into(),
    };
    let mut config = public.clone();
    config.bind = SocketAddr::new(loopback, 0);
    config.raw_quic = false;
    config.admission = Default::default();
    let mut server = Listener::bind(config).context("cannot listen for links between workers")?;
    let target = server.local_addr();
    let accept = relay.clone();
    tokio::spawn(async move {
        while let Some(accepted) = server.accept().await {
            let relay = accept.clone();
            match accepted.path.as_deref().and_then(|p| relay.link_worker(p)) {
                Some(worker) => {
                    tokio::spawn(async move { relay.link(worker, accepted.connection, Perspective::Server).await });
                }
                None => accepted.connection.close(0, "not a link"),
            }
        }
    });
    let mut cc = ClientConfig::new(Verification::pinned(fingerprint.parse().map_err(|e| anyhow::anyhow!("{e}"))?));
    cc.runtime = Some(runtime.clone());
    cc.transport = public.transport.clone();
    cc.resolver = Some(Arc::new(moqt_driver_tokio::TokioResolver));
    let client = Arc::new(Connector::new(cc)?);
    for from in 1..workers {
        for to in 0..from {
            let (relay, client) = (relay.clone(), client.clone());
            let url = format!("https://{target}{}", relay.link_path(to));
            tokio::spawn(async move {
                loop {
                    match client.connect(&url).await {
                        Ok(conn) => relay.link(from, conn, Perspective::Client).await,
                        Err(e) => tracing::warn!(from, to, "cannot link relay workers: {e}"),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
    }
    Ok(())
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM: systemd and Kubernetes stop services with SIGTERM, and
/// it drains the same way.
async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot wait for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    Ok(())
}

/// Binds the UDP listener and the HTTP listener on the same port number. With port 0 the
/// system picks the UDP port, whose number may already be taken on TCP: then both are tried
/// again on another port.
async fn bind_both(config: ServerConfig) -> Result<(Listener, tokio::net::TcpListener)> {
    const ATTEMPTS: usize = 20;
    for attempt in 1.. {
        let server = Listener::bind(config.clone())?;
        match http::bind(server.local_addr()).await {
            Ok(http) => return Ok((server, http)),
            Err(e) if config.bind.port() == 0 && attempt < ATTEMPTS => {
                tracing::debug!("{e:#}; trying another port");
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// A random non-zero hop id below 2^53 (from the OS's hash randomness; no extra dependency).
fn random_hop_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    (h.finish() & ((1 << 53) - 1)).max(1)
}

/// The demo page's files, read once at start.
fn web_files(root: Option<&FsPath>) -> Result<Vec<(String, &'static str, Bytes)>> {
    let root = match root {
        Some(r) => Some(r.to_path_buf()),
        None => Some(FsPath::new("web/dist").to_path_buf()).filter(|p| p.is_dir()),
    };
    let mut files = Vec::new();
    if let Some(root) = root {
        if !root.is_dir() {
            bail!("--web-root {} is not a directory", root.display());
        }
        collect(&root, &root, &mut files)?;
    }
    if !files.iter().any(|(p, _, _)| p == "/index.html") {
        files.push(("/index.html".into(), "text/html; charset=utf-8", Bytes::from_static(FALLBACK.as_bytes())));
    }
    Ok(files)
}

fn collect(root: &FsPath, dir: &FsPath, out: &mut Vec<(String, &'static str, Bytes)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
            continue;
        }
        let rel = path.strip_prefix(root).expect("inside root").to_string_lossy().replace('\\', "/");
        let ctype = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js" | "mjs") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("json" | "map") => "application/json",
            Some("png") => "image/png",
            Some("svg") => "image/svg+xml",
            Some("wasm") => "application/wasm",
            _ => "application/octet-stream",
        };
        out.push((format!("/{rel}"), ctype, Bytes::from(std::fs::read(&path)?)));
    }
    Ok(())
}

const FALLBACK: &str = "<!doctype html><meta charset=utf-8><title>moqt relay</title>\
<h1>moqt relay</h1><p>The relay is running. The browser demo is not built: run \
<code>npm ci && npm run build</code> in <code>web/</code>, then restart the relay \
(or pass <code>--web-root</code>).</p><p><a href=/certificate.sha256>certificate.sha256</a> · \
<a href=/health>health</a> · <a href=/metrics>metrics</a></p>";
