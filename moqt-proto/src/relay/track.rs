//! Tracks through the node: who subscribes (sessions or the local application), where the track
//! comes from (a local publisher or one shared upstream subscription), the aggregated upstream
//! parameters, the linger after the last subscriber, subscriptions waiting for a local track to be
//! created, and how a track ends.

use std::time::Instant;

use smallvec::SmallVec;

use super::access::Ask;
use super::cache::GroupCache;
use super::failover::{Feed, Switching};
use super::node::{Node, NodeTimer};
use super::{LocalSubscriptionId, NodeEvent, Route, SessionId, Source, TrackId};
use crate::message::{Subscribe, SubscribeUpdate, TrackInfo};
use crate::path::Path;
use crate::session::{stream_code, Error, GroupId, PublicationId, PublishParams, SubscribeParams, SubscriptionId};

/// Who receives a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Subscriber {
    /// A session's subscription.
    Session(SessionId, PublicationId),
    /// The local application.
    Local(LocalSubscriptionId),
}

/// One group being delivered to one subscriber.
#[derive(Debug, Clone, Copy)]
pub(super) struct DownGroup {
    pub(super) sequence: u64,
    /// The group stream, for session subscribers.
    pub(super) stream: Option<GroupId>,
    /// The index within the group of the next frame to arrive.
    pub(super) next_frame: u64,
}

/// One subscriber of a track.
#[derive(Debug)]
pub(super) struct Downstream {
    pub(super) subscriber: Subscriber,
    pub(super) params: SubscribeParams,
    /// Open groups.
    pub(super) groups: SmallVec<[DownGroup; 4]>,
}

impl Downstream {
    /// Whether group `sequence` is within the subscription's group bounds.
    pub(super) fn wants(&self, sequence: u64) -> bool {
        self.params.start_group.is_none_or(|s| sequence >= s) && !self.past_end(sequence)
    }

    /// Whether group `sequence` is past the subscription's last group.
    pub(super) fn past_end(&self, sequence: u64) -> bool {
        self.params.end_group.is_some_and(|e| sequence > e)
    }

    /// The first frame wanted of group `sequence` (lite-06 `start_frame` of the start group).
    pub(super) fn first_frame(&self, sequence: u64) -> u64 {
        if self.params.start_group == Some(sequence) {
            self.params.start_frame
        } else {
            0
        }
    }

    /// The last frame wanted of group `sequence` (lite-06 `end_frame` of the end group).
    pub(super) fn last_frame(&self, sequence: u64) -> Option<u64> {
        if self.params.end_group == Some(sequence) {
            self.params.end_frame
        } else {
            None
        }
    }
}

/// Where a track comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upstream {
    /// The local application publishes it.
    Local(TrackId),
    /// One subscription on a session.
    Remote { session: SessionId, subscription: SubscriptionId },
    /// The upstream was lost; waiting for a route (see `failover`).
    Dangling,
}

/// One track being served.
#[derive(Debug)]
pub(super) struct TrackState {
    pub(super) path: Path,
    pub(super) name: String,
    pub(super) upstream: Upstream,
    pub(super) downstreams: Vec<Downstream>,
    pub(super) cache: GroupCache,
    /// When to release the upstream (no downstream left).
    pub(super) linger_until: Option<Instant>,
    /// The parameters last sent upstream.
    pub(super) aggregated: SubscribeParams,
    pub(super) info: Option<TrackInfo>,
    /// The session the local application asked to route through, if any.
    pub(super) via: Option<SessionId>,
    /// Who feeds which group, and a switch in progress.
    pub(super) switching: Switching,
    /// While dangling: when the subscribers give up.
    pub(super) dangling_until: Option<Instant>,
}

/// Subscriptions waiting for a local broadcast to create one track.
#[derive(Debug)]
pub(super) struct Waiting {
    /// The timer key of the request.
    request: u64,
    pub(super) subscribers: Vec<(Subscriber, SubscribeParams)>,
}

impl Node {
    // ----- the application's tracks -----

