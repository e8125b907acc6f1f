//! [`Net`]: sessions and nodes joined by [`Wire`]s, driven by the one run loop of this crate
//! (the same polling order as the crate docs' loop): commands out to the wires, the wires
//! transmit, transport events in, application events collected. Time moves only when the test
//! says so, and [`Net::run`] gives up (panics) after a bounded number of rounds, so a livelock
//! fails a test instead of hanging it.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::wire::{Wire, WireOptions};
use crate::relay::{Node, NodeConfig, NodeEvent, SessionId};
use crate::session::{Command, Config, Event, Perspective, Session, TransportEvent};
use crate::Version;

/// The first endpoint of [`Net::pair`] (the client).
pub const A: usize = 0;
/// The second endpoint of [`Net::pair`] (the server).
pub const B: usize = 1;

/// Rounds [`Net::run`] allows before it declares a livelock.
pub const MAX_ROUNDS: usize = 1_000_000;

/// One endpoint of the network.
#[derive(Debug)]
pub enum Endpoint {
    /// A bare session (one connection).
    Session(Box<Session>),
    /// A node (any number of connections).
    Node(Box<Node>),
}

#[derive(Debug)]
struct Slot {
    endpoint: Endpoint,
    /// Session endpoints: the wire and side. Nodes: per session.
    link: Option<(usize, usize)>,
    links: FxHashMap<SessionId, (usize, usize)>,
    events: Vec<Event>,
    node_events: Vec<NodeEvent>,
    commands: Vec<Command>,
}

/// One end of a wire: an endpoint, and the node session if it is a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attachment {
    /// The endpoint index.
    pub endpoint: usize,
    /// The node's session for this wire.
    pub session: Option<SessionId>,
}

/// The network. See the module docs.
#[derive(Debug)]
pub struct Net {
    /// The current time.
    pub now: Instant,
    /// The version nodes' sessions speak.
    pub version: Version,
    slots: Vec<Slot>,
    wires: Vec<(Wire, [Attachment; 2])>,
    /// Whether every command is recorded (see [`Net::commands`]).
    pub record: bool,
}

impl Net {
    /// An empty network whose nodes speak `version`.
    pub fn new(version: Version) -> Self {
        Self { now: Instant::now(), version, slots: Vec::new(), wires: Vec::new(), record: true }
    }

    /// A client session ([`A`], hop id 0xA) connected to a server session ([`B`], hop id 0xB).
    pub fn pair(version: Version) -> Self {
        let mut a = Config::new(version, Perspective::Client);
        a.hop_id = 0xA;
        let mut b = Config::new(version, Perspective::Server);
        b.hop_id = 0xB;
        Self::pair_with(a, b, WireOptions::default())
    }

    /// Two sessions with these configurations, connected by a wire with these options.
    pub fn pair_with(a: Config, b: Config, opts: WireOptions) -> Self {
        let mut net = Self::new(a.version);
        let a = net.add_session(a);
        let b = net.add_session(b);
        net.connect(a, b, opts);
        net
    }

    fn push(&mut self, endpoint: Endpoint) -> usize {
        self.slots.push(Slot {
            endpoint,
            link: None,
            links: FxHashMap::default(),
            events: Vec::new(),
            node_events: Vec::new(),
            commands: Vec::new(),
        });
        self.slots.len() - 1
    }

    /// Adds a session endpoint (not yet connected).
    pub fn add_session(&mut self, config: Config) -> usize {
        let session = Session::new(config, self.now);
        self.push(Endpoint::Session(Box::new(session)))
    }

    /// Adds a node endpoint.
    pub fn add_node(&mut self, config: NodeConfig) -> usize {
        let node = Node::new(config, self.now);
        self.push(Endpoint::Node(Box::new(node)))
    }

    /// Connects `client` (dialling) to `server` (accepting) and runs the network. A session
    /// endpoint can be connected once; a node gets a new session per wire.
    pub fn connect(&mut self, client: usize, server: usize, opts: WireOptions) -> usize {
        let wire = self.wires.len();
        let ends =
            [self.attach(client, Perspective::Client, wire, 0), self.attach(server, Perspective::Server, wire, 1)];
        self.wires.push((Wire::new(opts), ends));
        self.run();
        wire
    }

    fn attach(&mut self, ep: usize, perspective: Perspective, wire: usize, side: usize) -> Attachment {
        let (now, version) = (self.now, self.version);
        let slot = &mut self.slots[ep];
        match &mut slot.endpoint {
            Endpoint::Session(_) => {
                assert!(slot.link.is_none(), "a session endpoint has one connection");
                slot.link = Some((wire, side));
                Attachment { endpoint: ep, session: None }
            }
            Endpoint::Node(node) => {
                let sid = node.add_session(Config::new(version, perspective), now);
                slot.links.insert(sid, (wire, side));
                Attachment { endpoint: ep, session: Some(sid) }
            }
        }
    }

