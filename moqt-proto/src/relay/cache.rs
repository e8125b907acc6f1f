//! The group cache of one track: the latest group always, older groups within a retention
//! window, bounded in bytes (open groups included), and no group larger than a per-group limit.
//! Frames are held as `Bytes` (shared with every subscriber's queue, never copied). Frame
//! vectors of evicted groups are recycled, so steady state allocates nothing per frame.
//!
//! Every mutation keeps [`GroupCache::bytes`] exact; the node adds up the difference.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One cached frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFrame {
    /// Absolute timestamp (0 where the version has none).
    pub timestamp: u64,
    /// The payload.
    pub payload: Bytes,
}

/// One cached group.
#[derive(Debug)]
pub struct CachedGroup {
    /// The sequence number.
    pub sequence: u64,
    /// When its first byte arrived.
    pub started: Instant,
    /// Its frames so far.
    pub frames: Vec<CachedFrame>,
    /// The group ended cleanly (all frames are here).
    pub complete: bool,
    /// The group was reset upstream (what is here is all there will be).
    pub aborted: bool,
    bytes: usize,
}

/// Bounds for one track's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Keep non-latest groups this long after they started.
    pub retention: Duration,
    /// Most bytes held for one track, open groups included (the latest group is kept even if
    /// alone it is larger, up to `max_group_bytes`).
    pub max_track_bytes: usize,
    /// Most bytes in one group: a group that grows past it is cut (reset with
    /// `GROUP_TOO_LARGE` for every subscriber) and dropped from the cache.
    pub max_group_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self { retention: Duration::from_secs(5), max_track_bytes: 32 << 20, max_group_bytes: 16 << 20 }
    }
}

/// What [`GroupCache::push`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Cached.
    Cached,
    /// The group is not cached (evicted, cut, or never started here).
    NotCached,
    /// The frame would take the group past `max_group_bytes`: the group was dropped.
    GroupTooLarge,
}

/// The cache of one track.
#[derive(Debug, Default)]
pub struct GroupCache {
    groups: VecDeque<CachedGroup>,
    bytes: usize,
    spare: Vec<Vec<CachedFrame>>,
}

impl GroupCache {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The newest group, if any.
    pub fn latest(&self) -> Option<&CachedGroup> {
        self.groups.iter().max_by_key(|g| g.sequence)
    }

    /// The sequences of the cached groups, oldest first.
    pub fn sequences(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.iter().map(|g| g.sequence)
    }

    /// A group by sequence.
    pub fn get(&self, sequence: u64) -> Option<&CachedGroup> {
        self.groups.iter().find(|g| g.sequence == sequence)
    }

    /// Starts a group (a repeat of a known sequence restarts it empty).
    pub fn start(&mut self, sequence: u64, now: Instant) {
        self.remove(sequence);
        // Size the frame list like the previous group, so it does not regrow frame by frame.
        let expected = self.latest().map_or(0, |g| g.frames.len());
        let mut frames = self.spare.pop().unwrap_or_default();
        frames.clear();
        frames.reserve(expected);
        let group = CachedGroup { sequence, started: now, frames, complete: false, aborted: false, bytes: 0 };
        // Keep the deque ordered by sequence; groups nearly always arrive in order.
        let at = self.groups.iter().rposition(|g| g.sequence < sequence).map_or(0, |i| i + 1);
        self.groups.insert(at, group);
    }

    /// Appends a frame to a group, then evicts older groups past the track's byte bound.
    pub fn push(&mut self, sequence: u64, frame: CachedFrame, limits: &CacheLimits) -> Pushed {
        let Some(g) = self.groups.iter_mut().rev().find(|g| g.sequence == sequence) else { return Pushed::NotCached };
        let n = frame.payload.len();
        if g.bytes + n > limits.max_group_bytes {
            self.remove(sequence);
            return Pushed::GroupTooLarge;
        }
        g.frames.push(frame);
        g.bytes += n;
        self.bytes += n;
        if self.bytes > limits.max_track_bytes {
            let latest = self.latest().map(|g| g.sequence);
            while self.bytes > limits.max_track_bytes {
                let Some(i) = self.groups.iter().position(|g| Some(g.sequence) != latest) else { break };
                let g = self.groups.remove(i).expect("index from position");
                self.recycle(g);
            }
        }
        Pushed::Cached
    }

    /// Drops a group (cut or restarted).
    pub fn remove(&mut self, sequence: u64) {
        if let Some(i) = self.groups.iter().position(|g| g.sequence == sequence) {
            let g = self.groups.remove(i).expect("index from position");
            self.recycle(g);
        }
    }

