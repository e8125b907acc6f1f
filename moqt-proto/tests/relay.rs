//! Relay scenarios on the in-memory rig (`moqt_proto::testing`): fan-out to 100 subscribers
//! through one upstream, chains and loops of relays, a stalled subscriber, publisher churn, late
//! joiners and cached fetch.

use std::time::Duration;

use bytes::Bytes;
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::{stream_code, Config, Event, Perspective, PublicationId, PublishParams, SubscribeParams};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, SubscriptionId, Version};

/// Rounds a relay scenario may take to settle: far above what any of them needs, so that a
/// routing loop fails the test within seconds instead of hanging it.
const ROUND_CAP: usize = 20_000;

/// A network of relays and clients on `v`, with a tight livelock cap.
fn network(v: Version) -> Net {
    let mut net = Net::new(v);
    net.max_rounds = ROUND_CAP;
    net
}

/// Adds a relay node with this hop id.
fn relay_node(net: &mut Net, hop_id: u64) -> usize {
    net.add_node(NodeConfig { hop_id, ..NodeConfig::relay() })
}

/// Connects a new client session (hop id `hop`, the net's version) to node `to`; returns (link,
/// client endpoint).
fn client(net: &mut Net, to: usize, hop: u64) -> (usize, usize) {
    let mut config = Config::new(net.version, Perspective::Client);
    config.hop_id = hop;
    let ep = net.add_session(config);
    (net.connect(ep, to, WireOptions::default()), ep)
}

fn p(s: &str) -> Path {
    Path::new(s)
}

/// A publisher client that announces `path` and accepts every subscription to it.
struct Publisher {
    ep: usize,
    link: usize,
    streams: Vec<PublicationId>,
}

impl Publisher {
    fn new(net: &mut Net, relay: usize, path: &str) -> Self {
        let (link, ep) = client(net, relay, 0);
        net.session(ep).announce(p(path)).unwrap();
        net.run();
        Self { ep, link, streams: Vec::new() }
    }

    /// Accepts pending subscriptions.
    fn accept(&mut self, net: &mut Net) {
        for e in net.events(self.ep) {
            if let Event::SubscribeRequest { publication, .. } = e {
                net.session(self.ep).accept_subscription(publication, PublishParams::default()).unwrap();
                self.streams.push(publication);
            }
        }
        net.run();
    }

    /// Writes one group of `frames` frames to every accepted subscription.
    fn group(&mut self, net: &mut Net, seq: u64, frames: u64) {
        for &s in &self.streams.clone() {
            let session = net.session(self.ep);
            let g = session.open_group(s, seq).unwrap();
            for f in 0..frames {
                session.write_frame(g, seq * 100 + f, payload(seq, f)).unwrap();
            }
            session.finish_group(g).unwrap();
        }
        net.run();
    }
}

fn payload(seq: u64, f: u64) -> Bytes {
    Bytes::from(format!("g{seq}f{f}-{}", "x".repeat(((seq * 7 + f) % 50) as usize)))
}

/// The frames a client received, per group, in arrival order within each group.
fn frames_by_group(events: &[Event]) -> std::collections::BTreeMap<u64, Vec<Bytes>> {
    let mut out = std::collections::BTreeMap::<u64, Vec<Bytes>>::new();
    for e in events {
        if let Event::Frame { sequence, payload, .. } = e {
            out.entry(*sequence).or_default().push(payload.clone());
        }
    }
    out
}

fn subscribe(net: &mut Net, ep: usize, path: &str) -> SubscriptionId {
    let id = net
        .session(ep)
        .subscribe(p(path), "video", SubscribeParams { max_latency: 60_000, ..Default::default() })
        .unwrap();
    net.run();
    id
}

#[test]
fn one_publisher_one_relay_100_subscribers() {
    for v in Version::ALL {
        let mut net = network(v);
        let relay = relay_node(&mut net, 0x5e1a);
        let mut publisher = Publisher::new(&mut net, relay, "live/cam");
        let subs: Vec<usize> = (0..100).map(|i| client(&mut net, relay, 1000 + i).1).collect();
        for &s in &subs {
            subscribe(&mut net, s, "live/cam");
        }
        publisher.accept(&mut net);
        assert_eq!(publisher.streams.len(), 1, "{v}: one upstream subscription for 100 subscribers");
        for seq in 0..10 {
            publisher.group(&mut net, seq, 5);
        }
        for &s in &subs {
            let groups = frames_by_group(&net.events(s));
            assert_eq!(groups.len(), 10, "{v}: every group");
            for (seq, frames) in groups {
                let expected: Vec<Bytes> = (0..5).map(|f| payload(seq, f)).collect();
                assert_eq!(frames, expected, "{v}: every frame, in order");
            }
        }
        let stats = net.node(relay).stats();
        assert_eq!(stats.upstream_subscribes, 1);
        assert_eq!(stats.subscriptions, 100);
        assert_eq!(stats.frames_out, 100 * 50);
    }
}

