//! Subscriptions on a session, both ways, and the groups they carry.
//!
//! As subscriber: SUBSCRIBE / UPDATE / cancel, the responses, and incoming group streams.
//! As publisher: accepting or rejecting the peer's subscriptions, opening groups and writing
//! frames, and the delivery policy: subscriber priority and group order become stream
//! priorities; non-latest groups older than the subscriber's max latency are reset instead of
//! sent; queued bytes are bounded per subscription and per session by dropping the oldest
//! groups, never the session.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{stream_code, Error, Event, Role, Session, StreamId, CONTROL_PRIORITY};
use crate::message::{
    Datagram, GroupHeader, Message, Subscribe, SubscribeDrop, SubscribeOk, SubscribeResponse, SubscribeUpdate,
};
use crate::path::Path;
use crate::stream::{Frame, StreamEncoder, StreamType};
use crate::version::Dialect;

/// How many ended subscription ids are remembered so that their in-flight groups still land.
const ENDED_MEMORY: usize = 1024;

/// What a subscriber asks for (SUBSCRIBE and SUBSCRIBE_UPDATE).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscribeParams {
    /// Priority across the session; higher is sent first.
    pub priority: u8,
    /// Oldest group first (lite-03 to 05; lite-06 is always newest first).
    pub ordered: bool,
    /// Max latency / max age in milliseconds (0 = only the latest group).
    pub max_latency: u64,
    /// First group wanted (`None` = latest, or no floor on lite-06).
    pub start_group: Option<u64>,
    /// Last group wanted, inclusive (`None` = unbounded).
    pub end_group: Option<u64>,
    /// First frame within the start group (lite-06).
    pub start_frame: u64,
    /// Last frame within the end group, inclusive (lite-06).
    pub end_frame: Option<u64>,
}

impl SubscribeParams {
    /// Rejects values that cannot be encoded.
    fn validate(&self) -> Result<(), Error> {
        Session::check(&[self.max_latency, self.start_frame])?;
        Session::check_opt(&[self.start_group, self.end_group, self.end_frame])
    }

    fn from_subscribe(s: &Subscribe) -> Self {
        Self {
            priority: s.priority,
            ordered: s.ordered,
            max_latency: s.max_latency,
            start_group: s.start_group,
            end_group: s.end_group,
            start_frame: s.start_frame,
            end_frame: s.end_frame,
        }
    }

    fn from_update(u: &SubscribeUpdate) -> Self {
        Self {
            priority: u.priority,
            ordered: u.ordered,
            max_latency: u.max_latency,
            start_group: u.start_group,
            end_group: u.end_group,
            start_frame: u.start_frame,
            end_frame: u.end_frame,
        }
    }

    fn to_update(self) -> SubscribeUpdate {
        SubscribeUpdate {
            priority: self.priority,
            ordered: self.ordered,
            max_latency: self.max_latency,
            start_group: self.start_group,
            end_group: self.end_group,
            start_frame: self.start_frame,
            end_frame: self.end_frame,
        }
    }
}

/// The publisher's track properties, sent in lite-03/04 SUBSCRIBE_OK.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishParams {
    /// Publisher priority (a tie-breaker).
    pub priority: u8,
    /// Publisher group order.
    pub ordered: bool,
    /// Publisher max latency in milliseconds.
    pub max_latency: u64,
}

/// A subscription we serve.
#[derive(Debug, Default)]
pub(super) struct Publication {
    /// The peer's subscribe id.
    id: u64,
    params: SubscribeParams,
    accepted: bool,
    publish: PublishParams,
    /// SUBSCRIBE_OK (lite-03/04) or SUBSCRIBE_START (lite-05+) has been sent.
    responded: bool,
    /// Open group streams, oldest first.
    groups: VecDeque<StreamId>,
    /// The newest group opened so far.
    latest: Option<u64>,
    pub(super) queued: usize,
    /// The application ended the track: FIN once the groups drain.
    ending: bool,
}

/// A group we publish.
#[derive(Debug)]
pub(super) struct GroupOut {
    pub(super) publication: StreamId,
    sequence: u64,
    started: Instant,
    encoder: StreamEncoder,
}

