//! The subscriber side of a session: SUBSCRIBE / SUBSCRIBE_UPDATE / cancel, the publisher's
//! responses, and the group streams and datagrams that carry the track.

use std::collections::VecDeque;

use super::handle::{GroupId, SubscriptionId};
use super::{stream_code, Error, Event, Role, Session, SessionTimer, StreamId, CONTROL_PRIORITY};
use crate::message::{Datagram, GroupHeader, Message, Subscribe, SubscribeResponse, SubscribeUpdate};
use crate::path::Path;
use crate::stream::{Frame, StreamType};

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
    pub(super) fn validate(&self) -> Result<(), Error> {
        Session::check(&[self.max_latency, self.start_frame])?;
        Session::check_opt(&[self.start_group, self.end_group, self.end_frame])
    }
}

impl From<&Subscribe> for SubscribeParams {
    fn from(s: &Subscribe) -> Self {
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
}

impl From<&SubscribeUpdate> for SubscribeParams {
    fn from(u: &SubscribeUpdate) -> Self {
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
}

impl SubscribeParams {
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

/// A group we receive.
#[derive(Debug, Default)]
pub(super) struct GroupIn {
    pub(super) subscription: Option<SubscriptionId>,
    sequence: u64,
}

/// A subscription the publisher ended (FIN) while groups may still be in flight: streams are
/// not ordered, so the FIN of the subscribe stream can overtake the group streams before it. The
/// end is reported, and our side of the subscribe stream finished (telling the publisher that
/// everything arrived), once no group is open and `end_grace` has passed.
///
/// Counting the groups between SUBSCRIBE_START and SUBSCRIBE_END is not enough: a relay may
/// deliver a cached group older than the START it sent, after the newer ones.
#[derive(Debug)]
pub(super) struct Tail {
    /// The grace period is over: only open groups are still awaited.
    expired: bool,
    /// The subscribe stream, whose FIN back to the publisher waits for the tail.
    stream: StreamId,
}

/// Subscriptions that ended cleanly, remembered for a while so their in-flight groups land.
#[derive(Debug, Default)]
pub(super) struct EndedSubscriptions(VecDeque<SubscriptionId>);

impl EndedSubscriptions {
    fn remember(&mut self, id: SubscriptionId) {
        if self.0.len() >= ENDED_MEMORY {
            self.0.pop_front();
        }
        self.0.push_back(id);
    }

