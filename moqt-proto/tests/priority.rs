//! Send priorities, and what they do to delivery order when the wire is congested.
//!
//! The rig's wire moves a bounded number of bytes per round, highest stream priority first, and
//! its send window keeps the rest queued in the core, so these tests see the order in which
//! frames actually arrive, not only the priority put on `Command::Open`.

use std::collections::HashMap;

use bytes::Bytes;
use moqt_proto::session::{
    group_priority, Command, Event, PublicationId, PublishParams, StreamId, SubscribeParams, SubscriptionId,
};
use moqt_proto::testing::{Net, A, B};
use moqt_proto::{Path, Version};

/// A subscribes to `track` with `params`; B accepts. Returns (A's id, B's publication).
fn subscribed(net: &mut Net, track: &str, params: SubscribeParams) -> (SubscriptionId, PublicationId) {
    let id = net.session(A).subscribe(Path::new("room"), track, params).unwrap();
    net.run();
    let publication = net
        .events(B)
        .into_iter()
        .find_map(|e| match e {
            Event::SubscribeRequest { publication, subscribe } if subscribe.track == track => Some(publication),
            _ => None,
        })
        .expect("subscribe request");
    net.session(B).accept_subscription(publication, PublishParams::default()).unwrap();
    net.run();
    (id, publication)
}

/// Every stream's current send priority, from a command log (`Open`, then any `SetPriority`).
fn priorities(log: &[Command]) -> HashMap<StreamId, i32> {
    let mut out = HashMap::new();
    for c in log {
        match c {
            Command::Open { stream, priority } | Command::SetPriority { stream, priority } => {
                out.insert(*stream, *priority);
            }
            _ => {}
        }
    }
    out
}

/// Congests the pair's wire: `bandwidth` bytes per round each way. The transport's send buffer
/// stays large enough to hold everything, so the order on the wire is the priorities' alone (with
/// a small buffer, bytes a lower-priority stream already put in it go first: that is the
/// transport's business, not the session's).
fn congest(net: &mut Net, bandwidth: usize) {
    net.wire(0).options_mut().bandwidth = bandwidth;
}

fn frame() -> Bytes {
    Bytes::from(vec![0x5a; 1000])
}

/// Congests the wire with a finished 60-frame group on `publication` (sequence `seq`) and lets
/// one round of it cross.
fn busy_group(net: &mut Net, publication: PublicationId, seq: u64) {
    congest(net, 1500);
    let g = net.session(B).open_group(publication, seq).unwrap();
    for _ in 0..60 {
        net.session(B).write_frame(g, 0, frame()).unwrap();
    }
    net.session(B).finish_group(g).unwrap();
    net.round();
}

/// Frames received by A, in arrival order, as the subscription each belongs to.
fn arrivals(net: &mut Net) -> Vec<SubscriptionId> {
    net.events(A)
        .into_iter()
        .filter_map(|e| match e {
            Event::Frame { subscription, .. } => Some(subscription),
            _ => None,
        })
        .collect()
}

#[test]
fn priorities_follow_subscriber_priority_and_order() {
    let mut net = Net::pair(Version::Lite05);
    let (_, low) = subscribed(&mut net, "low", SubscribeParams { priority: 1, ..Default::default() });
    let (_, high) =
        subscribed(&mut net, "high", SubscribeParams { priority: 200, ordered: true, ..Default::default() });
    let g_low = net.session(B).open_group(low, 5).unwrap();
    let g_high_5 = net.session(B).open_group(high, 5).unwrap();
    let g_high_6 = net.session(B).open_group(high, 6).unwrap();
    net.run();
    let prio = priorities(net.command_log(B));
    let (pl, p5, p6) = (prio[&g_low.stream()], prio[&g_high_5.stream()], prio[&g_high_6.stream()]);
    assert!(p5 > pl && p6 > pl, "higher subscriber priority first");
    assert!(p5 > p6, "ordered: older group first");
}

