//! The [`Node`] itself: its session table, the loop that turns each session's events into
//! routing decisions and collects their commands, and the node's timers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use super::announce::Watch;
use super::failover::Feed;
use super::fetch::{FetchKey, PendingFetch};
use super::track::{Subscriber, TrackState};
use super::{FetchRequestId, NodeConfig, NodeEvent, NodeStats, SessionId, TrackId, WatchId};
use crate::message::Probe;
use crate::path::Path;
use crate::session::{
    session_code, stream_code, Command, Config, Error, Event, FetchId, InterestId, ProbeId, Session, SessionStats,
    SubscriptionId, TrackRequestId, TransportEvent,
};
use crate::timer::Timers;

/// What a node timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum NodeTimer {
    /// A session's own timers.
    Session(SessionId),
    /// An upstream subscription lingering without subscribers (track index).
    Linger(usize),
    /// Subscriptions waiting for a local broadcast to create a track (track request counter).
    TrackRequest(u64),
    /// A pending fetch (its id).
    Fetch(u64),
    /// A pending upstream TRACK request.
    TrackInfo(SessionId, TrackRequestId),
    /// A session waiting for its access must get it by now.
    Admission(SessionId),
    /// A session's access ends.
    Expiry(SessionId),
    /// A track waiting for a route (track index).
    Dangling(usize),
    /// A migrating track's refused candidate, to try again (track index).
    Candidate(usize),
    /// Paths held down for lack of a feasible route are released.
    HoldDown,
}

/// One session of the node.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) session: Session,
    pub(super) dirty: bool,
    /// The transport's round-trip time, for probe reports.
    pub(super) rtt: Duration,
    /// Interests the node opened on this session for local watches.
    pub(super) interests: FxHashMap<InterestId, WatchId>,
    /// Probes the application opened on this session.
    pub(super) probes: FxHashSet<ProbeId>,
    /// The session's undecoded receive bytes, as last counted in the node's total.
    recv_counted: usize,
    /// The deadline last armed for the session's timers.
    timer: Option<Instant>,
    /// Listed in the node's `ready` queue.
    ready: bool,
    /// What the session may do, with its paths relative to its connect path (`None`: unscoped
    /// and unrestricted).
    pub(super) access: Option<crate::access::Access>,
    /// When its access ends.
    pub(super) deadline: Option<Instant>,
    /// Waiting for [`Node::set_access`]: its events stay queued in the session.
    pub(super) pending: bool,
    /// [`NodeEvent::AwaitingAccess`] was reported.
    pub(super) setup_reported: bool,
    /// The peer sent GOAWAY: its routes cost the most, and tracks move off it.
    pub(super) going_away: bool,
}

