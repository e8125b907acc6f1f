//! A deterministic in-memory network of relay nodes and client sessions. Every connection is a
//! pipe: one side's commands become the other side's transport events, delivered FIFO (per
//! stream order always holds). Connections can be stalled (their sender's queues not pulled)
//! and closed. Time moves only when the test advances it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moqt_proto::relay::{Node, NodeConfig, SessionId};
use moqt_proto::session::{Command, Config, Event, Perspective, Session, StreamId, TransportEvent};
use moqt_proto::Version;

/// An endpoint: a relay node with many sessions, or a client with one.
pub enum Endpoint {
    Node(Node),
    Client { session: Session, events: Vec<Event> },
}

/// One end of a connection: (endpoint index, session at that endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct End {
    pub ep: usize,
    pub session: Option<SessionId>,
}

struct Link {
    ends: [End; 2],
    map: [HashMap<StreamId, StreamId>; 2],
    next_remote: [u64; 2],
    hold: [bool; 2],
    closed: bool,
}

/// The network.
pub struct Net {
    pub now: Instant,
    pub endpoints: Vec<Endpoint>,
    links: Vec<Link>,
    pending: VecDeque<(usize, usize, TransportEvent)>,
    pub version: Version,
}

impl Net {
    pub fn new(version: Version) -> Self {
        Self { now: Instant::now(), endpoints: Vec::new(), links: Vec::new(), pending: VecDeque::new(), version }
    }

    /// Adds a relay node; returns its endpoint index.
    pub fn node(&mut self, hop_id: u64) -> usize {
        let config = NodeConfig { hop_id, ..NodeConfig::default() };
        self.node_with(config)
    }

    pub fn node_with(&mut self, config: NodeConfig) -> usize {
        self.endpoints.push(Endpoint::Node(Node::new(config, self.now)));
        self.endpoints.len() - 1
    }

    /// Connects a new client session to node `to`; returns (link, client endpoint).
    pub fn client(&mut self, to: usize, hop_id: u64) -> (usize, usize) {
        let mut config = Config::new(self.version, Perspective::Client);
        config.hop_id = hop_id;
        self.client_with(to, config)
    }

    pub fn client_with(&mut self, to: usize, config: Config) -> (usize, usize) {
        let session = Session::new(config, self.now);
        self.endpoints.push(Endpoint::Client { session, events: Vec::new() });
        let client = self.endpoints.len() - 1;
        let server = self.attach(to, Perspective::Server);
        let link = self.add_link(End { ep: client, session: None }, server);
        (link, client)
    }

    /// Connects node `from` (dialling) to node `to` (accepting); returns the link.
    pub fn peer(&mut self, from: usize, to: usize) -> usize {
        let a = self.attach(from, Perspective::Client);
        let b = self.attach(to, Perspective::Server);
        self.add_link(a, b)
    }

    fn attach(&mut self, ep: usize, perspective: Perspective) -> End {
        let now = self.now;
        let config = Config::new(self.version, perspective);
        let Endpoint::Node(node) = &mut self.endpoints[ep] else { panic!("not a node") };
        End { ep, session: Some(node.add_session(config, now)) }
    }

    fn add_link(&mut self, a: End, b: End) -> usize {
        self.links.push(Link {
            ends: [a, b],
            map: [HashMap::new(), HashMap::new()],
            next_remote: [0, 0],
            hold: [false, false],
            closed: false,
        });
        let id = self.links.len() - 1;
        self.run();
        id
    }

    pub fn client_session(&mut self, ep: usize) -> &mut Session {
        match &mut self.endpoints[ep] {
            Endpoint::Client { session, .. } => session,
            Endpoint::Node(_) => panic!("not a client"),
        }
    }

    pub fn node_ref(&self, ep: usize) -> &Node {
        match &self.endpoints[ep] {
            Endpoint::Node(n) => n,
            Endpoint::Client { .. } => panic!("not a node"),
        }
    }

    pub fn node_mut(&mut self, ep: usize) -> &mut Node {
        match &mut self.endpoints[ep] {
            Endpoint::Node(n) => n,
            Endpoint::Client { .. } => panic!("not a node"),
        }
    }

    /// Takes the events a client has received.
    pub fn events(&mut self, ep: usize) -> Vec<Event> {
        self.run();
        match &mut self.endpoints[ep] {
            Endpoint::Client { events, .. } => std::mem::take(events),
            Endpoint::Node(_) => panic!("not a client"),
        }
    }

    /// The relay-side session of a link end at a node.
    pub fn session_at(&self, link: usize, side: usize) -> Option<SessionId> {
        self.links[link].ends[side].session
    }

    /// Stalls (or resumes) what side `side` of `link` sends.
    pub fn hold(&mut self, link: usize, side: usize, hold: bool) {
        self.links[link].hold[side] = hold;
        if !hold {
            let ids: Vec<StreamId> = self.links[link].map[side].keys().copied().collect();
            for id in ids {
                self.deliver_to(link, side, TransportEvent::Writable(id));
            }
        }
        self.run();
    }