    /// Creates a track in a local broadcast (or returns the existing one). Subscriptions waiting
    /// for it are accepted.
    pub fn publish_track(&mut self, path: Path, name: &str, info: TrackInfo) -> TrackId {
        let key = (path.clone(), name.to_string());
        if let Some(&idx) = self.track_index.get(&key) {
            match self.track(idx).upstream {
                Upstream::Local(id) => return id,
                // A local publisher takes over from a remote source.
                Upstream::Remote { .. } | Upstream::Dangling => self.end_track(idx, Some(stream_code::UNROUTABLE)),
            }
        }
        let id = TrackId(self.next_handle());
        let idx = self.insert_track(TrackState {
            path,
            name: name.to_string(),
            upstream: Upstream::Local(id),
            downstreams: Vec::new(),
            cache: GroupCache::default(),
            linger_until: None,
            aggregated: SubscribeParams::default(),
            info: Some(info),
            via: None,
            switching: Switching::default(),
            dangling_until: None,
        });
        self.local_tracks.insert(id, idx);
        if let Some(waiting) = self.waiting.remove(&key) {
            for (subscriber, params) in waiting.subscribers {
                self.attach(idx, subscriber, params);
            }
        }
        self.pump();
        id
    }

    /// Ends a local track: its subscribers finish their open groups and end cleanly.
    pub fn end_local_track(&mut self, track: TrackId) {
        if let Some(idx) = self.local_tracks.remove(&track) {
            self.end_track(idx, None);
        }
        self.pump();
    }

    /// How many subscribers a local track has.
    pub fn track_subscribers(&self, track: TrackId) -> usize {
        self.local_tracks.get(&track).map_or(0, |&idx| self.track(idx).downstreams.len())
    }

    /// Ends every local track of a broadcast and refuses the subscriptions waiting for it.
    pub(super) fn end_local_tracks(&mut self, path: &Path) {
        let tracks: Vec<TrackId> =
            self.local_tracks.iter().filter(|(_, &idx)| self.track(idx).path == *path).map(|(id, _)| *id).collect();
        for id in tracks {
            if let Some(idx) = self.local_tracks.remove(&id) {
                self.end_track(idx, None);
            }
        }
        let keys: Vec<(Path, String)> = self.waiting.keys().filter(|(p, _)| p == path).cloned().collect();
        for key in keys {
            if let Some(w) = self.waiting.remove(&key) {
                self.refuse_all(w.subscribers, stream_code::NOT_FOUND);
            }
        }
    }

    // ----- the application's subscriptions -----

    /// Subscribes the local application to a track: served from a local track, through the
    /// best announced route, or else through `via`. Groups and frames arrive as node events.
    pub fn subscribe(
        &mut self,
        path: Path,
        track: &str,
        params: SubscribeParams,
        via: Option<SessionId>,
    ) -> LocalSubscriptionId {
        let id = LocalSubscriptionId(self.next_handle());
        self.route_subscription(Subscriber::Local(id), path, track.to_string(), params, None, via);
        self.pump();
        id
    }

    /// Changes a local subscription's parameters.
    pub fn update_subscription(&mut self, subscription: LocalSubscriptionId, params: SubscribeParams) {
        let subscriber = Subscriber::Local(subscription);
        if let Some(&idx) = self.downstreams.get(&subscriber) {
            if let Some(d) = self.track_mut(idx).downstreams.iter_mut().find(|d| d.subscriber == subscriber) {
                d.params = params;
            }
            self.reaggregate(idx);
        }
        self.pump();
    }

    /// Ends a local subscription (no event follows).
    pub fn unsubscribe(&mut self, subscription: LocalSubscriptionId) {
        let subscriber = Subscriber::Local(subscription);
        self.remove_downstream(subscriber);
        for w in self.waiting.values_mut() {
            w.subscribers.retain(|(s, _)| *s != subscriber);
        }
        self.pump();
    }

    /// Stops delivering one group to a local subscription (no event follows).
    pub fn stop_group(&mut self, subscription: LocalSubscriptionId, sequence: u64) {
        let subscriber = Subscriber::Local(subscription);
        if let Some(&idx) = self.downstreams.get(&subscriber) {
            if let Some(d) = self.track_mut(idx).downstreams.iter_mut().find(|d| d.subscriber == subscriber) {
                d.groups.retain(|g| g.sequence != sequence);
            }
        }
    }

    // ----- sessions' subscriptions -----

    pub(super) fn on_subscribe(&mut self, sid: SessionId, publication: PublicationId, sub: Subscribe) {
        let params = SubscribeParams::from(&sub);
        let subscriber = Subscriber::Session(sid, publication);
        let Some(path) = self.admit_request(sid, sub.path, Ask::Subscribe) else {
            return self.refuse(subscriber, stream_code::UNAUTHORIZED);
        };
        self.route_subscription(subscriber, path, sub.track, params, Some(sid), None);
    }

