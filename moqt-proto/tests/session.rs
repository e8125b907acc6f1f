//! Scripted two-session scenarios over the in-memory rig (`moqt_proto::testing`), for every flow
//! in every version.

use std::time::Duration;

use bytes::Bytes;
use moqt_proto::message::{Probe, SubscribeDrop, TrackInfo};
use moqt_proto::session::{
    session_code, stream_code, Command, Error, Event, GroupId, PublicationId, PublishParams, SubscribeParams,
    SubscriptionId,
};
use moqt_proto::testing::{Net, A, B};
use moqt_proto::{Path, Version};

fn p(s: &str) -> Path {
    Path::new(s)
}

fn all_versions() -> [Version; 4] {
    Version::ALL
}

/// A subscribes to B's `room/alice`/`video`; B accepts. Returns (sub id at A, publication at B).
fn subscribed(net: &mut Net, params: SubscribeParams) -> (SubscriptionId, PublicationId) {
    let id = net.session(A).subscribe(p("room/alice"), "video", params).unwrap();
    net.run();
    let stream = net
        .events(B)
        .into_iter()
        .find_map(|e| match e {
            Event::SubscribeRequest { publication, subscribe } => {
                assert_eq!(subscribe.path, p("room/alice"));
                assert_eq!(subscribe.track, "video");
                assert_eq!(subscribe.priority, params.priority);
                Some(publication)
            }
            _ => None,
        })
        .expect("subscribe request");
    net.session(B).accept_subscription(stream, PublishParams { priority: 7, ..Default::default() }).unwrap();
    net.run();
    (id, stream)
}

#[test]
fn setup_exchange() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let setups =
            |net: &mut Net, side| net.events(side).into_iter().filter(|e| matches!(e, Event::PeerSetup(_))).count();
        let expected = usize::from(v.has_setup());
        assert_eq!(setups(&mut net, A), expected, "{v}");
        assert_eq!(setups(&mut net, B), expected, "{v}");
        if v.has_setup() {
            assert_eq!(net.session(A).peer_setup().unwrap().hop, Some(0xB));
            assert_eq!(net.session(B).peer_setup().unwrap().hop, Some(0xA));
        }
    }
}

#[test]
fn announce_initial_set_live_and_ended() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        net.session(B).announce(p("room/alice")).unwrap();
        net.session(B).announce(p("other/carol")).unwrap();
        let interest = net.session(A).announce_interest(p("room")).unwrap();
        net.run();
        net.session(B).announce(p("room/bob")).unwrap();
        net.session(B).announce(p("roomy/dave")).unwrap(); // not under "room" segment-wise
        net.run();
        net.session(B).unannounce(&p("room/alice")).unwrap();
        net.run();
        let events: Vec<Event> = net.events(A).into_iter().filter(|e| !matches!(e, Event::PeerSetup(_))).collect();
        let expected_hops: Vec<u64> = match v {
            Version::Lite03 => vec![0],
            _ => vec![0xB],
        };
        let announced = |path: &str| Event::Announced {
            interest,
            path: p(path),
            hops: expected_hops.iter().copied().collect(),
            cost: Default::default(),
        };
        let mut expected = vec![announced("room/alice")];
        if v.has_announce_ok() {
            expected.push(Event::AnnounceSynced { interest });
        }
        expected.push(announced("room/bob"));
        expected.push(Event::Unannounced { interest, path: p("room/alice") });
        assert_eq!(events, expected, "{v}");
        // The publisher saw the interest.
        assert!(net
            .events(B)
            .iter()
            .any(|e| matches!(e, Event::AnnounceInterest { prefix, .. } if *prefix == p("room"))));
        // Withdrawing the interest ends its live paths locally.
        net.session(A).cancel_announce_interest(interest).unwrap();
        net.run();
        let events = net.events(A);
        assert!(events.contains(&Event::Unannounced { interest, path: p("room/bob") }), "{v}");
        assert!(events.iter().any(|e| matches!(e, Event::AnnounceInterestEnded { .. })));
        assert!(net.events(B).iter().any(|e| matches!(e, Event::AnnounceInterestCancelled { .. })), "{v}");
    }
}

