//! Deterministic network simulator: a quinn-proto client and server joined by an in-memory link.
//!
//! Owns: both `Endpoint`s and their one `Connection` each, the datagrams in flight, simulated time and a seeded
//! PRNG that decides per datagram whether it is dropped and how long it takes (`latency + uniform(0..=jitter)`,
//! so jitter reorders). Never does: sleep, read the clock after construction, or touch a socket.
//!
//! Same seed ⇒ same run: same delivery schedule, same counts, same simulated completion time. TLS randomness (key
//! shares, nonces) is not seeded, so the bytes on the wire differ between runs, but their sizes do not: the server
//! certificate uses Ed25519 (fixed-size, deterministic signatures) and a fixed serial number.
//!
//! Tests drive it through [`Peer`] (`sim.client()` / `sim.server()`, in [`super::sim_peer`]), which offers the stream-level operations a
//! moq-lite session adapter needs, plus an event queue per side ([`NetEvent`]). [`Sim::step`] advances time to the
//! next delivery or timer; [`Sim::run_until`] loops it.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use super::sim_peer::{Peer, StreamError};
use bytes::{Bytes, BytesMut};
use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, EcnCodepoint, Endpoint, EndpointConfig,
    Event, ServerConfig, StreamEvent, Transmit, TransportConfig,
};
pub use quinn_proto::{Dir, StreamId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Most datagrams asked of one `poll_transmit` (a GSO batch); the link splits batches by `segment_size`.
const MAX_GSO: usize = 10;

/// One end of the simulated connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Link properties, the same in both directions.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra one-way delay, uniform in `0..=jitter`, drawn per datagram (this reorders).
    pub jitter: Duration,
    /// Probability in `0.0..=1.0` that a datagram is dropped.
    pub loss: f64,
}

/// Everything that shapes a run.
#[derive(Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub link: Link,
    /// ALPN offered by the client and required by the server.
    pub alpn: Vec<u8>,
    /// Transport parameters for both sides; quinn-proto's defaults when `None`.
    pub transport: Option<Arc<TransportConfig>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            link: Link { latency: Duration::from_millis(10), jitter: Duration::ZERO, loss: 0.0 },
            alpn: b"moq-lite-05".to_vec(),
            transport: None,
        }
    }
}

/// Datagram counters for the whole link (both directions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub dropped: u64,
    pub delivered: u64,
    pub bytes_sent: u64,
    /// Hash over every delivery (time since start, direction, size), in order: equal hashes, equal schedules.
    pub schedule_hash: u64,
}

/// What a side hears from its connection, mapped from quinn-proto's `Event`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// The handshake completed.
    Connected,
    /// The peer opened a stream (already accepted; `id.dir()` tells uni or bidi).
    Opened { id: StreamId },
    /// Data, a fin or a reset may be waiting: call [`Peer::read`].
    Readable { id: StreamId },
    /// A write-blocked stream may accept more data.
    Writable { id: StreamId },
    /// A finished stream was fully acknowledged (or stopped).
    Finished { id: StreamId },
    /// The peer sent STOP_SENDING on one of our send streams.
    Stopped { id: StreamId, code: u64 },
    /// More streams of this direction may be opened.
    Available { dir: Dir },
    /// An unreliable datagram arrived.
    Datagram(Bytes),
    /// Datagrams that were blocked have been sent.
    DatagramsUnblocked,
    /// The connection is gone.
    Closed(ConnectionError),
}