#[test]
fn chain_of_three_relays() {
    for v in Version::ALL {
        let mut net = network(v);
        let r1 = relay_node(&mut net, 0x11);
        let r2 = relay_node(&mut net, 0x22);
        let r3 = relay_node(&mut net, 0x33);
        net.connect(r2, r1, WireOptions::default());
        net.connect(r3, r2, WireOptions::default());
        let mut publisher = Publisher::new(&mut net, r1, "far/away");
        let (_, sub) = client(&mut net, r3, 0x99);
        let interest = net.session(sub).announce_interest(Path::root()).unwrap();
        net.run();
        let hops = net.events(sub).into_iter().find_map(|e| match e {
            Event::Announced { interest: i, path, hops, .. } if i == interest && path == p("far/away") => Some(hops),
            _ => None,
        });
        let hops = hops.expect("the announcement crossed three relays");
        if v != Version::Lite03 {
            assert_eq!(&hops[hops.len() - 3..], &[0x11, 0x22, 0x33], "{v}: hop chain");
        } else {
            assert_eq!(hops.len(), 4, "{v}: hop count");
        }
        subscribe(&mut net, sub, "far/away");
        publisher.accept(&mut net);
        publisher.group(&mut net, 0, 3);
        let groups = frames_by_group(&net.events(sub));
        assert_eq!(groups.get(&0).map(Vec::len), Some(3), "{v}");
    }
}

#[test]
fn loops_terminate() {
    for v in Version::ALL {
        let mut net = network(v);
        let r1 = relay_node(&mut net, 0x11);
        let r2 = relay_node(&mut net, 0x22);
        let r3 = relay_node(&mut net, 0x33);
        // Two relays linked both ways, and a triangle.
        net.connect(r1, r2, WireOptions::default());
        net.connect(r2, r1, WireOptions::default());
        net.connect(r2, r3, WireOptions::default());
        net.connect(r3, r1, WireOptions::default());
        // The publisher's announcement must settle within a few rounds, however the relays are
        // linked; a routing loop would keep it moving until `ROUND_CAP` and fail here instead of
        // hanging (`try_run` reports the livelock; `run` panics on it).
        let (link, ep) = client(&mut net, r1, 0);
        net.session(ep).announce(p("looped")).unwrap();
        let rounds = net.try_run().unwrap_or_else(|l| panic!("{v}: the announcement loops: {l:?}"));
        assert!(rounds < 100, "{v}: the announcement took {rounds} rounds to settle");
        let mut publisher = Publisher { ep, link, streams: Vec::new() };
        for r in [r1, r2, r3] {
            assert_eq!(net.node(r).origin().len(), 1, "{v}: one broadcast known at every relay");
        }
        let (_, sub) = client(&mut net, r3, 0x99);
        subscribe(&mut net, sub, "looped");
        publisher.accept(&mut net);
        publisher.group(&mut net, 0, 2);
        assert_eq!(frames_by_group(&net.events(sub)).get(&0).map(Vec::len), Some(2), "{v}: content flows");
        net.session(publisher.ep).unannounce(&p("looped")).unwrap();
        let rounds = net.try_run().unwrap_or_else(|l| panic!("{v}: the unannouncement loops: {l:?}"));
        assert!(rounds < 100, "{v}: the unannouncement took {rounds} rounds to settle");
        for r in [r1, r2, r3] {
            assert_eq!(net.node(r).origin().len(), 0, "{v}: the end propagates everywhere");
        }
    }
}

