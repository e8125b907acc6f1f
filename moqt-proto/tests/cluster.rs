//! Relay clusters on the in-memory rig: ten relays in a line, a star, a ring with chords and a
//! full mesh, one publisher, a subscriber on every relay, in every version. Announcements
//! converge to the shortest (cheapest) route; every group reaches every subscriber exactly once;
//! when a relay in the middle dies the others move to the next route without resetting their
//! subscribers; when it comes back it rejoins. lite-03 (no hop ids) stays loop-free through the
//! feasibility rule, and bad routes from a peer (loops, long chains, huge costs) are dropped or
//! ranked last.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use moqt_proto::message::{Hops, RouteCost};
use moqt_proto::relay::{NodeConfig, Source as RouteSource, TrackId};
use moqt_proto::session::{Config, Event, Perspective, SubscribeParams};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, SubscriptionId, Version};

const RELAYS: usize = 10;
/// A routing loop fails the test instead of hanging it.
const ROUND_CAP: usize = 200_000;

fn p(s: &str) -> Path {
    Path::new(s)
}

fn hop(i: usize) -> u64 {
    0x100 + i as u64
}

/// The shapes under test, as edge lists over relays `0..RELAYS`.
fn line() -> Vec<(usize, usize)> {
    (0..RELAYS - 1).map(|i| (i, i + 1)).collect()
}

fn star() -> Vec<(usize, usize)> {
    (1..RELAYS).map(|i| (0, i)).collect()
}

/// A ring with chords: several routes of different lengths between most pairs.
fn ring_mesh() -> Vec<(usize, usize)> {
    let mut edges: Vec<(usize, usize)> = (0..RELAYS).map(|i| (i, (i + 1) % RELAYS)).collect();
    edges.extend((0..RELAYS).step_by(2).map(|i| (i, (i + 3) % RELAYS)));
    edges
}

fn full_mesh() -> Vec<(usize, usize)> {
    (0..RELAYS).flat_map(|i| (i + 1..RELAYS).map(move |j| (i, j))).collect()
}

/// Hop distances from `from` over `edges` without the relays in `dead`.
fn distances(edges: &[(usize, usize)], from: &[usize], dead: &[usize]) -> Vec<Option<usize>> {
    let mut dist = vec![None; RELAYS];
    let mut queue = VecDeque::new();
    for &f in from {
        dist[f] = Some(0);
        queue.push_back(f);
    }
    while let Some(n) = queue.pop_front() {
        for &(a, b) in edges {
            let next = if a == n {
                b
            } else if b == n {
                a
            } else {
                continue;
            };
            if dead.contains(&next) || dist[next].is_some() {
                continue;
            }
            dist[next] = Some(dist[n].unwrap() + 1);
            queue.push_back(next);
        }
    }
    dist
}

/// A cluster: relays, the links between them, a publisher node and a subscriber per relay.
struct Cluster {
    net: Net,
    version: Version,
    edges: Vec<(usize, usize)>,
    relays: Vec<usize>,
    /// (edge index, link) of each relay-to-relay link.
    links: Vec<(usize, usize)>,
    publisher: usize,
    publisher_links: Vec<(usize, usize)>,
    track: TrackId,
    next_group: u64,
    /// Each relay's subscriber: endpoint, subscription, link (`None` once its relay died).
    subscribers: Vec<Option<(usize, SubscriptionId, usize)>>,
    /// Frames each subscriber received, by group: (count of GroupStarted, frames).
    received: Vec<BTreeMap<u64, (usize, Vec<Bytes>)>>,
}