/// splitmix64: small, seedable, good enough to decide drops and delays.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn seed32(&mut self) -> [u8; 32] {
        let mut out = [0; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// A datagram on the wire, ordered by delivery time then by send order.
struct InFlight {
    at: Instant,
    seq: u64,
    to: Side,
    ecn: Option<EcnCodepoint>,
    data: BytesMut,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The link: PRNG, datagrams in flight, counters.
struct Net {
    link: Link,
    rng: Rng,
    wire: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    stats: Stats,
}

impl Net {
    /// Sends one transmit (possibly a GSO batch) from `from`, datagram by datagram.
    fn send(&mut self, now: Instant, from: Side, t: &Transmit, buf: &[u8]) {
        let seg = t.segment_size.unwrap_or(t.size).max(1);
        for datagram in buf[..t.size].chunks(seg) {
            self.stats.sent += 1;
            self.stats.bytes_sent += datagram.len() as u64;
            // Always draw both numbers so the schedule depends only on the seed and the datagram count.
            let drop = self.rng.next_f64() < self.link.loss;
            let jitter = self.rng.next_u64() % (self.link.jitter.as_nanos() as u64 + 1);
            if drop {
                self.stats.dropped += 1;
                continue;
            }
            let at = now + self.link.latency + Duration::from_nanos(jitter);
            self.seq += 1;
            let data = BytesMut::from(datagram);
            self.wire.push(Reverse(InFlight { at, seq: self.seq, to: from.other(), ecn: t.ecn, data }));
        }
    }
}

/// One side: its endpoint, its connection once there is one, and its event queue.
pub(super) struct Node {
    pub(super) side: Side,
    addr: SocketAddr,
    endpoint: Endpoint,
    pub(super) conn: Option<(ConnectionHandle, Connection)>,
    pub(super) events: VecDeque<NetEvent>,
    buf: Vec<u8>,
}

impl Node {
    /// Runs everything the connection has ready: endpoint events, transmits, application events.
    fn drive(&mut self, now: Instant, net: &mut Net) {
        let Some((ch, conn)) = self.conn.as_mut() else { return };
        loop {
            let mut busy = false;
            while let Some(ev) = conn.poll_endpoint_events() {
                busy = true;
                if let Some(back) = self.endpoint.handle_event(*ch, ev) {
                    conn.handle_event(back);
                }
            }
            self.buf.clear();
            while let Some(t) = conn.poll_transmit(now, MAX_GSO, &mut self.buf) {
                busy = true;
                net.send(now, self.side, &t, &self.buf);
                self.buf.clear();
            }
            while let Some(ev) = conn.poll() {
                busy = true;
                map_event(conn, ev, &mut self.events);
            }
            if !busy {
                break;
            }
        }
    }

    /// Hands one datagram to the endpoint and routes the outcome.
    fn receive(&mut self, now: Instant, net: &mut Net, from: SocketAddr, pkt: InFlight) {
        self.buf.clear();
        match self.endpoint.handle(now, from, None, pkt.ecn, pkt.data, &mut self.buf) {
            Some(DatagramEvent::ConnectionEvent(ch, ev)) => match self.conn.as_mut() {
                Some((mine, conn)) if *mine == ch => conn.handle_event(ev),
                _ => {}
            },
            Some(DatagramEvent::NewConnection(incoming)) if self.conn.is_none() => {
                self.buf.clear();
                match self.endpoint.accept(incoming, now, &mut self.buf, None) {
                    Ok(accepted) => self.conn = Some(accepted),
                    Err(e) => {
                        if let Some(t) = e.response {
                            net.send(now, self.side, &t, &self.buf);
                        }
                    }
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => self.endpoint.ignore(incoming),
            Some(DatagramEvent::Response(t)) => net.send(now, self.side, &t, &self.buf),
            None => {}
        }
    }
}

fn map_event(conn: &mut Connection, ev: Event, out: &mut VecDeque<NetEvent>) {
    let mapped = match ev {
        Event::Connected => NetEvent::Connected,
        Event::ConnectionLost { reason } => NetEvent::Closed(reason),
        Event::DatagramReceived => {
            while let Some(d) = conn.datagrams().recv() {
                out.push_back(NetEvent::Datagram(d));
            }
            return;
        }
        Event::DatagramsUnblocked => NetEvent::DatagramsUnblocked,
        Event::HandshakeDataReady => return,
        Event::Stream(StreamEvent::Opened { dir }) => {
            while let Some(id) = conn.streams().accept(dir) {
                out.push_back(NetEvent::Opened { id });
            }
            return;
        }
        Event::Stream(StreamEvent::Readable { id }) => NetEvent::Readable { id },
        Event::Stream(StreamEvent::Writable { id }) => NetEvent::Writable { id },
        Event::Stream(StreamEvent::Finished { id }) => NetEvent::Finished { id },
        Event::Stream(StreamEvent::Stopped { id, error_code }) => NetEvent::Stopped { id, code: error_code.into() },
        Event::Stream(StreamEvent::Available { dir }) => NetEvent::Available { dir },
    };
    out.push_back(mapped);
}

/// Two endpoints, one connection, one simulated link.
pub struct Sim {
    epoch: Instant,
    now: Instant,
    net: Net,
    nodes: [Node; 2],
}

impl Sim {
    /// Builds both endpoints and starts the client's handshake (nothing is sent until the first `step`).
    pub fn new(cfg: SimConfig) -> Sim {
        let epoch = Instant::now(); // the only clock read: everything after is epoch + Duration
        let mut rng = Rng(cfg.seed);
        let (cert, key) = test_cert();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        tls.alpn_protocols = vec![cfg.alpn.clone()];
        let mut server_cfg = ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap()));

        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![cfg.alpn.clone()];
        let mut client_cfg = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));

        if let Some(t) = &cfg.transport {
            server_cfg.transport_config(t.clone());
            client_cfg.transport_config(t.clone());
        }

        let endpoint = |server: Option<ServerConfig>, rng: &mut Rng| {
            let mut ep = EndpointConfig::default();
            ep.rng_seed(Some(rng.seed32()));
            Endpoint::new(Arc::new(ep), server.map(Arc::new), true, None)
        };
        let client_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 5000));
        let server_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 4433));
        let mut client_ep = endpoint(None, &mut rng);
        let server_ep = endpoint(Some(server_cfg), &mut rng);
        let conn = client_ep.connect(epoch, client_cfg, server_addr, "localhost").unwrap();

        let node = |side, addr, endpoint, conn| Node {
            side,
            addr,
            endpoint,
            conn,
            events: VecDeque::new(),
            buf: Vec::with_capacity(64 * 1024),
        };
        Sim {
            epoch,
            now: epoch,
            net: Net { link: cfg.link, rng, wire: BinaryHeap::new(), seq: 0, stats: Stats::default() },
            nodes: [
                node(Side::Client, client_addr, client_ep, Some(conn)),
                node(Side::Server, server_addr, server_ep, None),
            ],
        }
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// The current simulated instant (to pass into a sans-IO core alongside the simulator).
    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn stats(&self) -> Stats {
        self.net.stats
    }

    /// Changes the link from now on (datagrams already in flight keep their schedule).
    pub fn set_link(&mut self, link: Link) {
        self.net.link = link;
    }

    pub fn peer(&mut self, side: Side) -> Peer<'_> {
        Peer { node: &mut self.nodes[side as usize], now: self.now }
    }

    pub fn client(&mut self) -> Peer<'_> {
        self.peer(Side::Client)
    }

    pub fn server(&mut self) -> Peer<'_> {
        self.peer(Side::Server)
    }

    /// Flushes both sides, advances time to the next delivery or timer and processes everything due then.
    /// Returns false when nothing is left: no datagram in flight and no timer armed.
    pub fn step(&mut self) -> bool {
        self.drive();
        let timers = self.nodes.iter_mut().filter_map(|n| n.conn.as_mut().and_then(|(_, c)| c.poll_timeout()));
        let next_packet = self.net.wire.peek().map(|p| p.0.at);
        let Some(next) = timers.chain(next_packet).min() else { return false };
        self.now = self.now.max(next);

        while self.net.wire.peek().is_some_and(|p| p.0.at <= self.now) {
            let Reverse(pkt) = self.net.wire.pop().unwrap();
            let stats = &mut self.net.stats;
            stats.delivered += 1;
            for x in [(pkt.at - self.epoch).as_nanos() as u64, pkt.to as u64, pkt.data.len() as u64] {
                stats.schedule_hash = (stats.schedule_hash ^ x).wrapping_mul(0x0100_0000_01b3);
                // FNV-1a style
            }
            let from = self.nodes[pkt.to.other() as usize].addr;
            self.nodes[pkt.to as usize].receive(self.now, &mut self.net, from, pkt);
        }
        for node in &mut self.nodes {
            if let Some((_, conn)) = node.conn.as_mut() {
                if conn.poll_timeout().is_some_and(|t| t <= self.now) {
                    conn.handle_timeout(self.now);
                }
            }
        }
        self.drive();
        true
    }

    /// The next instant something is due: a datagram arriving or a connection timer.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let timers = self.nodes.iter_mut().filter_map(|n| n.conn.as_mut().and_then(|(_, c)| c.poll_timeout()));
        let next_packet = self.net.wire.peek().map(|p| p.0.at);
        timers.chain(next_packet).min()
    }

    /// Moves time to `now` (never backwards), running every delivery and timer due on the way in
    /// order, and flushes both sides. Returns whether any datagram was delivered or timer fired.
    pub fn advance_to(&mut self, now: Instant) -> bool {
        let mut steps = 0u64;
        while self.next_deadline().is_some_and(|t| t <= now) {
            self.step();
            steps += 1;
            assert!(steps < 10_000_000, "the simulator does not advance past {:?}", self.elapsed());
        }
        self.now = self.now.max(now);
        self.drive();
        steps > 0
    }

    /// Steps until `done(self)` holds (true), or simulated time passes `limit` or nothing is left to do (false).
    /// `done` may also act (write, read, drain events): it runs before every step.
    pub fn run_until(&mut self, mut done: impl FnMut(&mut Sim) -> bool, limit: Duration) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if self.elapsed() > limit || !self.step() {
                return done(self);
            }
        }
    }

    fn drive(&mut self) {
        for node in &mut self.nodes {
            node.drive(self.now, &mut self.net);
        }
    }
}

/// A self-signed Ed25519 certificate for "localhost", made once per test binary.
fn test_cert() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    static CERT: OnceLock<(CertificateDer<'static>, Vec<u8>)> = OnceLock::new();
    let (cert, key) = CERT.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.serial_number = Some(1u64.into());
        let cert = params.self_signed(&key).unwrap();
        (cert.der().clone(), key.serialize_der())
    });
    (cert.clone(), PrivateKeyDer::Pkcs8(key.clone().into()))
}
