//! `moqt relay` in a cluster: the peers it dials and keeps dialled. Peers come from `--peer` (a
//! URL, `?cost=N` pricing the link and `?jwt=` carrying a token) and from a JSON peer list
//! (`--peer-list`, a file or an `http(s)://` URL, in moq-relay's `--cluster-connect-api` format),
//! reloaded on SIGHUP and every `--peer-list-interval` seconds: peers added are dialled, peers
//! removed are closed, the others are left alone. Each peer is dialled again after a loss, with
//! the reconnection policy's backoff. The routing itself (hop chains, costs, failover) is the
//! core's: this module only hands it each link with its price and a label for `/metrics` and
//! `/health`.
//!
//! Peer list format: a JSON array whose entries are URL strings (`"moqt://b:4443/?cost=2"`) or
//! objects `{"url": …, "cost": N, "egress": N, "token": "JWT"}` (`egress`, if given, must equal
//! `cost`; `token` becomes `?jwt=` unless the URL has one).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use moqt_driver_quinn::metrics::Exposition;
use moqt_driver_quinn::relay::{ConnectInfo, LinkStats, RelayPool};
use moqt_driver_tokio::transport::Connector;
use moqt_proto::reconnect::ReconnectPolicy;
use moqt_proto::session::{session_code, Perspective};
use moqt_proto::Dialect;
use serde::Deserialize;
use tokio::task::JoinHandle;

/// The cluster flags beyond `--peer`, `--peer-fingerprint` and `--hop-id` (alias `--cluster-id`).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// A JSON list of peers to link with: a file, or an http(s):// URL (moq-relay's
    /// --cluster-connect-api format). Reloaded on SIGHUP and every --peer-list-interval seconds.
    #[arg(long, alias = "cluster-connect-api", value_name = "PATH|URL")]
    pub peer_list: Option<String>,
    /// How often the peer list is read again, in seconds [default: 10].
    #[arg(long, value_name = "SECS")]
    pub peer_list_interval: Option<f64>,
    /// A file holding the token (JWT) for peers whose URL has no `?jwt=` (moq-relay's
    /// --cluster-token).
    #[arg(long, alias = "cluster-token", value_name = "FILE")]
    pub peer_token: Option<PathBuf>,
    /// The longest hop chain accepted or forwarded, 1 to 32 [default: 32].
    #[arg(long, alias = "cluster-max-hops", value_name = "N")]
    pub max_hops: Option<usize>,
}

impl ClusterArgs {
    /// Fills unset flags from the file's `[relay]` keys.
    pub fn merge(self, file: ClusterArgs) -> ClusterArgs {
        ClusterArgs {
            peer_list: self.peer_list.or(file.peer_list),
            peer_list_interval: self.peer_list_interval.or(file.peer_list_interval),
            peer_token: self.peer_token.or(file.peer_token),
            max_hops: self.max_hops.or(file.max_hops),
        }
    }

    /// `--max-hops`, checked.
    pub fn max_hops(&self) -> Result<Option<usize>> {
        match self.max_hops {
            Some(n) if !(1..=32).contains(&n) => bail!("--max-hops must be between 1 and 32, not {n}"),
            n => Ok(n),
        }
    }

    /// The token from `--peer-token`, if any.
    pub fn token(&self) -> Result<Option<String>> {
        let Some(path) = &self.peer_token else { return Ok(None) };
        let text = std::fs::read_to_string(path).with_context(|| format!("--peer-token {}", path.display()))?;
        Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()))
    }
}

/// One peer to dial: the URL as dialled (`cost` taken out of its query) and the link's price.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerSpec {
    /// The URL dialled (may carry `?jwt=`).
    pub url: String,
    /// The link's price (`None`: the peer's SETUP Cost, else 1).
    pub cost: Option<u64>,
}

impl PeerSpec {
    /// Parses `URL[?cost=N][&jwt=T]`; `token` is added as `?jwt=` if the URL has none.
    pub fn parse(entry: &str, token: Option<&str>) -> Result<PeerSpec> {
        Self::build(entry, None, token)
    }

