//! The rig itself (`moqt_proto::testing`): the wire enforces the driver contract, the run loop
//! gives up on a livelock, and the wire's shaping knobs do what the other tests rely on.

use std::any::Any;
use std::time::Instant;

use bytes::Bytes;
use moqt_proto::session::{Chunks, Command, StreamId, TransportEvent};
use moqt_proto::testing::{Link, Livelock, Net, Wire, WireOptions, A};
use moqt_proto::{Config, Perspective, Version};

/// A stream id side 0 of a wire may open (the rig's raw ids never collide with these).
fn local(index: u64, uni: bool) -> StreamId {
    StreamId(index << 2 | u64::from(uni) << 1)
}

fn write(stream: StreamId, data: &'static [u8], fin: bool) -> Command {
    let mut chunks = Chunks::new();
    chunks.push(Bytes::from_static(data));
    Command::Write { stream, chunks, fin }
}

/// Every event side `side` has, in order.
fn drain(wire: &mut Wire, side: usize) -> Vec<TransportEvent> {
    std::iter::from_fn(|| wire.poll_event(side)).collect()
}

#[test]
fn the_wire_flags_breaches_of_the_driver_contract() {
    let mut wire = Wire::new(WireOptions::default());
    let s = local(0, true);
    wire.execute(0, Command::Open { stream: s, priority: 0 });
    assert!(wire.violations().is_empty());
    // A command for a stream never opened.
    wire.execute(0, Command::Reset { stream: local(9, true), code: 0 });
    // A second write before the first one's `Written` was polled.
    wire.execute(0, write(s, b"a", false));
    wire.execute(0, write(s, b"b", false));
    // Reading our own uni stream.
    wire.execute(0, Command::Read { stream: s, max: 10 });
    // Opening an id twice.
    wire.execute(0, Command::Open { stream: s, priority: 0 });
    assert_eq!(wire.violations().len(), 4, "{:#?}", wire.violations());
    // The peer's second read grant while one is out.
    let peer = wire.peer_name(0, s).unwrap();
    wire.execute(1, Command::Read { stream: peer, max: 10 });
    wire.execute(1, Command::Read { stream: peer, max: 10 });
    assert_eq!(wire.violations().len(), 5, "{:#?}", wire.violations());
    // A write after FIN.
    let t = local(1, true);
    wire.execute(0, Command::Open { stream: t, priority: 0 });
    wire.execute(0, write(t, b"x", true));
    drain(&mut wire, 0);
    wire.execute(0, write(t, b"y", false));
    assert_eq!(wire.violations().len(), 6, "{:#?}", wire.violations());
}

#[test]
#[should_panic(expected = "driver contract breached")]
fn a_strict_net_fails_the_test_on_a_breach() {
    let mut net = Net::pair(Version::Lite06);
    net.wire(0).execute(A, Command::Read { stream: local(99, false), max: 1 });
    net.run();
}

/// A link that always has something to do.
#[derive(Debug)]
struct Busy;

impl Link for Busy {
    fn execute(&mut self, _: usize, _: Command) {}
    fn poll_event(&mut self, _: usize) -> Option<TransportEvent> {
        None
    }
    fn transmit(&mut self, _: Instant) -> bool {
        true
    }
    fn disconnect(&mut self, _: u64, _: &str) {}
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[test]
fn a_livelock_fails_within_the_round_cap() {
    let v = Version::Lite06;
    let mut net = Net::new(v);
    net.max_rounds = 500;
    let a = net.add_session(Config::new(v, Perspective::Client));
    let b = net.add_session(Config::new(v, Perspective::Server));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.connect_link(a, b, Box::new(Busy))));
    assert!(err.is_err(), "run must panic on a livelock");
    assert_eq!(net.try_run(), Err(Livelock { rounds: 500 }));
}

#[test]
fn hold_stalls_writes_until_release() {
    let mut wire = Wire::new(WireOptions::default());
    let s = local(0, true);
    wire.execute(0, Command::Open { stream: s, priority: 0 });
    wire.hold(0, true);
    wire.execute(0, write(s, b"held", false));
    assert!(!drain(&mut wire, 0).iter().any(|e| matches!(e, TransportEvent::Written { .. })), "nothing taken");
    assert!(!wire.transmit());
    wire.hold(0, false);
    assert!(!wire.transmit(), "nothing queued yet: the write is taken after transmitting");
    assert_eq!(drain(&mut wire, 0), vec![TransportEvent::Written { stream: s, bytes: 4 }]);
    assert!(wire.transmit());
    assert_eq!(wire.stats().bytes[0], 4);
}

