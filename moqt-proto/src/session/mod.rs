//! The moq-lite session: one per connection, publisher and subscriber at once, as a sans-IO
//! state machine.
//!
//! The driver feeds [`TransportEvent`]s to [`Session::handle`], executes the [`Command`]s from
//! [`Session::poll_command`] in order (the contract is in [`io`](self::io)), and calls
//! [`Session::handle_timeout`] at [`Session::poll_timeout`]. The application calls the plain
//! methods (announce, subscribe, open_group, …) with typed [`handle`](self::handle)s and reads
//! [`Event`]s from [`Session::poll_event`]. Nothing here blocks, allocates per frame in steady
//! state, reads a clock, or shares state.
//!
//! The per-concept logic lives in submodules:
//! [`send`](self::send) (send queues and read grants), [`recv`](self::recv) (dispatch of what
//! arrives), [`announce`](self::announce) (interests and announcements),
//! [`subscriber`](self::subscriber) and [`publisher`](self::publisher) (the two sides of a
//! subscription), [`delivery`](self::delivery) (priorities, expiry and queue budgets), and
//! [`requests`](self::requests) (setup, fetch, track, probe, goaway).

mod announce;
mod config;
mod delivery;
mod error;
mod event;
pub mod handle;
mod io;
mod publisher;
mod recv;
mod requests;
mod send;
mod stats;
mod subscriber;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::BytesMut;
use rustc_hash::FxHashMap;

pub use config::{Config, Perspective, SessionLimits};
pub use delivery::group_priority;
pub use error::{describe_session_code, describe_stream_code, session_code, stream_code, Error, APPLICATION_BASE};
pub use event::Event;
pub use handle::{FetchId, GroupId, InterestId, ProbeId, PublicationId, SubscriptionId, TrackRequestId};
pub use io::{Chunks, Command, StreamId, TransportEvent, MAX_WRITE_CHUNKS};
pub use publisher::PublishParams;
pub use stats::SessionStats;
pub use subscriber::SubscribeParams;

use crate::message::Codec;
use crate::path::Path;
use crate::stream::StreamType;
use crate::timer::Timers;

use announce::{Broadcast, InterestIn, InterestOut};
use publisher::{GroupOut, Publication};
use send::{Pending, Stream};
use subscriber::{EndedSubscriptions, GroupIn, Tail};

/// What a session timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum SessionTimer {
    /// A publication's earliest group expiry.
    Expiry(StreamId),
    /// A stream holding a partial message: reset it if it stalls.
    Partial(StreamId),
    /// A subscription its publisher ended stops waiting for groups in flight.
    Tail(SubscriptionId),
}

/// Priority of control streams: above every group.
const CONTROL_PRIORITY: i32 = i32::MAX;

/// Whether a frame timestamp can be sent: lite-05+ encodes the signed delta from the previous
/// frame as a zigzag varint, which holds |delta| < 2^61, so timestamps must stay below 2^61
/// (otherwise the encoder would panic on an out-of-range varint).
fn timestamp_fits(version: crate::Version, timestamp: u64) -> bool {
    !version.has_frame_timestamps() || timestamp < 1 << 61
}

/// The role a stream plays for this endpoint, with its per-stream state.
#[derive(Debug)]
enum Role {
    /// Opened by the peer; the type has not arrived yet.
    Unknown,
    SetupOut,
    SetupIn,
    InterestOut(Box<InterestOut>),
    InterestIn(Box<InterestIn>),
    SubscribeOut(SubscriptionId),
    SubscribeIn(Box<Publication>),
    GroupOut(GroupOut),
    GroupIn(GroupIn),
    FetchOut,
    FetchIn {
        last_timestamp: u64,
        served: bool,
    },
    TrackOut {
        answered: bool,
    },
    TrackIn,
    ProbeOut,
    ProbeIn,
    GoawayOut,
    GoawayIn,
    /// A request that ended on our side; whatever still arrives is ignored.
    Draining,
}

/// One moq-lite session.
#[derive(Debug)]
pub struct Session {
    config: Config,
    codec: Codec,
    streams: FxHashMap<StreamId, Stream>,
    next_local: [u64; 2],
    commands: VecDeque<Pending>,
    events: VecDeque<Event>,
    scratch: BytesMut,
    closed: bool,
    now: Instant,
    remote_streams: usize,
    /// Announce interests the peer holds open with us.
    peer_interests: usize,
    /// Broadcasts we announce, in path order (deterministic).
    broadcasts: BTreeMap<Path, Broadcast>,
    /// Live paths the peer has announced to us, across interests.
    announced: usize,
    /// Our subscriptions: subscribe id → subscribe stream.
    subscriptions: FxHashMap<SubscriptionId, StreamId>,
    next_subscribe_id: u64,
    /// Subscriptions we serve: the peer's subscribe id → subscribe stream.
    publications: FxHashMap<u64, StreamId>,
    /// Group bytes queued across the session.
    queued: usize,
    peer_setup: Option<crate::message::Setup>,
    setup_stream_seen: bool,
    goaway_received: bool,
    goaway_sent: bool,
    goaway_stream_seen: bool,
    /// Recently ended subscriptions whose in-flight groups are still accepted.
    ended_subscriptions: EndedSubscriptions,
    /// What is known of each subscription's groups, to tell when the last one has arrived.
    tails: FxHashMap<SubscriptionId, Tail>,
    /// lite-06 announce interests waiting for the peer's SETUP (its hop id).
    interests_waiting_setup: Vec<StreamId>,
    /// Group expiry and stalled-partial deadlines.
    timers: Timers<SessionTimer>,
    /// Undecoded bytes across streams, and how many may be held.
    recv_buffered: usize,
    recv_allowance: usize,
    /// Streams waiting for receive allowance.
    deferred: Vec<StreamId>,
    stats: SessionStats,
}

