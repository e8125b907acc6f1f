//! Access control in the relay core, on the in-memory rig: sessions waiting for their access,
//! scoping by the connect path, what a session may announce, subscribe to, fetch and ask about,
//! which announcements it hears, expiry during a session, and relay peers with and without the
//! cluster right. Every refusal is checked with the code that comes back.

use std::time::Duration;

use bytes::Bytes;
use moqt_proto::access::{Access, Grant, Pattern, Patterns};
use moqt_proto::message::TrackInfo;
use moqt_proto::relay::{NodeConfig, NodeEvent, SessionId};
use moqt_proto::session::{
    session_code, stream_code, Config, Event, Perspective, PublicationId, PublishParams, SubscribeParams,
};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, Version};

fn p(s: &str) -> Path {
    Path::new(s)
}

fn set(patterns: &[&str]) -> Patterns {
    patterns.iter().map(|t| t.parse::<Pattern>().unwrap()).collect()
}

/// The access a grant with this root and patterns gives a session connected to `connect`.
fn access(root: &str, publish: &[&str], subscribe: &[&str], connect: &str) -> Access {
    Grant { root: p(root), publish: set(publish), subscribe: set(subscribe), cluster: false, expires: None }
        .authorize(&p(connect))
        .unwrap()
}

fn network(v: Version) -> Net {
    let mut net = Net::new(v);
    net.max_rounds = 20_000;
    net
}

/// A relay whose sessions wait for their access.
fn relay(net: &mut Net, hop_id: u64) -> usize {
    net.add_node(NodeConfig { hop_id, require_access: true, ..NodeConfig::relay() })
}

/// A client session connected to `relay`: (endpoint, the relay's session for it).
fn client(net: &mut Net, relay: usize, hop: u64, setup_path: Option<&str>) -> (usize, SessionId) {
    let mut config = Config::new(net.version, Perspective::Client);
    config.hop_id = hop;
    config.setup_path = setup_path.map(str::to_string);
    let ep = net.add_session(config);
    let link = net.connect(ep, relay, WireOptions::default());
    (ep, net.ends(link)[1].session.expect("a node session"))
}

/// A client admitted with `access`.
fn admitted(net: &mut Net, relay: usize, hop: u64, access: Access) -> (usize, SessionId) {
    let (ep, sid) = client(net, relay, hop, None);
    net.node(relay).set_access(sid, access, None);
    net.run();
    (ep, sid)
}

/// The paths a client's interests hear announced (net of ends), in order.
fn announced(net: &mut Net, ep: usize, live: &mut Vec<String>) {
    for e in net.events(ep) {
        match e {
            Event::Announced { path, .. } => live.push(path.as_str().to_string()),
            Event::Unannounced { path, .. } => live.retain(|x| x != path.as_str()),
            _ => {}
        }
    }
    live.sort();
    live.dedup();
}

fn subscribe(net: &mut Net, ep: usize, path: &str) -> moqt_proto::SubscriptionId {
    let id = net
        .session(ep)
        .subscribe(p(path), "video", SubscribeParams { max_latency: 60_000, ..Default::default() })
        .unwrap();
    net.run();
    id
}

/// The code a subscription ended with, if it did.
fn ended(events: &[Event], id: moqt_proto::SubscriptionId) -> Option<Option<u64>> {
    events.iter().find_map(|e| match e {
        Event::SubscriptionEnded { subscription, code } if *subscription == id => Some(*code),
        _ => None,
    })
}

/// Accepts every pending subscription of a publisher and writes one group to each.
fn serve(net: &mut Net, ep: usize) -> Vec<PublicationId> {
    let mut accepted = Vec::new();
    for e in net.events(ep) {
        if let Event::SubscribeRequest { publication, .. } = e {
            net.session(ep).accept_subscription(publication, PublishParams::default()).unwrap();
            accepted.push(publication);
        }
    }
    for &publication in &accepted {
        let s = net.session(ep);
        let g = s.open_group(publication, 0).unwrap();
        s.write_frame(g, 1, Bytes::from_static(b"hello")).unwrap();
        s.finish_group(g).unwrap();
    }
    net.run();
    accepted
}

