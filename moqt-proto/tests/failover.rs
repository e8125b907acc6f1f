//! Route switching: a relay whose upstream dies re-subscribes over the next route and its
//! subscribers continue without a reset; a client moved make-before-break (after a GOAWAY) to
//! another relay loses and duplicates no group; a client whose session drops resubscribes over
//! the next one.

use std::collections::BTreeMap;

use bytes::Bytes;
use moqt_proto::relay::{LocalSubscriptionId, NodeConfig, NodeEvent, TrackId};
use moqt_proto::session::{session_code, Config, Event, Perspective, SubscribeParams};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, SubscriptionId, Version};

fn relay(net: &mut Net, hop_id: u64) -> usize {
    net.add_node(NodeConfig { hop_id, ..NodeConfig::relay() })
}

fn client_node(net: &mut Net) -> usize {
    net.add_node(NodeConfig::client())
}

fn p(s: &str) -> Path {
    Path::new(s)
}

/// A node publishing one track, one frame per group.
struct Source {
    ep: usize,
    track: TrackId,
    next: u64,
}

impl Source {
    fn new(net: &mut Net, path: &str) -> Self {
        let ep = client_node(net);
        let node = net.node(ep);
        node.publish_broadcast(p(path));
        let track = node.publish_track(p(path), "video", Default::default());
        Self { ep, track, next: 0 }
    }

    fn group(&mut self, net: &mut Net) {
        let seq = self.next;
        self.next += 1;
        let node = net.node(self.ep);
        node.publish_group(self.track, seq);
        node.publish_frame(self.track, seq, seq, Bytes::from(format!("g{seq}")));
        node.publish_group_end(self.track, seq, None);
        net.run();
    }
}

/// Every group a session subscriber received, with how many times it started.
fn groups_of(events: &[Event], id: SubscriptionId) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        if let Event::GroupStarted { subscription, sequence, .. } = e {
            if *subscription == id {
                *out.entry(*sequence).or_default() += 1;
            }
        }
    }
    out
}

/// Every group a local subscription completed, with how many times.
fn local_groups(events: &[NodeEvent], id: LocalSubscriptionId) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        if let NodeEvent::GroupEnded { subscription, sequence, code: None } = e {
            if *subscription == id {
                *out.entry(*sequence).or_default() += 1;
            }
        }
    }
    out
}

#[test]
fn a_relay_switches_to_the_next_route_when_its_upstream_dies() {
    for v in Version::ALL {
        let mut net = Net::new(v);
        // The source reaches the edge relay through two middle relays.
        let mut source = Source::new(&mut net, "live");
        let (m1, m2, edge) = (relay(&mut net, 0x11), relay(&mut net, 0x22), relay(&mut net, 0x33));
        let source_m1 = net.connect(source.ep, m1, WireOptions::default());
        net.connect(source.ep, m2, WireOptions::default());
        let via_m1 = net.connect(edge, m1, WireOptions::default());
        net.connect(edge, m2, WireOptions::default());
        let sub = net.add_session(Config::new(v, Perspective::Client));
        net.connect(sub, edge, WireOptions::default());
        let id = net.session(sub).subscribe(p("live"), "video", SubscribeParams::default()).unwrap();
        net.run();
        for _ in 0..3 {
            source.group(&mut net);
        }
        // One middle relay dies: the edge re-subscribes through the other.
        net.disconnect(via_m1, 1);
        net.disconnect(source_m1, 1);
        for _ in 0..3 {
            source.group(&mut net);
        }
        let events = net.events(sub);
        assert!(!events.iter().any(|e| matches!(e, Event::SubscriptionEnded { .. })), "{v}: {events:?}");
        let groups = groups_of(&events, id);
        assert!(groups.values().all(|n| *n == 1), "{v}: no group twice: {groups:?}");
        assert!((3..6).all(|g| groups.contains_key(&g)), "{v}: groups after the switch arrive: {groups:?}");
        assert!(net.node(edge).stats().limits.route_switches >= 1, "{v}");
    }
}

