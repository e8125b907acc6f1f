//! gomoqt wire compatibility: gomoqt's lite-04 exchanges (absolute paths, prefixes wrapped in
//! `/`, `+1` SUBSCRIBE_DROP groups, lazy SUBSCRIBE_OK, groups numbered from 1, subscribe ids
//! from 1, an empty hop list from its default mux) replayed against our Session as byte
//! scripts, with our Session as publisher and as subscriber, in the gomoqt dialect. The peer's
//! bytes are written here by hand from the gomoqt vectors of docs/wire/vectors.md; ours are checked
//! byte for byte.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use moqt_proto::session::{
    Command, Config, Event, Perspective, PublishParams, Session, StreamId, SubscribeParams, TransportEvent,
};
use moqt_proto::{Dialect, Path, Version};

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '|'], "")).unwrap()
}

/// One Session and the bytes it writes, stream by stream.
struct Script {
    s: Session,
    now: Instant,
    written: HashMap<StreamId, Vec<u8>>,
    finished: Vec<StreamId>,
    opened: Vec<StreamId>,
    commands: Vec<Command>,
    events: Vec<Event>,
    next_remote: u64,
}

impl Script {
    fn new(perspective: Perspective) -> Self {
        let mut config = Config::new(Version::Lite04, perspective);
        config.dialect = Dialect::Gomoqt;
        let now = Instant::now();
        let mut script = Self {
            s: Session::new(config, now),
            now,
            written: HashMap::new(),
            finished: Vec::new(),
            opened: Vec::new(),
            commands: Vec::new(),
            events: Vec::new(),
            next_remote: 0,
        };
        script.drain();
        script
    }

