//! gomoqt wire compatibility: gomoqt's lite-04 exchanges (absolute paths, prefixes wrapped in
//! `/`, `+1` SUBSCRIBE_DROP groups, lazy SUBSCRIBE_OK, groups numbered from 1, subscribe ids
//! from 1, an empty hop list from its default mux) replayed against our Session as byte
//! scripts, with our Session as publisher and as subscriber, in the gomoqt dialect. The peer's
//! bytes are written here by hand from the gomoqt vectors of docs/wire/vectors.md and played
//! through the rig's scripted peer (`Net::scripted`); ours are read off the wire and checked byte
//! for byte.

use std::collections::HashSet;

use bytes::Bytes;

use moqt_proto::session::{Command, Config, Event, Perspective, PublishParams, Session, StreamId, SubscribeParams};
use moqt_proto::testing::{Net, A};
use moqt_proto::{Dialect, Path, SubscriptionId, Version};

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '|'], "")).unwrap()
}

/// The scripted peer's side of the wire (our session is at side `A`).
const PEER: usize = 1;

/// Our Session on the rig, and a peer whose bytes the test writes by hand.
struct Script {
    net: Net,
    /// Our streams whose FIN the peer has seen.
    finished: HashSet<StreamId>,
}

impl Script {
    fn new(perspective: Perspective) -> Self {
        let mut config = Config::new(Version::Lite04, perspective);
        config.dialect = Dialect::Gomoqt;
        Self { net: Net::scripted(config), finished: HashSet::new() }
    }

    fn us(&mut self) -> &mut Session {
        self.net.session(A)
    }

    /// Runs the network (our session answers whatever arrived).
    fn drain(&mut self) {
        self.net.run();
    }

    /// The peer opens a stream and writes `bytes` on it; returns our name for it.
    fn peer_stream(&mut self, uni: bool, bytes: &str) -> StreamId {
        let wire = self.net.wire(0);
        let (theirs, ours) = wire.open_raw(PEER, uni);
        wire.write_raw(PEER, theirs, &hx(bytes), false);
        self.net.run();
        ours
    }

    /// The peer's name for one of our streams.
    fn theirs(&mut self, id: StreamId) -> StreamId {
        self.net.wire(0).peer_name(A, id).expect("a stream the wire knows")
    }

    /// The peer writes `bytes` on an existing stream.
    fn peer_bytes(&mut self, id: StreamId, bytes: &str) {
        let theirs = self.theirs(id);
        self.net.wire(0).write_raw(PEER, theirs, &hx(bytes), false);
        self.net.run();
    }

    /// The peer finishes its side of a stream (FIN).
    fn peer_fin(&mut self, id: StreamId) {
        let theirs = self.theirs(id);
        self.net.wire(0).write_raw(PEER, theirs, &[], true);
        self.net.run();
    }

    /// What we wrote on `id` since the last call, as hex (noting our FIN).
    fn take_written(&mut self, id: StreamId) -> String {
        let theirs = self.theirs(id);
        let (bytes, fin) = self.net.wire(0).read_raw(PEER, theirs);
        if fin {
            self.finished.insert(id);
        }
        hex::encode(bytes)
    }

    /// Whether the peer has seen our FIN on `id` (reading what is left).
    fn finished(&mut self, id: StreamId) -> bool {
        self.take_written(id);
        self.finished.contains(&id)
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.net.events(A)
    }

    fn commands(&self) -> &[Command] {
        self.net.command_log(A)
    }

    /// The stream our session opened last.
    fn last_opened(&self) -> StreamId {
        self.commands()
            .iter()
            .rev()
            .find_map(|c| match c {
                Command::Open { stream, .. } => Some(*stream),
                _ => None,
            })
            .expect("a stream was opened")
    }
}

fn clean(s: &str) -> String {
    s.replace([' ', '|'], "")
}

