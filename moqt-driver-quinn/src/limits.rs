//! Transport-level bounds of a server: quinn's per-connection buffers and stream limits
//! ([`QuicLimits`]), who may hold a session ([`Admission`]), and counters of what was refused
//! ([`ListenerStats`]). The reasoning behind each default is in `docs/limits.md`.
//!
//! This module owns the admission bookkeeping only; the [`crate::transport`] accept loop applies
//! it. It never parses moq-lite.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::connection::StreamCredit;

/// quinn's buffers and stream limits for every connection of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicLimits {
    /// Bytes the peer may send on one stream beyond what we have read (default 1 MiB).
    pub stream_receive_window: u64,
    /// Bytes the peer may send on all streams together beyond what we have read (default
    /// 4 MiB; quinn's own default is unlimited).
    pub receive_window: u64,
    /// Bytes quinn holds unacknowledged for sending on one connection, all streams together
    /// (default 2 MiB; quinn's default is 10 MB). Data past it waits in the core, where the
    /// queue budgets and max-latency expiry see it.
    pub send_window: u64,
    /// Unidirectional streams the peer may have open at once (default 1024).
    pub max_concurrent_uni_streams: u32,
    /// Bidirectional streams the peer may have open at once (default 256).
    pub max_concurrent_bidi_streams: u32,
    /// A connection with no packet from the peer for this long is closed (default 10 s); the
    /// negotiated value is the smaller of both sides'. Keep-alives go out every third of it.
    pub idle_timeout: Duration,
    /// Incoming datagram bytes quinn buffers before it drops the oldest (default 256 KiB).
    pub datagram_receive_buffer: usize,
    /// Outgoing datagram bytes quinn buffers before it drops the oldest (default 256 KiB).
    pub datagram_send_buffer: usize,
}

impl Default for QuicLimits {
    fn default() -> Self {
        Self {
            stream_receive_window: 1 << 20,
            receive_window: 4 << 20,
            send_window: 2 << 20,
            max_concurrent_uni_streams: 1024,
            max_concurrent_bidi_streams: 256,
            idle_timeout: Duration::from_secs(10),
            datagram_receive_buffer: 256 << 10,
            datagram_send_buffer: 256 << 10,
        }
    }
}

/// The unidirectional stream limit a server connection starts with (it grows with use up to
/// [`QuicLimits::max_concurrent_uni_streams`]; see [`StreamCredit`]).
pub const INITIAL_UNI_STREAMS: u32 = 64;
/// The bidirectional stream limit a server connection starts with.
pub const INITIAL_BIDI_STREAMS: u32 = 32;

/// The largest value a QUIC variable-length integer holds.
const VARINT_MAX: u64 = (1 << 62) - 1;

impl QuicLimits {
    /// The quinn transport configuration with these limits.
    pub fn transport_config(&self) -> quinn::TransportConfig {
        let varint = |v: u64| quinn::VarInt::from_u64(v.min(VARINT_MAX)).unwrap_or(quinn::VarInt::MAX);
        let mut t = quinn::TransportConfig::default();
        let idle = self.idle_timeout.max(Duration::from_millis(100));
        let idle_ms = varint(idle.as_millis().min(u128::from(VARINT_MAX)) as u64);
        t.max_idle_timeout(Some(quinn::IdleTimeout::from(idle_ms)));
        t.keep_alive_interval(Some(idle / 3));
        t.stream_receive_window(varint(self.stream_receive_window));
        t.receive_window(varint(self.receive_window.max(self.stream_receive_window)));
        t.send_window(self.send_window);
        t.max_concurrent_uni_streams(self.max_concurrent_uni_streams.into());
        t.max_concurrent_bidi_streams(self.max_concurrent_bidi_streams.into());
        t.datagram_receive_buffer_size(Some(self.datagram_receive_buffer));
        t.datagram_send_buffer_size(self.datagram_send_buffer);
        t
    }

    /// [`QuicLimits::transport_config`] for a server whose connections start at the initial
    /// stream limits and grow with use ([`QuicLimits::stream_credit`]): quinn allocates a slot
    /// for every stream the peer may open when the connection starts.
    pub fn server_transport_config(&self) -> quinn::TransportConfig {
        let credit = self.stream_credit();
        let mut t = self.transport_config();
        t.max_concurrent_uni_streams(credit.initial_uni.into());
        t.max_concurrent_bidi_streams(credit.initial_bidi.into());
        t
    }

    /// How a server connection's stream limits grow: from the initial limits (or the maximum,
    /// if lower) to the maximum.
    pub fn stream_credit(&self) -> StreamCredit {
        StreamCredit {
            initial_uni: INITIAL_UNI_STREAMS.min(self.max_concurrent_uni_streams),
            max_uni: self.max_concurrent_uni_streams,
            initial_bidi: INITIAL_BIDI_STREAMS.min(self.max_concurrent_bidi_streams),
            max_bidi: self.max_concurrent_bidi_streams,
        }
    }
}

/// Who may hold a session on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Sessions (established or handshaking) at once, node-wide (default 10000).
    pub max_sessions: usize,
    /// Sessions at once from one source address; IPv6 addresses count per /64 (default 256).
    pub max_sessions_per_address: usize,
    /// Handshakes in progress at once (default 256). Beyond, new connection attempts are
    /// refused statelessly (QUIC `CONNECTION_REFUSED`) before any cryptography is done.
    pub max_handshakes: usize,
}

impl Default for Admission {
    fn default() -> Self {
        Self { max_sessions: 10_000, max_sessions_per_address: 256, max_handshakes: 256 }
    }
}

