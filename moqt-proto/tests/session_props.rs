//! Property tests for two Sessions over the in-memory rig (`moqt_proto::testing`).
//!
//! * Delivery shape does not matter: any read size, bandwidth, send and receive window and
//!   cross-stream interleaving of a fixed scripted exchange gives each side the same application
//!   events as the unconstrained FIFO run, compared per stream (events on different streams may
//!   legitimately swap).
//! * Random operation sequences on both sides never panic and keep the session's invariants:
//!   events only name subscriptions the receiver created, every started group ends exactly once,
//!   queued bytes stay within `max_queued`, and the driver contract holds (the wire checks every
//!   command: streams opened before they are named, one write and one read grant in flight).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use moqt_proto::message::{Probe, TrackInfo};
use moqt_proto::session::{
    stream_code, Config, Event, FetchId, GroupId, Perspective, PublicationId, PublishParams, SessionLimits,
    SubscribeParams, SubscriptionId,
};
use moqt_proto::testing::{EventCheck, Net, WireOptions, A, B};
use moqt_proto::{Path, Version};
use proptest::prelude::*;

/// A pair on the rig, and every event each side has received so far.
struct World {
    net: Net,
    events: [Vec<Event>; 2],
}

impl World {
    fn new(a: Config, b: Config, opts: WireOptions) -> Self {
        let mut world = Self { net: Net::pair_with(a, b, opts), events: [Vec::new(), Vec::new()] };
        world.sync();
        world
    }

    /// Runs the network and collects both sides' new events.
    fn run(&mut self) {
        self.net.run();
        self.sync();
    }

    fn sync(&mut self) {
        for side in [A, B] {
            self.net.events_into(side, &mut self.events[side]);
        }
    }
}

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(Version::ALL.to_vec())
}

fn configs(v: Version, limits: SessionLimits) -> (Config, Config) {
    let mut a = Config::new(v, Perspective::Client);
    a.hop_id = 0xA;
    a.session_limits = limits;
    let mut b = Config::new(v, Perspective::Server);
    b.hop_id = 0xB;
    b.session_limits = limits;
    (a, b)
}

// ----- (a) delivery shape -----

/// The key of the stream (or subscription) an event is about, so that per-key order can be compared.
fn key(ev: &Event) -> String {
    match ev {
        Event::PeerSetup(_) => "setup".into(),
        Event::Goaway { .. } => "goaway".into(),
        Event::Closed { .. } => "closed".into(),
        Event::Announced { interest, .. }
        | Event::Unannounced { interest, .. }
        | Event::AnnounceSynced { interest }
        | Event::AnnounceInterestEnded { interest, .. } => format!("interest {}", interest.stream().0),
        Event::AnnounceInterest { interest, .. } | Event::AnnounceInterestCancelled { interest } => {
            format!("interest-in {}", interest.stream().0)
        }
        Event::SubscribeOk { subscription, .. }
        | Event::SubscribeStart { subscription, .. }
        | Event::SubscribeEnd { subscription, .. }
        | Event::GroupsDropped { subscription, .. }
        | Event::SubscriptionEnded { subscription, .. } => format!("subscription {}", subscription.0),
        Event::GroupStarted { subscription, sequence, .. }
        | Event::Frame { subscription, sequence, .. }
        | Event::GroupEnded { subscription, sequence, .. } => format!("group {}/{sequence}", subscription.0),
        Event::Datagram { subscription, .. } => format!("datagrams {}", subscription.0),
        Event::SubscribeRequest { publication, .. }
        | Event::SubscribeUpdated { publication, .. }
        | Event::SubscribeCancelled { publication, .. } => format!("publication {}", publication.stream().0),
        Event::GroupDropped { group, .. } => format!("group-out {}", group.stream().0),
        Event::FetchRequest { fetch, .. }
        | Event::FetchCancelled { fetch, .. }
        | Event::FetchFrame { fetch, .. }
        | Event::FetchEnded { fetch, .. } => format!("fetch {}", fetch.stream().0),
        Event::TrackRequest { request, .. } | Event::TrackInfo { request, .. } | Event::TrackFailed { request, .. } => {
            format!("track {}", request.stream().0)
        }
        Event::ProbeRequest { probe }
        | Event::ProbeTarget { probe, .. }
        | Event::ProbeReport { probe, .. }
        | Event::ProbeEnded { probe, .. } => format!("probe {}", probe.stream().0),
    }
}

type Projection = BTreeMap<String, Vec<String>>;

fn project(events: &[Event]) -> Projection {
    let mut out = Projection::new();
    for ev in events {
        out.entry(key(ev)).or_default().push(format!("{ev:?}"));
    }
    out
}