#[test]
fn we_publish_to_a_gomoqt_subscriber() {
    let mut us = Script::new(Perspective::Server);
    us.us().announce(Path::new("room/alice")).unwrap();
    us.drain();

    // gomoqt: ANNOUNCE_INTEREST for "/room/" with exclude hop 0 (docs/wire/vectors.md V4).
    let announce = us.peer_stream(false, "01 | 08 06 2f 72 6f 6f 6d 2f 00");
    assert!(
        us.take_events().iter().any(|e| matches!(e,
        Event::AnnounceInterest { interest, prefix } if interest.stream() == announce && *prefix == Path::new("room")))
    );
    // We answer with ACTIVE "alice" and an empty hop list (our hop id is 0, as gomoqt's default mux).
    assert_eq!(us.take_written(announce), clean("08 01 05 61 6c 69 63 65 00"));

    // gomoqt: SUBSCRIBE id 1 (its ids start at 1), path "/room/alice", track "video",
    // priority 0x80, ordered 0, max latency 0, start/end unset.
    let sub = us.peer_stream(false, "02 | 18 01 0b 2f 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 00 00 00");
    let request = us.take_events().into_iter().find_map(|e| match e {
        Event::SubscribeRequest { publication, subscribe } => Some((publication, subscribe)),
        _ => None,
    });
    let (publication, subscribe) = request.expect("subscribe request");
    assert_eq!((publication.stream(), subscribe.id, subscribe.path.as_str()), (sub, 1, "room/alice"));

    // Accepting sends nothing yet: gomoqt's SUBSCRIBE_OK is lazy.
    us.us().accept_subscription(publication, PublishParams::default()).unwrap();
    us.drain();
    assert_eq!(us.take_written(sub), "");

    // The first group (numbered from 1) triggers SUBSCRIBE_OK(start = group 1, written 02) (V15).
    let group = us.us().open_group(publication, 1).unwrap();
    us.us().write_frame(group, 0, Bytes::from_static(b"hello")).unwrap();
    us.us().finish_group(group).unwrap();
    us.drain();
    assert_eq!(us.take_written(sub), clean("00 05 00 00 00 02 00"));
    assert_eq!(us.take_written(group.stream()), clean("00 | 02 01 01 | 05 68 65 6c 6c 6f"));
    assert!(us.finished(group.stream()));

    // SUBSCRIBE_DROP of groups 5..=7 uses gomoqt's +1 spelling (V16).
    us.us().drop_groups(publication, 5, 7, 0).unwrap();
    us.drain();
    assert_eq!(us.take_written(sub), clean("01 03 06 08 00"));

    // gomoqt's SUBSCRIBE_UPDATE (priority 1, ordered 1, 100 ms, start group 3 = wire 4).
    us.peer_bytes(sub, "06 01 01 40 64 04 00");
    let update = us.take_events().into_iter().find_map(|e| match e {
        Event::SubscribeUpdated { update, .. } => Some(update),
        _ => None,
    });
    let update = update.unwrap();
    assert_eq!((update.priority, update.ordered, update.max_latency, update.start_group), (1, true, 100, Some(3)));

    // gomoqt's unknown-stream-type behaviour is its own; ours: reset only that stream.
    let bogus = us.peer_stream(false, "2a");
    assert!(us.commands().iter().any(|c| matches!(c, Command::StopSending { stream, .. } if *stream == bogus)));
    assert!(!us.us().is_closed());

    // gomoqt cancels with FIN on the subscribe stream: we finish our side too.
    us.peer_fin(sub);
    assert!(us.take_events().contains(&Event::SubscribeCancelled { publication, code: None }));
    assert!(us.finished(sub));
}

