//! Announcements through the node: routes learned from sessions go into the origin, the best
//! route to each broadcast is advertised to every other session (split horizon), local
//! broadcasts are announced everywhere, and local watches hear about the broadcasts under
//! their prefix.

use std::collections::BTreeSet;

use smallvec::SmallVec;

use super::node::Node;
use super::{NodeEvent, Route, SessionId, Source, WatchId};
use crate::coding::MAX_VARINT;
use crate::message::{Hops, RouteCost};
use crate::path::Path;
use crate::session::InterestId;

/// Routes longer than this are dropped.
const MAX_ROUTE_HOPS: usize = 32;

/// The local application watching a prefix.
#[derive(Debug)]
pub(super) struct Watch {
    prefix: Path,
    /// The interests opened for it on sessions.
    interests: SmallVec<[(SessionId, InterestId); 1]>,
    /// It asks the upstream session for announcements, and follows it across reconnections.
    upstream: bool,
    /// Paths reported live.
    live: BTreeSet<Path>,
}

impl Node {
    /// Publishes a broadcast from this node: every session hears of it.
    pub fn publish_broadcast(&mut self, path: Path) {
        let route = Route { source: Source::Local, hops: Hops::new(), cost: RouteCost::default() };
        if self.origin.add(&path, route) {
            self.propagate(&path);
        }
        self.pump();
    }

    /// Ends a local broadcast and its tracks; subscriptions waiting for its tracks are refused.
    pub fn unpublish_broadcast(&mut self, path: &Path) {
        self.end_local_tracks(path);
        if self.origin.remove(path, Source::Local) {
            self.propagate(path);
        }
        self.pump();
    }

    /// Watches the broadcasts under `prefix` (not those published here): each live one is
    /// reported by [`NodeEvent::Announced`], each end by [`NodeEvent::Unannounced`]. With `via`,
    /// the node also asks that session for its announcements under the prefix, and after a
    /// reconnection ([`Node::set_default_upstream`], [`Node::migrate`]) the new session.
    pub fn watch(&mut self, prefix: Path, via: Option<SessionId>) -> Result<WatchId, crate::session::Error> {
        let id = WatchId(self.next_handle());
        let mut interests = SmallVec::new();
        if let Some(sid) = via {
            interests.push((sid, self.open_interest(sid, &prefix, id)?));
        }
        let watch = Watch { prefix: prefix.clone(), interests, upstream: via.is_some(), live: BTreeSet::new() };
        self.watches.insert(id, watch);
        let paths: Vec<Path> = self.origin.paths().filter(|p| p.has_prefix(&prefix)).cloned().collect();
        for path in paths {
            self.update_watch(id, &path);
        }
        self.pump();
        Ok(id)
    }

    fn open_interest(
        &mut self,
        sid: SessionId,
        prefix: &Path,
        watch: WatchId,
    ) -> Result<InterestId, crate::session::Error> {
        // The session names paths relative to its access root.
        let relative = self.relative_for(sid, prefix).ok_or(crate::session::Error::InvalidArgument)?;
        let peer = self.peer_mut(sid).ok_or(crate::session::Error::Closed)?;
        let interest = peer.session.announce_interest(relative)?;
        peer.interests.insert(interest, watch);
        Ok(interest)
    }

    /// Stops a watch (and the interests it opened).
    pub fn unwatch(&mut self, watch: WatchId) {
        let Some(w) = self.watches.remove(&watch) else { return };
        for (sid, interest) in w.interests {
            if let Some(peer) = self.peer_mut(sid) {
                peer.interests.remove(&interest);
                let _ = peer.session.cancel_announce_interest(interest);
            }
        }
        self.pump();
    }

    /// Opens, on the default upstream, the interests of watches that follow it.
    pub(super) fn reopen_watches(&mut self) {
        let Some(up) = self.default_upstream else { return };
        let ids: Vec<(WatchId, Path)> = self
            .watches
            .iter()
            .filter(|(_, w)| w.upstream && !w.interests.iter().any(|(s, _)| *s == up))
            .map(|(id, w)| (*id, w.prefix.clone()))
            .collect();
        for (id, prefix) in ids {
            if let Ok(interest) = self.open_interest(up, &prefix, id) {
                if let Some(w) = self.watches.get_mut(&id) {
                    w.interests.push((up, interest));
                }
            }
        }
    }

