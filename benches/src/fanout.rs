//! Relay fan-out on the rig (`moqt_proto::testing::Net`): one publisher session feeding a relay
//! [`Node`](moqt_proto::relay::Node) that serves N subscriber sessions. Setup runs real sessions
//! on both ends; then the relay's side of every subscriber wire becomes an infinitely fast sink
//! (`Wire::discard`: each write is taken whole and dropped), so what is measured is the relay's
//! own work per delivered frame: publisher encode, relay decode, cache insert, N `Bytes` clones
//! with their frame headers, queueing and writing.

use bytes::Bytes;
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::{Config, Event, GroupId, Perspective, PublicationId, PublishParams, SubscribeParams};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, Version};

/// The relay's endpoint.
const RELAY: usize = 0;
/// The publisher's endpoint.
const PUBLISHER: usize = 1;

/// The rig.
pub struct FanOut {
    /// The network: the relay, the publisher and the subscribers.
    pub net: Net,
    /// Subscriber wires (the relay is side 1 of each).
    sinks: Vec<usize>,
    publication: PublicationId,
    group: Option<GroupId>,
    sequence: u64,
    frames_in_group: u32,
    scratch: Vec<Event>,
}

impl FanOut {
    /// A relay with a publisher and `subscribers` subscribers to one track.
    pub fn new(version: Version, subscribers: usize) -> Self {
        Self::sharded(version, subscribers, 1)
    }

    /// The relay split into `shards` nodes the way `moqt relay --workers` splits it: the
    /// publisher on the first, every other node linked to the first as a peer, the subscribers
    /// spread over all of them in turn. One process runs them all here, so this is the total
    /// work (every extra shard adds one link subscriber on the first node and one upstream
    /// decode on its own), not the parallel speed-up.
    pub fn sharded(version: Version, subscribers: usize, shards: usize) -> Self {
        let mut net = Net::new(version);
        let relay = net.add_node(NodeConfig { hop_id: 7, ..NodeConfig::relay() });
        let publisher = net.add_session(Config::new(version, Perspective::Client));
        assert_eq!((relay, publisher), (RELAY, PUBLISHER));
        net.session(publisher).announce(Path::new("bench")).unwrap();
        net.connect(publisher, relay, WireOptions::default());
        let mut nodes = vec![relay];
        for k in 1..shards.max(1) {
            let shard = net.add_node(NodeConfig { hop_id: 7 + k as u64, ..NodeConfig::relay() });
            net.connect(shard, relay, WireOptions::default());
            nodes.push(shard);
        }
        let mut sinks = Vec::with_capacity(subscribers);
        for i in 0..subscribers {
            let sub = net.add_session(Config::new(version, Perspective::Client));
            let params = SubscribeParams { max_latency: 10_000, ..Default::default() };
            net.session(sub).subscribe(Path::new("bench"), "t", params).unwrap();
            sinks.push(net.connect(sub, nodes[i % nodes.len()], WireOptions::default()));
        }
        let publication = net
            .events(publisher)
            .into_iter()
            .find_map(|e| match e {
                Event::SubscribeRequest { publication, .. } => Some(publication),
                _ => None,
            })
            .expect("the relay subscribed upstream");
        net.session(publisher).accept_subscription(publication, PublishParams::default()).unwrap();
        net.run();
        // From now on the subscribers' transports only drain.
        for &wire in &sinks {
            net.wire(wire).discard(1, true);
        }
        net.record = false;
        Self { net, sinks, publication, group: None, sequence: 0, frames_in_group: 0, scratch: Vec::with_capacity(64) }
    }

    /// Publishes one frame (a new group every 30 frames) and moves everything.
    pub fn frame(&mut self, payload: &Bytes) {
        let publisher = self.net.session(PUBLISHER);
        if self.frames_in_group == 30 || self.group.is_none() {
            if let Some(g) = self.group.take() {
                publisher.finish_group(g).unwrap();
            }
            self.group = Some(publisher.open_group(self.publication, self.sequence).unwrap());
            self.sequence += 1;
            self.frames_in_group = 0;
        }
        publisher.write_frame(self.group.expect("open"), 0, payload.clone()).unwrap();
        self.frames_in_group += 1;
        self.net.run();
        // The publisher hears nothing in steady state; keep its event buffer empty anyway.
        self.net.events_into(PUBLISHER, &mut self.scratch);
        self.scratch.clear();
    }

    /// Bytes the relay handed to the subscribers' transports so far.
    pub fn delivered_bytes(&mut self) -> u64 {
        let Self { net, sinks, .. } = self;
        sinks.iter().map(|&w| net.wire(w).stats().bytes[1]).sum()
    }
}