#[test]
fn we_subscribe_to_a_gomoqt_publisher() {
    let mut us = Script::new(Perspective::Client);

    // Our announce interest for the root is spelled "/" with exclude hop 0.
    let interest = us.us().announce_interest(Path::root()).unwrap();
    us.drain();
    assert_eq!(us.take_written(interest.stream()), clean("01 | 03 01 2f 00"));
    // gomoqt answers ACTIVE "room/alice" (the path minus the "/" prefix) with no hops.
    us.peer_bytes(interest.stream(), "0d 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 00");
    assert_eq!(
        us.take_events(),
        vec![Event::Announced {
            interest,
            path: Path::new("room/alice"),
            hops: Default::default(),
            cost: Default::default()
        }]
    );

    // Our SUBSCRIBE uses gomoqt's absolute path and its id numbering from 1.
    let id = us
        .us()
        .subscribe(Path::new("room/alice"), "video", SubscribeParams { priority: 0x80, ..Default::default() })
        .unwrap();
    assert_eq!(id, SubscriptionId(1));
    us.drain();
    let sub = us.last_opened();
    assert_eq!(
        us.take_written(sub),
        clean("02 | 18 01 0b 2f 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 00 00 00")
    );

    // gomoqt opens group 1 before its lazy SUBSCRIBE_OK: the group is accepted.
    let group = us.peer_stream(true, "00 | 02 01 01 | 05 68 65 6c 6c 6f");
    let events = us.take_events();
    assert!(events.iter().any(|e| matches!(e,
        Event::GroupStarted { group: g, subscription, sequence: 1, frame_start: 0 } if g.stream() == group && *subscription == id)));
    assert!(events.iter().any(|e| matches!(e, Event::Frame { payload, .. } if payload == &b"hello"[..])));
    // Then SUBSCRIBE_OK with start = group 1 (wire 02).
    us.peer_bytes(sub, "00 05 00 00 00 02 00");
    let ok = us.take_events().into_iter().find_map(|e| match e {
        Event::SubscribeOk { ok, .. } => Some(ok),
        _ => None,
    });
    assert_eq!(ok.unwrap().start_group, Some(1));
    // gomoqt's SUBSCRIBE_DROP 06 08 means groups 5..=7.
    us.peer_bytes(sub, "01 03 06 08 00");
    let dropped = us.take_events().into_iter().find_map(|e| match e {
        Event::GroupsDropped { drop, .. } => Some((drop.start, drop.end)),
        _ => None,
    });
    assert_eq!(dropped, Some((5, 7)));
    // The group ends with FIN; gomoqt ends the track with FIN on the subscribe stream.
    us.peer_fin(group);
    us.peer_fin(sub);
    let mut events = us.take_events();
    assert!(events.iter().any(|e| matches!(e,
        Event::GroupEnded { group: g, subscription, sequence: 1, code: None } if g.stream() == group && *subscription == id)));
    // Groups may still be in flight behind the FIN: the end comes after the grace period.
    assert!(!events.iter().any(|e| matches!(e, Event::SubscriptionEnded { .. })), "{events:?}");
    let grace = us.us().config().end_grace;
    us.net.advance(grace);
    events = us.take_events();
    assert!(events.contains(&Event::SubscriptionEnded { subscription: id, code: None }));

    // A group for a subscription gomoqt invented is stopped (gomoqt itself would use code 7).
    let stray = us.peer_stream(true, "00 | 02 09 01");
    assert!(us.commands().iter().any(|c| matches!(c, Command::StopSending { stream, .. } if *stream == stray)));
}

#[test]
fn gomoqt_probe_and_fetch_on_lite04() {
    let mut us = Script::new(Perspective::Server);
    // gomoqt's Probe(target) writes PROBE {target, 0}.
    let probe_stream = us.peer_stream(false, "04 | 05 80 0f 42 40 00");
    let events = us.take_events();
    let probe = events
        .iter()
        .find_map(|e| match e {
            Event::ProbeRequest { probe } if probe.stream() == probe_stream => Some(*probe),
            _ => None,
        })
        .expect("probe request");
    assert!(events.contains(&Event::ProbeTarget { probe, bitrate: 1_000_000 }));
    us.us().probe_report(probe, moqt_proto::message::Probe { bitrate: 900_000, rtt_ms: 20 }).unwrap();
    us.drain();
    assert_eq!(us.take_written(probe_stream), clean("05 80 0d bb a0 14"));
    // gomoqt implements FETCH on lite-04: path "/room/alice", track "video", priority 10, group 64.
    let fetch_stream = us.peer_stream(false, "03 | 15 0b 2f 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 0a 40 40");
    let (fetch, request) = us
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::FetchRequest { fetch, request } => Some((fetch, request)),
            _ => None,
        })
        .expect("fetch request");
    assert_eq!(fetch.stream(), fetch_stream);
    assert_eq!((request.path.as_str(), request.group), ("room/alice", 64));
    us.us().fetch_frame(fetch, 0, Bytes::from_static(b"ab")).unwrap();
    us.us().fetch_finish(fetch).unwrap();
    us.drain();
    assert_eq!(us.take_written(fetch_stream), clean("02 61 62"));
    assert!(us.finished(fetch_stream));
}