#[test]
fn stalled_subscriber_does_not_hurt_the_others() {
    let v = Version::Lite05;
    let mut net = network(v);
    let relay = relay_node(&mut net, 0x5e1a);
    let mut publisher = Publisher::new(&mut net, relay, "live");
    let subs: Vec<(usize, usize)> = (0..50).map(|i| client(&mut net, relay, 100 + i)).collect();
    for &(_, s) in &subs {
        subscribe(&mut net, s, "live");
    }
    publisher.accept(&mut net);
    let (stalled_link, stalled) = subs[7];
    net.wire(stalled_link).hold(1, true); // the relay's side of this connection sends nothing
    let budget = moqt_proto::session::SessionLimits::default().max_queued_per_subscription;
    let big = Bytes::from(vec![1u8; 32 * 1024]);
    for seq in 0..40u64 {
        let session = net.session(publisher.ep);
        let g = session.open_group(publisher.streams[0], seq).unwrap();
        for _ in 0..8 {
            session.write_frame(g, 0, big.clone()).unwrap();
        }
        session.finish_group(g).unwrap();
        net.run();
        let relay_side = net.ends(stalled_link)[1].session.unwrap();
        let queued = net.node(relay).session(relay_side).unwrap().queued_bytes();
        assert!(queued <= budget, "the stalled subscriber's queue stays within its budget ({queued})");
    }
    for &(_, s) in &subs {
        let groups = frames_by_group(&net.events(s));
        if s == stalled {
            assert!(groups.len() < 40, "the stalled one lost groups");
        } else {
            assert_eq!(groups.len(), 40, "others get every group");
            assert!(groups.values().all(|f| f.len() == 8));
        }
    }
    assert!(net.node(relay).stats().groups_dropped > 0);
    // Once it resumes, it gets the newest data, not the whole backlog.
    net.wire(stalled_link).hold(1, false);
    net.run();
    let groups = frames_by_group(&net.events(stalled));
    assert!(groups.contains_key(&39));
}

#[test]
fn publisher_disconnects_and_reconnects() {
    for v in Version::ALL {
        let mut net = network(v);
        let relay = relay_node(&mut net, 0x5e1a);
        let mut publisher = Publisher::new(&mut net, relay, "show");
        let (_, sub) = client(&mut net, relay, 7);
        let id = subscribe(&mut net, sub, "show");
        publisher.accept(&mut net);
        publisher.group(&mut net, 0, 2);
        net.disconnect(publisher.link, 1);
        // The subscription is not reset: the relay waits for another route.
        let events = net.events(sub);
        assert!(!events.iter().any(|e| matches!(e, Event::SubscriptionEnded { .. })), "{v}: {events:?}");
        assert!(net.node(relay).origin().is_empty());
        // The publisher comes back: the relay subscribes to it again, from the next group, and the
        // same subscription continues.
        let mut publisher = Publisher::new(&mut net, relay, "show");
        publisher.accept(&mut net);
        assert_eq!(publisher.streams.len(), 1, "{v}: the relay subscribed again");
        publisher.group(&mut net, 1, 2);
        let events = net.events(sub);
        let groups = frames_by_group(&events);
        assert_eq!(groups.get(&1).map(Vec::len), Some(2), "{v}: {events:?}");
        assert!(events.iter().all(|e| !matches!(e, Event::GroupStarted { subscription, .. } if *subscription != id)));
        assert_eq!(net.node(relay).stats().limits.route_switches, 1, "{v}");
        // Gone for longer than the grace period: the subscription ends with UNROUTABLE.
        net.disconnect(publisher.link, 1);
        net.advance(NodeConfig::relay().failover_grace + Duration::from_secs(1));
        let events = net.events(sub);
        assert!(
            events.contains(&Event::SubscriptionEnded { subscription: id, code: Some(stream_code::UNROUTABLE) }),
            "{v}: {events:?}"
        );
        // Back again: a new subscription routes to it.
        let mut publisher = Publisher::new(&mut net, relay, "show");
        let id2 = subscribe(&mut net, sub, "show");
        assert_ne!(id, id2);
        publisher.accept(&mut net);
        publisher.group(&mut net, 2, 2);
        let groups = frames_by_group(&net.events(sub));
        assert_eq!(groups.get(&2).map(Vec::len), Some(2), "{v}");
    }
}