/// Why a connection attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_handshakes` handshakes were already in progress.
    Handshakes,
    /// `max_sessions` sessions were open.
    Sessions,
    /// `max_sessions_per_address` sessions were open from the same address.
    PerAddress,
}

impl Refusal {
    /// The reason sent in CONNECTION_CLOSE (and the `reason` label in metrics).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Handshakes => "too many handshakes",
            Refusal::Sessions => "too many sessions",
            Refusal::PerAddress => "too many sessions from this address",
        }
    }

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Handshakes => "handshakes",
            Refusal::Sessions => "sessions",
            Refusal::PerAddress => "per_address",
        }
    }
}

/// The key sessions are counted under per source: the IPv4 address, or the /64 of an IPv6
/// address (one subscriber line usually gets a whole /64).
pub fn address_key(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V4(ip) => IpAddr::V4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = ip.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The live session table of one listener (owned by its accept task).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    limits: Admission,
    sessions: usize,
    handshakes: usize,
    per_address: FxHashMap<IpAddr, usize>,
}

impl Gate {
    pub(crate) fn new(limits: Admission) -> Gate {
        Gate { limits, ..Gate::default() }
    }

    /// Whether a new handshake may start at all.
    pub(crate) fn may_handshake(&self) -> bool {
        self.handshakes < self.limits.max_handshakes
    }

    /// Counts a handshake from `key` and says whether its session may be held.
    pub(crate) fn start(&mut self, key: IpAddr) -> Result<(), Refusal> {
        self.handshakes += 1;
        if self.sessions >= self.limits.max_sessions {
            return Err(Refusal::Sessions);
        }
        let n = self.per_address.entry(key).or_default();
        if *n >= self.limits.max_sessions_per_address {
            if *n == 0 {
                self.per_address.remove(&key);
            }
            return Err(Refusal::PerAddress);
        }
        *n += 1;
        self.sessions += 1;
        Ok(())
    }

    /// A handshake ended (successfully or not).
    pub(crate) fn handshake_done(&mut self) {
        self.handshakes = self.handshakes.saturating_sub(1);
    }

    /// An admitted session (or its failed handshake) is gone.
    pub(crate) fn release(&mut self, key: IpAddr) {
        self.sessions = self.sessions.saturating_sub(1);
        if let Some(n) = self.per_address.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&key);
            }
        }
    }

    pub(crate) fn sessions(&self) -> usize {
        self.sessions
    }

    pub(crate) fn handshakes(&self) -> usize {
        self.handshakes
    }
}

/// What a listener admitted and refused, for metrics. Gauges are current values; the rest only
/// grow.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Sessions admitted and not yet closed (gauge).
    pub sessions: AtomicU64,
    /// Handshakes in progress (gauge).
    pub handshakes: AtomicU64,
    /// Handshakes started.
    pub handshakes_total: AtomicU64,
    /// Handshakes that did not finish within the handshake timeout.
    pub handshakes_timed_out: AtomicU64,
    /// Handshakes that failed (TLS, ALPN, WebTransport refusal...).
    pub handshakes_failed: AtomicU64,
    /// Attempts refused over `max_handshakes`.
    pub refused_handshakes: AtomicU64,
    /// Sessions refused over `max_sessions`.
    pub refused_sessions: AtomicU64,
    /// Sessions refused over `max_sessions_per_address`.
    pub refused_per_address: AtomicU64,
}

impl ListenerStats {
    pub(crate) fn refused(&self, why: Refusal) {
        let c = match why {
            Refusal::Handshakes => &self.refused_handshakes,
            Refusal::Sessions => &self.refused_sessions,
            Refusal::PerAddress => &self.refused_per_address,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn gauges(&self, gate: &Gate) {
        self.sessions.store(gate.sessions() as u64, Ordering::Relaxed);
        self.handshakes.store(gate.handshakes() as u64, Ordering::Relaxed);
    }

    /// The refusal counter for one reason.
    pub fn refusals(&self, why: Refusal) -> u64 {
        match why {
            Refusal::Handshakes => &self.refused_handshakes,
            Refusal::Sessions => &self.refused_sessions,
            Refusal::PerAddress => &self.refused_per_address,
        }
        .load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> IpAddr {
        address_key(s.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        assert_eq!(key("[2001:db8:1:2:3:4:5:6]:1"), key("[2001:db8:1:2:ffff::1]:2"));
        assert_ne!(key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:3::1]:1"));
        assert_eq!(key("[::ffff:10.0.0.1]:5"), key("10.0.0.1:6"));
    }

    #[test]
    fn gate_refuses_past_each_limit_and_releases() {
        let mut g = Gate::new(Admission { max_sessions: 3, max_sessions_per_address: 2, max_handshakes: 2 });
        let (a, b) = (key("10.0.0.1:1"), key("10.0.0.2:1"));
        assert_eq!(g.start(a), Ok(()));
        assert_eq!(g.start(a), Ok(()));
        assert!(!g.may_handshake());
        assert_eq!(g.start(a), Err(Refusal::PerAddress));
        g.handshake_done();
        g.handshake_done();
        g.handshake_done();
        assert!(g.may_handshake());
        assert_eq!(g.start(b), Ok(()));
        assert_eq!(g.start(b), Err(Refusal::Sessions));
        g.release(a);
        assert_eq!(g.sessions(), 2);
        assert_eq!(g.start(a), Ok(()));
        for k in [a, a, b] {
            g.release(k);
        }
        assert_eq!(g.sessions(), 0);
        assert!(g.per_address.is_empty());
    }
}
