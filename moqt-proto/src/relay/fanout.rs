//! The data path: each group and frame of a track goes into its cache and to every subscriber,
//! as a `Bytes` clone (never a copy). Late joiners start at the first frame of the current group;
//! the cache is bounded per track and across the node.

use bytes::Bytes;
use smallvec::SmallVec;

use super::cache::CachedFrame;
use super::node::Node;
use super::track::Subscriber;
use super::{NodeEvent, SessionId, TrackId};
use crate::session::GroupId;

impl Node {
    /// Starts a group on a local track.
    pub fn publish_group(&mut self, track: TrackId, sequence: u64) {
        if let Some(&idx) = self.local_tracks.get(&track) {
            self.group_started(idx, sequence);
        }
        self.pump();
    }

    /// Writes a frame to a group of a local track.
    pub fn publish_frame(&mut self, track: TrackId, sequence: u64, timestamp: u64, payload: Bytes) {
        if let Some(&idx) = self.local_tracks.get(&track) {
            self.group_frame(idx, sequence, timestamp, payload);
        }
        self.pump();
    }

    /// Ends a group of a local track: cleanly, or reset with `code`.
    pub fn publish_group_end(&mut self, track: TrackId, sequence: u64, code: Option<u64>) {
        if let Some(&idx) = self.local_tracks.get(&track) {
            self.group_ended(idx, sequence, code);
        }
        self.pump();
    }

    pub(super) fn downstream_groups_remove(&mut self, sid: SessionId, group: GroupId) {
        self.downstream_groups.remove(&(sid, group));
    }

    /// A downstream session dropped one of its groups (expired, over budget, stopped).
    pub(super) fn on_group_dropped(&mut self, sid: SessionId, group: GroupId) {
        self.stats.groups_dropped += 1;
        let Some((idx, _)) = self.downstream_groups.remove(&(sid, group)) else { return };
        let Some(track) = self.tracks[idx].as_mut() else { return };
        for d in track.downstreams.iter_mut() {
            if matches!(d.subscriber, Subscriber::Session(s, _) if s == sid) {
                d.groups.retain(|(_, g)| *g != Some(group));
            }
        }
    }

    /// A new subscriber starts at the first frame of the current group.
    pub(super) fn late_join(&mut self, idx: usize, subscriber: Subscriber) {
        let track = self.track(idx);
        let Some(latest) = track.cache.latest() else { return };
        if latest.aborted {
            return;
        }
        let Some(d) = track.downstreams.iter().find(|d| d.subscriber == subscriber) else { return };
        if !d.wants(latest.sequence) {
            return;
        }
        let sequence = latest.sequence;
        let complete = latest.complete;
        let frames: SmallVec<[CachedFrame; 16]> = latest.frames.iter().cloned().collect();
        let group = match subscriber {
            Subscriber::Session(sid, publication) => {
                let now = self.now;
                let Some(session) = self.session_mut(sid) else { return };
                session.handle_timeout(now);
                let Ok(group) = session.open_group(publication, sequence) else { return };
                for f in &frames {
                    if session.write_frame(group, f.timestamp, f.payload.clone()).is_err() {
                        return;
                    }
                }
                if complete {
                    let _ = session.finish_group(group);
                } else {
                    self.downstream_groups.insert((sid, group), (idx, sequence));
                }
                Some(group)
            }
            Subscriber::Local(subscription) => {
                self.events.push_back(NodeEvent::GroupStarted { subscription, sequence });
                for f in &frames {
                    self.events.push_back(NodeEvent::Frame {
                        subscription,
                        sequence,
                        timestamp: f.timestamp,
                        payload: f.payload.clone(),
                    });
                }
                if complete {
                    self.events.push_back(NodeEvent::GroupEnded { subscription, sequence, code: None });
                }
                None
            }
        };
        self.stats.frames_out += frames.len() as u64;
        if !complete {
            let track = self.track_mut(idx);
            if let Some(d) = track.downstreams.iter_mut().find(|d| d.subscriber == subscriber) {
                d.groups.push((sequence, group));
            }
        }
    }

