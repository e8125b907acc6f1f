//! What the application hears from a session.

use bytes::Bytes;

use super::StreamId;
use crate::message::{
    Fetch, Hops, Probe, RouteCost, Setup, Subscribe, SubscribeDrop, SubscribeOk, SubscribeUpdate, Track, TrackInfo,
};
use crate::path::Path;

/// An application event, pulled with [`crate::Session::poll_event`].
///
/// Requests are identified by the stream that carries them; groups by their stream and by the
/// subscription id and sequence from their GROUP header. `code: None` means a clean end (FIN).
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
        interest: StreamId,
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
        interest: StreamId,
        /// The full path.
        path: Path,
    },
    /// The initial set of an announce interest is complete (lite-05+, from ANNOUNCE_OK's count).
    AnnounceSynced {
        /// Our announce interest.
        interest: StreamId,
    },
    /// The publisher closed one of our announce interests (FIN or reset).
    AnnounceInterestEnded {
        /// Our announce interest.
        interest: StreamId,
        /// The reset code, if any.
        code: Option<u64>,
    },
    /// The peer asked for announcements under a prefix; the session answers it from
    /// [`crate::Session::announce`]d broadcasts by itself.
    AnnounceInterest {
        /// The peer's announce stream.
        stream: StreamId,
        /// The prefix.
        prefix: Path,
    },
    /// The peer withdrew an announce interest.
    AnnounceInterestCancelled {
        /// The peer's announce stream.
        stream: StreamId,
    },

    /// lite-03/04 SUBSCRIBE_OK for one of our subscriptions.
    SubscribeOk {
        /// Our subscription id.
        id: u64,
        /// The publisher's properties.
        ok: SubscribeOk,
    },
    /// lite-05+ SUBSCRIBE_START: the first group that will be delivered.
    SubscribeStart {
        /// Our subscription id.
        id: u64,
        /// The group.
        group: u64,
    },
    /// lite-05+ SUBSCRIBE_END: no group at or above this one will come.
    SubscribeEnd {
        /// Our subscription id.
        id: u64,
        /// The first group that will never come.
        group: u64,
    },
    /// SUBSCRIBE_DROP: these groups will not come.
    GroupsDropped {
        /// Our subscription id.
        id: u64,
        /// The range and reason.
        drop: SubscribeDrop,
    },
    /// One of our subscriptions ended (publisher FIN, reset or rejection).
    SubscriptionEnded {
        /// Our subscription id.
        id: u64,
        /// The reset code, if any.
        code: Option<u64>,
    },
    /// A group stream for one of our subscriptions opened.
    GroupStarted {
        /// The group stream.
        stream: StreamId,
        /// Our subscription id.
        subscription: u64,
        /// The group sequence.
        sequence: u64,
        /// Index of the first frame on this stream (lite-06).
        frame_start: u64,
    },
    /// A frame arrived on a group stream.
    Frame {
        /// The group stream.
        stream: StreamId,
        /// Our subscription id.
        subscription: u64,
        /// The group sequence.
        sequence: u64,
        /// Absolute timestamp (lite-05+).
        timestamp: Option<u64>,
        /// The payload.
        payload: Bytes,
    },
    /// A group stream ended: every [`Event::GroupStarted`] gets exactly one of these.
    GroupEnded {
        /// The group stream.
        stream: StreamId,
        /// Our subscription id.
        subscription: u64,
        /// The group sequence.
        sequence: u64,
        /// The reset code, if the group did not complete.
        code: Option<u64>,
    },
    /// A lite-05+ datagram for one of our subscriptions: a whole one-frame group.
    Datagram {
        /// Our subscription id.
        subscription: u64,
        /// The group sequence.
        sequence: u64,
        /// Absolute timestamp.
        timestamp: u64,
        /// The payload.
        payload: Bytes,
    },

    /// The peer subscribes to a track: accept or reject it.
    SubscribeRequest {
        /// The peer's subscribe stream (the handle for every call about it).
        stream: StreamId,
        /// The request.
        subscribe: Subscribe,
    },
    /// The peer changed a subscription's parameters.
    SubscribeUpdated {
        /// The subscribe stream.
        stream: StreamId,
        /// The new parameters.
        update: SubscribeUpdate,
    },
    /// The peer ended a subscription we serve (FIN, reset or connection loss).
    SubscribeCancelled {
        /// The subscribe stream.
        stream: StreamId,
        /// The reset code, if any.
        code: Option<u64>,
    },
    /// A group we publish was dropped: stopped by the peer, expired, or over budget.
    GroupDropped {
        /// The group stream.
        stream: StreamId,
        /// The reason code.
        code: u64,
    },

    /// The peer asks for a past group.
    FetchRequest {
        /// The fetch stream.
        stream: StreamId,
        /// The request.
        fetch: Fetch,
    },
    /// The peer abandoned a fetch we serve.
    FetchCancelled {
        /// The fetch stream.
        stream: StreamId,
        /// The code.
        code: u64,
    },
    /// A frame of one of our fetches.
    FetchFrame {
        /// Our fetch stream.
        stream: StreamId,
        /// Absolute timestamp (lite-05+).
        timestamp: Option<u64>,
        /// The payload.
        payload: Bytes,
    },
    /// One of our fetches ended.
    FetchEnded {
        /// Our fetch stream.
        stream: StreamId,
        /// The reset code, if it failed.
        code: Option<u64>,
    },

    /// The peer asks for a track's properties (lite-05+).
    TrackRequest {
        /// The track stream.
        stream: StreamId,
        /// The request.
        track: Track,
    },
    /// The answer to one of our TRACK requests.
    TrackInfo {
        /// Our track stream.
        stream: StreamId,
        /// The properties.
        info: TrackInfo,
    },
    /// One of our TRACK requests failed.
    TrackFailed {
        /// Our track stream.
        stream: StreamId,
        /// The reset code (or 0 if the stream ended without TRACK_INFO).
        code: u64,
    },

    /// The peer opened a probe stream: it wants bitrate/RTT reports.
    ProbeRequest {
        /// The probe stream.
        stream: StreamId,
    },
    /// The peer sent a target bitrate on its probe stream.
    ProbeTarget {
        /// The probe stream.
        stream: StreamId,
        /// The target, bits per second.
        bitrate: u64,
    },
    /// A report on one of our probe streams.
    ProbeReport {
        /// Our probe stream.
        stream: StreamId,
        /// Bitrate and RTT (0 = unknown).
        probe: Probe,
    },
    /// A probe stream ended.
    ProbeEnded {
        /// The probe stream.
        stream: StreamId,
        /// The reset code, if any.
        code: Option<u64>,
    },
}
