//! Two sessions on the rig (`moqt_proto::testing::Net`), a subscriber and a publisher, for
//! benchmarks and allocation tests. The rig's run loop moves everything; this only publishes and
//! counts. Events are drained into a reused buffer and commands are not recorded, so in steady
//! state nothing here allocates per frame.

use bytes::Bytes;
use moqt_proto::session::{Config, Event, GroupId, Perspective, PublicationId, PublishParams, SubscribeParams};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, Version};

/// The subscribing side (the client).
pub const SUB: usize = 0;
/// The publishing side (the server).
pub const PUB: usize = 1;

/// A subscriber and a publisher joined by an unconstrained wire.
pub struct SessionPair {
    /// The network: endpoints [`SUB`] and [`PUB`].
    pub net: Net,
    /// Frames the subscriber's application received.
    pub frames: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Events other than frames and group boundaries, kept while `record` is set.
    pub events: [Vec<Event>; 2],
    /// Keep other events (setup) and every command; clear it before measuring.
    pub record: bool,
    scratch: Vec<Event>,
}

impl SessionPair {
    /// A connected pair on `version` (SETUP exchanged where the version has one).
    pub fn new(version: Version) -> Self {
        let net = Net::pair_with(
            Config::new(version, Perspective::Client),
            Config::new(version, Perspective::Server),
            WireOptions::default(),
        );
        let mut pair = Self {
            net,
            frames: 0,
            bytes: 0,
            events: [Vec::new(), Vec::new()],
            record: true,
            scratch: Vec::with_capacity(256),
        };
        pair.run();
        pair
    }

    /// Runs the network until it settles and takes both sides' events.
    pub fn run(&mut self) {
        if self.net.record && !self.record {
            // Recorded commands hold clones of the sessions' queued `Bytes` (for example the
            // first header buffer), which would keep them from being reused.
            self.net.record = false;
            self.net.commands(SUB);
            self.net.commands(PUB);
        }
        self.net.run();
        for side in [SUB, PUB] {
            self.net.events_into(side, &mut self.scratch);
            for ev in self.scratch.drain(..) {
                match ev {
                    Event::Frame { payload, .. } => {
                        self.frames += 1;
                        self.bytes += payload.len() as u64;
                    }
                    ev if self.record => self.events[side].push(ev),
                    _ => {}
                }
            }
        }
    }

    /// The subscriber subscribes (large max latency) and the publisher accepts; returns the
    /// publisher's handle for the subscription.
    pub fn subscribe(&mut self) -> PublicationId {
        let params = SubscribeParams { max_latency: u64::from(u32::MAX), ..Default::default() };
        self.net.session(SUB).subscribe(Path::new("room/alice"), "video", params).unwrap();
        self.run();
        let publication = self.events[PUB]
            .iter()
            .find_map(|e| match e {
                Event::SubscribeRequest { publication, .. } => Some(*publication),
                _ => None,
            })
            .expect("subscribe request");
        self.net.session(PUB).accept_subscription(publication, PublishParams::default()).unwrap();
        self.run();
        publication
    }

    /// Publishes one frame on an open group and delivers it.
    pub fn frame(&mut self, group: GroupId, timestamp: u64, payload: &Bytes) {
        self.net.session(PUB).write_frame(group, timestamp, payload.clone()).unwrap();
        self.run();
    }

    /// Publishes and delivers a whole group of `frames` frames.
    pub fn group(&mut self, publication: PublicationId, sequence: u64, frames: u64, payload: &Bytes) {
        let publisher = self.net.session(PUB);
        let group = publisher.open_group(publication, sequence).unwrap();
        for f in 0..frames {
            publisher.write_frame(group, sequence * frames + f, payload.clone()).unwrap();
        }
        publisher.finish_group(group).unwrap();
        self.run();
    }
}