/// A group we receive.
#[derive(Debug, Default)]
pub(super) struct GroupIn {
    pub(super) subscription: Option<u64>,
    sequence: u64,
}

/// The send priority of a group: subscriber priority first, then group order.
pub fn group_priority(params: &SubscribeParams, sequence: u64) -> i32 {
    const MASK: u64 = (1 << 23) - 1;
    let order = if params.ordered { MASK - (sequence & MASK) } else { sequence & MASK };
    (i32::from(params.priority) << 23) | order as i32
}

impl Session {
    // ----- subscriber -----

    /// Subscribes to a track. Returns the subscription id used in every related event.
    pub fn subscribe(&mut self, path: Path, track: &str, params: SubscribeParams) -> Result<u64, Error> {
        self.ensure_can_request()?;
        params.validate()?;
        if self.subscriptions.len() >= self.config.session_limits.max_outgoing_subscriptions {
            return Err(Error::LimitExceeded);
        }
        let id = self.next_subscribe_id;
        self.next_subscribe_id += 1;
        let msg = Subscribe {
            id,
            path,
            track: track.to_string(),
            priority: params.priority,
            ordered: params.ordered,
            max_latency: params.max_latency,
            start_group: params.start_group,
            end_group: params.end_group,
            start_frame: params.start_frame,
            end_frame: params.end_frame,
        };
        let stream = self.open(StreamType::Subscribe, Role::SubscribeOut(id), CONTROL_PRIORITY);
        self.write_msg(stream, |buf, codec| msg.encode(codec, buf));
        self.subscriptions.insert(id, stream);
        Ok(id)
    }

    /// Changes the parameters of one of our subscriptions.
    pub fn update_subscription(&mut self, id: u64, params: SubscribeParams) -> Result<(), Error> {
        self.ensure_open()?;
        params.validate()?;
        let stream = *self.subscriptions.get(&id).ok_or(Error::UnknownHandle)?;
        let update = params.to_update();
        self.write_msg(stream, |buf, codec| update.encode(codec, buf));
        Ok(())
    }

    /// Cancels one of our subscriptions. Its open groups end now (with events); nothing more
    /// is reported for it.
    pub fn unsubscribe(&mut self, id: u64) -> Result<(), Error> {
        self.ensure_open()?;
        let stream = self.subscriptions.remove(&id).ok_or(Error::UnknownHandle)?;
        self.end_groups_of(id, stream_code::CANCEL, true);
        self.finish(stream);
        if let Some(s) = self.streams.get_mut(&stream) {
            s.role = Role::Draining;
        }
        Ok(())
    }

