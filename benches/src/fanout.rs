//! An in-memory relay fan-out rig: one publisher client session feeding a relay [`Node`] that
//! serves N subscriber sessions. Setup runs real sessions on both ends; during measurement the
//! subscribers' transports are "infinitely fast": the node's output is pulled and discarded,
//! so what is measured is the relay's own work per delivered frame.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use moqt_proto::relay::{Node, NodeConfig, SessionId};
use moqt_proto::session::{Command, Config, Event, Perspective, PublishParams, Session, StreamId, TransportEvent};
use moqt_proto::{Path, Version};
use smallvec::SmallVec;

struct Link {
    client: Option<Session>,
    sid: SessionId,
    to_node: HashMap<StreamId, StreamId>,
    to_client: HashMap<StreamId, StreamId>,
    next_at_node: u64,
    next_at_client: u64,
}

/// The rig.
pub struct FanOut {
    /// The relay.
    pub node: Node,
    now: Instant,
    links: Vec<Link>,
    by_sid: HashMap<SessionId, usize>,
    publication: Option<StreamId>,
    group: Option<StreamId>,
    sequence: u64,
    frames_in_group: u32,
    /// Payload bytes the node handed to subscriber transports.
    pub delivered_bytes: u64,
}

impl FanOut {
    /// A relay with a publisher and `subscribers` subscribers to one track.
    pub fn new(version: Version, subscribers: usize) -> Self {
        let now = Instant::now();
        let mut node = Node::new(NodeConfig { hop_id: 7, ..NodeConfig::default() }, now);
        let mut rig = Self {
            node: Node::new(NodeConfig::default(), now),
            now,
            links: Vec::new(),
            by_sid: HashMap::new(),
            publication: None,
            group: None,
            sequence: 0,
            frames_in_group: 0,
            delivered_bytes: 0,
        };
        std::mem::swap(&mut rig.node, &mut node);
        let mut publisher = Session::new(Config::new(version, Perspective::Client), now);
        publisher.announce(Path::new("bench")).unwrap();
        rig.connect(publisher);
        for _ in 0..subscribers {
            let mut sub = Session::new(Config::new(version, Perspective::Client), now);
            let params = moqt_proto::session::SubscribeParams { max_latency: 10_000, ..Default::default() };
            sub.subscribe(Path::new("bench"), "t", params).unwrap();
            rig.connect(sub);
        }
        // From now on the subscribers' ends only drain.
        for link in rig.links.iter_mut().skip(1) {
            link.client = None;
        }
        rig
    }

    fn connect(&mut self, client: Session) {
        let sid = self.node.add_session(Config::new(client.version(), Perspective::Server), self.now);
        self.by_sid.insert(sid, self.links.len());
        self.links.push(Link {
            client: Some(client),
            sid,
            to_node: HashMap::new(),
            to_client: HashMap::new(),
            next_at_node: 0,
            next_at_client: 0,
        });
        self.pump();
    }

    /// Publishes one frame (a new group every 30 frames) and moves everything.
    pub fn frame(&mut self, payload: &Bytes) {
        if self.frames_in_group == 30 || self.group.is_none() {
            let publisher = self.links[0].client.as_mut().expect("publisher");
            if let Some(g) = self.group.take() {
                publisher.finish_group(g).unwrap();
            }
            let stream = self.publication.expect("subscribed");
            self.group = Some(publisher.open_group(stream, self.sequence).unwrap());
            self.sequence += 1;
            self.frames_in_group = 0;
        }
        let publisher = self.links[0].client.as_mut().expect("publisher");
        publisher.write_frame(self.group.unwrap(), 0, payload.clone()).unwrap();
        self.frames_in_group += 1;
        self.pump();
    }

    /// Moves commands and bytes until nothing is left.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.links.len() {
                moved |= self.client_to_node(i);
            }
            while let Some((sid, cmd)) = self.node.poll_command() {
                moved = true;
                let i = self.by_sid[&sid];
                self.node_to_client(i, cmd);
            }
            if !moved {
                break;
            }
        }
    }

    fn client_to_node(&mut self, i: usize) -> bool {
        let mut moved = false;
        let link = &mut self.links[i];
        let Some(client) = link.client.as_mut() else { return false };
        while let Some(ev) = client.poll_event() {
            if let Event::SubscribeRequest { stream, .. } = ev {
                client.accept_subscription(stream, PublishParams::default()).unwrap();
                self.publication = Some(stream);
            }
        }
        while let Some(cmd) = client.poll_command() {
            moved = true;
            match cmd {
                Command::Open { id, .. } => {
                    let remote = StreamId::remote(link.next_at_node, id.is_uni());
                    link.next_at_node += 1;
                    link.to_node.insert(id, remote);
                    link.to_client.insert(remote, id);
                    self.node.handle(link.sid, self.now, TransportEvent::StreamOpened(remote));
                }
                Command::Transmit(id) => {
                    let remote = link.to_node[&id];
                    while let Some((chunks, fin)) = client.send_chunks(id) {
                        let taken: SmallVec<[Bytes; 8]> = chunks.iter().cloned().collect();
                        let n: usize = taken.iter().map(Bytes::len).sum();
                        client.advance_send(id, n, fin);
                        if taken.is_empty() {
                            let ev = TransportEvent::StreamData { id: remote, data: Bytes::new(), fin };
                            self.node.handle(link.sid, self.now, ev);
                        }
                        let last = taken.len().saturating_sub(1);
                        for (k, data) in taken.into_iter().enumerate() {
                            let ev = TransportEvent::StreamData { id: remote, data, fin: fin && k == last };
                            self.node.handle(link.sid, self.now, ev);
                        }
                        if fin {
                            break;
                        }
                    }
                }
                _ => {}
            }
            let link = &mut self.links[i];
            let Some(c) = link.client.as_mut() else { break };
            while let Some(ev) = c.poll_event() {
                if let Event::SubscribeRequest { stream, .. } = ev {
                    c.accept_subscription(stream, PublishParams::default()).unwrap();
                    self.publication = Some(stream);
                }
            }
            return self.client_to_node(i) || true;
        }
        moved
    }

    fn node_to_client(&mut self, i: usize, cmd: Command) {
        let sid = self.links[i].sid;
        match cmd {
            Command::Open { id, .. } => {
                let link = &mut self.links[i];
                if let Some(client) = link.client.as_mut() {
                    let remote = StreamId::remote(link.next_at_client, id.is_uni());
                    link.next_at_client += 1;
                    link.to_client.insert(id, remote);
                    link.to_node.insert(remote, id);
                    client.handle(self.now, TransportEvent::StreamOpened(remote));
                }
            }
            Command::Transmit(id) => loop {
                let Some((chunks, fin)) = self.node.send_chunks(sid, id) else { break };
                let taken: SmallVec<[Bytes; 8]> = chunks.iter().cloned().collect();
                let n: usize = taken.iter().map(Bytes::len).sum();
                self.node.advance_send(sid, id, n, fin);
                let link = &mut self.links[i];
                match link.client.as_mut() {
                    Some(client) => {
                        let remote = link.to_client[&id];
                        if taken.is_empty() {
                            client.handle(self.now, TransportEvent::StreamData { id: remote, data: Bytes::new(), fin });
                        }
                        let last = taken.len().saturating_sub(1);
                        for (k, data) in taken.into_iter().enumerate() {
                            client.handle(
                                self.now,
                                TransportEvent::StreamData { id: remote, data, fin: fin && k == last },
                            );
                        }
                    }
                    None => self.delivered_bytes += n as u64,
                }
                if fin {
                    break;
                }
            },
            _ => {}
        }
    }
}
