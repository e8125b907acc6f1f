//! The Prometheus text exposition of the relay's counters: an [`Exposition`] builder and the
//! families for [`RelayStats`] (node, cache, every session limit) and [`ListenerStats`]
//! (admission). Every limit that can be hit has its own counter with HELP text; the list with
//! each limit's setting is in `docs/limits.md`.
//!
//! This module only formats numbers it is given; it gathers nothing itself.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::limits::{ListenerStats, Refusal};
use crate::relay::{RelayStats, CLOSE_CODES};

/// A Prometheus text-format (0.0.4) document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// An empty document.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP moqt_{name} {help}\n# TYPE moqt_{name} {kind}");
    }

    /// A counter `moqt_NAME` (the name should end in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, "counter");
        let _ = writeln!(self.text, "moqt_{name} {value}");
    }

    /// A gauge `moqt_NAME`.
    pub fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, "gauge");
        let _ = writeln!(self.text, "moqt_{name} {value}");
    }

    /// A counter family with one label: `moqt_NAME{LABEL="value"} n` per entry.
    pub fn counters(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        self.family(name, help, "counter");
        for (v, n) in values {
            let _ = writeln!(self.text, "moqt_{name}{{{label}=\"{v}\"}} {n}");
        }
    }

    /// A gauge family with one label: `moqt_NAME{LABEL="value"} n` per entry (label values are
    /// escaped as the text format requires).
    pub fn gauges(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        self.family(name, help, "gauge");
        for (v, n) in values {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let _ = writeln!(self.text, "moqt_{name}{{{label}=\"{v}\"}} {n}");
        }
    }

    /// The document.
    pub fn finish(self) -> String {
        self.text
    }
}

/// Writes the relay's families: traffic, budgets in use, and one counter per node and session
/// limit.
pub fn relay(out: &mut Exposition, s: &RelayStats) {
    let n = &s.node;
    out.gauge("sessions", "Sessions open.", n.sessions as u64);
    out.counter("sessions_total", "Sessions served since start.", s.sessions_total);
    let labels: Vec<(&str, u64)> =
        CLOSE_CODES.iter().map(|(_, label)| *label).chain(["other"]).zip(s.sessions_closed.iter().copied()).collect();
    out.counters(
        "sessions_closed_total",
        "Sessions ended, by close code (timeout: idle timeout, a peer that vanished; protocol_violation: \
         undecodable or over a decode limit; limit_exceeded: a session limit).",
        "code",
        &labels,
    );
    out.gauge("subscriptions", "Downstream subscriptions being served.", n.subscriptions as u64);
    out.gauge("upstream_subscriptions", "Upstream subscriptions held.", n.upstream_subscriptions as u64);
    out.counter("frames_in_total", "Frames received from publishers.", n.frames_in);
    out.counter("frames_out_total", "Frames queued to subscribers.", n.frames_out);
    out.counter("bytes_in_total", "Payload bytes received from publishers.", n.bytes_in);
    out.counter("bytes_out_total", "Payload bytes queued to subscribers.", n.bytes_out);
    out.counter("groups_dropped_total", "Subscriber groups dropped (expired, over budget, stopped).", n.groups_dropped);
    out.gauge("cache_bytes", "Bytes held in group caches (bounded by max_cache_bytes).", s.cache_bytes as u64);
    out.gauge(
        "recv_buffered_bytes",
        "Bytes received and not yet decoded, all sessions (bounded by the node's max_recv_buffered).",
        s.recv_buffered as u64,
    );
    out.gauge(
        "open_streams",
        "QUIC stream directions open across connections (a bidirectional stream counts twice).",
        s.open_streams as u64,
    );
    out.gauge("queued_bytes", "Bytes queued in sessions for sending, not yet handed to QUIC.", s.queued_bytes as u64);

    let moqt_proto::relay::AccessStats {
        announces_refused,
        forwards_refused,
        subscribes_refused,
        fetches_refused,
        track_infos_refused,
        interests_out_of_scope,
        sessions_expired,
        admissions_timed_out,
    } = n.access;
    out.counters(
        "access_refused_total",
        "Requests refused for lack of access, by request.",
        "request",
        &[
            ("announce", announces_refused),
            ("forward", forwards_refused),
            ("subscribe", subscribes_refused),
            ("fetch", fetches_refused),
            ("track", track_infos_refused),
            ("announce_interest", interests_out_of_scope),
        ],
    );
    out.counter("sessions_expired_total", "Sessions closed at the expiry of their access.", sessions_expired);
    out.counter("admissions_timed_out_total", "Sessions closed before any access was decided.", admissions_timed_out);

    // Destructured without `..`: a limit counter added to the core does not compile until it is
    // rendered here.
    let moqt_proto::relay::NodeLimitStats {
        broadcasts_refused,
        groups_cut,
        cache_evictions,
        fetches_too_large,
        requests_timed_out,
        track_requests_refused,
        recv_budget_exhausted,
        tracks_waiting_for_route,
        route_switches,
        routes_looped,
        routes_held_down,
    } = n.limits;
    out.counter(
        "broadcasts_refused_total",
        "Announcements ignored because the origin held max_broadcasts.",
        broadcasts_refused,
    );
    out.counter("groups_cut_total", "Groups cut (GROUP_TOO_LARGE) for passing max_group_bytes.", groups_cut);
    out.counter(
        "cache_evictions_total",
        "Cached groups evicted to stay within max_cache_bytes / max_track_bytes.",
        cache_evictions,
    );
    out.counter(
        "fetches_too_large_total",
        "Fetches refused because the response passed max_group_bytes.",
        fetches_too_large,
    );
    out.counter(
        "requests_timed_out_total",
        "Upstream fetches and TRACK requests that passed request_timeout.",
        requests_timed_out,
    );
    out.counter(
        "track_requests_refused_total",
        "Subscriptions refused: no local track in track_request_timeout, or max_waiting_per_broadcast.",
        track_requests_refused,
    );
    out.counter(
        "recv_budget_exhausted_total",
        "Times a session's reads were throttled because the node's max_recv_buffered was used up.",
        recv_budget_exhausted,
    );

    out.counter(
        "tracks_waiting_for_route_total",
        "Tracks that lost their upstream and waited (up to failover_grace) for another route.",
        tracks_waiting_for_route,
    );
    out.counter(
        "route_switches_total",
        "Upstream subscriptions made again over another route (failover, reconnection).",
        route_switches,
    );
    out.counter(
        "routes_looped_total",
        "Announcements dropped: their hop chain held this relay, or was longer than max_hops.",
        routes_looped,
    );
    out.counter(
        "routes_held_down_total",
        "Broadcasts withdrawn and held down because their only routes could not be proven loop-free.",
        routes_held_down,
    );
    let moqt_proto::session::SessionStats {
        streams_refused,
        subscriptions_refused,
        interests_refused,
        announcements_refused,
        reads_deferred,
        partial_timeouts,
        control_overflows,
        groups_over_budget,
        groups_expired,
    } = n.session_limits;
    out.counter("streams_refused_total", "Peer streams refused over max_streams.", streams_refused);
    out.counter(
        "subscriptions_refused_total",
        "Peer subscriptions refused over max_subscriptions.",
        subscriptions_refused,
    );
    out.counter(
        "interests_refused_total",
        "Peer announce interests refused over max_announce_interests.",
        interests_refused,
    );
    out.counter(
        "announcements_refused_total",
        "Announce interests dropped for announcing more than max_announced paths.",
        announcements_refused,
    );
    out.counter(
        "reads_deferred_total",
        "Read grants withheld because a session's max_recv_buffered (or its node share) was used up.",
        reads_deferred,
    );
    out.counter(
        "partial_timeouts_total",
        "Streams reset for holding a partial message longer than partial_timeout.",
        partial_timeouts,
    );
    out.counter(
        "control_overflows_total",
        "Control streams reset because the peer did not read them (max_queued_control).",
        control_overflows,
    );
    out.counter(
        "groups_over_budget_total",
        "Groups dropped to keep send queues within max_queued / max_queued_per_subscription.",
        groups_over_budget,
    );
    out.counter(
        "groups_expired_total",
        "Groups dropped for being older than the subscriber's max latency.",
        groups_expired,
    );
    out.counter(
        "datagrams_dropped_total",
        "Datagrams dropped because a connection's queue to the relay (max_queued_datagrams) was full.",
        s.datagrams_dropped,
    );
}