    /// A watch's interest closed. On a session that is going away (a client reconnects) the
    /// watch waits for the next upstream; a refusal, or a relay's watch, ends it. A `GOING_AWAY`
    /// end counts as going away: a closing session's streams may end just before its close.
    pub(super) fn on_interest_ended(&mut self, sid: SessionId, interest: InterestId, code: Option<u64>) {
        let Some(watch) = self.peer_mut(sid).and_then(|p| p.interests.remove(&interest)) else { return };
        let lost = self.session(sid).is_some_and(crate::session::Session::is_closed)
            || code == Some(crate::session::stream_code::GOING_AWAY);
        self.detach_watch(watch, sid, code, lost);
    }

    /// Removes a session's interest from a watch; the watch ends unless it follows the upstream
    /// and the session was lost, or other interests remain.
    pub(super) fn detach_watch(&mut self, watch: WatchId, sid: SessionId, code: Option<u64>, lost: bool) {
        let Some(w) = self.watches.get_mut(&watch) else { return };
        w.interests.retain(|(s, _)| *s != sid);
        let keep = !w.interests.is_empty() || (w.upstream && lost && !self.config.discover);
        if !keep {
            self.end_watch(watch, code);
        }
    }

    pub(super) fn end_watch(&mut self, watch: WatchId, code: Option<u64>) {
        if self.watches.remove(&watch).is_some() {
            self.events.push_back(NodeEvent::WatchEnded { watch, code });
        }
    }

    pub(super) fn on_announced(&mut self, sid: SessionId, path: Path, hops: Hops, cost: RouteCost) {
        let Some(path) = self.admit_announce(sid, path, &hops) else { return };
        let hop = self.config.hop_id;
        if (hop != 0 && hops.contains(&hop)) || hops.len() >= MAX_ROUTE_HOPS {
            tracing::debug!(%path, "dropping a looped or too long route");
            return self.unannounce_absolute(sid, &path);
        }
        // The link price (1 unless configured) is added to both halves of a lite-06 cost,
        // saturating at the largest encodable value.
        let bump = |c: u64| c.saturating_add(1).min(MAX_VARINT);
        let cost = RouteCost { warm: bump(cost.warm), cold: bump(cost.cold) };
        if self.origin.len() >= self.config.max_broadcasts && !self.origin.contains(&path) {
            self.stats.limits.broadcasts_refused += 1;
            tracing::debug!(%path, "the origin is full: ignoring an announcement");
            return;
        }
        if self.origin.add(&path, Route { source: Source::Session(sid), hops, cost }) {
            self.propagate(&path);
        }
    }

    pub(super) fn on_unannounced(&mut self, sid: SessionId, path: &Path) {
        let path = self.absolute_for(sid, path.clone());
        self.unannounce_absolute(sid, &path);
    }

    fn unannounce_absolute(&mut self, sid: SessionId, path: &Path) {
        if self.origin.remove(path, Source::Session(sid)) {
            self.propagate(path);
        }
    }

    /// Tells every session the current best route to `path` (never one through itself), and
    /// every watch of it whether it is live.
    pub(super) fn propagate(&mut self, path: &Path) {
        for id in self.session_ids() {
            self.advertise_to(id, path);
        }
        let watches: Vec<WatchId> =
            self.watches.iter().filter(|(_, w)| path.has_prefix(&w.prefix)).map(|(id, _)| *id).collect();
        for w in watches {
            self.update_watch(w, path);
        }
        self.retry_dangling(path);
    }

    /// Tells one session the best route to `path` (absolute), named relative to its access
    /// root, or that there is none it may see.
    pub(super) fn advertise_to(&mut self, id: SessionId, path: &Path) {
        let Some((name, visible)) = self.view_for(id, path) else { return };
        let route = if visible { self.origin.best(path, Some(id)).cloned() } else { None };
        let Some(s) = self.session_mut(id) else { return };
        let result = match route {
            Some(r) => s.announce_route(name, r.hops, r.cost),
            None => s.unannounce(&name).or(Ok(())),
        };
        if let Err(err) = result {
            tracing::debug!(%path, %err, "route not advertised");
        }
    }

    fn update_watch(&mut self, watch: WatchId, path: &Path) {
        let live = self.origin.has_remote(path);
        let Some(w) = self.watches.get_mut(&watch) else { return };
        let event = match (live, w.live.contains(path)) {
            (true, false) => {
                w.live.insert(path.clone());
                NodeEvent::Announced { watch, path: path.clone() }
            }
            (false, true) => {
                w.live.remove(path);
                NodeEvent::Unannounced { watch, path: path.clone() }
            }
            _ => return,
        };
        self.events.push_back(event);
    }
}