#[test]
fn reannounce_with_new_route_replaces_the_old_one() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let interest = net.session(A).announce_interest(Path::root()).unwrap();
        net.session(B).announce_route(p("x"), [5u64].into_iter().collect(), Default::default()).unwrap();
        net.run();
        net.session(B).announce_route(p("x"), [6u64, 7].into_iter().collect(), Default::default()).unwrap();
        net.run();
        let announced: Vec<Vec<u64>> = net
            .events(A)
            .into_iter()
            .filter_map(|e| match e {
                Event::Announced { interest: i, hops, .. } if i == interest => Some(hops.to_vec()),
                _ => None,
            })
            .collect();
        let expected = match v {
            Version::Lite03 => vec![vec![0, 0], vec![0, 0, 0]],
            Version::Lite04 => vec![vec![5, 0xB], vec![6, 7, 0xB]],
            _ => vec![vec![5, 0xB], vec![6, 7, 0xB]],
        };
        assert_eq!(announced, expected, "{v}");
        assert!(!net.session(A).is_closed(), "{v}: re-announcing must not be a violation");
    }
}

#[test]
fn exclude_hop_filters_announcements() {
    for v in [Version::Lite04, Version::Lite05, Version::Lite06] {
        let mut net = Net::pair(v);
        // A route through A (hop 0xA) must not be shown to A.
        net.session(B).announce_route(p("loop"), [0xAu64].into_iter().collect(), Default::default()).unwrap();
        net.session(B).announce(p("fine")).unwrap();
        let _ = net.session(A).announce_interest(Path::root()).unwrap();
        net.run();
        let paths: Vec<Path> = net
            .events(A)
            .into_iter()
            .filter_map(|e| match e {
                Event::Announced { path, .. } => Some(path),
                _ => None,
            })
            .collect();
        assert_eq!(paths, vec![p("fine")], "{v}");
    }
}

#[test]
fn subscribe_groups_frames_and_end() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        net.events(A);
        let params = SubscribeParams { priority: 9, max_latency: 1000, ..Default::default() };
        let (id, stream) = subscribed(&mut net, params);
        for seq in 0..3u64 {
            let g = net.session(B).open_group(stream, seq).unwrap();
            for f in 0..4u64 {
                net.session(B).write_frame(g, seq * 1000 + f * 33, Bytes::from(format!("{seq}:{f}"))).unwrap();
            }
            net.session(B).finish_group(g).unwrap();
            net.run();
        }
        net.session(B).end_subscription(stream, None).unwrap();
        net.run();
        let mut events = net.events(A);
        // Groups may still be in flight behind the FIN: the end is reported after the grace.
        assert!(!events.iter().any(|e| matches!(e, Event::SubscriptionEnded { .. })), "{v}");
        let grace = net.session(A).config().end_grace;
        net.advance(grace);
        events.extend(net.events(A));
        // First response per version.
        if v.has_subscribe_start() {
            assert_eq!(events.first(), Some(&Event::SubscribeStart { subscription: id, group: 0 }), "{v}");
            assert!(events.contains(&Event::SubscribeEnd { subscription: id, group: 3 }), "{v}");
        } else {
            assert!(
                matches!(events.first(), Some(Event::SubscribeOk { subscription: i, ok }) if *i == id && ok.priority == 7),
                "{v}"
            );
        }
        let frames: Vec<(u64, Option<u64>, Bytes)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Frame { subscription, sequence, timestamp, payload, .. } => {
                    assert_eq!(*subscription, id);
                    Some((*sequence, *timestamp, payload.clone()))
                }
                _ => None,
            })
            .collect();
        let expected: Vec<(u64, Option<u64>, Bytes)> = (0..3u64)
            .flat_map(|s| {
                (0..4u64).map(move |f| {
                    (s, v.has_frame_timestamps().then_some(s * 1000 + f * 33), Bytes::from(format!("{s}:{f}")))
                })
            })
            .collect();
        assert_eq!(frames, expected, "{v}");
        let ended = events.iter().filter(|e| matches!(e, Event::GroupEnded { code: None, .. })).count();
        assert_eq!(ended, 3, "{v}");
        assert_eq!(events.last(), Some(&Event::SubscriptionEnded { subscription: id, code: None }), "{v}");
        assert_eq!(net.session(B).queued_bytes(), 0);
    }
}

