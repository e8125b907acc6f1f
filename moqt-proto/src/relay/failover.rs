//! Route switching. A track whose upstream is lost (its session closed, or the route it used
//! went away) subscribes again over the next best route, or waits up to `failover_grace` for
//! one; its subscribers continue from the next group and their subscriptions are never reset
//! for it. A planned switch (make-before-break, after a GOAWAY) subscribes over the new session
//! first and promotes it at a group boundary: the old upstream finishes the groups it started,
//! the new one supplies every later group.
//!
//! De-duplication: each group is fed by exactly one upstream (the first one to start it), and
//! after a switch the new upstream's groups at or below the last group already delivered are
//! ignored. So across a switch no group is delivered twice, and a planned switch loses none.

use std::time::Duration;

use smallvec::SmallVec;

use super::node::{Node, NodeTimer};
use super::track::{Subscriber, Upstream};
use super::{NodeEvent, Route, SessionId, Source};
use crate::session::{stream_code, SubscribeParams, SubscriptionId};

/// How often a track waiting for a route tries to subscribe again.
const RETRY: Duration = Duration::from_secs(1);

/// What an upstream subscription is to its track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feed {
    /// The current source.
    Primary,
    /// A new source being brought up (make-before-break); promoted by its first new group.
    Candidate,
    /// A former source finishing the groups it started before `cutoff`.
    Retiring {
        /// The first group it no longer supplies.
        cutoff: u64,
    },
}

/// A track's switching state.
#[derive(Debug, Default)]
pub(super) struct Switching {
    /// The highest group started on the track, from any source.
    pub(super) delivered: Option<u64>,
    /// Groups at or below this are ignored from a new source (set at each switch).
    pub(super) floor: Option<u64>,
    /// Open groups and the session feeding each.
    pub(super) feeds: SmallVec<[(u64, SessionId); 4]>,
    /// A new source being brought up.
    pub(super) candidate: Option<(SessionId, SubscriptionId)>,
    /// Former sources finishing their groups.
    pub(super) retiring: SmallVec<[(SessionId, SubscriptionId); 1]>,
    /// Where a migration is moving the track (kept while the candidate is retried).
    pub(super) moving_to: Option<SessionId>,
}

impl Node {
    /// Makes `session` the upstream of local subscriptions that have no announced route (a
    /// client's connection to its relay); tracks waiting for a route subscribe through it now.
    pub fn set_default_upstream(&mut self, session: Option<SessionId>) {
        self.default_upstream = session;
        if session.is_some() {
            for idx in std::mem::take(&mut self.dangling) {
                if !self.resubscribe(idx) {
                    self.dangling.push(idx);
                }
            }
            self.reopen_watches();
        }
        self.pump();
    }

    /// Moves every track fed through `from` to `to`, make-before-break: each subscribes over
    /// `to` from the group after the last one delivered, and switches at the first new group.
    /// Close `from` once it has served its last groups (or after a drain timeout).
    pub fn migrate(&mut self, from: SessionId, to: SessionId) {
        let tracks: Vec<usize> = self
            .upstreams
            .iter()
            .filter(|((s, _), (_, feed))| *s == from && *feed == Feed::Primary)
            .map(|(_, (idx, _))| *idx)
            .collect();
        for idx in tracks {
            self.track_mut(idx).switching.moving_to = Some(to);
            self.subscribe_candidate(idx);
        }
        self.default_upstream = Some(to);
        self.reopen_watches();
        self.pump();
    }

    /// Subscribes a track's candidate on the session it moves to, from the next group.
    fn subscribe_candidate(&mut self, idx: usize) {
        let Some(track) = self.tracks[idx].as_ref() else { return };
        let Some(to) = track.switching.moving_to else { return };
        if track.switching.candidate.is_some() || track.downstreams.is_empty() {
            return;
        }
        let (path, name) = (track.path.clone(), track.name.clone());
        let mut params = self.upstream_params(idx);
        params.start_group = track.switching.delivered.map(|d| d.saturating_add(1));
        let Some(path) = self.relative_for(to, &path) else { return };
        let Some(Ok(subscription)) = self.session_mut(to).map(|s| s.subscribe(path, &name, params)) else {
            return;
        };
        self.stats.upstream_subscribes += 1;
        self.upstreams.insert((to, subscription), (idx, Feed::Candidate));
        self.track_mut(idx).switching.candidate = Some((to, subscription));
    }