    /// Stops receiving one group (STOP_SENDING); it ends with `code`.
    pub fn stop_group(&mut self, group: StreamId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code])?;
        match self.streams.get(&group).map(|s| &s.role) {
            Some(Role::GroupIn(_)) => {
                self.stop_recv(group, code);
                self.end_group_in(group, Some(code));
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    pub(super) fn on_subscribe_response(&mut self, id: u64, resp: SubscribeResponse) {
        self.events.push_back(match resp {
            SubscribeResponse::Ok(ok) => Event::SubscribeOk { id, ok },
            SubscribeResponse::Start(group) => Event::SubscribeStart { id, group },
            SubscribeResponse::End(group) => Event::SubscribeEnd { id, group },
            SubscribeResponse::Drop(drop) => Event::GroupsDropped { id, drop },
        });
    }

    pub(super) fn on_group_header(&mut self, id: StreamId, header: GroupHeader) {
        let sub = header.subscribe_id;
        let known = self.subscriptions.contains_key(&sub) || self.ended_subscriptions.contains(&sub);
        if !known {
            tracing::debug!(sub, "group for an unknown subscription");
            self.stop_recv(id, stream_code::UNKNOWN_SUBSCRIPTION);
            self.remove_stream(id);
            return;
        }
        if let Some(Role::GroupIn(g)) = self.streams.get_mut(&id).map(|s| &mut s.role) {
            g.subscription = Some(sub);
            g.sequence = header.sequence;
        }
        self.events.push_back(Event::GroupStarted {
            stream: id,
            subscription: sub,
            sequence: header.sequence,
            frame_start: header.frame_start,
        });
    }

    pub(super) fn on_group_frame(&mut self, id: StreamId, frame: Frame) {
        if let Some(Role::GroupIn(GroupIn { subscription: Some(sub), sequence })) =
            self.streams.get(&id).map(|s| &s.role)
        {
            self.events.push_back(Event::Frame {
                stream: id,
                subscription: *sub,
                sequence: *sequence,
                timestamp: frame.timestamp,
                payload: frame.payload,
            });
        }
    }

    /// A group stream ended: one `GroupEnded` event, then the stream is forgotten.
    pub(super) fn end_group_in(&mut self, id: StreamId, code: Option<u64>) {
        let Some(stream) = self.streams.remove(&id) else { return };
        if id.is_remote() {
            self.remote_streams -= 1;
        }
        if let Role::GroupIn(GroupIn { subscription: Some(subscription), sequence }) = stream.role {
            self.events.push_back(Event::GroupEnded { stream: id, subscription, sequence, code });
        }
    }

    /// Ends the open groups of subscription `sub` (optionally stopping their streams).
    fn end_groups_of(&mut self, sub: u64, code: u64, stop: bool) {
        let mut groups: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| matches!(s.role, Role::GroupIn(GroupIn { subscription: Some(x), .. }) if x == sub))
            .map(|(id, _)| *id)
            .collect();
        groups.sort_unstable();
        for g in groups {
            if stop {
                self.stop_recv(g, code);
            }
            self.end_group_in(g, Some(code));
        }
    }

    /// One of our subscriptions ended from the publisher's side (`None` = FIN).
    pub(super) fn end_subscription_out(&mut self, sub: u64, code: Option<u64>) {
        let Some(stream) = self.subscriptions.remove(&sub) else { return };
        match code {
            None => {
                // Groups already in flight may still arrive: remember the id for a while.
                if self.ended_subscriptions.len() >= ENDED_MEMORY {
                    self.ended_subscriptions.pop_front();
                }
                self.ended_subscriptions.push_back(sub);
                self.finish(stream);
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.recv = None;
                }
                self.gc(stream);
            }
            Some(code) => {
                self.end_groups_of(sub, code, true);
                self.reset_send(stream, stream_code::CANCEL);
                self.remove_stream(stream);
            }
        }
        self.events.push_back(Event::SubscriptionEnded { id: sub, code });
    }

    // ----- publisher -----

    pub(super) fn on_subscribe(&mut self, id: StreamId, sub: Subscribe) {
        if self.publications.contains_key(&sub.id) {
            return self.violation("duplicate subscribe id");
        }
        if self.publications.len() >= self.config.session_limits.max_subscriptions {
            tracing::debug!("too many subscriptions: rejecting");
            return self.abort(id, stream_code::LIMIT_EXCEEDED);
        }
        self.publications.insert(sub.id, id);
        if let Some(p) = self.publication_mut(id) {
            p.id = sub.id;
            p.params = SubscribeParams::from_subscribe(&sub);
        }
        self.events.push_back(Event::SubscribeRequest { stream: id, subscribe: sub });
    }

    pub(super) fn on_subscribe_update(&mut self, id: StreamId, update: SubscribeUpdate) {
        let Some(p) = self.publication_mut(id) else { return };
        p.params = SubscribeParams::from_update(&update);
        let params = p.params;
        let groups: Vec<StreamId> = p.groups.iter().copied().collect();
        for g in groups {
            if let Some(Role::GroupOut(group)) = self.streams.get(&g).map(|s| &s.role) {
                let priority = group_priority(&params, group.sequence);
                self.commands.push_back(super::Command::SetPriority { id: g, priority });
            }
        }
        self.events.push_back(Event::SubscribeUpdated { stream: id, update });
    }

    /// The current parameters of a subscription we serve.
    pub fn subscription_params(&self, stream: StreamId) -> Option<SubscribeParams> {
        match &self.streams.get(&stream)?.role {
            Role::SubscribeIn(p) => Some(p.params),
            _ => None,
        }
    }

    /// Accepts the peer's subscription. On lite-03/04 (draft dialect) this sends SUBSCRIBE_OK;
    /// gomoqt's dialect and lite-05+ answer when the first group opens.
    pub fn accept_subscription(&mut self, stream: StreamId, publish: PublishParams) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[publish.max_latency])?;
        let eager = !self.codec.version.has_subscribe_start() && self.codec.dialect == Dialect::Draft;
        let p = self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        if p.accepted {
            return Err(Error::InvalidState);
        }
        p.accepted = true;
        p.publish = publish;
        if eager {
            p.responded = true;
            let ok = SubscribeResponse::Ok(SubscribeOk {
                priority: publish.priority,
                ordered: publish.ordered,
                max_latency: publish.max_latency,
                start_group: None,
                end_group: None,
            });
            self.write_msg(stream, |buf, codec| ok.encode(codec, buf));
        }
        Ok(())
    }

    /// Rejects the peer's subscription with a stream code (e.g. `stream_code::NOT_FOUND`).
    pub fn reject_subscription(&mut self, stream: StreamId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code])?;
        let p = self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        let id = p.id;
        self.publications.remove(&id);
        self.abort(stream, code);
        Ok(())
    }

    /// Sends the first response (SUBSCRIBE_OK lazily, or SUBSCRIBE_START) if still due.
    fn respond_first_group(&mut self, stream: StreamId, sequence: u64) {
        let Some(p) = self.publication_mut(stream) else { return };
        if p.responded {
            return;
        }
        p.responded = true;
        let publish = p.publish;
        let resp = if self.codec.version.has_subscribe_start() {
            SubscribeResponse::Start(sequence)
        } else {
            SubscribeResponse::Ok(SubscribeOk {
                priority: publish.priority,
                ordered: publish.ordered,
                max_latency: publish.max_latency,
                start_group: Some(sequence),
                end_group: None,
            })
        };
        self.write_msg(stream, |buf, codec| resp.encode(codec, buf));
    }

    /// Opens a group stream for a subscription we accepted. Older groups that are now too old
    /// for the subscriber's max latency are dropped.
    pub fn open_group(&mut self, stream: StreamId, sequence: u64) -> Result<StreamId, Error> {
        self.ensure_open()?;
        Self::check(&[sequence])?;
        let p = self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        if !p.accepted || p.ending {
            return Err(Error::InvalidState);
        }
        let params = p.params;
        let sub_id = p.id;
        if p.latest.is_none_or(|l| sequence > l) {
            p.latest = Some(sequence);
        }
        self.respond_first_group(stream, sequence);
        let group =
            GroupOut { publication: stream, sequence, started: self.now, encoder: StreamEncoder::new(self.codec) };
        let id = self.open(StreamType::Group, Role::GroupOut(group), group_priority(&params, sequence));
        let header = GroupHeader { subscribe_id: sub_id, sequence, frame_start: 0 };
        self.write_msg(id, |buf, codec| header.encode(codec, buf));
        if let Some(p) = self.publication_mut(stream) {
            p.groups.push_back(id);
        }
        self.expire_publication(stream);
        // The header counts against the budgets like any other group byte.
        self.make_room(stream, id, 0)?;
        Ok(id)
    }

    /// Queues one frame on a group we publish. The payload is not copied. On lite-05+ the
    /// timestamp must be below 2^61 (`Error::InvalidArgument` otherwise).
    pub fn write_frame(&mut self, group: StreamId, timestamp: u64, payload: Bytes) -> Result<(), Error> {
        self.ensure_open()?;
        self.refill_scratch();
        let Some(stream) = self.streams.get_mut(&group) else { return Err(Error::UnknownHandle) };
        let Role::GroupOut(g) = &mut stream.role else { return Err(Error::UnknownHandle) };
        if stream.send.fin || stream.send.closed {
            return Err(Error::InvalidState);
        }
        if !super::timestamp_fits(self.codec.version, timestamp) {
            return Err(Error::InvalidArgument);
        }
        g.encoder.frame_header(timestamp, payload.len(), &mut self.scratch);
        let publication = g.publication;
        let header = self.scratch.split().freeze();
        let size = header.len() + payload.len();
        self.make_room(publication, group, size)?;
        self.queue(group, header);
        self.queue(group, payload);
        Ok(())
    }

    /// Finishes a group we publish (FIN after its queued frames).
    pub fn finish_group(&mut self, group: StreamId) -> Result<(), Error> {
        self.ensure_open()?;
        match self.streams.get(&group).map(|s| &s.role) {
            Some(Role::GroupOut(_)) => {
                self.finish(group);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Abandons a group we publish (reset with `code`).
    pub fn reset_group(&mut self, group: StreamId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code])?;
        match self.streams.get(&group).map(|s| &s.role) {
            Some(Role::GroupOut(_)) => {
                self.remove_group(group, code);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Tells the subscriber that groups `start..=end` will not come (SUBSCRIBE_DROP).
    pub fn drop_groups(&mut self, stream: StreamId, start: u64, end: u64, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code, start.saturating_add(1), end.saturating_add(1)])?; // gomoqt spells groups +1
        if end < start {
            return Err(Error::InvalidArgument);
        }
        self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        let drop = SubscribeResponse::Drop(SubscribeDrop { start, end, error: code });
        self.write_msg(stream, |buf, codec| drop.encode(codec, buf));
        Ok(())
    }

    /// Ends a subscription we serve: lite-05+ sends SUBSCRIBE_END(`end`, exclusive; default
    /// the group after the latest), then FIN once its open groups have drained.
    pub fn end_subscription(&mut self, stream: StreamId, end: Option<u64>) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check_opt(&[end])?;
        let modern = self.codec.version.has_subscribe_start();
        let p = self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        if p.ending {
            return Err(Error::InvalidState);
        }
        p.ending = true;
        let end = end.unwrap_or_else(|| p.latest.map_or(0, |l| l + 1));
        let drained = p.groups.is_empty();
        if modern {
            self.write_msg(stream, |buf, codec| SubscribeResponse::End(end).encode(codec, buf));
        }
        if drained {
            self.finish(stream);
        }
        Ok(())
    }

    /// Sends a one-frame group as a datagram (lite-05+). Fails if it does not fit.
    pub fn send_datagram(
        &mut self,
        stream: StreamId,
        sequence: u64,
        timestamp: u64,
        payload: Bytes,
    ) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[sequence, timestamp])?;
        if !self.codec.version.has_datagrams() {
            return Err(Error::Unsupported);
        }
        let p = self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        if !p.accepted {
            return Err(Error::InvalidState);
        }
        let datagram = Datagram { subscribe_id: p.id, group: sequence, timestamp, payload };
        let mut buf = bytes::BytesMut::with_capacity(24 + datagram.payload.len());
        datagram.encode(&self.codec, &mut buf);
        if buf.len() > self.config.max_datagram_size {
            return Err(Error::InvalidArgument);
        }
        self.respond_first_group(stream, sequence);
        self.commands.push_back(super::Command::SendDatagram(buf.freeze()));
        Ok(())
    }

    pub(super) fn on_datagram(&mut self, data: Bytes) {
        if !self.codec.version.has_datagrams() {
            return;
        }
        let Ok(d) = Datagram::decode(&data, &self.codec) else { return };
        if self.subscriptions.contains_key(&d.subscribe_id) {
            self.events.push_back(Event::Datagram {
                subscription: d.subscribe_id,
                sequence: d.group,
                timestamp: d.timestamp,
                payload: d.payload,
            });
        }
    }

    /// A subscription we serve ended from the subscriber's side (or the session closed).
    pub(super) fn end_publication(&mut self, stream: StreamId, code: Option<u64>) {
        let Some(p) = self.publication_mut(stream) else { return };
        let id = p.id;
        let groups: Vec<StreamId> = p.groups.drain(..).collect();
        self.publications.remove(&id);
        for g in groups {
            self.remove_group(g, stream_code::CANCEL);
        }
        self.events.push_back(Event::SubscribeCancelled { stream, code });
        match code {
            None => {
                self.finish(stream);
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.recv = None;
                    s.role = Role::Draining;
                }
                self.gc(stream);
            }
            Some(code) => self.abort(stream, code),
        }
    }

    /// Resets and forgets a group we publish.
    fn remove_group(&mut self, group: StreamId, code: u64) {
        self.reset_send(group, code);
        self.group_done(group);
    }

    /// Drops a group we publish and tells the application why.
    pub(super) fn drop_group(&mut self, group: StreamId, code: u64) {
        if !matches!(self.streams.get(&group).map(|s| &s.role), Some(Role::GroupOut(_))) {
            return;
        }
        self.remove_group(group, code);
        self.events.push_back(Event::GroupDropped { stream: group, code });
    }

    /// A group's stream is finished or reset: forget it, and finish its subscription if that
    /// was waiting for its groups to drain.
    pub(super) fn group_done(&mut self, group: StreamId) {
        let Some(stream) = self.streams.remove(&group) else { return };
        let Role::GroupOut(g) = stream.role else { return };
        let publication = g.publication;
        let Some(p) = self.publication_mut(publication) else { return };
        p.groups.retain(|x| *x != group);
        if p.ending && p.groups.is_empty() {
            self.finish(publication);
        }
    }

    /// Drops groups until `size` more bytes fit both budgets; the group being written goes last.
    fn make_room(&mut self, publication: StreamId, writing: StreamId, size: usize) -> Result<(), Error> {
        let limits = self.config.session_limits;
        loop {
            let Some(p) = self.publication_mut(publication) else { return Err(Error::UnknownHandle) };
            let over_sub = p.queued + size > limits.max_queued_per_subscription;
            let over_session = self.queued + size > limits.max_queued;
            if !over_sub && !over_session {
                return Ok(());
            }
            let victim = if over_sub { self.oldest_queued_group(Some(publication), writing) } else { None }
                .or_else(|| self.oldest_queued_group(None, writing));
            match victim {
                Some(victim) => self.drop_group(victim, stream_code::TOO_FAR_BEHIND),
                None => {
                    self.drop_group(writing, stream_code::TOO_FAR_BEHIND);
                    return Err(Error::GroupDropped);
                }
            }
        }
    }

    /// The oldest group with queued bytes (in one publication, or anywhere), other than `except`.
    fn oldest_queued_group(&self, publication: Option<StreamId>, except: StreamId) -> Option<StreamId> {
        let candidates: Box<dyn Iterator<Item = StreamId> + '_> = match publication {
            Some(p) => match self.streams.get(&p).map(|s| &s.role) {
                Some(Role::SubscribeIn(p)) => Box::new(p.groups.iter().copied()),
                _ => return None,
            },
            None => {
                Box::new(self.streams.iter().filter(|(_, s)| matches!(s.role, Role::GroupOut(_))).map(|(id, _)| *id))
            }
        };
        candidates
            .filter(|id| *id != except)
            .filter_map(|id| {
                let s = self.streams.get(&id)?;
                let Role::GroupOut(g) = &s.role else { return None };
                (s.send.bytes > 0).then_some((g.started, id))
            })
            .min()
            .map(|(_, id)| id)
    }

    /// Drops the non-latest groups of one publication that are older than its max latency.
    fn expire_publication(&mut self, publication: StreamId) {
        let now = self.now;
        let Some(Role::SubscribeIn(p)) = self.streams.get(&publication).map(|s| &s.role) else { return };
        let max = Duration::from_millis(p.params.max_latency);
        let latest = p.latest;
        let expired: Vec<StreamId> = p
            .groups
            .iter()
            .filter(|g| match self.streams.get(g).map(|s| &s.role) {
                Some(Role::GroupOut(g)) => {
                    Some(g.sequence) != latest && now.saturating_duration_since(g.started) >= max
                }
                _ => false,
            })
            .copied()
            .collect();
        for g in expired {
            self.drop_group(g, stream_code::EXPIRED);
        }
    }

    pub(super) fn expire_groups(&mut self) {
        let mut pubs: Vec<StreamId> = self.publications.values().copied().collect();
        pubs.sort_unstable();
        for p in pubs {
            self.expire_publication(p);
        }
    }

    /// The earliest moment a non-latest group becomes too old.
    pub(super) fn expiry_deadline(&self) -> Option<Instant> {
        self.publications
            .values()
            .filter_map(|p| match self.streams.get(p).map(|s| &s.role) {
                Some(Role::SubscribeIn(p)) => Some(p),
                _ => None,
            })
            .flat_map(|p| {
                let max = Duration::from_millis(p.params.max_latency);
                p.groups.iter().filter_map(move |g| match self.streams.get(g).map(|s| &s.role) {
                    Some(Role::GroupOut(g)) if Some(g.sequence) != p.latest => Some(g.started + max),
                    _ => None,
                })
            })
            .min()
    }
}
