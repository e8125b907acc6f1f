//! Access control in the node: each session's [`Access`], the sessions waiting for theirs, the
//! expiry timer, and the checks and path translations the rest of the node calls.
//!
//! A session with an access sees paths relative to its connect path (its access root): what it
//! announces, subscribes to, fetches or asks about is placed below the root, and what it is told
//! is named relative to it. A session without one is unscoped and unrestricted (today's open
//! relay and every client).
//!
//! What is checked, and what happens on a refusal (counted in [`AccessStats`]):
//!
//! | a session … | needs | refused with |
//! |---|---|---|
//! | announces a path | [`Access::can_publish`] | ignored |
//! | announces a route that entered elsewhere (more than its own hop) | the cluster right | ignored |
//! | subscribes, fetches, asks TRACK | [`Access::can_subscribe`] | `stream_code::UNAUTHORIZED` |
//! | opens an announce interest | [`Access::may_watch`] | answered with an empty set (moq-net) |
//! | is told of a broadcast | [`Access::may_see`] | not told |
//! | outlives its access | — | closed with `session_code::UNAUTHORIZED` |
//! | is not given an access in time | — | closed with `session_code::TIMEOUT` |
//!
//! [`AccessStats`]: super::AccessStats

use std::time::Instant;

use super::node::{Node, NodeTimer};
use super::{NodeEvent, SessionId};
use crate::access::Access;
use crate::message::Hops;
use crate::path::Path;
use crate::session::{session_code, Config, Event};

/// A request a session makes that its access must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    Subscribe,
    Fetch,
    TrackInfo,
}

impl Node {
    /// Adds a session that already has its access (a WebTransport session whose URL carried the
    /// credential): [`Node::add_session`] then [`Node::set_access`], whatever the node's
    /// `require_access`.
    pub fn add_session_with(
        &mut self,
        config: Config,
        access: Access,
        deadline: Option<Instant>,
        now: Instant,
    ) -> SessionId {
        let id = self.add_peer(config, now, true);
        self.set_access(id, access, deadline);
        id
    }

    /// Gives a session its access, ending at `deadline` (`None`: never). A session that was
    /// waiting for it starts: its held requests are served, it is asked for its announcements
    /// (if the node discovers and it may publish) and told every broadcast it may see.
    ///
    /// On a session that already has one (a re-check), the new access replaces it: broadcasts
    /// are re-advertised and the deadline moves. The connect root must stay the same (a changed
    /// root closes the session with `UNAUTHORIZED`); a narrower access is the caller's to refuse,
    /// as requests already served are not revisited.
    pub fn set_access(&mut self, session: SessionId, access: Access, deadline: Option<Instant>) {
        let discover = self.config.discover;
        let Some(peer) = self.peer_mut(session) else { return };
        if !peer.pending && peer.access.as_ref().is_some_and(|old| old.root() != access.root()) {
            peer.session.close(session_code::UNAUTHORIZED, "access root changed");
            return self.pump();
        }
        let started = std::mem::replace(&mut peer.pending, false);
        if started && discover && !access.publish().is_empty() {
            let _ = peer.session.announce_interest(Path::root());
        }
        peer.access = Some(access);
        peer.deadline = deadline;
        self.timers.disarm(NodeTimer::Admission(session));
        self.timers.disarm(NodeTimer::Expiry(session));
        match deadline {
            Some(at) if at <= self.now => return self.access_expired(session),
            Some(at) => self.timers.arm(NodeTimer::Expiry(session), at),
            None => {}
        }
        let paths: Vec<Path> = self.origin.paths().cloned().collect();
        for path in paths {
            self.advertise_to(session, &path);
        }
        self.mark(session);
        self.pump();
    }

    /// A session's access (`None`: unscoped, or still waiting for it).
    pub fn access(&self, session: SessionId) -> Option<&Access> {
        self.peer(session)?.access.as_ref()
    }

    /// Whether a session is still waiting for its access.
    pub fn is_pending(&self, session: SessionId) -> bool {
        self.peer(session).is_some_and(|p| p.pending)
    }

    /// A session's access ran out: it closes with `UNAUTHORIZED`.
    pub(super) fn access_expired(&mut self, sid: SessionId) {
        let now = self.now;
        let Some(peer) = self.peer_mut(sid) else { return };
        if peer.deadline.is_none_or(|d| d > now) || peer.session.is_closed() {
            return;
        }
        peer.session.close(session_code::UNAUTHORIZED, "access expired");
        self.stats.access.sessions_expired += 1;
        self.pump();
    }

