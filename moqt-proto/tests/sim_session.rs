//! Two moq-lite sessions over the deterministic QUIC simulator, under loss and reordering.
//!
//! For each version a publisher (server) serves 1000 groups of 5 frames, one group per 10 ms of
//! simulated time, to a subscriber (client) over a link with 10 % loss and 0–30 ms jitter. Every
//! frame must arrive intact and in order within its group, or its group must be reported reset;
//! every group that starts ends exactly once; the same seed gives the same run and another seed a
//! different one. Run with `--nocapture` to see the figures.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use moqt_proto::session::{Config, Event, Perspective, PublishParams, Session, SubscribeParams};
use moqt_proto::{Path, StreamId, Version};
use support::sim::{Link, NetEvent, Sim, SimConfig, Stats};
use support::sim_session::SimSessions;

const GROUPS: u64 = 1000;
const FRAMES: u64 = 5;
const PERIOD: Duration = Duration::from_millis(10);

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
    groups_reset: usize,
    frames: usize,
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
    let now = sim.now();
    let client = Session::new(Config::new(version, Perspective::Client), now);
    let server = Session::new(Config::new(version, Perspective::Server), now);
    let mut net = SimSessions::new(sim, client, server);
    let start = net.sim.now();

    // Subscribe with a max latency far above the run, so the delivery policy keeps every group.
    let params = SubscribeParams { priority: 1, ordered: true, max_latency: 600_000, ..Default::default() };
    let sub = net.sides[CLIENT].session.subscribe(Path::new("room/alice"), "video", params).unwrap();
    let mut publication: Option<StreamId> = None;
    let mut groups: BTreeMap<u64, GroupSeen> = BTreeMap::new();
    let mut dropped_at_publisher = 0usize;
    let mut next_group = 0u64;
    let mut next_at = net.sim.now();
    let limit = start + PERIOD * GROUPS as u32 + Duration::from_secs(60);

    loop {
        // Publisher: accept the subscription, then one group per period once accepted.
        while let Some(ev) = net.sides[SERVER].events.pop_front() {
            match ev {
                Event::SubscribeRequest { stream, subscribe } => {
                    assert_eq!(subscribe.track, "video");
                    net.sides[SERVER].session.accept_subscription(stream, PublishParams::default()).unwrap();
                    publication = Some(stream);
                    next_at = net.sim.now();
                }
                Event::GroupDropped { .. } => dropped_at_publisher += 1,
                Event::PeerSetup(_) => {}
                other => panic!("{version}: publisher: unexpected {other:?}"),
            }
        }
        if let Some(stream) = publication {
            while next_group < GROUPS && net.sim.now() >= next_at {
                let s = &mut net.sides[SERVER].session;
                let g = next_group;
                let group = s.open_group(stream, g).unwrap();
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
        let mut by_stream: BTreeMap<StreamId, u64> = BTreeMap::new();
        while let Some(ev) = net.sides[CLIENT].events.pop_front() {
            match ev {
                Event::GroupStarted { stream, subscription, sequence, .. } => {
                    assert_eq!(subscription, sub);
                    by_stream.insert(stream, sequence);
                    groups.entry(sequence).or_default().started += 1;
                }
                Event::Frame { subscription, sequence, payload, .. } => {
                    assert_eq!(subscription, sub);
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
        assert!(net.sim.now() < limit, "{version}: not done by {:?}", net.sim.now() - start);
        let deadline = if publication.is_some() && next_group < GROUPS { next_at } else { limit };
        net.step_until(deadline);
    }
    let elapsed = net.sim.now() - start;

    // Every group started once and ended once; complete groups carry every frame, intact, in order.
    let mut groups_reset = 0;
    let mut frames = 0;
    for g in 0..GROUPS {
        let seen = groups.get(&g).unwrap_or_else(|| panic!("{version}: group {g} never started"));
        assert_eq!(seen.started, 1, "{version}: group {g}");
        assert_eq!(seen.ended.len(), 1, "{version}: group {g} ended {:?}", seen.ended);
        let expected: Vec<Bytes> = (0..FRAMES).map(|f| payload(g, f)).collect();
        match seen.ended[0] {
            None => assert_eq!(seen.frames, expected, "{version}: group {g}"),
            Some(_) => {
                groups_reset += 1;
                assert_eq!(seen.frames[..], expected[..seen.frames.len()], "{version}: group {g} prefix");
            }
        }
        frames += seen.frames.len();
    }
    assert_eq!(groups_reset, dropped_at_publisher, "{version}: resets seen vs groups the publisher dropped");
    for side in &net.sides {
        assert_eq!(side.unknown_stream_commands, 0, "{version}: command for a stream never opened");
    }
    assert!(!net.sides[CLIENT].session.is_closed() && !net.sides[SERVER].session.is_closed());

    Outcome {
        elapsed,
        stats: net.sim.stats(),
        event_hash: [net.sides[0].event_hash, net.sides[1].event_hash],
        groups_reset,
        frames,
    }
}

fn check(version: Version) {
    let a = run(version, 7);
    println!(
        "{version}: {} groups, {} frames in {:?} simulated; datagrams sent {} dropped {} ({:.1} %); groups reset {}",
        GROUPS,
        a.frames,
        a.elapsed,
        a.stats.sent,
        a.stats.dropped,
        100.0 * a.stats.dropped as f64 / a.stats.sent as f64,
        a.groups_reset
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
