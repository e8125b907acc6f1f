//! [`Net`]: sessions and nodes joined by [`Link`]s (by default [`Wire`]s), driven by the one run
//! loop of this crate, in the polling order of the crate docs' loop: each endpoint's commands out
//! to its links, the links transmit, transport events in, application events collected.
//!
//! Time moves only when the test says so ([`Net::advance`] / [`Net::advance_to`]), stepping
//! through every endpoint timer and every link deadline on the way. [`Net::run`] gives up
//! (panics) after [`Net::max_rounds`] rounds, so a livelock fails a test instead of hanging it,
//! and it fails the test on any breach of the driver contract a link saw (see [`Net::strict`]).
//!
//! An endpoint can also be a scripted [`Endpoint::Peer`]: nothing reads its side of a link, and
//! the test plays it byte by byte through the [`Wire`]'s raw API.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::link::Link;
use super::wire::{Wire, WireOptions};
use crate::relay::{Node, NodeConfig, NodeEvent, SessionId};
use crate::session::{Command, Config, Event, Perspective, Session, StreamId, TransportEvent};
use crate::Version;

/// The first endpoint of [`Net::pair`] (the client), also side 0 of its wire.
pub const A: usize = 0;
/// The second endpoint of [`Net::pair`] (the server), also side 1 of its wire.
pub const B: usize = 1;

/// Rounds [`Net::run`] allows by default before it declares a livelock.
pub const MAX_ROUNDS: usize = 1_000_000;

/// One endpoint of the network.
#[derive(Debug)]
pub enum Endpoint {
    /// A bare session (one connection).
    Session(Box<Session>),
    /// A node (any number of connections).
    Node(Box<Node>),
    /// A scripted peer: the test plays its side of each link through the link's raw API.
    Peer,
}

#[derive(Debug)]
struct Slot {
    endpoint: Endpoint,
    /// Session endpoints: the link and side.
    link: Option<(usize, usize)>,
    /// Node endpoints: the link and side of each session.
    links: FxHashMap<SessionId, (usize, usize)>,
    events: Vec<Event>,
    node_events: Vec<NodeEvent>,
    commands: Vec<Command>,
}

/// One end of a link: an endpoint, and the node session if it is a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attachment {
    /// The endpoint index.
    pub endpoint: usize,
    /// The node's session for this link.
    pub session: Option<SessionId>,
}

/// The run loop went round [`Net::max_rounds`] times without settling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Livelock {
    /// The rounds it ran.
    pub rounds: usize,
}

/// The network. See the module docs.
#[derive(Debug)]
pub struct Net {
    /// The current time.
    pub now: Instant,
    /// The version nodes' sessions speak (read when a node gets a new connection).
    pub version: Version,
    slots: Vec<Slot>,
    links: Vec<(Box<dyn Link>, [Attachment; 2])>,
    /// Whether every command is recorded (see [`Net::commands`]); off for benchmarks.
    pub record: bool,
    /// Rounds [`Net::run`] allows before it declares a livelock.
    pub max_rounds: usize,
    /// Whether [`Net::run`] fails on a breach of the driver contract (off only for harnesses
    /// that feed endpoints events no transport would produce).
    pub strict: bool,
}