#[test]
fn bandwidth_goes_to_the_highest_priority_and_reads_are_split() {
    let mut wire = Wire::new(WireOptions { bandwidth: 3, max_read: 2, ..WireOptions::default() });
    let (low, high) = (local(0, true), local(1, true));
    wire.execute(0, Command::Open { stream: low, priority: 1 });
    wire.execute(0, Command::Open { stream: high, priority: 9 });
    wire.execute(0, write(low, b"lowlow", true));
    wire.execute(0, write(high, b"hi", true));
    drain(&mut wire, 0);
    drain(&mut wire, 1);
    let (pl, ph) = (wire.peer_name(0, low).unwrap(), wire.peer_name(0, high).unwrap());
    for id in [pl, ph] {
        wire.execute(1, Command::Read { stream: id, max: 100 });
    }
    assert!(wire.transmit());
    // One round: 3 bytes, "hi" (and its FIN) first, then one byte of the low stream.
    let events = drain(&mut wire, 1);
    assert_eq!(
        events,
        vec![
            TransportEvent::StreamData { stream: ph, data: Bytes::from_static(b"hi"), fin: true },
            TransportEvent::StreamData { stream: pl, data: Bytes::from_static(b"l"), fin: false },
        ]
    );
    wire.execute(1, Command::Read { stream: pl, max: 100 });
    assert!(wire.transmit());
    // max_read 2: the low stream's next read is cut.
    assert_eq!(
        drain(&mut wire, 1),
        vec![TransportEvent::StreamData { stream: pl, data: Bytes::from_static(b"ow"), fin: false }]
    );
}

#[test]
fn a_stream_the_peer_opened_sends_at_priority_zero_like_quic() {
    let mut wire = Wire::new(WireOptions { bandwidth: 2, ..WireOptions::default() });
    let (bidi, uni) = (local(0, false), local(1, true));
    // Side 1 opens a uni stream at priority 1 and side 0 a bidi stream at a high priority;
    // side 1 answers on the bidi one, which it did not open: it goes after its own uni stream.
    wire.execute(0, Command::Open { stream: bidi, priority: 1000 });
    let answer = wire.peer_name(0, bidi).unwrap();
    let own = StreamId(uni.0);
    wire.execute(1, Command::Open { stream: own, priority: 1 });
    wire.execute(1, write(answer, b"ab", false));
    wire.execute(1, write(own, b"cd", false));
    drain(&mut wire, 1);
    let (at_a_answer, at_a_own) = (bidi, wire.peer_name(1, own).unwrap());
    for id in [at_a_answer, at_a_own] {
        wire.execute(0, Command::Read { stream: id, max: 100 });
    }
    wire.transmit();
    let got: Vec<StreamId> = drain(&mut wire, 0)
        .into_iter()
        .filter_map(|e| match e {
            TransportEvent::StreamData { stream, .. } => Some(stream),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![at_a_own], "the peer-opened stream waits");
}

#[test]
fn discard_makes_a_side_an_infinitely_fast_sink() {
    let mut wire = Wire::new(WireOptions { send_window: 1, ..WireOptions::default() });
    wire.discard(0, true);
    let s = local(0, true);
    wire.execute(0, Command::Open { stream: s, priority: 0 });
    wire.execute(0, write(s, b"everything", true));
    assert_eq!(drain(&mut wire, 0), vec![TransportEvent::Written { stream: s, bytes: 10 }]);
    assert!(drain(&mut wire, 1).is_empty(), "the other side never hears of it");
    assert_eq!(wire.stats().bytes[0], 10);
}

#[test]
fn scripted_peer_reads_and_writes_raw_bytes() {
    let mut net = Net::scripted(Config::new(Version::Lite04, Perspective::Server));
    // The peer opens a bidi stream with an unknown stream type: our session stops it.
    let wire = net.wire(0);
    let (theirs, ours) = wire.open_raw(1, false);
    wire.write_raw(1, theirs, &[0x3f], false);
    net.run();
    assert!(net.command_log(A).iter().any(|c| matches!(c, Command::StopSending { stream, .. } if *stream == ours)));
    // The peer hears of it on its raw stream.
    let heard: Vec<TransportEvent> = std::iter::from_fn(|| net.wire(0).poll_raw_event(1)).collect();
    assert!(heard.iter().any(|e| matches!(e, TransportEvent::StopSending { stream, .. } if *stream == theirs)));
}
