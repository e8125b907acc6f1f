//! A deadline queue for the core's timers: a binary heap with at most one live deadline per
//! key, so finding the next wake-up is O(1) and firing or re-arming a timer is O(log n),
//! however many sessions, subscriptions and groups there are.
//!
//! Timers are *hints*: the owner re-checks the real state when a key fires (a group may be gone,
//! a deadline may have moved later) and re-arms it if needed. That keeps the queue free of
//! cancellation bookkeeping:
//!
//! * [`Timers::arm`] only ever moves a key's deadline earlier; a later deadline waits until the
//!   earlier one fires and the owner re-arms.
//! * Superseded heap entries are skipped when they surface, and the heap is rebuilt when they
//!   outnumber the live ones, so memory stays proportional to the live keys.
//!
//! It never reads a clock: time comes in as arguments.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hash;
use std::time::Instant;

use rustc_hash::FxHashMap;

/// Deadlines by key. See the module docs.
#[derive(Debug, Clone)]
pub struct Timers<K: Copy + Eq + Hash + Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    armed: FxHashMap<K, Instant>,
    /// The earliest live deadline, when known (cleared whenever it may have changed later).
    next: Option<Option<Instant>>,
}

impl<K: Copy + Eq + Hash + Ord> Default for Timers<K> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), armed: FxHashMap::default(), next: Some(None) }
    }
}

impl<K: Copy + Eq + Hash + Ord> Timers<K> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `key` fire at `at` or earlier (a later `at` than the armed one is ignored).
    pub fn arm(&mut self, key: K, at: Instant) {
        if self.armed.get(&key).is_some_and(|armed| *armed <= at) {
            return;
        }
        let previous = self.armed.insert(key, at);
        self.heap.push(Reverse((at, key)));
        self.next = match self.next {
            // An earlier deadline for a new key only lowers the minimum; re-arming a key that
            // may have been the minimum needs a fresh look.
            Some(known) if previous.is_none() => Some(Some(known.map_or(at, |n| n.min(at)))),
            Some(Some(n)) if at <= n => Some(Some(at)),
            _ => None,
        };
        if self.heap.len() > 2 * self.armed.len() + 64 {
            self.compact();
        }
    }

    /// Forgets `key`'s deadline.
    pub fn disarm(&mut self, key: K) {
        if self.armed.remove(&key).is_some() {
            self.next = None;
        }
    }

    /// The earliest armed deadline.
    pub fn next(&mut self) -> Option<Instant> {
        if let Some(known) = self.next {
            return known;
        }
        let found = loop {
            let Some(Reverse((at, key))) = self.heap.peek() else { break None };
            if self.armed.get(key) == Some(at) {
                break Some(*at);
            }
            self.heap.pop();
        };
        self.next = Some(found);
        found
    }

    /// The earliest deadline, possibly of a superseded entry (never later than the real one).
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one key whose deadline is at or before `now` (it is disarmed).
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if self.armed.get(&key) == Some(&at) {
                self.armed.remove(&key);
                self.next = None;
                return Some(key);
            }
        }
        None
    }

    /// Live deadlines.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// Whether no deadline is armed.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Drops every superseded heap entry.
    fn compact(&mut self) {
        self.heap = self.armed.iter().map(|(k, at)| Reverse((*at, *k))).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_only_once() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut timers = Timers::new();
        timers.arm(3u32, at(30));
        timers.arm(1, at(10));
        timers.arm(2, at(20));
        assert_eq!(timers.next(), Some(at(10)));
        assert_eq!(timers.pop_due(at(25)), Some(1));
        assert_eq!(timers.pop_due(at(25)), Some(2));
        assert_eq!(timers.pop_due(at(25)), None);
        assert_eq!(timers.next(), Some(at(30)));
        assert_eq!(timers.pop_due(at(30)), Some(3));
        assert!(timers.is_empty());
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn arming_only_moves_earlier_and_disarm_forgets() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut timers = Timers::new();
        timers.arm(7u32, at(50));
        timers.arm(7, at(80)); // later: ignored
        timers.arm(7, at(20)); // earlier: wins
        assert_eq!(timers.next(), Some(at(20)));
        assert_eq!(timers.pop_due(at(100)), Some(7));
        assert_eq!(timers.pop_due(at(100)), None, "the superseded entry does not fire again");
        timers.arm(8, at(10));
        timers.disarm(8);
        assert_eq!(timers.next(), None);
        assert_eq!(timers.pop_due(at(100)), None);
    }

    #[test]
    fn superseded_entries_do_not_accumulate() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        for i in 0..10_000u64 {
            // One key re-armed ever earlier: every push supersedes the previous one.
            timers.arm(1u32, t0 + Duration::from_secs(1_000_000 - i));
        }
        assert!(timers.heap.len() <= 2 * timers.len() + 65, "heap holds {}", timers.heap.len());
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(2_000_000)), Some(1));
    }
}
