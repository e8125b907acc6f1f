//! The relay, sans-IO: one [`Node`] owns every session of an endpoint, an [`Origin`] of
//! broadcasts, and the tracks being served, and routes content between them.
//!
//! - Announcements from each session feed the origin; each session is told the best route to
//!   every broadcast except routes through itself (split horizon), with hop chains that grow by
//!   this node's hop id; chains already holding this node are dropped (loops).
//! - A subscription is served locally if an application publishes the track here, otherwise
//!   through **one** upstream subscription per track, shared by every downstream subscriber with
//!   aggregated parameters (highest priority, widest latency, ordered only if all ask), released
//!   a configurable linger after the last subscriber leaves.
//! - Each received frame goes into the track's [`GroupCache`] and to every downstream group as a
//!   `Bytes` clone; each downstream session applies its own priority, order, max latency and
//!   queue budget, so a slow subscriber only loses its own stale groups.
//! - Late joiners start at the first frame of the current group; FETCH is served from the cache
//!   and a miss goes upstream once however many ask.
//! - When a session ends, its routes leave the origin and the tracks it fed end for their
//!   subscribers with `stream_code::UNROUTABLE`.
//!
//! A driver feeds [`Node::handle`] per session and executes [`Node::poll_command`] per session.
//! Nothing here blocks, reads a clock, or locks.

mod cache;
mod origin;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

pub use cache::{CacheLimits, CachedFrame, CachedGroup, GroupCache};
pub use origin::{Origin, Route, Source};

use crate::message::{Fetch, Hops, RouteCost, Subscribe, TrackInfo};
use crate::path::Path;
use crate::session::{
    stream_code, Command, Config, Error, Event, PublishParams, Session, StreamId, SubscribeParams, TransportEvent,
};

/// A session owned by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl SessionId {
    fn new(index: u32, generation: u32) -> Self {
        SessionId(u64::from(generation) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

/// A track published by an application on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrackId(usize);

/// Node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's hop id (non-zero; it is how loops are recognised).
    pub hop_id: u64,
    /// How long an upstream subscription outlives its last downstream subscriber.
    pub linger: Duration,
    /// Per-track cache bounds.
    pub cache: CacheLimits,
    /// Bytes cached across every track.
    pub max_cache_bytes: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { hop_id: 1, linger: Duration::from_secs(2), cache: CacheLimits::default(), max_cache_bytes: 256 << 20 }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Sessions open.
    pub sessions: usize,
    /// Downstream subscriptions being served.
    pub subscriptions: usize,
    /// Upstream subscriptions held.
    pub upstream_subscriptions: usize,
    /// Upstream subscriptions ever opened.
    pub upstream_subscribes: u64,
    /// Upstream fetches ever sent.
    pub upstream_fetches: u64,
    /// Frames received (upstream or local).
    pub frames_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Frames queued to downstream subscribers.
    pub frames_out: u64,
    /// Payload bytes queued to downstream subscribers.
    pub bytes_out: u64,
    /// Downstream groups dropped (expired, over budget, stopped).
    pub groups_dropped: u64,
}

/// What the node reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A session ended; the driver should drop its connection.
    SessionClosed {
        /// The session.
        session: SessionId,
        /// The close code.
        code: u64,
        /// The reason.
        reason: String,
    },
    /// A session's peer sent GOAWAY.
    Goaway {
        /// The session.
        session: SessionId,
        /// Where it suggests reconnecting.
        uri: String,
    },
}

#[derive(Debug)]
struct Peer {
    session: Session,
    dirty: bool,
}

#[derive(Debug)]
struct Downstream {
    session: SessionId,
    stream: StreamId,
    params: SubscribeParams,
    /// Open downstream group streams by sequence.
    groups: SmallVec<[(u64, StreamId); 4]>,
}