impl Net {
    /// An empty network whose nodes speak `version`.
    pub fn new(version: Version) -> Self {
        Self {
            now: Instant::now(),
            version,
            slots: Vec::new(),
            links: Vec::new(),
            record: true,
            max_rounds: MAX_ROUNDS,
            strict: true,
        }
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

    /// A session ([`A`]) whose peer ([`B`]) is scripted by the test through wire 0's raw API.
    pub fn scripted(config: Config) -> Self {
        let mut net = Self::new(config.version);
        let a = net.add_session(config);
        let b = net.add_peer();
        net.connect(a, b, WireOptions::default());
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

    /// Adds a scripted peer endpoint.
    pub fn add_peer(&mut self) -> usize {
        self.push(Endpoint::Peer)
    }

    /// Connects `client` (dialling, side 0) to `server` (accepting, side 1) by a [`Wire`] and
    /// runs the network. A session endpoint can be connected once; a node gets a new session
    /// per link. Returns the link index.
    pub fn connect(&mut self, client: usize, server: usize, opts: WireOptions) -> usize {
        self.connect_link(client, server, Box::new(Wire::new(opts)))
    }

    /// [`Net::connect`] over any link.
    pub fn connect_link(&mut self, client: usize, server: usize, link: Box<dyn Link>) -> usize {
        let index = self.links.len();
        let ends =
            [self.attach(client, Perspective::Client, index, 0), self.attach(server, Perspective::Server, index, 1)];
        self.links.push((link, ends));
        self.run();
        index
    }

    fn attach(&mut self, ep: usize, perspective: Perspective, link: usize, side: usize) -> Attachment {
        let (now, version) = (self.now, self.version);
        let slot = &mut self.slots[ep];
        match &mut slot.endpoint {
            Endpoint::Session(_) => {
                assert!(slot.link.is_none(), "a session endpoint has one connection");
                slot.link = Some((link, side));
                Attachment { endpoint: ep, session: None }
            }
            Endpoint::Node(node) => {
                let sid = node.add_session(Config::new(version, perspective), now);
                slot.links.insert(sid, (link, side));
                Attachment { endpoint: ep, session: Some(sid) }
            }
            Endpoint::Peer => Attachment { endpoint: ep, session: None },
        }
    }

    /// A session endpoint.
    pub fn session(&mut self, ep: usize) -> &mut Session {
        match &mut self.slots[ep].endpoint {
            Endpoint::Session(s) => s,
            _ => panic!("endpoint {ep} is not a session"),
        }
    }

    /// A node endpoint.
    pub fn node(&mut self, ep: usize) -> &mut Node {
        match &mut self.slots[ep].endpoint {
            Endpoint::Node(n) => n,
            _ => panic!("endpoint {ep} is not a node"),
        }
    }

    /// The link and side a session endpoint is connected by.
    pub fn link_of(&self, ep: usize) -> (usize, usize) {
        self.slots[ep].link.unwrap_or_else(|| panic!("endpoint {ep} is not a connected session"))
    }

    /// Takes the application events a session endpoint has received so far.
    pub fn events(&mut self, ep: usize) -> Vec<Event> {
        self.collect(ep);
        std::mem::take(&mut self.slots[ep].events)
    }

    /// Moves the events a session endpoint has received into `out` (keeping both buffers'
    /// capacity, so that a steady-state loop does not allocate).
    pub fn events_into(&mut self, ep: usize, out: &mut Vec<Event>) {
        self.collect(ep);
        out.append(&mut self.slots[ep].events);
    }

    /// Takes the events a node endpoint has reported so far.
    pub fn node_events(&mut self, ep: usize) -> Vec<NodeEvent> {
        self.collect(ep);
        std::mem::take(&mut self.slots[ep].node_events)
    }

    /// [`Net::events_into`] for a node endpoint.
    pub fn node_events_into(&mut self, ep: usize, out: &mut Vec<NodeEvent>) {
        self.collect(ep);
        out.append(&mut self.slots[ep].node_events);
    }

    /// Takes the commands an endpoint has issued so far (when [`Net::record`] is set).
    pub fn commands(&mut self, ep: usize) -> Vec<Command> {
        std::mem::take(&mut self.slots[ep].commands)
    }

    /// The commands an endpoint has issued so far, without taking them.
    pub fn command_log(&self, ep: usize) -> &[Command] {
        &self.slots[ep].commands
    }

    /// A link that is a [`Wire`].
    pub fn wire(&mut self, link: usize) -> &mut Wire {
        self.link::<Wire>(link)
    }

    /// A link, as its concrete type.
    pub fn link<T: Link>(&mut self, link: usize) -> &mut T {
        self.links[link].0.as_any_mut().downcast_mut::<T>().expect("a link of this type")
    }

    /// Who is at each end of a link.
    pub fn ends(&self, link: usize) -> [Attachment; 2] {
        self.links[link].1
    }

    /// Feeds a transport event straight to a session endpoint, bypassing its link (for
    /// harnesses that test what no transport would produce).
    pub fn inject(&mut self, ep: usize, event: TransportEvent) {
        let now = self.now;
        self.session(ep).handle(now, event);
    }

    /// Opens a stream towards side `to` of a wire from its other side without that side's
    /// endpoint knowing, writes `data` (and FIN) on it, and runs the network. Returns the
    /// receiver's name for it.
    pub fn inject_stream_on(&mut self, link: usize, to: usize, uni: bool, data: &[u8], fin: bool) -> StreamId {
        let wire = self.wire(link);
        let (id, peer) = wire.open_raw(1 - to, uni);
        wire.write_raw(1 - to, id, data, fin);
        self.run();
        peer
    }

    /// [`Net::inject_stream_on`] towards a session endpoint.
    pub fn inject_stream(&mut self, ep: usize, uni: bool, data: &[u8], fin: bool) -> StreamId {
        let (link, side) = self.link_of(ep);
        self.inject_stream_on(link, side, uni, data, fin)
    }

    /// Closes a link under both ends, as a lost path would, and runs the network.
    pub fn disconnect(&mut self, link: usize, code: u64) {
        self.links[link].0.disconnect(code, "disconnected");
        self.run();
    }

    /// Advances time by `d` (see [`Net::advance_to`]).
    pub fn advance(&mut self, d: Duration) {
        self.advance_to(self.now + d);
    }

    /// Moves time to `deadline`, stopping at every endpoint timer and link deadline on the way
    /// to run what is due and let the network settle.
    pub fn advance_to(&mut self, deadline: Instant) {
        let mut stuck = 0;
        loop {
            self.run();
            match self.next_deadline() {
                Some(t) if t <= deadline => {
                    if t <= self.now {
                        stuck += 1;
                        assert!(stuck < self.max_rounds, "a timer stays due at {:?} and never fires", t);
                    } else {
                        stuck = 0;
                    }
                    self.now = self.now.max(t);
                    self.fire_timers();
                }
                _ => break,
            }
        }
        self.now = self.now.max(deadline);
        self.fire_timers();
        self.run();
    }

    /// The earliest endpoint timer or link deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let endpoints = self.slots.iter_mut().filter_map(|slot| match &mut slot.endpoint {
            Endpoint::Session(s) => s.poll_timeout(),
            Endpoint::Node(n) => n.poll_timeout(),
            Endpoint::Peer => None,
        });
        let endpoints = endpoints.min();
        let links = self.links.iter_mut().filter_map(|(l, _)| l.poll_timeout()).min();
        endpoints.into_iter().chain(links).min()
    }

    fn fire_timers(&mut self) {
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
                Endpoint::Peer => {}
            }
        }
    }

    /// Runs until nothing moves at the current time: every command executed, every byte that
    /// can cross transmitted and read. Panics on a livelock (see [`Net::try_run`]) and, when
    /// [`Net::strict`], on a breach of the driver contract.
    pub fn run(&mut self) {
        if let Err(Livelock { rounds }) = self.try_run() {
            panic!("the network did not settle within {rounds} rounds");
        }
    }

    /// Runs until nothing moves; returns the rounds it took, or [`Livelock`] after
    /// [`Net::max_rounds`]. Fails on a contract breach when [`Net::strict`].
    pub fn try_run(&mut self) -> Result<usize, Livelock> {
        for rounds in 0..self.max_rounds {
            if !self.round() {
                self.check_contract();
                return Ok(rounds);
            }
        }
        self.check_contract();
        Err(Livelock { rounds: self.max_rounds })
    }

    fn check_contract(&self) {
        if !self.strict {
            return;
        }
        for (i, (link, _)) in self.links.iter().enumerate() {
            let v = link.violations();
            assert!(v.is_empty(), "link {i}: driver contract breached:\n{}", v.join("\n"));
        }
    }

    /// One round of the loop; returns whether anything moved.
    pub fn round(&mut self) -> bool {
        let mut moved = false;
        for ep in 0..self.slots.len() {
            moved |= self.flush(ep);
        }
        let now = self.now;
        for (link, _) in &mut self.links {
            moved |= link.transmit(now);
        }
        for l in 0..self.links.len() {
            for side in [0, 1] {
                moved |= self.deliver(l, side);
            }
        }
        moved
    }

    /// Hands one link side's transport events to its endpoint, letting the endpoint answer
    /// (new read grants, writes) and polling again until the side is quiet, as a driver reading
    /// whatever its transport has would. Returns whether there were any events.
    fn deliver(&mut self, l: usize, side: usize) -> bool {
        let at = self.links[l].1[side];
        if matches!(self.slots[at.endpoint].endpoint, Endpoint::Peer) {
            return false;
        }
        let now = self.now;
        let mut moved = false;
        for _ in 0..self.max_rounds {
            let mut any = false;
            while let Some(event) = self.links[l].0.poll_event(side) {
                any = true;
                match &mut self.slots[at.endpoint].endpoint {
                    Endpoint::Session(s) => s.handle(now, event),
                    Endpoint::Node(n) => n.handle(at.session.expect("node attachment"), now, event),
                    Endpoint::Peer => unreachable!("checked above"),
                }
            }
            if !any {
                return moved;
            }
            moved = true;
            self.flush(at.endpoint);
        }
        moved
    }

    /// Executes an endpoint's commands on its links; returns whether there were any.
    fn flush(&mut self, ep: usize) -> bool {
        let mut moved = false;
        let Self { slots, links, record, .. } = self;
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
                Endpoint::Peer => break,
            };
            moved = true;
            if *record {
                slot.commands.push(cmd.clone());
            }
            if let Some((link, side)) = link {
                links[link].0.execute(side, cmd);
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
            Endpoint::Peer => {}
        }
    }
}
