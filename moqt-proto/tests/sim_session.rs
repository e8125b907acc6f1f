//! Two moq-lite sessions over the deterministic QUIC simulator, under loss and reordering, on
//! the rig's run loop (`moqt_proto::testing::Net` driving a [`SimLink`]).
//!
//! For each version a publisher (server) serves 1000 groups of 5 frames, one group per 10 ms of
//! simulated time, to a subscriber (client) over a link with 10 % loss and 0–30 ms jitter. Every
//! frame must arrive intact and in order within its group, every group must complete (the
//! subscriber's max latency is far above the run, so the publisher has no reason to drop any,
//! and it must not: zero resets, all 5000 frames), every group that starts ends exactly once, and
//! the same seed gives the same run and another seed a different one. Run with `--nocapture` to
//! see the figures.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use moqt_proto::session::{Config, Event, Perspective, PublicationId, PublishParams, SubscribeParams};
use moqt_proto::testing::Net;
use moqt_proto::{GroupId, Path, Version};
use support::sim::{Link, NetEvent, Sim, SimConfig, Stats};
use support::sim_link::SimLink;

const GROUPS: u64 = 1000;
const FRAMES: u64 = 5;
const PERIOD: Duration = Duration::from_millis(10);

/// The endpoints (and link sides) of the two sessions.
const CLIENT: usize = 0;
const SERVER: usize = 1;

/// Frame `f` of group `g`: 16–47 bytes of a pattern unique to (g, f). Small on purpose: at 10 %
/// loss the congestion window sits near its minimum (about 2 packets per RTT), and one group per
/// 10 ms must fit in that or the run measures queueing instead of recovery.
fn payload(g: u64, f: u64) -> Bytes {
    let len = 16 + ((g * 31 + f * 17) % 32) as usize;
    (0..len).map(|i| (g as usize * 7 + f as usize * 13 + i) as u8 ^ (i >> 8) as u8).collect::<Vec<u8>>().into()
}

fn connect(sim: &mut Sim) {
    let (mut client, mut server) = (false, false);
    let ok = sim.run_until(
        |sim| {
            while let Some(ev) = sim.client().poll_event() {
                client |= ev == NetEvent::Connected;
            }
            while let Some(ev) = sim.server().poll_event() {
                server |= ev == NetEvent::Connected;
            }
            client && server
        },
        Duration::from_secs(30),
    );
    assert!(ok, "handshake did not complete");
}

/// What the subscriber saw of one group.
#[derive(Debug, Default)]
struct GroupSeen {
    started: usize,
    frames: Vec<Bytes>,
    ended: Vec<Option<u64>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    elapsed: Duration,
    stats: Stats,
    event_hash: [u64; 2],
    frames: usize,
}

fn mix(h: &mut u64, x: u64) {
    *h = (*h ^ x).wrapping_mul(0x0100_0000_01b3);
}

/// Folds one application event into a running hash.
fn hash_event(h: &mut u64, ev: &Event) {
    match ev {
        // Frames are the bulk: hash their fields and payload bytes directly.
        Event::Frame { group, subscription, sequence, timestamp, payload } => {
            let fields = [1, group.stream().0, subscription.0, *sequence, timestamp.unwrap_or(u64::MAX)];
            for x in fields.into_iter().chain([payload.len() as u64]) {
                mix(h, x);
            }
            for chunk in payload.chunks(8) {
                let mut b = [0u8; 8];
                b[..chunk.len()].copy_from_slice(chunk);
                mix(h, u64::from_le_bytes(b));
            }
        }
        other => {
            for b in format!("{other:?}").bytes() {
                mix(h, u64::from(b));
            }
        }
    }
}