impl Cluster {
    /// Builds the relays and links, the publisher on `entries`, and a subscriber on every relay.
    fn new(version: Version, edges: Vec<(usize, usize)>, entries: &[usize]) -> Self {
        let mut net = Net::new(version);
        net.max_rounds = ROUND_CAP;
        let relays: Vec<usize> =
            (0..RELAYS).map(|i| net.add_node(NodeConfig { hop_id: hop(i), ..NodeConfig::relay() })).collect();
        let links = edges
            .iter()
            .enumerate()
            .map(|(e, &(a, b))| (e, net.connect(relays[a], relays[b], WireOptions::default())))
            .collect();
        let publisher = net.add_node(NodeConfig::client());
        let publisher_links =
            entries.iter().map(|&r| (r, net.connect(publisher, relays[r], WireOptions::default()))).collect();
        net.node(publisher).publish_broadcast(p("live"));
        let track = net.node(publisher).publish_track(p("live"), "video", Default::default());
        net.run();
        let mut subscribers = Vec::new();
        for &r in &relays {
            let ep = net.add_session(Config::new(version, Perspective::Client));
            let link = net.connect(ep, r, WireOptions::default());
            let id = net.session(ep).subscribe(p("live"), "video", SubscribeParams::default()).unwrap();
            subscribers.push(Some((ep, id, link)));
        }
        net.run();
        let received = vec![BTreeMap::new(); RELAYS];
        Self {
            net,
            version,
            edges,
            relays,
            links,
            publisher,
            publisher_links,
            track,
            next_group: 0,
            subscribers,
            received,
        }
    }

    /// Publishes one group of two frames and lets it spread; collects what subscribers got.
    fn group(&mut self) {
        let seq = self.next_group;
        self.next_group += 1;
        let node = self.net.node(self.publisher);
        node.publish_group(self.track, seq);
        for f in 0..2 {
            node.publish_frame(self.track, seq, seq * 10 + f, Bytes::from(format!("g{seq}f{f}")));
        }
        node.publish_group_end(self.track, seq, None);
        self.net.run();
        self.collect();
    }