fn frames(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::Frame { .. })).count()
}

#[test]
fn a_session_waits_for_its_access_and_its_requests_are_held() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        let (publisher, _) = admitted(&mut net, r, 7, Access::full(&Path::root()));
        net.session(publisher).announce(p("room/cam")).unwrap();
        net.run();
        let (sub, sid) = client(&mut net, r, 8, None);
        assert!(net.node(r).is_pending(sid), "{v}");
        net.session(sub).announce_interest(p("")).unwrap();
        let id = subscribe(&mut net, sub, "room/cam");
        // Announcements while it waits are not told either.
        net.session(publisher).announce(p("room/mic")).unwrap();
        net.node(r).publish_broadcast(p("room/local"));
        net.run();
        assert!(serve(&mut net, publisher).is_empty(), "{v}: nothing is served before the access");
        let events = net.events(sub);
        assert!(ended(&events, id).is_none(), "{v}: the request is held, not refused");
        assert!(!events.iter().any(|e| matches!(e, Event::Announced { .. })), "{v}: nothing announced yet");

        net.node(r).set_access(sid, access("", &[], &["room/**"], "/"), None);
        net.run();
        assert!(!net.node(r).is_pending(sid));
        assert_eq!(serve(&mut net, publisher).len(), 1, "{v}: the held subscription went upstream");
        let events = net.events(sub);
        let mut live = Vec::new();
        for e in &events {
            if let Event::Announced { path, .. } = e {
                live.push(path.as_str().to_string());
            }
        }
        live.sort();
        assert_eq!(live, ["room/cam", "room/local", "room/mic"], "{v}");
        assert_eq!(frames(&events), 1, "{v}");
    }
}

#[test]
fn a_session_not_admitted_in_time_is_closed_with_timeout() {
    let mut net = network(Version::Lite06);
    let r = relay(&mut net, 0x51);
    let (ep, _) = client(&mut net, r, 8, None);
    net.advance(NodeConfig::relay().admission_timeout + Duration::from_millis(1));
    let closed = net.events(ep).into_iter().find_map(|e| match e {
        Event::Closed { code, .. } => Some(code),
        _ => None,
    });
    assert_eq!(closed, Some(session_code::TIMEOUT));
    assert_eq!(net.node(r).stats().access.admissions_timed_out, 1);
    assert_eq!(net.node(r).stats().sessions, 0);
}

#[test]
fn the_setup_path_is_reported_for_the_decision() {
    for v in [Version::Lite05, Version::Lite06] {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        let (_, sid) = client(&mut net, r, 8, Some("/room?jwt=abc"));
        let reported: Vec<_> = net
            .node_events(r)
            .into_iter()
            .filter_map(|e| match e {
                NodeEvent::AwaitingAccess { session, setup_path } => Some((session, setup_path)),
                _ => None,
            })
            .collect();
        assert_eq!(reported, vec![(sid, Some("/room?jwt=abc".to_string()))], "{v}");
    }
}

#[test]
fn a_refused_session_closes_with_unauthorized() {
    let mut net = network(Version::Lite05);
    let r = relay(&mut net, 0x51);
    let (ep, sid) = client(&mut net, r, 8, Some("/room"));
    net.node(r).close_session(sid, session_code::UNAUTHORIZED, "bad_signature");
    net.run();
    let closed = net.events(ep).into_iter().find_map(|e| match e {
        Event::Closed { code, .. } => Some(code),
        _ => None,
    });
    assert_eq!(closed, Some(session_code::UNAUTHORIZED));
    assert!(net
        .node_events(r)
        .iter()
        .any(|e| matches!(e, NodeEvent::SessionClosed { code, .. } if *code == session_code::UNAUTHORIZED)));
}