/// A 40-frame group of one subscription is under way on a congested wire when a 5-frame group of
/// another subscription opens. Returns how many frames of the first group arrived before the last
/// frame of the second.
fn overtaking(first_priority: u8, second_priority: u8) -> usize {
    let mut net = Net::pair(Version::Lite05);
    let (first, p1) = subscribed(&mut net, "first", SubscribeParams { priority: first_priority, ..Default::default() });
    let (second, p2) =
        subscribed(&mut net, "second", SubscribeParams { priority: second_priority, ..Default::default() });
    congest(&mut net, 1500);
    let g1 = net.session(B).open_group(p1, 0).unwrap();
    for _ in 0..40 {
        net.session(B).write_frame(g1, 0, frame()).unwrap();
    }
    net.session(B).finish_group(g1).unwrap();
    for _ in 0..4 {
        net.round();
    }
    let g2 = net.session(B).open_group(p2, 0).unwrap();
    for _ in 0..5 {
        net.session(B).write_frame(g2, 0, frame()).unwrap();
    }
    net.session(B).finish_group(g2).unwrap();
    net.run();
    let order = arrivals(&mut net);
    assert_eq!(order.iter().filter(|s| **s == first).count(), 40, "every frame of the first group");
    assert_eq!(order.iter().filter(|s| **s == second).count(), 5, "every frame of the second group");
    let last_second = order.iter().rposition(|s| *s == second).unwrap();
    order[..last_second].iter().filter(|s| **s == first).count()
}

#[test]
fn a_higher_priority_group_overtakes_a_congested_one() {
    let overtaken = overtaking(1, 200);
    let behind = overtaking(200, 1);
    println!(
        "first-group frames before the second group's last frame: {overtaken} (second higher), {behind} (second lower)"
    );
    // With the higher priority, the late group only waits for what the wire had already taken.
    assert!(overtaken <= 8, "the higher-priority group waited for {overtaken} frames of the lower one");
    // With the lower priority, it waits for (nearly) the whole congested group.
    assert!(behind >= 36, "the lower-priority group overtook: only {behind} frames went first");
}

#[test]
fn subscribe_update_reprioritises_open_groups() {
    let mut net = Net::pair(Version::Lite05);
    let params = SubscribeParams { priority: 1, max_latency: 60_000, ..Default::default() };
    let (id, publication) = subscribed(&mut net, "a", params);
    let (_, other) = subscribed(&mut net, "b", SubscribeParams { priority: 100, ..params });
    congest(&mut net, 1500);
    // A small send buffer, so the groups stay in the session (where the update can reach them)
    // instead of being handed to the transport whole.
    net.wire(0).options_mut().send_window = 3000;
    let g0 = net.session(B).open_group(publication, 0).unwrap();
    let g1 = net.session(B).open_group(publication, 1).unwrap();
    let g_other = net.session(B).open_group(other, 0).unwrap();
    for g in [g0, g1, g_other] {
        for _ in 0..20 {
            net.session(B).write_frame(g, 0, frame()).unwrap();
        }
        net.session(B).finish_group(g).unwrap();
    }
    net.round();
    let before = priorities(net.command_log(B));
    assert!(before[&g_other.stream()] > before[&g1.stream()], "the other subscription goes first at first");
    net.commands(B);

    // The subscriber raises its priority above the other subscription.
    let update = SubscribeParams { priority: 250, ..params };
    net.session(A).update_subscription(id, update).unwrap();
    net.run();
    let sets: Vec<(StreamId, i32)> = net
        .commands(B)
        .into_iter()
        .filter_map(|c| match c {
            Command::SetPriority { stream, priority } => Some((stream, priority)),
            _ => None,
        })
        .collect();
    // Both open groups of the updated subscription get the new priority (base: group 0), the
    // other subscription's group is left alone. The groups may have finished already; SetPriority
    // is sent for those still open when the update arrived.
    for (g, seq) in [(g0, 0), (g1, 1)] {
        let expected = group_priority(&update, 0, seq);
        assert!(sets.contains(&(g.stream(), expected)), "SetPriority {expected} for group {seq}: {sets:?}");
    }
    assert!(!sets.iter().any(|(s, _)| *s == g_other.stream()), "the other subscription untouched: {sets:?}");

    // And it shows in the delivery order: after the update, the updated subscription's frames
    // arrive before the rest of the other one's.
    let order = arrivals(&mut net);
    assert_eq!(order.len(), 60, "every frame arrives");
    let last_updated = order.iter().rposition(|s| *s == id).unwrap();
    let other_before = order[..last_updated].iter().filter(|s| **s != id).count();
    assert!(other_before <= 8, "{other_before} frames of the lower subscription went before the raised one");
}