    pub(super) fn on_subscribe_updated(&mut self, sid: SessionId, publication: PublicationId, update: SubscribeUpdate) {
        let subscriber = Subscriber::Session(sid, publication);
        let Some(&idx) = self.downstreams.get(&subscriber) else { return };
        if let Some(d) = self.track_mut(idx).downstreams.iter_mut().find(|d| d.subscriber == subscriber) {
            d.params = SubscribeParams::from(&update);
        }
        self.reaggregate(idx);
    }

    /// Finds or creates the track for a subscription and attaches it; refuses it if there is
    /// no route, or parks it until a local broadcast creates the track.
    fn route_subscription(
        &mut self,
        subscriber: Subscriber,
        path: Path,
        name: String,
        params: SubscribeParams,
        except: Option<SessionId>,
        via: Option<SessionId>,
    ) {
        let key = (path, name);
        if let Some(&idx) = self.track_index.get(&key) {
            // A subscription from the session the track comes from would be a loop.
            let from_upstream = matches!((self.track(idx).upstream, subscriber),
                (Upstream::Remote { session, .. }, Subscriber::Session(s, _)) if s == session);
            if from_upstream {
                return self.refuse(subscriber, stream_code::UNROUTABLE);
            }
            return self.attach(idx, subscriber, params);
        }
        let (path, name) = key;
        let up = match self.origin.best(&path, except).cloned() {
            Some(Route { source: Source::Local, .. }) => return self.wait_for_track(subscriber, path, name, params),
            Some(Route { source: Source::Session(up), .. }) => up,
            None => match via.or(self.default_upstream.filter(|_| matches!(subscriber, Subscriber::Local(_)))) {
                Some(up) => up,
                None => return self.refuse(subscriber, stream_code::NOT_FOUND),
            },
        };
        let upstream_params = SubscribeParams {
            priority: params.priority,
            ordered: params.ordered,
            max_latency: params.max_latency,
            ..Default::default()
        };
        // The upstream names the broadcast relative to its own access root.
        let Some(upstream_path) = self.relative_for(up, &path) else {
            return self.refuse(subscriber, stream_code::UNROUTABLE);
        };
        let Some(session) = self.session_mut(up) else { return self.refuse(subscriber, stream_code::UNROUTABLE) };
        // The first subscriber's start goes upstream too: a relay failing over to this one asks
        // for the group after the last it delivered, which an upstream cache may still hold.
        let first = SubscribeParams { start_group: params.start_group, ..upstream_params };
        let subscription = match session.subscribe(upstream_path, &name, first) {
            Ok(subscription) => subscription,
            Err(Error::GoingAway) => return self.refuse(subscriber, stream_code::GOING_AWAY),
            Err(_) => return self.refuse(subscriber, stream_code::UNROUTABLE),
        };
        self.stats.upstream_subscribes += 1;
        let idx = self.insert_track(TrackState {
            path,
            name,
            upstream: Upstream::Remote { session: up, subscription },
            downstreams: Vec::new(),
            cache: GroupCache::default(),
            linger_until: None,
            aggregated: upstream_params,
            info: None,
            via,
            switching: Switching::default(),
            dangling_until: None,
        });
        self.upstreams.insert((up, subscription), (idx, Feed::Primary));
        self.attach(idx, subscriber, params);
    }

    /// Adds a subscriber to a track and starts it at the current group.
    fn attach(&mut self, idx: usize, subscriber: Subscriber, params: SubscribeParams) {
        if let Subscriber::Session(sid, publication) = subscriber {
            let publish = match self.track(idx).info {
                Some(info) => {
                    PublishParams { priority: info.priority, ordered: info.ordered, max_latency: info.max_latency }
                }
                None => PublishParams { priority: params.priority, ..Default::default() },
            };
            let Some(s) = self.session_mut(sid) else { return };
            if s.accept_subscription(publication, publish).is_err() {
                return;
            }
        }
        let track = self.track_mut(idx);
        track.linger_until = None;
        track.downstreams.push(Downstream { subscriber, params, groups: SmallVec::new() });
        self.downstreams.insert(subscriber, idx);
        self.reaggregate(idx);
        self.subscribers_changed(idx);
        self.late_join(idx, subscriber);
    }