    /// A refused candidate tries again (the publisher may not have reached the new route yet).
    pub(super) fn candidate_retry(&mut self, idx: usize) {
        let alive = self.tracks[idx]
            .as_ref()
            .and_then(|t| t.switching.moving_to)
            .is_some_and(|to| self.peer(to).is_some_and(|p| !p.session.is_closed()));
        if alive {
            self.subscribe_candidate(idx);
        }
    }

    /// How many upstream subscriptions go through `session` (a migrating client closes the old
    /// session when this reaches zero).
    pub fn feeds_through(&self, session: SessionId) -> usize {
        self.upstreams.keys().filter(|(s, _)| *s == session).count()
    }

    /// How many subscriptions of `session`'s peer this node serves (a migrating publisher keeps
    /// the old session until its relay has let go of them).
    pub fn serves_through(&self, session: SessionId) -> usize {
        self.downstreams.keys().filter(|d| matches!(d, Subscriber::Session(s, _) if *s == session)).count()
    }

    /// Whether a group from `session` (in role `feed`) is taken for the track; records who
    /// feeds it. A candidate's first group past what was delivered promotes it.
    pub(super) fn accept_group(&mut self, idx: usize, session: SessionId, feed: Feed, sequence: u64) -> bool {
        let track = self.track_mut(idx);
        let sw = &mut track.switching;
        if sw.feeds.iter().any(|(s, _)| *s == sequence) {
            return false;
        }
        let take = match feed {
            Feed::Primary => sw.floor.is_none_or(|f| sequence > f),
            Feed::Retiring { cutoff } => sequence < cutoff,
            Feed::Candidate => sw.delivered.is_none_or(|d| sequence > d),
        };
        if !take {
            return false;
        }
        if feed == Feed::Candidate {
            self.promote(idx, sequence);
        }
        let track = self.track_mut(idx);
        // Groups flow again: the wait for a route is over (and a move, if this is the candidate).
        track.dangling_until = None;
        let sw = &mut track.switching;
        if feed == Feed::Candidate {
            sw.moving_to = None;
        }
        sw.feeds.push((sequence, session));
        sw.delivered = Some(sw.delivered.map_or(sequence, |d| d.max(sequence)));
        true
    }

    /// Whether the open group `sequence` is fed by `session`.
    pub(super) fn feeds(&self, idx: usize, session: SessionId, sequence: u64) -> bool {
        self.tracks[idx].as_ref().is_some_and(|t| t.switching.feeds.contains(&(sequence, session)))
    }

    /// A group ended: forget its feed; a retiring source with nothing left is released.
    pub(super) fn group_fed(&mut self, idx: usize, session: SessionId, sequence: u64) {
        let Some(track) = self.tracks[idx].as_mut() else { return };
        let sw = &mut track.switching;
        sw.feeds.retain(|f| *f != (sequence, session));
        let done: SmallVec<[(SessionId, SubscriptionId); 1]> =
            sw.retiring.iter().filter(|(s, _)| !sw.feeds.iter().any(|(_, f)| f == s)).copied().collect();
        sw.retiring.retain(|r| !done.contains(r));
        for (s, sub) in done {
            self.upstreams.remove(&(s, sub));
            if let Some(session) = self.session_mut(s) {
                let _ = session.unsubscribe(sub);
            }
        }
    }

