//! What the application hears from a session.

use bytes::Bytes;

use super::{FetchId, GroupId, InterestId, ProbeId, PublicationId, SubscriptionId, TrackRequestId};
use crate::message::{
    Fetch, Hops, Probe, RouteCost, Setup, Subscribe, SubscribeDrop, SubscribeOk, SubscribeUpdate, Track, TrackInfo,
};
use crate::path::Path;

/// An application event, pulled with [`crate::Session::poll_event`].
///
/// Each request is named by its typed handle (see [`super::handle`]); groups also carry the
/// subscription and sequence from their GROUP header. `code: None` means a clean end (FIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's SETUP (lite-05+).
    PeerSetup(Setup),
    /// The peer sent GOAWAY: open no new requests; reconnect to `uri` if it is not empty.
    Goaway {
        /// Where to go ("" = nowhere in particular).
        uri: String,
    },
    /// The session ended. Every open request and group has had its own end event before this.
    Closed {
        /// The close code.
        code: u64,
        /// The reason.
        reason: String,
    },

    /// A broadcast under one of our announce interests is live (again, if it was: a restart).
    Announced {
        /// Our announce interest.
        interest: InterestId,
        /// The full path.
        path: Path,
        /// The hop chain, oldest first, ending with the peer's hop id where the version says it.
        hops: Hops,
        /// lite-06 route cost (zero before lite-06).
        cost: RouteCost,
    },
    /// A broadcast under one of our announce interests ended.
    Unannounced {
        /// Our announce interest.
        interest: InterestId,
        /// The full path.
        path: Path,
    },
    /// The initial set of an announce interest is complete (lite-05+, from ANNOUNCE_OK's count).
    AnnounceSynced {
        /// Our announce interest.
        interest: InterestId,
    },
    /// The publisher closed one of our announce interests (FIN or reset).
    AnnounceInterestEnded {
        /// Our announce interest.
        interest: InterestId,
        /// The reset code, if any.
        code: Option<u64>,
    },
    /// The peer asked for announcements under a prefix; the session answers it from
    /// [`crate::Session::announce`]d broadcasts by itself.
    AnnounceInterest {
        /// The peer's interest.
        interest: InterestId,
        /// The prefix.
        prefix: Path,
    },
    /// The peer withdrew an announce interest.
    AnnounceInterestCancelled {
        /// The peer's interest.
        interest: InterestId,
    },

    /// lite-03/04 SUBSCRIBE_OK for one of our subscriptions.
    SubscribeOk {
        /// Our subscription.
        subscription: SubscriptionId,
        /// The publisher's properties.
        ok: SubscribeOk,
    },
    /// lite-05+ SUBSCRIBE_START: the first group that will be delivered.
    SubscribeStart {
        /// Our subscription.
        subscription: SubscriptionId,
        /// The group.
        group: u64,
    },
    /// lite-05+ SUBSCRIBE_END: no group at or above this one will come.
    SubscribeEnd {
        /// Our subscription.
        subscription: SubscriptionId,
        /// The first group that will never come.
        group: u64,
    },
    /// SUBSCRIBE_DROP: these groups will not come.
    GroupsDropped {
        /// Our subscription.
        subscription: SubscriptionId,
        /// The range and reason.
        drop: SubscribeDrop,
    },
    /// One of our subscriptions ended (publisher FIN, reset or rejection).
    SubscriptionEnded {
        /// Our subscription.
        subscription: SubscriptionId,
        /// The reset code, if any.
        code: Option<u64>,
    },
    /// A group stream for one of our subscriptions opened.
    GroupStarted {
        /// The group.
        group: GroupId,
        /// Our subscription.
        subscription: SubscriptionId,
        /// The group sequence.
        sequence: u64,
        /// Index of the first frame on this stream (lite-06).
        frame_start: u64,
    },
    /// A frame arrived on a group stream.
    Frame {
        /// The group.
        group: GroupId,
        /// Our subscription.
        subscription: SubscriptionId,
        /// The group sequence.
        sequence: u64,
        /// Absolute timestamp (lite-05+).
        timestamp: Option<u64>,
        /// The payload.
        payload: Bytes,
    },
    /// A group stream ended: every [`Event::GroupStarted`] gets exactly one of these.
    GroupEnded {
        /// The group.
        group: GroupId,
        /// Our subscription.
        subscription: SubscriptionId,
        /// The group sequence.
        sequence: u64,
        /// The reset code, if the group did not complete.
        code: Option<u64>,
    },
    /// A lite-05+ datagram for one of our subscriptions: a whole one-frame group.
    Datagram {
        /// Our subscription.
        subscription: SubscriptionId,
        /// The group sequence.
        sequence: u64,
        /// Absolute timestamp.
        timestamp: u64,
        /// The payload.
        payload: Bytes,
    },

    /// The peer subscribes to a track: accept or reject it.
    SubscribeRequest {
        /// The subscription we are asked to serve (the handle for every call about it).
        publication: PublicationId,
        /// The request.
        subscribe: Subscribe,
    },
    /// The peer changed a subscription's parameters.
    SubscribeUpdated {
        /// The subscription we serve.
        publication: PublicationId,
        /// The new parameters.
        update: SubscribeUpdate,
    },
    /// The peer ended a subscription we serve (FIN, reset or connection loss).
    SubscribeCancelled {
        /// The subscription we serve.
        publication: PublicationId,
        /// The reset code, if any.
        code: Option<u64>,
    },
    /// A group we publish was dropped: stopped by the peer, expired, or over budget.
    GroupDropped {
        /// The group.
        group: GroupId,
        /// The reason code.
        code: u64,
    },

    /// The peer asks for a past group.
    FetchRequest {
        /// The fetch we serve.
        fetch: FetchId,
        /// The request.
        request: Fetch,
    },
    /// The peer abandoned a fetch we serve.
    FetchCancelled {
        /// The fetch we serve.
        fetch: FetchId,
        /// The code.
        code: u64,
    },
    /// A frame of one of our fetches.
    FetchFrame {
        /// Our fetch.
        fetch: FetchId,
        /// Absolute timestamp (lite-05+).
        timestamp: Option<u64>,
        /// The payload.
        payload: Bytes,
    },
    /// One of our fetches ended.
    FetchEnded {
        /// Our fetch.
        fetch: FetchId,
        /// The reset code, if it failed.
        code: Option<u64>,
    },

    /// The peer asks for a track's properties (lite-05+).
    TrackRequest {
        /// The request to answer.
        request: TrackRequestId,
        /// The request.
        track: Track,
    },
    /// The answer to one of our TRACK requests.
    TrackInfo {
        /// Our request.
        request: TrackRequestId,
        /// The properties.
        info: TrackInfo,
    },
    /// One of our TRACK requests failed.
    TrackFailed {
        /// Our request.
        request: TrackRequestId,
        /// The reset code (or 0 if the stream ended without TRACK_INFO).
        code: u64,
    },

    /// The peer opened a probe stream: it wants bitrate/RTT reports.
    ProbeRequest {
        /// The probe.
        probe: ProbeId,
    },
    /// The peer sent a target bitrate on its probe stream.
    ProbeTarget {
        /// The probe.
        probe: ProbeId,
        /// The target, bits per second.
        bitrate: u64,
    },
    /// A report on one of our probe streams.
    ProbeReport {
        /// Our probe.
        probe: ProbeId,
        /// Bitrate and RTT (0 = unknown).
        report: Probe,
    },
    /// A probe stream ended.
    ProbeEnded {
        /// The probe.
        probe: ProbeId,
        /// The reset code, if any.
        code: Option<u64>,
    },
}