#[test]
fn update_unsubscribe_and_reject() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (id, stream) = subscribed(&mut net, SubscribeParams { priority: 1, ..Default::default() });
        let update = SubscribeParams { priority: 200, max_latency: 2000, ..Default::default() };
        net.session(A).update_subscription(id, update).unwrap();
        net.run();
        let updated = net.events(B).into_iter().find_map(|e| match e {
            Event::SubscribeUpdated { publication: s, update } if s == stream => Some(update),
            _ => None,
        });
        assert_eq!(updated.map(|u| (u.priority, u.max_latency)), Some((200, 2000)), "{v}");
        assert_eq!(net.session(B).subscription_params(stream).unwrap().priority, 200);
        // An open group, then the subscriber leaves: the group is reset, the publisher hears it.
        let g = net.session(B).open_group(stream, 0).unwrap();
        net.session(B).write_frame(g, 0, Bytes::from_static(b"x")).unwrap();
        net.run();
        net.session(A).unsubscribe(id).unwrap();
        net.run();
        assert!(net.events(B).contains(&Event::SubscribeCancelled { publication: stream, code: None }), "{v}");
        assert_eq!(net.session(B).write_frame(g, 1, Bytes::from_static(b"y")), Err(Error::UnknownHandle));
        let a_events = net.events(A);
        assert_eq!(
            a_events.iter().filter(|e| matches!(e, Event::GroupEnded { .. })).count(),
            a_events.iter().filter(|e| matches!(e, Event::GroupStarted { .. })).count(),
            "{v}: every group ends exactly once"
        );
        // Rejection.
        let id = net.session(A).subscribe(p("nope"), "video", SubscribeParams::default()).unwrap();
        net.run();
        let stream = net.events(B).into_iter().find_map(|e| match e {
            Event::SubscribeRequest { publication, .. } => Some(publication),
            _ => None,
        });
        net.session(B).reject_subscription(stream.unwrap(), stream_code::NOT_FOUND).unwrap();
        net.run();
        assert!(
            net.events(A).contains(&Event::SubscriptionEnded { subscription: id, code: Some(stream_code::NOT_FOUND) }),
            "{v}"
        );
        assert!(!net.session(A).is_closed() && !net.session(B).is_closed());
    }
}

#[test]
fn drop_groups_both_dialects() {
    for (v, gomoqt) in [
        (Version::Lite03, false),
        (Version::Lite04, false),
        (Version::Lite04, true),
        (Version::Lite05, false),
        (Version::Lite06, false),
    ] {
        let mut a = moqt_proto::Config::new(v, moqt_proto::Perspective::Client);
        let mut b = moqt_proto::Config::new(v, moqt_proto::Perspective::Server);
        if gomoqt {
            a.dialect = moqt_proto::Dialect::Gomoqt;
            b.dialect = moqt_proto::Dialect::Gomoqt;
        }
        let mut net = Net::pair_with(a, b, Default::default());
        let (id, stream) = subscribed(&mut net, SubscribeParams::default());
        if gomoqt {
            assert!(!net.events(A).iter().any(|e| matches!(e, Event::SubscribeOk { .. })), "gomoqt answers lazily");
            let g = net.session(B).open_group(stream, 1).unwrap();
            net.session(B).finish_group(g).unwrap();
            net.run();
            let ok = net.events(A).into_iter().find_map(|e| match e {
                Event::SubscribeOk { ok, .. } => Some(ok),
                _ => None,
            });
            assert_eq!(ok.unwrap().start_group, Some(1));
        }
        net.session(B).drop_groups(stream, 5, 7, 3).unwrap();
        net.run();
        assert!(
            net.events(A).contains(&Event::GroupsDropped {
                subscription: id,
                drop: SubscribeDrop { start: 5, end: 7, error: 3 }
            }),
            "{v}"
        );
    }
}

