//! The owner task of a session: it owns a client `Node` and its connections' I/O (a
//! [`NodeDriver`]), turns handle requests into node calls, routes node events into handle
//! queues (`route`), and replaces lost connections (`link`).
//!
//! The loop, once per wake-up: wait for the next node event (the driver runs timers, commands
//! and transport input), a handle request, or a reconnection step (alternating which of the
//! first two goes first, so neither a busy network nor a busy application starves the other);
//! handle it.

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use moqt_proto::message::{Probe, TrackInfo};
use moqt_proto::relay::{
    FetchRequestId, LocalFetchId, LocalSubscriptionId, Node, NodeConfig, NodeEvent, SessionId, TrackId, WatchId,
};
use moqt_proto::session::{session_code, Perspective, ProbeId, SubscribeParams};
use moqt_proto::Path;
use rustc_hash::FxHashMap;

use super::link::{Dial, Link};
use super::{Announcement, BroadcastRequest, CloseInfo, ConnectionState, Error, GroupReader, Redial, Session};
use super::{SessionOptions, Shared};
use crate::connection::Connection;
use crate::driver::NodeDriver;
use crate::rt::{Runtime, Sleep};
use crate::sync::{Counter, End, Queue};

/// Most requests a broadcast queues for the application (tracks to create, fetches to serve).
pub(super) const MAX_BROADCAST_REQUESTS: usize = 64;
/// Most probe reports queued for the application.
pub(super) const MAX_PROBE_REPORTS: usize = 16;
/// Connection states queued for the application.
pub(super) const MAX_STATES: usize = 64;

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

pub(super) struct Broadcast {
    pub(super) path: Path,
    pub(super) queue: Arc<Queue<BroadcastRequest>>,
}

enum Step {
    Node(NodeEvent),
    Request(Option<Request>),
    Dialed(Result<Connection, crate::transport::TransportError>),
    Redial,
    /// The clean close's linger is over: everything was delivered, or the time is up.
    Lingered,
}

/// A clean close waiting for what was written to reach the peer.
struct Linger {
    code: u64,
    reason: String,
    until: Sleep,
}

/// The owner of one connection. See the module docs.
pub(super) struct Owner {
    pub(super) driver: NodeDriver,
    /// The session the application's requests go through.
    pub(super) sid: SessionId,
    requests: mpsc::UnboundedReceiver<Request>,
    pub(super) requests_open: bool,
    /// Reconnection: the policy's state, the dialer, the dial in progress.
    pub(super) link: Link,
    /// A handle without a token, for the readers the owner creates (it never keeps the session
    /// open).
    pub(super) handle: Session,
    pub(super) options: SessionOptions,
    pub(super) shared: Arc<Shared>,
    pub(super) perspective: Perspective,
    pub(super) broadcasts: FxHashMap<u64, Broadcast>,
    /// The broadcast that currently owns each path.
    pub(super) paths: FxHashMap<Path, u64>,
    tracks: FxHashMap<u64, TrackId>,
    pub(super) counters: FxHashMap<TrackId, Arc<Counter>>,
    pub(super) subscriptions: FxHashMap<u64, LocalSubscriptionId>,
    pub(super) readers: FxHashMap<LocalSubscriptionId, (u64, Arc<Queue<GroupReader>>)>,
    pub(super) groups: FxHashMap<(LocalSubscriptionId, u64), Arc<Queue<Bytes>>>,
    pub(super) watches: FxHashMap<u64, WatchId>,
    pub(super) watch_queues: FxHashMap<WatchId, (u64, Arc<Queue<Announcement>>)>,
    pub(super) fetches: FxHashMap<u64, LocalFetchId>,
    pub(super) fetch_queues: FxHashMap<LocalFetchId, (u64, Arc<Queue<Bytes>>)>,
    probes: FxHashMap<u64, ProbeId>,
    pub(super) probe_queues: FxHashMap<ProbeId, Arc<Queue<Probe>>>,
    runtime: Runtime,
    linger: Option<Linger>,
}