#[test]
fn paths_are_scoped_by_the_connect_path() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        // Connected to /room: "alice/cam" is room/alice/cam on the relay.
        let (publisher, _) = admitted(&mut net, r, 7, access("room", &["alice/**"], &[], "/room"));
        net.session(publisher).announce(p("alice/cam")).unwrap();
        net.run();
        let (top, _) = admitted(&mut net, r, 8, access("", &[], &["**"], "/"));
        let (inside, _) = admitted(&mut net, r, 9, access("room", &[], &["**"], "/room/alice"));
        let (mut at_top, mut at_inside) = (Vec::new(), Vec::new());
        net.session(top).announce_interest(p("")).unwrap();
        net.session(inside).announce_interest(p("")).unwrap();
        net.run();
        announced(&mut net, top, &mut at_top);
        announced(&mut net, inside, &mut at_inside);
        assert_eq!(at_top, ["room/alice/cam"], "{v}");
        assert_eq!(at_inside, ["cam"], "{v}: named relative to /room/alice");

        let a = subscribe(&mut net, top, "room/alice/cam");
        let b = subscribe(&mut net, inside, "cam");
        assert_eq!(serve(&mut net, publisher).len(), 1, "{v}: one upstream for both names");
        for (ep, id) in [(top, a), (inside, b)] {
            let events = net.events(ep);
            assert_eq!(frames(&events), 1, "{v}");
            assert_eq!(ended(&events, id), None, "{v}");
        }
    }
}

#[test]
fn announcing_outside_the_publish_patterns_is_ignored_and_counted() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        let (publisher, _) = admitted(&mut net, r, 7, access("room", &["alice/**", "*/chat"], &[], "/room"));
        for path in ["alice", "alice/cam", "bob/cam", "bob/chat", "bob/chat/x", "alicex"] {
            net.session(publisher).announce(p(path)).unwrap();
        }
        net.run();
        let (watcher, _) = admitted(&mut net, r, 8, Access::full(&Path::root()));
        net.session(watcher).announce_interest(p("")).unwrap();
        net.run();
        let mut live = Vec::new();
        announced(&mut net, watcher, &mut live);
        assert_eq!(live, ["room/alice", "room/alice/cam", "room/bob/chat"], "{v}");
        assert_eq!(net.node(r).stats().access.announces_refused, 3, "{v}");
    }
}

#[test]
fn a_session_hears_only_what_it_may_subscribe_to() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        let (publisher, _) = admitted(&mut net, r, 7, Access::full(&Path::root()));
        for path in ["room/alice/cam", "room/bob/cam", "lobby/chat", "room/carol/chat"] {
            net.session(publisher).announce(p(path)).unwrap();
        }
        net.run();
        // Publishing bob does not make it visible; subscribing to alice and */chat does.
        let (sub, _) = admitted(&mut net, r, 8, access("room", &["bob/**"], &["alice/**", "*/chat"], "/room"));
        net.session(sub).announce_interest(p("")).unwrap();
        // bob/cam reaches nothing it may subscribe to (*/chat needs a second segment `chat`).
        net.session(sub).announce_interest(p("bob/cam")).unwrap();
        net.run();
        let mut live = Vec::new();
        announced(&mut net, sub, &mut live);
        assert_eq!(live, ["alice/cam", "carol/chat"], "{v}");
        assert_eq!(net.node(r).stats().access.interests_out_of_scope, 1, "{v}: the bob/cam interest");

        // Later announcements are filtered the same way, and ends reach only who saw them.
        net.session(publisher).announce(p("room/alice/mic")).unwrap();
        net.session(publisher).announce(p("room/bob/mic")).unwrap();
        net.session(publisher).unannounce(&p("room/bob/cam")).unwrap();
        net.session(publisher).unannounce(&p("room/alice/cam")).unwrap();
        net.run();
        announced(&mut net, sub, &mut live);
        assert_eq!(live, ["alice/mic", "carol/chat"], "{v}");
    }
}