#[test]
fn fetch_track_probe_goaway_datagram() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        net.events(A);
        net.events(B);
        // Fetch.
        let fetch = net.session(A).fetch(p("room/alice"), "video", 5, 42).unwrap();
        net.run();
        let served = net.events(B).into_iter().find_map(|e| match e {
            Event::FetchRequest { fetch, request } => Some((fetch, request)),
            _ => None,
        });
        let (fs, req) = served.expect("fetch request");
        assert_eq!((req.group, req.priority, req.track.as_str()), (42, 5, "video"));
        net.session(B).fetch_frame(fs, 90_000, Bytes::from_static(b"ab")).unwrap();
        net.session(B).fetch_frame(fs, 93_000, Bytes::from_static(b"c")).unwrap();
        net.session(B).fetch_finish(fs).unwrap();
        net.run();
        let ts = |t| v.has_frame_timestamps().then_some(t);
        assert_eq!(
            net.events(A),
            vec![
                Event::FetchFrame { fetch, timestamp: ts(90_000), payload: Bytes::from_static(b"ab") },
                Event::FetchFrame { fetch, timestamp: ts(93_000), payload: Bytes::from_static(b"c") },
                Event::FetchEnded { fetch, code: None },
            ],
            "{v}"
        );
        // Probe.
        let probe = net.session(A).probe(Some(1_000_000)).unwrap();
        net.run();
        let events = net.events(B);
        let ps = events.iter().find_map(|e| match e {
            Event::ProbeRequest { probe } => Some(*probe),
            _ => None,
        });
        assert!(events.contains(&Event::ProbeTarget { probe: ps.unwrap(), bitrate: 1_000_000 }), "{v}");
        net.session(B).probe_report(ps.unwrap(), Probe { bitrate: 800_000, rtt_ms: 25 }).unwrap();
        net.run();
        let rtt = if v == Version::Lite03 { 0 } else { 25 };
        assert_eq!(net.events(A), vec![Event::ProbeReport { probe, report: Probe { bitrate: 800_000, rtt_ms: rtt } }]);
        // Track (lite-05+).
        match net.session(A).track_info(p("room/alice"), "video") {
            Err(Error::Unsupported) => assert!(!v.has_track()),
            Ok(ts) => {
                net.run();
                let req = net.events(B).into_iter().find_map(|e| match e {
                    Event::TrackRequest { request, track } => Some((request, track)),
                    _ => None,
                });
                let (rs, track) = req.unwrap();
                assert_eq!(track.track, "video");
                let info = TrackInfo { priority: 3, ordered: false, max_latency: 2000, timescale: 90_000 };
                net.session(B).track_reply(rs, info).unwrap();
                net.run();
                assert_eq!(net.events(A), vec![Event::TrackInfo { request: ts, info }]);
            }
            Err(e) => panic!("{e}"),
        }
        // Datagrams (lite-05+).
        let (id, stream) = subscribed(&mut net, SubscribeParams::default());
        net.events(A);
        match net.session(B).send_datagram(stream, 7, 1000, Bytes::from_static(b"hello")) {
            Err(Error::Unsupported) => assert!(!v.has_datagrams()),
            Ok(()) => {
                net.run();
                let events = net.events(A);
                assert!(
                    events.contains(&Event::Datagram {
                        subscription: id,
                        sequence: 7,
                        timestamp: 1000,
                        payload: Bytes::from_static(b"hello")
                    }),
                    "{v}"
                );
                assert_eq!(
                    net.session(B).send_datagram(stream, 8, 0, Bytes::from(vec![0u8; 1300])),
                    Err(Error::InvalidArgument)
                );
            }
            Err(e) => panic!("{e}"),
        }
        // GOAWAY (lite-04+): the receiver opens no new requests.
        match net.session(B).goaway("https://next.example/") {
            Err(Error::Unsupported) => assert_eq!(v, Version::Lite03),
            Ok(()) => {
                net.run();
                assert!(net.events(A).contains(&Event::Goaway { uri: "https://next.example/".into() }));
                assert_eq!(net.session(A).subscribe(p("x"), "y", SubscribeParams::default()), Err(Error::GoingAway));
                // Existing subscriptions keep flowing.
                let g = net.session(B).open_group(stream, 9).unwrap();
                net.session(B).write_frame(g, 0, Bytes::from_static(b"still")).unwrap();
                net.run();
                assert!(net
                    .events(A)
                    .iter()
                    .any(|e| matches!(e, Event::Frame { payload, .. } if payload == &b"still"[..])));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn unknown_stream_type_resets_only_that_stream() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (id, stream) = subscribed(&mut net, SubscribeParams::default());
        let bad = net.inject_stream(B, false, &[0x3f, 1, 2, 3], false);
        assert!(
            net.commands(B).iter().any(|c| matches!(c, Command::StopSending { stream, .. } if *stream == bad)),
            "{v}"
        );
        assert!(!net.session(B).is_closed(), "{v}");
        // The subscription still works.
        let g = net.session(B).open_group(stream, 0).unwrap();
        net.session(B).write_frame(g, 0, Bytes::from_static(b"ok")).unwrap();
        net.run();
        assert!(net.events(A).iter().any(|e| matches!(e, Event::Frame { subscription, .. } if *subscription == id)));
    }
}

