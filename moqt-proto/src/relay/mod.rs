//! The node, sans-IO: one [`Node`] owns every session of an endpoint, an [`Origin`] of
//! broadcasts, and the tracks being served, and routes content between them. A relay is a node
//! with many sessions; a client is a node with one. Both run the same policy.
//!
//! - **Announcements** ([`announce`](self::announce)): each session's announcements feed the
//!   origin, priced with the session's link price (configured, else the peer's SETUP Cost, else
//!   1); each session is told the best route to every broadcast except routes through itself
//!   (split horizon), with hop chains that grow by this node's hop id; chains already holding this
//!   node, or longer than `max_hops`, are dropped (loops). Chains without hop ids (lite-03) are
//!   used only while feasible (see [`Origin`]). Local watchers see the broadcasts under a prefix.
//! - **Tracks** ([`track`](self::track)): a subscription, from a session or from the local
//!   application, is served by a local publisher or through **one** upstream subscription per
//!   track, shared by every subscriber with aggregated parameters, released a configurable linger
//!   after the last subscriber leaves. A subscription to a track a local broadcast has not created
//!   yet waits (bounded, with a deadline) while the application is asked for it.
//! - **Fan-out** ([`fanout`](self::fanout)): each frame goes into the track's [`GroupCache`] and
//!   to every subscriber's group as a `Bytes` clone; each downstream session applies its own
//!   priority, order, max latency and queue budget, so a slow subscriber only loses its own stale
//!   groups. Late joiners start at the first frame of the current group.
//! - **Fetch and track info** ([`fetch`](self::fetch)): served from the cache; a miss goes
//!   upstream (or to the local application) once however many ask.
//! - **Route switching** ([`failover`](self::failover)): when a session ends, its routes leave the
//!   origin and the tracks it fed subscribe again over the next route (or wait
//!   `failover_grace` for one, then end with `stream_code::UNROUTABLE`); a track whose route is
//!   withdrawn while its session lives moves make-before-break. No group is delivered twice.
//! - **Access** ([`access`](self::access)): a session may carry an
//!   [`Access`](crate::access::Access) (from a token, an auth server or public rules). Its paths
//!   are then relative to its connect path; it may announce only what it may publish (and
//!   forward others' routes only with the cluster right), subscribe to, fetch from and ask about
//!   only what it may subscribe to (else `stream_code::UNAUTHORIZED`), and hears only of
//!   broadcasts it may subscribe to. It ends with `session_code::UNAUTHORIZED` at its expiry.
//!   A session without one is unscoped and unrestricted.
//!
//! The driver loop is the session's (see the crate docs), with a session id on every input
//! and command: [`Node::handle`], [`Node::poll_command`], [`Node::poll_event`],
//! [`Node::poll_timeout`] / [`Node::handle_timeout`]. Nothing here blocks, reads a clock, or
//! locks; every timer lives in one [`Timers`](crate::timer::Timers) queue.

mod access;
mod announce;
mod cache;
mod failover;
mod fanout;
mod fetch;
mod node;
mod origin;
mod track;

use std::time::Duration;

use bytes::Bytes;

pub use cache::{CacheLimits, CachedFrame, CachedGroup, GroupCache, Pushed};
pub use node::Node;
pub use origin::{Origin, Route, Source};

use crate::message::{Probe, Setup};
use crate::path::Path;
use crate::session::{ProbeId, SessionStats};

/// A session owned by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl SessionId {
    fn new(index: u32, generation: u32) -> Self {
        SessionId(u64::from(generation) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

macro_rules! local_handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);
    };
}

local_handle!(
    /// A track published by the local application.
    TrackId
);
local_handle!(
    /// A subscription of the local application.
    LocalSubscriptionId
);
local_handle!(
    /// The local application watching the broadcasts under a prefix.
    WatchId
);
local_handle!(
    /// A fetch of the local application.
    LocalFetchId
);
local_handle!(
    /// A fetch the local application is asked to serve (a past group of its own track).
    FetchRequestId
);