    fn build(entry: &str, cost: Option<u64>, token: Option<&str>) -> Result<PeerSpec> {
        let mut url = url::Url::parse(entry.trim()).with_context(|| format!("peer {entry:?}: not a URL"))?;
        if !matches!(url.scheme(), "moqt" | "https") {
            bail!("peer {entry:?}: moqt:// or https:// only");
        }
        let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let mut cost = cost;
        if let Some(i) = pairs.iter().position(|(k, _)| k == "cost") {
            let (_, v) = pairs.remove(i);
            let n: u64 = v.parse().with_context(|| format!("peer {entry:?}: cost {v:?} is not a number"))?;
            if n >= 1 << 62 {
                bail!("peer {entry:?}: cost {n} is too large");
            }
            cost = Some(n);
        }
        if let Some(t) = token.filter(|_| !pairs.iter().any(|(k, _)| k == "jwt")) {
            pairs.push(("jwt".into(), t.to_string()));
        }
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Ok(PeerSpec { url: url.to_string(), cost })
    }

    /// The name it has in logs, `/metrics` and `/health` (the URL without its query).
    pub fn label(&self) -> String {
        crate::auth_cmd::redact(&self.url)
    }
}

/// Parses a peer list (see the module docs).
pub fn parse_list(text: &str, token: Option<&str>) -> Result<Vec<PeerSpec>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Url(String),
        Object { url: String, cost: Option<u64>, egress: Option<u64>, token: Option<String> },
    }
    let entries: Vec<Entry> = serde_json::from_str(text).context("the peer list is not a JSON array of peers")?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        out.push(match e {
            Entry::Url(url) => PeerSpec::parse(&url, token)?,
            Entry::Object { url, cost, egress, token: own } => {
                if egress.is_some() && egress != cost {
                    bail!("peer {url:?}: egress must equal cost (asymmetric links are not supported)");
                }
                PeerSpec::build(&url, cost, own.as_deref().or(token))?
            }
        });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What is known about one peer, for `/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct PeerState {
    label: String,
    up: AtomicBool,
    connects: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A peer's shared state and the task dialling it.
type PeerEntry = (Arc<PeerState>, JoinHandle<()>);

/// One `/metrics` family: name, help, a value per peer label.
type Family = (&'static str, &'static str, Vec<(String, u64)>);

/// The peers being dialled.
pub struct Cluster {
    relay: RelayPool,
    connector: Arc<Connector>,
    policy: ReconnectPolicy,
    peers: Mutex<BTreeMap<PeerSpec, PeerEntry>>,
}

impl Cluster {
    /// A cluster with no peers yet.
    pub fn new(relay: RelayPool, connector: Connector) -> Arc<Cluster> {
        Arc::new(Cluster {
            relay,
            connector: Arc::new(connector),
            policy: ReconnectPolicy::default(),
            peers: Mutex::new(BTreeMap::new()),
        })
    }

    /// Makes the peers exactly `wanted`: dials the new ones, closes the ones gone. Returns how
    /// many were added and removed.
    pub fn reconcile(&self, wanted: &[PeerSpec]) -> (usize, usize) {
        let mut peers = self.peers.lock().expect("peer table");
        let gone: Vec<PeerSpec> = peers.keys().filter(|p| !wanted.contains(p)).cloned().collect();
        for spec in &gone {
            if let Some((state, task)) = peers.remove(spec) {
                task.abort();
                self.relay.close_link(&state.label, session_code::NO_ERROR, "removed from the peer list");
                eprintln!("peer {} removed", state.label);
            }
        }
        let mut added = 0;
        for spec in wanted {
            if peers.contains_key(spec) {
                continue;
            }
            added += 1;
            let state = Arc::new(PeerState { label: spec.label(), ..PeerState::default() });
            let task = tokio::spawn(dial_loop(
                self.relay.clone(),
                self.connector.clone(),
                spec.clone(),
                state.clone(),
                self.policy,
            ));
            peers.insert(spec.clone(), (state, task));
        }
        (added, gone.len())
    }

    fn states(&self) -> Vec<Arc<PeerState>> {
        self.peers.lock().expect("peer table").values().map(|(s, _)| s.clone()).collect()
    }

    /// The per-peer families for `/metrics`.
    pub async fn metrics(&self, out: &mut Exposition) {
        let (states, links) = (self.states(), self.relay.links().await);
        let rows = |f: &dyn Fn(&PeerState, Option<&LinkStats>) -> u64| -> Vec<(String, u64)> {
            states.iter().map(|s| (s.label.clone(), f(s, links.iter().find(|l| l.label == s.label)))).collect()
        };
        let families: [Family; 6] = [
            (
                "peer_up",
                "Whether the link to a cluster peer is up (1) or down (0).",
                rows(&|s, _| s.up.load(Ordering::Relaxed) as u64),
            ),
            (
                "peer_routes",
                "Broadcasts a cluster peer offers a route to.",
                rows(&|_, l| l.map_or(0, |l| l.routes as u64)),
            ),
            (
                "peer_upstream_subscriptions",
                "Upstream subscriptions this relay holds through a cluster peer.",
                rows(&|_, l| l.map_or(0, |l| l.upstream_subscriptions as u64)),
            ),
            (
                "peer_price",
                "The price added to the routes a cluster peer announces.",
                rows(&|_, l| l.map_or(0, |l| l.price)),
            ),
            (
                "peer_connects",
                "Links established to a cluster peer since start.",
                rows(&|s, _| s.connects.load(Ordering::Relaxed)),
            ),
            (
                "peer_dial_failures",
                "Failed dials to a cluster peer since start.",
                rows(&|s, _| s.failures.load(Ordering::Relaxed)),
            ),
        ];
        for (name, help, values) in families {
            let values: Vec<(&str, u64)> = values.iter().map(|(l, n)| (l.as_str(), *n)).collect();
            out.gauges(name, help, "peer", &values);
        }
    }

    /// The `/health` body: `ok`, then one line per peer.
    pub async fn health(&self) -> String {
        let links = self.relay.links().await;
        let mut out = String::from("ok\n");
        for s in self.states() {
            let link = links.iter().find(|l| l.label == s.label);
            let up = if s.up.load(Ordering::Relaxed) { "up" } else { "down" };
            out += &format!("peer {} {up}", s.label);
            if let Some(l) = link {
                out += &format!(
                    " {} price={} routes={} upstream={}",
                    l.version, l.price, l.routes, l.upstream_subscriptions
                );
            }
            if let Some(e) = s.last_error.lock().expect("error slot").as_deref().filter(|_| link.is_none()) {
                out += &format!(" error={e:?}");
            }
            out.push('\n');
        }
        out
    }
}

/// Dials one peer, serves the link, and dials again after a loss or a failure (backoff with
/// jitter; it starts over after a link that lasted).
async fn dial_loop(
    relay: RelayPool,
    connector: Arc<Connector>,
    spec: PeerSpec,
    state: Arc<PeerState>,
    policy: ReconnectPolicy,
) {
    let mut attempt = 0u32;
    loop {
        match connector.connect(&spec.url).await {
            Ok(session) => {
                let version = session.version();
                let started = Instant::now();
                // The URL's path and query (a `?jwt=` among them) go in the SETUP Path on raw QUIC.
                let info = ConnectInfo {
                    target: path_and_query(&spec.url),
                    remote: Some(session.peer_addr()),
                    cost: spec.cost,
                    label: Some(state.label.clone()),
                    internal: false,
                };
                let serving = relay.serve_with(session, version, Perspective::Client, Dialect::Draft, info);
                let mut serving = std::pin::pin!(serving);
                // Hand the link to the relay before reporting it up: `/metrics` and `/health`
                // then know it.
                if futures::poll!(serving.as_mut()).is_pending() {
                    state.up.store(true, Ordering::Relaxed);
                    state.connects.fetch_add(1, Ordering::Relaxed);
                    *state.last_error.lock().expect("error slot") = None;
                    eprintln!("peer {} up ({version})", state.label);
                    serving.await;
                }
                state.up.store(false, Ordering::Relaxed);
                eprintln!("peer {} down", state.label);
                if started.elapsed() > policy.max_backoff {
                    attempt = 0;
                }
            }
            Err(e) => {
                state.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = state.label, "cannot reach peer relay: {e}");
                *state.last_error.lock().expect("error slot") = Some(e.to_string());
            }
        }
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(policy.delay(attempt, rand::random())).await;
    }
}

/// The path and query of a URL (`/room?jwt=…`).
pub fn path_and_query(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    })
}

/// Reads the peer list from a file or an http(s):// URL.
async fn read_list(source: &str, token: Option<&str>) -> Result<Vec<PeerSpec>> {
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let client = crate::auth_server::HttpClient::for_flag(source, "--peer-list")?;
        let (status, body) = client.get().await.map_err(|e| anyhow::anyhow!("--peer-list {source}: {e}"))?;
        if status != 200 {
            bail!("--peer-list {source}: HTTP {status}");
        }
        String::from_utf8(body).context("--peer-list: not UTF-8")?
    } else {
        std::fs::read_to_string(source).with_context(|| format!("--peer-list {source}"))?
    };
    parse_list(&text, token)
}

/// Keeps the cluster's peers equal to `statics` plus the peer list at `source` (if any): reads
/// it now, then on SIGHUP and every `interval`. A list that cannot be read or parsed leaves the
/// peers as they are.
pub async fn run(
    cluster: Arc<Cluster>,
    statics: Vec<PeerSpec>,
    source: Option<String>,
    interval: Duration,
    token: Option<String>,
) {
    let mut last: Option<Vec<PeerSpec>> = None;
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let listed = match &source {
            None => Some(Vec::new()),
            Some(src) => match read_list(src, token.as_deref()).await {
                Ok(list) => Some(list),
                Err(e) => {
                    eprintln!("peer list not reloaded: {e:#}");
                    None
                }
            },
        };
        if let Some(listed) = listed {
            let mut wanted = statics.clone();
            wanted.extend(listed);
            wanted.sort();
            wanted.dedup();
            if last.as_ref() != Some(&wanted) {
                let (added, removed) = cluster.reconcile(&wanted);
                eprintln!("peers: {} (added {added}, removed {removed})", wanted.len());
                last = Some(wanted);
            }
        }
        if source.is_none() {
            return;
        }
        #[cfg(unix)]
        if let Some(hup) = hup.as_mut() {
            tokio::select! {
                _ = hup.recv() => tracing::info!("SIGHUP: reading the peer list again"),
                _ = tokio::time::sleep(interval) => {}
            }
            continue;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_take_cost_and_token() {
        let p = PeerSpec::parse("moqt://a:4443/?cost=5&jwt=T", Some("other")).unwrap();
        assert_eq!((p.url.as_str(), p.cost), ("moqt://a:4443/?jwt=T", Some(5)));
        let p = PeerSpec::parse("moqt://a:4443", Some("tok")).unwrap();
        assert_eq!((p.url.as_str(), p.cost), ("moqt://a:4443?jwt=tok", None));
        assert_eq!(p.label(), "moqt://a:4443?…");
        assert!(PeerSpec::parse("moqt://a:4443/?cost=x", None).is_err());
        assert!(PeerSpec::parse("moqt://a:4443/?cost=4611686018427387904", None).is_err());
        assert!(PeerSpec::parse("a:4443", None).is_err());
    }

    #[test]
    fn peer_lists_in_moq_relay_format() {
        let text = r#"["moqt://a:1/?cost=1", {"url": "https://b:2/", "cost": 2}, {"url": "moqt://c:3", "token": "J"}]"#;
        let list = parse_list(text, None).unwrap();
        let got: Vec<(&str, Option<u64>)> = list.iter().map(|p| (p.url.as_str(), p.cost)).collect();
        assert_eq!(got, [("https://b:2/", Some(2)), ("moqt://a:1/", Some(1)), ("moqt://c:3?jwt=J", None)]);
        assert!(parse_list(r#"[{"url": "moqt://a:1", "cost": 1, "egress": 2}]"#, None).is_err());
        assert!(parse_list(r#"{"url": "moqt://a:1"}"#, None).is_err());
        assert!(parse_list("[1]", None).is_err());
        assert_eq!(parse_list("[]", None).unwrap(), vec![]);
    }
}
