//! The owner task of one connection: it owns a one-session `Node` and the connection's I/O,
//! turns handle requests into node calls, and routes node events into handle queues.
//!
//! The loop, once per wake-up: run due timers; hand the node's commands to the I/O and its
//! events to the queues (repeating until both are empty); wait for the next I/O event, handle
//! request or timer (alternating which source goes first, so neither a busy network nor a busy
//! application starves the other); feed it to the node; take whatever else the I/O has ready.

use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use moqt_proto::message::{Probe, TrackInfo};
use moqt_proto::relay::{
    FetchRequestId, LocalFetchId, LocalSubscriptionId, Node, NodeConfig, NodeEvent, SessionId, TrackId, WatchId,
};
use moqt_proto::session::{session_code, stream_code, Config, Perspective, ProbeId, SubscribeParams};
use moqt_proto::{Path, TransportEvent};
use rustc_hash::FxHashMap;

use super::Shared;
use super::{Announcement, BroadcastRequest, CloseInfo, Error, FetchRequest, GroupReader, Session, SessionOptions};
use crate::connection::{Connection, TransportKind};
use crate::io::ConnectionIo;
use crate::rt::{Runtime, Sleep};
use crate::sync::{Counter, End, Queue};

/// Most requests a broadcast queues for the application (tracks to create, fetches to serve).
const MAX_BROADCAST_REQUESTS: usize = 64;
/// Most probe reports queued for the application.
const MAX_PROBE_REPORTS: usize = 16;
/// I/O events taken per wake-up after the first, before the loop looks at other sources.
const IO_BATCH: usize = 64;