    fn collect(&mut self) {
        for (i, &(ep, id, _)) in self.subscribers.iter().enumerate().filter_map(|(i, s)| Some((i, s.as_ref()?))) {
            for e in self.net.events(ep) {
                match e {
                    Event::GroupStarted { subscription, sequence, .. } if subscription == id => {
                        self.received[i].entry(sequence).or_default().0 += 1;
                    }
                    Event::Frame { subscription, sequence, payload, .. } if subscription == id => {
                        self.received[i].entry(sequence).or_default().1.push(payload);
                    }
                    Event::SubscriptionEnded { subscription, code } if subscription == id => {
                        panic!("{}: subscriber {i} was reset ({code:?})", self.version);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Kills a relay: every link it has goes down at once.
    fn kill(&mut self, r: usize) {
        let mut dead: Vec<usize> =
            self.links.iter().filter(|(e, _)| self.edges[*e].0 == r || self.edges[*e].1 == r).map(|x| x.1).collect();
        dead.extend(self.publisher_links.iter().filter(|(x, _)| *x == r).map(|x| x.1));
        // Its subscriber goes with it.
        self.collect();
        if let Some((_, _, link)) = self.subscribers[r].take() {
            dead.push(link);
        }
        for link in dead {
            self.net.disconnect(link, 1);
        }
    }

    /// Brings a killed relay back: a fresh node with the same hop id, linked as before.
    fn restart(&mut self, r: usize) {
        let node = self.net.add_node(NodeConfig { hop_id: hop(r), ..NodeConfig::relay() });
        self.relays[r] = node;
        for e in 0..self.edges.len() {
            let (a, b) = self.edges[e];
            if a == r || b == r {
                let link = self.net.connect(self.relays[a], self.relays[b], WireOptions::default());
                self.links.push((e, link));
            }
        }
        if self.publisher_links.iter().any(|(x, _)| *x == r) {
            let link = self.net.connect(self.publisher, node, WireOptions::default());
            self.publisher_links.push((r, link));
        }
    }

    /// A new subscriber on relay `r` (after a restart).
    fn resubscribe(&mut self, r: usize) {
        let ep = self.net.add_session(Config::new(self.version, Perspective::Client));
        let link = self.net.connect(ep, self.relays[r], WireOptions::default());
        let id = self.net.session(ep).subscribe(p("live"), "video", SubscribeParams::default()).unwrap();
        self.net.run();
        self.subscribers[r] = Some((ep, id, link));
        self.received[r].clear();
    }

    /// Every live relay's best route to the broadcast has the shortest chain, and (lite-06)
    /// a cost equal to its hop distance from the publisher.
    fn assert_converged(&mut self, entries: &[usize], dead: &[usize]) {
        let dist = distances(&self.edges, entries, dead);
        for (i, d) in dist.iter().enumerate() {
            if dead.contains(&i) {
                continue;
            }
            let node = self.net.node(self.relays[i]);
            let best = node.origin().best(&p("live"), None).cloned();
            let Some(d) = d else {
                assert!(best.is_none(), "{}: relay {i} is cut off but has {best:?}", self.version);
                continue;
            };
            let best = best.unwrap_or_else(|| panic!("{}: relay {i} has no route", self.version));
            let want = match self.version {
                Version::Lite04 => *d,
                _ => d + 1,
            };
            assert_eq!(best.hops.len(), want, "{}: relay {i}: the shortest chain: {best:?}", self.version);
            if self.version.has_hop_list() {
                assert!(!best.hops.contains(&hop(i)), "{}: relay {i} routes through itself", self.version);
            }
            if self.version == Version::Lite06 {
                assert_eq!(best.cost, RouteCost { warm: *d as u64 + 1, cold: *d as u64 + 1 }, "{}", self.version);
            }
        }
    }

    /// Each subscriber got each group in `groups` exactly once with both its frames, none twice.
    fn assert_delivered(&self, who: &[usize], groups: std::ops::Range<u64>) {
        for &i in who {
            for (seq, (starts, frames)) in &self.received[i] {
                assert_eq!(*starts, 1, "{}: subscriber {i}: group {seq} started {starts} times", self.version);
                let want: Vec<Bytes> = (0..2).map(|f| Bytes::from(format!("g{seq}f{f}"))).collect();
                assert_eq!(frames, &want, "{}: subscriber {i}: group {seq}: frames", self.version);
            }
            for g in groups.clone() {
                assert!(self.received[i].contains_key(&g), "{}: subscriber {i} missed group {g}", self.version);
            }
        }
    }
}

fn steady_state(shape: fn() -> Vec<(usize, usize)>, entries: &[usize]) {
    for v in Version::ALL {
        let mut c = Cluster::new(v, shape(), entries);
        c.assert_converged(entries, &[]);
        for _ in 0..5 {
            c.group();
        }
        let all: Vec<usize> = (0..RELAYS).collect();
        c.assert_delivered(&all, 0..5);
        // One upstream subscription per relay and track, never more.
        for r in 0..RELAYS {
            let stats = c.net.node(c.relays[r]).stats();
            assert!(stats.upstream_subscriptions <= 1, "{v}: relay {r}: {stats:?}");
        }
    }
}

#[test]
fn line_of_ten_converges_and_delivers_everything_once() {
    steady_state(line, &[0]);
}

#[test]
fn star_of_ten_converges_and_delivers_everything_once() {
    steady_state(star, &[3]);
}

#[test]
fn ring_mesh_of_ten_converges_and_delivers_everything_once() {
    steady_state(ring_mesh, &[0]);
}

#[test]
fn full_mesh_of_ten_converges_and_delivers_everything_once() {
    steady_state(full_mesh, &[0, 5]);
}

/// Kills relay `victim` while groups flow, then restarts it; the other subscribers continue
/// without a reset, lose at most the groups published while the route was down (none here:
/// the switch happens as the links drop) and never get a group twice.
fn failover(shape: fn() -> Vec<(usize, usize)>, entries: &[usize], victim: usize) {
    for v in Version::ALL {
        let mut c = Cluster::new(v, shape(), entries);
        for _ in 0..3 {
            c.group();
        }
        c.kill(victim);
        // lite-03 waits out the hold-down of routes it cannot prove loop-free.
        c.net.advance(Duration::from_millis(1500));
        c.assert_converged(entries, &[victim]);
        for _ in 0..3 {
            c.group();
        }
        let survivors: Vec<usize> = (0..RELAYS).filter(|r| *r != victim).collect();
        c.assert_delivered(&survivors, 0..6);
        // The victim comes back and rejoins: routes converge as before and its new subscriber
        // gets the next groups.
        c.restart(victim);
        c.net.advance(Duration::from_millis(1500));
        c.assert_converged(entries, &[]);
        c.resubscribe(victim);
        for _ in 0..2 {
            c.group();
        }
        c.assert_delivered(&survivors, 0..8);
        c.assert_delivered(&[victim], 6..8);
        assert!(c.net.node(c.relays[(victim + 1) % RELAYS]).stats().limits.route_switches <= 4, "{v}");
    }
}

#[test]
fn ring_mesh_survives_the_death_of_a_middle_relay() {
    // Relay 1 carries the shortest route from the publisher (on 0) to 2 and beyond.
    failover(ring_mesh, &[0], 1);
}

#[test]
fn full_mesh_survives_the_death_of_an_entry_relay() {
    // The publisher enters at 0 and 5; 0 dies, everything moves to 5.
    failover(full_mesh, &[0, 5], 0);
}

#[test]
fn star_survives_the_death_of_an_entry_leaf_with_a_second_entry() {
    // The publisher enters at leaves 3 and 4; 3 dies.
    failover(star, &[3, 4], 3);
}

/// A line has no second route: relays past the dead one wait (their subscribers are not reset)
/// and resume once it is back.
#[test]
fn line_waits_for_a_restarted_middle_relay() {
    for v in Version::ALL {
        let mut c = Cluster::new(v, line(), &[0]);
        for _ in 0..2 {
            c.group();
        }
        c.kill(4);
        c.net.advance(Duration::from_millis(1500));
        c.assert_converged(&[0], &[4]);
        c.group(); // group 2: published while the line is cut
        c.restart(4);
        c.resubscribe(4);
        c.net.advance(Duration::from_millis(1500));
        c.assert_converged(&[0], &[]);
        for _ in 0..2 {
            c.group();
        }
        let before: Vec<usize> = (0..4).collect();
        assert!(c.subscribers[4].is_some());
        c.assert_delivered(&before, 0..5);
        let after: Vec<usize> = (5..RELAYS).collect();
        // Past the cut: the groups before and after, each once (group 2 only if a cache still
        // had it when they resumed).
        c.assert_delivered(&after, 0..2);
        c.assert_delivered(&after, 3..5);
        c.assert_delivered(&[4], 3..5);
    }
}

/// When the publisher leaves, every relay withdraws the broadcast (no route survives in a
/// loop), in every version, including lite-03 whose chains carry no hop ids.
#[test]
fn withdrawals_leave_no_route_behind() {
    for v in Version::ALL {
        for shape in [line, star, ring_mesh, full_mesh] {
            let mut c = Cluster::new(v, shape(), &[0]);
            c.net.node(c.publisher).unpublish_broadcast(&p("live"));
            c.net.advance(Duration::from_millis(1500));
            for r in 0..RELAYS {
                let node = c.net.node(c.relays[r]);
                assert!(!node.origin().contains(&p("live")), "{v}: relay {r} keeps a route");
                assert_eq!(node.stats().limits.routes_looped, 0, "{v}: relay {r} counted to infinity");
            }
        }
    }
}

/// lite-03: a ring whose entry dies. The routes around the ring point back through the dead
/// entry's neighbours; the feasibility rule withdraws them instead of counting to infinity.
#[test]
fn lite03_ring_does_not_count_to_infinity() {
    let ring = || (0..RELAYS).map(|i| (i, (i + 1) % RELAYS)).collect::<Vec<_>>();
    let mut c = Cluster::new(Version::Lite03, ring(), &[0]);
    c.assert_converged(&[0], &[]);
    // A watcher on the far side of the ring sees every route change of the broadcast.
    let watcher = c.net.add_session(Config::new(Version::Lite03, Perspective::Client));
    c.net.connect(watcher, c.relays[5], WireOptions::default());
    c.net.session(watcher).announce_interest(p("")).unwrap();
    c.net.run();
    let _ = c.net.events(watcher);
    // The publisher leaves relay 0 (and only it): the broadcast is gone everywhere.
    let (_, link) = c.publisher_links[0];
    c.net.disconnect(link, 1);
    // Counting to infinity would re-announce it with ever longer chains before it dies out.
    let events = c.net.events(watcher);
    let again = events.iter().filter(|e| matches!(e, Event::Announced { .. })).count();
    assert_eq!(again, 0, "the broadcast came back through a loop: {events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Unannounced { .. })), "{events:?}");
    for r in 0..RELAYS {
        let node = c.net.node(c.relays[r]);
        // Held down, not re-routed through a neighbour that pointed back here.
        let best = node.origin().best(&p("live"), None).cloned();
        assert!(best.is_none(), "relay {r} routes in a loop: {best:?}");
        // Counting to infinity would have grown chains past max_hops, which are then dropped.
        assert_eq!(node.stats().limits.routes_looped, 0, "relay {r} counted to infinity");
    }
    let held: u64 = (0..RELAYS).map(|r| c.net.node(c.relays[r]).stats().limits.routes_held_down).sum();
    assert!(held >= 1, "the infeasible routes were held down");
    c.net.advance(Duration::from_millis(1500));
    for r in 0..RELAYS {
        assert!(!c.net.node(c.relays[r]).origin().contains(&p("live")), "relay {r} keeps a route");
    }
}

/// Routes from a peer that are looped, too long, or absurdly priced: dropped, or ranked last,
/// and the cluster keeps serving.
#[test]
fn bad_routes_from_a_peer_are_dropped_or_ranked_last() {
    for v in Version::ALL {
        let mut net = Net::new(v);
        net.max_rounds = ROUND_CAP;
        let relay = net.add_node(NodeConfig {
            hop_id: 0x77,
            max_hops: 8,
            route_hold_down: Duration::ZERO,
            ..NodeConfig::relay()
        });
        let good = net.add_session(Config::new(v, Perspective::Client));
        net.connect(good, relay, WireOptions::default());
        let mut bad_config = Config::new(v, Perspective::Client);
        bad_config.hop_id = 0x99;
        let bad = net.add_session(bad_config);
        net.connect(bad, relay, WireOptions::default());
        let watcher = net.add_session(Config::new(v, Perspective::Client));
        net.connect(watcher, relay, WireOptions::default());
        let interest = net.session(watcher).announce_interest(p("")).unwrap();
        net.session(good).announce(p("x")).unwrap();
        net.run();
        // A chain through the relay itself, one longer than max_hops, and a huge cost.
        let looped: Hops = [5, 0x77, 6].into_iter().collect();
        net.session(bad).announce_route(p("looped"), looped, RouteCost::default()).unwrap();
        let long: Hops = (1..=12).collect();
        net.session(bad).announce_route(p("long"), long, RouteCost::default()).unwrap();
        let max = RouteCost { warm: (1 << 62) - 1, cold: (1 << 62) - 1 };
        net.session(bad).announce_route(p("x"), Hops::new(), max).unwrap();
        net.run();
        let node = net.node(relay);
        if v.has_hop_list() {
            assert!(!node.origin().contains(&p("looped")), "{v}: a chain holding the relay is dropped");
        }
        assert!(!node.origin().contains(&p("long")), "{v}: a chain over max_hops is dropped");
        assert!(node.stats().limits.routes_looped >= 1, "{v}");
        let best = node.origin().best(&p("x"), None).unwrap().clone();
        if v == Version::Lite06 {
            // The huge cost saturates and ranks last.
            let huge = node.origin().routes(&p("x")).find(|r| r.cost.warm >= (1 << 62) - 1).cloned();
            assert!(huge.is_some(), "{v}: the priced route is kept");
            assert_ne!(best.source, huge.unwrap().source, "{v}: the cheap route wins");
        }
        assert!(matches!(best.source, RouteSource::Session(_)));
        // The relay keeps serving: the watcher heard "x" and nothing looped or too long.
        let heard: Vec<String> = net
            .events(watcher)
            .into_iter()
            .filter_map(|e| match e {
                Event::Announced { interest: i, path, .. } if i == interest => Some(path.as_str().to_string()),
                _ => None,
            })
            .collect();
        assert!(heard.contains(&"x".to_string()), "{v}: {heard:?}");
        assert!(!heard.contains(&"long".to_string()), "{v}: {heard:?}");
        if v.has_hop_list() {
            assert!(!heard.contains(&"looped".to_string()), "{v}: {heard:?}");
        }
        assert!(!net.session(good).is_closed() && !net.session(watcher).is_closed(), "{v}");
    }
}

/// A relay whose upstream relay loses its route (the link between them stays up) moves to its
/// next route at once, make-before-break, instead of waiting for the upstream to give up.
#[test]
fn a_withdrawn_route_moves_the_track_while_the_upstream_session_lives() {
    for v in Version::ALL {
        // publisher → a → d and publisher → c → d; d prefers a (its older session).
        let edges = vec![(0, 3), (2, 3)];
        let mut c = Cluster::new(v, edges, &[0, 2]);
        // The other relays are not linked: their subscribers were refused.
        for i in [1, 4, 5, 6, 7, 8, 9] {
            c.subscribers[i] = None;
        }
        for _ in 0..2 {
            c.group();
        }
        let d = c.relays[3];
        let first = c.net.node(d).origin().best(&p("live"), None).unwrap().source;
        // The publisher's link to relay 0 drops; relay 0 itself stays linked to d.
        let (_, link) = c.publisher_links[0];
        c.net.disconnect(link, 1);
        let now = c.net.node(d).origin().best(&p("live"), None).unwrap().source;
        assert_ne!(first, now, "{v}: d's best route changed");
        // No time passes: d does not wait for relay 0's failover grace.
        for _ in 0..3 {
            c.group();
        }
        c.assert_delivered(&[3], 0..5);
        assert!(c.net.node(d).stats().limits.route_switches >= 1, "{v}");
    }
}

/// A relay that sends GOAWAY (a planned shutdown) is left make-before-break: its routes cost the
/// most, the tracks it feeds move to another route while it still serves them, and when it then
/// goes away nothing is lost or repeated.
#[test]
fn a_draining_relay_is_left_before_it_closes() {
    for v in Version::ALL.into_iter().filter(|v| *v != Version::Lite03) {
        let edges = vec![(0, 3), (2, 3)];
        let mut c = Cluster::new(v, edges, &[0, 2]);
        for i in [1, 4, 5, 6, 7, 8, 9] {
            c.subscribers[i] = None;
        }
        c.group();
        let d = c.relays[3];
        let before = c.net.node(d).stats().limits.route_switches;
        c.net.node(c.relays[0]).goaway_all("");
        c.net.run();
        c.group();
        assert!(c.net.node(d).stats().limits.route_switches > before, "{v}: d moved on the GOAWAY");
        if v == Version::Lite06 {
            let best = c.net.node(d).origin().best(&p("live"), None).unwrap().clone();
            let worst = c.net.node(d).origin().routes(&p("live")).map(|r| r.cost.warm).max().unwrap();
            assert_eq!(worst, (1 << 62) - 1, "{v}: the draining relay's route costs the most");
            assert!(best.cost.warm < worst, "{v}");
        }
        // Now relay 0 goes; no time passes, and d's subscriber misses nothing.
        c.kill(0);
        for _ in 0..3 {
            c.group();
        }
        c.assert_delivered(&[3], 0..5);
    }
}
