//! The publisher side of a session: accepting or rejecting the peer's subscriptions, the first
//! response, opening groups and writing frames, SUBSCRIBE_DROP / SUBSCRIBE_END, datagrams, and
//! the end of a publication. How queued groups are prioritised, expired and bounded is
//! [`delivery`](super::delivery)'s job.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::delivery::group_priority;
use super::handle::{GroupId, PublicationId};
use super::subscriber::SubscribeParams;
use super::{stream_code, Command, Error, Event, Role, Session, StreamId};
use crate::message::{
    Datagram, GroupHeader, Message, Subscribe, SubscribeDrop, SubscribeOk, SubscribeResponse, SubscribeUpdate,
};
use crate::stream::{StreamEncoder, StreamType};
use crate::version::Dialect;

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
    pub(super) id: u64,
    pub(super) params: SubscribeParams,
    accepted: bool,
    publish: PublishParams,
    /// SUBSCRIBE_OK (lite-03/04) or SUBSCRIBE_START (lite-05+) has been sent.
    responded: bool,
    /// Open group streams, oldest first.
    pub(super) groups: VecDeque<StreamId>,
    /// The newest group opened so far.
    pub(super) latest: Option<u64>,
    /// The sequence group priorities are measured from (see `delivery::group_priority`).
    pub(super) base: Option<u64>,
    pub(super) queued: usize,
    /// The application ended the track: FIN once the groups drain.
    pub(super) ending: bool,
}

/// A group we publish.
#[derive(Debug)]
pub(super) struct GroupOut {
    pub(super) publication: StreamId,
    pub(super) sequence: u64,
    pub(super) started: Instant,
    /// When the transport last took bytes of this group, or its queue last went from empty to
    /// non-empty: how long queued bytes have waited (see `delivery`).
    pub(super) progress: Instant,
    encoder: StreamEncoder,
}

impl Session {
    pub(super) fn publication_mut(&mut self, id: StreamId) -> Option<&mut Publication> {
        match &mut self.streams.get_mut(&id)?.role {
            Role::SubscribeIn(p) => Some(p),
            _ => None,
        }
    }

    pub(super) fn publication(&self, id: StreamId) -> Option<&Publication> {
        match &self.streams.get(&id)?.role {
            Role::SubscribeIn(p) => Some(p),
            _ => None,
        }
    }

    pub(super) fn on_subscribe(&mut self, id: StreamId, sub: Subscribe) {
        if self.publications.contains_key(&sub.id) {
            return self.violation("duplicate subscribe id");
        }
        if self.publications.len() >= self.config.session_limits.max_subscriptions {
            self.stats.subscriptions_refused += 1;
            tracing::debug!("too many subscriptions: rejecting");
            return self.abort(id, stream_code::LIMIT_EXCEEDED);
        }
        self.publications.insert(sub.id, id);
        if let Some(p) = self.publication_mut(id) {
            p.id = sub.id;
            p.params = SubscribeParams::from(&sub);
        }
        self.events.push_back(Event::SubscribeRequest { publication: PublicationId(id), subscribe: sub });
    }

    pub(super) fn on_subscribe_update(&mut self, id: StreamId, update: SubscribeUpdate) {
        let Some(p) = self.publication_mut(id) else { return };
        p.params = SubscribeParams::from(&update);
        self.reprioritise(id);
        self.arm_expiry(id);
        self.events.push_back(Event::SubscribeUpdated { publication: PublicationId(id), update });
    }

    /// The current parameters of a subscription we serve.
    pub fn subscription_params(&self, publication: PublicationId) -> Option<SubscribeParams> {
        self.publication(publication.0).map(|p| p.params)
    }

