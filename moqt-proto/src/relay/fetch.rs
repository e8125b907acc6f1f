//! Fetches and TRACK requests through the node. A fetch is served from the track's cache when
//! the group is there; otherwise it goes upstream (or, for a local track, to the application)
//! once, however many ask, and the answer is cached. TRACK requests are answered from the
//! local track's properties or forwarded to the route's session once per request.

use bytes::Bytes;

use super::access::Ask;
use super::cache::CachedFrame;
use super::node::{Node, NodeTimer};
use super::{FetchRequestId, LocalFetchId, NodeEvent, Route, SessionId, Source};
use crate::message::{Fetch, TrackInfo};
use crate::path::Path;
use crate::session::{stream_code, Error, FetchId, TrackRequestId};

/// What a fetch asks for: (broadcast, track, group).
pub(super) type FetchKey = (Path, String, u64);

/// Who asked for a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Requester {
    /// A session's fetch.
    Session(SessionId, FetchId),
    /// The local application's.
    Local(LocalFetchId),
}

/// One waiter of a fetch, with the lite-06 frame bounds it asked for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Waiter {
    requester: Requester,
    start_frame: u64,
    end_frame: Option<u64>,
}

/// A fetch in progress: who waits, and the frames so far (at most `max_group_bytes`).
#[derive(Debug)]
pub(super) struct PendingFetch {
    /// Its timer key.
    id: u64,
    waiters: Vec<Waiter>,
    frames: Vec<CachedFrame>,
    bytes: usize,
    /// The upstream fetch, if it went to a session.
    upstream: Option<(SessionId, FetchId)>,
}

impl Node {
    /// Fetches one past group for the local application: from the cache, the best route, or
    /// else `via`. Frames arrive as [`NodeEvent::FetchFrame`], then [`NodeEvent::FetchEnded`].
    pub fn fetch(&mut self, path: Path, track: &str, group: u64, via: Option<SessionId>) -> LocalFetchId {
        let id = LocalFetchId(self.next_handle());
        let request = Fetch { path, track: track.to_string(), priority: 0, group, start_frame: 0, end_frame: None };
        self.start_fetch(Requester::Local(id), request, via);
        self.pump();
        id
    }

    /// Abandons a local fetch (no event follows).
    pub fn cancel_fetch(&mut self, fetch: LocalFetchId) {
        for pending in self.fetches.values_mut() {
            pending.waiters.retain(|w| w.requester != Requester::Local(fetch));
        }
    }

    /// Serves one frame of a fetch the application was asked for.
    pub fn serve_fetch_frame(&mut self, request: FetchRequestId, timestamp: u64, payload: Bytes) {
        let Some(key) = self.fetch_requests.get(&request).cloned() else { return };
        if !self.add_fetch_frame(&key, CachedFrame { timestamp, payload }) {
            self.fetch_requests.remove(&request);
        }
        self.pump();
    }

    /// Adds a frame to a pending fetch; past `max_group_bytes` the fetch fails (`false`).
    fn add_fetch_frame(&mut self, key: &FetchKey, frame: CachedFrame) -> bool {
        let max = self.config.cache.max_group_bytes;
        let Some(p) = self.fetches.get_mut(key) else { return false };
        p.bytes += frame.payload.len();
        if p.bytes <= max {
            p.frames.push(frame);
            return true;
        }
        self.stats.limits.fetches_too_large += 1;
        if let Some((sid, fetch)) = p.upstream {
            self.fetch_upstreams.remove(&(sid, fetch));
            if let Some(s) = self.session_mut(sid) {
                let _ = s.cancel_fetch(fetch);
            }
        }
        self.complete_fetch(key.clone(), Some(stream_code::GROUP_TOO_LARGE));
        false
    }

    /// A pending fetch took longer than `request_timeout`: its waiters are refused.
    pub(super) fn fetch_expired(&mut self, id: u64) {
        let Some(key) = self.fetches.iter().find(|(_, p)| p.id == id).map(|(k, _)| k.clone()) else { return };
        self.stats.limits.requests_timed_out += 1;
        if let Some((sid, fetch)) = self.fetches.get(&key).and_then(|p| p.upstream) {
            self.fetch_upstreams.remove(&(sid, fetch));
            if let Some(s) = self.session_mut(sid) {
                let _ = s.cancel_fetch(fetch);
            }
        }
        self.fetch_requests.retain(|_, k| *k != key);
        self.complete_fetch(key, Some(stream_code::CONTROL_TIMEOUT));
    }

    /// Registers a pending fetch and arms its timeout.
    fn pend_fetch(&mut self, key: FetchKey, waiter: Waiter, upstream: Option<(SessionId, FetchId)>) {
        let id = self.next_handle();
        if let Some(at) = self.now.checked_add(self.config.request_timeout) {
            self.timers.arm(NodeTimer::Fetch(id), at);
        }
        self.fetches.insert(key, PendingFetch { id, waiters: vec![waiter], frames: Vec::new(), bytes: 0, upstream });
    }