    /// A session endpoint.
    pub fn session(&mut self, ep: usize) -> &mut Session {
        match &mut self.slots[ep].endpoint {
            Endpoint::Session(s) => s,
            Endpoint::Node(_) => panic!("endpoint {ep} is a node"),
        }
    }

    /// A node endpoint.
    pub fn node(&mut self, ep: usize) -> &mut Node {
        match &mut self.slots[ep].endpoint {
            Endpoint::Node(n) => n,
            Endpoint::Session(_) => panic!("endpoint {ep} is a session"),
        }
    }

    /// Takes the application events a session endpoint has received so far.
    pub fn events(&mut self, ep: usize) -> Vec<Event> {
        self.collect(ep);
        std::mem::take(&mut self.slots[ep].events)
    }

    /// Takes the events a node endpoint has reported so far.
    pub fn node_events(&mut self, ep: usize) -> Vec<NodeEvent> {
        self.collect(ep);
        std::mem::take(&mut self.slots[ep].node_events)
    }

    /// Takes the commands an endpoint has issued so far (when [`Net::record`] is set).
    pub fn commands(&mut self, ep: usize) -> Vec<Command> {
        std::mem::take(&mut self.slots[ep].commands)
    }

    /// A wire.
    pub fn wire(&mut self, wire: usize) -> &mut Wire {
        &mut self.wires[wire].0
    }

    /// Who is at each end of a wire.
    pub fn ends(&self, wire: usize) -> [Attachment; 2] {
        self.wires[wire].1
    }

    /// Feeds a transport event straight to a session endpoint (for byte-script tests).
    pub fn inject(&mut self, ep: usize, event: TransportEvent) {
        let now = self.now;
        self.session(ep).handle(now, event);
    }

    /// Closes a wire under both ends, as a lost path would, and runs the network.
    pub fn disconnect(&mut self, wire: usize, code: u64) {
        self.wires[wire].0.disconnect(code, "disconnected");
        self.run();
    }

    /// Advances time by `d`, runs every due timer, and runs the network.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        for slot in &mut self.slots {
            match &mut slot.endpoint {
                Endpoint::Session(s) => {
                    if s.poll_timeout().is_some_and(|t| t <= now) {
                        s.handle_timeout(now);
                    }
                }
                Endpoint::Node(n) => {
                    if n.poll_timeout().is_some_and(|t| t <= now) {
                        n.handle_timeout(now);
                    }
                }
            }
        }
        self.run();
    }

    /// Runs until nothing moves: every command executed, every byte transmitted and read.
    pub fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.round() {
                return;
            }
        }
        panic!("the network did not settle within {MAX_ROUNDS} rounds");
    }

    /// One round of the loop; returns whether anything moved.
    pub fn round(&mut self) -> bool {
        let mut moved = false;
        for ep in 0..self.slots.len() {
            moved |= self.flush(ep);
        }
        for (wire, _) in &mut self.wires {
            moved |= wire.transmit();
        }
        for w in 0..self.wires.len() {
            for side in [0, 1] {
                while let Some(event) = self.wires[w].0.poll_event(side) {
                    moved = true;
                    let at = self.wires[w].1[side];
                    let now = self.now;
                    match &mut self.slots[at.endpoint].endpoint {
                        Endpoint::Session(s) => s.handle(now, event),
                        Endpoint::Node(n) => n.handle(at.session.expect("node attachment"), now, event),
                    }
                }
            }
        }
        moved
    }

    /// Executes an endpoint's commands on its wires; returns whether there were any.
    fn flush(&mut self, ep: usize) -> bool {
        let mut moved = false;
        let Self { slots, wires, record, .. } = self;
        let slot = &mut slots[ep];
        loop {
            let (cmd, link) = match &mut slot.endpoint {
                Endpoint::Session(s) => match s.poll_command() {
                    Some(cmd) => (cmd, slot.link),
                    None => break,
                },
                Endpoint::Node(n) => match n.poll_command() {
                    Some((sid, cmd)) => (cmd, slot.links.get(&sid).copied()),
                    None => break,
                },
            };
            moved = true;
            if *record {
                slot.commands.push(cmd.clone());
            }
            if let Some((wire, side)) = link {
                wires[wire].0.execute(side, cmd);
            }
        }
        self.collect(ep);
        moved
    }

    fn collect(&mut self, ep: usize) {
        let slot = &mut self.slots[ep];
        match &mut slot.endpoint {
            Endpoint::Session(s) => slot.events.extend(std::iter::from_fn(|| s.poll_event())),
            Endpoint::Node(n) => slot.node_events.extend(std::iter::from_fn(|| n.poll_event())),
        }
    }
}