    /// Closes a link as if the connection dropped (both ends see Closed with `code`).
    pub fn disconnect(&mut self, link: usize, code: u64) {
        self.links[link].closed = true;
        for side in 0..2 {
            self.deliver_to(link, side, TransportEvent::Closed { code, reason: "disconnected".into() });
        }
        self.run();
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        for ep in &mut self.endpoints {
            match ep {
                Endpoint::Node(n) => n.handle_timeout(now),
                Endpoint::Client { session, .. } => session.handle_timeout(now),
            }
        }
        self.run();
    }

    fn deliver_to(&mut self, link: usize, side: usize, ev: TransportEvent) {
        let end = self.links[link].ends[side];
        let now = self.now;
        match &mut self.endpoints[end.ep] {
            Endpoint::Node(n) => n.handle(end.session.unwrap(), now, ev),
            Endpoint::Client { session, .. } => session.handle(now, ev),
        }
    }

    fn link_of(&self, end: End) -> Option<(usize, usize)> {
        self.links.iter().enumerate().find_map(|(i, l)| {
            if l.closed {
                return None;
            }
            l.ends.iter().position(|e| *e == end).map(|side| (i, side))
        })
    }

    /// Moves everything until the network is quiet.
    pub fn run(&mut self) {
        loop {
            let mut moved = false;
            for ep in 0..self.endpoints.len() {
                moved |= self.drain(ep);
            }
            if let Some((link, side, ev)) = self.pending.pop_front() {
                if !self.links[link].closed {
                    self.deliver_to(link, side, ev);
                }
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn next_command(&mut self, ep: usize) -> Option<(Option<SessionId>, Command)> {
        match &mut self.endpoints[ep] {
            Endpoint::Node(n) => n.poll_command().map(|(s, c)| (Some(s), c)),
            Endpoint::Client { session, events } => {
                while let Some(e) = session.poll_event() {
                    events.push(e);
                }
                session.poll_command().map(|c| (None, c))
            }
        }
    }

    fn drain(&mut self, ep: usize) -> bool {
        let mut moved = false;
        while let Some((session, cmd)) = self.next_command(ep) {
            moved = true;
            let Some((link, side)) = self.link_of(End { ep, session }) else { continue };
            let other = 1 - side;
            let l = &mut self.links[link];
            match cmd {
                Command::Open { id, .. } => {
                    let pid = StreamId::remote(l.next_remote[other], id.is_uni());
                    l.next_remote[other] += 1;
                    l.map[side].insert(id, pid);
                    l.map[other].insert(pid, id);
                    self.pending.push_back((link, other, TransportEvent::StreamOpened(pid)));
                }
                Command::Transmit(id) => self.pull(link, side, id),
                Command::Reset { id, code } => {
                    if let Some(&pid) = l.map[side].get(&id) {
                        self.pending.push_back((link, other, TransportEvent::StreamReset { id: pid, code }));
                    }
                }
                Command::StopSending { id, code } => {
                    if let Some(&pid) = l.map[side].get(&id) {
                        self.pending.push_back((link, other, TransportEvent::StopSending { id: pid, code }));
                    }
                }
                Command::SetPriority { .. } => {}
                Command::SendDatagram(d) => self.pending.push_back((link, other, TransportEvent::Datagram(d))),
                Command::Close { code, reason } => {
                    self.pending.push_back((link, other, TransportEvent::Closed { code, reason }));
                }
            }
        }
        if let Endpoint::Client { session, events } = &mut self.endpoints[ep] {
            while let Some(e) = session.poll_event() {
                events.push(e);
                moved = true;
            }
        }
        moved
    }

    fn pull(&mut self, link: usize, side: usize, id: StreamId) {
        if self.links[link].hold[side] {
            return;
        }
        let end = self.links[link].ends[side];
        let Some(&pid) = self.links[link].map[side].get(&id) else { return };
        let (data, fin) = {
            let chunks = match &self.endpoints[end.ep] {
                Endpoint::Node(n) => n.send_chunks(end.session.unwrap(), id),
                Endpoint::Client { session, .. } => session.send_chunks(id),
            };
            let Some((chunks, fin)) = chunks else { return };
            let mut data = Vec::new();
            for c in chunks {
                data.extend_from_slice(c);
            }
            (data, fin)
        };
        let n = data.len();
        match &mut self.endpoints[end.ep] {
            Endpoint::Node(node) => node.advance_send(end.session.unwrap(), id, n, fin),
            Endpoint::Client { session, .. } => session.advance_send(id, n, fin),
        }
        self.pending.push_back((link, 1 - side, TransportEvent::StreamData { id: pid, data: Bytes::from(data), fin }));
        // More may be queued behind this contiguous run.
        self.pending.push_back((link, side, TransportEvent::Writable(id)));
    }
}