impl Downstream {
    fn wants(&self, sequence: u64) -> bool {
        self.params.start_group.is_none_or(|s| sequence >= s) && self.params.end_group.is_none_or(|e| sequence <= e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Local,
    Remote { session: SessionId, id: u64 },
}

#[derive(Debug)]
struct TrackState {
    path: Path,
    name: String,
    upstream: Upstream,
    downstreams: Vec<Downstream>,
    cache: GroupCache,
    /// When to release the upstream (no downstream left).
    linger_until: Option<Instant>,
    /// The parameters last sent upstream.
    aggregated: SubscribeParams,
    info: Option<TrackInfo>,
}

type FetchKey = (Path, String, u64);

#[derive(Debug, Default)]
struct PendingFetch {
    waiters: Vec<(SessionId, StreamId)>,
    frames: Vec<CachedFrame>,
}

#[derive(Debug, Default)]
struct PendingTrackInfo {
    waiters: Vec<(SessionId, StreamId)>,
}

/// A relay node (or a client with one session).
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    now: Instant,
    peers: Vec<Option<Peer>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    dirty: Vec<SessionId>,
    origin: Origin,
    tracks: Vec<Option<TrackState>>,
    free_tracks: Vec<usize>,
    track_index: FxHashMap<(Path, String), usize>,
    /// (upstream session, our subscribe id) → track.
    upstreams: FxHashMap<(SessionId, u64), usize>,
    /// (downstream session, its subscribe stream) → track.
    downstreams: FxHashMap<(SessionId, StreamId), usize>,
    /// (downstream session, group stream) → (track, sequence).
    downstream_groups: FxHashMap<(SessionId, StreamId), (usize, u64)>,
    fetches: FxHashMap<FetchKey, PendingFetch>,
    fetch_upstreams: FxHashMap<(SessionId, StreamId), FetchKey>,
    track_infos: FxHashMap<(SessionId, StreamId), PendingTrackInfo>,
    commands: VecDeque<(SessionId, Command)>,
    events: VecDeque<NodeEvent>,
    cache_bytes: usize,
    stats: NodeStats,
}

impl Node {
    /// A node with no sessions.
    pub fn new(config: NodeConfig, now: Instant) -> Self {
        Self {
            config,
            now,
            peers: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            origin: Origin::default(),
            tracks: Vec::new(),
            free_tracks: Vec::new(),
            track_index: FxHashMap::default(),
            upstreams: FxHashMap::default(),
            downstreams: FxHashMap::default(),
            downstream_groups: FxHashMap::default(),
            fetches: FxHashMap::default(),
            fetch_upstreams: FxHashMap::default(),
            track_infos: FxHashMap::default(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            cache_bytes: 0,
            stats: NodeStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        let mut s = self.stats;
        s.sessions = self.peers.iter().flatten().count();
        s.subscriptions = self.downstreams.len();
        s.upstream_subscriptions = self.upstreams.len();
        s
    }

    /// The origin table.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Bytes held in group caches.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// Adds a session for a new connection. The node uses its own hop id in `config`, opens an
    /// announce interest for everything the peer publishes, and announces every route it knows.
    pub fn add_session(&mut self, mut config: Config, now: Instant) -> SessionId {
        self.now = self.now.max(now);
        config.hop_id = self.config.hop_id;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.peers.push(None);
                self.generations.push(0);
                (self.peers.len() - 1) as u32
            }
        };
        let id = SessionId::new(index, self.generations[index as usize]);
        let mut session = Session::new(config, self.now);
        let _ = session.announce_interest(Path::root());
        self.peers[index as usize] = Some(Peer { session, dirty: false });
        let paths: Vec<Path> = self.origin.paths().cloned().collect();
        for path in paths {
            self.advertise_to(id, &path);
        }
        self.mark(id);
        self.pump();
        id
    }

    /// A session, for inspection or for calls the node does not wrap.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.peers
            .get(id.index())?
            .as_ref()
            .filter(|_| self.generations[id.index()] as u64 == id.0 >> 32)
            .map(|p| &p.session)
    }

    fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        if self.generations.get(id.index()).copied()? as u64 != id.0 >> 32 {
            return None;
        }
        let peer = self.peers.get_mut(id.index())?.as_mut()?;
        if !peer.dirty {
            peer.dirty = true;
            self.dirty.push(id);
        }
        Some(&mut peer.session)
    }

    fn mark(&mut self, id: SessionId) {
        let _ = self.session_mut(id);
    }

    /// Feeds a transport event of one session.
    pub fn handle(&mut self, session: SessionId, now: Instant, event: TransportEvent) {
        self.now = self.now.max(now);
        let now = self.now;
        if let Some(s) = self.session_mut(session) {
            s.handle(now, event);
        }
        self.pump();
    }

    /// The next command for one of the sessions' transports.
    pub fn poll_command(&mut self) -> Option<(SessionId, Command)> {
        self.commands.pop_front()
    }

    /// The next node event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// See [`Session::send_chunks`].
    pub fn send_chunks(&self, session: SessionId, id: StreamId) -> Option<(&[Bytes], bool)> {
        self.session(session)?.send_chunks(id)
    }

    /// See [`Session::advance_send`].
    pub fn advance_send(&mut self, session: SessionId, id: StreamId, bytes: usize, fin: bool) {
        if let Some(s) = self.session_mut(session) {
            s.advance_send(id, bytes, fin);
        }
        self.pump();
    }

    /// See [`Session::recv_credit`].
    pub fn recv_credit(&self, session: SessionId, id: StreamId) -> usize {
        self.session(session).map_or(0, |s| s.recv_credit(id))
    }

    /// When [`Node::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.peers.iter().flatten().filter_map(|p| p.session.poll_timeout());
        let lingers = self.tracks.iter().flatten().filter_map(|t| t.linger_until);
        sessions.chain(lingers).min()
    }

    /// Runs timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        let due: Vec<SessionId> = (0..self.peers.len())
            .filter_map(|i| {
                let p = self.peers[i].as_ref()?;
                p.session.poll_timeout().filter(|t| *t <= now).map(|_| SessionId::new(i as u32, self.generations[i]))
            })
            .collect();
        for id in due {
            if let Some(s) = self.session_mut(id) {
                s.handle_timeout(now);
            }
        }
        let expired: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| self.tracks[i].as_ref().is_some_and(|t| t.linger_until.is_some_and(|l| l <= now)))
            .collect();
        for idx in expired {
            self.release_track(idx);
        }
        self.pump();
    }

    /// Closes one session.
    pub fn close_session(&mut self, session: SessionId, code: u64, reason: &str) {
        if let Some(s) = self.session_mut(session) {
            s.close(code, reason);
        }
        self.pump();
    }

    /// Sends GOAWAY (with an optional next URI) on every session that supports it.
    pub fn goaway_all(&mut self, uri: &str) {
        let ids = self.session_ids();
        for id in ids {
            if let Some(s) = self.session_mut(id) {
                let _ = s.goaway(uri);
            }
        }
        self.pump();
    }

    /// Every open session.
    pub fn session_ids(&self) -> Vec<SessionId> {
        (0..self.peers.len())
            .filter(|&i| self.peers[i].is_some())
            .map(|i| SessionId::new(i as u32, self.generations[i]))
            .collect()
    }

    // ----- local publishing -----

    /// Publishes a broadcast from this node: every session hears of it.
    pub fn publish_broadcast(&mut self, path: Path) {
        let route = Route { source: Source::Local, hops: Hops::new(), cost: RouteCost::default() };
        if self.origin.add(&path, route) {
            self.propagate(&path);
        }
        self.pump();
    }

    /// Ends a local broadcast and its tracks.
    pub fn unpublish_broadcast(&mut self, path: &Path) {
        let tracks: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| self.tracks[i].as_ref().is_some_and(|t| t.upstream == Upstream::Local && t.path == *path))
            .collect();
        for idx in tracks {
            self.end_track(idx, None);
        }
        if self.origin.remove(path, Source::Local) {
            self.propagate(path);
        }
        self.pump();
    }

    /// Creates a track in a local broadcast.
    pub fn publish_track(&mut self, path: Path, name: &str, info: TrackInfo) -> TrackId {
        let key = (path.clone(), name.to_string());
        if let Some(&idx) = self.track_index.get(&key) {
            return TrackId(idx);
        }
        let idx = self.insert_track(TrackState {
            path,
            name: name.to_string(),
            upstream: Upstream::Local,
            downstreams: Vec::new(),
            cache: GroupCache::default(),
            linger_until: None,
            aggregated: SubscribeParams::default(),
            info: Some(info),
        });
        TrackId(idx)
    }

    /// Starts a group on a local track.
    pub fn publish_group(&mut self, track: TrackId, sequence: u64) {
        self.group_started(track.0, sequence);
        self.pump();
    }

    /// Writes a frame to a group of a local track.
    pub fn publish_frame(&mut self, track: TrackId, sequence: u64, timestamp: u64, payload: Bytes) {
        self.group_frame(track.0, sequence, timestamp, payload);
        self.pump();
    }

    /// Ends a group of a local track.
    pub fn publish_group_end(&mut self, track: TrackId, sequence: u64) {
        self.group_ended(track.0, sequence, None);
        self.pump();
    }

    // ----- event pump -----

    /// Handles every session's events and collects their commands, until nothing moves.
    fn pump(&mut self) {
        while let Some(id) = self.dirty.pop() {
            loop {
                let Some(peer) = self.peers.get_mut(id.index()).and_then(|p| p.as_mut()) else { break };
                let Some(event) = peer.session.poll_event() else { break };
                self.on_event(id, event);
            }
            let Some(peer) = self.peers.get_mut(id.index()).and_then(|p| p.as_mut()) else { continue };
            peer.dirty = false;
            while let Some(cmd) = peer.session.poll_command() {
                self.commands.push_back((id, cmd));
            }
            if peer.session.is_closed() {
                self.peers[id.index()] = None;
                self.generations[id.index()] += 1;
                self.free.push(id.index() as u32);
            }
        }
    }

    fn on_event(&mut self, sid: SessionId, event: Event) {
        match event {
            Event::Announced { path, hops, cost, .. } => self.on_announced(sid, path, hops, cost),
            Event::Unannounced { path, .. } => {
                if self.origin.remove(&path, Source::Session(sid)) {
                    self.propagate(&path);
                }
            }
            Event::SubscribeRequest { stream, subscribe } => self.on_subscribe(sid, stream, subscribe),
            Event::SubscribeUpdated { stream, update } => {
                if let Some(&idx) = self.downstreams.get(&(sid, stream)) {
                    if let Some(d) =
                        self.track_mut(idx).downstreams.iter_mut().find(|d| d.session == sid && d.stream == stream)
                    {
                        d.params.priority = update.priority;
                        d.params.ordered = update.ordered;
                        d.params.max_latency = update.max_latency;
                        d.params.end_group = update.end_group;
                    }
                    self.reaggregate(idx);
                }
            }
            Event::SubscribeCancelled { stream, .. } => self.remove_downstream(sid, stream),
            Event::GroupStarted { subscription, sequence, .. } => {
                if let Some(&idx) = self.upstreams.get(&(sid, subscription)) {
                    self.group_started(idx, sequence);
                }
            }
            Event::Frame { subscription, sequence, timestamp, payload, .. } => {
                if let Some(&idx) = self.upstreams.get(&(sid, subscription)) {
                    self.group_frame(idx, sequence, timestamp.unwrap_or(0), payload);
                }
            }
            Event::GroupEnded { subscription, sequence, code, .. } => {
                if let Some(&idx) = self.upstreams.get(&(sid, subscription)) {
                    self.group_ended(idx, sequence, code);
                }
            }
            Event::Datagram { subscription, sequence, timestamp, payload } => {
                if let Some(&idx) = self.upstreams.get(&(sid, subscription)) {
                    self.group_started(idx, sequence);
                    self.group_frame(idx, sequence, timestamp, payload);
                    self.group_ended(idx, sequence, None);
                }
            }
            Event::SubscriptionEnded { id, code } => {
                if let Some(idx) = self.upstreams.remove(&(sid, id)) {
                    self.end_track(idx, code);
                }
            }
            Event::GroupDropped { stream, .. } => {
                self.stats.groups_dropped += 1;
                if let Some((idx, seq)) = self.downstream_groups.remove(&(sid, stream)) {
                    if let Some(d) = self.track_mut(idx).downstreams.iter_mut().find(|d| d.session == sid) {
                        d.groups.retain(|(s, g)| !(*s == seq && *g == stream));
                    }
                }
            }
            Event::FetchRequest { stream, fetch } => self.on_fetch(sid, stream, fetch),
            Event::FetchCancelled { stream, .. } => {
                for pending in self.fetches.values_mut() {
                    pending.waiters.retain(|w| *w != (sid, stream));
                }
            }
            Event::FetchFrame { stream, timestamp, payload } => {
                if let Some(key) = self.fetch_upstreams.get(&(sid, stream)) {
                    if let Some(p) = self.fetches.get_mut(key) {
                        p.frames.push(CachedFrame { timestamp: timestamp.unwrap_or(0), payload });
                    }
                }
            }
            Event::FetchEnded { stream, code } => self.on_fetch_ended(sid, stream, code),
            Event::TrackRequest { stream, track } => self.on_track_request(sid, stream, track.path, track.track),
            Event::TrackInfo { stream, info } => {
                if let Some(pending) = self.track_infos.remove(&(sid, stream)) {
                    for (ws, wstream) in pending.waiters {
                        if let Some(s) = self.session_mut(ws) {
                            let _ = s.track_reply(wstream, info);
                        }
                    }
                }
            }
            Event::TrackFailed { stream, code } => {
                if let Some(pending) = self.track_infos.remove(&(sid, stream)) {
                    for (ws, wstream) in pending.waiters {
                        if let Some(s) = self.session_mut(ws) {
                            let _ = s.track_reject(wstream, if code == 0 { stream_code::NOT_FOUND } else { code });
                        }
                    }
                }
            }
            Event::Goaway { uri } => self.events.push_back(NodeEvent::Goaway { session: sid, uri }),
            Event::Closed { code, reason } => self.remove_session(sid, code, reason),
            Event::PeerSetup(_)
            | Event::AnnounceSynced { .. }
            | Event::AnnounceInterestEnded { .. }
            | Event::AnnounceInterest { .. }
            | Event::AnnounceInterestCancelled { .. }
            | Event::SubscribeOk { .. }
            | Event::SubscribeStart { .. }
            | Event::SubscribeEnd { .. }
            | Event::GroupsDropped { .. }
            | Event::ProbeRequest { .. }
            | Event::ProbeTarget { .. }
            | Event::ProbeReport { .. }
            | Event::ProbeEnded { .. } => {}
        }
    }

    // ----- announcements -----

    fn on_announced(&mut self, sid: SessionId, path: Path, hops: Hops, cost: RouteCost) {
        let hop = self.config.hop_id;
        if (hop != 0 && hops.contains(&hop)) || hops.len() as u64 >= 32 {
            tracing::debug!(%path, "dropping a looped or too long route");
            if self.origin.remove(&path, Source::Session(sid)) {
                self.propagate(&path);
            }
            return;
        }
        // The link price (1 unless configured) is added to both halves of a lite-06 cost.
        let cost = RouteCost { warm: cost.warm.saturating_add(1), cold: cost.cold.saturating_add(1) };
        if self.origin.add(&path, Route { source: Source::Session(sid), hops, cost }) {
            self.propagate(&path);
        }
    }

    /// Tells every session the current best route to `path` (never one through itself).
    fn propagate(&mut self, path: &Path) {
        for id in self.session_ids() {
            self.advertise_to(id, path);
        }
    }

    fn advertise_to(&mut self, id: SessionId, path: &Path) {
        let route = self.origin.best(path, Some(id)).cloned();
        let Some(s) = self.session_mut(id) else { return };
        match route {
            Some(r) => {
                let _ = s.announce_route(path.clone(), r.hops, r.cost);
            }
            None => {
                let _ = s.unannounce(path);
            }
        }
    }

    // ----- tracks -----

    fn insert_track(&mut self, track: TrackState) -> usize {
        let key = (track.path.clone(), track.name.clone());
        let idx = match self.free_tracks.pop() {
            Some(i) => {
                self.tracks[i] = Some(track);
                i
            }
            None => {
                self.tracks.push(Some(track));
                self.tracks.len() - 1
            }
        };
        self.track_index.insert(key, idx);
        idx
    }

    fn track_mut(&mut self, idx: usize) -> &mut TrackState {
        self.tracks[idx].as_mut().expect("live track index")
    }

    fn on_subscribe(&mut self, sid: SessionId, stream: StreamId, sub: Subscribe) {
        let key = (sub.path.clone(), sub.track.clone());
        let idx = match self.track_index.get(&key) {
            Some(&idx) => idx,
            None => {
                if self.origin.is_local(&sub.path) {
                    return self.reject(sid, stream, stream_code::NOT_FOUND);
                }
                let Some(Route { source: Source::Session(up), .. }) = self.origin.best(&sub.path, Some(sid)).cloned()
                else {
                    return self.reject(sid, stream, stream_code::NOT_FOUND);
                };
                let params = SubscribeParams {
                    priority: sub.priority,
                    ordered: sub.ordered,
                    max_latency: sub.max_latency,
                    ..Default::default()
                };
                let Some(upstream) = self.session_mut(up) else {
                    return self.reject(sid, stream, stream_code::UNROUTABLE);
                };
                let Ok(id) = upstream.subscribe(sub.path.clone(), &sub.track, params) else {
                    return self.reject(sid, stream, stream_code::UNROUTABLE);
                };
                self.stats.upstream_subscribes += 1;
                let idx = self.insert_track(TrackState {
                    path: sub.path.clone(),
                    name: sub.track.clone(),
                    upstream: Upstream::Remote { session: up, id },
                    downstreams: Vec::new(),
                    cache: GroupCache::default(),
                    linger_until: None,
                    aggregated: params,
                    info: None,
                });
                self.upstreams.insert((up, id), idx);
                idx
            }
        };
        let publish = match self.track_mut(idx).info {
            Some(info) => {
                PublishParams { priority: info.priority, ordered: info.ordered, max_latency: info.max_latency }
            }
            None => PublishParams { priority: sub.priority, ..Default::default() },
        };
        let Some(s) = self.session_mut(sid) else { return };
        if s.accept_subscription(stream, publish).is_err() {
            return;
        }
        let params = SubscribeParams {
            priority: sub.priority,
            ordered: sub.ordered,
            max_latency: sub.max_latency,
            start_group: sub.start_group,
            end_group: sub.end_group,
            start_frame: sub.start_frame,
            end_frame: sub.end_frame,
        };
        let track = self.track_mut(idx);
        track.linger_until = None;
        track.downstreams.push(Downstream { session: sid, stream, params, groups: SmallVec::new() });
        self.downstreams.insert((sid, stream), idx);
        self.reaggregate(idx);
        self.late_join(idx, sid, stream);
    }

    fn reject(&mut self, sid: SessionId, stream: StreamId, code: u64) {
        if let Some(s) = self.session_mut(sid) {
            let _ = s.reject_subscription(stream, code);
        }
    }

    /// A new subscriber starts at the first frame of the current group.
    fn late_join(&mut self, idx: usize, sid: SessionId, stream: StreamId) {
        let track = self.tracks[idx].as_ref().expect("live track");
        let Some(latest) = track.cache.latest() else { return };
        if latest.aborted {
            return;
        }
        let Some(d) = track.downstreams.iter().find(|d| d.session == sid && d.stream == stream) else { return };
        if !d.wants(latest.sequence) {
            return;
        }
        let sequence = latest.sequence;
        let complete = latest.complete;
        let frames: SmallVec<[CachedFrame; 16]> = latest.frames.iter().cloned().collect();
        let Some(session) = self.session_mut(sid) else { return };
        let Ok(group) = session.open_group(stream, sequence) else { return };
        let mut ok = true;
        for f in &frames {
            if session.write_frame(group, f.timestamp, f.payload.clone()).is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            return;
        }
        self.stats.frames_out += frames.len() as u64;
        if complete {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.finish_group(group);
            }
        } else {
            self.downstream_groups.insert((sid, group), (idx, sequence));
            let track = self.track_mut(idx);
            if let Some(d) = track.downstreams.iter_mut().find(|d| d.session == sid && d.stream == stream) {
                d.groups.push((sequence, group));
            }
        }
    }

    /// Recomputes the upstream parameters from every downstream's.
    fn reaggregate(&mut self, idx: usize) {
        let track = self.track_mut(idx);
        let Upstream::Remote { session, id } = track.upstream else { return };
        if track.downstreams.is_empty() {
            return;
        }
        let agg = SubscribeParams {
            priority: track.downstreams.iter().map(|d| d.params.priority).max().unwrap_or(0),
            ordered: track.downstreams.iter().all(|d| d.params.ordered),
            max_latency: track.downstreams.iter().map(|d| d.params.max_latency).max().unwrap_or(0),
            ..Default::default()
        };
        if agg != track.aggregated {
            track.aggregated = agg;
            if let Some(s) = self.session_mut(session) {
                let _ = s.update_subscription(id, agg);
            }
        }
    }

    fn remove_downstream(&mut self, sid: SessionId, stream: StreamId) {
        let Some(idx) = self.downstreams.remove(&(sid, stream)) else { return };
        let linger = self.config.linger;
        let now = self.now;
        let track = self.track_mut(idx);
        let mut groups: SmallVec<[StreamId; 4]> = SmallVec::new();
        track.downstreams.retain(|d| {
            if d.session == sid && d.stream == stream {
                groups.extend(d.groups.iter().map(|(_, g)| *g));
                false
            } else {
                true
            }
        });
        let empty = track.downstreams.is_empty();
        let remote = matches!(track.upstream, Upstream::Remote { .. });
        if empty && remote {
            track.linger_until = Some(now + linger);
        }
        for g in groups {
            self.downstream_groups.remove(&(sid, g));
        }
        if !empty {
            self.reaggregate(idx);
        }
    }

    /// Drops an idle upstream subscription and its track.
    fn release_track(&mut self, idx: usize) {
        let track = self.track_mut(idx);
        track.linger_until = None;
        if !track.downstreams.is_empty() {
            return;
        }
        if let Upstream::Remote { session, id } = track.upstream {
            self.upstreams.remove(&(session, id));
            if let Some(s) = self.session_mut(session) {
                let _ = s.unsubscribe(id);
            }
        }
        self.drop_track(idx);
    }

    fn drop_track(&mut self, idx: usize) {
        let Some(track) = self.tracks[idx].take() else { return };
        let mut cache = track.cache;
        self.cache_bytes -= cache.clear();
        self.track_index.remove(&(track.path, track.name));
        self.free_tracks.push(idx);
    }

    /// The source of a track ended: `None` cleanly, `Some(code)` on error. Its subscribers end.
    fn end_track(&mut self, idx: usize, code: Option<u64>) {
        let Some(track) = self.tracks[idx].as_mut() else { return };
        let downstreams = std::mem::take(&mut track.downstreams);
        let upstream = track.upstream;
        for d in downstreams {
            self.downstreams.remove(&(d.session, d.stream));
            for (_, g) in &d.groups {
                self.downstream_groups.remove(&(d.session, *g));
            }
            let Some(s) = self.session_mut(d.session) else { continue };
            match code {
                None => {
                    for (_, g) in &d.groups {
                        let _ = s.finish_group(*g);
                    }
                    let _ = s.end_subscription(d.stream, None);
                }
                Some(_) => {
                    let _ = s.reject_subscription(d.stream, stream_code::UNROUTABLE);
                }
            }
        }
        if let Upstream::Remote { session, id } = upstream {
            self.upstreams.remove(&(session, id));
        }
        self.drop_track(idx);
    }

    fn group_started(&mut self, idx: usize, sequence: u64) {
        let now = self.now;
        let Some(track) = self.tracks[idx].as_mut() else { return };
        track.cache.start(sequence, now);
        for d in track.downstreams.iter_mut() {
            if !d.wants(sequence) || d.groups.iter().any(|(s, _)| *s == sequence) {
                continue;
            }
            let Some(peer) = self.peers.get_mut(d.session.index()).and_then(|p| p.as_mut()) else { continue };
            if let Ok(group) = peer.session.open_group(d.stream, sequence) {
                d.groups.push((sequence, group));
                self.downstream_groups.insert((d.session, group), (idx, sequence));
            }
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(d.session);
            }
        }
    }

    /// Caches a frame and queues a clone of it on every downstream group: the fan-out hot path.
    fn group_frame(&mut self, idx: usize, sequence: u64, timestamp: u64, payload: Bytes) {
        let Some(track) = self.tracks[idx].as_mut() else { return };
        let size = payload.len();
        self.stats.frames_in += 1;
        self.stats.bytes_in += size as u64;
        if track.cache.push(sequence, CachedFrame { timestamp, payload: payload.clone() }) {
            self.cache_bytes += size;
        }
        for d in track.downstreams.iter_mut() {
            let Some(&(_, group)) = d.groups.iter().find(|(s, _)| *s == sequence) else { continue };
            let Some(peer) = self.peers.get_mut(d.session.index()).and_then(|p| p.as_mut()) else { continue };
            if peer.session.write_frame(group, timestamp, payload.clone()).is_ok() {
                self.stats.frames_out += 1;
                self.stats.bytes_out += size as u64;
            } else {
                d.groups.retain(|(s, _)| *s != sequence);
                self.downstream_groups.remove(&(d.session, group));
            }
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(d.session);
            }
        }
    }

    fn group_ended(&mut self, idx: usize, sequence: u64, code: Option<u64>) {
        let now = self.now;
        let limits = self.config.cache;
        let Some(track) = self.tracks[idx].as_mut() else { return };
        track.cache.end(sequence, code.is_none());
        self.cache_bytes -= track.cache.trim(now, &limits);
        for d in track.downstreams.iter_mut() {
            let Some(pos) = d.groups.iter().position(|(s, _)| *s == sequence) else { continue };
            let (_, group) = d.groups.swap_remove(pos);
            self.downstream_groups.remove(&(d.session, group));
            let Some(peer) = self.peers.get_mut(d.session.index()).and_then(|p| p.as_mut()) else { continue };
            let _ = match code {
                None => peer.session.finish_group(group),
                Some(code) => peer.session.reset_group(group, code),
            };
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(d.session);
            }
        }
        self.enforce_cache_budget();
    }

    /// Evicts the oldest non-latest cached groups node-wide until the cache fits its budget.
    fn enforce_cache_budget(&mut self) {
        while self.cache_bytes > self.config.max_cache_bytes {
            let victim = (0..self.tracks.len())
                .filter_map(|i| Some((self.tracks[i].as_ref()?.cache.oldest_evictable()?, i)))
                .min()
                .map(|(_, i)| i);
            let Some(i) = victim else { break };
            let freed = self.track_mut(i).cache.evict_oldest();
            self.cache_bytes -= freed;
            if freed == 0 {
                break;
            }
        }
    }

    // ----- fetch and track info -----

    fn on_fetch(&mut self, sid: SessionId, stream: StreamId, fetch: Fetch) {
        let key = (fetch.path.clone(), fetch.track.clone(), fetch.group);
        // A hit: serve from the cache.
        let cached: Option<SmallVec<[CachedFrame; 16]>> = self
            .track_index
            .get(&(fetch.path.clone(), fetch.track.clone()))
            .and_then(|&i| self.tracks[i].as_ref())
            .and_then(|t| t.cache.get(fetch.group))
            .filter(|g| g.complete)
            .map(|g| g.frames.iter().skip(fetch.start_frame as usize).cloned().collect());
        if let Some(frames) = cached {
            return self.serve_fetch(
                sid,
                stream,
                &frames,
                fetch.end_frame.map(|e| e.saturating_sub(fetch.start_frame)),
            );
        }
        if let Some(pending) = self.fetches.get_mut(&key) {
            pending.waiters.push((sid, stream));
            return;
        }
        let Some(Route { source: Source::Session(up), .. }) = self.origin.best(&fetch.path, Some(sid)).cloned() else {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.fetch_reject(stream, stream_code::NOT_FOUND);
            }
            return;
        };
        let Some(upstream) = self.session_mut(up) else { return };
        match upstream.fetch(fetch.path.clone(), &fetch.track, fetch.priority, fetch.group) {
            Ok(ustream) => {
                self.stats.upstream_fetches += 1;
                self.fetch_upstreams.insert((up, ustream), key.clone());
                self.fetches.insert(key, PendingFetch { waiters: vec![(sid, stream)], frames: Vec::new() });
            }
            Err(_) => {
                if let Some(s) = self.session_mut(sid) {
                    let _ = s.fetch_reject(stream, stream_code::UNROUTABLE);
                }
            }
        }
    }

    fn serve_fetch(&mut self, sid: SessionId, stream: StreamId, frames: &[CachedFrame], limit: Option<u64>) {
        let Some(s) = self.session_mut(sid) else { return };
        let n = limit.map_or(frames.len(), |l| (l as usize + 1).min(frames.len()));
        for f in &frames[..n] {
            if s.fetch_frame(stream, f.timestamp, f.payload.clone()).is_err() {
                return;
            }
        }
        let _ = s.fetch_finish(stream);
    }

    fn on_fetch_ended(&mut self, sid: SessionId, stream: StreamId, code: Option<u64>) {
        let Some(key) = self.fetch_upstreams.remove(&(sid, stream)) else { return };
        let Some(pending) = self.fetches.remove(&key) else { return };
        match code {
            None => {
                for (ws, wstream) in &pending.waiters {
                    self.serve_fetch(*ws, *wstream, &pending.frames, None);
                }
                let now = self.now;
                if let Some(&idx) = self.track_index.get(&(key.0.clone(), key.1.clone())) {
                    let bytes: usize = pending.frames.iter().map(|f| f.payload.len()).sum();
                    let track = self.track_mut(idx);
                    if track.cache.get(key.2).is_none() {
                        track.cache.insert_complete(key.2, now, pending.frames);
                        self.cache_bytes += bytes;
                    }
                }
            }
            Some(code) => {
                for (ws, wstream) in pending.waiters {
                    if let Some(s) = self.session_mut(ws) {
                        let _ = s.fetch_reject(wstream, code);
                    }
                }
            }
        }
    }

    fn on_track_request(&mut self, sid: SessionId, stream: StreamId, path: Path, name: String) {
        let known = self.track_index.get(&(path.clone(), name.clone())).and_then(|&i| self.tracks[i].as_ref()?.info);
        if let Some(info) = known {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.track_reply(stream, info);
            }
            return;
        }
        let Some(Route { source: Source::Session(up), .. }) = self.origin.best(&path, Some(sid)).cloned() else {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.track_reject(stream, stream_code::NOT_FOUND);
            }
            return;
        };
        match self.session_mut(up).map(|s| s.track_info(path, &name)) {
            Some(Ok(ustream)) => {
                self.track_infos.entry((up, ustream)).or_default().waiters.push((sid, stream));
            }
            // A lite-03/04 upstream has no TRACK stream to ask: answer with the model defaults,
            // as moq-net does (its publisher properties arrive later, in SUBSCRIBE_OK).
            Some(Err(Error::Unsupported)) => {
                if let Some(s) = self.session_mut(sid) {
                    let _ = s.track_reply(stream, TrackInfo::default());
                }
            }
            _ => {
                if let Some(s) = self.session_mut(sid) {
                    let _ = s.track_reject(stream, stream_code::UNROUTABLE);
                }
            }
        }
    }

    // ----- churn -----

    /// A session ended: its routes leave the origin, the tracks it fed end, its subscriptions go.
    fn remove_session(&mut self, sid: SessionId, code: u64, reason: String) {
        for path in self.origin.remove_session(sid) {
            self.propagate(&path);
        }
        let fed: Vec<usize> = self.upstreams.iter().filter(|((s, _), _)| *s == sid).map(|(_, &i)| i).collect();
        for idx in fed {
            self.end_track(idx, Some(code));
        }
        let subs: Vec<StreamId> = self.downstreams.keys().filter(|(s, _)| *s == sid).map(|(_, st)| *st).collect();
        for stream in subs {
            self.remove_downstream(sid, stream);
        }
        self.downstream_groups.retain(|(s, _), _| *s != sid);
        let dead_fetches: Vec<FetchKey> =
            self.fetch_upstreams.iter().filter(|((s, _), _)| *s == sid).map(|(_, k)| k.clone()).collect();
        self.fetch_upstreams.retain(|(s, _), _| *s != sid);
        for key in dead_fetches {
            if let Some(p) = self.fetches.remove(&key) {
                for (ws, wstream) in p.waiters {
                    if let Some(s) = self.session_mut(ws) {
                        let _ = s.fetch_reject(wstream, stream_code::UNROUTABLE);
                    }
                }
            }
        }
        for p in self.fetches.values_mut() {
            p.waiters.retain(|(s, _)| *s != sid);
        }
        self.track_infos.retain(|(s, _), _| *s != sid);
        for p in self.track_infos.values_mut() {
            p.waiters.retain(|(s, _)| *s != sid);
        }
        self.events.push_back(NodeEvent::SessionClosed { session: sid, code, reason });
    }

    /// Unwraps the error of a call the node makes on a session for the caller.
    pub fn with_session<R>(&mut self, id: SessionId, f: impl FnOnce(&mut Session) -> R) -> Result<R, Error> {
        let s = self.session_mut(id).ok_or(Error::UnknownHandle)?;
        let r = f(s);
        self.pump();
        Ok(r)
    }
}