fn run(version: Version, seed: u64) -> Outcome {
    let cfg = SimConfig {
        seed,
        link: Link { latency: Duration::from_millis(20), jitter: Duration::from_millis(30), loss: 0.10 },
        alpn: version.alpn().as_bytes().to_vec(),
        transport: None,
    };
    let mut sim = Sim::new(cfg);
    connect(&mut sim);
    let mut net = Net::new(version);
    net.now = sim.now();
    let client = net.add_session(Config::new(version, Perspective::Client));
    let server = net.add_session(Config::new(version, Perspective::Server));
    assert_eq!((client, server), (CLIENT, SERVER));
    let link = net.connect_link(client, server, Box::new(SimLink::new(sim)));
    let start = net.now;

    // Subscribe with a max latency far above the run, so the delivery policy keeps every group.
    let params = SubscribeParams { priority: 1, ordered: true, max_latency: 600_000, ..Default::default() };
    let sub = net.session(CLIENT).subscribe(Path::new("room/alice"), "video", params).unwrap();
    let mut publication: Option<PublicationId> = None;
    let mut groups: BTreeMap<u64, GroupSeen> = BTreeMap::new();
    let mut by_group: BTreeMap<GroupId, u64> = BTreeMap::new();
    let mut event_hash = [0xcbf2_9ce4_8422_2325u64; 2];
    let mut next_group = 0u64;
    let mut next_at = net.now;
    let limit = start + PERIOD * GROUPS as u32 + Duration::from_secs(60);

    loop {
        // Publisher: accept the subscription, then one group per period once accepted.
        for ev in net.events(SERVER) {
            hash_event(&mut event_hash[SERVER], &ev);
            match ev {
                Event::SubscribeRequest { publication: p, subscribe } => {
                    assert_eq!(subscribe.track, "video");
                    net.session(SERVER).accept_subscription(p, PublishParams::default()).unwrap();
                    publication = Some(p);
                    next_at = net.now;
                }
                Event::PeerSetup(_) => {}
                other => panic!("{version}: publisher: unexpected {other:?}"),
            }
        }
        if let Some(p) = publication {
            while next_group < GROUPS && net.now >= next_at {
                let s = net.session(SERVER);
                let g = next_group;
                let group = s.open_group(p, g).unwrap();
                for f in 0..FRAMES {
                    s.write_frame(group, g * 1000 + f, payload(g, f)).unwrap();
                }
                s.finish_group(group).unwrap();
                next_group += 1;
                next_at += PERIOD;
            }
            if next_group == GROUPS && groups.values().filter(|g| !g.ended.is_empty()).count() == GROUPS as usize {
                break;
            }
        }
        // Subscriber: record what arrives, per group.
        for ev in net.events(CLIENT) {
            hash_event(&mut event_hash[CLIENT], &ev);
            match ev {
                Event::GroupStarted { group, subscription, sequence, .. } => {
                    assert_eq!(subscription, sub);
                    by_group.insert(group, sequence);
                    groups.entry(sequence).or_default().started += 1;
                }
                Event::Frame { group, subscription, sequence, payload, .. } => {
                    assert_eq!((subscription, by_group.get(&group)), (sub, Some(&sequence)));
                    let g = groups.get_mut(&sequence).expect("frame before its group started");
                    assert!(g.ended.is_empty(), "{version}: frame after the end of group {sequence}");
                    g.frames.push(payload);
                }
                Event::GroupEnded { subscription, sequence, code, .. } => {
                    assert_eq!(subscription, sub);
                    groups.get_mut(&sequence).expect("end before start").ended.push(code);
                }
                Event::SubscribeOk { .. } | Event::SubscribeStart { .. } | Event::PeerSetup(_) => {}
                other => panic!("{version}: subscriber: unexpected {other:?}"),
            }
        }
        assert!(net.now < limit, "{version}: not done by {:?}", net.now - start);
        // One step: to the next timer or delivery, or to the next publishing instant.
        let target = if publication.is_some() && next_group < GROUPS { next_at } else { limit };
        let step = net.next_deadline().map_or(target, |t| t.min(target));
        net.advance_to(step);
    }
    let elapsed = net.now - start;

    // Every group started once, ended once and complete: every frame, intact, in order.
    let mut frames = 0;
    for g in 0..GROUPS {
        let seen = groups.get(&g).unwrap_or_else(|| panic!("{version}: group {g} never started"));
        assert_eq!(seen.started, 1, "{version}: group {g}");
        assert_eq!(seen.ended, vec![None], "{version}: group {g} must complete");
        let expected: Vec<Bytes> = (0..FRAMES).map(|f| payload(g, f)).collect();
        assert_eq!(seen.frames, expected, "{version}: group {g}");
        frames += seen.frames.len();
    }
    assert_eq!(frames as u64, GROUPS * FRAMES, "{version}: every frame");
    let sim_link = net.link::<SimLink>(link);
    assert_eq!(sim_link.resets(), [0, 0], "{version}: no stream was reset by either side");
    let stats = sim_link.sim.stats();
    assert!(!net.session(CLIENT).is_closed() && !net.session(SERVER).is_closed());

    Outcome { elapsed, stats, event_hash, frames }
}

fn check(version: Version) {
    let a = run(version, 7);
    println!(
        "{version}: {} groups, {} frames in {:?} simulated; datagrams sent {} dropped {} ({:.1} %)",
        GROUPS,
        a.frames,
        a.elapsed,
        a.stats.sent,
        a.stats.dropped,
        100.0 * a.stats.dropped as f64 / a.stats.sent as f64,
    );
    assert!(a.stats.dropped > 0, "the link must actually lose datagrams");
    let again = run(version, 7);
    assert_eq!(a, again, "{version}: same seed, different run");
    let other = run(version, 8);
    assert_ne!(a.stats, other.stats, "{version}: another seed, same schedule");
    assert_ne!(a.event_hash, other.event_hash, "{version}: another seed, same events");
}

#[test]
fn lite06_groups_survive_loss_and_reordering() {
    check(Version::Lite06);
}

#[test]
fn lite05_groups_survive_loss_and_reordering() {
    check(Version::Lite05);
}

#[test]
fn lite04_groups_survive_loss_and_reordering() {
    check(Version::Lite04);
}

#[test]
fn lite03_groups_survive_loss_and_reordering() {
    check(Version::Lite03);
}
