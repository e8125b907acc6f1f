//! What arrives from the peer: new streams, their bytes (decoded into messages and dispatched
//! by the stream's role), FIN, resets and STOP_SENDING.
//!
//! A decode error on a data stream (group or fetch) resets that stream; anywhere else it is a
//! protocol violation that closes the session. Nothing here returns an error to the driver.

use bytes::Bytes;

use super::handle::{FetchId, InterestId, ProbeId, TrackRequestId};
use super::send::Stream;
use super::subscriber::GroupIn;
use super::{stream_code, Command, Event, Role, Session, StreamId};
use crate::coding::DecodeError;
use crate::stream::{StreamDecoder, StreamMessage, StreamType};

impl Session {
    pub(super) fn on_opened(&mut self, id: StreamId) {
        if !id.is_remote() || self.streams.contains_key(&id) {
            return;
        }
        if self.remote_streams >= self.config.session_limits.max_streams {
            self.stats.streams_refused += 1;
            if !id.is_uni() {
                self.push(Command::Reset { stream: id, code: stream_code::LIMIT_EXCEEDED });
            }
            self.push(Command::StopSending { stream: id, code: stream_code::LIMIT_EXCEEDED });
            return;
        }
        self.remote_streams += 1;
        let recv = Some(StreamDecoder::opener(self.codec, id.is_uni()));
        self.streams.insert(id, Stream::new(Role::Unknown, recv));
        if !id.is_uni() {
            // The transport sends on a stream the peer opened at its default priority (0 in
            // QUIC), below every group: what we answer there (subscribe responses,
            // announcements, probe reports) is control traffic and must not wait behind groups.
            self.push(Command::SetPriority { stream: id, priority: super::CONTROL_PRIORITY });
        }
        self.grant_read(id);
    }

    pub(super) fn on_data(&mut self, id: StreamId, data: Bytes, fin: bool) {
        let arrived = !data.is_empty();
        match self.streams.get_mut(&id) {
            Some(Stream { recv: Some(decoder), reading, .. }) => {
                *reading = false;
                decoder.push(data);
            }
            _ => return,
        }
        self.account_recv(id, arrived);
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
        self.account_recv(id, false);
        if !fin {
            return self.grant_read(id);
        }
        let Some(decoder) = self.streams.get_mut(&id).and_then(|s| s.recv.take()) else { return };
        self.account_recv(id, false);
        match decoder.finish() {
            Ok(()) => self.on_fin(id),
            Err(e) => self.on_decode_error(id, e),
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
            (Role::FetchIn { .. }, StreamMessage::Fetch(request)) => {
                // Fetched frames go above live groups of the same subscriber priority.
                let priority = super::delivery::fetch_priority(request.priority);
                self.push(Command::SetPriority { stream: id, priority });
                self.events.push_back(Event::FetchRequest { fetch: FetchId(id), request })
            }
            (Role::FetchOut, StreamMessage::Frame(f)) => self.events.push_back(Event::FetchFrame {
                fetch: FetchId(id),
                timestamp: f.timestamp,
                payload: f.payload,
            }),
            (Role::TrackIn, StreamMessage::Track(track)) => {
                self.events.push_back(Event::TrackRequest { request: TrackRequestId(id), track })
            }
            (Role::TrackOut { answered }, StreamMessage::TrackInfo(info)) => {
                *answered = true;
                self.events.push_back(Event::TrackInfo { request: TrackRequestId(id), info })
            }
            (Role::ProbeIn, StreamMessage::Probe(p)) => {
                self.events.push_back(Event::ProbeTarget { probe: ProbeId(id), bitrate: p.bitrate })
            }
            (Role::ProbeOut, StreamMessage::Probe(report)) => {
                self.events.push_back(Event::ProbeReport { probe: ProbeId(id), report })
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
                if self.peer_interests >= self.config.session_limits.max_announce_interests {
                    self.stats.interests_refused += 1;
                    return self.abort(id, stream_code::LIMIT_EXCEEDED);
                }
                self.peer_interests += 1;
                Role::InterestIn(Box::default())
            }
            StreamType::Subscribe => Role::SubscribeIn(Box::default()),
            StreamType::Group => Role::GroupIn(GroupIn::default()),
            StreamType::Fetch => Role::FetchIn { last_timestamp: 0, served: false },
            StreamType::Track => Role::TrackIn,
            StreamType::Probe => {
                self.events.push_back(Event::ProbeRequest { probe: ProbeId(id) });
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
                self.events.push_back(Event::AnnounceInterestCancelled { interest: InterestId(id) });
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
                self.events.push_back(Event::FetchEnded { fetch: FetchId(id), code: None });
            }
            Role::TrackOut { answered } => {
                if !*answered {
                    self.events.push_back(Event::TrackFailed { request: TrackRequestId(id), code: 0 });
                }
            }
            Role::ProbeIn | Role::ProbeOut => {
                self.events.push_back(Event::ProbeEnded { probe: ProbeId(id), code: None });
                self.finish(id);
            }
            Role::GroupOut(_) | Role::SetupOut | Role::GoawayOut => {}
        }
        self.gc(id);
    }