#[test]
fn a_client_moved_make_before_break_loses_and_duplicates_nothing() {
    for v in Version::ALL {
        let mut net = Net::new(v);
        let mut source = Source::new(&mut net, "live");
        let (r1, r2) = (relay(&mut net, 0x11), relay(&mut net, 0x22));
        net.connect(source.ep, r1, WireOptions::default());
        net.connect(source.ep, r2, WireOptions::default());
        let viewer = client_node(&mut net);
        let old = net.connect(viewer, r1, WireOptions::default());
        let old_session = net.ends(old)[0].session.unwrap();
        net.node(viewer).set_default_upstream(Some(old_session));
        let id = net.node(viewer).subscribe(p("live"), "video", SubscribeParams::default(), None);
        net.run();
        for _ in 0..5 {
            source.group(&mut net);
        }
        // GOAWAY: connect to the next relay first, move over, then close the old session.
        let new = net.connect(viewer, r2, WireOptions::default());
        let new_session = net.ends(new)[0].session.unwrap();
        net.node(viewer).migrate(old_session, new_session);
        net.run();
        for _ in 0..2 {
            source.group(&mut net);
        }
        assert_eq!(net.node(r2).stats().subscriptions, 1, "{v}: the viewer subscribes through the new relay");
        net.node(viewer).close_session(old_session, 0, "moved");
        net.run();
        for _ in 0..3 {
            source.group(&mut net);
        }
        let events = net.node_events(viewer);
        assert!(!events.iter().any(|e| matches!(e, NodeEvent::SubscriptionEnded { .. })), "{v}: {events:?}");
        let groups = local_groups(&events, id);
        let want: BTreeMap<u64, usize> = (0..10).map(|g| (g, 1)).collect();
        assert_eq!(groups, want, "{v}: every group exactly once");
    }
}

#[test]
fn a_client_resubscribes_over_its_next_session() {
    for v in Version::ALL {
        let mut net = Net::new(v);
        let mut source = Source::new(&mut net, "live");
        let r = relay(&mut net, 0x11);
        net.connect(source.ep, r, WireOptions::default());
        let viewer = client_node(&mut net);
        let first = net.connect(viewer, r, WireOptions::default());
        let first_session = net.ends(first)[0].session;
        net.node(viewer).set_default_upstream(first_session);
        let id = net.node(viewer).subscribe(p("live"), "video", SubscribeParams::default(), None);
        let watch = net.node(viewer).watch(p(""), first_session).unwrap();
        net.run();
        source.group(&mut net);
        source.group(&mut net);
        // The connection drops; groups published meanwhile are missed.
        net.disconnect(first, 1);
        source.group(&mut net);
        // The client reconnects: the subscription resumes from the next group.
        let second = net.connect(viewer, r, WireOptions::default());
        let second_session = net.ends(second)[0].session;
        net.node(viewer).set_default_upstream(second_session);
        net.run();
        source.group(&mut net);
        source.group(&mut net);
        let events = net.node_events(viewer);
        assert!(!events.iter().any(|e| matches!(e, NodeEvent::SubscriptionEnded { .. })), "{v}: {events:?}");
        assert!(!events.iter().any(|e| matches!(e, NodeEvent::WatchEnded { .. })), "{v}: the watch survives");
        let live = events
            .iter()
            .filter(|e| matches!(e, NodeEvent::Announced { watch: w, path } if *w == watch && path.as_str() == "live"))
            .count();
        assert!(live >= 1, "{v}: the watch hears the broadcast again: {events:?}");
        let groups = local_groups(&events, id);
        assert!(groups.values().all(|n| *n == 1), "{v}: no group twice: {groups:?}");
        assert!(groups.contains_key(&0) && groups.contains_key(&1), "{v}: {groups:?}");
        assert!(groups.contains_key(&3) && groups.contains_key(&4), "{v}: resumed: {groups:?}");
    }
}

#[test]
fn a_client_waits_for_the_publisher_after_a_relay_restart() {
    for v in Version::ALL {
        let mut net = Net::new(v);
        let mut source = Source::new(&mut net, "live");
        let old = relay(&mut net, 0x11);
        let source_link = net.connect(source.ep, old, WireOptions::default());
        let viewer = client_node(&mut net);
        let viewer_link = net.connect(viewer, old, WireOptions::default());
        let first = net.ends(viewer_link)[0].session;
        net.node(viewer).set_default_upstream(first);
        let id = net.node(viewer).subscribe(p("live"), "video", SubscribeParams::default(), None);
        net.run();
        source.group(&mut net);
        // The relay dies; a fresh one takes its place. The viewer is back first: NOT_FOUND, so
        // it keeps trying instead of ending the subscription.
        net.disconnect(source_link, 1);
        net.disconnect(viewer_link, 1);
        let fresh = relay(&mut net, 0x11);
        let again = net.connect(viewer, fresh, WireOptions::default());
        let second = net.ends(again)[0].session;
        net.node(viewer).set_default_upstream(second);
        net.run();
        net.advance(std::time::Duration::from_millis(1500));
        // Then the publisher.
        net.connect(source.ep, fresh, WireOptions::default());
        net.advance(std::time::Duration::from_millis(1500));
        source.group(&mut net);
        source.group(&mut net);
        let events = net.node_events(viewer);
        assert!(!events.iter().any(|e| matches!(e, NodeEvent::SubscriptionEnded { .. })), "{v}: {events:?}");
        let groups = local_groups(&events, id);
        assert!(groups.contains_key(&0) && groups.contains_key(&1) && groups.contains_key(&2), "{v}: {groups:?}");
        assert!(groups.values().all(|n| *n == 1), "{v}: {groups:?}");
    }
}