/// A relay node (or a client with one session). See the module docs.
#[derive(Debug)]
pub struct Node {
    pub(super) config: NodeConfig,
    pub(super) now: Instant,
    pub(super) peers: Vec<Option<Peer>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    pub(super) dirty: Vec<SessionId>,
    pub(super) origin: super::Origin,
    pub(super) tracks: Vec<Option<TrackState>>,
    pub(super) free_tracks: Vec<usize>,
    pub(super) track_index: FxHashMap<(Path, String), usize>,
    /// Tracks by broadcast (for route changes).
    pub(super) tracks_by_path: FxHashMap<Path, smallvec::SmallVec<[usize; 2]>>,
    /// Local tracks → track index.
    pub(super) local_tracks: FxHashMap<TrackId, usize>,
    /// (upstream session, our subscription) → track, and what the subscription is to it.
    pub(super) upstreams: FxHashMap<(SessionId, SubscriptionId), (usize, Feed)>,
    /// Where local subscriptions without an announced route go (a client's relay session).
    pub(super) default_upstream: Option<SessionId>,
    /// Tracks waiting for a route.
    pub(super) dangling: Vec<usize>,
    /// Every subscriber → its track.
    pub(super) downstreams: FxHashMap<Subscriber, usize>,
    /// (downstream session, group stream) → (track, sequence).
    pub(super) downstream_groups: FxHashMap<(SessionId, crate::session::GroupId), (usize, u64)>,
    /// Subscriptions waiting for a local track to be created, by (path, track).
    pub(super) waiting: FxHashMap<(Path, String), super::track::Waiting>,
    pub(super) watches: FxHashMap<WatchId, Watch>,
    pub(super) fetches: FxHashMap<FetchKey, PendingFetch>,
    /// (upstream session, our fetch) → what it fetches.
    pub(super) fetch_upstreams: FxHashMap<(SessionId, FetchId), FetchKey>,
    /// Fetches the application serves → what they fetch.
    pub(super) fetch_requests: FxHashMap<FetchRequestId, FetchKey>,
    /// (upstream session, our TRACK request) → the requests waiting for its answer.
    pub(super) track_infos: FxHashMap<(SessionId, TrackRequestId), Vec<(SessionId, TrackRequestId)>>,
    pub(super) timers: Timers<NodeTimer>,
    /// Sessions that may have commands for the driver, in the order they got them.
    ready: VecDeque<SessionId>,
    /// The last commands of sessions that closed (their close among them).
    last_words: VecDeque<(SessionId, Command)>,
    pub(super) events: VecDeque<NodeEvent>,
    pub(super) cache_bytes: usize,
    pub(super) stats: NodeStats,
    /// Undecoded receive bytes across sessions, and the sessions waiting for some.
    recv_total: usize,
    recv_waiting: FxHashSet<SessionId>,
    /// Limits hit by sessions that have closed.
    closed_stats: SessionStats,
    next_handle: u64,
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
            origin: super::Origin::default(),
            tracks: Vec::new(),
            free_tracks: Vec::new(),
            track_index: FxHashMap::default(),
            tracks_by_path: FxHashMap::default(),
            local_tracks: FxHashMap::default(),
            upstreams: FxHashMap::default(),
            default_upstream: None,
            dangling: Vec::new(),
            downstreams: FxHashMap::default(),
            downstream_groups: FxHashMap::default(),
            waiting: FxHashMap::default(),
            watches: FxHashMap::default(),
            fetches: FxHashMap::default(),
            fetch_upstreams: FxHashMap::default(),
            fetch_requests: FxHashMap::default(),
            track_infos: FxHashMap::default(),
            timers: Timers::new(),
            ready: VecDeque::new(),
            last_words: VecDeque::new(),
            events: VecDeque::new(),
            cache_bytes: 0,
            stats: NodeStats::default(),
            recv_total: 0,
            recv_waiting: FxHashSet::default(),
            closed_stats: SessionStats::default(),
            next_handle: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Counters (this walks the sessions: call it for metrics, not per event).
    pub fn stats(&self) -> NodeStats {
        let mut s = self.stats;
        s.sessions = self.peers.iter().flatten().count();
        s.subscriptions = self.downstreams.len();
        s.upstream_subscriptions = self.upstreams.len();
        s.session_limits = self.closed_stats;
        for peer in self.peers.iter().flatten() {
            s.session_limits += peer.session.stats();
        }
        s
    }

    /// Subscriptions one session takes part in: (served to it, held upstream on it). Walks every
    /// subscription: for metrics (a relay leaves its internal links out of its figures).
    pub fn session_subscriptions(&self, session: SessionId) -> (usize, usize) {
        let served =
            self.downstreams.keys().filter(|s| matches!(s, Subscriber::Session(id, _) if *id == session)).count();
        let held = self.upstreams.keys().filter(|(id, _)| *id == session).count();
        (served, held)
    }

    /// Undecoded receive bytes held across sessions.
    pub fn recv_buffered(&self) -> usize {
        self.recv_total
    }

    /// The origin table.
    pub fn origin(&self) -> &super::Origin {
        &self.origin
    }