#[test]
fn requests_outside_the_subscribe_patterns_are_refused_with_unauthorized() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        let (publisher, _) = admitted(&mut net, r, 7, Access::full(&Path::root()));
        net.session(publisher).announce(p("room/bob/cam")).unwrap();
        net.run();
        let (sub, _) = admitted(&mut net, r, 8, access("room", &["bob/**"], &["alice/**"], "/room"));

        let id = subscribe(&mut net, sub, "bob/cam");
        let fetch = net.session(sub).fetch(p("bob/cam"), "video", 0, 0).unwrap();
        let track = v.has_track().then(|| net.session(sub).track_info(p("bob/cam"), "video").unwrap());
        net.run();
        assert!(serve(&mut net, publisher).is_empty(), "{v}: nothing went upstream");
        let events = net.events(sub);
        assert_eq!(ended(&events, id), Some(Some(stream_code::UNAUTHORIZED)), "{v}: subscribe");
        let fetched = events.iter().find_map(|e| match e {
            Event::FetchEnded { fetch: f, code } if *f == fetch => Some(*code),
            _ => None,
        });
        assert_eq!(fetched, Some(Some(stream_code::UNAUTHORIZED)), "{v}: fetch");
        if let Some(track) = track {
            let failed = events.iter().find_map(|e| match e {
                Event::TrackFailed { request, code } if *request == track => Some(*code),
                _ => None,
            });
            assert_eq!(failed, Some(stream_code::UNAUTHORIZED), "{v}: track");
        }
        let stats = net.node(r).stats().access;
        assert_eq!((stats.subscribes_refused, stats.fetches_refused), (1, 1), "{v}");
        assert_eq!(stats.track_infos_refused, u64::from(v.has_track()), "{v}");
        // The session goes on: what it may reach is served.
        assert_eq!(net.node(r).stats().sessions, 2, "{v}");
    }
}

#[test]
fn requests_inside_the_subscribe_patterns_are_served() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        let (publisher, _) = admitted(&mut net, r, 7, Access::full(&Path::root()));
        net.session(publisher).announce(p("room/alice/cam")).unwrap();
        net.run();
        let (sub, _) = admitted(&mut net, r, 8, access("room", &[], &["alice/**"], "/room"));
        let id = subscribe(&mut net, sub, "alice/cam");
        serve(&mut net, publisher);
        let track = v.has_track().then(|| net.session(sub).track_info(p("alice/cam"), "video").unwrap());
        net.run();
        // The relay asks the publisher.
        for e in net.events(publisher) {
            if let Event::TrackRequest { request, .. } = e {
                net.session(publisher).track_reply(request, TrackInfo::default()).unwrap();
            }
        }
        net.run();
        let events = net.events(sub);
        assert_eq!(frames(&events), 1, "{v}");
        assert_eq!(ended(&events, id), None, "{v}");
        if let Some(track) = track {
            assert!(
                events.iter().any(|e| matches!(e, Event::TrackInfo { request, .. } if *request == track)),
                "{v}: TRACK answered"
            );
        }
        // The group is cached: a fetch of it is served.
        let fetch = net.session(sub).fetch(p("alice/cam"), "video", 0, 0).unwrap();
        net.run();
        let events = net.events(sub);
        assert!(events.iter().any(|e| matches!(e, Event::FetchFrame { fetch: f, .. } if *f == fetch)), "{v}");
        assert!(events.iter().any(|e| matches!(e, Event::FetchEnded { fetch: f, code: None } if *f == fetch)), "{v}");
    }
}

#[test]
fn a_session_ends_when_its_access_expires() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        let (publisher, _) = admitted(&mut net, r, 7, Access::full(&Path::root()));
        net.session(publisher).announce(p("room/cam")).unwrap();
        net.run();
        let (sub, sid) = client(&mut net, r, 8, None);
        let deadline = net.now + Duration::from_secs(60);
        net.node(r).set_access(sid, access("", &[], &["**"], "/"), Some(deadline));
        net.run();
        let id = subscribe(&mut net, sub, "room/cam");
        serve(&mut net, publisher);
        net.advance(Duration::from_secs(59));
        let events = net.events(sub);
        assert_eq!(frames(&events), 1, "{v}");
        assert!(!events.iter().any(|e| matches!(e, Event::Closed { .. })), "{v}: still open before the expiry");

        net.advance(Duration::from_secs(1));
        let events = net.events(sub);
        let closed = events.iter().find_map(|e| match e {
            Event::Closed { code, .. } => Some(*code),
            _ => None,
        });
        assert_eq!(closed, Some(session_code::UNAUTHORIZED), "{v}");
        assert!(ended(&events, id).is_some(), "{v}: its subscription ended with it");
        assert_eq!(net.node(r).stats().access.sessions_expired, 1, "{v}");
        assert_eq!(net.node(r).stats().sessions, 1, "{v}: only the publisher is left");
    }
}