#[test]
fn protocol_violation_closes_the_session() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        // A SUBSCRIBE stream whose message body is garbage.
        net.inject_stream(B, false, &[0x02, 0x03, 0xff, 0xff, 0xff], false);
        assert!(net.session(B).is_closed(), "{v}");
        assert!(net
            .commands(B)
            .iter()
            .any(|c| matches!(c, Command::Close { code, .. } if *code == session_code::PROTOCOL_VIOLATION)));
        assert!(net
            .events(A)
            .iter()
            .any(|e| matches!(e, Event::Closed { code, .. } if *code == session_code::PROTOCOL_VIOLATION)));
    }
}

#[test]
fn group_for_unknown_subscription_is_stopped() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let header: &[u8] =
            if v.has_frame_bounds() { &[0x00, 0x03, 0x2a, 0x00, 0x00] } else { &[0x00, 0x02, 0x2a, 0x00] };
        let id = net.inject_stream(A, true, header, false);
        assert!(
            net.commands(A).contains(&Command::StopSending { stream: id, code: stream_code::UNKNOWN_SUBSCRIPTION }),
            "{v}"
        );
        assert!(!net.events(A).iter().any(|e| matches!(e, Event::GroupStarted { .. })));
    }
}

#[test]
fn stale_groups_expire_by_max_latency() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (_, stream) = subscribed(&mut net, SubscribeParams { max_latency: 100, ..Default::default() });
        net.wire(0).hold(B, true); // the transport takes nothing
        let g0 = net.session(B).open_group(stream, 0).unwrap();
        net.session(B).write_frame(g0, 0, Bytes::from_static(b"old")).unwrap();
        net.advance(Duration::from_millis(50));
        let g1 = net.session(B).open_group(stream, 1).unwrap();
        net.session(B).write_frame(g1, 0, Bytes::from_static(b"new")).unwrap();
        assert!(!net.events(B).iter().any(|e| matches!(e, Event::GroupDropped { .. })), "not yet too old");
        // The core asks to be woken when group 0 becomes too old.
        let deadline = net.session(B).poll_timeout().expect("expiry timer");
        assert_eq!(deadline, net.now + Duration::from_millis(50));
        net.advance(Duration::from_millis(50));
        let events = net.events(B);
        assert!(events.contains(&Event::GroupDropped { group: g0, code: stream_code::EXPIRED }), "{v}");
        assert!(net.commands(B).contains(&Command::Reset { stream: g0.stream(), code: stream_code::EXPIRED }));
        // The latest group is never expired this way.
        net.advance(Duration::from_secs(10));
        assert!(!net.events(B).iter().any(|e| matches!(e, Event::GroupDropped { group, .. } if *group == g1)));
        net.wire(0).hold(B, false);
        net.run();
        assert_eq!(frame_payloads(&net.events(A)), vec![Bytes::from_static(b"new")], "{v}");
    }
}