    /// Bytes held in group caches.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// A fresh number for a local handle.
    pub(super) fn next_handle(&mut self) -> u64 {
        let n = self.next_handle;
        self.next_handle += 1;
        n
    }

    /// Adds a session for a new connection. The node uses its own hop id in `config`, asks for
    /// every announcement of the peer if the node discovers, and announces every route it knows.
    /// When the node requires access ([`NodeConfig::require_access`](super::NodeConfig)), the
    /// session first waits for [`Node::set_access`].
    pub fn add_session(&mut self, config: Config, now: Instant) -> SessionId {
        let pending = self.config.require_access;
        self.add_peer(config, now, pending)
    }

    pub(super) fn add_peer(&mut self, mut config: Config, now: Instant, pending: bool) -> SessionId {
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
        if self.config.discover && !pending {
            let _ = session.announce_interest(Path::root());
        }
        self.peers[index as usize] = Some(Peer {
            session,
            dirty: false,
            rtt: Duration::ZERO,
            interests: FxHashMap::default(),
            probes: FxHashSet::default(),
            recv_counted: 0,
            timer: None,
            ready: false,
            access: None,
            deadline: None,
            pending,
            setup_reported: false,
            going_away: false,
        });
        if pending {
            if let Some(at) = self.now.checked_add(self.config.admission_timeout) {
                self.timers.arm(NodeTimer::Admission(id), at);
            }
        } else {
            let paths: Vec<Path> = self.origin.paths().cloned().collect();
            for path in paths {
                self.advertise_to(id, &path);
            }
        }
        self.mark(id);
        self.pump();
        id
    }