    /// Marks a group complete (clean end) or aborted (reset).
    pub fn end(&mut self, sequence: u64, complete: bool) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.sequence == sequence) {
            g.complete = complete;
            g.aborted = !complete;
        }
    }

    /// Stores a whole group learned from a fetch.
    pub fn insert_complete(&mut self, sequence: u64, now: Instant, frames: Vec<CachedFrame>) {
        self.start(sequence, now);
        let limits = CacheLimits { max_track_bytes: usize::MAX, max_group_bytes: usize::MAX, ..CacheLimits::default() };
        for f in frames {
            self.push(sequence, f, &limits);
        }
        self.end(sequence, true);
    }

    /// Evicts what the limits no longer allow (never the latest group). Returns bytes freed.
    pub fn trim(&mut self, now: Instant, limits: &CacheLimits) -> usize {
        let before = self.bytes;
        let latest = self.latest().map(|g| g.sequence);
        while let Some(front) = self.groups.front() {
            if Some(front.sequence) == latest {
                break;
            }
            let too_old = now.saturating_duration_since(front.started) > limits.retention;
            if !too_old && self.bytes <= limits.max_track_bytes {
                break;
            }
            let g = self.groups.pop_front().expect("front exists");
            self.recycle(g);
        }
        before - self.bytes
    }

    /// Evicts the oldest non-latest group (node-wide pressure). Returns bytes freed.
    pub fn evict_oldest(&mut self) -> usize {
        if self.groups.len() < 2 {
            return 0;
        }
        let latest = self.latest().map(|g| g.sequence);
        let Some(i) = self.groups.iter().position(|g| Some(g.sequence) != latest) else { return 0 };
        let g = self.groups.remove(i).expect("index from position");
        let n = g.bytes;
        self.recycle(g);
        n
    }

    /// The start time of the oldest non-latest group (for node-wide eviction order).
    pub fn oldest_evictable(&self) -> Option<Instant> {
        if self.groups.len() < 2 {
            return None;
        }
        let latest = self.latest().map(|g| g.sequence);
        self.groups.iter().filter(|g| Some(g.sequence) != latest).map(|g| g.started).min()
    }

    /// Drops everything.
    pub fn clear(&mut self) -> usize {
        let n = self.bytes;
        while let Some(g) = self.groups.pop_front() {
            self.recycle(g);
        }
        n
    }

    fn recycle(&mut self, mut g: CachedGroup) {
        self.bytes -= g.bytes;
        g.frames.clear();
        if self.spare.len() < 8 {
            self.spare.push(g.frames);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: usize) -> CachedFrame {
        CachedFrame { timestamp: 0, payload: Bytes::from(vec![0u8; n]) }
    }

    #[test]
    fn keeps_latest_and_trims_by_age_and_size() {
        let t0 = Instant::now();
        let limits = CacheLimits { retention: Duration::from_secs(1), max_track_bytes: 250, max_group_bytes: 1000 };
        let unbounded = CacheLimits { max_track_bytes: usize::MAX, ..limits };
        let mut c = GroupCache::default();
        for seq in 0..3u64 {
            c.start(seq, t0 + Duration::from_millis(100 * seq));
            c.push(seq, f(100), &unbounded);
            c.end(seq, true);
        }
        assert_eq!(c.bytes(), 300);
        assert_eq!(c.trim(t0, &limits), 100, "over the byte bound: the oldest goes");
        assert!(c.get(0).is_none() && c.get(1).is_some());
        c.trim(t0 + Duration::from_secs(5), &limits);
        assert_eq!(c.latest().unwrap().sequence, 2, "the latest group is always kept");
        assert!(c.get(1).is_none());
        assert_eq!(c.bytes(), 100);
    }

    #[test]
    fn open_groups_count_and_a_group_past_its_limit_is_cut() {
        let t0 = Instant::now();
        let limits = CacheLimits { retention: Duration::from_secs(60), max_track_bytes: 300, max_group_bytes: 250 };
        let mut c = GroupCache::default();
        c.start(0, t0);
        assert_eq!(c.push(0, f(100), &limits), Pushed::Cached);
        c.start(1, t0);
        assert_eq!(c.push(1, f(100), &limits), Pushed::Cached);
        assert_eq!(c.push(1, f(100), &limits), Pushed::Cached);
        // Group 0 is still open, but the track is over its bound: the non-latest group goes.
        assert_eq!(c.push(1, f(50), &limits), Pushed::Cached);
        assert!(c.get(0).is_none());
        assert_eq!(c.bytes(), 250);
        // One more byte would take group 1 past its own limit: it is cut.
        assert_eq!(c.push(1, f(1), &limits), Pushed::GroupTooLarge);
        assert!(c.get(1).is_none());
        assert_eq!(c.bytes(), 0);
        assert_eq!(c.push(1, f(1), &limits), Pushed::NotCached);
    }

    #[test]
    fn a_restarted_sequence_keeps_the_byte_count_exact() {
        let t0 = Instant::now();
        let limits = CacheLimits::default();
        let mut c = GroupCache::default();
        c.start(5, t0);
        c.push(5, f(100), &limits);
        c.start(5, t0);
        assert_eq!(c.bytes(), 0);
        c.push(5, f(10), &limits);
        assert_eq!(c.bytes(), 10);
    }
}