    /// Completes a fetch the application was asked for.
    pub fn serve_fetch_finish(&mut self, request: FetchRequestId) {
        if let Some(key) = self.fetch_requests.remove(&request) {
            self.complete_fetch(key, None);
        }
        self.pump();
    }

    /// Refuses a fetch the application was asked for.
    pub fn serve_fetch_reject(&mut self, request: FetchRequestId, code: u64) {
        if let Some(key) = self.fetch_requests.remove(&request) {
            self.complete_fetch(key, Some(code));
        }
        self.pump();
    }

    pub(super) fn on_fetch(&mut self, requester: Requester, mut request: Fetch) {
        if let Requester::Session(sid, _) = requester {
            match self.admit_request(sid, request.path, Ask::Fetch) {
                Some(path) => request.path = path,
                None => return self.reject(requester, stream_code::UNAUTHORIZED),
            }
        }
        self.start_fetch(requester, request, None);
    }

    fn start_fetch(&mut self, requester: Requester, fetch: Fetch, via: Option<SessionId>) {
        let waiter = Waiter { requester, start_frame: fetch.start_frame, end_frame: fetch.end_frame };
        let key: FetchKey = (fetch.path.clone(), fetch.track.clone(), fetch.group);
        // A relay answers from its cache; the local application's own fetch of a remote track
        // goes to the network (the application asked for the publisher's answer).
        let local_broadcast = self.origin.is_local(&fetch.path);
        let cached: Option<Vec<CachedFrame>> = self
            .track_index
            .get(&(fetch.path.clone(), fetch.track.clone()))
            .and_then(|&i| self.tracks[i].as_ref())
            .filter(|_| matches!(requester, Requester::Session(..)) || local_broadcast)
            .and_then(|t| t.cache.get(fetch.group))
            .filter(|g| g.complete)
            .map(|g| g.frames.clone());
        if let Some(frames) = cached {
            if local_broadcast {
                self.events.push_back(NodeEvent::FetchServed {
                    path: fetch.path,
                    track: fetch.track,
                    group: fetch.group,
                });
            }
            return self.serve(waiter, &frames);
        }
        if let Some(pending) = self.fetches.get_mut(&key) {
            pending.waiters.push(waiter);
            return;
        }
        let except = match requester {
            Requester::Session(sid, _) => Some(sid),
            Requester::Local(_) => None,
        };
        let up = match self.origin.best(&fetch.path, except).cloned() {
            Some(Route { source: Source::Local, .. }) => {
                let request = FetchRequestId(self.next_handle());
                self.fetch_requests.insert(request, key.clone());
                self.pend_fetch(key, waiter, None);
                self.events.push_back(NodeEvent::FetchRequested {
                    request,
                    path: fetch.path,
                    track: fetch.track,
                    group: fetch.group,
                });
                return;
            }
            Some(Route { source: Source::Session(up), .. }) => up,
            None => match via.or(self.default_upstream.filter(|_| matches!(requester, Requester::Local(_)))) {
                Some(up) => up,
                None => return self.reject(waiter.requester, stream_code::NOT_FOUND),
            },
        };
        let Some(upstream_path) = self.relative_for(up, &fetch.path) else {
            return self.reject(requester, stream_code::UNROUTABLE);
        };
        let Some(upstream) = self.session_mut(up) else { return self.reject(requester, stream_code::UNROUTABLE) };
        match upstream.fetch(upstream_path, &fetch.track, fetch.priority, fetch.group) {
            Ok(ufetch) => {
                self.stats.upstream_fetches += 1;
                self.fetch_upstreams.insert((up, ufetch), key.clone());
                self.pend_fetch(key, waiter, Some((up, ufetch)));
            }
            Err(_) => self.reject(requester, stream_code::UNROUTABLE),
        }
    }

    /// Sends a group's frames (within the waiter's bounds) to one waiter and ends its fetch.
    fn serve(&mut self, waiter: Waiter, frames: &[CachedFrame]) {
        let start = (waiter.start_frame as usize).min(frames.len());
        let end = waiter.end_frame.map_or(frames.len(), |e| (e as usize).saturating_add(1).min(frames.len()));
        let frames = &frames[start..end.max(start)];
        match waiter.requester {
            Requester::Session(sid, fetch) => {
                let Some(s) = self.session_mut(sid) else { return };
                for f in frames {
                    if s.fetch_frame(fetch, f.timestamp, f.payload.clone()).is_err() {
                        return;
                    }
                }
                let _ = s.fetch_finish(fetch);
            }
            Requester::Local(fetch) => {
                for f in frames {
                    self.events.push_back(NodeEvent::FetchFrame {
                        fetch,
                        timestamp: f.timestamp,
                        payload: f.payload.clone(),
                    });
                }
                self.events.push_back(NodeEvent::FetchEnded { fetch, code: None });
            }
        }
    }

    fn reject(&mut self, requester: Requester, code: u64) {
        match requester {
            Requester::Session(sid, fetch) => {
                if let Some(s) = self.session_mut(sid) {
                    let _ = s.fetch_reject(fetch, code);
                }
            }
            Requester::Local(fetch) => self.events.push_back(NodeEvent::FetchEnded { fetch, code: Some(code) }),
        }
    }