    /// The peer reset its direction of `id` (or we gave up reading it with `code`).
    pub(super) fn on_reset(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get_mut(&id) else { return };
        stream.recv = None;
        stream.reading = false;
        match &stream.role {
            Role::InterestOut(_) => return self.end_interest_out(id, Some(code)),
            Role::InterestIn(_) => {
                self.events.push_back(Event::AnnounceInterestCancelled { interest: InterestId(id) });
                return self.abort(id, stream_code::CANCEL);
            }
            Role::SubscribeIn(_) => return self.end_publication(id, Some(code)),
            Role::SubscribeOut(sub) => {
                let sub = *sub;
                return self.end_subscription_out(sub, Some(code));
            }
            Role::GroupIn(_) => return self.end_group_in(id, Some(code)),
            Role::FetchOut => self.events.push_back(Event::FetchEnded { fetch: FetchId(id), code: Some(code) }),
            Role::FetchIn { .. } => {
                self.events.push_back(Event::FetchCancelled { fetch: FetchId(id), code });
                return self.abort(id, stream_code::CANCEL);
            }
            Role::TrackOut { answered: false } => {
                self.events.push_back(Event::TrackFailed { request: TrackRequestId(id), code })
            }
            Role::ProbeIn | Role::ProbeOut => {
                self.events.push_back(Event::ProbeEnded { probe: ProbeId(id), code: Some(code) });
                return self.abort(id, stream_code::CANCEL);
            }
            _ => {}
        }
        self.reset_send(id, stream_code::CANCEL);
        self.remove_stream(id);
    }

    /// The peer no longer wants what we send on `id`.
    pub(super) fn on_stop(&mut self, id: StreamId, code: u64) {
        let Some(stream) = self.streams.get(&id) else { return };
        match &stream.role {
            Role::GroupOut(_) => self.drop_group(id, code),
            Role::SubscribeIn(_) => self.end_publication(id, Some(code)),
            Role::InterestIn(_) => {
                self.events.push_back(Event::AnnounceInterestCancelled { interest: InterestId(id) });
                self.abort(id, code);
            }
            Role::FetchIn { .. } => {
                self.events.push_back(Event::FetchCancelled { fetch: FetchId(id), code });
                self.abort(id, code);
            }
            _ => {
                self.reset_send(id, code);
                self.gc(id);
            }
        }
    }

    /// Ends everything: each open request and group gets its end event, then `Closed`.
    pub(super) fn shutdown(&mut self, code: u64, reason: String) {
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
                Role::SubscribeIn(_) => self.close_publication(id, code),
                Role::InterestOut(_) => self.end_interest_out(id, Some(code)),
                Role::FetchOut => self.events.push_back(Event::FetchEnded { fetch: FetchId(id), code: Some(code) }),
                Role::TrackOut { answered: false } => {
                    self.events.push_back(Event::TrackFailed { request: TrackRequestId(id), code })
                }
                Role::ProbeOut | Role::ProbeIn => {
                    self.events.push_back(Event::ProbeEnded { probe: ProbeId(id), code: Some(code) })
                }
                _ => {}
            }
        }
        self.end_tails();
        self.closed = true;
        self.streams.clear();
        self.subscriptions.clear();
        self.tails.clear();
        self.publications.clear();
        self.timers = crate::timer::Timers::new();
        self.queued = 0;
        self.recv_buffered = 0;
        self.deferred.clear();
        self.events.push_back(Event::Closed { code, reason });
    }
}