fn find<T>(events: &[Event], f: impl FnMut(&Event) -> Option<T>) -> T {
    events.iter().find_map(f).expect("expected event missing")
}

/// The scripted exchange: announce, interest, subscribe, groups of frames, fetch, probe, track
/// (lite-05+), end of subscription, unannounce, goaway (lite-04+). Returns both sides' events.
fn scripted(v: Version, opts: WireOptions) -> [Vec<Event>; 2] {
    let (a, b) = configs(v, SessionLimits::default());
    let mut w = World::new(a, b, opts);
    w.net.session(B).announce(Path::new("room/alice")).unwrap();
    w.net.session(A).announce_interest(Path::new("room")).unwrap();
    w.run();
    w.net.session(B).announce(Path::new("room/bob")).unwrap();
    let params = SubscribeParams { priority: 3, ordered: true, max_latency: 10_000, ..Default::default() };
    let sub = w.net.session(A).subscribe(Path::new("room/alice"), "video", params).unwrap();
    w.run();
    let publication = find(&w.events[B], |e| matches!(e, Event::SubscribeRequest { .. }).then(|| e.clone()));
    let Event::SubscribeRequest { publication, .. } = publication else { unreachable!() };
    w.net.session(B).accept_subscription(publication, PublishParams::default()).unwrap();
    w.run();
    for g in 0..4u64 {
        let group = w.net.session(B).open_group(publication, g).unwrap();
        for f in 0..5u64 {
            let payload: Bytes = (0..(7 + 13 * f as usize)).map(|i| (i as u64 + g * 5 + f) as u8).collect();
            w.net.session(B).write_frame(group, g * 100 + f, payload).unwrap();
        }
        w.net.session(B).finish_group(group).unwrap();
        if g % 2 == 1 {
            w.run();
        }
    }
    w.net.session(A).update_subscription(sub, SubscribeParams { priority: 9, ..params }).unwrap();
    w.net.session(A).fetch(Path::new("room/alice"), "video", 1, 2).unwrap();
    w.net.session(A).probe(Some(1_000_000)).unwrap();
    if v.has_track() {
        w.net.session(A).track_info(Path::new("room/alice"), "video").unwrap();
    }
    w.run();
    let fetch = find(&w.events[B], |e| match e {
        Event::FetchRequest { fetch, .. } => Some(*fetch),
        _ => None,
    });
    w.net.session(B).fetch_frame(fetch, 200, Bytes::from_static(b"fetched frame one")).unwrap();
    w.net.session(B).fetch_frame(fetch, 233, Bytes::from_static(b"two")).unwrap();
    w.net.session(B).fetch_finish(fetch).unwrap();
    let probe = find(&w.events[B], |e| match e {
        Event::ProbeRequest { probe } => Some(*probe),
        _ => None,
    });
    w.net.session(B).probe_report(probe, Probe { bitrate: 500_000, rtt_ms: 40 }).unwrap();
    if v.has_track() {
        let track = find(&w.events[B], |e| match e {
            Event::TrackRequest { request, .. } => Some(*request),
            _ => None,
        });
        w.net.session(B).track_reply(track, TrackInfo { timescale: 1000, ..Default::default() }).unwrap();
    }
    w.run();
    let group = w.net.session(B).open_group(publication, 4).unwrap();
    w.net.session(B).write_frame(group, 400, Bytes::from_static(b"last")).unwrap();
    w.net.session(B).finish_group(group).unwrap();
    w.net.session(B).end_subscription(publication, None).unwrap();
    w.net.session(B).unannounce(&Path::new("room/bob")).unwrap();
    w.run();
    // The subscription's end is reported after the grace period for groups in flight.
    let grace = w.net.session(A).config().end_grace;
    w.net.advance(grace);
    w.run();
    if v.has_goaway() {
        w.net.session(B).goaway("").unwrap();
    }
    w.run();
    w.events
}