    /// Parks a subscription to a track a local broadcast has not created yet.
    fn wait_for_track(&mut self, subscriber: Subscriber, path: Path, name: String, params: SubscribeParams) {
        let parked: usize =
            self.waiting.iter().filter(|((p, _), _)| *p == path).map(|(_, w)| w.subscribers.len()).sum();
        if parked >= self.config.max_waiting_per_broadcast {
            self.stats.limits.track_requests_refused += 1;
            return self.refuse(subscriber, stream_code::LIMIT_EXCEEDED);
        }
        let key = (path, name);
        if let Some(w) = self.waiting.get_mut(&key) {
            w.subscribers.push((subscriber, params));
            return;
        }
        let request = self.next_handle();
        if let Some(at) = self.now.checked_add(self.config.track_request_timeout) {
            self.timers.arm(NodeTimer::TrackRequest(request), at);
        }
        self.events.push_back(NodeEvent::TrackRequested { path: key.0.clone(), track: key.1.clone() });
        self.waiting.insert(key, Waiting { request, subscribers: vec![(subscriber, params)] });
    }

    pub(super) fn track_request_expired(&mut self, request: u64) {
        let Some(key) = self.waiting.iter().find(|(_, w)| w.request == request).map(|(k, _)| k.clone()) else {
            return;
        };
        if let Some(w) = self.waiting.remove(&key) {
            self.stats.limits.track_requests_refused += 1;
            tracing::debug!(path = %key.0, track = key.1, "no local track created in time");
            self.refuse_all(w.subscribers, stream_code::NOT_FOUND);
        }
    }

    fn refuse_all(&mut self, subscribers: Vec<(Subscriber, SubscribeParams)>, code: u64) {
        for (subscriber, _) in subscribers {
            self.refuse(subscriber, code);
        }
    }

    /// Refuses a subscription that has no track.
    fn refuse(&mut self, subscriber: Subscriber, code: u64) {
        match subscriber {
            Subscriber::Session(sid, publication) => {
                if let Some(s) = self.session_mut(sid) {
                    let _ = s.reject_subscription(publication, code);
                }
            }
            Subscriber::Local(subscription) => {
                self.events.push_back(NodeEvent::SubscriptionEnded { subscription, code: Some(code) })
            }
        }
    }

    /// Recomputes the upstream parameters from every downstream's.
    fn reaggregate(&mut self, idx: usize) {
        let track = self.track(idx);
        let Upstream::Remote { session, subscription } = track.upstream else { return };
        if track.downstreams.is_empty() {
            return;
        }
        let agg = self.upstream_params(idx);
        let track = self.track_mut(idx);
        if agg != track.aggregated {
            track.aggregated = agg;
            if let Some(s) = self.session_mut(session) {
                let _ = s.update_subscription(subscription, agg);
            }
        }
    }

    fn subscribers_changed(&mut self, idx: usize) {
        let track = self.track(idx);
        if let Upstream::Local(id) = track.upstream {
            let count = track.downstreams.len();
            self.events.push_back(NodeEvent::TrackSubscribers { track: id, count });
        }
    }

    /// A subscriber left: its groups are forgotten; the last one starts the upstream's linger.
    pub(super) fn remove_downstream(&mut self, subscriber: Subscriber) {
        let Some(idx) = self.downstreams.remove(&subscriber) else { return };
        let linger_until = self.now.checked_add(self.config.linger);
        let track = self.track_mut(idx);
        let mut groups: SmallVec<[GroupId; 4]> = SmallVec::new();
        track.downstreams.retain(|d| {
            if d.subscriber == subscriber {
                groups.extend(d.groups.iter().filter_map(|g| g.stream));
                false
            } else {
                true
            }
        });
        let empty = track.downstreams.is_empty();
        let remote = matches!(track.upstream, Upstream::Remote { .. } | Upstream::Dangling);
        if let Subscriber::Session(sid, _) = subscriber {
            for g in groups {
                self.downstream_groups_remove(sid, g);
            }
        }
        if empty && remote {
            self.track_mut(idx).linger_until = linger_until;
            if let Some(at) = linger_until {
                self.timers.arm(NodeTimer::Linger(idx), at);
            }
        }
        if !empty {
            self.reaggregate(idx);
        }
        self.subscribers_changed(idx);
    }

    /// A subscriber got every group it asked for (lite-06 end bounds): its subscription ends
    /// cleanly once its open groups drain.
    pub(super) fn finish_downstream(&mut self, idx: usize, subscriber: Subscriber) {
        let Some(d) = self.track(idx).downstreams.iter().find(|d| d.subscriber == subscriber) else { return };
        let end = d.params.end_group.map(|e| e.saturating_add(1));
        let open: SmallVec<[DownGroup; 4]> = d.groups.clone();
        self.remove_downstream(subscriber);
        match subscriber {
            Subscriber::Session(sid, publication) => {
                if let Some(s) = self.session_mut(sid) {
                    for g in open.iter().filter_map(|g| g.stream) {
                        let _ = s.reset_group(g, stream_code::CANCEL);
                    }
                    let _ = s.end_subscription(publication, end);
                }
            }
            Subscriber::Local(subscription) => {
                self.events.push_back(NodeEvent::SubscriptionEnded { subscription, code: None })
            }
        }
    }