    /// Accepts the peer's subscription. On lite-03/04 (draft dialect) this sends SUBSCRIBE_OK;
    /// gomoqt's dialect and lite-05+ answer when the first group opens.
    pub fn accept_subscription(&mut self, publication: PublicationId, publish: PublishParams) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[publish.max_latency])?;
        let eager = !self.codec.version.has_subscribe_start() && self.codec.dialect == Dialect::Draft;
        let stream = publication.0;
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
    pub fn reject_subscription(&mut self, publication: PublicationId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code])?;
        let stream = publication.0;
        let p = self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        let id = p.id;
        let groups: Vec<StreamId> = p.groups.drain(..).collect();
        self.publications.remove(&id);
        for g in groups {
            self.remove_group(g, code);
        }
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
    pub fn open_group(&mut self, publication: PublicationId, sequence: u64) -> Result<GroupId, Error> {
        self.open_group_at(publication, sequence, 0)
    }

    /// [`Session::open_group`] for a group whose first `frame_start` frames are skipped (lite-06
    /// `frame_start`; must be 0 before lite-06).
    pub fn open_group_at(
        &mut self,
        publication: PublicationId,
        sequence: u64,
        frame_start: u64,
    ) -> Result<GroupId, Error> {
        self.ensure_open()?;
        Self::check(&[sequence, frame_start])?;
        if frame_start != 0 && !self.codec.version.has_frame_bounds() {
            return Err(Error::Unsupported);
        }
        let stream = publication.0;
        let p = self.publication_mut(stream).ok_or(Error::UnknownHandle)?;
        if !p.accepted || p.ending {
            return Err(Error::InvalidState);
        }
        let sub_id = p.id;
        if p.latest.is_none_or(|l| sequence > l) {
            p.latest = Some(sequence);
        }
        self.respond_first_group(stream, sequence);
        let priority = self.next_group_priority(stream, sequence);
        let group = GroupOut {
            publication: stream,
            sequence,
            started: self.now,
            progress: self.now,
            encoder: StreamEncoder::new(self.codec),
        };
        let id = self.open(StreamType::Group, Role::GroupOut(group), priority);
        let header = GroupHeader { subscribe_id: sub_id, sequence, frame_start };
        self.write_msg(id, |buf, codec| header.encode(codec, buf));
        if let Some(p) = self.publication_mut(stream) {
            p.groups.push_back(id);
        }
        self.expire_publication(stream);
        self.arm_expiry(stream);
        // The header counts against the budgets like any other group byte.
        self.make_room(stream, id, 0)?;
        Ok(GroupId(id))
    }

    /// Queues one frame on a group we publish. The payload is not copied. On lite-05+ the
    /// timestamp must be below 2^61 (`Error::InvalidArgument` otherwise).
    pub fn write_frame(&mut self, group: GroupId, timestamp: u64, payload: Bytes) -> Result<(), Error> {
        self.ensure_open()?;
        self.refill_scratch();
        let id = group.0;
        let Some(stream) = self.streams.get_mut(&id) else { return Err(Error::UnknownHandle) };
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
        self.make_room(publication, id, size)?;
        self.queue(id, header);
        self.queue(id, payload);
        Ok(())
    }

    /// Finishes a group we publish (FIN after its queued frames).
    pub fn finish_group(&mut self, group: GroupId) -> Result<(), Error> {
        self.ensure_open()?;
        match self.streams.get(&group.0).map(|s| &s.role) {
            Some(Role::GroupOut(_)) => {
                self.finish(group.0);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Abandons a group we publish (reset with `code`).
    pub fn reset_group(&mut self, group: GroupId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code])?;
        match self.streams.get(&group.0).map(|s| &s.role) {
            Some(Role::GroupOut(_)) => {
                self.remove_group(group.0, code);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Tells the subscriber that groups `start..=end` will not come (SUBSCRIBE_DROP).
    pub fn drop_groups(&mut self, publication: PublicationId, start: u64, end: u64, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code, start.saturating_add(1), end.saturating_add(1)])?; // gomoqt spells groups +1
        if end < start {
            return Err(Error::InvalidArgument);
        }
        self.publication_mut(publication.0).ok_or(Error::UnknownHandle)?;
        let drop = SubscribeResponse::Drop(SubscribeDrop { start, end, error: code });
        self.write_msg(publication.0, |buf, codec| drop.encode(codec, buf));
        Ok(())
    }

    /// Ends a subscription we serve: lite-05+ sends SUBSCRIBE_END(`end`, exclusive; default
    /// the group after the latest), then FIN once its open groups have drained.
    pub fn end_subscription(&mut self, publication: PublicationId, end: Option<u64>) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check_opt(&[end])?;
        let stream = publication.0;
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
        publication: PublicationId,
        sequence: u64,
        timestamp: u64,
        payload: Bytes,
    ) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[sequence, timestamp])?;
        if !self.codec.version.has_datagrams() {
            return Err(Error::Unsupported);
        }
        let stream = publication.0;
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
        self.push(Command::SendDatagram(buf.freeze()));
        Ok(())
    }

    /// A subscription we serve ended from the subscriber's side.
    pub(super) fn end_publication(&mut self, stream: StreamId, code: Option<u64>) {
        if !self.drop_publication(stream, code) {
            return;
        }
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

    /// The session closes: a subscription we serve ends without a reset of its stream. The
    /// close tells the subscriber, with the session's code, that the session (not the track)
    /// ended; a reset before it would arrive first, as a track-ending stream code, and a
    /// reconnecting subscriber would give the track up instead of waiting for its next session.
    pub(super) fn close_publication(&mut self, stream: StreamId, code: u64) {
        if self.drop_publication(stream, Some(code)) {
            self.remove_stream(stream);
        }
    }

    /// Forgets a publication (its groups reset) and reports it; false if there was none.
    fn drop_publication(&mut self, stream: StreamId, code: Option<u64>) -> bool {
        let Some(p) = self.publication_mut(stream) else { return false };
        let id = p.id;
        let groups: Vec<StreamId> = p.groups.drain(..).collect();
        self.publications.remove(&id);
        for g in groups {
            self.remove_group(g, stream_code::CANCEL);
        }
        self.events.push_back(Event::SubscribeCancelled { publication: PublicationId(stream), code });
        true
    }

    /// Resets and forgets a group we publish.
    pub(super) fn remove_group(&mut self, group: StreamId, code: u64) {
        self.reset_send(group, code);
        self.group_done(group);
    }

    /// Drops a group we publish and tells the application why.
    pub(super) fn drop_group(&mut self, group: StreamId, code: u64) {
        if !matches!(self.streams.get(&group).map(|s| &s.role), Some(Role::GroupOut(_))) {
            return;
        }
        self.remove_group(group, code);
        self.events.push_back(Event::GroupDropped { group: GroupId(group), code });
    }

    /// A group's stream is finished or reset: forget it, and finish its subscription if that
    /// was waiting for its groups to drain.
    pub(super) fn group_done(&mut self, group: StreamId) {
        let Some(stream) = self.take_stream(group) else { return };
        let Role::GroupOut(g) = stream.role else { return };
        let publication = g.publication;
        let Some(p) = self.publication_mut(publication) else { return };
        p.groups.retain(|x| *x != group);
        if p.ending && p.groups.is_empty() {
            self.finish(publication);
        }
    }

    /// The priority of a new group; rebases the publication's priorities when sequences have
    /// moved far from the base (see `delivery::group_priority`).
    fn next_group_priority(&mut self, stream: StreamId, sequence: u64) -> i32 {
        let Some(p) = self.publication_mut(stream) else { return 0 };
        let base = *p.base.get_or_insert(sequence);
        if sequence.saturating_sub(base) > super::delivery::REBASE_AFTER {
            self.reprioritise(stream);
        }
        let p = self.publication(stream).expect("checked above");
        group_priority(&p.params, p.base.unwrap_or(sequence), sequence)
    }
}