    fn contains(&self, id: SubscriptionId) -> bool {
        self.0.contains(&id)
    }
}

impl Session {
    /// Subscribes to a track. The handle names the subscription in every related event.
    pub fn subscribe(&mut self, path: Path, track: &str, params: SubscribeParams) -> Result<SubscriptionId, Error> {
        self.ensure_can_request()?;
        params.validate()?;
        if self.subscriptions.len() >= self.config.session_limits.max_outgoing_subscriptions {
            return Err(Error::LimitExceeded);
        }
        let id = SubscriptionId(self.next_subscribe_id);
        self.next_subscribe_id += 1;
        let msg = Subscribe {
            id: id.0,
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
    pub fn update_subscription(&mut self, id: SubscriptionId, params: SubscribeParams) -> Result<(), Error> {
        self.ensure_open()?;
        params.validate()?;
        let stream = *self.subscriptions.get(&id).ok_or(Error::UnknownHandle)?;
        let update = params.to_update();
        self.write_msg(stream, |buf, codec| update.encode(codec, buf));
        Ok(())
    }

    /// Cancels one of our subscriptions. Its open groups end now (with events); nothing more
    /// is reported for it.
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> Result<(), Error> {
        self.ensure_open()?;
        if let Some(tail) = self.tails.remove(&id) {
            // Ended by the publisher, still waiting for its last groups: stop waiting.
            self.end_groups_of(id, stream_code::CANCEL, true);
            self.finish(tail.stream);
            self.gc(tail.stream);
            return Ok(());
        }
        let stream = self.subscriptions.remove(&id).ok_or(Error::UnknownHandle)?;
        self.end_groups_of(id, stream_code::CANCEL, true);
        self.finish(stream);
        if let Some(s) = self.streams.get_mut(&stream) {
            s.role = Role::Draining;
        }
        Ok(())
    }

    /// Stops receiving one group (STOP_SENDING); it ends with `code`.
    pub fn stop_group(&mut self, group: GroupId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&[code])?;
        let id = group.0;
        match self.streams.get(&id).map(|s| &s.role) {
            Some(Role::GroupIn(_)) => {
                self.stop_recv(id, code);
                self.end_group_in(id, Some(code));
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    pub(super) fn on_subscribe_response(&mut self, subscription: SubscriptionId, resp: SubscribeResponse) {
        self.events.push_back(match resp {
            SubscribeResponse::Ok(ok) => Event::SubscribeOk { subscription, ok },
            SubscribeResponse::Start(group) => Event::SubscribeStart { subscription, group },
            SubscribeResponse::End(group) => Event::SubscribeEnd { subscription, group },
            SubscribeResponse::Drop(drop) => Event::GroupsDropped { subscription, drop },
        });
    }

    pub(super) fn on_group_header(&mut self, id: StreamId, header: GroupHeader) {
        let sub = SubscriptionId(header.subscribe_id);
        if !self.subscriptions.contains_key(&sub) && !self.ended_subscriptions.contains(sub) {
            tracing::debug!(sub = sub.0, "group for an unknown subscription");
            self.stop_recv(id, stream_code::UNKNOWN_SUBSCRIPTION);
            self.remove_stream(id);
            return;
        }
        if let Some(Role::GroupIn(g)) = self.streams.get_mut(&id).map(|s| &mut s.role) {
            g.subscription = Some(sub);
            g.sequence = header.sequence;
        }
        self.events.push_back(Event::GroupStarted {
            group: GroupId(id),
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
                group: GroupId(id),
                subscription: *sub,
                sequence: *sequence,
                timestamp: frame.timestamp,
                payload: frame.payload,
            });
        }
    }

    /// A group stream ended: one `GroupEnded` event, then the stream is forgotten.
    pub(super) fn end_group_in(&mut self, id: StreamId, code: Option<u64>) {
        let Some(stream) = self.take_stream(id) else { return };
        if let Role::GroupIn(GroupIn { subscription: Some(subscription), sequence }) = stream.role {
            self.events.push_back(Event::GroupEnded { group: GroupId(id), subscription, sequence, code });
            self.settle_tail(subscription);
        }
    }

    /// Whether a group of `sub` is open.
    fn has_open_groups(&self, sub: SubscriptionId) -> bool {
        self.streams
            .values()
            .any(|s| matches!(s.role, Role::GroupIn(GroupIn { subscription: Some(x), .. }) if x == sub))
    }

    /// Reports the clean end of `sub` once the grace period is over and no group of it is open.
    fn settle_tail(&mut self, sub: SubscriptionId) {
        let Some(tail) = self.tails.get(&sub) else { return };
        if !tail.expired || self.has_open_groups(sub) {
            return;
        }
        if let Some(tail) = self.tails.remove(&sub) {
            self.finish(tail.stream);
            self.gc(tail.stream);
        }
        self.events.push_back(Event::SubscriptionEnded { subscription: sub, code: None });
    }

    /// The grace period of an ended subscription is over.
    pub(super) fn tail_expired(&mut self, sub: SubscriptionId) {
        if let Some(tail) = self.tails.get_mut(&sub) {
            tail.expired = true;
            self.settle_tail(sub);
        }
    }

    /// Ended subscriptions still waiting for their last groups end now (the session closes).
    pub(super) fn end_tails(&mut self) {
        let mut subs: Vec<SubscriptionId> = self.tails.drain().map(|(s, _)| s).collect();
        subs.sort_unstable();
        for sub in subs {
            self.events.push_back(Event::SubscriptionEnded { subscription: sub, code: None });
        }
    }

    /// Ends the open groups of subscription `sub` (optionally stopping their streams).
    fn end_groups_of(&mut self, sub: SubscriptionId, code: u64, stop: bool) {
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
    pub(super) fn end_subscription_out(&mut self, sub: SubscriptionId, code: Option<u64>) {
        let Some(stream) = self.subscriptions.remove(&sub) else { return };
        match code {
            None => {
                // Groups already in flight may still arrive: remember the id for a while, and
                // report the end (and FIN our side) once they are in.
                self.ended_subscriptions.remember(sub);
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.recv = None;
                }
                match self.now.checked_add(self.config.end_grace).filter(|_| !self.config.end_grace.is_zero()) {
                    Some(at) => {
                        self.tails.insert(sub, Tail { expired: false, stream });
                        self.timers.arm(SessionTimer::Tail(sub), at);
                    }
                    None => {
                        self.tails.insert(sub, Tail { expired: true, stream });
                        self.settle_tail(sub);
                    }
                }
                return;
            }
            Some(code) => {
                self.end_groups_of(sub, code, true);
                self.reset_send(stream, stream_code::CANCEL);
                self.remove_stream(stream);
            }
        }
        self.events.push_back(Event::SubscriptionEnded { subscription: sub, code });
    }

    pub(super) fn on_datagram(&mut self, data: bytes::Bytes) {
        if !self.codec.version.has_datagrams() {
            return;
        }
        let Ok(d) = Datagram::decode(&data, &self.codec) else { return };
        let subscription = SubscriptionId(d.subscribe_id);
        if self.subscriptions.contains_key(&subscription) {
            self.events.push_back(Event::Datagram {
                subscription,
                sequence: d.group,
                timestamp: d.timestamp,
                payload: d.payload,
            });
        }
    }
}
