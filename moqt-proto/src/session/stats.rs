//! Counters of what a session refused or dropped because a limit was reached, for metrics.
//! Every field only grows; a node adds up its sessions' counters.

use std::ops::AddAssign;

/// Limits a session hit, counted. See [`super::SessionLimits`] for each limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Peer streams refused over `max_streams`.
    pub streams_refused: u64,
    /// Peer subscriptions refused over `max_subscriptions`.
    pub subscriptions_refused: u64,
    /// Peer announce interests refused over `max_announce_interests`.
    pub interests_refused: u64,
    /// Announce interests dropped for announcing more than `max_announced` paths.
    pub announcements_refused: u64,
    /// Read grants withheld because `max_recv_buffered` (or the node's share) was used up.
    pub reads_deferred: u64,
    /// Streams reset for holding a partial message longer than `partial_timeout`.
    pub partial_timeouts: u64,
    /// Control streams reset because the peer did not read them (`max_queued_control`).
    pub control_overflows: u64,
    /// Groups dropped to keep queues within `max_queued` / `max_queued_per_subscription`.
    pub groups_over_budget: u64,
    /// Groups dropped for being older than the subscriber's max latency.
    pub groups_expired: u64,
}

impl AddAssign for SessionStats {
    fn add_assign(&mut self, o: Self) {
        self.streams_refused += o.streams_refused;
        self.subscriptions_refused += o.subscriptions_refused;
        self.interests_refused += o.interests_refused;
        self.announcements_refused += o.announcements_refused;
        self.reads_deferred += o.reads_deferred;
        self.partial_timeouts += o.partial_timeouts;
        self.control_overflows += o.control_overflows;
        self.groups_over_budget += o.groups_over_budget;
        self.groups_expired += o.groups_expired;
    }
}