/// Wire shapes: read sizes, bandwidth per round, send and receive windows, shuffled reads.
fn delivery() -> impl Strategy<Value = WireOptions> {
    let bound = |max| prop_oneof![Just(usize::MAX), 1usize..max];
    (bound(64), bound(200), bound(400), bound(300), prop::option::of(any::<u64>())).prop_map(
        |(max_read, bandwidth, send_window, recv_window, shuffle)| WireOptions {
            max_read,
            bandwidth,
            send_window,
            recv_window,
            shuffle,
            ..WireOptions::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn delivery_shape_does_not_change_events(v in version(), opts in delivery()) {
        let reference = scripted(v, WireOptions::default());
        // The reference itself must have delivered the whole exchange.
        let groups = reference[A].iter().filter(|e| matches!(e, Event::GroupEnded { code: None, .. })).count();
        prop_assert_eq!(groups, 5);
        let has = |f: fn(&Event) -> bool| reference[A].iter().any(f);
        prop_assert!(has(|e| matches!(e, Event::FetchEnded { code: None, .. })), "fetch did not end cleanly");
        prop_assert!(has(|e| matches!(e, Event::ProbeReport { .. })), "no probe report");
        prop_assert!(has(|e| matches!(e, Event::SubscriptionEnded { code: None, .. })), "subscription did not end");
        let shaped = scripted(v, opts);
        for side in [A, B] {
            prop_assert_eq!(project(&shaped[side]), project(&reference[side]), "side {}", side);
        }
    }
}

// ----- (b) random operations -----

#[derive(Debug, Clone)]
enum Op {
    Subscribe { side: usize, track: u8, priority: u8, ordered: bool, max_latency: u64 },
    Unsubscribe { side: usize, idx: usize },
    Update { side: usize, idx: usize, priority: u8, max_latency: u64 },
    Accept { side: usize, idx: usize },
    Reject { side: usize, idx: usize, code: u64 },
    OpenGroup { side: usize, idx: usize, seq: u64 },
    WriteFrame { side: usize, idx: usize, size: usize },
    FinishGroup { side: usize, idx: usize },
    ResetGroup { side: usize, idx: usize, code: u64 },
    StopGroup { side: usize, idx: usize },
    EndSubscription { side: usize, idx: usize },
    Announce { side: usize, path: u8 },
    Unannounce { side: usize, path: u8 },
    Interest { side: usize, prefix: u8 },
    Fetch { side: usize, group: u64 },
    ServeFetch { side: usize, idx: usize, frames: u8 },
    Probe { side: usize },
    Datagram { side: usize, idx: usize, size: usize },
    Goaway { side: usize },
    Close { side: usize },
    Advance { ms: u64 },
    Hold { side: usize },
    Release { side: usize },
    Garbage { to: usize, uni: bool, data: Vec<u8>, fin: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let side = 0usize..2;
    let idx = 0usize..8;
    prop_oneof![
        32 => (side.clone(), 0u8..3, any::<u8>(), any::<bool>(), prop_oneof![Just(0u64), 1u64..500, Just(60_000)])
            .prop_map(|(side, track, priority, ordered, max_latency)| Op::Subscribe { side, track, priority, ordered, max_latency }),
        4 => (side.clone(), idx.clone()).prop_map(|(side, idx)| Op::Unsubscribe { side, idx }),
        4 => (side.clone(), idx.clone(), any::<u8>(), 0u64..1000).prop_map(|(side, idx, priority, max_latency)| Op::Update { side, idx, priority, max_latency }),
        16 => (side.clone(), idx.clone()).prop_map(|(side, idx)| Op::Accept { side, idx }),
        4 => (side.clone(), idx.clone(), 0u64..100).prop_map(|(side, idx, code)| Op::Reject { side, idx, code }),
        48 => (side.clone(), idx.clone(), 0u64..20).prop_map(|(side, idx, seq)| Op::OpenGroup { side, idx, seq }),
        80 => (side.clone(), idx.clone(), 0usize..1500).prop_map(|(side, idx, size)| Op::WriteFrame { side, idx, size }),
        12 => (side.clone(), idx.clone()).prop_map(|(side, idx)| Op::FinishGroup { side, idx }),
        4 => (side.clone(), idx.clone(), 0u64..100).prop_map(|(side, idx, code)| Op::ResetGroup { side, idx, code }),
        4 => (side.clone(), idx.clone()).prop_map(|(side, idx)| Op::StopGroup { side, idx }),
        4 => (side.clone(), idx.clone()).prop_map(|(side, idx)| Op::EndSubscription { side, idx }),
        8 => (side.clone(), 0u8..4).prop_map(|(side, path)| Op::Announce { side, path }),
        4 => (side.clone(), 0u8..4).prop_map(|(side, path)| Op::Unannounce { side, path }),
        8 => (side.clone(), 0u8..3).prop_map(|(side, prefix)| Op::Interest { side, prefix }),
        4 => (side.clone(), 0u64..5).prop_map(|(side, group)| Op::Fetch { side, group }),
        4 => (side.clone(), idx.clone(), 0u8..4).prop_map(|(side, idx, frames)| Op::ServeFetch { side, idx, frames }),
        4 => side.clone().prop_map(|side| Op::Probe { side }),
        4 => (side.clone(), idx.clone(), 0usize..1300).prop_map(|(side, idx, size)| Op::Datagram { side, idx, size }),
        1 => side.clone().prop_map(|side| Op::Goaway { side }),
        1 => side.clone().prop_map(|side| Op::Close { side }),
        12 => prop_oneof![1u64..50, 100u64..2000].prop_map(|ms| Op::Advance { ms }),
        8 => side.clone().prop_map(|side| Op::Hold { side }),
        8 => side.clone().prop_map(|side| Op::Release { side }),
        4 => (side, any::<bool>(), prop::collection::vec(any::<u8>(), 0..40), any::<bool>())
            .prop_map(|(to, uni, data, fin)| Op::Garbage { to, uni, data, fin }),
    ]
}

const LIMITS: SessionLimits = SessionLimits {
    max_subscriptions: 6,
    max_outgoing_subscriptions: 6,
    max_announce_interests: 4,
    max_announced: 8,
    max_streams: 64,
    max_queued_per_subscription: 3000,
    max_queued: 5000,
    max_queued_control: 4000,
    max_recv_buffered: 8000,
    partial_timeout: std::time::Duration::from_secs(10),
};

/// What the test knows about one side, learnt from its own calls and its events.
#[derive(Default)]
struct Known {
    /// Subscription ids this side created.
    subscriptions: Vec<SubscriptionId>,
    /// The peer's subscriptions this side was asked to serve.
    publications: Vec<PublicationId>,
    groups_out: Vec<GroupId>,
    groups_in: Vec<GroupId>,
    fetches_in: Vec<FetchId>,
    /// The event invariants (subscriptions known, groups start and end once, …).
    check: EventCheck,
    events_seen: usize,
    /// Publications already considered for auto-accept.
    auto_seen: usize,
}

fn pick<T: Copy>(list: &[T], idx: usize) -> Option<T> {
    (!list.is_empty()).then(|| list[idx % list.len()])
}

const PATHS: [&str; 4] = ["room/a", "room/b", "other/c", "room/a/deep"];
const PREFIXES: [&str; 3] = ["", "room", "other"];

fn apply(w: &mut World, known: &mut [Known; 2], op: &Op) {
    let net = &mut w.net;
    match *op {
        Op::Subscribe { side, track, priority, ordered, max_latency } => {
            let params = SubscribeParams { priority, ordered, max_latency, ..Default::default() };
            if let Ok(id) = net.session(side).subscribe(Path::new("room/a"), &format!("t{track}"), params) {
                known[side].subscriptions.push(id);
                known[side].check.subscribed(id);
            }
        }
        Op::Unsubscribe { side, idx } => {
            if let Some(id) = pick(&known[side].subscriptions, idx) {
                let _ = net.session(side).unsubscribe(id);
            }
        }
        Op::Update { side, idx, priority, max_latency } => {
            if let Some(id) = pick(&known[side].subscriptions, idx) {
                let params = SubscribeParams { priority, max_latency, ..Default::default() };
                let _ = net.session(side).update_subscription(id, params);
            }
        }
        Op::Accept { side, idx } => {
            if let Some(s) = pick(&known[side].publications, idx) {
                let _ = net.session(side).accept_subscription(s, PublishParams::default());
            }
        }
        Op::Reject { side, idx, code } => {
            if let Some(s) = pick(&known[side].publications, idx) {
                let _ = net.session(side).reject_subscription(s, code);
            }
        }
        Op::OpenGroup { side, idx, seq } => {
            if let Some(s) = pick(&known[side].publications, idx) {
                if let Ok(g) = net.session(side).open_group(s, seq) {
                    known[side].groups_out.push(g);
                }
            }
        }
        Op::WriteFrame { side, idx, size } => {
            if let Some(g) = pick(&known[side].groups_out, idx) {
                let _ = net.session(side).write_frame(g, size as u64, Bytes::from(vec![size as u8; size]));
            }
        }
        Op::FinishGroup { side, idx } => {
            if let Some(g) = pick(&known[side].groups_out, idx) {
                let _ = net.session(side).finish_group(g);
            }
        }
        Op::ResetGroup { side, idx, code } => {
            if let Some(g) = pick(&known[side].groups_out, idx) {
                let _ = net.session(side).reset_group(g, code);
            }
        }
        Op::StopGroup { side, idx } => {
            if let Some(g) = pick(&known[side].groups_in, idx) {
                let _ = net.session(side).stop_group(g, stream_code::CANCEL);
            }
        }
        Op::EndSubscription { side, idx } => {
            if let Some(s) = pick(&known[side].publications, idx) {
                let _ = net.session(side).end_subscription(s, None);
            }
        }
        Op::Announce { side, path } => {
            let _ = net.session(side).announce(Path::new(PATHS[path as usize]));
        }
        Op::Unannounce { side, path } => {
            let _ = net.session(side).unannounce(&Path::new(PATHS[path as usize]));
        }
        Op::Interest { side, prefix } => {
            let _ = net.session(side).announce_interest(Path::new(PREFIXES[prefix as usize]));
        }
        Op::Fetch { side, group } => {
            let _ = net.session(side).fetch(Path::new("room/a"), "t0", 1, group);
        }
        Op::ServeFetch { side, idx, frames } => {
            if let Some(f) = pick(&known[side].fetches_in, idx) {
                for i in 0..frames {
                    let _ = net.session(side).fetch_frame(f, u64::from(i) * 10, Bytes::from(vec![i; 20]));
                }
                let _ = net.session(side).fetch_finish(f);
            }
        }
        Op::Probe { side } => {
            let _ = net.session(side).probe(Some(1000));
        }
        Op::Datagram { side, idx, size } => {
            if let Some(s) = pick(&known[side].publications, idx) {
                let _ = net.session(side).send_datagram(s, 1, 0, Bytes::from(vec![7u8; size]));
            }
        }
        Op::Goaway { side } => {
            let _ = net.session(side).goaway("");
        }
        Op::Close { side } => net.session(side).close(moqt_proto::session::APPLICATION_BASE + 1, "bye"),
        Op::Advance { ms } => net.advance(Duration::from_millis(ms)),
        Op::Hold { side } => net.wire(0).hold(side, true),
        Op::Release { side } => net.wire(0).hold(side, false),
        Op::Garbage { to, uni, ref data, fin } => {
            net.inject_stream(to, uni, data, fin);
        }
    }
    w.run();
}

/// Checks everything new since the last call, for both sides.
fn check(w: &mut World, known: &mut [Known; 2]) -> Result<(), TestCaseError> {
    let violations = w.net.wire(0).violations();
    prop_assert!(violations.is_empty(), "driver contract breached: {:#?}", violations);
    for side in [A, B] {
        let queued = w.net.session(side).queued_bytes();
        prop_assert!(queued <= LIMITS.max_queued, "side {side}: {queued} bytes queued");
        let k = &mut known[side];
        for ev in &w.events[side][k.events_seen..] {
            if let Err(breach) = k.check.event(ev) {
                return Err(TestCaseError::fail(format!("side {side}: {breach}")));
            }
            match ev {
                Event::GroupStarted { group, .. } => k.groups_in.push(*group),
                Event::SubscribeRequest { publication, .. } => k.publications.push(*publication),
                Event::FetchRequest { fetch, .. } => k.fetches_in.push(*fetch),
                _ => {}
            }
        }
        k.events_seen = w.events[side].len();
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_invariants(
        v in version(),
        opts in delivery(),
        auto_accept in prop::array::uniform2(prop::bool::weighted(0.75)),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let (a, b) = configs(v, LIMITS);
        let mut w = World::new(a, b, opts);
        // Contract breaches are checked (and shrunk) below rather than panicking in `run`.
        w.net.strict = false;
        let mut known: [Known; 2] = Default::default();
        check(&mut w, &mut known)?;
        for op in &ops {
            apply(&mut w, &mut known, op);
            check(&mut w, &mut known)?;
            // Most runs accept every subscription at once, so that groups actually flow.
            for side in [A, B] {
                let new = known[side].publications[known[side].auto_seen..].to_vec();
                known[side].auto_seen = known[side].publications.len();
                if auto_accept[side] {
                    for s in new {
                        let _ = w.net.session(side).accept_subscription(s, PublishParams::default());
                    }
                }
            }
            w.run();
            check(&mut w, &mut known)?;
        }
        // End: release both sides, close, and every started group must have ended exactly once.
        w.net.wire(0).hold(A, false);
        w.net.wire(0).hold(B, false);
        w.run();
        if !w.net.session(A).is_closed() {
            w.net.session(A).close(0, "end");
        }
        w.run();
        if !w.net.session(B).is_closed() {
            w.net.session(B).close(0, "end");
        }
        w.run();
        check(&mut w, &mut known)?;
        for side in [A, B] {
            prop_assert!(w.net.session(side).is_closed());
            prop_assert_eq!(w.net.session(side).queued_bytes(), 0);
            // Every started group ended exactly once, and `Closed` came once, last.
            if let Err(breach) = known[side].check.finished() {
                return Err(TestCaseError::fail(format!("side {side}: {breach}")));
            }
        }
    }
}