/// The payloads of the frames that arrived, in order.
fn frame_payloads(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// A subscription at max latency 0 whose group 0 has delivered `first`, one second ago.
fn live_edge_group(net: &mut Net, first: &'static [u8]) -> (PublicationId, GroupId) {
    let (_, stream) = subscribed(net, SubscribeParams { max_latency: 0, ..Default::default() });
    let g0 = net.session(B).open_group(stream, 0).unwrap();
    net.session(B).write_frame(g0, 0, Bytes::from_static(first)).unwrap();
    net.run();
    net.advance(Duration::from_secs(1));
    (stream, g0)
}

/// The sequences of the groups that ended at the subscriber, with their reset codes.
fn ended_groups(events: &[Event]) -> Vec<(u64, Option<u64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupEnded { sequence, code, .. } => Some((*sequence, *code)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_drained_group_ends_with_fin_when_the_next_one_opens() {
    // max latency 0 = only the latest group. A group whose frames were all sent but whose
    // publisher has not finished it yet (moq-dev's clock at a minute's turn) is ended cleanly
    // when the next group opens: moq-dev's subscribers treat a reset group as an error.
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (stream, g0) = live_edge_group(&mut net, b"59");
        let g1 = net.session(B).open_group(stream, 1).unwrap();
        net.session(B).write_frame(g1, 0, Bytes::from_static(b"00")).unwrap();
        let b_events = net.events(B);
        assert!(b_events.contains(&Event::GroupDropped { group: g0, code: stream_code::EXPIRED }), "{v}");
        assert!(!net.commands(B).iter().any(|c| matches!(c, Command::Reset { .. })), "{v}: nothing is reset");
        // The application is told, so it stops writing to the old group.
        assert_eq!(net.session(B).write_frame(g0, 0, Bytes::from_static(b"late")), Err(Error::InvalidState));
        net.run();
        let a_events = net.events(A);
        let ended = ended_groups(&a_events);
        assert!(ended.contains(&(0, None)), "{v}: group 0 ends cleanly: {ended:?}");
        assert_eq!(frame_payloads(&a_events), vec![Bytes::from_static(b"59"), Bytes::from_static(b"00")], "{v}");
    }
}

#[test]
fn a_finished_group_still_draining_is_not_cut_by_the_next_one() {
    // A publisher writes a group's last frame, finishes it and opens the next group in one go
    // (our clock at a minute's turn; any GOP boundary): the tail is delivered and the old
    // group ends with FIN, even at max latency 0.
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (stream, g0) = live_edge_group(&mut net, b"first");
        net.session(B).write_frame(g0, 0, Bytes::from_static(b"tail")).unwrap();
        net.session(B).finish_group(g0).unwrap();
        let g1 = net.session(B).open_group(stream, 1).unwrap();
        net.session(B).write_frame(g1, 0, Bytes::from_static(b"next")).unwrap();
        net.run();
        assert!(!net.events(B).iter().any(|e| matches!(e, Event::GroupDropped { .. })), "{v}");
        let a_events = net.events(A);
        assert!(ended_groups(&a_events).contains(&(0, None)), "{v}");
        let tail = [&b"first"[..], b"tail", b"next"].map(Bytes::from_static).to_vec();
        assert_eq!(frame_payloads(&a_events), tail, "{v}");
    }
}

#[test]
fn a_stalled_group_is_reset_after_the_minimum_stall_at_max_latency_zero() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (_, stream) = subscribed(&mut net, SubscribeParams { max_latency: 0, ..Default::default() });
        net.wire(0).hold(B, true); // the transport takes nothing
        let g0 = net.session(B).open_group(stream, 0).unwrap();
        net.session(B).write_frame(g0, 0, Bytes::from_static(b"stuck")).unwrap();
        let g1 = net.session(B).open_group(stream, 1).unwrap();
        assert!(!net.events(B).iter().any(|e| matches!(e, Event::GroupDropped { .. })), "{v}: not yet");
        let deadline = net.session(B).poll_timeout().expect("stall timer");
        assert_eq!(deadline, net.now + Duration::from_millis(10), "{v}");
        net.advance(Duration::from_millis(10));
        assert!(net.events(B).contains(&Event::GroupDropped { group: g0, code: stream_code::EXPIRED }), "{v}");
        assert!(net.commands(B).contains(&Command::Reset { stream: g0.stream(), code: stream_code::EXPIRED }));
        assert!(!net.events(B).iter().any(|e| matches!(e, Event::GroupDropped { group, .. } if *group == g1)));
    }
}

