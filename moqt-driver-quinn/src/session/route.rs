//! Node events to handle queues: groups and frames to readers, announcements to watchers,
//! requests to broadcast publishers, fetch and probe answers to their readers. Queues a slow
//! application does not read are bounded here (see the module docs of `session`).

use std::sync::Arc;

use moqt_proto::relay::{NodeEvent, WatchId};
use moqt_proto::session::stream_code;

use super::owner::{Owner, MAX_BROADCAST_REQUESTS, MAX_PROBE_REPORTS};
use super::{Announcement, BroadcastRequest, FetchRequest, GroupReader};
use crate::sync::{End, Queue};

impl Owner {
    /// Routes one node event to the handles (connection events go to `link`).
    pub(super) fn event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::SessionClosed { session, code, reason } => self.session_closed(session, code, reason),
            NodeEvent::Goaway { session, uri } => self.goaway(session, uri),
            NodeEvent::PeerSetup { .. } | NodeEvent::RouteSwitched { .. } | NodeEvent::AwaitingAccess { .. } => {}
            NodeEvent::TrackRequested { path, track } => {
                if let Some(b) = self.paths.get(&path).and_then(|k| self.broadcasts.get(k)) {
                    b.queue.push(BroadcastRequest::Track(track), 0, MAX_BROADCAST_REQUESTS);
                }
            }
            NodeEvent::TrackSubscribers { track, count } => {
                if let Some(c) = self.counters.get(&track) {
                    c.set(count);
                }
            }
            NodeEvent::FetchRequested { request, path, track, group } => {
                let broadcast = self.paths.get(&path).and_then(|k| self.broadcasts.get(k));
                match broadcast {
                    Some(b) if b.queue.receiver_alive() => {
                        let req = FetchRequest::new(self.handle.clone(), request, track, group);
                        // An evicted request is refused when it drops.
                        drop(b.queue.push(BroadcastRequest::Fetch(req), 0, MAX_BROADCAST_REQUESTS));
                    }
                    _ => self.driver.node().serve_fetch_reject(request, stream_code::NOT_FOUND),
                }
            }
            NodeEvent::FetchServed { path, track, group } => {
                if let Some(b) = self.paths.get(&path).and_then(|k| self.broadcasts.get(k)) {
                    b.queue.push(BroadcastRequest::FetchServed { track, group }, 0, MAX_BROADCAST_REQUESTS);
                }
            }
            NodeEvent::Announced { watch, path } => self.announcement(watch, Announcement::Active(path)),
            NodeEvent::Unannounced { watch, path } => self.announcement(watch, Announcement::Ended(path)),
            NodeEvent::WatchEnded { watch, code } => {
                if let Some((key, q)) = self.watch_queues.remove(&watch) {
                    self.watches.remove(&key);
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            NodeEvent::GroupStarted { subscription, sequence } => {
                let Some((key, readers)) = self.readers.get(&subscription) else { return };
                let queue = Arc::new(Queue::new());
                let reader = GroupReader::new(self.handle.clone(), *key, sequence, queue.clone());
                self.groups.insert((subscription, sequence), queue);
                if let Some(evicted) = readers.push(reader, 0, self.options.max_pending_groups) {
                    // Dropping it stops its group.
                    tracing::debug!(sequence = evicted.sequence(), "dropping an unread group");
                    drop(evicted);
                }
            }
            NodeEvent::Frame { subscription, sequence, payload, .. } => {
                let Some(q) = self.groups.get(&(subscription, sequence)) else { return };
                let n = payload.len();
                q.push(payload, n, usize::MAX);
                if q.backlog().1 > self.options.max_buffered_bytes {
                    q.close(End::Code(stream_code::TOO_FAR_BEHIND));
                    self.groups.remove(&(subscription, sequence));
                    self.driver.node().stop_group(subscription, sequence);
                }
            }
            NodeEvent::GroupEnded { subscription, sequence, code } => {
                if let Some(q) = self.groups.remove(&(subscription, sequence)) {
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            NodeEvent::SubscriptionEnded { subscription, code } => {
                if let Some((key, q)) = self.readers.remove(&subscription) {
                    self.subscriptions.remove(&key);
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            NodeEvent::FetchFrame { fetch, payload, .. } => {
                let Some((_, q)) = self.fetch_queues.get(&fetch) else { return };
                let n = payload.len();
                q.push(payload, n, usize::MAX);
                if q.backlog().1 > self.options.max_buffered_bytes {
                    q.close(End::Code(stream_code::TOO_FAR_BEHIND));
                    if let Some((key, _)) = self.fetch_queues.remove(&fetch) {
                        self.fetches.remove(&key);
                    }
                    self.driver.node().cancel_fetch(fetch);
                }
            }
            NodeEvent::FetchEnded { fetch, code } => {
                if let Some((key, q)) = self.fetch_queues.remove(&fetch) {
                    self.fetches.remove(&key);
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
            NodeEvent::ProbeReport { probe, report, .. } => {
                if let Some(q) = self.probe_queues.get(&probe) {
                    q.push(report, 0, MAX_PROBE_REPORTS);
                }
            }
            NodeEvent::ProbeEnded { probe, code, .. } => {
                if let Some(q) = self.probe_queues.remove(&probe) {
                    q.close(code.map_or(End::Done, End::Code));
                }
            }
        }
    }

    fn announcement(&mut self, watch: WatchId, a: Announcement) {
        let Some((key, q)) = self.watch_queues.get(&watch) else { return };
        q.push(a, 0, usize::MAX);
        if q.backlog().0 > self.options.max_pending_announcements {
            q.close(End::Code(stream_code::TOO_FAR_BEHIND));
            let key = *key;
            self.watches.remove(&key);
            self.watch_queues.remove(&watch);
            self.driver.node().unwatch(watch);
        }
    }
}
