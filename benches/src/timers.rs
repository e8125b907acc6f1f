//! A relay node holding many downstream subscriptions, each with a max-latency expiry deadline
//! armed, for measuring what one timer wake-up costs (`Node::poll_timeout` +
//! `Node::handle_timeout` at a due deadline).
//!
//! The node publishes one local track per subscription; `sessions` subscriber sessions each
//! subscribe to `per_session` of them with a max latency of [`MAX_LATENCY`]. Every track keeps
//! two groups open downstream, so the older one has a deadline; the deadlines are spread evenly
//! over [`MAX_LATENCY`], one track after the other, so each wake-up expires exactly one group.
//! After each wake-up [`TimerRig::rearm`] (not timed) resets that track's other group and opens
//! two new ones, which arms its next deadline one max latency later: the cycle never runs out.
//! Once set up, the subscribers' transports are gone: the node's commands are dropped unread, so
//! the untimed part stays small however many sessions there are.

use std::time::{Duration, Instant};

use bytes::Bytes;
use moqt_proto::message::TrackInfo;
use moqt_proto::relay::{NodeConfig, TrackId};
use moqt_proto::session::{Config, Perspective, SubscribeParams};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, Version};

/// The subscribers' max latency: the period of each track's deadline.
pub const MAX_LATENCY: Duration = Duration::from_secs(10);

/// The relay's endpoint.
const RELAY: usize = 0;

/// The rig. See the module docs.
pub struct TimerRig {
    /// The network: the relay and its subscribers.
    pub net: Net,
    tracks: Vec<TrackId>,
    /// The next group sequence per track.
    sequence: Vec<u64>,
    /// The track whose deadline comes next.
    next: usize,
    /// Wake-ups so far.
    pub wakes: u64,
}

impl TimerRig {
    /// `sessions` × `per_session` subscriptions, each with a deadline armed.
    pub fn new(sessions: usize, per_session: usize) -> Self {
        let version = Version::Lite06;
        let mut net = Net::new(version);
        net.record = false;
        let relay = net.add_node(NodeConfig::relay());
        assert_eq!(relay, RELAY);
        let path = Path::new("timers");
        let n = sessions * per_session;
        net.node(relay).publish_broadcast(path.clone());
        let tracks: Vec<TrackId> = (0..n)
            .map(|i| net.node(relay).publish_track(path.clone(), &format!("t{i}"), TrackInfo::default()))
            .collect();
        let params = SubscribeParams { max_latency: MAX_LATENCY.as_millis() as u64, ..Default::default() };
        for s in 0..sessions {
            let ep = net.add_session(Config::new(version, Perspective::Client));
            for k in 0..per_session {
                net.session(ep).subscribe(path.clone(), &format!("t{}", s * per_session + k), params).unwrap();
            }
            net.connect(ep, relay, WireOptions::default());
        }
        assert_eq!(net.node(relay).stats().subscriptions, n, "every subscription reached the relay");
        let mut rig = Self { net, tracks, sequence: vec![0; n], next: 0, wakes: 0 };
        // Track i opens its two groups at start + i·step: its first deadline is that plus the
        // max latency.
        let start = rig.net.now;
        let step = MAX_LATENCY / n as u32;
        for i in 0..n {
            rig.open_pair(i, start + step * i as u32);
        }
        rig
    }

    /// The number of subscriptions (and armed deadlines).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether the rig has no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Ends track `i`'s groups (the expired one cleanly, the other reset, so that opening new
    /// ones expires nothing) and opens the next two at `at`. The node's output is dropped.
    fn open_pair(&mut self, i: usize, at: Instant) {
        self.net.now = self.net.now.max(at);
        let now = self.net.now;
        let node = self.net.node(RELAY);
        node.handle_timeout(now);
        let (track, seq) = (self.tracks[i], self.sequence[i]);
        if seq >= 2 {
            node.publish_group_end(track, seq - 2, None);
            node.publish_group_end(track, seq - 1, Some(moqt_proto::session::stream_code::CANCEL));
        }
        for s in [seq, seq + 1] {
            node.publish_group(track, s);
            node.publish_frame(track, s, s, Bytes::from_static(b"x"));
        }
        self.sequence[i] = seq + 2;
        while node.poll_command().is_some() {}
        while node.poll_event().is_some() {}
    }

    /// One wake-up at the next deadline, timed: `poll_timeout` and `handle_timeout`. Returns the
    /// time it took and re-arms the track that fired (not timed).
    pub fn wake(&mut self) -> Duration {
        let node = self.net.node(RELAY);
        let started = Instant::now();
        let at = node.poll_timeout().expect("a deadline is armed");
        node.handle_timeout(at);
        let spent = started.elapsed();
        self.rearm(at);
        spent
    }

    /// After the wake-up at `at`: the round-robin track that fired gets its next deadline.
    pub fn rearm(&mut self, at: Instant) {
        self.wakes += 1;
        let i = self.next;
        self.next = (i + 1) % self.tracks.len();
        self.open_pair(i, at);
    }

    /// Groups the relay's downstream sessions dropped so far (one per wake-up).
    pub fn dropped(&mut self) -> u64 {
        self.net.node(RELAY).stats().groups_dropped
    }
}