#[test]
fn queue_budget_drops_oldest_groups_never_the_session() {
    let v = Version::Lite05;
    let mut a = moqt_proto::Config::new(v, moqt_proto::Perspective::Client);
    let mut b = moqt_proto::Config::new(v, moqt_proto::Perspective::Server);
    a.hop_id = 1;
    b.session_limits.max_queued_per_subscription = 10_000;
    let mut net = Net::pair_with(a, b, Default::default());
    let (_, stream) = subscribed(&mut net, SubscribeParams { max_latency: 60_000, ..Default::default() });
    net.wire(0).hold(B, true);
    let mut groups = Vec::new();
    for seq in 0..10u64 {
        let g = net.session(B).open_group(stream, seq).unwrap();
        for _ in 0..3 {
            let _ = net.session(B).write_frame(g, 0, Bytes::from(vec![7u8; 1000]));
            assert!(net.session(B).queued_bytes() <= 10_000, "budget holds");
        }
        groups.push(g);
    }
    let dropped: Vec<_> = net
        .events(B)
        .into_iter()
        .filter_map(|e| match e {
            Event::GroupDropped { group, code } => Some((group, code)),
            _ => None,
        })
        .collect();
    assert!(!dropped.is_empty());
    assert!(dropped.iter().all(|(_, code)| *code == stream_code::TOO_FAR_BEHIND));
    // The oldest went first; the newest survived.
    assert_eq!(dropped[0].0, groups[0]);
    assert!(!dropped.iter().any(|(g, _)| *g == groups[9]));
    // A single frame larger than the whole budget drops its own group.
    let g = net.session(B).open_group(stream, 10).unwrap();
    assert_eq!(net.session(B).write_frame(g, 0, Bytes::from(vec![0u8; 20_000])), Err(Error::GroupDropped));
    assert!(!net.session(B).is_closed());
}

#[test]
fn close_ends_everything_exactly_once() {
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (id, stream) = subscribed(&mut net, SubscribeParams::default());
        let interest = net.session(A).announce_interest(Path::root()).unwrap();
        net.session(B).announce(p("live")).unwrap();
        let g = net.session(B).open_group(stream, 0).unwrap();
        net.session(B).write_frame(g, 0, Bytes::from_static(b"x")).unwrap();
        net.run();
        net.session(B).close(moqt_proto::session::APPLICATION_BASE + 7, "bye");
        net.run();
        let events = net.events(A);
        let started = events.iter().filter(|e| matches!(e, Event::GroupStarted { .. })).count();
        let ended = events.iter().filter(|e| matches!(e, Event::GroupEnded { .. })).count();
        assert_eq!((started, ended), (1, 1), "{v}");
        assert!(events.contains(&Event::SubscriptionEnded { subscription: id, code: Some(71) }));
        assert!(events.contains(&Event::Unannounced { interest, path: p("live") }));
        assert_eq!(events.last(), Some(&Event::Closed { code: 71, reason: "bye".into() }));
        assert_eq!(net.session(A).subscribe(p("x"), "y", SubscribeParams::default()), Err(Error::Closed));
    }
}

#[test]
fn limits_have_defined_outcomes() {
    let v = Version::Lite04;
    let a = moqt_proto::Config::new(v, moqt_proto::Perspective::Client);
    let mut b = moqt_proto::Config::new(v, moqt_proto::Perspective::Server);
    b.session_limits.max_subscriptions = 2;
    b.session_limits.max_announce_interests = 1;
    let mut net = Net::pair_with(a, b, Default::default());
    let ids: Vec<SubscriptionId> =
        (0..3).map(|_| net.session(A).subscribe(p("x"), "t", SubscribeParams::default()).unwrap()).collect();
    net.run();
    assert_eq!(net.events(B).iter().filter(|e| matches!(e, Event::SubscribeRequest { .. })).count(), 2);
    assert!(net
        .events(A)
        .contains(&Event::SubscriptionEnded { subscription: ids[2], code: Some(stream_code::LIMIT_EXCEEDED) }));
    let _ = net.session(A).announce_interest(Path::root()).unwrap();
    let second = net.session(A).announce_interest(p("y")).unwrap();
    net.run();
    assert!(net
        .events(A)
        .contains(&Event::AnnounceInterestEnded { interest: second, code: Some(stream_code::LIMIT_EXCEEDED) }));
    assert!(!net.session(B).is_closed());
    // Outgoing limit: an error for the caller.
    let mut c = moqt_proto::Config::new(v, moqt_proto::Perspective::Client);
    c.session_limits.max_outgoing_subscriptions = 1;
    let mut net = Net::pair_with(c, moqt_proto::Config::new(v, moqt_proto::Perspective::Server), Default::default());
    net.session(A).subscribe(p("x"), "t", SubscribeParams::default()).unwrap();
    assert_eq!(net.session(A).subscribe(p("x"), "u", SubscribeParams::default()), Err(Error::LimitExceeded));
}

