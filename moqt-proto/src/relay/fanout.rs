//! The data path: each group and frame of a track goes into its cache and to every subscriber,
//! as a `Bytes` clone (never a copy), within each subscriber's lite-06 group and frame bounds.
//! Late joiners start at the first frame of the current group. The cache is bounded per group,
//! per track and across the node; a group past its limit is cut for everyone with
//! `GROUP_TOO_LARGE`.

use bytes::Bytes;
use smallvec::SmallVec;

use super::cache::{CachedFrame, Pushed};
use super::node::Node;
use super::track::{DownGroup, Subscriber};
use super::{NodeEvent, SessionId, TrackId};
use crate::session::{stream_code, Error, GroupId};

/// Where a frame came from: the upstream group stream, if it came over a session.
pub(super) type Source = Option<(SessionId, GroupId)>;

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
            self.group_frame(idx, None, sequence, timestamp, payload);
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
                d.groups.retain(|g| g.stream != Some(group));
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
        let sequence = latest.sequence;
        if !d.wants(sequence) {
            return;
        }
        let (first, last) = (d.first_frame(sequence), d.last_frame(sequence));
        let frames: SmallVec<[CachedFrame; 16]> = latest.frames.iter().cloned().collect();
        let complete = latest.complete || last.is_some_and(|l| (l as usize) < frames.len());
        let end = last.map_or(frames.len(), |l| (l as usize + 1).min(frames.len()));
        let wanted = &frames[(first as usize).min(end)..end];
        let stream = match subscriber {
            Subscriber::Session(sid, publication) => {
                let now = self.now;
                let Some(session) = self.session_mut(sid) else { return };
                session.handle_timeout(now);
                let Ok(group) = session.open_group_at(publication, sequence, first) else { return };
                for f in wanted {
                    if session.write_frame(group, f.timestamp, f.payload.clone()).is_err() {
                        let _ = session.reset_group(group, stream_code::INTERNAL);
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
                for f in wanted {
                    let payload = f.payload.clone();
                    self.events.push_back(NodeEvent::Frame { subscription, sequence, timestamp: f.timestamp, payload });
                }
                if complete {
                    self.events.push_back(NodeEvent::GroupEnded { subscription, sequence, code: None });
                }
                None
            }
        };
        self.stats.frames_out += wanted.len() as u64;
        if !complete {
            let track = self.track_mut(idx);
            if let Some(d) = track.downstreams.iter_mut().find(|d| d.subscriber == subscriber) {
                d.groups.push(DownGroup { sequence, stream, next_frame: frames.len() as u64 });
            }
        } else if last.is_some() {
            self.finish_downstream(idx, subscriber);
        }
    }

    pub(super) fn group_started(&mut self, idx: usize, sequence: u64) {
        let now = self.now;
        let mut finished: SmallVec<[Subscriber; 4]> = SmallVec::new();
        let Node { tracks, peers, dirty, events, downstream_groups, cache_bytes, .. } = self;
        let Some(track) = tracks[idx].as_mut() else { return };
        let before = track.cache.bytes();
        track.cache.start(sequence, now);
        *cache_bytes = *cache_bytes + track.cache.bytes() - before;
        for d in track.downstreams.iter_mut() {
            if d.past_end(sequence) {
                if d.groups.is_empty() {
                    finished.push(d.subscriber);
                }
                continue;
            }
            if !d.wants(sequence) || d.groups.iter().any(|g| g.sequence == sequence) {
                continue;
            }
            let first = d.first_frame(sequence);
            match d.subscriber {
                Subscriber::Session(sid, publication) => {
                    let Some(peer) = peers.get_mut(sid.index()).and_then(|p| p.as_mut()) else { continue };
                    // The session may not have heard the time for a while (a subscriber only
                    // receives): the group's age counts from now.
                    peer.session.handle_timeout(now);
                    if let Ok(group) = peer.session.open_group_at(publication, sequence, first) {
                        d.groups.push(DownGroup { sequence, stream: Some(group), next_frame: 0 });
                        downstream_groups.insert((sid, group), (idx, sequence));
                    }
                    if !peer.dirty {
                        peer.dirty = true;
                        dirty.push(sid);
                    }
                }
                Subscriber::Local(subscription) => {
                    d.groups.push(DownGroup { sequence, stream: None, next_frame: 0 });
                    events.push_back(NodeEvent::GroupStarted { subscription, sequence });
                }
            }
        }
        for subscriber in finished {
            self.finish_downstream(idx, subscriber);
        }
    }

    /// Caches a frame and queues a clone of it on every downstream group: the fan-out hot path.
    pub(super) fn group_frame(&mut self, idx: usize, source: Source, sequence: u64, timestamp: u64, payload: Bytes) {
        let limits = self.config.cache;
        let mut finished: SmallVec<[Subscriber; 4]> = SmallVec::new();
        let Node { tracks, peers, dirty, events, downstream_groups, stats, cache_bytes, .. } = self;
        let Some(track) = tracks[idx].as_mut() else { return };
        let size = payload.len();
        stats.frames_in += 1;
        stats.bytes_in += size as u64;
        let before = track.cache.bytes();
        let pushed = track.cache.push(sequence, CachedFrame { timestamp, payload: payload.clone() }, &limits);
        *cache_bytes = *cache_bytes + track.cache.bytes() - before;
        if pushed == Pushed::GroupTooLarge {
            return self.cut_group(idx, source, sequence);
        }
        for d in track.downstreams.iter_mut() {
            let Some(pos) = d.groups.iter().position(|g| g.sequence == sequence) else { continue };
            let index = d.groups[pos].next_frame;
            d.groups[pos].next_frame += 1;
            if index < d.first_frame(sequence) {
                continue;
            }
            let last = d.last_frame(sequence) == Some(index);
            match (d.subscriber, d.groups[pos].stream) {
                (Subscriber::Session(sid, _), Some(group)) => {
                    let Some(peer) = peers.get_mut(sid.index()).and_then(|p| p.as_mut()) else { continue };
                    match peer.session.write_frame(group, timestamp, payload.clone()) {
                        Ok(()) => {
                            stats.frames_out += 1;
                            stats.bytes_out += size as u64;
                            if last {
                                let _ = peer.session.finish_group(group);
                            }
                        }
                        Err(err) => {
                            // Dropped by the delivery policy, or a frame this version cannot
                            // carry: either way the subscriber's group ends here.
                            if err != Error::GroupDropped {
                                let _ = peer.session.reset_group(group, stream_code::TIMESTAMP_MISMATCH);
                            }
                            d.groups.swap_remove(pos);
                            downstream_groups.remove(&(sid, group));
                        }
                    }
                    if last {
                        d.groups.retain(|g| g.stream != Some(group));
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
                    if last {
                        d.groups.swap_remove(pos);
                        events.push_back(NodeEvent::GroupEnded { subscription, sequence, code: None });
                    }
                }
                (Subscriber::Session(..), None) => {}
            }
            if last && d.past_end(sequence + 1) && d.groups.is_empty() {
                finished.push(d.subscriber);
            }
        }
        for subscriber in finished {
            self.finish_downstream(idx, subscriber);
        }
        if self.cache_bytes > self.config.max_cache_bytes {
            self.enforce_cache_budget();
        }
    }

    pub(super) fn group_ended(&mut self, idx: usize, sequence: u64, code: Option<u64>) {
        let now = self.now;
        let limits = self.config.cache;
        let mut finished: SmallVec<[Subscriber; 4]> = SmallVec::new();
        let Node { tracks, peers, dirty, events, downstream_groups, cache_bytes, .. } = self;
        let Some(track) = tracks[idx].as_mut() else { return };
        let before = track.cache.bytes();
        track.cache.end(sequence, code.is_none());
        track.cache.trim(now, &limits);
        *cache_bytes = *cache_bytes + track.cache.bytes() - before;
        for d in track.downstreams.iter_mut() {
            let Some(pos) = d.groups.iter().position(|g| g.sequence == sequence) else { continue };
            let group = d.groups.swap_remove(pos).stream;
            if d.past_end(sequence + 1) && d.groups.is_empty() {
                finished.push(d.subscriber);
            }
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
        for subscriber in finished {
            self.finish_downstream(idx, subscriber);
        }
    }

    /// A group grew past its limit: every subscriber's copy is reset and the source stopped.
    fn cut_group(&mut self, idx: usize, source: Source, sequence: u64) {
        self.stats.limits.groups_cut += 1;
        tracing::debug!(sequence, "a group passed the per-group limit: cutting it");
        if let Some((sid, group)) = source {
            if let Some(s) = self.session_mut(sid) {
                let _ = s.stop_group(group, stream_code::GROUP_TOO_LARGE);
            }
        }
        self.group_ended(idx, sequence, Some(stream_code::GROUP_TOO_LARGE));
    }

    /// Evicts the oldest non-latest cached groups node-wide until the cache is an eighth of the
    /// way under its budget, so the scan over tracks runs once per eighth, not per frame.
    fn enforce_cache_budget(&mut self) {
        let target = self.config.max_cache_bytes - self.config.max_cache_bytes / 8;
        while self.cache_bytes > target {
            let victim = (0..self.tracks.len())
                .filter_map(|i| Some((self.tracks[i].as_ref()?.cache.oldest_evictable()?, i)))
                .min()
                .map(|(_, i)| i);
            let Some(i) = victim else { break };
            let freed = self.track_mut(i).cache.evict_oldest();
            self.cache_bytes -= freed;
            self.stats.limits.cache_evictions += 1;
            if freed == 0 {
                break;
            }
        }
    }
}