/// What a handle asks of the owner.
pub(super) enum Request {
    Publish {
        key: u64,
        path: Path,
        queue: Arc<Queue<BroadcastRequest>>,
    },
    Unpublish {
        key: u64,
    },
    CreateTrack {
        broadcast: u64,
        key: u64,
        name: String,
        subscribers: Arc<Counter>,
    },
    DropTrack {
        key: u64,
    },
    OpenGroup {
        track: u64,
        sequence: u64,
    },
    WriteFrame {
        track: u64,
        sequence: u64,
        timestamp: u64,
        payload: Bytes,
    },
    EndGroup {
        track: u64,
        sequence: u64,
        code: Option<u64>,
    },
    Serve {
        request: FetchRequestId,
        action: Serve,
    },
    Subscribe {
        key: u64,
        path: Path,
        track: String,
        params: SubscribeParams,
        queue: Arc<Queue<GroupReader>>,
    },
    Unsubscribe {
        key: u64,
    },
    StopGroup {
        subscription: u64,
        sequence: u64,
    },
    Watch {
        key: u64,
        prefix: Path,
        queue: Arc<Queue<Announcement>>,
    },
    Unwatch {
        key: u64,
    },
    Fetch {
        key: u64,
        path: Path,
        track: String,
        group: u64,
        queue: Arc<Queue<Bytes>>,
    },
    CancelFetch {
        key: u64,
    },
    Probe {
        key: u64,
        target: Option<u64>,
        queue: Arc<Queue<Probe>>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    ProbeClose {
        key: u64,
    },
    Goaway {
        uri: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Close {
        code: u64,
        reason: String,
    },
    /// Every application handle is gone.
    Dropped,
}

/// How the application answers a fetch it serves.
pub(super) enum Serve {
    Frame(u64, Bytes),
    Finish,
    Reject(u64),
}

struct Broadcast {
    path: Path,
    queue: Arc<Queue<BroadcastRequest>>,
}

enum Step {
    Io(Option<TransportEvent>),
    Request(Option<Request>),
    Timeout,
}

/// The owner of one connection. See the module docs.
pub(super) struct Owner {
    node: Node,
    sid: SessionId,
    io: ConnectionIo,
    runtime: Runtime,
    timer: Option<Sleep>,
    requests: mpsc::UnboundedReceiver<Request>,
    requests_open: bool,
    /// A handle without a token, for the readers the owner creates (it never keeps the session
    /// open).
    handle: Session,
    options: SessionOptions,
    shared: Arc<Shared>,
    broadcasts: FxHashMap<u64, Broadcast>,
    /// The broadcast that currently owns each path.
    paths: FxHashMap<Path, u64>,
    tracks: FxHashMap<u64, TrackId>,
    counters: FxHashMap<TrackId, Arc<Counter>>,
    subscriptions: FxHashMap<u64, LocalSubscriptionId>,
    readers: FxHashMap<LocalSubscriptionId, (u64, Arc<Queue<GroupReader>>)>,
    groups: FxHashMap<(LocalSubscriptionId, u64), Arc<Queue<Bytes>>>,
    watches: FxHashMap<u64, WatchId>,
    watch_queues: FxHashMap<WatchId, (u64, Arc<Queue<Announcement>>)>,
    fetches: FxHashMap<u64, LocalFetchId>,
    fetch_queues: FxHashMap<LocalFetchId, (u64, Arc<Queue<Bytes>>)>,
    probes: FxHashMap<u64, ProbeId>,
    probe_queues: FxHashMap<ProbeId, Arc<Queue<Probe>>>,
}

impl Owner {
    pub(super) fn new(
        connection: Connection,
        perspective: Perspective,
        path: Option<String>,
        options: SessionOptions,
        requests: mpsc::UnboundedReceiver<Request>,
        handle: Session,
        runtime: &Runtime,
    ) -> Owner {
        let now = Instant::now();
        let mut node = Node::new(NodeConfig { hop_id: options.hop_id, ..NodeConfig::client() }, now);
        let mut config = Config::new(connection.version(), perspective);
        config.session_limits = options.limits;
        if perspective == Perspective::Client && connection.kind() == TransportKind::RawQuic {
            config.setup_path = path.filter(|p| !p.is_empty() && p != "/");
        }
        let sid = node.add_session(config, now);
        Owner {
            node,
            sid,
            io: ConnectionIo::new(connection),
            runtime: runtime.clone(),
            timer: None,
            requests,
            requests_open: true,
            shared: handle.shared.clone(),
            handle,
            options,
            broadcasts: FxHashMap::default(),
            paths: FxHashMap::default(),
            tracks: FxHashMap::default(),
            counters: FxHashMap::default(),
            subscriptions: FxHashMap::default(),
            readers: FxHashMap::default(),
            groups: FxHashMap::default(),
            watches: FxHashMap::default(),
            watch_queues: FxHashMap::default(),
            fetches: FxHashMap::default(),
            fetch_queues: FxHashMap::default(),
            probes: FxHashMap::default(),
            probe_queues: FxHashMap::default(),
        }
    }

    /// The loop: see the module docs.
    pub(super) async fn run(mut self) {
        let mut turn = false;
        loop {
            let now = Instant::now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
            self.flush();
            if self.shared.closed.get().is_some() {
                break;
            }
            match (self.node.poll_timeout(), &mut self.timer) {
                (Some(d), Some(t)) => t.reset(d),
                (Some(d), None) => self.timer = Some(Sleep::until(&self.runtime, d)),
                (None, _) => self.timer = None,
            }
            turn = !turn;
            let step = std::future::poll_fn(|cx| {
                let requests_first = turn && self.requests_open;
                if requests_first {
                    if let Poll::Ready(req) = self.requests.poll_next_unpin(cx) {
                        return Poll::Ready(Step::Request(req));
                    }
                }
                if let Poll::Ready(ev) = self.io.poll_event(cx) {
                    return Poll::Ready(Step::Io(ev));
                }
                if self.requests_open && !requests_first {
                    if let Poll::Ready(req) = self.requests.poll_next_unpin(cx) {
                        return Poll::Ready(Step::Request(req));
                    }
                }
                if let Some(timer) = &mut self.timer {
                    if timer.poll_expired(cx).is_ready() {
                        return Poll::Ready(Step::Timeout);
                    }
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            match step {
                Step::Io(Some(ev)) => self.node.handle(self.sid, now, ev),
                Step::Io(None) => {
                    // The transport is gone; make sure the core knows.
                    let closed =
                        TransportEvent::Closed { code: session_code::INTERNAL, reason: "transport ended".into() };
                    self.node.handle(self.sid, now, closed);
                }
                Step::Request(Some(req)) => self.request(req),
                Step::Request(None) => {
                    self.requests_open = false;
                    self.node.close_session(self.sid, session_code::NO_ERROR, "session dropped");
                }
                Step::Timeout => {
                    self.timer = None;
                    self.node.handle_timeout(now);
                }
            }
            self.node.set_rtt(self.sid, self.io.connection().rtt());
            for _ in 0..IO_BATCH {
                let ready = futures::FutureExt::now_or_never(std::future::poll_fn(|cx| match self.io.poll_event(cx) {
                    Poll::Ready(Some(ev)) => Poll::Ready(Some(ev)),
                    _ => Poll::Ready(None),
                }));
                let Some(ev) = ready.flatten() else { break };
                self.node.handle(self.sid, Instant::now(), ev);
            }
        }
        self.finish();
    }

    /// Hands the node's commands to the I/O and its events to the handles, until both are empty.
    fn flush(&mut self) {
        loop {
            while let Some((_, cmd)) = self.node.poll_command() {
                self.io.command(cmd);
            }
            let Some(event) = self.node.poll_event() else { break };
            self.event(event);
        }
    }

    /// Ends every handle after the session closed.
    fn finish(&mut self) {
        let info = self.shared.closed.get().unwrap_or(CloseInfo { code: 0, reason: String::new() });
        // A session closed without error ends its streams normally.
        let end = if info.code == session_code::NO_ERROR { End::Done } else { End::Code(info.code) };
        for (_, q) in self.readers.values() {
            q.close(end);
        }
        for q in self.groups.values() {
            q.close(end);
        }
        for (_, q) in self.fetch_queues.values() {
            q.close(end);
        }
        for (_, q) in self.watch_queues.values() {
            q.close(end);
        }
        for q in self.probe_queues.values() {
            q.close(end);
        }
        for b in self.broadcasts.values() {
            b.queue.close(end);
        }
    }

    fn request(&mut self, req: Request) {
        let sid = self.sid;
        match req {
            Request::Publish { key, path, queue } => {
                if let Some(old) = self.paths.insert(path.clone(), key) {
                    if let Some(b) = self.broadcasts.remove(&old) {
                        b.queue.close(End::Done);
                    }
                }
                self.broadcasts.insert(key, Broadcast { path: path.clone(), queue });
                self.node.publish_broadcast(path);
            }
            Request::Unpublish { key } => {
                let Some(b) = self.broadcasts.remove(&key) else { return };
                b.queue.close(End::Done);
                if self.paths.get(&b.path) == Some(&key) {
                    self.paths.remove(&b.path);
                    self.node.unpublish_broadcast(&b.path);
                }
            }
            Request::CreateTrack { broadcast, key, name, subscribers } => {
                let Some(b) = self.broadcasts.get(&broadcast) else { return };
                let id = self.node.publish_track(b.path.clone(), &name, TrackInfo::default());
                subscribers.set(self.node.track_subscribers(id));
                self.tracks.insert(key, id);
                self.counters.insert(id, subscribers);
            }
            Request::DropTrack { key } => {
                if let Some(id) = self.tracks.remove(&key) {
                    self.counters.remove(&id);
                    self.node.end_local_track(id);
                }
            }
            Request::OpenGroup { track, sequence } => {
                if let Some(&id) = self.tracks.get(&track) {
                    self.node.publish_group(id, sequence);
                }
            }
            Request::WriteFrame { track, sequence, timestamp, payload } => {
                if let Some(&id) = self.tracks.get(&track) {
                    self.node.publish_frame(id, sequence, timestamp, payload);
                }
            }
            Request::EndGroup { track, sequence, code } => {
                if let Some(&id) = self.tracks.get(&track) {
                    self.node.publish_group_end(id, sequence, code);
                }
            }
            Request::Serve { request, action } => match action {
                Serve::Frame(timestamp, payload) => self.node.serve_fetch_frame(request, timestamp, payload),
                Serve::Finish => self.node.serve_fetch_finish(request),
                Serve::Reject(code) => self.node.serve_fetch_reject(request, code),
            },
            Request::Subscribe { key, path, track, params, queue } => {
                let id = self.node.subscribe(path, &track, params, Some(sid));
                self.subscriptions.insert(key, id);
                self.readers.insert(id, (key, queue));
            }
            Request::Unsubscribe { key } => {
                if let Some(id) = self.subscriptions.remove(&key) {
                    self.readers.remove(&id);
                    self.groups.retain(|(s, _), _| *s != id);
                    self.node.unsubscribe(id);
                }
            }
            Request::StopGroup { subscription, sequence } => {
                if let Some(&id) = self.subscriptions.get(&subscription) {
                    if self.groups.remove(&(id, sequence)).is_some() {
                        self.node.stop_group(id, sequence);
                    }
                }
            }
            Request::Watch { key, prefix, queue } => match self.node.watch(prefix, Some(sid)) {
                Ok(id) => {
                    self.watches.insert(key, id);
                    self.watch_queues.insert(id, (key, queue));
                }
                Err(_) => queue.close(End::Code(session_code::NO_ERROR)),
            },
            Request::Unwatch { key } => {
                if let Some(id) = self.watches.remove(&key) {
                    self.watch_queues.remove(&id);
                    self.node.unwatch(id);
                }
            }
            Request::Fetch { key, path, track, group, queue } => {
                let id = self.node.fetch(path, &track, group, Some(sid));
                self.fetches.insert(key, id);
                self.fetch_queues.insert(id, (key, queue));
            }
            Request::CancelFetch { key } => {
                if let Some(id) = self.fetches.remove(&key) {
                    self.fetch_queues.remove(&id);
                    self.node.cancel_fetch(id);
                }
            }
            Request::Probe { key, target, queue, reply } => {
                let result = self.node.probe(sid, target).map(|id| {
                    self.probes.insert(key, id);
                    self.probe_queues.insert(id, queue);
                });
                let _ = reply.send(result.map_err(Error::Core));
            }
            Request::ProbeClose { key } => {
                if let Some(id) = self.probes.remove(&key) {
                    self.probe_queues.remove(&id);
                    self.node.probe_close(sid, id);
                }
            }
            Request::Goaway { uri, reply } => {
                let result = self.node.with_session(sid, |s| s.goaway(&uri)).and_then(|r| r);
                let _ = reply.send(result.map_err(Error::Core));
            }
            Request::Close { code, reason } => self.node.close_session(sid, code, &reason),
            Request::Dropped => self.node.close_session(sid, session_code::NO_ERROR, "session dropped"),
        }
    }

    fn event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::SessionClosed { code, reason, .. } => self.shared.closed.set(CloseInfo { code, reason }),
            NodeEvent::Goaway { uri, .. } => self.shared.goaway.set(uri),
            NodeEvent::PeerSetup { .. } | NodeEvent::RouteSwitched { .. } => {}
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
                    _ => self.node.serve_fetch_reject(request, stream_code::NOT_FOUND),
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
                    self.node.stop_group(subscription, sequence);
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
                    self.node.cancel_fetch(fetch);
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
            self.node.unwatch(watch);
        }
    }
}
