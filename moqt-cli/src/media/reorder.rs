//! Puts one track's groups back in sequence order for the recorder.
//!
//! moq-lite delivers groups newest first (always on lite-06; on older versions unless the
//! subscription is ordered), each on its own stream, so after a burst the oldest group can be
//! the last to arrive. The recorder needs a track's frames in order. [`Reorder`] holds completed
//! groups until every older group it knows of has completed; a gap (a group never seen, or not
//! yet) is waited for during `window` after the next group completed, then skipped. A group
//! older than one already released is dropped. No clock is read here: times are passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The reorder buffer of one track; `T` is a completed group's content.
#[derive(Debug)]
pub struct Reorder<T> {
    window: Duration,
    /// The next sequence to release; `None` before the first release.
    next: Option<u64>,
    /// Groups whose streams are open but not finished.
    reading: BTreeSet<u64>,
    /// Completed groups, with when they completed.
    done: BTreeMap<u64, (Instant, T)>,
}

impl<T> Reorder<T> {
    /// An empty buffer that waits up to `window` for a missing group.
    pub fn new(window: Duration) -> Self {
        Reorder { window, next: None, reading: BTreeSet::new(), done: BTreeMap::new() }
    }

    /// A group's stream opened. Returns false if it is older than what was released (drop it).
    pub fn opened(&mut self, sequence: u64) -> bool {
        if self.next.is_some_and(|n| sequence < n) {
            return false;
        }
        self.reading.insert(sequence);
        true
    }

    /// A group completed (or was cut short) with `content`.
    pub fn completed(&mut self, sequence: u64, content: T, now: Instant) {
        self.reading.remove(&sequence);
        if self.next.is_some_and(|n| sequence < n) {
            return;
        }
        self.done.insert(sequence, (now, content));
    }

    /// Groups still being read.
    pub fn reading(&self) -> usize {
        self.reading.len()
    }

    /// The oldest completed group, if no older group is still being read.
    fn head(&self) -> Option<(u64, Instant)> {
        let (&sequence, (at, _)) = self.done.first_key_value()?;
        let floor = self.next.unwrap_or(0);
        if self.reading.range(floor..sequence).next().is_some() {
            return None;
        }
        Some((sequence, *at))
    }

    /// When [`Reorder::release`] may next give something without new input.
    pub fn deadline(&self) -> Option<Instant> {
        let (sequence, at) = self.head()?;
        if Some(sequence) == self.next {
            return Some(at);
        }
        Some(at + self.window)
    }

    /// The groups that can go to the recorder now, in order. With `all` (the track ended and
    /// nothing is being read), every completed group.
    pub fn release(&mut self, now: Instant, all: bool) -> Vec<(u64, T)> {
        let mut out = Vec::new();
        loop {
            let ready = match self.head() {
                Some((sequence, at)) => all || Some(sequence) == self.next || now >= at + self.window,
                None => false,
            };
            if !ready {
                return out;
            }
            let Some((sequence, (_, content))) = self.done.pop_first() else { return out };
            self.next = Some(sequence + 1);
            out.push((sequence, content));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(500);

    fn seqs(v: Vec<(u64, &str)>) -> Vec<u64> {
        v.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn newest_first_burst_comes_out_oldest_first() {
        let t = Instant::now();
        let mut r = Reorder::new(W);
        for s in (0..5).rev() {
            assert!(r.opened(s));
        }
        for s in (1..5).rev() {
            r.completed(s, "g", t);
            // Group 0 is still being read: nothing may pass it.
            assert!(r.release(t + W * 10, false).is_empty());
            assert_eq!(r.deadline(), None);
        }
        r.completed(0, "g", t);
        // The first release waits the window (an older group might still come)...
        assert!(r.release(t, false).is_empty());
        assert_eq!(r.deadline(), Some(t + W));
        // ...then everything goes in order.
        assert_eq!(seqs(r.release(t + W, false)), vec![0, 1, 2, 3, 4]);
        // From now on, the next group in sequence goes at once.
        assert!(r.opened(5));
        r.completed(5, "g", t + W);
        assert_eq!(seqs(r.release(t + W, false)), vec![5]);
    }

    #[test]
    fn a_gap_is_waited_for_then_skipped_and_a_late_group_dropped() {
        let t = Instant::now();
        let mut r = Reorder::new(W);
        r.opened(0);
        r.completed(0, "a", t);
        assert_eq!(seqs(r.release(t + W, false)), vec![0]);
        // Group 1 never opens; group 2 completes.
        r.opened(2);
        r.completed(2, "c", t + W);
        assert!(r.release(t + W, false).is_empty());
        assert_eq!(r.deadline(), Some(t + W * 2));
        assert_eq!(seqs(r.release(t + W * 2, false)), vec![2]);
        // Group 1 shows up after all: too late.
        assert!(!r.opened(1));
        r.completed(1, "b", t + W * 3);
        assert!(r.release(t + W * 9, true).is_empty());
    }

    #[test]
    fn the_end_releases_everything_in_order() {
        let t = Instant::now();
        let mut r = Reorder::new(W);
        for s in [3, 1, 2] {
            r.opened(s);
            r.completed(s, "x", t);
        }
        assert_eq!(r.reading(), 0);
        assert_eq!(seqs(r.release(t, true)), vec![1, 2, 3]);
    }
}