#[test]
fn late_joiner_and_cached_fetch() {
    for v in Version::ALL {
        let mut net = network(v);
        let relay = relay_node(&mut net, 0x5e1a);
        let mut publisher = Publisher::new(&mut net, relay, "cam");
        let (_, first) = client(&mut net, relay, 1);
        subscribe(&mut net, first, "cam");
        publisher.accept(&mut net);
        publisher.group(&mut net, 0, 3);
        // Group 1 is in progress: two frames so far.
        let pubs = net.session(publisher.ep);
        let g = pubs.open_group(publisher.streams[0], 1).unwrap();
        pubs.write_frame(g, 100, payload(1, 0)).unwrap();
        pubs.write_frame(g, 101, payload(1, 1)).unwrap();
        net.run();
        let (_, late) = client(&mut net, relay, 2);
        subscribe(&mut net, late, "cam");
        let pubs = net.session(publisher.ep);
        pubs.write_frame(g, 102, payload(1, 2)).unwrap();
        pubs.finish_group(g).unwrap();
        net.run();
        let groups = frames_by_group(&net.events(late));
        assert_eq!(
            groups.get(&1),
            Some(&(0..3).map(|f| payload(1, f)).collect::<Vec<_>>()),
            "{v}: from the first frame"
        );
        assert!(!groups.contains_key(&0), "{v}: starts at the current group");
        assert_eq!(net.node(relay).stats().upstream_subscribes, 1);
        // Fetch of cached group 0: served by the relay without an upstream request.
        let before = net.node(relay).stats().upstream_fetches;
        let fetch = net.session(late).fetch(p("cam"), "video", 1, 0).unwrap();
        net.run();
        let got: Vec<Bytes> = net
            .events(late)
            .into_iter()
            .filter_map(|e| match e {
                Event::FetchFrame { fetch: f, payload, .. } if f == fetch => Some(payload),
                _ => None,
            })
            .collect();
        assert_eq!(got, (0..3).map(|f| payload(0, f)).collect::<Vec<_>>(), "{v}");
        assert_eq!(net.node(relay).stats().upstream_fetches, before, "{v}: no upstream request");
        // A miss goes upstream once, however many ask.
        let f1 = net.session(first).fetch(p("cam"), "video", 1, 77).unwrap();
        let f2 = net.session(late).fetch(p("cam"), "video", 1, 77).unwrap();
        net.run();
        assert_eq!(net.node(relay).stats().upstream_fetches, before + 1, "{v}");
        let req = net.events(publisher.ep).into_iter().find_map(|e| match e {
            Event::FetchRequest { fetch, .. } => Some(fetch),
            _ => None,
        });
        let ps = net.session(publisher.ep);
        ps.fetch_frame(req.unwrap(), 7700, Bytes::from_static(b"old")).unwrap();
        ps.fetch_finish(req.unwrap()).unwrap();
        net.run();
        for (ep, f) in [(first, f1), (late, f2)] {
            assert!(net.events(ep).contains(&Event::FetchFrame {
                fetch: f,
                timestamp: v.has_frame_timestamps().then_some(7700),
                payload: Bytes::from_static(b"old")
            }));
        }
    }
}

#[test]
fn upstream_released_after_linger_and_aggregated() {
    let v = Version::Lite04;
    let mut net = network(v);
    let relay = relay_node(&mut net, 0x5e1a);
    let mut publisher = Publisher::new(&mut net, relay, "x");
    let (_, a) = client(&mut net, relay, 1);
    let (_, b) = client(&mut net, relay, 2);
    let ia = net
        .session(a)
        .subscribe(p("x"), "video", SubscribeParams { priority: 3, max_latency: 100, ..Default::default() })
        .unwrap();
    net.run();
    publisher.accept(&mut net);
    let ib = net
        .session(b)
        .subscribe(p("x"), "video", SubscribeParams { priority: 9, max_latency: 50, ..Default::default() })
        .unwrap();
    net.run();
    let updates: Vec<_> = net
        .events(publisher.ep)
        .into_iter()
        .filter_map(|e| match e {
            Event::SubscribeUpdated { update, .. } => Some((update.priority, update.max_latency)),
            _ => None,
        })
        .collect();
    assert_eq!(updates.last(), Some(&(9, 100)), "highest priority, widest latency");
    net.session(a).unsubscribe(ia).unwrap();
    net.session(b).unsubscribe(ib).unwrap();
    net.run();
    assert_eq!(net.node(relay).stats().upstream_subscriptions, 1, "kept during the linger");
    let linger = net.node(relay).config().linger;
    net.advance(linger + std::time::Duration::from_millis(1));
    assert_eq!(net.node(relay).stats().upstream_subscriptions, 0, "released after the linger");
    assert!(net.events(publisher.ep).iter().any(|e| matches!(e, Event::SubscribeCancelled { .. })));
}

/// A lite-05/06 subscriber asks TRACK for a track whose publisher speaks lite-04, which has no
/// TRACK stream: the relay answers with the model defaults (as moq-net does) instead of
/// refusing, and the subscription then carries the frames across the versions. Found by the
/// interop matrix: moq-tokio's clock on lite-06 could not subscribe to moq-clock's lite-04
/// broadcast through `moqt relay`.
#[test]
fn track_info_for_a_lite_04_upstream_is_the_default() {
    for v in [Version::Lite05, Version::Lite06] {
        let mut net = network(Version::Lite04);
        let relay = relay_node(&mut net, 0x7e1a);
        let mut publisher = Publisher::new(&mut net, relay, "old");
        net.version = v;
        let (_, ep) = client(&mut net, relay, 7);
        net.run();
        let ts = net.session(ep).track_info(p("old"), "video").unwrap();
        net.run();
        let events = net.events(ep);
        assert!(
            events.contains(&Event::TrackInfo { request: ts, info: moqt_proto::message::TrackInfo::default() }),
            "{v:?}: {events:?}"
        );
        subscribe(&mut net, ep, "old");
        publisher.accept(&mut net);
        publisher.group(&mut net, 3, 4);
        let got = frames_by_group(&net.events(ep));
        assert_eq!(got.get(&3).map(Vec::len), Some(4), "{v:?}: {got:?}");
    }
}