impl Owner {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        connection: Connection,
        perspective: Perspective,
        path: Option<String>,
        options: SessionOptions,
        requests: mpsc::UnboundedReceiver<Request>,
        handle: Session,
        runtime: &Runtime,
        redial: Option<Redial>,
    ) -> Owner {
        // A reconnecting client waits (long) for a lost route to come back; one that does not
        // reconnect gives a track up as soon as its relay does (the relay already waited).
        let failover_grace =
            if options.reconnect.enabled { NodeConfig::client().failover_grace } else { Duration::ZERO };
        let node =
            Node::new(NodeConfig { hop_id: options.hop_id, failover_grace, ..NodeConfig::client() }, Instant::now());
        let mut driver = NodeDriver::new(node, runtime.clone());
        driver.track_acks();
        let link = Link::new(redial, options.reconnect);
        let config = link.session_config(&connection, perspective, path.as_deref(), &options);
        let version = connection.version();
        let sid = driver.add(connection, config);
        driver.node().set_default_upstream(Some(sid));
        let url = link.url().to_owned();
        handle.shared.states.push(ConnectionState::Connected { url, version }, 0, MAX_STATES);
        Owner {
            driver,
            sid,
            requests,
            requests_open: true,
            link,
            shared: handle.shared.clone(),
            handle,
            options,
            perspective,
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
            runtime: runtime.clone(),
            linger: None,
        }
    }

    /// The loop: see the module docs.
    pub(super) async fn run(mut self) {
        let mut turn = false;
        while self.shared.closed.get().is_none() {
            turn = !turn;
            let step = std::future::poll_fn(|cx| {
                let requests_first = turn && self.requests_open;
                if requests_first {
                    if let Poll::Ready(req) = self.requests.poll_next_unpin(cx) {
                        return Poll::Ready(Step::Request(req));
                    }
                }
                if let Poll::Ready(event) = self.driver.poll_event(cx) {
                    return Poll::Ready(Step::Node(event));
                }
                if self.requests_open && !requests_first {
                    if let Poll::Ready(req) = self.requests.poll_next_unpin(cx) {
                        return Poll::Ready(Step::Request(req));
                    }
                }
                if let Some(linger) = &mut self.linger {
                    // Transport progress wakes this task without a node event: check here.
                    if linger.until.poll_expired(cx).is_ready() || self.driver.flushed(self.sid) {
                        return Poll::Ready(Step::Lingered);
                    }
                }
                match self.link.poll(cx) {
                    Poll::Ready(Dial::Done(result)) => Poll::Ready(Step::Dialed(result)),
                    Poll::Ready(Dial::Due) => Poll::Ready(Step::Redial),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match step {
                Step::Node(event) => self.event(event),
                Step::Request(Some(req)) => self.request(req),
                Step::Request(None) => {
                    self.requests_open = false;
                    self.close_cleanly(session_code::NO_ERROR, "session dropped");
                }
                Step::Dialed(result) => self.dialed(result),
                Step::Redial => self.redial(),
                Step::Lingered => {
                    if let Some(Linger { code, reason, .. }) = self.linger.take() {
                        self.close(code, &reason);
                    }
                }
            }
            // The driver ran every transport event that came: whatever was written may be out.
            if self.linger.is_some() && self.driver.flushed(self.sid) {
                if let Some(Linger { code, reason, .. }) = self.linger.take() {
                    self.close(code, &reason);
                }
            }
            self.settle_drains();
            if let Some(connection) = self.driver.connection(self.sid) {
                let rtt = connection.rtt();
                self.driver.node().set_rtt(self.sid, rtt);
            }
        }
        self.finish();
    }

    /// Closes the session; with code 0, only once what was written has reached the peer (or
    /// `close_linger` has passed). Until then the session keeps running, but takes no new work.
    fn close_cleanly(&mut self, code: u64, reason: &str) {
        let linger = self.options.close_linger;
        if code != session_code::NO_ERROR || linger.is_zero() || self.driver.flushed(self.sid) {
            self.linger = None;
            return self.close(code, reason);
        }
        if self.linger.is_none() {
            self.requests_open = false;
            let until = Sleep::until(&self.runtime, Instant::now() + linger);
            self.linger = Some(Linger { code, reason: reason.to_owned(), until });
        }
    }

    /// Ends every handle after the session closed.
    fn finish(&mut self) {
        let info = self.shared.closed.get().unwrap_or(CloseInfo { code: 0, reason: String::new() });
        self.shared.states.push(ConnectionState::Closed(info.clone()), 0, MAX_STATES);
        self.shared.states.close(End::Done);
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
                self.driver.node().publish_broadcast(path);
            }
            Request::Unpublish { key } => {
                let Some(b) = self.broadcasts.remove(&key) else { return };
                b.queue.close(End::Done);
                if self.paths.get(&b.path) == Some(&key) {
                    self.paths.remove(&b.path);
                    self.driver.node().unpublish_broadcast(&b.path);
                }
            }
            Request::CreateTrack { broadcast, key, name, subscribers } => {
                let Some(b) = self.broadcasts.get(&broadcast) else { return };
                let id = self.driver.node().publish_track(b.path.clone(), &name, TrackInfo::default());
                subscribers.set(self.driver.node().track_subscribers(id));
                self.tracks.insert(key, id);
                self.counters.insert(id, subscribers);
            }
            Request::DropTrack { key } => {
                if let Some(id) = self.tracks.remove(&key) {
                    self.counters.remove(&id);
                    self.driver.node().end_local_track(id);
                }
            }
            Request::OpenGroup { track, sequence } => {
                if let Some(&id) = self.tracks.get(&track) {
                    self.driver.node().publish_group(id, sequence);
                }
            }
            Request::WriteFrame { track, sequence, timestamp, payload } => {
                if let Some(&id) = self.tracks.get(&track) {
                    self.driver.node().publish_frame(id, sequence, timestamp, payload);
                }
            }
            Request::EndGroup { track, sequence, code } => {
                if let Some(&id) = self.tracks.get(&track) {
                    self.driver.node().publish_group_end(id, sequence, code);
                }
            }
            Request::Serve { request, action } => match action {
                Serve::Frame(timestamp, payload) => self.driver.node().serve_fetch_frame(request, timestamp, payload),
                Serve::Finish => self.driver.node().serve_fetch_finish(request),
                Serve::Reject(code) => self.driver.node().serve_fetch_reject(request, code),
            },
            Request::Subscribe { key, path, track, params, queue } => {
                let id = self.driver.node().subscribe(path, &track, params, None);
                self.subscriptions.insert(key, id);
                self.readers.insert(id, (key, queue));
            }
            Request::Unsubscribe { key } => {
                if let Some(id) = self.subscriptions.remove(&key) {
                    self.readers.remove(&id);
                    self.groups.retain(|(s, _), _| *s != id);
                    self.driver.node().unsubscribe(id);
                }
            }
            Request::StopGroup { subscription, sequence } => {
                if let Some(&id) = self.subscriptions.get(&subscription) {
                    if self.groups.remove(&(id, sequence)).is_some() {
                        self.driver.node().stop_group(id, sequence);
                    }
                }
            }
            Request::Watch { key, prefix, queue } => match self.driver.node().watch(prefix, Some(sid)) {
                Ok(id) => {
                    self.watches.insert(key, id);
                    self.watch_queues.insert(id, (key, queue));
                }
                Err(_) => queue.close(End::Code(session_code::NO_ERROR)),
            },
            Request::Unwatch { key } => {
                if let Some(id) = self.watches.remove(&key) {
                    self.watch_queues.remove(&id);
                    self.driver.node().unwatch(id);
                }
            }
            Request::Fetch { key, path, track, group, queue } => {
                let id = self.driver.node().fetch(path, &track, group, None);
                self.fetches.insert(key, id);
                self.fetch_queues.insert(id, (key, queue));
            }
            Request::CancelFetch { key } => {
                if let Some(id) = self.fetches.remove(&key) {
                    self.fetch_queues.remove(&id);
                    self.driver.node().cancel_fetch(id);
                }
            }
            Request::Probe { key, target, queue, reply } => {
                let result = self.driver.node().probe(sid, target).map(|id| {
                    self.probes.insert(key, id);
                    self.probe_queues.insert(id, queue);
                });
                let _ = reply.send(result.map_err(Error::Core));
            }
            Request::ProbeClose { key } => {
                if let Some(id) = self.probes.remove(&key) {
                    self.probe_queues.remove(&id);
                    self.driver.node().probe_close(sid, id);
                }
            }
            Request::Goaway { uri, reply } => {
                let result = self.driver.node().with_session(sid, |s| s.goaway(&uri)).and_then(|r| r);
                let _ = reply.send(result.map_err(Error::Core));
            }
            Request::Close { code, reason } => self.close_cleanly(code, &reason),
            Request::Dropped => self.close_cleanly(session_code::NO_ERROR, "session dropped"),
        }
    }
}
