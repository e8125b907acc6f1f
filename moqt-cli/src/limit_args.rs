//! `moqt relay`'s limit flags and the `[relay.limits]` table of the configuration file: one
//! field per bound in the system (see docs/limits.md), each optional so the flag overrides the
//! file and the file overrides the default. Sizes take a number of bytes or a suffix (`64KiB`,
//! `4MiB`, `1GiB`, also `kB`/`MB`/`GB`); durations are seconds (fractions allowed).

use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use moqt_driver_quinn::limits::{Admission, QuicLimits};
use moqt_proto::coding::Limits;
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::SessionLimits;
use serde::Deserialize;

use crate::http::HttpLimits;

/// A byte count: `1048576`, `1MiB`, `512KiB`, `2MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}: expected e.g. 1048576 or 4MiB"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            other => return Err(format!("unknown size unit {other:?} in {s:?} (KiB, MiB, GiB, kB, MB, GB)")),
        };
        n.checked_mul(mult).map(Size).ok_or_else(|| format!("size {s:?} too large"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Size(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Size {
    fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    if !(s.is_finite() && s >= 0.0) {
        bail!("{what}: {s} is not a number of seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

/// Every configurable bound; `None` keeps the default.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Limits (docs/limits.md; sizes like 4MiB, times in seconds)")]
pub struct LimitArgs {
    /// QUIC: bytes the peer may send on one stream ahead of our reads [default: 1MiB].
    #[arg(long)]
    pub quic_stream_window: Option<Size>,
    /// QUIC: bytes the peer may send on a connection ahead of our reads [default: 4MiB].
    #[arg(long)]
    pub quic_receive_window: Option<Size>,
    /// QUIC: unacknowledged bytes quinn holds for sending per connection [default: 2MiB].
    #[arg(long)]
    pub quic_send_window: Option<Size>,
    /// QUIC: concurrent unidirectional streams a peer may open [default: 1024].
    #[arg(long)]
    pub quic_max_uni_streams: Option<u32>,
    /// QUIC: concurrent bidirectional streams a peer may open [default: 256].
    #[arg(long)]
    pub quic_max_bidi_streams: Option<u32>,
    /// QUIC: datagram bytes buffered each way per connection [default: 256KiB].
    #[arg(long)]
    pub quic_datagram_buffer: Option<Size>,
    /// Seconds without a packet before a connection is dropped [default: 10].
    #[arg(long)]
    pub idle_timeout: Option<f64>,
    /// Sessions at once, node-wide [default: 10000].
    #[arg(long)]
    pub max_sessions: Option<usize>,
    /// Sessions at once from one address (IPv6: per /64) [default: 256].
    #[arg(long)]
    pub max_sessions_per_address: Option<usize>,
    /// Handshakes in progress at once [default: 256].
    #[arg(long)]
    pub max_handshakes: Option<usize>,
    /// Seconds a QUIC + WebTransport handshake may take [default: 10].
    #[arg(long)]
    pub handshake_timeout: Option<f64>,
    /// Undecoded received bytes, all sessions together [default: 256MiB].
    #[arg(long)]
    pub max_recv_buffered: Option<Size>,
    /// Bytes in group caches, all tracks together [default: 256MiB].
    #[arg(long)]
    pub max_cache_bytes: Option<Size>,
    /// Bytes cached for one track, open groups included [default: 32MiB].
    #[arg(long)]
    pub cache_max_track_bytes: Option<Size>,
    /// Bytes in one group; a bigger group is cut with GROUP_TOO_LARGE [default: 16MiB].
    #[arg(long)]
    pub cache_max_group_bytes: Option<Size>,
    /// Seconds a non-latest group stays cached [default: 5].
    #[arg(long)]
    pub cache_retention: Option<f64>,
    /// Broadcasts the relay knows at once [default: 65536].
    #[arg(long)]
    pub max_broadcasts: Option<usize>,
    /// Seconds an upstream fetch or TRACK request may take [default: 10].
    #[arg(long)]
    pub request_timeout: Option<f64>,
    /// Seconds a track whose upstream was lost waits for another route [default: 5].
    #[arg(long)]
    pub failover_grace: Option<f64>,
    /// Seconds an upstream subscription outlives its last subscriber [default: 2].
    #[arg(long)]
    pub linger: Option<f64>,
    /// Subscriptions that may wait for a broadcast's track to appear [default: 64].
    #[arg(long)]
    pub max_waiting_per_broadcast: Option<usize>,
    /// Seconds such a subscription waits before NOT_FOUND [default: 10].
    #[arg(long)]
    pub track_request_timeout: Option<f64>,
    /// Largest frame accepted [default: 32MiB].
    #[arg(long)]
    pub max_frame_size: Option<Size>,
    /// Per session: undecoded received bytes [default: 32MiB].
    #[arg(long)]
    pub session_max_recv_buffered: Option<Size>,
    /// Per session: seconds a partial message may stall before its stream is reset [default: 10].
    #[arg(long)]
    pub session_partial_timeout: Option<f64>,
    /// Per session: bytes queued for sending before the oldest groups drop [default: 32MiB].
    #[arg(long)]
    pub session_max_queued: Option<Size>,
    /// Per session: bytes queued for one subscription [default: 4MiB].
    #[arg(long)]
    pub session_max_queued_per_subscription: Option<Size>,
    /// Per session: bytes queued on one control stream before it is reset [default: 4MiB].
    #[arg(long)]
    pub session_max_queued_control: Option<Size>,
    /// Per session: streams the peer may have open [default: 10000].
    #[arg(long)]
    pub session_max_streams: Option<usize>,
    /// Per session: subscriptions the peer may hold [default: 1024].
    #[arg(long)]
    pub session_max_subscriptions: Option<usize>,
    /// Per session: subscriptions the relay may hold with the peer [default: 1024].
    #[arg(long)]
    pub session_max_outgoing_subscriptions: Option<usize>,
    /// Per session: announce interests the peer may hold [default: 64].
    #[arg(long)]
    pub session_max_announce_interests: Option<usize>,
    /// Per session: broadcasts the peer may announce [default: 16384].
    #[arg(long)]
    pub session_max_announced: Option<usize>,
    /// Datagrams one connection may have waiting for the relay; more are dropped [default: 256].
    #[arg(long)]
    pub max_queued_datagrams: Option<usize>,
    /// HTTP connections at once [default: 1024].
    #[arg(long)]
    pub http_max_connections: Option<usize>,
    /// HTTP connections at once from one address [default: 64].
    #[arg(long)]
    pub http_max_connections_per_address: Option<usize>,
    /// Seconds for an HTTP request head to arrive [default: 10].
    #[arg(long)]
    pub http_header_timeout: Option<f64>,
    /// Largest HTTP request head [default: 16KiB].
    #[arg(long)]
    pub http_max_header_bytes: Option<Size>,
}

/// The limits of every layer, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub quic: QuicLimits,
    pub admission: Admission,
    pub handshake_timeout: Duration,
    pub node: NodeConfig,
    pub session: SessionLimits,
    pub coding: Limits,
    pub max_queued_datagrams: usize,
    pub http: HttpLimits,
}

macro_rules! merge_fields {
    ($a:ident, $b:ident, $($f:ident),* $(,)?) => { $( $a.$f = $a.$f.or($b.$f); )* };
}

impl LimitArgs {
    /// Fills unset flags from the file.
    pub fn merge(mut self, file: LimitArgs) -> LimitArgs {
        merge_fields!(
            self,
            file,
            quic_stream_window,
            quic_receive_window,
            quic_send_window,
            quic_max_uni_streams,
            quic_max_bidi_streams,
            quic_datagram_buffer,
            idle_timeout,
            max_sessions,
            max_sessions_per_address,
            max_handshakes,
            handshake_timeout,
            max_recv_buffered,
            max_cache_bytes,
            cache_max_track_bytes,
            cache_max_group_bytes,
            cache_retention,
            max_broadcasts,
            request_timeout,
            failover_grace,
            linger,
            max_waiting_per_broadcast,
            track_request_timeout,
            max_frame_size,
            session_max_recv_buffered,
            session_partial_timeout,
            session_max_queued,
            session_max_queued_per_subscription,
            session_max_queued_control,
            session_max_streams,
            session_max_subscriptions,
            session_max_outgoing_subscriptions,
            session_max_announce_interests,
            session_max_announced,
            max_queued_datagrams,
            http_max_connections,
            http_max_connections_per_address,
            http_header_timeout,
            http_max_header_bytes,
        );
        self
    }

    /// Applies the set values over the defaults of every layer.
    pub fn resolve(&self) -> Result<Resolved> {
        let mut quic = QuicLimits::default();
        if let Some(v) = self.quic_stream_window {
            quic.stream_receive_window = v.0;
        }
        if let Some(v) = self.quic_receive_window {
            quic.receive_window = v.0;
        }
        if let Some(v) = self.quic_send_window {
            quic.send_window = v.0;
        }
        if let Some(v) = self.quic_max_uni_streams {
            quic.max_concurrent_uni_streams = v;
        }
        if let Some(v) = self.quic_max_bidi_streams {
            quic.max_concurrent_bidi_streams = v;
        }
        if let Some(v) = self.quic_datagram_buffer {
            quic.datagram_receive_buffer = v.usize();
            quic.datagram_send_buffer = v.usize();
        }
        if let Some(v) = self.idle_timeout {
            quic.idle_timeout = secs(v, "--idle-timeout")?;
        }
        let mut admission = Admission::default();
        if let Some(v) = self.max_sessions {
            admission.max_sessions = v;
        }
        if let Some(v) = self.max_sessions_per_address {
            admission.max_sessions_per_address = v;
        }
        if let Some(v) = self.max_handshakes {
            admission.max_handshakes = v;
        }
        let handshake_timeout = secs(self.handshake_timeout.unwrap_or(10.0), "--handshake-timeout")?;
        let mut node = NodeConfig::default();
        if let Some(v) = self.max_recv_buffered {
            node.max_recv_buffered = v.usize();
        }
        if let Some(v) = self.max_cache_bytes {
            node.max_cache_bytes = v.usize();
        }
        if let Some(v) = self.cache_max_track_bytes {
            node.cache.max_track_bytes = v.usize();
        }
        if let Some(v) = self.cache_max_group_bytes {
            node.cache.max_group_bytes = v.usize();
        }
        if let Some(v) = self.cache_retention {
            node.cache.retention = secs(v, "--cache-retention")?;
        }
        if let Some(v) = self.max_broadcasts {
            node.max_broadcasts = v;
        }
        if let Some(v) = self.request_timeout {
            node.request_timeout = secs(v, "--request-timeout")?;
        }
        if let Some(v) = self.failover_grace {
            node.failover_grace = secs(v, "--failover-grace")?;
        }
        if let Some(v) = self.linger {
            node.linger = secs(v, "--linger")?;
        }
        if let Some(v) = self.max_waiting_per_broadcast {
            node.max_waiting_per_broadcast = v;
        }
        if let Some(v) = self.track_request_timeout {
            node.track_request_timeout = secs(v, "--track-request-timeout")?;
        }
        let mut coding = Limits::default();
        if let Some(v) = self.max_frame_size {
            coding.max_frame_size = v.0;
        }
        let mut session = SessionLimits::default();
        if let Some(v) = self.session_max_recv_buffered {
            session.max_recv_buffered = v.usize();
        }
        if let Some(v) = self.session_partial_timeout {
            session.partial_timeout = secs(v, "--session-partial-timeout")?;
        }
        if let Some(v) = self.session_max_queued {
            session.max_queued = v.usize();
        }
        if let Some(v) = self.session_max_queued_per_subscription {
            session.max_queued_per_subscription = v.usize();
        }
        if let Some(v) = self.session_max_queued_control {
            session.max_queued_control = v.usize();
        }
        if let Some(v) = self.session_max_streams {
            session.max_streams = v;
        }
        if let Some(v) = self.session_max_subscriptions {
            session.max_subscriptions = v;
        }
        if let Some(v) = self.session_max_outgoing_subscriptions {
            session.max_outgoing_subscriptions = v;
        }
        if let Some(v) = self.session_max_announce_interests {
            session.max_announce_interests = v;
        }
        if let Some(v) = self.session_max_announced {
            session.max_announced = v;
        }
        let mut http = HttpLimits::default();
        if let Some(v) = self.http_max_connections {
            http.max_connections = v;
        }
        if let Some(v) = self.http_max_connections_per_address {
            http.max_connections_per_address = v;
        }
        if let Some(v) = self.http_header_timeout {
            http.header_timeout = secs(v, "--http-header-timeout")?;
        }
        if let Some(v) = self.http_max_header_bytes {
            http.max_header_bytes = v.usize();
        }
        Ok(Resolved {
            quic,
            admission,
            handshake_timeout,
            node,
            session,
            coding,
            max_queued_datagrams: self.max_queued_datagrams.unwrap_or(256),
            http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!("1048576".parse(), Ok(Size(1 << 20)));
        assert_eq!("4MiB".parse(), Ok(Size(4 << 20)));
        assert_eq!("64 KiB".parse(), Ok(Size(64 << 10)));
        assert_eq!("2MB".parse(), Ok(Size(2_000_000)));
        assert!("4 parsecs".parse::<Size>().is_err());
        assert!("MiB".parse::<Size>().is_err());
        assert!("99999999999GiB".parse::<Size>().is_err());
    }

    #[test]
    fn the_file_fills_what_flags_leave_unset_and_resolves_over_defaults() {
        let file: LimitArgs = toml::from_str(
            "max_sessions = 5\nquic_receive_window = \"1MiB\"\nidle_timeout = 2.5\nmax_cache_bytes = 1000",
        )
        .unwrap();
        let flags = LimitArgs { max_sessions: Some(7), ..LimitArgs::default() };
        let r = flags.merge(file).resolve().unwrap();
        assert_eq!(r.admission.max_sessions, 7);
        assert_eq!(r.quic.receive_window, 1 << 20);
        assert_eq!(r.quic.idle_timeout, Duration::from_millis(2500));
        assert_eq!(r.node.max_cache_bytes, 1000);
        assert_eq!(r.session, SessionLimits::default());
        assert!(toml::from_str::<LimitArgs>("max_sesions = 5").is_err(), "typos are refused");
        assert!(LimitArgs { idle_timeout: Some(-1.0), ..LimitArgs::default() }.resolve().is_err());
    }
}

#[cfg(test)]
mod defaults {
    use clap::{CommandFactory, Parser};

    use crate::cli::{Cli, Command};

    fn resolved(argv: &[&str]) -> String {
        let Command::Relay(args) = Cli::try_parse_from(argv).unwrap().command else { unreachable!() };
        format!("{:?}", args.limits.resolve().unwrap())
    }

    /// Every `[default: X]` in a limit flag's help is the real default: passing X changes nothing.
    #[test]
    fn help_defaults_are_the_real_defaults() {
        let cli = Cli::command();
        let relay = cli.find_subcommand("relay").unwrap();
        let plain = resolved(&["moqt", "relay"]);
        let mut checked = 0;
        for arg in relay.get_arguments().filter(|a| a.get_help_heading().is_some_and(|h| h.starts_with("Limits"))) {
            let help = arg.get_help().unwrap().to_string();
            let value = help.rsplit("[default: ").next().and_then(|v| v.strip_suffix(']')).expect(&help);
            let flag = format!("--{}", arg.get_long().unwrap());
            assert_eq!(resolved(&["moqt", "relay", &flag, value]), plain, "{flag} {value}: help says the default");
            checked += 1;
        }
        assert!(checked >= 35, "{checked} limit flags");
    }
}
