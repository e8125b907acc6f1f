//! The moq-lite session: one per connection, publisher and subscriber at once, as a sans-IO
//! state machine.
//!
//! The driver feeds [`TransportEvent`]s to [`Session::handle`], executes the [`Command`]s from
//! [`Session::poll_command`] in order, pulls outgoing bytes with [`Session::send_chunks`] /
//! [`Session::advance_send`] as the transport accepts them, and calls
//! [`Session::handle_timeout`] at [`Session::poll_timeout`]. The application calls the plain
//! methods (announce, subscribe, open_group, …) and reads [`Event`]s from
//! [`Session::poll_event`]. Nothing here blocks, allocates per frame in steady state, reads a
//! clock, or shares state.
//!
//! The per-concept logic lives in submodules: [`announce`](self::announce) (interests and
//! announcements), [`subscribe`](self::subscribe) (subscriptions, groups and the delivery
//! policy), and [`requests`](self::requests) (setup, fetch, track, probe, goaway, datagrams).

mod announce;
mod config;
mod error;
mod event;
mod io;
mod requests;
mod subscribe;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;

pub use config::{Config, Perspective, SessionLimits};
pub use error::{describe_session_code, describe_stream_code, session_code, stream_code, Error, APPLICATION_BASE};
pub use event::Event;
pub use io::{Command, StreamId, TransportEvent};
pub use subscribe::{PublishParams, SubscribeParams};

use crate::coding::DecodeError;
use crate::message::Codec;
use crate::path::Path;
use crate::stream::{StreamDecoder, StreamMessage, StreamType};

use announce::{Broadcast, InterestIn, InterestOut};
use subscribe::{GroupIn, GroupOut, Publication};

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
    SubscribeOut(u64),
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

/// Bytes waiting for the transport on one stream.
#[derive(Debug, Default)]
struct SendQueue {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    /// FIN after the queued bytes.
    fin: bool,
    /// FIN handed to the transport, or reset: nothing more will be sent.
    closed: bool,
    /// A `Transmit` command is outstanding.
    scheduled: bool,
}

#[derive(Debug)]
struct Stream {
    role: Role,
    /// Decoder for the peer's direction; `None` on our uni streams or once reading stopped.
    recv: Option<StreamDecoder>,
    send: SendQueue,
}

impl Stream {
    fn has_send(id: StreamId) -> bool {
        !id.is_remote() || !id.is_uni()
    }
}

