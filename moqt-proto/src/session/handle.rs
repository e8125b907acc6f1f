//! Typed handles for what an application holds on a session: one type per concept, so a
//! group cannot be passed where a subscription is expected.
//!
//! Every handle except [`SubscriptionId`] names the stream that carries the request; the same
//! type serves both directions (for example [`FetchId`] for a fetch we sent and one we serve),
//! and the event that produced it says which.

use super::StreamId;

macro_rules! stream_handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) StreamId);

        impl $name {
            /// The stream that carries it.
            pub const fn stream(self) -> StreamId {
                self.0
            }
        }
    };
}

/// One of our subscriptions (its wire subscribe id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionId(pub u64);

stream_handle!(
    /// A subscription the peer holds with us: we publish a track to it.
    PublicationId
);
stream_handle!(
    /// A group stream, one we publish or one we receive.
    GroupId
);
stream_handle!(
    /// An announce interest, ours or the peer's.
    InterestId
);
stream_handle!(
    /// A fetch, one we sent or one we serve.
    FetchId
);
stream_handle!(
    /// A TRACK request (lite-05+), one we sent or one we answer.
    TrackRequestId
);
stream_handle!(
    /// A probe stream, ours or the peer's.
    ProbeId
);
