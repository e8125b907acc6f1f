//! The delivery policy for groups we publish: which group goes first, which is too old to send,
//! and which is dropped when a queue budget is full. It never drops the session.
//!
//! * **Priority.** Subscriber priority first, then group order: newest first, or oldest first
//!   when the subscriber asked for ordered delivery. Control streams rank above every group and
//!   fetches above every group of the same subscriber priority.
//! * **Expiry.** A group that is not the newest and is older than the subscriber's max latency is
//!   ended: with FIN when nothing of it is queued (the subscriber has all that exists; moq-dev's
//!   subscribers treat a reset group as an error), with a reset `EXPIRED` when its queued bytes
//!   have also waited that long (at least `MIN_STALL`) for the transport. Each publication has
//!   one timer at its earliest such deadline.
//! * **Budgets.** Queued group bytes are bounded per subscription and per session; when a write
//!   would exceed either, the oldest queued groups are dropped with `TOO_FAR_BEHIND`, the group
//!   being written last. Control bytes count against the session's budget too: queuing them
//!   drops the oldest queued groups until it holds (a control stream itself is bounded by
//!   `max_queued_control`).

use std::time::{Duration, Instant};

use super::subscriber::SubscribeParams;
use super::{stream_code, Command, Error, Event, GroupId, Role, Session, SessionTimer, StreamId};

/// Bits of a stream priority below the subscriber priority.
const ORDER_BITS: u32 = 23;
/// The largest group order value: one below the fetch slot, so no group ties a fetch or a
/// control stream.
const ORDER_MAX: u64 = (1 << ORDER_BITS) - 3;
/// How long a non-latest group's queued bytes may wait for the transport before it is reset,
/// at the least: with a max latency of 0, bytes queued just before the next group opens are
/// still sent (a stalled stream is what the bound is for, not the group boundary).
const MIN_STALL: Duration = Duration::from_millis(10);

/// What expiry does to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Nothing is queued: end it with FIN.
    Finish,
    /// Its queued bytes are stale: reset it.
    Reset,
}

/// A publication's priority base moves when its groups get this far from it.
pub(super) const REBASE_AFTER: u64 = ORDER_MAX / 2;

/// The priority of fetch streams: above live groups of the same subscriber priority, below
/// control.
pub(super) fn fetch_priority(priority: u8) -> i32 {
    (i32::from(priority) << ORDER_BITS) | (ORDER_MAX as i32 + 1)
}

/// The send priority of a group: subscriber priority first, then its order relative to `base`
/// (a recent sequence of the publication), so a long-running track never wraps around.
pub fn group_priority(params: &SubscribeParams, base: u64, sequence: u64) -> i32 {
    let rel = sequence.saturating_sub(base).min(ORDER_MAX);
    let order = if params.ordered { ORDER_MAX - rel } else { rel };
    (i32::from(params.priority) << ORDER_BITS) | order as i32
}

impl Session {
    /// Re-sends the priority of every open group of a publication (after an update or a rebase).
    pub(super) fn reprioritise(&mut self, publication: StreamId) {
        let Some(p) = self.publication(publication) else { return };
        let oldest = p.groups.iter().filter_map(|g| self.group_sequence(*g)).min();
        let Some(p) = self.publication_mut(publication) else { return };
        if let (Some(base), Some(oldest), Some(latest)) = (p.base, oldest, p.latest) {
            if latest.saturating_sub(base) > REBASE_AFTER || oldest < base {
                p.base = Some(oldest.max(latest.saturating_sub(REBASE_AFTER / 2)));
            }
        }
        let (params, base) = (p.params, p.base.unwrap_or(0));
        let groups: Vec<StreamId> = p.groups.iter().copied().collect();
        for g in groups {
            if let Some(sequence) = self.group_sequence(g) {
                let priority = group_priority(&params, base, sequence);
                self.push(Command::SetPriority { stream: g, priority });
            }
        }
    }

    fn group_sequence(&self, group: StreamId) -> Option<u64> {
        match self.streams.get(&group).map(|s| &s.role) {
            Some(Role::GroupOut(g)) => Some(g.sequence),
            _ => None,
        }
    }