/// One moq-lite session.
#[derive(Debug)]
pub struct Session {
    config: Config,
    codec: Codec,
    streams: FxHashMap<StreamId, Stream>,
    next_local: [u64; 2],
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
    scratch: BytesMut,
    closed: bool,
    now: Instant,
    remote_streams: usize,
    /// Broadcasts we announce, in path order (deterministic).
    broadcasts: BTreeMap<Path, Broadcast>,
    /// Live paths the peer has announced to us, across interests.
    announced: usize,
    /// Our subscriptions: subscribe id → subscribe stream.
    subscriptions: FxHashMap<u64, StreamId>,
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
    ended_subscriptions: VecDeque<u64>,
    /// lite-06 announce interests waiting for the peer's SETUP (its hop id).
    interests_waiting_setup: Vec<StreamId>,
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
            scratch: BytesMut::with_capacity(16 * 1024),
            closed: false,
            now,
            remote_streams: 0,
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
            ended_subscriptions: VecDeque::new(),
            interests_waiting_setup: Vec::new(),
        };
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

    /// Group bytes queued for the transport across the session.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// The next command for the driver.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.expiry_deadline()
    }

    /// Runs the timers due at `now` (early or repeated calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if !self.closed {
            self.expire_groups();
        }
    }

    /// How many bytes the driver may read for stream `id` now (0 for unknown streams).
    pub fn recv_credit(&self, id: StreamId) -> usize {
        let Some(decoder) = self.streams.get(&id).and_then(|s| s.recv.as_ref()) else { return 0 };
        let limit = if decoder.in_frames() {
            self.codec.limits.max_frame_size as usize + 32
        } else {
            self.codec.limits.max_message_size as usize + 32
        };
        limit.saturating_sub(decoder.buffered())
    }

    /// The bytes queued for stream `id` (one contiguous run of chunks) and whether FIN follows
    /// them. Report what the transport took with [`Session::advance_send`].
    pub fn send_chunks(&self, id: StreamId) -> Option<(&[Bytes], bool)> {
        let q = &self.streams.get(&id)?.send;
        if q.closed {
            return None;
        }
        let (head, tail) = q.chunks.as_slices();
        let fin = q.fin && tail.is_empty();
        if head.is_empty() && !fin {
            return None;
        }
        Some((head, fin))
    }

    /// Removes `bytes` from the front of stream `id`'s queue (they are now the transport's), and
    /// records that FIN was handed over too if `fin`.
    pub fn advance_send(&mut self, id: StreamId, mut bytes: usize, fin: bool) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let q = &mut stream.send;
        let taken = bytes.min(q.bytes);
        while bytes > 0 {
            let Some(front) = q.chunks.front_mut() else { break };
            if front.len() <= bytes {
                bytes -= front.len();
                q.chunks.pop_front();
            } else {
                let _ = front.split_to(bytes);
                bytes = 0;
            }
        }
        q.bytes -= taken;
        let done = fin && q.fin && q.chunks.is_empty();
        if q.chunks.is_empty() && (!q.fin || done) {
            q.scheduled = false;
        }
        if done {
            q.closed = true;
        }
        if let Role::GroupOut(g) = &stream.role {
            let publication = g.publication;
            self.queued -= taken;
            if let Some(p) = self.publication_mut(publication) {
                p.queued -= taken;
            }
            if done {
                self.group_done(id);
            }
        } else if done {
            self.gc(id);
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
            TransportEvent::StreamData { id, data, fin } => self.on_data(id, data, fin),
            TransportEvent::StreamReset { id, code } => self.on_reset(id, code),
            TransportEvent::StopSending { id, code } => self.on_stop(id, code),
            TransportEvent::Writable(id) => {
                if let Some(stream) = self.streams.get_mut(&id) {
                    let q = &mut stream.send;
                    if !q.closed && (!q.chunks.is_empty() || q.fin) {
                        q.scheduled = true;
                        self.commands.push_back(Command::Transmit(id));
                    }
                }
            }
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
        self.commands.push_back(Command::Close { code, reason: reason.to_string() });
        self.shutdown(code, reason.to_string());
    }

    // ----- plumbing -----

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

    /// Opens a local stream, queues its type, and returns its handle.
    fn open(&mut self, ty: StreamType, role: Role, priority: i32) -> StreamId {
        let uni = ty.is_uni();
        let counter = &mut self.next_local[usize::from(uni)];
        let id = StreamId::local(*counter, uni);
        *counter += 1;
        self.commands.push_back(Command::Open { id, priority });
        let recv = (!uni).then(|| StreamDecoder::responder(self.codec, ty));
        self.streams.insert(id, Stream { role, recv, send: SendQueue::default() });
        self.write_msg(id, |buf, _| ty.encode(buf));
        id
    }

    /// Encodes into the shared scratch buffer and queues the result on stream `id`.
    fn write_msg(&mut self, id: StreamId, encode: impl FnOnce(&mut BytesMut, &Codec)) -> usize {
        self.refill_scratch();
        encode(&mut self.scratch, &self.codec);
        let bytes = self.scratch.split().freeze();
        let n = bytes.len();
        self.queue(id, bytes);
        n
    }

    /// Makes room in the scratch buffer *before* encoding: by then the transport has usually
    /// taken the headers split off earlier, so `reserve` reclaims the same allocation instead of
    /// making a new one.
    fn refill_scratch(&mut self) {
        if self.scratch.capacity() < 1024 {
            self.scratch.reserve(16 * 1024);
        }
    }

    /// Queues a chunk on stream `id` (no copy).
    fn queue(&mut self, id: StreamId, data: Bytes) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let q = &mut stream.send;
        if q.closed || q.fin || data.is_empty() {
            return;
        }
        let n = data.len();
        q.bytes += n;
        q.chunks.push_back(data);
        if !q.scheduled {
            q.scheduled = true;
            self.commands.push_back(Command::Transmit(id));
        }
        // Group bytes count against the subscription's and the session's budgets.
        if let Role::GroupOut(g) = &stream.role {
            let publication = g.publication;
            self.queued += n;
            if let Some(p) = self.publication_mut(publication) {
                p.queued += n;
            }
        }
    }

    /// Queues FIN on stream `id`.
    fn finish(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let q = &mut stream.send;
        if q.closed || q.fin {
            return;
        }
        q.fin = true;
        if !q.scheduled {
            q.scheduled = true;
            self.commands.push_back(Command::Transmit(id));
        }
    }

    /// Resets our send side of `id` (dropping what is queued).
    fn reset_send(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        if !Stream::has_send(id) || stream.send.closed {
            return;
        }
        let q = &mut stream.send;
        let dropped = q.bytes;
        q.chunks.clear();
        q.bytes = 0;
        q.closed = true;
        q.scheduled = false;
        self.commands.push_back(Command::Reset { id, code });
        if let Role::GroupOut(g) = &stream.role {
            let publication = g.publication;
            self.queued -= dropped;
            if let Some(p) = self.publication_mut(publication) {
                p.queued -= dropped;
            }
        }
    }

    /// Stops reading `id` (STOP_SENDING) and discards what is buffered.
    fn stop_recv(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        if stream.recv.take().is_some() {
            self.commands.push_back(Command::StopSending { id, code });
        }
    }

    /// Abandons a stream in both directions and forgets it.
    fn abort(&mut self, id: StreamId, code: u64) {
        self.reset_send(id, code);
        self.stop_recv(id, code);
        self.remove_stream(id);
    }

    /// Forgets `id` once both directions are done.
    fn gc(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get(&id) else { return };
        let send_done = !Stream::has_send(id) || stream.send.closed;
        if send_done && stream.recv.is_none() {
            self.remove_stream(id);
        }
    }

    fn remove_stream(&mut self, id: StreamId) {
        if self.streams.remove(&id).is_some() && id.is_remote() {
            self.remote_streams -= 1;
        }
    }

    fn publication_mut(&mut self, id: StreamId) -> Option<&mut Publication> {
        match &mut self.streams.get_mut(&id)?.role {
            Role::SubscribeIn(p) => Some(p),
            _ => None,
        }
    }

    /// Closes the session for a peer protocol violation.
    fn violation(&mut self, why: &str) {
        tracing::debug!(why, "protocol violation");
        self.close(session_code::PROTOCOL_VIOLATION, why);
    }

    // ----- input -----

    fn on_opened(&mut self, id: StreamId) {
        if !id.is_remote() || self.streams.contains_key(&id) {
            return;
        }
        if self.remote_streams >= self.config.session_limits.max_streams {
            if !id.is_uni() {
                self.commands.push_back(Command::Reset { id, code: stream_code::LIMIT_EXCEEDED });
            }
            self.commands.push_back(Command::StopSending { id, code: stream_code::LIMIT_EXCEEDED });
            return;
        }
        self.remote_streams += 1;
        let recv = Some(StreamDecoder::opener(self.codec, id.is_uni()));
        self.streams.insert(id, Stream { role: Role::Unknown, recv, send: SendQueue::default() });
    }

    fn on_data(&mut self, id: StreamId, data: Bytes, fin: bool) {
        match self.streams.get_mut(&id).and_then(|s| s.recv.as_mut()) {
            Some(decoder) => decoder.push(data),
            None => return,
        }
        loop {
            if self.closed {
                return;
            }
            let Some(decoder) = self.streams.get_mut(&id).and_then(|s| s.recv.as_mut()) else { return };
            match decoder.next() {
                Ok(Some(msg)) => self.on_message(id, msg),
                Ok(None) => break,
                Err(e) => return self.on_decode_error(id, e),
            }
        }
        if fin {
            let Some(decoder) = self.streams.get_mut(&id).and_then(|s| s.recv.take()) else { return };
            match decoder.finish() {
                Ok(()) => self.on_fin(id),
                Err(e) => self.on_decode_error(id, e),
            }
        }
    }

    fn on_decode_error(&mut self, id: StreamId, err: DecodeError) {
        let role = self.streams.get(&id).map(|s| &s.role);
        match (err, role) {
            (DecodeError::UnknownStreamType(ty), _) => {
                tracing::debug!(ty, "unknown stream type: resetting the stream");
                self.abort(id, stream_code::INTERNAL);
            }
            (err, Some(Role::GroupIn(_) | Role::FetchOut)) => {
                let code = match err {
                    DecodeError::FrameTooLarge(_) => stream_code::FRAME_TOO_LARGE,
                    DecodeError::FinMidMessage => stream_code::WRONG_SIZE,
                    _ => stream_code::MALFORMED,
                };
                tracing::debug!(%err, "bad data stream");
                self.stop_recv(id, code);
                self.on_reset(id, code);
            }
            (err, _) => {
                let reason = err.to_string();
                self.violation(&reason);
            }
        }
    }

    fn on_message(&mut self, id: StreamId, msg: StreamMessage) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        match (&mut stream.role, msg) {
            (Role::Draining, _) => {}
            (Role::Unknown, StreamMessage::Type(ty)) => self.on_stream_type(id, ty),
            (Role::SetupIn, StreamMessage::Setup(setup)) => self.on_setup(setup),
            (Role::InterestIn(_), StreamMessage::AnnounceRequest(req)) => self.on_announce_request(id, req),
            (Role::InterestOut(_), msg) => self.on_announcement(id, msg),
            (Role::SubscribeIn(_), StreamMessage::Subscribe(sub)) => self.on_subscribe(id, sub),
            (Role::SubscribeIn(_), StreamMessage::SubscribeUpdate(update)) => self.on_subscribe_update(id, update),
            (Role::SubscribeOut(sub), StreamMessage::SubscribeResponse(resp)) => {
                let sub = *sub;
                self.on_subscribe_response(sub, resp)
            }
            (Role::GroupIn(_), StreamMessage::Group(header)) => self.on_group_header(id, header),
            (Role::GroupIn(_), StreamMessage::Frame(frame)) => self.on_group_frame(id, frame),
            (Role::FetchIn { .. }, StreamMessage::Fetch(fetch)) => {
                self.events.push_back(Event::FetchRequest { stream: id, fetch })
            }
            (Role::FetchOut, StreamMessage::Frame(f)) => {
                self.events.push_back(Event::FetchFrame { stream: id, timestamp: f.timestamp, payload: f.payload })
            }
            (Role::TrackIn, StreamMessage::Track(track)) => {
                self.events.push_back(Event::TrackRequest { stream: id, track })
            }
            (Role::TrackOut { answered }, StreamMessage::TrackInfo(info)) => {
                *answered = true;
                self.events.push_back(Event::TrackInfo { stream: id, info })
            }
            (Role::ProbeIn, StreamMessage::Probe(p)) => {
                self.events.push_back(Event::ProbeTarget { stream: id, bitrate: p.bitrate })
            }
            (Role::ProbeOut, StreamMessage::Probe(probe)) => {
                self.events.push_back(Event::ProbeReport { stream: id, probe })
            }
            (Role::GoawayIn, StreamMessage::Goaway(g)) => {
                self.goaway_received = true;
                self.events.push_back(Event::Goaway { uri: g.uri });
            }
            (_, msg) => {
                // The stream decoder only yields messages a direction may carry, so this is a
                // message arriving on a stream whose role does not expect it.
                tracing::debug!(?msg, "unexpected message");
                self.violation("unexpected message");
            }
        }
    }

    fn on_stream_type(&mut self, id: StreamId, ty: StreamType) {
        let role = match ty {
            StreamType::Setup if self.setup_stream_seen => return self.violation("second SETUP stream"),
            StreamType::Setup => {
                self.setup_stream_seen = true;
                Role::SetupIn
            }
            StreamType::Goaway if self.goaway_stream_seen => return self.violation("second GOAWAY stream"),
            StreamType::Goaway => {
                self.goaway_stream_seen = true;
                Role::GoawayIn
            }
            StreamType::Announce => {
                let open = self.streams.values().filter(|s| matches!(s.role, Role::InterestIn(_))).count();
                if open >= self.config.session_limits.max_announce_interests {
                    return self.abort(id, stream_code::LIMIT_EXCEEDED);
                }
                Role::InterestIn(Box::default())
            }
            StreamType::Subscribe => Role::SubscribeIn(Box::default()),
            StreamType::Group => Role::GroupIn(GroupIn::default()),
            StreamType::Fetch => Role::FetchIn { last_timestamp: 0, served: false },
            StreamType::Track => Role::TrackIn,
            StreamType::Probe => {
                self.events.push_back(Event::ProbeRequest { stream: id });
                Role::ProbeIn
            }
        };
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.role = role;
        }
    }

    /// The peer finished its direction of `id` cleanly.
    fn on_fin(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        match &mut stream.role {
            Role::Unknown | Role::GoawayIn | Role::TrackIn | Role::FetchIn { .. } | Role::Draining => {}
            Role::SetupIn => {
                if self.peer_setup.is_none() {
                    return self.violation("SETUP stream ended without SETUP");
                }
            }
            Role::InterestIn(_) => {
                self.events.push_back(Event::AnnounceInterestCancelled { stream: id });
                self.finish(id);
            }
            Role::InterestOut(_) => return self.end_interest_out(id, None),
            Role::SubscribeIn(_) => return self.end_publication(id, None),
            Role::SubscribeOut(sub) => {
                let sub = *sub;
                return self.end_subscription_out(sub, None);
            }
            Role::GroupIn(_) => return self.end_group_in(id, None),
            Role::FetchOut => {
                self.events.push_back(Event::FetchEnded { stream: id, code: None });
            }
            Role::TrackOut { answered } => {
                if !*answered {
                    self.events.push_back(Event::TrackFailed { stream: id, code: 0 });
                }
            }
            Role::ProbeIn | Role::ProbeOut => {
                self.events.push_back(Event::ProbeEnded { stream: id, code: None });
                self.finish(id);
            }
            Role::GroupOut(_) | Role::SetupOut | Role::GoawayOut => {}
        }
        self.gc(id);
    }

    /// The peer reset its direction of `id` (or we gave up reading it with `code`).
    fn on_reset(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        stream.recv = None;
        match &stream.role {
            Role::InterestOut(_) => return self.end_interest_out(id, Some(code)),
            Role::InterestIn(_) => {
                self.events.push_back(Event::AnnounceInterestCancelled { stream: id });
                return self.abort(id, stream_code::CANCEL);
            }
            Role::SubscribeIn(_) => return self.end_publication(id, Some(code)),
            Role::SubscribeOut(sub) => {
                let sub = *sub;
                return self.end_subscription_out(sub, Some(code));
            }
            Role::GroupIn(_) => return self.end_group_in(id, Some(code)),
            Role::FetchOut => self.events.push_back(Event::FetchEnded { stream: id, code: Some(code) }),
            Role::FetchIn { .. } => {
                self.events.push_back(Event::FetchCancelled { stream: id, code });
                return self.abort(id, stream_code::CANCEL);
            }
            Role::TrackOut { answered: false } => self.events.push_back(Event::TrackFailed { stream: id, code }),
            Role::ProbeIn | Role::ProbeOut => {
                self.events.push_back(Event::ProbeEnded { stream: id, code: Some(code) });
                return self.abort(id, stream_code::CANCEL);
            }
            _ => {}
        }
        self.reset_send(id, stream_code::CANCEL);
        self.remove_stream(id);
    }

    /// The peer no longer wants what we send on `id`.
    fn on_stop(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get(&id) else { return };
        match &stream.role {
            Role::GroupOut(_) => self.drop_group(id, code),
            Role::SubscribeIn(_) => self.end_publication(id, Some(code)),
            Role::FetchIn { .. } => {
                self.events.push_back(Event::FetchCancelled { stream: id, code });
                self.abort(id, code);
            }
            _ => {
                self.reset_send(id, code);
                self.gc(id);
            }
        }
    }

    /// Ends everything: each open request and group gets its end event, then `Closed`.
    fn shutdown(&mut self, code: u64, reason: String) {
        if self.closed {
            return;
        }
        let mut ids: Vec<StreamId> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(stream) = self.streams.get(&id) else { continue };
            match &stream.role {
                Role::GroupIn(g) if g.subscription.is_some() => self.end_group_in(id, Some(code)),
                Role::SubscribeOut(sub) => {
                    let sub = *sub;
                    self.end_subscription_out(sub, Some(code));
                }
                Role::SubscribeIn(_) => self.end_publication(id, Some(code)),
                Role::InterestOut(_) => self.end_interest_out(id, Some(code)),
                Role::FetchOut => self.events.push_back(Event::FetchEnded { stream: id, code: Some(code) }),
                Role::TrackOut { answered: false } => self.events.push_back(Event::TrackFailed { stream: id, code }),
                Role::ProbeOut | Role::ProbeIn => {
                    self.events.push_back(Event::ProbeEnded { stream: id, code: Some(code) })
                }
                _ => {}
            }
        }
        self.closed = true;
        self.streams.clear();
        self.subscriptions.clear();
        self.publications.clear();
        self.queued = 0;
        self.events.push_back(Event::Closed { code, reason });
    }
}