/// Writes the listener's admission families.
pub fn listener(out: &mut Exposition, s: &ListenerStats) {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    out.gauge("quic_connections", "QUIC connections admitted and not yet closed (max_sessions).", get(&s.sessions));
    out.gauge("handshakes", "QUIC/WebTransport handshakes in progress (max_handshakes).", get(&s.handshakes));
    out.counter("handshakes_total", "Handshakes started.", get(&s.handshakes_total));
    out.counter(
        "handshakes_timed_out_total",
        "Handshakes that did not finish within handshake_timeout.",
        get(&s.handshakes_timed_out),
    );
    out.counter(
        "handshakes_failed_total",
        "Handshakes that failed (TLS, ALPN, WebTransport).",
        get(&s.handshakes_failed),
    );
    let reasons = [Refusal::Handshakes, Refusal::Sessions, Refusal::PerAddress];
    let values: Vec<(&str, u64)> = reasons.iter().map(|r| (r.label(), s.refusals(*r))).collect();
    out.counters(
        "sessions_refused_total",
        "Connection attempts refused, by limit: handshakes (max_handshakes), sessions (max_sessions), \
         per_address (max_sessions_per_address).",
        "reason",
        &values,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_and_one_value() {
        let mut out = Exposition::new();
        let mut stats = RelayStats::default();
        stats.node.limits.groups_cut = 3;
        stats.node.session_limits.partial_timeouts = 7;
        relay(&mut out, &stats);
        let l = ListenerStats::default();
        l.refused(Refusal::PerAddress);
        listener(&mut out, &l);
        let text = out.finish();
        assert!(text.contains("moqt_groups_cut_total 3\n"), "{text}");
        assert!(text.contains("moqt_partial_timeouts_total 7\n"), "{text}");
        assert!(text.contains("moqt_sessions_refused_total{reason=\"per_address\"} 1\n"), "{text}");
        let mut names = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(names.insert(name.to_owned()), "{name} twice");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} has no TYPE");
            assert!(text.lines().any(|l| l.starts_with(name) && !l.starts_with('#')), "{name} has no sample");
        }
        assert!(names.len() >= 35, "{}", names.len());
    }
}