    pub(super) fn group_started(&mut self, idx: usize, sequence: u64) {
        let now = self.now;
        let Node { tracks, peers, dirty, events, downstream_groups, .. } = self;
        let Some(track) = tracks[idx].as_mut() else { return };
        track.cache.start(sequence, now);
        for d in track.downstreams.iter_mut() {
            if !d.wants(sequence) || d.groups.iter().any(|(s, _)| *s == sequence) {
                continue;
            }
            match d.subscriber {
                Subscriber::Session(sid, publication) => {
                    let Some(peer) = peers.get_mut(sid.index()).and_then(|p| p.as_mut()) else { continue };
                    // The session may not have heard the time for a while (a subscriber only
                    // receives): the group's age counts from now.
                    peer.session.handle_timeout(now);
                    if let Ok(group) = peer.session.open_group(publication, sequence) {
                        d.groups.push((sequence, Some(group)));
                        downstream_groups.insert((sid, group), (idx, sequence));
                    }
                    if !peer.dirty {
                        peer.dirty = true;
                        dirty.push(sid);
                    }
                }
                Subscriber::Local(subscription) => {
                    d.groups.push((sequence, None));
                    events.push_back(NodeEvent::GroupStarted { subscription, sequence });
                }
            }
        }
    }

    /// Caches a frame and queues a clone of it on every downstream group: the fan-out hot path.
    pub(super) fn group_frame(&mut self, idx: usize, sequence: u64, timestamp: u64, payload: Bytes) {
        let Node { tracks, peers, dirty, events, downstream_groups, stats, cache_bytes, .. } = self;
        let Some(track) = tracks[idx].as_mut() else { return };
        let size = payload.len();
        stats.frames_in += 1;
        stats.bytes_in += size as u64;
        if track.cache.push(sequence, CachedFrame { timestamp, payload: payload.clone() }) {
            *cache_bytes += size;
        }
        for d in track.downstreams.iter_mut() {
            let Some(pos) = d.groups.iter().position(|(s, _)| *s == sequence) else { continue };
            match (d.subscriber, d.groups[pos].1) {
                (Subscriber::Session(sid, _), Some(group)) => {
                    let Some(peer) = peers.get_mut(sid.index()).and_then(|p| p.as_mut()) else { continue };
                    if peer.session.write_frame(group, timestamp, payload.clone()).is_ok() {
                        stats.frames_out += 1;
                        stats.bytes_out += size as u64;
                    } else {
                        d.groups.swap_remove(pos);
                        downstream_groups.remove(&(sid, group));
                    }
                    if !peer.dirty {
                        peer.dirty = true;
                        dirty.push(sid);
                    }
                }
                (Subscriber::Local(subscription), _) => {
                    stats.frames_out += 1;
                    stats.bytes_out += size as u64;
                    events.push_back(NodeEvent::Frame { subscription, sequence, timestamp, payload: payload.clone() });
                }
                (Subscriber::Session(..), None) => {}
            }
        }
    }

    pub(super) fn group_ended(&mut self, idx: usize, sequence: u64, code: Option<u64>) {
        let now = self.now;
        let limits = self.config.cache;
        let Node { tracks, peers, dirty, events, downstream_groups, cache_bytes, .. } = self;
        let Some(track) = tracks[idx].as_mut() else { return };
        track.cache.end(sequence, code.is_none());
        *cache_bytes -= track.cache.trim(now, &limits);
        for d in track.downstreams.iter_mut() {
            let Some(pos) = d.groups.iter().position(|(s, _)| *s == sequence) else { continue };
            let (_, group) = d.groups.swap_remove(pos);
            match (d.subscriber, group) {
                (Subscriber::Session(sid, _), Some(group)) => {
                    downstream_groups.remove(&(sid, group));
                    let Some(peer) = peers.get_mut(sid.index()).and_then(|p| p.as_mut()) else { continue };
                    let _ = match code {
                        None => peer.session.finish_group(group),
                        Some(code) => peer.session.reset_group(group, code),
                    };
                    if !peer.dirty {
                        peer.dirty = true;
                        dirty.push(sid);
                    }
                }
                (Subscriber::Local(subscription), _) => {
                    events.push_back(NodeEvent::GroupEnded { subscription, sequence, code });
                }
                (Subscriber::Session(..), None) => {}
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
}