    pub(super) fn linger_expired(&mut self, idx: usize) {
        let Some(track) = self.tracks.get(idx).and_then(|t| t.as_ref()) else { return };
        match track.linger_until {
            Some(at) if at <= self.now => self.release_track(idx),
            Some(at) => self.timers.arm(NodeTimer::Linger(idx), at),
            None => {}
        }
    }

    /// Drops an idle upstream subscription and its track.
    fn release_track(&mut self, idx: usize) {
        let track = self.track_mut(idx);
        track.linger_until = None;
        if !track.downstreams.is_empty() {
            return;
        }
        self.drop_upstreams(idx);
        self.drop_track(idx);
    }

    /// Unsubscribes every upstream subscription of a track (primary, candidate, retiring).
    fn drop_upstreams(&mut self, idx: usize) {
        let track = self.track_mut(idx);
        let mut subs: SmallVec<[(SessionId, SubscriptionId); 2]> = SmallVec::new();
        if let Upstream::Remote { session, subscription } = track.upstream {
            subs.push((session, subscription));
        }
        subs.extend(track.switching.candidate.take());
        subs.extend(track.switching.retiring.drain(..));
        for (session, subscription) in subs {
            if self.upstreams.remove(&(session, subscription)).is_some() {
                if let Some(s) = self.session_mut(session) {
                    let _ = s.unsubscribe(subscription);
                }
            }
        }
        self.dangling.retain(|i| *i != idx);
    }

    /// The source of a track ended: `None` cleanly (open groups finish), `Some(code)` on error
    /// (a stream code for every subscriber). Its subscribers end and the track goes.
    pub(super) fn end_track(&mut self, idx: usize, code: Option<u64>) {
        let Some(track) = self.tracks[idx].as_mut() else { return };
        let downstreams = std::mem::take(&mut track.downstreams);
        let upstream = track.upstream;
        for d in downstreams {
            self.downstreams.remove(&d.subscriber);
            match d.subscriber {
                Subscriber::Session(sid, publication) => {
                    for g in d.groups.iter().filter_map(|g| g.stream) {
                        self.downstream_groups_remove(sid, g);
                    }
                    let Some(s) = self.session_mut(sid) else { continue };
                    match code {
                        None => {
                            for g in d.groups.iter().filter_map(|g| g.stream) {
                                let _ = s.finish_group(g);
                            }
                            let _ = s.end_subscription(publication, None);
                        }
                        Some(code) => {
                            let _ = s.reject_subscription(publication, code);
                        }
                    }
                }
                Subscriber::Local(subscription) => {
                    for g in &d.groups {
                        let group_code = code.map(|_| stream_code::CANCEL);
                        self.events.push_back(NodeEvent::GroupEnded {
                            subscription,
                            sequence: g.sequence,
                            code: group_code,
                        });
                    }
                    self.events.push_back(NodeEvent::SubscriptionEnded { subscription, code });
                }
            }
        }
        match upstream {
            Upstream::Remote { .. } | Upstream::Dangling => self.drop_upstreams(idx),
            Upstream::Local(id) => {
                self.local_tracks.remove(&id);
                self.events.push_back(NodeEvent::TrackSubscribers { track: id, count: 0 });
            }
        }
        self.drop_track(idx);
    }

    // ----- the track table -----

    pub(super) fn track(&self, idx: usize) -> &TrackState {
        self.tracks[idx].as_ref().expect("live track index")
    }

    pub(super) fn track_mut(&mut self, idx: usize) -> &mut TrackState {
        self.tracks[idx].as_mut().expect("live track index")
    }

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
        self.tracks_by_path.entry(key.0.clone()).or_default().push(idx);
        self.track_index.insert(key, idx);
        idx
    }

    fn drop_track(&mut self, idx: usize) {
        let Some(track) = self.tracks[idx].take() else { return };
        let mut cache = track.cache;
        self.cache_bytes -= cache.clear();
        if let Some(list) = self.tracks_by_path.get_mut(&track.path) {
            list.retain(|i| *i != idx);
            if list.is_empty() {
                self.tracks_by_path.remove(&track.path);
            }
        }
        self.track_index.remove(&(track.path, track.name));
        self.free_tracks.push(idx);
    }
}
