//! Several relay workers behind one listener: [`RelayPool`] runs one [`Relay`] owner (one node,
//! its sessions and their connections' I/O) per worker, hands each new connection to the next
//! worker in turn, and sums the workers' counters. The workers run as separate tasks, so a
//! multi-threaded runtime spreads them over its threads; quinn's own per-connection work
//! (packets, encryption) is spread the same way.
//!
//! The workers' nodes are linked to each other as peers, one moq-lite session per pair, so a
//! broadcast published to one worker reaches subscribers on every other: each worker subscribes
//! once to another worker's track however many of its own subscribers want it. The caller makes
//! those connections (a loopback WebTransport session to the relay's own listener, at the path
//! [`RelayPool::link_path`]) and hands both ends to [`RelayPool::link`]; links are trusted (full
//! access, no gatekeeper) and are not counted as sessions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use moqt_proto::session::Perspective;
use moqt_proto::{Dialect, Version};

use super::{ConnectInfo, Relay, RelayConfig, RelayStats};
use crate::connection::Connection;
use crate::rt::{Runtime, Sleep};

/// The path prefix of links between workers (`/.moqt-worker-link/<worker>?key=<key>`).
pub const LINK_PATH: &str = "/.moqt-worker-link/";

/// Relay workers behind one listener. See the module docs.
#[derive(Clone)]
pub struct RelayPool {
    workers: Vec<Relay>,
    next: std::sync::Arc<AtomicUsize>,
    key: String,
}

impl RelayPool {
    /// Starts `workers` owners (at least one) on `runtime`. Worker 0 keeps the configured hop id
    /// and worker `i` gets [`worker_hop_id`]`(hop_id, i)`, so that each node recognises
    /// announcements that passed the others. `key` authenticates links
    /// ([`RelayPool::link_worker`]).
    pub fn start(config: RelayConfig, runtime: Runtime, workers: usize, key: String) -> RelayPool {
        let workers = (0..workers.max(1))
            .map(|i| {
                let mut c = config.clone();
                c.node.hop_id = worker_hop_id(c.node.hop_id, i);
                Relay::start(c, runtime.clone())
            })
            .collect();
        RelayPool { workers, next: Default::default(), key }
    }

    /// The workers.
    pub fn workers(&self) -> &[Relay] {
        &self.workers
    }

    /// The worker the next connection goes to (round robin).
    pub fn pick(&self) -> &Relay {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        &self.workers[i]
    }

    /// Serves a connection on the next worker; resolves when it has ended.
    pub async fn serve_with(
        &self,
        connection: Connection,
        version: Version,
        perspective: Perspective,
        dialect: Dialect,
        info: ConnectInfo,
    ) {
        self.pick().serve_with(connection, version, perspective, dialect, info).await
    }

    /// The path (with query) a link to worker `i` dials on the relay's own listener.
    pub fn link_path(&self, i: usize) -> String {
        format!("{LINK_PATH}{i}?key={}", self.key)
    }

    /// The worker a dialled path links to, if it is a link path with this pool's key.
    pub fn link_worker(&self, path: &str) -> Option<usize> {
        let rest = path.strip_prefix(LINK_PATH)?;
        let (worker, query) = rest.split_once("?key=")?;
        let worker: usize = worker.parse().ok()?;
        (query == self.key && worker < self.workers.len()).then_some(worker)
    }

    /// Serves one end of a link on worker `i` (`perspective`: `Client` on the dialling worker,
    /// `Server` on the accepting one); resolves when the link has ended.
    pub async fn link(&self, i: usize, connection: Connection, perspective: Perspective) {
        let version = connection.version();
        // A link between workers costs nothing: a route through a sibling worker is as good as
        // the sibling's own.
        let info =
            ConnectInfo { remote: Some(connection.peer_addr()), internal: true, cost: Some(0), ..Default::default() };
        if let Some(w) = self.workers.get(i) {
            w.serve_with(connection, version, perspective, Dialect::Draft, info).await;
        }
    }

    /// Every labelled link (cluster peers) on every worker, sorted by label.
    pub async fn links(&self) -> Vec<super::LinkStats> {
        let mut links = Vec::new();
        for w in &self.workers {
            links.extend(w.links().await);
        }
        links.sort_by(|a, b| a.label.cmp(&b.label));
        links
    }

    /// Closes the links labelled `label` on every worker (a peer removed from the cluster).
    pub fn close_link(&self, label: &str, code: u64, reason: &str) {
        self.workers.iter().for_each(|w| w.close_link(label, code, reason));
    }

    /// The workers' counters, summed.
    pub async fn stats(&self) -> RelayStats {
        let mut sum = RelayStats::default();
        for w in &self.workers {
            add(&mut sum, &w.stats().await);
        }
        sum
    }

    /// Sends GOAWAY (with an optional next URI) to every session of every worker.
    pub fn goaway(&self, uri: &str) {
        self.workers.iter().for_each(|w| w.goaway(uri));
    }