    /// A session was not given its access in time: it closes with `TIMEOUT`.
    pub(super) fn admission_expired(&mut self, sid: SessionId) {
        let Some(peer) = self.peer_mut(sid) else { return };
        if !peer.pending || peer.session.is_closed() {
            return;
        }
        peer.session.close(session_code::TIMEOUT, "not admitted in time");
        self.stats.access.admissions_timed_out += 1;
        self.pump();
    }

    /// The next event of a session for the node to act on. A session waiting for its access
    /// keeps its events queued (its SETUP is reported once, for the decision); one that closed
    /// while waiting did nothing the node knows of, so only its close counts.
    pub(super) fn next_event(&mut self, id: SessionId) -> Option<Event> {
        loop {
            let peer = self.peers.get_mut(id.index())?.as_mut()?;
            if !peer.pending {
                return peer.session.poll_event();
            }
            if !peer.session.is_closed() {
                if !peer.setup_reported {
                    if let Some(setup) = peer.session.peer_setup() {
                        peer.setup_reported = true;
                        let setup_path = setup.path.clone();
                        self.events.push_back(NodeEvent::AwaitingAccess { session: id, setup_path });
                    }
                }
                return None;
            }
            match peer.session.poll_event()? {
                closed @ Event::Closed { .. } => return Some(closed),
                _ => continue,
            }
        }
    }

    // ----- checks and translations for the rest of the node -----

    /// The absolute path of an announcement from `sid` (relative to its root), or `None` when
    /// its access does not allow it: a path it may not publish, or a route that entered the
    /// cluster elsewhere (a chain longer than the announcing peer's own hop) without the
    /// cluster right.
    pub(super) fn admit_announce(&mut self, sid: SessionId, path: Path, hops: &Hops) -> Option<Path> {
        let Some(access) = self.peer(sid)?.access.as_ref() else { return Some(path) };
        if !access.can_publish(&path) {
            tracing::debug!(%path, "announcement refused: not allowed to publish it");
            self.stats.access.announces_refused += 1;
            return None;
        }
        if hops.len() > 1 && !access.cluster() {
            tracing::debug!(%path, hops = hops.len(), "announcement refused: a forwarded route needs the cluster right");
            self.stats.access.forwards_refused += 1;
            return None;
        }
        Some(access.absolute(&path))
    }

    /// The absolute path of a request from `sid` for `path` (relative to its root), or `None`
    /// (counted) when its access does not let it subscribe there.
    pub(super) fn admit_request(&mut self, sid: SessionId, path: Path, ask: Ask) -> Option<Path> {
        let Some(access) = self.peer(sid)?.access.as_ref() else { return Some(path) };
        if access.can_subscribe(&path) {
            return Some(access.absolute(&path));
        }
        tracing::debug!(%path, ?ask, "request refused: not allowed to subscribe");
        let counter = match ask {
            Ask::Subscribe => &mut self.stats.access.subscribes_refused,
            Ask::Fetch => &mut self.stats.access.fetches_refused,
            Ask::TrackInfo => &mut self.stats.access.track_infos_refused,
        };
        *counter += 1;
        None
    }

    /// The absolute path of `path` as `sid` names it (relative to its root).
    pub(super) fn absolute_for(&self, sid: SessionId, path: Path) -> Path {
        match self.peer(sid).and_then(|p| p.access.as_ref()) {
            Some(access) => access.absolute(&path),
            None => path,
        }
    }

    /// How `sid` names the absolute `path` (relative to its root), or `None` when the path is
    /// outside its root.
    pub(super) fn relative_for(&self, sid: SessionId, path: &Path) -> Option<Path> {
        match self.peer(sid)?.access.as_ref() {
            Some(access) => access.relative(path),
            None => Some(path.clone()),
        }
    }

    /// How `sid` names the absolute `path`, and whether it may see it announced (`None`: it is
    /// told nothing, being outside the path or still waiting for its access).
    pub(super) fn view_for(&self, sid: SessionId, path: &Path) -> Option<(Path, bool)> {
        let peer = self.peer(sid).filter(|p| !p.pending)?;
        match peer.access.as_ref() {
            Some(access) => {
                let relative = access.relative(path)?;
                let visible = access.can_subscribe(&relative);
                Some((relative, visible))
            }
            None => Some((path.clone(), true)),
        }
    }

    /// A peer opened an announce interest: one reaching nothing the session may see is counted
    /// (it is answered with an empty set, as moq-net does).
    pub(super) fn on_announce_interest(&mut self, sid: SessionId, prefix: &Path) {
        let Some(access) = self.peer(sid).and_then(|p| p.access.as_ref()) else { return };
        if !access.may_watch(prefix) {
            tracing::debug!(%prefix, "announce interest outside the session's scope");
            self.stats.access.interests_out_of_scope += 1;
        }
    }
}