/// Node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's hop id (non-zero on relays: it is how loops are recognised; 0 on clients).
    pub hop_id: u64,
    /// Whether every new session is asked for all of its announcements (relays), or only for
    /// the prefixes the application watches (clients).
    pub discover: bool,
    /// How long an upstream subscription outlives its last downstream subscriber.
    pub linger: Duration,
    /// Per-track cache bounds.
    pub cache: CacheLimits,
    /// Bytes cached across every track.
    pub max_cache_bytes: usize,
    /// Subscriptions that may wait for a local broadcast to create a track, per broadcast.
    pub max_waiting_per_broadcast: usize,
    /// How long such a subscription waits before it is refused with `NOT_FOUND`.
    pub track_request_timeout: Duration,
    /// Bytes received and not yet decoded across every session (each session also has its
    /// own `max_recv_buffered`); reads are granted only within it.
    pub max_recv_buffered: usize,
    /// Broadcasts the origin holds; announcements of more are ignored.
    pub max_broadcasts: usize,
    /// How long an upstream fetch or TRACK request may take before its waiters are refused
    /// with `CONTROL_TIMEOUT`.
    pub request_timeout: Duration,
    /// Whether every session added with [`Node::add_session`] waits for [`Node::set_access`]
    /// before anything it asks is served (a relay that authenticates). Off: sessions are open.
    pub require_access: bool,
    /// How long a session may wait for its access before it is closed with
    /// `session_code::TIMEOUT`.
    pub admission_timeout: Duration,
    /// How long a track whose upstream was lost waits for another route before its
    /// subscribers are told `UNROUTABLE` (they are not reset meanwhile).
    pub failover_grace: Duration,
    /// The longest hop chain accepted (1..=32; longer routes are dropped, and a route is
    /// forwarded only if its chain leaves room for this node).
    pub max_hops: usize,
    /// How long a path whose anonymous routes are no longer feasible stays withdrawn before the
    /// best remaining route is taken again (see [`Origin`]).
    pub route_hold_down: Duration,
}

impl NodeConfig {
    /// Defaults for a relay: hop id 1, discovering every session's announcements.
    pub fn relay() -> Self {
        Self {
            hop_id: 1,
            discover: true,
            linger: Duration::from_secs(2),
            cache: CacheLimits::default(),
            max_cache_bytes: 256 << 20,
            max_waiting_per_broadcast: 64,
            track_request_timeout: Duration::from_secs(10),
            max_recv_buffered: 256 << 20,
            max_broadcasts: 65_536,
            request_timeout: Duration::from_secs(10),
            require_access: false,
            admission_timeout: Duration::from_secs(15),
            failover_grace: Duration::from_secs(5),
            max_hops: 32,
            route_hold_down: Duration::from_secs(1),
        }
    }

    /// Defaults for a client: no hop id, announcements only for watched prefixes, and a long
    /// wait for a lost upstream (a reconnecting client brings a new session).
    pub fn client() -> Self {
        Self { hop_id: 0, discover: false, failover_grace: Duration::from_secs(60), ..Self::relay() }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self::relay()
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Sessions open.
    pub sessions: usize,
    /// Downstream subscriptions being served (sessions and local).
    pub subscriptions: usize,
    /// Upstream subscriptions held.
    pub upstream_subscriptions: usize,
    /// Upstream subscriptions ever opened.
    pub upstream_subscribes: u64,
    /// Upstream fetches ever sent.
    pub upstream_fetches: u64,
    /// Frames received (upstream or local).
    pub frames_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Frames queued to downstream subscribers.
    pub frames_out: u64,
    /// Payload bytes queued to downstream subscribers.
    pub bytes_out: u64,
    /// Downstream groups dropped (expired, over budget, stopped).
    pub groups_dropped: u64,
    /// Node limits hit.
    pub limits: NodeLimitStats,
    /// Session limits hit, over every session the node has had.
    pub session_limits: SessionStats,
    /// Requests refused for lack of access, counted.
    pub access: AccessStats,
}

/// What sessions tried without the access for it, counted (each only grows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessStats {
    /// Announcements of paths the session may not publish (ignored).
    pub announces_refused: u64,
    /// Announcements of routes that entered elsewhere, from a session without the cluster right
    /// (ignored).
    pub forwards_refused: u64,
    /// Subscriptions refused with `UNAUTHORIZED`.
    pub subscribes_refused: u64,
    /// Fetches refused with `UNAUTHORIZED`.
    pub fetches_refused: u64,
    /// TRACK requests refused with `UNAUTHORIZED`.
    pub track_infos_refused: u64,
    /// Announce interests whose prefix reaches nothing the session may subscribe to (answered
    /// with an empty set, as moq-net does).
    pub interests_out_of_scope: u64,
    /// Sessions closed at the expiry of their access.
    pub sessions_expired: u64,
    /// Sessions closed because no access was set within `admission_timeout`.
    pub admissions_timed_out: u64,
}

/// Node limits hit, counted (each only grows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeLimitStats {
    /// Announcements ignored because the origin held `max_broadcasts`.
    pub broadcasts_refused: u64,
    /// Groups cut for passing `max_group_bytes`.
    pub groups_cut: u64,
    /// Cached groups evicted to keep the cache within `max_cache_bytes`.
    pub cache_evictions: u64,
    /// Fetches refused because the response passed `max_group_bytes`.
    pub fetches_too_large: u64,
    /// Fetches and TRACK requests that timed out upstream.
    pub requests_timed_out: u64,
    /// Subscriptions refused because no local track was created in time, or too many waited.
    pub track_requests_refused: u64,
    /// Times a session's reads were throttled because the node's receive budget was used up.
    pub recv_budget_exhausted: u64,
    /// Tracks that lost their upstream and waited for another route.
    pub tracks_waiting_for_route: u64,
    /// Upstream subscriptions made again over another route (failover and reconnection).
    pub route_switches: u64,
    /// Announcements dropped: their chain held this node, or was longer than `max_hops`.
    pub routes_looped: u64,
    /// Paths withdrawn and held down because their only routes were infeasible (anonymous).
    pub routes_held_down: u64,
}