    /// Drops groups until `size` more bytes fit both budgets; the group being written goes last.
    pub(super) fn make_room(&mut self, publication: StreamId, writing: StreamId, size: usize) -> Result<(), Error> {
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
            self.stats.groups_over_budget += 1;
            match victim {
                Some(victim) => self.drop_group(victim, stream_code::TOO_FAR_BEHIND),
                None => {
                    self.drop_group(writing, stream_code::TOO_FAR_BEHIND);
                    return Err(Error::GroupDropped);
                }
            }
        }
    }

    /// Drops the oldest queued groups until the session's queued bytes fit its budget again
    /// (after control bytes were queued on `control`), or no group has bytes left.
    pub(super) fn shed_groups(&mut self, control: StreamId) {
        while self.queued > self.config.session_limits.max_queued {
            let Some(victim) = self.oldest_queued_group(None, control) else { return };
            self.stats.groups_over_budget += 1;
            self.drop_group(victim, stream_code::TOO_FAR_BEHIND);
        }
    }

    /// The oldest group with queued bytes (in one publication, or anywhere), other than `except`.
    fn oldest_queued_group(&self, publication: Option<StreamId>, except: StreamId) -> Option<StreamId> {
        let candidates: Box<dyn Iterator<Item = StreamId> + '_> = match publication {
            Some(p) => match self.publication(p) {
                Some(p) => Box::new(p.groups.iter().copied()),
                None => return None,
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

    /// What expiry does to each non-latest group of `publication` at the session's current time:
    /// the groups to end now, and the earliest later moment one of the others needs a look.
    fn expiry_plan(&self, publication: StreamId) -> (Vec<(StreamId, Expiry)>, Option<Instant>) {
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        let Some(p) = self.publication(publication) else { return (due, next) };
        let max = Duration::from_millis(p.params.max_latency);
        let stall = max.max(MIN_STALL);
        for id in &p.groups {
            let Some(s) = self.streams.get(id) else { continue };
            let Role::GroupOut(g) = &s.role else { continue };
            if Some(g.sequence) == p.latest || s.send.closed || (s.send.fin && s.send.bytes == 0) {
                continue; // the latest group, or one already ending cleanly
            }
            let (action, at) = if s.send.bytes == 0 {
                (Expiry::Finish, g.started.checked_add(max))
            } else {
                let aged = g.started.checked_add(max);
                let stalled = g.progress.checked_add(stall);
                (Expiry::Reset, aged.zip(stalled).map(|(a, b)| a.max(b)))
            };
            match at {
                Some(at) if at <= self.now => due.push((*id, action)),
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        (due, next)
    }

    /// Ends the non-latest groups of one publication that are older than its max latency: one
    /// with nothing queued gets FIN (the subscriber has all of it that exists), one whose queued
    /// bytes have also waited that long for the transport is reset with `EXPIRED`. Either way
    /// the application hears `GroupDropped` and stops writing to it.
    pub(super) fn expire_publication(&mut self, publication: StreamId) {
        let (due, _) = self.expiry_plan(publication);
        for (g, action) in due {
            self.stats.groups_expired += 1;
            match action {
                Expiry::Finish => {
                    self.finish(g);
                    self.events.push_back(Event::GroupDropped { group: GroupId(g), code: stream_code::EXPIRED });
                }
                Expiry::Reset => self.drop_group(g, stream_code::EXPIRED),
            }
        }
    }

    /// Arms the expiry timer of `publication` at its earliest deadline, if it has one.
    pub(super) fn arm_expiry(&mut self, publication: StreamId) {
        if let (_, Some(deadline)) = self.expiry_plan(publication) {
            self.timers.arm(SessionTimer::Expiry(publication), deadline);
        }
    }

    /// Runs every timer due at the session's current time.
    pub(super) fn run_timers(&mut self) {
        while let Some(timer) = self.timers.pop_due(self.now) {
            match timer {
                SessionTimer::Expiry(publication) => {
                    self.expire_publication(publication);
                    self.arm_expiry(publication);
                }
                SessionTimer::Partial(stream) => self.check_partial(stream),
                SessionTimer::Tail(subscription) => self.tail_expired(subscription),
            }
        }
    }
}
