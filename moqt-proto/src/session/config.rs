//! Session configuration: version, dialect, identity and every limit, with sane defaults.

use std::time::Duration;

use crate::coding::Limits;
use crate::message::{ProbeLevel, Role, Setup};
use crate::version::{Dialect, Version};

/// Which side of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perspective {
    /// The endpoint that dialled.
    Client,
    /// The endpoint that accepted.
    Server,
}

/// Bounds on what a peer (or the application) can make a session hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Subscriptions the peer may hold open with us (default 1024). Beyond: the subscribe stream
    /// is reset with `stream_code::LIMIT_EXCEEDED`.
    pub max_subscriptions: usize,
    /// Subscriptions we may hold open with the peer (default 1024). Beyond: `Error::LimitExceeded`.
    pub max_outgoing_subscriptions: usize,
    /// Announce interests the peer may hold open with us (default 64). Beyond: reset with
    /// `stream_code::LIMIT_EXCEEDED`.
    pub max_announce_interests: usize,
    /// Live announcements the peer may make to us across all interests (default 16384). Beyond:
    /// the interest is reset with `stream_code::LIMIT_EXCEEDED` and its paths end.
    pub max_announced: usize,
    /// Streams the peer may have open at once (default 10000). Beyond: the new stream is
    /// stopped/reset with `stream_code::LIMIT_EXCEEDED`.
    pub max_streams: usize,
    /// Bytes queued for one subscription before its oldest groups are dropped (default 4 MiB).
    pub max_queued_per_subscription: usize,
    /// Bytes queued for the whole session before the oldest groups are dropped (default 32 MiB).
    /// Control-stream bytes count too.
    pub max_queued: usize,
    /// Bytes queued on one control stream (announcements, subscribe responses, ...) before the
    /// peer is deemed not to read it: the stream is reset with `TOO_FAR_BEHIND` (default 4 MiB).
    pub max_queued_control: usize,
    /// Bytes received but not yet decoded (partial messages and frames) across the session's
    /// streams. Reads are granted only within it, so a peer that sends partial frames is
    /// flow-controlled, never buffered without bound (default 32 MiB, one largest frame).
    pub max_recv_buffered: usize,
    /// How long a stream may hold a partial message or frame before it is reset (default 10 s).
    pub partial_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_subscriptions: 1024,
            max_outgoing_subscriptions: 1024,
            max_announce_interests: 64,
            max_announced: 16384,
            max_streams: 10_000,
            max_queued_per_subscription: 4 << 20,
            max_queued: 32 << 20,
            max_queued_control: 4 << 20,
            max_recv_buffered: 32 << 20,
            partial_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything a [`crate::Session`] needs to know up front.
#[derive(Debug, Clone)]
pub struct Config {
    /// The negotiated version.
    pub version: Version,
    /// The lite-04 dialect to speak (and to read SUBSCRIBE_DROP with).
    pub dialect: Dialect,
    /// Client or server.
    pub perspective: Perspective,
    /// Wire decode limits.
    pub limits: Limits,
    /// Session limits.
    pub session_limits: SessionLimits,
    /// This endpoint's hop id for announcements and loop avoidance (0 = none).
    pub hop_id: u64,
    /// Probe level we advertise in SETUP (lite-05+).
    pub probe: ProbeLevel,
    /// Request path to send in SETUP on URI-less transports (client, lite-05+).
    pub setup_path: Option<String>,
    /// Role to send in SETUP (client, lite-05+).
    pub role: Option<Role>,
    /// Our egress price to send in SETUP (lite-06 route cost).
    pub cost: Option<u64>,
    /// Largest datagram we send (default 1200, the draft's cap).
    pub max_datagram_size: usize,
    /// After the publisher ends one of our subscriptions (FIN), how long groups still in flight
    /// are awaited before the subscription's end is reported (streams are not ordered: the FIN
    /// may overtake them). Open groups are always awaited to their end. Default 500 ms.
    pub end_grace: std::time::Duration,
}

impl Config {
    /// Defaults for a version and side.
    pub fn new(version: Version, perspective: Perspective) -> Self {
        Self {
            version,
            dialect: Dialect::Draft,
            perspective,
            limits: Limits::default(),
            session_limits: SessionLimits::default(),
            hop_id: 0,
            probe: ProbeLevel::Report,
            setup_path: None,
            role: None,
            cost: None,
            max_datagram_size: 1200,
            end_grace: std::time::Duration::from_millis(500),
        }
    }

    /// The SETUP this configuration sends.
    pub fn setup(&self) -> Setup {
        let client = self.perspective == Perspective::Client;
        Setup {
            probe: Some(self.probe),
            path: if client { self.setup_path.clone() } else { None },
            role: if client { self.role } else { None },
            cost: self.cost,
            hop: (self.hop_id != 0).then_some(self.hop_id),
        }
    }
}