    /// Closes every session of every worker (links included).
    pub fn close_all(&self, code: u64, reason: &str) {
        self.workers.iter().for_each(|w| w.close_all(code, reason));
    }

    /// Open sessions across workers (links not counted).
    pub async fn sessions(&self) -> usize {
        let mut n = 0;
        for w in &self.workers {
            n += w.sessions().await;
        }
        n
    }

    /// Waits until no session is open on any worker or `timeout` passes.
    pub async fn drained(&self, runtime: &Runtime, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut tick = Sleep::until(runtime, Instant::now());
        loop {
            if self.sessions().await == 0 || Instant::now() >= deadline {
                return;
            }
            tick.reset(Instant::now() + Duration::from_millis(50));
            (&mut tick).await;
        }
    }
}

/// The hop id of worker `i` of a relay whose hop id is `hop_id`: the hop id itself for worker 0;
/// for the others a 53-bit mix of both (SplitMix64's finaliser), so that the extra ids do not
/// land on another relay's hand-picked id (`hop_id + i` would make worker 1 of relay 1 look like
/// relay 2, and relay 2 would drop its announcements as a loop).
pub fn worker_hop_id(hop_id: u64, i: usize) -> u64 {
    if i == 0 {
        return hop_id;
    }
    let mut z = hop_id ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    match z & ((1 << 53) - 1) {
        0 => 1 << 52,
        id => id,
    }
}

#[cfg(test)]
mod tests {
    use super::worker_hop_id;

    #[test]
    fn worker_hop_ids_are_distinct_and_clear_of_small_ids() {
        assert_eq!(worker_hop_id(7, 0), 7);
        let mut seen = std::collections::HashSet::new();
        for hop in 1..=64u64 {
            for i in 1..16 {
                let id = worker_hop_id(hop, i);
                assert!(id > 1 << 20 && id < 1 << 53, "{hop}/{i}: {id}");
                assert!(seen.insert(id), "{hop}/{i} repeats {id}");
            }
        }
    }
}

/// Adds one worker's counters to a sum (gauges and counters alike add up).
fn add(sum: &mut RelayStats, s: &RelayStats) {
    let (a, b) = (&mut sum.node, &s.node);
    a.sessions += b.sessions;
    a.subscriptions += b.subscriptions;
    a.upstream_subscriptions += b.upstream_subscriptions;
    a.upstream_subscribes += b.upstream_subscribes;
    a.upstream_fetches += b.upstream_fetches;
    a.frames_in += b.frames_in;
    a.bytes_in += b.bytes_in;
    a.frames_out += b.frames_out;
    a.bytes_out += b.bytes_out;
    a.groups_dropped += b.groups_dropped;
    a.session_limits += b.session_limits;
    let moqt_proto::relay::NodeLimitStats {
        broadcasts_refused,
        groups_cut,
        cache_evictions,
        fetches_too_large,
        requests_timed_out,
        track_requests_refused,
        recv_budget_exhausted,
        tracks_waiting_for_route,
        route_switches,
        routes_looped,
        routes_held_down,
    } = b.limits;
    let l = &mut a.limits;
    l.broadcasts_refused += broadcasts_refused;
    l.groups_cut += groups_cut;
    l.cache_evictions += cache_evictions;
    l.fetches_too_large += fetches_too_large;
    l.requests_timed_out += requests_timed_out;
    l.track_requests_refused += track_requests_refused;
    l.recv_budget_exhausted += recv_budget_exhausted;
    l.tracks_waiting_for_route += tracks_waiting_for_route;
    l.route_switches += route_switches;
    l.routes_looped += routes_looped;
    l.routes_held_down += routes_held_down;
    let moqt_proto::relay::AccessStats {
        announces_refused,
        forwards_refused,
        subscribes_refused,
        fetches_refused,
        track_infos_refused,
        interests_out_of_scope,
        sessions_expired,
        admissions_timed_out,
    } = b.access;
    let x = &mut a.access;
    x.announces_refused += announces_refused;
    x.forwards_refused += forwards_refused;
    x.subscribes_refused += subscribes_refused;
    x.fetches_refused += fetches_refused;
    x.track_infos_refused += track_infos_refused;
    x.interests_out_of_scope += interests_out_of_scope;
    x.sessions_expired += sessions_expired;
    x.admissions_timed_out += admissions_timed_out;
    sum.recv_buffered += s.recv_buffered;
    sum.queued_bytes += s.queued_bytes;
    sum.cache_bytes += s.cache_bytes;
    sum.open_streams += s.open_streams;
    sum.sessions_total += s.sessions_total;
    sum.datagrams_dropped += s.datagrams_dropped;
    for (a, b) in sum.sessions_closed.iter_mut().zip(s.sessions_closed) {
        *a += b;
    }
}