/// What the node reports to its driver and application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A session ended; the driver should drop its connection.
    SessionClosed {
        /// The session.
        session: SessionId,
        /// The close code.
        code: u64,
        /// The reason.
        reason: String,
    },
    /// A session's peer sent its SETUP (lite-05+).
    PeerSetup {
        /// The session.
        session: SessionId,
        /// The SETUP.
        setup: Setup,
    },
    /// A session waiting for its access (see [`NodeConfig::require_access`]) received its peer's
    /// SETUP (lite-05+): decide with [`Node::set_access`] or [`Node::close_session`]. `setup_path`
    /// is the SETUP Path parameter (path and query, on transports without a URL).
    AwaitingAccess {
        /// The session.
        session: SessionId,
        /// The SETUP Path parameter, if any.
        setup_path: Option<String>,
    },
    /// A session's peer sent GOAWAY.
    Goaway {
        /// The session.
        session: SessionId,
        /// Where it suggests reconnecting ("" = nowhere in particular).
        uri: String,
    },

    /// A subscriber wants a track that a local broadcast has not created: create it with
    /// [`Node::publish_track`] to serve it (it waits until `track_request_timeout`).
    TrackRequested {
        /// The local broadcast.
        path: Path,
        /// The track name.
        track: String,
    },
    /// The number of subscribers of a local track changed.
    TrackSubscribers {
        /// The track.
        track: TrackId,
        /// Subscribers now.
        count: usize,
    },
    /// A subscriber fetches a group of a local track that is not cached: serve it with
    /// [`Node::serve_fetch_frame`] / [`Node::serve_fetch_finish`] or refuse it.
    FetchRequested {
        /// The request.
        request: FetchRequestId,
        /// The local broadcast.
        path: Path,
        /// The track.
        track: String,
        /// The group.
        group: u64,
    },
    /// A fetch of a local track was answered from the cache (the application was not asked).
    FetchServed {
        /// The local broadcast.
        path: Path,
        /// The track.
        track: String,
        /// The group.
        group: u64,
    },

    /// A broadcast under a watched prefix is live.
    Announced {
        /// The watch.
        watch: WatchId,
        /// The full path.
        path: Path,
    },
    /// A broadcast under a watched prefix ended.
    Unannounced {
        /// The watch.
        watch: WatchId,
        /// The full path.
        path: Path,
    },
    /// A watch ended (its session's interest was closed); no more events come for it.
    WatchEnded {
        /// The watch.
        watch: WatchId,
        /// The code, if it failed.
        code: Option<u64>,
    },

    /// A group of a local subscription started.
    GroupStarted {
        /// The subscription.
        subscription: LocalSubscriptionId,
        /// The group sequence.
        sequence: u64,
    },
    /// A frame of a local subscription.
    Frame {
        /// The subscription.
        subscription: LocalSubscriptionId,
        /// The group sequence.
        sequence: u64,
        /// Absolute timestamp (0 where the version has none).
        timestamp: u64,
        /// The payload.
        payload: Bytes,
    },
    /// A group of a local subscription ended (`code: None` = complete).
    GroupEnded {
        /// The subscription.
        subscription: LocalSubscriptionId,
        /// The group sequence.
        sequence: u64,
        /// The reset code, if it did not complete.
        code: Option<u64>,
    },
    /// A local subscription ended (`code: None` = the track ended cleanly).
    SubscriptionEnded {
        /// The subscription.
        subscription: LocalSubscriptionId,
        /// The code, if it failed.
        code: Option<u64>,
    },

    /// A frame of a local fetch.
    FetchFrame {
        /// The fetch.
        fetch: LocalFetchId,
        /// Absolute timestamp.
        timestamp: u64,
        /// The payload.
        payload: Bytes,
    },
    /// A local fetch ended (`code: None` = complete).
    FetchEnded {
        /// The fetch.
        fetch: LocalFetchId,
        /// The code, if it failed.
        code: Option<u64>,
    },

    /// A track's upstream moved to another route or session (its subscribers continue).
    RouteSwitched {
        /// The broadcast.
        path: Path,
        /// The track.
        track: String,
    },

    /// A report on a probe the application opened with [`Node::probe`].
    ProbeReport {
        /// The session.
        session: SessionId,
        /// The probe.
        probe: ProbeId,
        /// Bitrate and RTT.
        report: Probe,
    },
    /// A probe the application opened ended.
    ProbeEnded {
        /// The session.
        session: SessionId,
        /// The probe.
        probe: ProbeId,
        /// The code, if it failed.
        code: Option<u64>,
    },
}