#[test]
fn a_new_access_moves_the_expiry_and_widens_what_is_seen() {
    let v = Version::Lite06;
    let mut net = network(v);
    let r = relay(&mut net, 0x51);
    let (publisher, _) = admitted(&mut net, r, 7, Access::full(&Path::root()));
    net.session(publisher).announce(p("room/alice")).unwrap();
    net.session(publisher).announce(p("room/bob")).unwrap();
    net.run();
    let (sub, sid) = client(&mut net, r, 8, None);
    let first = net.now + Duration::from_secs(10);
    net.node(r).set_access(sid, access("room", &[], &["alice"], "/room"), Some(first));
    net.session(sub).announce_interest(p("")).unwrap();
    net.run();
    let mut live = Vec::new();
    announced(&mut net, sub, &mut live);
    assert_eq!(live, ["alice"]);
    // A re-check: wider, with a later expiry.
    let later = net.now + Duration::from_secs(100);
    net.node(r).set_access(sid, access("room", &[], &["**"], "/room"), Some(later));
    net.run();
    announced(&mut net, sub, &mut live);
    assert_eq!(live, ["alice", "bob"]);
    net.advance(Duration::from_secs(50));
    assert!(!net.events(sub).iter().any(|e| matches!(e, Event::Closed { .. })), "the old expiry no longer applies");
    net.advance(Duration::from_secs(50));
    assert!(net
        .events(sub)
        .iter()
        .any(|e| matches!(e, Event::Closed { code, .. } if *code == session_code::UNAUTHORIZED)));
}

#[test]
fn a_re_check_that_changes_the_root_ends_the_session() {
    let mut net = network(Version::Lite05);
    let r = relay(&mut net, 0x51);
    let (sub, sid) = admitted(&mut net, r, 8, access("room", &[], &["**"], "/room"));
    net.node(r).set_access(sid, access("", &[], &["**"], "/"), None);
    net.run();
    assert!(net
        .events(sub)
        .iter()
        .any(|e| matches!(e, Event::Closed { code, .. } if *code == session_code::UNAUTHORIZED)));
}

#[test]
fn an_access_already_expired_closes_at_once() {
    let mut net = network(Version::Lite04);
    let r = relay(&mut net, 0x51);
    let (sub, sid) = client(&mut net, r, 8, None);
    let now = net.now;
    net.node(r).set_access(sid, Access::full(&Path::root()), Some(now));
    net.run();
    assert!(net
        .events(sub)
        .iter()
        .any(|e| matches!(e, Event::Closed { code, .. } if *code == session_code::UNAUTHORIZED)));
    assert_eq!(net.node(r).stats().access.sessions_expired, 1);
}

/// Two relays: `edge` (open) dials `core` (which requires access); a publisher on the edge.
/// Returns (net, core, the core's session for the edge, publisher, watcher on the core).
fn two_relays(v: Version) -> (Net, usize, SessionId, usize, usize) {
    let mut net = network(v);
    let core = relay(&mut net, 0xC0);
    let edge = net.add_node(NodeConfig { hop_id: 0xED, ..NodeConfig::relay() });
    let link = net.connect(edge, core, WireOptions::default());
    let peer = net.ends(link)[1].session.unwrap();
    // A publisher with its own hop id (lite-04 only lists hops that are not zero).
    let mut config = Config::new(v, Perspective::Client);
    config.hop_id = 0x77;
    let publisher = net.add_session(config);
    net.connect(publisher, edge, WireOptions::default());
    net.session(publisher).announce(p("live/cam")).unwrap();
    net.node(edge).publish_broadcast(p("edge/status"));
    net.run();
    let (watcher, _) = admitted(&mut net, core, 8, Access::full(&Path::root()));
    net.session(watcher).announce_interest(p("")).unwrap();
    net.run();
    (net, core, peer, publisher, watcher)
}