#[test]
fn group_priorities_stay_below_control_and_fetch_and_never_wrap() {
    for ordered in [false, true] {
        let mut net = Net::pair(Version::Lite05);
        let params = SubscribeParams { priority: 255, ordered, max_latency: 60_000, ..Default::default() };
        let (_, publication) = subscribed(&mut net, "t", params);
        // Control streams (the subscribe stream A opened) and fetches rank above every group.
        let control = priorities(net.command_log(A)).values().copied().max().unwrap();
        net.session(B).fetch(Path::new("x"), "t", 255, 0).unwrap();
        let mut open: Vec<(u64, moqt_proto::GroupId)> = Vec::new();
        // Sequences 0, 2^16, 2·2^16, … up to 3·2^23: three times past the 2^23 priority span,
        // with the two previous groups still open each time.
        for k in 0..(3 * 128 + 3) {
            let seq = k << 16;
            let g = net.session(B).open_group(publication, seq).unwrap();
            open.push((seq, g));
            if open.len() > 3 {
                let (_, done) = open.remove(0);
                net.session(B).finish_group(done).unwrap();
            }
            net.run();
            let prio = priorities(net.command_log(B));
            let fetch = *prio.values().max().unwrap();
            for (seq, g) in &open {
                let p = prio[&g.stream()];
                assert!(p < control, "group {seq}: {p} ties or passes control {control}");
                assert!(p < fetch, "group {seq}: {p} ties or passes the fetch {fetch}");
                assert_eq!(p >> 23, 255, "group {seq}: {p} left its subscriber-priority band");
            }
            // The newest group goes first (unordered) or last (ordered), never wrapped around.
            let (newest, rest) = open.split_last().unwrap();
            let pn = prio[&newest.1.stream()];
            for (seq, g) in rest {
                let p = prio[&g.stream()];
                if ordered {
                    assert!(p > pn, "ordered: group {seq} ({p}) must precede group {} ({pn})", newest.0);
                } else {
                    assert!(pn > p, "unordered: group {} ({pn}) must precede group {seq} ({p})", newest.0);
                }
            }
        }
    }
}

/// Control messages a publisher sends on streams the subscriber opened (SUBSCRIBE_DROP on the
/// subscribe stream, announcements on the announce stream) must not queue behind group data.
#[test]
fn control_responses_are_not_starved_by_groups() {
    for v in [Version::Lite04, Version::Lite06] {
        let mut net = Net::pair(v);
        let interest = net.session(A).announce_interest(Path::root()).unwrap();
        let (_, busy) = subscribed(&mut net, "busy", SubscribeParams { priority: 255, ..Default::default() });
        let late = net.session(A).subscribe(Path::new("room"), "late", SubscribeParams::default()).unwrap();
        net.run();
        let request = net
            .events(B)
            .into_iter()
            .find_map(|e| match e {
                Event::SubscribeRequest { publication, .. } => Some(publication),
                _ => None,
            })
            .unwrap();
        net.events(A);
        busy_group(&mut net, busy, 0);
        net.session(B).accept_subscription(request, PublishParams::default()).unwrap();
        net.session(B).drop_groups(request, 0, 0, 0).unwrap();
        net.session(B).announce(Path::new("room")).unwrap();
        net.run();
        let events = net.events(A);
        let frames_before = |pred: &dyn Fn(&Event) -> bool| {
            let at = events.iter().position(pred).expect("the control message arrived");
            events[..at].iter().filter(|e| matches!(e, Event::Frame { .. })).count()
        };
        let response =
            frames_before(&|e| matches!(e, Event::GroupsDropped { subscription, .. } if *subscription == late));
        let announce = frames_before(&|e| matches!(e, Event::Announced { interest: i, .. } if *i == interest));
        assert!(response <= 8, "{v}: the subscribe response waited for {response} frames");
        assert!(announce <= 8, "{v}: the announcement waited for {announce} frames");
    }
}

/// A fetch the publisher serves goes before live groups of the same subscriber priority (the
/// fetch is what the subscriber is waiting for to fill a gap), and after control messages.
#[test]
fn served_fetches_go_before_groups_of_the_same_priority() {
    for v in [Version::Lite04, Version::Lite06] {
        let mut net = Net::pair(v);
        let (_, busy) =
            subscribed(&mut net, "busy", SubscribeParams { priority: 200, max_latency: 60_000, ..Default::default() });
        let fetch = net.session(A).fetch(Path::new("room"), "busy", 200, 0).unwrap();
        net.run();
        let served = net
            .events(B)
            .into_iter()
            .find_map(|e| match e {
                Event::FetchRequest { fetch, .. } => Some(fetch),
                _ => None,
            })
            .unwrap();
        net.events(A);
        busy_group(&mut net, busy, 1);
        for _ in 0..3 {
            net.session(B).fetch_frame(served, 0, frame()).unwrap();
        }
        net.session(B).fetch_finish(served).unwrap();
        net.run();
        let events = net.events(A);
        let end = events.iter().position(|e| matches!(e, Event::FetchEnded { fetch: f, code: None } if *f == fetch));
        let end = end.expect("the fetch ended cleanly");
        let frames_before = events[..end].iter().filter(|e| matches!(e, Event::Frame { .. })).count();
        assert!(frames_before <= 8, "{v}: the fetch waited for {frames_before} group frames");
    }
}