/// A relay's downstream session may hear nothing for a long time (a subscriber only receives);
/// the groups the relay opens on it must still be aged from the moment they open, not from the
/// session's last event, or max-latency expiry drops fresh groups.
#[test]
fn downstream_groups_are_aged_from_when_they_open() {
    for v in Version::ALL {
        let mut net = network(v);
        let relay = relay_node(&mut net, 0x5e1a);
        let mut publisher = Publisher::new(&mut net, relay, "idle");
        let (_, sub) = client(&mut net, relay, 7);
        let params = SubscribeParams { max_latency: 1000, ..Default::default() };
        net.session(sub).subscribe(p("idle"), "video", params).unwrap();
        net.run();
        publisher.accept(&mut net);
        net.advance(std::time::Duration::from_secs(10));
        // Group 0, then 10 ms later group 1 (group 0 is now not the latest, 10 ms old), then
        // group 0's last frame 10 ms after that.
        let at = |net: &mut Net, ms: u64| {
            net.advance(std::time::Duration::from_millis(ms));
            // The publishing application tells its session the time before it publishes.
            let now = net.now;
            net.session(publisher.ep).handle_timeout(now);
        };
        at(&mut net, 0);
        let g0 = net.session(publisher.ep).open_group(publisher.streams[0], 0).unwrap();
        net.session(publisher.ep).write_frame(g0, 0, payload(0, 0)).unwrap();
        net.run();
        at(&mut net, 10);
        let g1 = net.session(publisher.ep).open_group(publisher.streams[0], 1).unwrap();
        net.session(publisher.ep).write_frame(g1, 1, payload(1, 0)).unwrap();
        net.run();
        at(&mut net, 10);
        net.session(publisher.ep).write_frame(g0, 2, payload(0, 1)).unwrap();
        net.session(publisher.ep).finish_group(g0).unwrap();
        net.run();
        at(&mut net, 1);
        let events = net.events(sub);
        let reset: Vec<&Event> =
            events.iter().filter(|e| matches!(e, Event::GroupEnded { code: Some(_), .. })).collect();
        assert!(reset.is_empty(), "{v}: fresh groups were dropped: {reset:?}");
        assert_eq!(frames_by_group(&events).get(&0).map(Vec::len), Some(2), "{v}: group 0 complete");
        assert_eq!(net.node(relay).stats().groups_dropped, 0, "{v}");
    }
}

/// lite-06 frame bounds through a relay: a subscriber asking for groups 1..=2, from frame 2 of
/// group 1 to frame 1 of group 2, gets exactly those frames, and its subscription ends after the
/// end group although the publisher goes on.
#[test]
fn lite06_start_and_end_frames_through_a_relay() {
    let v = Version::Lite06;
    let mut net = network(v);
    let relay = relay_node(&mut net, 0x5e1a);
    let mut publisher = Publisher::new(&mut net, relay, "live/cam");
    let (_, sub) = client(&mut net, relay, 0x99);
    let params = SubscribeParams {
        max_latency: 60_000,
        start_group: Some(1),
        start_frame: 2,
        end_group: Some(2),
        end_frame: Some(1),
        ..Default::default()
    };
    let id = net.session(sub).subscribe(p("live/cam"), "video", params).unwrap();
    net.run();
    publisher.accept(&mut net);
    for seq in 0..5 {
        publisher.group(&mut net, seq, 5);
    }
    let grace = net.session(sub).config().end_grace;
    net.advance(grace);
    let events = net.events(sub);
    let groups = frames_by_group(&events);
    let want: std::collections::BTreeMap<u64, Vec<Bytes>> =
        [(1, (2..5).map(|f| payload(1, f)).collect()), (2, (0..2).map(|f| payload(2, f)).collect())].into();
    assert_eq!(groups, want);
    assert!(
        events.contains(&Event::SubscriptionEnded { subscription: id, code: None }),
        "the subscription ends past its end group: {events:?}"
    );
}