    /// A fetch's source finished: serve (and cache) or refuse every waiter.
    fn complete_fetch(&mut self, key: FetchKey, code: Option<u64>) {
        let Some(pending) = self.fetches.remove(&key) else { return };
        match code {
            None => {
                for w in &pending.waiters {
                    self.serve(*w, &pending.frames);
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
                for w in pending.waiters {
                    self.reject(w.requester, code);
                }
            }
        }
    }

    pub(super) fn on_fetch_cancelled(&mut self, sid: SessionId, fetch: FetchId) {
        for pending in self.fetches.values_mut() {
            pending.waiters.retain(|w| w.requester != Requester::Session(sid, fetch));
        }
    }

    pub(super) fn on_upstream_fetch_frame(
        &mut self,
        sid: SessionId,
        fetch: FetchId,
        timestamp: Option<u64>,
        payload: Bytes,
    ) {
        let Some(key) = self.fetch_upstreams.get(&(sid, fetch)) else { return };
        if let Some(p) = self.fetches.get_mut(key) {
            p.frames.push(CachedFrame { timestamp: timestamp.unwrap_or(0), payload });
        }
    }

    pub(super) fn on_upstream_fetch_ended(&mut self, sid: SessionId, fetch: FetchId, code: Option<u64>) {
        if let Some(key) = self.fetch_upstreams.remove(&(sid, fetch)) {
            self.complete_fetch(key, code);
        }
    }

    /// A session ended: fetches it fed fail, its waiters and TRACK requests go.
    pub(super) fn fetch_session_gone(&mut self, sid: SessionId) {
        let dead: Vec<FetchKey> =
            self.fetch_upstreams.iter().filter(|((s, _), _)| *s == sid).map(|(_, k)| k.clone()).collect();
        self.fetch_upstreams.retain(|(s, _), _| *s != sid);
        for p in self.fetches.values_mut() {
            p.waiters.retain(|w| !matches!(w.requester, Requester::Session(s, _) if s == sid));
        }
        for key in dead {
            self.complete_fetch(key, Some(stream_code::UNROUTABLE));
        }
        self.track_infos.retain(|(s, _), _| *s != sid);
        for waiters in self.track_infos.values_mut() {
            waiters.retain(|(s, _)| *s != sid);
        }
    }

    // ----- TRACK -----

    pub(super) fn on_track_request(&mut self, sid: SessionId, request: TrackRequestId, path: Path, name: String) {
        let Some(path) = self.admit_request(sid, path, Ask::TrackInfo) else {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.track_reject(request, stream_code::UNAUTHORIZED);
            }
            return;
        };
        let known = self.track_index.get(&(path.clone(), name.clone())).and_then(|&i| self.tracks[i].as_ref()?.info);
        if let Some(info) = known {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.track_reply(request, info);
            }
            return;
        }
        let Some(Route { source: Source::Session(up), .. }) = self.origin.best(&path, Some(sid)).cloned() else {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.track_reject(request, stream_code::NOT_FOUND);
            }
            return;
        };
        let Some(upstream_path) = self.relative_for(up, &path) else {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.track_reject(request, stream_code::UNROUTABLE);
            }
            return;
        };
        match self.session_mut(up).map(|s| s.track_info(upstream_path, &name)) {
            Some(Ok(upstream)) => {
                if let Some(at) = self.now.checked_add(self.config.request_timeout) {
                    self.timers.arm(NodeTimer::TrackInfo(up, upstream), at);
                }
                self.track_infos.entry((up, upstream)).or_default().push((sid, request));
            }
            // A lite-03/04 upstream has no TRACK stream to ask: answer with the model defaults,
            // as moq-net does (its publisher properties arrive later, in SUBSCRIBE_OK).
            Some(Err(Error::Unsupported)) => {
                if let Some(s) = self.session_mut(sid) {
                    let _ = s.track_reply(request, TrackInfo::default());
                }
            }
            _ => {
                if let Some(s) = self.session_mut(sid) {
                    let _ = s.track_reject(request, stream_code::UNROUTABLE);
                }
            }
        }
    }

    /// An upstream TRACK request took longer than `request_timeout`.
    pub(super) fn track_info_expired(&mut self, sid: SessionId, request: TrackRequestId) {
        if self.track_infos.contains_key(&(sid, request)) {
            self.stats.limits.requests_timed_out += 1;
            self.on_track_info(sid, request, Err(stream_code::CONTROL_TIMEOUT));
        }
    }

    pub(super) fn on_track_info(&mut self, sid: SessionId, request: TrackRequestId, result: Result<TrackInfo, u64>) {
        let Some(waiters) = self.track_infos.remove(&(sid, request)) else { return };
        for (ws, wreq) in waiters {
            let Some(s) = self.session_mut(ws) else { continue };
            let _ = match result {
                Ok(info) => s.track_reply(wreq, info),
                Err(code) => s.track_reject(wreq, if code == 0 { stream_code::NOT_FOUND } else { code }),
            };
        }
    }
}