    /// The candidate becomes the primary; the old primary retires below `cutoff`.
    fn promote(&mut self, idx: usize, cutoff: u64) {
        let track = self.track_mut(idx);
        let Some((session, subscription)) = track.switching.candidate.take() else { return };
        let old = std::mem::replace(&mut track.upstream, Upstream::Remote { session, subscription });
        track.switching.floor = track.switching.delivered;
        self.upstreams.insert((session, subscription), (idx, Feed::Primary));
        if let Upstream::Remote { session: s, subscription: sub } = old {
            self.upstreams.insert((s, sub), (idx, Feed::Retiring { cutoff }));
            self.track_mut(idx).switching.retiring.push((s, sub));
            // Release it at once if it has no group open.
            self.group_fed(idx, s, u64::MAX);
        }
    }

    /// A track's upstream subscription ended. A clean end ends the track; otherwise the track
    /// switches to another route, waits for one (if its session was lost or went away), or ends.
    pub(super) fn upstream_ended(&mut self, idx: usize, session: SessionId, feed: Feed, code: Option<u64>, lost: bool) {
        match feed {
            Feed::Candidate => {
                let track = self.track_mut(idx);
                track.switching.candidate = None;
                if code.is_some() && track.switching.moving_to == Some(session) {
                    if let Some(at) = self.now.checked_add(RETRY) {
                        self.timers.arm(NodeTimer::Candidate(idx), at);
                    }
                }
                return;
            }
            Feed::Retiring { .. } => {
                let sw = &mut self.track_mut(idx).switching;
                sw.retiring.retain(|(s, _)| *s != session);
                sw.feeds.retain(|(_, s)| *s != session);
                return;
            }
            Feed::Primary => {}
        }
        let Some(track) = self.tracks[idx].as_mut() else { return };
        track.switching.feeds.retain(|(_, s)| *s != session);
        let Some(code) = code else { return self.end_track(idx, None) };
        if track.downstreams.is_empty() {
            return self.end_track(idx, Some(code));
        }
        // A candidate already on its way takes over.
        if let Some((s, sub)) = track.switching.candidate.take() {
            track.upstream = Upstream::Remote { session: s, subscription: sub };
            track.switching.floor = track.switching.delivered;
            self.upstreams.insert((s, sub), (idx, Feed::Primary));
            return;
        }
        track.upstream = Upstream::Dangling;
        track.switching.floor = track.switching.delivered;
        // Another route now (never the session that just refused: that waits for a retry).
        let avoid = if lost { None } else { Some(session) };
        if self.resubscribe_avoiding(idx, avoid) {
            return;
        }
        // A lost route waits; so does a NOT_FOUND after a switch (the publisher may not have
        // reached the new route yet, as after a relay restart).
        let resumed = self.track(idx).switching.delivered.is_some();
        let waits = lost
            || code == stream_code::UNROUTABLE
            || code == stream_code::GOING_AWAY
            || (resumed && code == stream_code::NOT_FOUND);
        let fresh = self.now.checked_add(self.config.failover_grace);
        let waiting = self.track(idx).dangling_until;
        match waiting.or(fresh).filter(|_| waits) {
            Some(until) => {
                if waiting.is_none() {
                    self.stats.limits.tracks_waiting_for_route += 1;
                }
                let track = self.track_mut(idx);
                track.linger_until = None;
                track.dangling_until = Some(until);
                if !self.dangling.contains(&idx) {
                    self.dangling.push(idx);
                }
                self.arm_retry(idx, until);
            }
            None => self.end_track(idx, Some(code)),
        }
    }

    /// Arms a waiting track's next retry (every `RETRY` until `until`).
    fn arm_retry(&mut self, idx: usize, until: std::time::Instant) {
        let next = self.now.checked_add(RETRY).map_or(until, |t| t.min(until));
        self.timers.arm(NodeTimer::Dangling(idx), next);
    }

