//! [`EventCheck`]: the invariants every stream of application events from one session keeps,
//! checked one event at a time (the property tests and the fuzz harness share it).
//!
//! * Subscription events only name subscriptions the application created.
//! * Each group starts once and ends once; frames only arrive inside a started, unended group.
//! * `Closed` comes at most once, and nothing after it.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::session::{Event, GroupId, SubscriptionId};

/// The checker. Tell it about each subscription the application makes, then feed it every event.
#[derive(Debug, Default)]
pub struct EventCheck {
    subscriptions: FxHashSet<SubscriptionId>,
    /// Started groups: whether each has ended.
    groups: FxHashMap<GroupId, bool>,
    closed: bool,
}

impl EventCheck {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The application made this subscription.
    pub fn subscribed(&mut self, subscription: SubscriptionId) {
        self.subscriptions.insert(subscription);
    }

    /// Checks one event (in arrival order); describes the breach if there is one.
    pub fn event(&mut self, ev: &Event) -> Result<(), String> {
        if self.closed {
            return Err(format!("event after Closed: {ev:?}"));
        }
        let subscription = match ev {
            Event::Frame { subscription, .. }
            | Event::GroupStarted { subscription, .. }
            | Event::GroupEnded { subscription, .. }
            | Event::Datagram { subscription, .. }
            | Event::SubscribeOk { subscription, .. }
            | Event::SubscribeStart { subscription, .. }
            | Event::SubscribeEnd { subscription, .. }
            | Event::GroupsDropped { subscription, .. }
            | Event::SubscriptionEnded { subscription, .. } => Some(*subscription),
            _ => None,
        };
        if subscription.is_some_and(|s| !self.subscriptions.contains(&s)) {
            return Err(format!("event for a subscription never made: {ev:?}"));
        }
        match ev {
            Event::GroupStarted { group, .. } if self.groups.insert(*group, false).is_some() => {
                return Err(format!("group started twice: {ev:?}"));
            }
            Event::GroupEnded { group, .. } => match self.groups.get_mut(group) {
                None => return Err(format!("group ended without starting: {ev:?}")),
                Some(true) => return Err(format!("group ended twice: {ev:?}")),
                Some(ended) => *ended = true,
            },
            Event::Frame { group, .. } if self.groups.get(group) != Some(&false) => {
                return Err(format!("frame outside an open group: {ev:?}"));
            }
            Event::Closed { .. } => self.closed = true,
            _ => {}
        }
        Ok(())
    }

    /// Checks a run of events.
    pub fn events<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) -> Result<(), String> {
        events.into_iter().try_for_each(|ev| self.event(ev))
    }

    /// After the session closed: every started group ended and `Closed` came.
    pub fn finished(&self) -> Result<(), String> {
        if !self.closed {
            return Err("no Closed event".into());
        }
        match self.groups.iter().find(|(_, ended)| !**ended) {
            Some((group, _)) => Err(format!("group {group:?} never ended")),
            None => Ok(()),
        }
    }

    /// Groups started so far.
    pub fn groups_started(&self) -> usize {
        self.groups.len()
    }
}