    /// A session, for inspection.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.peer(id).map(|p| &p.session)
    }

    pub(super) fn peer(&self, id: SessionId) -> Option<&Peer> {
        if self.generations.get(id.index()).copied()? != id.generation() {
            return None;
        }
        self.peers.get(id.index())?.as_ref()
    }

    /// A session for a call; it is marked so the node collects what the call produced.
    pub(super) fn peer_mut(&mut self, id: SessionId) -> Option<&mut Peer> {
        if self.generations.get(id.index()).copied()? != id.generation() {
            return None;
        }
        let peer = self.peers.get_mut(id.index())?.as_mut()?;
        if !peer.dirty {
            peer.dirty = true;
            self.dirty.push(id);
        }
        Some(peer)
    }

    pub(super) fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.peer_mut(id).map(|p| &mut p.session)
    }

    pub(super) fn mark(&mut self, id: SessionId) {
        let _ = self.session_mut(id);
    }

    /// Feeds a transport event of one session.
    pub fn handle(&mut self, session: SessionId, now: Instant, event: TransportEvent) {
        self.now = self.now.max(now);
        let now = self.now;
        let budget = self.config.max_recv_buffered;
        let total = self.recv_total;
        if let Some(peer) = self.peer_mut(session) {
            // The session may use what the others leave of the node's budget.
            peer.session.set_recv_allowance(budget.saturating_sub(total - peer.recv_counted));
            peer.session.handle(now, event);
        }
        self.pump();
    }

    /// Re-shares the node's receive budget with the sessions waiting for it, once an eighth of
    /// the budget is free.
    fn resume_reads(&mut self) {
        let budget = self.config.max_recv_buffered;
        if self.recv_waiting.is_empty() || budget - self.recv_total.min(budget) < budget / 8 {
            return;
        }
        for sid in std::mem::take(&mut self.recv_waiting) {
            let Some(counted) = self.peer(sid).map(|p| p.recv_counted) else { continue };
            let share = budget.saturating_sub(self.recv_total - counted);
            if let Some(s) = self.session_mut(sid) {
                s.set_recv_allowance(share);
            }
        }
    }

    /// The next command for one of the sessions' transports. Commands are taken from the
    /// sessions as they are polled, so a session's writes carry everything queued until then.
    pub fn poll_command(&mut self) -> Option<(SessionId, Command)> {
        if let Some(last) = self.last_words.pop_front() {
            return Some(last);
        }
        loop {
            let id = *self.ready.front()?;
            let peer = self.peers.get_mut(id.index()).and_then(|p| p.as_mut());
            match peer {
                Some(peer) if self.generations[id.index()] == id.generation() => {
                    if let Some(cmd) = peer.session.poll_command() {
                        return Some((id, cmd));
                    }
                    peer.ready = false;
                }
                _ => {}
            }
            self.ready.pop_front();
        }
    }

    /// The next node event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] should next run (possibly early: harmless).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                NodeTimer::Session(id) => {
                    if let Some(peer) = self.peer_mut(id) {
                        peer.timer = None;
                        peer.session.handle_timeout(now);
                    }
                }
                NodeTimer::Linger(idx) => self.linger_expired(idx),
                NodeTimer::TrackRequest(n) => self.track_request_expired(n),
                NodeTimer::Fetch(id) => self.fetch_expired(id),
                NodeTimer::TrackInfo(sid, request) => self.track_info_expired(sid, request),
                NodeTimer::Admission(sid) => self.admission_expired(sid),
                NodeTimer::Expiry(sid) => self.access_expired(sid),
                NodeTimer::Dangling(idx) => self.dangling_expired(idx),
                NodeTimer::Candidate(idx) => self.candidate_retry(idx),
                NodeTimer::HoldDown => self.hold_down_expired(),
            }
        }
        self.pump();
    }

    /// Records a session's round-trip time (for the probe reports the node sends).
    pub fn set_rtt(&mut self, session: SessionId, rtt: Duration) {
        if let Some(p) = self.peers.get_mut(session.index()).and_then(|p| p.as_mut()) {
            p.rtt = rtt;
        }
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
        for id in self.session_ids() {
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

    /// Opens a probe on a session; reports arrive as [`NodeEvent::ProbeReport`].
    pub fn probe(&mut self, session: SessionId, target: Option<u64>) -> Result<ProbeId, Error> {
        let peer = self.peer_mut(session).ok_or(Error::Closed)?;
        let probe = peer.session.probe(target)?;
        peer.probes.insert(probe);
        self.pump();
        Ok(probe)
    }

    /// Ends a probe the application opened.
    pub fn probe_close(&mut self, session: SessionId, probe: ProbeId) {
        if let Some(peer) = self.peer_mut(session) {
            if peer.probes.remove(&probe) {
                let _ = peer.session.probe_close(probe);
            }
        }
        self.pump();
    }

    /// Runs a call on one session that the node does not wrap, and collects what it produced.
    pub fn with_session<R>(&mut self, id: SessionId, f: impl FnOnce(&mut Session) -> R) -> Result<R, Error> {
        let s = self.session_mut(id).ok_or(Error::UnknownHandle)?;
        let r = f(s);
        self.pump();
        Ok(r)
    }

    // ----- the event loop -----

    /// Handles every session's events and collects their commands, until nothing moves.
    pub(super) fn pump(&mut self) {
        let mut freed = false;
        while let Some(id) = self.dirty.pop() {
            while let Some(event) = self.next_event(id) {
                self.on_event(id, event);
            }
            let Some(peer) = self.peers.get_mut(id.index()).and_then(|p| p.as_mut()) else { continue };
            peer.dirty = false;
            if !peer.ready && peer.session.has_commands() {
                peer.ready = true;
                self.ready.push_back(id);
            }
            let held = peer.session.recv_buffered();
            freed |= held < peer.recv_counted;
            self.recv_total = self.recv_total + held - peer.recv_counted;
            peer.recv_counted = held;
            if peer.session.reads_deferred() && self.recv_waiting.insert(id) {
                self.stats.limits.recv_budget_exhausted += 1;
            }
            if peer.session.is_closed() {
                while let Some(cmd) = peer.session.poll_command() {
                    self.last_words.push_back((id, cmd));
                }
                self.closed_stats += peer.session.stats();
                self.recv_total -= peer.recv_counted;
                self.recv_waiting.remove(&id);
                self.peers[id.index()] = None;
                self.generations[id.index()] += 1;
                self.free.push(id.index() as u32);
                self.timers.disarm(NodeTimer::Session(id));
                self.timers.disarm(NodeTimer::Admission(id));
                self.timers.disarm(NodeTimer::Expiry(id));
                freed = true;
            } else if let Some(at) = peer.session.poll_timeout() {
                if peer.timer.is_none_or(|armed| at < armed) {
                    peer.timer = Some(at);
                    self.timers.arm(NodeTimer::Session(id), at);
                }
            }
        }
        if freed {
            self.resume_reads();
            if !self.dirty.is_empty() {
                self.pump();
            }
        }
    }

    fn on_event(&mut self, sid: SessionId, event: Event) {
        match event {
            Event::Announced { path, hops, cost, .. } => self.on_announced(sid, path, hops, cost),
            Event::Unannounced { path, .. } => self.on_unannounced(sid, &path),
            Event::AnnounceInterestEnded { interest, code } => self.on_interest_ended(sid, interest, code),
            Event::SubscribeRequest { publication, subscribe } => self.on_subscribe(sid, publication, subscribe),
            Event::SubscribeUpdated { publication, update } => self.on_subscribe_updated(sid, publication, update),
            Event::SubscribeCancelled { publication, .. } => {
                self.remove_downstream(Subscriber::Session(sid, publication))
            }
            Event::GroupStarted { subscription, sequence, .. } => {
                if let Some(&(idx, feed)) = self.upstreams.get(&(sid, subscription)) {
                    if self.accept_group(idx, sid, feed, sequence) {
                        self.group_started(idx, sequence);
                    }
                }
            }
            Event::Frame { group, subscription, sequence, timestamp, payload } => {
                if let Some(&(idx, _)) = self.upstreams.get(&(sid, subscription)) {
                    if self.feeds(idx, sid, sequence) {
                        self.group_frame(idx, Some((sid, group)), sequence, timestamp.unwrap_or(0), payload);
                    }
                }
            }
            Event::GroupEnded { subscription, sequence, code, .. } => {
                if let Some(&(idx, _)) = self.upstreams.get(&(sid, subscription)) {
                    if self.feeds(idx, sid, sequence) {
                        self.group_ended(idx, sequence, code);
                        self.group_fed(idx, sid, sequence);
                    }
                }
            }
            Event::Datagram { subscription, sequence, timestamp, payload } => {
                if let Some(&(idx, feed)) = self.upstreams.get(&(sid, subscription)) {
                    if self.accept_group(idx, sid, feed, sequence) {
                        self.group_started(idx, sequence);
                        self.group_frame(idx, None, sequence, timestamp, payload);
                        self.group_ended(idx, sequence, None);
                        self.group_fed(idx, sid, sequence);
                    }
                }
            }
            Event::SubscriptionEnded { subscription, code } => {
                if let Some((idx, feed)) = self.upstreams.remove(&(sid, subscription)) {
                    // On a closing session the code is the session's: the route is lost.
                    let lost = self.session(sid).is_some_and(Session::is_closed);
                    let code = match code {
                        Some(c) if lost && c == session_code::NO_ERROR => Some(stream_code::GOING_AWAY),
                        Some(_) if lost => Some(stream_code::UNROUTABLE),
                        code => code,
                    };
                    self.upstream_ended(idx, sid, feed, code, lost);
                }
            }
            Event::GroupDropped { group, .. } => self.on_group_dropped(sid, group),
            Event::FetchRequest { fetch, request } => {
                self.on_fetch(super::fetch::Requester::Session(sid, fetch), request)
            }
            Event::FetchCancelled { fetch, .. } => self.on_fetch_cancelled(sid, fetch),
            Event::FetchFrame { fetch, timestamp, payload } => {
                self.on_upstream_fetch_frame(sid, fetch, timestamp, payload)
            }
            Event::FetchEnded { fetch, code } => self.on_upstream_fetch_ended(sid, fetch, code),
            Event::TrackRequest { request, track } => self.on_track_request(sid, request, track.path, track.track),
            Event::TrackInfo { request, info } => self.on_track_info(sid, request, Ok(info)),
            Event::TrackFailed { request, code } => self.on_track_info(sid, request, Err(code)),
            Event::ProbeRequest { probe } | Event::ProbeTarget { probe, .. } => {
                let Some(peer) = self.peer_mut(sid) else { return };
                let rtt_ms = peer.rtt.as_millis().min(u128::from(u64::MAX)) as u64;
                let _ = peer.session.probe_report(probe, Probe { bitrate: 0, rtt_ms });
            }
            Event::ProbeReport { probe, report } => {
                if self.peer(sid).is_some_and(|p| p.probes.contains(&probe)) {
                    self.events.push_back(NodeEvent::ProbeReport { session: sid, probe, report });
                }
            }
            Event::ProbeEnded { probe, code } => {
                if self.peer_mut(sid).is_some_and(|p| p.probes.remove(&probe)) {
                    self.events.push_back(NodeEvent::ProbeEnded { session: sid, probe, code });
                }
            }
            Event::PeerSetup(setup) => {
                self.reprice(sid, &setup);
                self.events.push_back(NodeEvent::PeerSetup { session: sid, setup });
            }
            Event::Goaway { uri } => {
                self.on_peer_goaway(sid);
                self.events.push_back(NodeEvent::Goaway { session: sid, uri });
            }
            Event::Closed { code, reason } => self.remove_session(sid, code, reason),
            Event::AnnounceInterest { prefix, .. } => self.on_announce_interest(sid, &prefix),
            Event::AnnounceSynced { .. }
            | Event::AnnounceInterestCancelled { .. }
            | Event::SubscribeOk { .. }
            | Event::SubscribeStart { .. }
            | Event::SubscribeEnd { .. }
            | Event::GroupsDropped { .. } => {}
        }
    }

    /// A session ended: its routes leave the origin, the tracks it fed end, its subscriptions
    /// and requests go.
    fn remove_session(&mut self, sid: SessionId, code: u64, reason: String) {
        for path in self.origin.remove_session(sid) {
            self.propagate(&path);
        }
        // The tracks it fed switch to another route (or wait for one).
        let fed: Vec<((SessionId, SubscriptionId), (usize, Feed))> =
            self.upstreams.iter().filter(|((s, _), _)| *s == sid).map(|(k, v)| (*k, *v)).collect();
        for (key, (idx, feed)) in fed {
            self.upstreams.remove(&key);
            self.upstream_ended(idx, sid, feed, Some(stream_code::UNROUTABLE), true);
        }
        if self.default_upstream == Some(sid) {
            self.default_upstream = None;
        }
        let subs: Vec<Subscriber> =
            self.downstreams.keys().filter(|d| matches!(d, Subscriber::Session(s, _) if *s == sid)).copied().collect();
        for sub in subs {
            self.remove_downstream(sub);
        }
        for w in self.waiting.values_mut() {
            w.subscribers.retain(|(s, _)| !matches!(s, Subscriber::Session(x, _) if *x == sid));
        }
        self.fetch_session_gone(sid);
        if let Some(peer) = self.peers.get(sid.index()).and_then(|p| p.as_ref()) {
            let watches: Vec<WatchId> = peer.interests.values().copied().collect();
            for w in watches {
                self.detach_watch(w, sid, Some(code), true);
            }
        }
        self.events.push_back(NodeEvent::SessionClosed { session: sid, code, reason });
    }
}