#[test]
fn out_of_range_arguments_are_errors_not_panics() {
    const BIG: u64 = 1 << 62;
    for v in all_versions() {
        let mut net = Net::pair(v);
        let (_, stream) = subscribed(&mut net, SubscribeParams::default());
        let bad = SubscribeParams { max_latency: BIG, ..Default::default() };
        assert_eq!(net.session(A).subscribe(p("x"), "t", bad), Err(Error::InvalidArgument));
        let bad = SubscribeParams { end_group: Some(BIG - 1), ..Default::default() };
        assert_eq!(net.session(A).subscribe(p("x"), "t", bad), Err(Error::InvalidArgument), "opt+1 overflows");
        assert_eq!(net.session(B).open_group(stream, BIG), Err(Error::InvalidArgument));
        assert_eq!(net.session(B).drop_groups(stream, 0, BIG, 0), Err(Error::InvalidArgument));
        assert_eq!(net.session(B).end_subscription(stream, Some(BIG)), Err(Error::InvalidArgument));
        assert_eq!(net.session(A).fetch(p("x"), "t", 0, BIG), Err(Error::InvalidArgument));
        assert_eq!(net.session(A).probe(Some(BIG)), Err(Error::InvalidArgument));
        assert_eq!(net.session(B).reject_subscription(stream, BIG), Err(Error::InvalidArgument));
        assert_eq!(
            net.session(B).announce_route(p("y"), [BIG].into_iter().collect(), Default::default()),
            Err(Error::InvalidArgument)
        );
        if v.has_goaway() {
            assert_eq!(net.session(B).goaway(&"u".repeat(9000)), Err(Error::InvalidArgument));
        }
        net.session(B).close(u64::MAX, "clamped");
        net.run();
        assert!(net.events(A).iter().any(|e| matches!(e, Event::Closed { .. })));
    }
}

/// A write the transport answers with nothing taken (the stream can take no more: the peer
/// stopped it or the connection is going) is not issued again; a retry would be answered the
/// same way at once, and the two would loop forever before the driver reports the close.
#[test]
fn a_write_that_took_nothing_is_not_retried() {
    use moqt_proto::session::{Perspective, TransportEvent};
    use moqt_proto::{Config, Session};
    use std::time::Instant;
    for v in all_versions() {
        let now = Instant::now();
        let mut s = Session::new(Config::new(v, Perspective::Client), now);
        s.subscribe(p("room/alice"), "video", SubscribeParams::default()).unwrap();
        let mut written = Vec::new();
        for _ in 0..8 {
            let commands: Vec<Command> = std::iter::from_fn(|| s.poll_command()).collect();
            for command in commands {
                if let Command::Write { stream, chunks, .. } = command {
                    assert!(!chunks.is_empty(), "{v}");
                    assert!(!written.contains(&stream), "{v}: {stream:?} written again after taking nothing");
                    written.push(stream);
                    s.handle(now, TransportEvent::Written { stream, bytes: 0 });
                }
            }
        }
        assert!(!written.is_empty(), "{v}: the subscription was written");
        assert!(!s.is_closed(), "{v}");
        s.handle(now, TransportEvent::Closed { code: 0, reason: String::new() });
        assert!(s.is_closed(), "{v}");
    }
}
