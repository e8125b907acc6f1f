//! `moqt relay`: the main job. One UDP port for raw QUIC and WebTransport, plain HTTP on the same
//! TCP port number, optional links to peer relays, and a graceful GOAWAY drain on Ctrl-C or
//! SIGTERM.

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use moqt_driver_quinn::relay::{Relay, RelayConfig};
use moqt_driver_tokio::tls::{Identity, Verification};
use moqt_driver_tokio::transport::{ClientConfig, Connector, Listener, ServerConfig};
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::{session_code, Config, Perspective};
use moqt_proto::{Dialect, Version};

use crate::cli::RelayArgs;
use crate::hints;
use crate::http::{self, Site};

const DEFAULT_LISTEN: &str = "[::]:4443";

pub async fn run(args: RelayArgs) -> Result<()> {
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

    let mut config = ServerConfig::new(listen, identity);
    if !args.versions.is_empty() {
        config.versions = args.versions.clone();
    }
    config.runtime = Some(runtime.clone());
    let mut server = Listener::bind(config)?;
    let addr = server.local_addr();

    let hop_id = args.hop_id.filter(|h| *h != 0).unwrap_or_else(random_hop_id);
    let relay = Relay::start(
        RelayConfig {
            node: NodeConfig { hop_id, ..NodeConfig::default() },
            session: Config::new(Version::Lite06, Perspective::Server),
        },
        runtime.clone(),
    );

    let metrics = relay.metrics();
    let files = web_files(args.web_root.as_deref())?;
    let page_built = files.iter().any(|(p, _, body)| p == "/index.html" && body != FALLBACK.as_bytes());
    let site = Arc::new(Site { fingerprint: fingerprint.clone(), metrics: Box::new(move || metrics.render()), files });
    let http_listener = http::bind(addr).await?;
    tokio::spawn(http::serve(http_listener, site));

    eprintln!("certificate sha256 {fingerprint}");
    eprintln!("listening on {addr} (udp: raw QUIC + WebTransport; tcp: http)");
    for line in
        hints::next_steps(&hints::program(), addr, hints::wildcard_is_dual_stack(addr), &fingerprint, page_built)
    {
        eprintln!("{line}");
    }
    tracing::info!(%addr, hop_id, "relay ready");

    // Peer relays: dial, serve the link, redial after a pause.
    for url in args.peers.clone() {
        let relay = relay.clone();
        let verification = if args.peer_disable_verify {
            Verification::InsecureNoVerification
        } else if let Some(fp) = &args.peer_fingerprint {
            Verification::pinned(fp.parse().map_err(|e| anyhow::anyhow!("--peer-fingerprint: {e}"))?)
        } else {
            Verification::SystemRoots
        };
        let mut cc = ClientConfig::new(verification);
        cc.runtime = Some(runtime.clone());
        cc.resolver = Some(Arc::new(moqt_driver_tokio::TokioResolver));
        let client = Connector::new(cc)?;
        tokio::spawn(async move {
            loop {
                match client.connect(&url).await {
                    Ok(session) => {
                        tracing::info!(url, version = %session.version(), "linked to peer relay");
                        let version = session.version();
                        relay.serve(session, version, Perspective::Client, Dialect::Draft).await;
                        tracing::warn!(url, "peer link ended");
                    }
                    Err(e) => tracing::warn!(url, "cannot reach peer relay: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    let accept_relay = relay.clone();
    let accept = tokio::spawn(async move {
        while let Some(accepted) = server.accept().await {
            tracing::info!(peer = %accepted.peer, version = %accepted.version, kind = ?accepted.kind, path = ?accepted.path, "session");
            let relay = accept_relay.clone();
            tokio::spawn(async move {
                relay.serve(accepted.connection, accepted.version, Perspective::Server, Dialect::Draft).await;
            });
        }
    });

    // Ctrl-C or SIGTERM (what service managers send) drains.
    crate::client_cmd::shutdown_signal().await;
    let drain = Duration::from_secs_f64(args.drain_timeout.unwrap_or(5.0).max(0.0));
    let uri = args.next_uri.clone().unwrap_or_default();
    eprintln!("shutting down: GOAWAY {uri:?}, draining for up to {drain:?}");
    relay.goaway(&uri);
    relay.drained(&runtime, drain).await;
    // Accept no one from here on: a client reconnecting once we close its session must reach
    // our successor, not a relay about to exit (its handshake waits for the next one).
    accept.abort();
    relay.close_all(session_code::GOAWAY_TIMEOUT, "relay shutting down");
    relay.drained(&runtime, Duration::from_secs(1)).await;
    Ok(())
}

/// A random non-zero hop id below 2^53 (from the OS's hash randomness; no extra dependency).
fn random_hop_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    (h.finish() & ((1 << 53) - 1)).max(1)
}

/// The demo page's files, read once at start.
fn web_files(root: Option<&FsPath>) -> Result<Vec<(String, &'static str, Vec<u8>)>> {
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
        files.push(("/index.html".into(), "text/html; charset=utf-8", FALLBACK.as_bytes().to_vec()));
    }
    Ok(files)
}

fn collect(root: &FsPath, dir: &FsPath, out: &mut Vec<(String, &'static str, Vec<u8>)>) -> Result<()> {
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
        out.push((format!("/{rel}"), ctype, std::fs::read(&path)?));
    }
    Ok(())
}

const FALLBACK: &str = "<!doctype html><meta charset=utf-8><title>moqt relay</title>\
<h1>moqt relay</h1><p>The relay is running. The browser demo is not built: run \
<code>npm ci && npm run build</code> in <code>web/</code>, then restart the relay \
(or pass <code>--web-root</code>).</p><p><a href=/certificate.sha256>certificate.sha256</a> · \
<a href=/health>health</a> · <a href=/metrics>metrics</a></p>";