    fn drain(&mut self) {
        while let Some(cmd) = self.s.poll_command() {
            match &cmd {
                Command::Open { id, .. } => self.opened.push(*id),
                Command::Transmit(id) => {
                    while let Some((chunks, fin)) = self.s.send_chunks(*id) {
                        let data: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
                        let n = data.len();
                        self.written.entry(*id).or_default().extend(data);
                        self.s.advance_send(*id, n, fin);
                        if fin {
                            self.finished.push(*id);
                            break;
                        }
                    }
                }
                _ => {}
            }
            self.commands.push(cmd);
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    /// The peer opens a stream and writes `bytes` on it.
    fn peer_stream(&mut self, uni: bool, bytes: &str) -> StreamId {
        let id = StreamId::remote(self.next_remote, uni);
        self.next_remote += 1;
        self.s.handle(self.now, TransportEvent::StreamOpened(id));
        self.peer_bytes(id, bytes);
        id
    }

    /// The peer writes `bytes` on an existing stream.
    fn peer_bytes(&mut self, id: StreamId, bytes: &str) {
        self.s.handle(self.now, TransportEvent::StreamData { id, data: Bytes::from(hx(bytes)), fin: false });
        self.drain();
    }

    fn take_written(&mut self, id: StreamId) -> String {
        hex::encode(self.written.remove(&id).unwrap_or_default())
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

fn clean(s: &str) -> String {
    s.replace([' ', '|'], "")
}

#[test]
fn we_publish_to_a_gomoqt_subscriber() {
    let mut us = Script::new(Perspective::Server);
    us.s.announce(Path::new("room/alice")).unwrap();
    us.drain();

    // gomoqt: ANNOUNCE_INTEREST for "/room/" with exclude hop 0 (docs/wire/vectors.md V4).
    let announce = us.peer_stream(false, "01 | 08 06 2f 72 6f 6f 6d 2f 00");
    assert!(us.take_events().contains(&Event::AnnounceInterest { stream: announce, prefix: Path::new("room") }));
    // We answer with ACTIVE "alice" and an empty hop list (our hop id is 0, as gomoqt's default mux).
    assert_eq!(us.take_written(announce), clean("08 01 05 61 6c 69 63 65 00"));

    // gomoqt: SUBSCRIBE id 1 (its ids start at 1), path "/room/alice", track "video",
    // priority 0x80, ordered 0, max latency 0, start/end unset.
    let sub = us.peer_stream(false, "02 | 18 01 0b 2f 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 00 00 00");
    let request = us.take_events().into_iter().find_map(|e| match e {
        Event::SubscribeRequest { stream, subscribe } => Some((stream, subscribe)),
        _ => None,
    });
    let (stream, subscribe) = request.expect("subscribe request");
    assert_eq!((stream, subscribe.id, subscribe.path.as_str()), (sub, 1, "room/alice"));

    // Accepting sends nothing yet: gomoqt's SUBSCRIBE_OK is lazy.
    us.s.accept_subscription(sub, PublishParams::default()).unwrap();
    us.drain();
    assert_eq!(us.take_written(sub), "");

    // The first group (numbered from 1) triggers SUBSCRIBE_OK(start = group 1, written 02) (V15).
    let group = us.s.open_group(sub, 1).unwrap();
    us.s.write_frame(group, 0, Bytes::from_static(b"hello")).unwrap();
    us.s.finish_group(group).unwrap();
    us.drain();
    assert_eq!(us.take_written(sub), clean("00 05 00 00 00 02 00"));
    assert_eq!(us.take_written(group), clean("00 | 02 01 01 | 05 68 65 6c 6c 6f"));
    assert!(us.finished.contains(&group));

    // SUBSCRIBE_DROP of groups 5..=7 uses gomoqt's +1 spelling (V16).
    us.s.drop_groups(sub, 5, 7, 0).unwrap();
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
    assert!(us.commands.iter().any(|c| matches!(c, Command::StopSending { id, .. } if *id == bogus)));
    assert!(!us.s.is_closed());

    // gomoqt cancels with FIN on the subscribe stream: we finish our side too.
    us.s.handle(us.now, TransportEvent::StreamData { id: sub, data: Bytes::new(), fin: true });
    us.drain();
    assert!(us.take_events().contains(&Event::SubscribeCancelled { stream: sub, code: None }));
    assert!(us.finished.contains(&sub));
}

#[test]
fn we_subscribe_to_a_gomoqt_publisher() {
    let mut us = Script::new(Perspective::Client);

    // Our announce interest for the root is spelled "/" with exclude hop 0.
    let interest = us.s.announce_interest(Path::root()).unwrap();
    us.drain();
    assert_eq!(us.take_written(interest), clean("01 | 03 01 2f 00"));
    // gomoqt answers ACTIVE "room/alice" (the path minus the "/" prefix) with no hops.
    us.peer_bytes(interest, "0d 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 00");
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
    let id =
        us.s.subscribe(Path::new("room/alice"), "video", SubscribeParams { priority: 0x80, ..Default::default() })
            .unwrap();
    assert_eq!(id, 1);
    us.drain();
    let sub = *us.opened.last().unwrap();
    assert_eq!(
        us.take_written(sub),
        clean("02 | 18 01 0b 2f 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 00 00 00")
    );

    // gomoqt opens group 1 before its lazy SUBSCRIBE_OK: the group is accepted.
    let group = us.peer_stream(true, "00 | 02 01 01 | 05 68 65 6c 6c 6f");
    let events = us.take_events();
    assert!(events.contains(&Event::GroupStarted { stream: group, subscription: 1, sequence: 1, frame_start: 0 }));
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
    us.s.handle(us.now, TransportEvent::StreamData { id: group, data: Bytes::new(), fin: true });
    us.s.handle(us.now, TransportEvent::StreamData { id: sub, data: Bytes::new(), fin: true });
    us.drain();
    let events = us.take_events();
    assert!(events.contains(&Event::GroupEnded { stream: group, subscription: 1, sequence: 1, code: None }));
    assert!(events.contains(&Event::SubscriptionEnded { id: 1, code: None }));

    // A group for a subscription gomoqt invented is stopped (gomoqt itself would use code 7).
    let stray = us.peer_stream(true, "00 | 02 09 01");
    assert!(us.commands.iter().any(|c| matches!(c, Command::StopSending { id, .. } if *id == stray)));
}

#[test]
fn gomoqt_probe_and_fetch_on_lite04() {
    let mut us = Script::new(Perspective::Server);
    // gomoqt's Probe(target) writes PROBE {target, 0}.
    let probe = us.peer_stream(false, "04 | 05 80 0f 42 40 00");
    let events = us.take_events();
    assert!(events.contains(&Event::ProbeRequest { stream: probe }));
    assert!(events.contains(&Event::ProbeTarget { stream: probe, bitrate: 1_000_000 }));
    us.s.probe_report(probe, moqt_proto::message::Probe { bitrate: 900_000, rtt_ms: 20 }).unwrap();
    us.drain();
    assert_eq!(us.take_written(probe), clean("05 80 0d bb a0 14"));
    // gomoqt implements FETCH on lite-04: path "/room/alice", track "video", priority 10, group 64.
    let fetch = us.peer_stream(false, "03 | 15 0b 2f 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 0a 40 40");
    let req = us.take_events().into_iter().find_map(|e| match e {
        Event::FetchRequest { fetch, .. } => Some(fetch),
        _ => None,
    });
    assert_eq!(req.map(|f| (f.path.as_str().to_string(), f.group)), Some(("room/alice".into(), 64)));
    us.s.fetch_frame(fetch, 0, Bytes::from_static(b"ab")).unwrap();
    us.s.fetch_finish(fetch).unwrap();
    us.drain();
    assert_eq!(us.take_written(fetch), clean("02 61 62"));
    assert!(us.finished.contains(&fetch));
}