#[test]
fn a_rolling_restart_loses_nothing_when_the_viewer_moves_first() {
    for v in Version::ALL {
        let mut net = Net::new(v);
        let mut source = Source::new(&mut net, "live");
        let (r1, r2) = (relay(&mut net, 0x11), relay(&mut net, 0x22));
        let s_old = net.connect(source.ep, r1, WireOptions::default());
        let s_old_session = net.ends(s_old)[0].session.unwrap();
        net.node(source.ep).set_default_upstream(Some(s_old_session));
        let viewer = client_node(&mut net);
        let v_old = net.connect(viewer, r1, WireOptions::default());
        let v_old_session = net.ends(v_old)[0].session.unwrap();
        net.node(viewer).set_default_upstream(Some(v_old_session));
        let id = net.node(viewer).subscribe(p("live"), "video", SubscribeParams::default(), None);
        net.run();
        for _ in 0..3 {
            source.group(&mut net);
        }
        // r1 drains: the viewer moves first, to a relay that has not heard of the broadcast yet.
        let v_new = net.connect(viewer, r2, WireOptions::default());
        let v_new_session = net.ends(v_new)[0].session.unwrap();
        net.node(viewer).migrate(v_old_session, v_new_session);
        net.run();
        source.group(&mut net);
        source.group(&mut net);
        // Then the publisher moves and leaves r1 at once: r1's copy of the track stalls.
        let s_new = net.connect(source.ep, r2, WireOptions::default());
        let s_new_session = net.ends(s_new)[0].session.unwrap();
        net.node(source.ep).migrate(s_old_session, s_new_session);
        net.node(source.ep).close_session(s_old_session, 0, "moved");
        net.run();
        source.group(&mut net);
        // The viewer's retry reaches the publisher through r2 and picks up where it stopped.
        net.advance(std::time::Duration::from_millis(1200));
        source.group(&mut net);
        source.group(&mut net);
        net.node(viewer).close_session(v_old_session, 0, "moved");
        net.run();
        source.group(&mut net);
        let events = net.node_events(viewer);
        assert!(!events.iter().any(|e| matches!(e, NodeEvent::SubscriptionEnded { .. })), "{v}: {events:?}");
        let want: BTreeMap<u64, usize> = (0..9).map(|g| (g, 1)).collect();
        assert_eq!(local_groups(&events, id), want, "{v}: every group exactly once");
    }
}

#[test]
fn a_client_waits_when_its_relay_closes_the_session_in_order() {
    for v in Version::ALL {
        let mut net = Net::new(v);
        let mut source = Source::new(&mut net, "live");
        let r = relay(&mut net, 0x11);
        net.connect(source.ep, r, WireOptions::default());
        let viewer = client_node(&mut net);
        let first = net.connect(viewer, r, WireOptions::default());
        let [viewer_end, relay_end] = net.ends(first);
        net.node(viewer).set_default_upstream(viewer_end.session);
        let id = net.node(viewer).subscribe(p("live"), "video", SubscribeParams::default(), None);
        net.run();
        source.group(&mut net);
        source.group(&mut net);
        // The relay ends the session in order, as at the end of a drain: the streams first, then
        // the session. The viewer's subscription waits for its next session.
        net.node(r).close_session(relay_end.session.unwrap(), session_code::GOAWAY_TIMEOUT, "drained");
        net.run();
        source.group(&mut net);
        let second = net.connect(viewer, r, WireOptions::default());
        let second_session = net.ends(second)[0].session;
        net.node(viewer).set_default_upstream(second_session);
        net.run();
        source.group(&mut net);
        source.group(&mut net);
        let events = net.node_events(viewer);
        assert!(!events.iter().any(|e| matches!(e, NodeEvent::SubscriptionEnded { .. })), "{v}: {events:?}");
        let groups = local_groups(&events, id);
        assert!(groups.values().all(|n| *n == 1), "{v}: no group twice: {groups:?}");
        assert!(groups.contains_key(&0) && groups.contains_key(&1), "{v}: {groups:?}");
        assert!(groups.contains_key(&3) && groups.contains_key(&4), "{v}: resumed: {groups:?}");
    }
}