#[test]
fn a_relay_peer_without_the_cluster_right_forwards_only_its_own_broadcasts() {
    for v in Version::ALL {
        let (mut net, core, peer, _, watcher) = two_relays(v);
        // Everything to publish, but not everything to subscribe: not a root grant.
        let a = access("", &["**"], &["edge/**"], "/");
        assert!(!a.cluster());
        net.node(core).set_access(peer, a, None);
        net.run();
        let mut live = Vec::new();
        announced(&mut net, watcher, &mut live);
        assert_eq!(live, ["edge/status"], "{v}: the edge's own broadcast only");
        assert_eq!(net.node(core).stats().access.forwards_refused, 1, "{v}");
    }
}

#[test]
fn a_relay_peer_with_the_cluster_right_forwards_everything() {
    for v in Version::ALL {
        let (mut net, core, peer, publisher, watcher) = two_relays(v);
        // A root token at the top: everything, so the cluster right.
        let a = Grant { root: Path::root(), publish: Patterns::all(), subscribe: Patterns::all(), ..Grant::default() }
            .authorize(&Path::root())
            .unwrap();
        assert!(a.cluster());
        net.node(core).set_access(peer, a, None);
        net.run();
        let mut live = Vec::new();
        announced(&mut net, watcher, &mut live);
        assert_eq!(live, ["edge/status", "live/cam"], "{v}");
        assert_eq!(net.node(core).stats().access.forwards_refused, 0, "{v}");
        // And media crosses the link.
        let id = subscribe(&mut net, watcher, "live/cam");
        serve(&mut net, publisher);
        let events = net.events(watcher);
        assert_eq!(frames(&events), 1, "{v}");
        assert_eq!(ended(&events, id), None, "{v}");
    }
}

#[test]
fn an_explicit_cluster_right_is_limited_by_the_patterns() {
    let v = Version::Lite06;
    let (mut net, core, peer, _, watcher) = two_relays(v);
    let mut grant =
        Grant { root: Path::root(), publish: set(&["edge/**"]), subscribe: set(&["**"]), ..Grant::default() };
    grant.cluster = true;
    net.node(core).set_access(peer, grant.authorize(&Path::root()).unwrap(), None);
    net.run();
    let mut live = Vec::new();
    announced(&mut net, watcher, &mut live);
    assert_eq!(live, ["edge/status"]);
    assert_eq!(net.node(core).stats().access.announces_refused, 1, "live/cam is outside edge/**");
}

#[test]
fn local_broadcasts_are_filtered_like_any_other() {
    let mut net = network(Version::Lite05);
    let r = relay(&mut net, 0x51);
    net.node(r).publish_broadcast(p("room/clock"));
    net.node(r).publish_broadcast(p("other/clock"));
    let track = net.node(r).publish_track(p("other/clock"), "video", TrackInfo::default());
    let (sub, _) = admitted(&mut net, r, 8, access("room", &[], &["**"], "/room"));
    net.session(sub).announce_interest(p("")).unwrap();
    net.run();
    let mut live = Vec::new();
    announced(&mut net, sub, &mut live);
    assert_eq!(live, ["clock"]);
    // other/clock is outside the root: "../other" cannot even be named, and "other/clock" is
    // room/other/clock, which has no route.
    let id = subscribe(&mut net, sub, "other/clock");
    assert_eq!(ended(&net.events(sub), id), Some(Some(stream_code::NOT_FOUND)));
    assert_eq!(net.node(r).track_subscribers(track), 0);
}

mod property {
    //! Random grants, connect paths, announcements and requests: the relay never tells a session
    //! of a path its access does not show, takes exactly the announcements it may publish, and
    //! refuses exactly the subscriptions it may not make.

    use super::*;
    use proptest::prelude::*;