    /// A waiting track's timer: retry, or give up once the grace period is over.
    pub(super) fn dangling_expired(&mut self, idx: usize) {
        let Some(track) = self.tracks[idx].as_ref() else { return };
        let Some(until) = track.dangling_until else { return };
        if track.upstream != Upstream::Dangling {
            // Subscribed again, not confirmed yet: keep the deadline armed.
            if until > self.now {
                self.arm_retry(idx, until);
            }
            return;
        }
        if until <= self.now {
            self.dangling.retain(|i| *i != idx);
            return self.end_track(idx, Some(stream_code::UNROUTABLE));
        }
        if self.resubscribe(idx) {
            self.dangling.retain(|i| *i != idx);
        }
        self.arm_retry(idx, until);
    }

    /// Routes to `path` changed: tracks waiting for one subscribe now.
    pub(super) fn retry_dangling(&mut self, path: &crate::path::Path) {
        if self.dangling.is_empty() {
            return;
        }
        let waiting: Vec<usize> = self
            .dangling
            .iter()
            .copied()
            .filter(|&i| self.tracks[i].as_ref().is_some_and(|t| t.path == *path))
            .collect();
        for idx in waiting {
            if self.resubscribe(idx) {
                self.dangling.retain(|i| *i != idx);
            }
        }
    }

    /// Subscribes a track upstream again, from the group after the last one delivered, over
    /// the best route that does not lead back to one of its subscribers, or else the default
    /// upstream. Returns whether it did.
    pub(super) fn resubscribe(&mut self, idx: usize) -> bool {
        self.resubscribe_avoiding(idx, None)
    }

    fn resubscribe_avoiding(&mut self, idx: usize, avoid: Option<SessionId>) -> bool {
        let Some(track) = self.tracks[idx].as_ref() else { return false };
        let downstream_sessions: SmallVec<[SessionId; 8]> = track
            .downstreams
            .iter()
            .filter_map(|d| match d.subscriber {
                Subscriber::Session(s, _) => Some(s),
                Subscriber::Local(_) => None,
            })
            .collect();
        let best = self.origin.routes(&track.path).filter(|r| match r.source {
            Source::Session(s) => !downstream_sessions.contains(&s) && Some(s) != avoid,
            Source::Local => false,
        });
        let up = match best.min_by_key(|r| r.rank()) {
            Some(Route { source: Source::Session(s), .. }) => *s,
            _ => {
                let usable = |s: &SessionId| self.peer(*s).is_some_and(|p| !p.session.is_closed()) && Some(*s) != avoid;
                match track.via.filter(usable).or(self.default_upstream.filter(usable)) {
                    Some(s) => s,
                    None => return false,
                }
            }
        };
        let (path, name) = (track.path.clone(), track.name.clone());
        let mut params = self.upstream_params(idx);
        params.start_group = self.track(idx).switching.delivered.map(|d| d.saturating_add(1));
        // The session names the broadcast relative to its access root.
        let Some(path) = self.relative_for(up, &path) else { return false };
        let Some(Ok(subscription)) = self.session_mut(up).map(|s| s.subscribe(path, &name, params)) else {
            return false;
        };
        self.stats.upstream_subscribes += 1;
        self.stats.limits.route_switches += 1;
        self.upstreams.insert((up, subscription), (idx, Feed::Primary));
        let track = self.track_mut(idx);
        track.upstream = Upstream::Remote { session: up, subscription };
        track.aggregated = SubscribeParams { start_group: None, ..params };
        let event = NodeEvent::RouteSwitched { path: track.path.clone(), track: track.name.clone() };
        self.events.push_back(event);
        true
    }

    /// The parameters a track asks its upstream for: the widest of its subscribers'.
    pub(super) fn upstream_params(&self, idx: usize) -> SubscribeParams {
        let track = self.track(idx);
        SubscribeParams {
            priority: track.downstreams.iter().map(|d| d.params.priority).max().unwrap_or(0),
            ordered: !track.downstreams.is_empty() && track.downstreams.iter().all(|d| d.params.ordered),
            max_latency: track.downstreams.iter().map(|d| d.params.max_latency).max().unwrap_or(0),
            ..Default::default()
        }
    }
}