impl Session {
    /// A new session. On lite-05+ the SETUP stream is queued at once.
    pub fn new(config: Config, now: Instant) -> Self {
        let codec = Codec { version: config.version, dialect: config.dialect, limits: config.limits };
        let next_subscribe_id = u64::from(config.dialect == crate::version::Dialect::Gomoqt);
        let mut session = Self {
            config,
            codec,
            streams: FxHashMap::default(),
            next_local: [0, 0],
            commands: VecDeque::new(),
            events: VecDeque::new(),
            scratch: BytesMut::new(),
            closed: false,
            now,
            remote_streams: 0,
            peer_interests: 0,
            broadcasts: BTreeMap::new(),
            announced: 0,
            subscriptions: FxHashMap::default(),
            next_subscribe_id,
            publications: FxHashMap::default(),
            queued: 0,
            peer_setup: None,
            setup_stream_seen: false,
            goaway_received: false,
            goaway_sent: false,
            goaway_stream_seen: false,
            ended_subscriptions: EndedSubscriptions::default(),
            tails: FxHashMap::default(),
            interests_waiting_setup: Vec::new(),
            timers: Timers::new(),
            recv_buffered: 0,
            recv_allowance: usize::MAX,
            deferred: Vec::new(),
            stats: SessionStats::default(),
        };
        session.recv_allowance = session.config.session_limits.max_recv_buffered;
        if session.codec.version.has_setup() {
            let setup = session.config.setup();
            let id = session.open(StreamType::Setup, Role::SetupOut, CONTROL_PRIORITY);
            session.write_msg(id, |buf, codec| crate::message::Message::encode(&setup, codec, buf));
            session.finish(id);
        }
        session
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The negotiated version.
    pub fn version(&self) -> crate::Version {
        self.codec.version
    }

    /// Whether the session has closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The peer's SETUP, once received (lite-05+).
    pub fn peer_setup(&self) -> Option<&crate::message::Setup> {
        self.peer_setup.as_ref()
    }

    /// Whether the peer sent GOAWAY.
    pub fn goaway_received(&self) -> bool {
        self.goaway_received
    }

    /// Bytes queued for the transport across the session (groups and control streams).
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Subscriptions we ended as publisher whose subscriber has not yet confirmed (by ending its
    /// side) that it received everything. A clean close waits for these to reach zero.
    pub fn unconfirmed_ends(&self) -> usize {
        self.publications.values().filter(|id| self.publication(**id).is_some_and(|p| p.ending)).count()
    }

    /// Limits this session hit so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// The next command for the driver.
    pub fn poll_command(&mut self) -> Option<Command> {
        loop {
            match self.commands.pop_front()? {
                Pending::Ready(cmd) => return Some(cmd),
                Pending::Write(id) => {
                    if let Some(cmd) = self.build_write(id) {
                        return Some(cmd);
                    }
                }
            }
        }
    }

    /// Whether [`Session::poll_command`] may have something.
    pub fn has_commands(&self) -> bool {
        !self.commands.is_empty()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called (possibly early: an early call
    /// is harmless).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.timers.next()
    }

    /// Runs the timers due at `now` (early or repeated calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if !self.closed {
            self.run_timers();
        }
    }

    /// Feeds one transport event.
    pub fn handle(&mut self, now: Instant, event: TransportEvent) {
        self.now = self.now.max(now);
        if self.closed {
            return;
        }
        match event {
            TransportEvent::StreamOpened(id) => self.on_opened(id),
            TransportEvent::StreamData { stream, data, fin } => self.on_data(stream, data, fin),
            TransportEvent::StreamReset { stream, code } => self.on_reset(stream, code),
            TransportEvent::StopSending { stream, code } => self.on_stop(stream, code),
            TransportEvent::Written { stream, bytes } => self.on_written(stream, bytes),
            TransportEvent::Datagram(data) => self.on_datagram(data),
            TransportEvent::Closed { code, reason } => self.shutdown(code, reason),
        }
    }

    /// Closes the session with `code` (see [`session_code`]; application codes are
    /// `APPLICATION_BASE + n`).
    pub fn close(&mut self, code: u64, reason: &str) {
        if self.closed {
            return;
        }
        let code = code.min(crate::coding::MAX_VARINT);
        // Streams are reset first (on WebTransport the connection outlives the session), then
        // the session is closed.
        self.shutdown(code, reason.to_string());
        self.push(Command::Close { code, reason: reason.to_string() });
    }

    // ----- plumbing -----

    /// Queues a finished command for the driver.
    fn push(&mut self, cmd: Command) {
        self.commands.push_back(Pending::Ready(cmd));
    }

    fn ensure_open(&self) -> Result<(), Error> {
        if self.closed {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Rejects values that do not fit a QUIC varint (the application's mistake, not the peer's).
    fn check(values: &[u64]) -> Result<(), Error> {
        if values.iter().all(|v| *v <= crate::coding::MAX_VARINT) {
            Ok(())
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// Rejects `opt+1` group fields that do not fit once incremented.
    fn check_opt(values: &[Option<u64>]) -> Result<(), Error> {
        if values.iter().flatten().all(|v| *v < crate::coding::MAX_VARINT) {
            Ok(())
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// New requests are refused after the peer's GOAWAY.
    fn ensure_can_request(&self) -> Result<(), Error> {
        self.ensure_open()?;
        if self.goaway_received {
            Err(Error::GoingAway)
        } else {
            Ok(())
        }
    }

    /// Closes the session for a peer protocol violation.
    fn violation(&mut self, why: &str) {
        tracing::debug!(why, "protocol violation");
        self.close(session_code::PROTOCOL_VIOLATION, why);
    }
}