    const SEGMENTS: [&str; 4] = ["a", "b", "room", "cam"];
    const PATTERNS: [&str; 9] = ["**", "a/**", "a", "*/cam", "room/**", "**/cam", "ca*", "", "b/*"];

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(&SEGMENTS[..]), 1..4).prop_map(|s| s.join("/"))
    }

    fn patterns() -> impl Strategy<Value = Vec<&'static str>> {
        prop::collection::vec(prop::sample::select(&PATTERNS[..]), 0..3)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn what_a_session_hears_announces_and_subscribes_follows_its_access(
            v in prop::sample::select(&Version::ALL[..]),
            root in prop::sample::select(&["", "room", "room/a"][..]),
            connect in prop::sample::select(&["/", "/room", "/room/a", "/a"][..]),
            publish in patterns(),
            subscribe in patterns(),
            others in prop::collection::btree_set(path(), 0..5),
            own in prop::collection::btree_set(path(), 0..4),
            asks in prop::collection::vec(path(), 0..4),
        ) {
            let grant = Grant { root: p(root), publish: set(&publish), subscribe: set(&subscribe), ..Grant::default() };
            let Ok(a) = grant.authorize(&p(connect)) else { return Ok(()) };
            let mut net = network(v);
            let r = relay(&mut net, 0x51);
            let (publisher, _) = admitted(&mut net, r, 7, Access::full(&Path::root()));
            for o in &others {
                net.session(publisher).announce(p(o)).unwrap();
            }
            net.run();
            let (watcher, _) = admitted(&mut net, r, 9, Access::full(&Path::root()));
            net.session(watcher).announce_interest(p("")).unwrap();
            let (ep, _) = admitted(&mut net, r, 8, a.clone());
            for o in &own {
                net.session(ep).announce(p(o)).unwrap();
            }
            net.session(ep).announce_interest(p("")).unwrap();
            let ids: Vec<_> = asks
                .iter()
                .map(|x| net.session(ep).subscribe(p(x), "t", SubscribeParams::default()).unwrap())
                .collect();
            net.run();

            let events = net.events(ep);
            let mut heard: Vec<String> = Vec::new();
            for e in &events {
                match e {
                    Event::Announced { path, .. } => heard.push(path.as_str().to_string()),
                    Event::Unannounced { path, .. } => heard.retain(|x| x != path.as_str()),
                    _ => {}
                }
            }
            heard.sort();
            heard.dedup();
            let mut want: Vec<String> = others
                .iter()
                .filter_map(|o| a.may_see(&p(o)))
                .map(|x| x.as_str().to_string())
                .collect();
            want.sort();
            want.dedup();
            prop_assert_eq!(&heard, &want, "heard");

            let mut seen = Vec::new();
            announced(&mut net, watcher, &mut seen);
            for o in &own {
                let absolute = a.absolute(&p(o)).as_str().to_string();
                let elsewhere = others.contains(&absolute);
                prop_assert_eq!(seen.contains(&absolute), elsewhere || a.can_publish(&p(o)), "own {}", o);
            }
            for (x, id) in asks.iter().zip(ids) {
                let refused = ended(&events, id) == Some(Some(stream_code::UNAUTHORIZED));
                prop_assert_eq!(refused, !a.can_subscribe(&p(x)), "subscribe {}", x);
            }
        }
    }
}

#[test]
fn a_route_switch_names_the_broadcast_as_the_new_upstream_does() {
    for v in Version::ALL {
        let mut net = network(v);
        let r = relay(&mut net, 0x51);
        // Two publishers of room/cam: one connected at / (it says "room/cam"), one at /room ("cam").
        let (first, _) = admitted(&mut net, r, 7, access("", &["room/**"], &[], "/"));
        net.session(first).announce(p("room/cam")).unwrap();
        net.run();
        let (sub, _) = admitted(&mut net, r, 8, access("", &[], &["**"], "/"));
        let id = subscribe(&mut net, sub, "room/cam");
        assert_eq!(serve(&mut net, first).len(), 1, "{v}");
        let (second, _) = admitted(&mut net, r, 9, access("room", &["**"], &[], "/room"));
        net.session(second).announce(p("cam")).unwrap();
        net.run();
        // The first publisher leaves: the relay subscribes over the second, by its own name.
        let (link, _) = net.link_of(first);
        net.disconnect(link, 0);
        let asked: Vec<String> = net
            .events(second)
            .into_iter()
            .filter_map(|e| match e {
                Event::SubscribeRequest { subscribe, .. } => Some(subscribe.path.as_str().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(asked, ["cam"], "{v}");
        let events = net.events(sub);
        assert_eq!(ended(&events, id), None, "{v}: the subscriber was not reset");
    }
}
