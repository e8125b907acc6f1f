//! Fuzz harness for one `Session` on the rig (`moqt_proto::testing`): our session is endpoint
//! `A` of a `Net`, its peer is scripted by the input through the wire's raw API, and the net's
//! one run loop drives everything (no private pump loop).
//!
//! Input: `[cfg, op…]`. `cfg` bits 0-1 pick the version (lite-03 … lite-06), bit 2 the gomoqt
//! dialect, bit 3 the perspective (server), bit 4 tight wire limits, bits 5-7 the hop id. Each
//! op is an opcode byte followed by its arguments (see [`session`]); a truncated op reads zeros.
//! The peer writes raw bytes on any stream, resets and stops streams, sends datagrams and
//! well-formed messages (a SUBSCRIBE, a GROUP stream for one of our subscriptions, a SUBSCRIBE
//! response), so the fuzzer reaches the deep states quickly; the wire's shape (bandwidth, send
//! and receive windows, a stalled side) changes under it; time moves; and every application call
//! is made. A few ops feed the session transport events no transport would produce (a stream
//! opened behind the wire's back, a bogus `Written`, unsolicited data): the session must survive
//! those too.
//!
//! Checked after every op: no panic; `queued_bytes() <= max_queued`; commands only name streams
//! the session opened (`Open` first, never twice) or was told about; as long as no op bypassed
//! the wire, the wire saw no breach of the driver contract at all; subscription events only name
//! ids `subscribe` returned; each group starts once and ends once, frames only inside open
//! groups; after a final close every started group has ended, `Closed` is the last event,
//! exactly once, and no timer remains. This file is shared with
//! `moqt-proto/tests/fuzz_corpus.rs`, which replays the corpus.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use moqt_proto::message::{GroupHeader, Subscribe, SubscribeOk, SubscribeResponse};
use moqt_proto::session::{
    Command, Config, Event, FetchId, GroupId, InterestId, Perspective, ProbeId, PublicationId, SessionLimits, StreamId,
    SubscriptionId, TrackRequestId, TransportEvent,
};
use moqt_proto::testing::{EventCheck, Net, A};
use moqt_proto::{Dialect, Path, StreamEncoder, StreamMessage, StreamType, Version};

#[path = "session_app.rs"]
mod app;

const VERSIONS: [Version; 4] = [Version::Lite03, Version::Lite04, Version::Lite05, Version::Lite06];

/// The scripted peer's side of the wire.
const PEER: usize = 1;

const SESSION_LIMITS: SessionLimits = SessionLimits {
    max_subscriptions: 4,
    max_outgoing_subscriptions: 4,
    max_announce_interests: 3,
    max_announced: 6,
    max_streams: 24,
    max_queued_per_subscription: 2048,
    max_queued: 3072,
    max_queued_control: 2048,
    max_recv_buffered: 4096,
    partial_timeout: std::time::Duration::from_secs(1),
};

const PATHS: [&str; 4] = ["a", "a/b", "c", ""];

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Mostly small values, sometimes large ones, always below 2^62: every integer the session
    /// API takes (sequences, timestamps, codes, latencies) goes on the wire as a QUIC varint, and
    /// the encoder panics above that range (see fuzz/README.md).
    fn u64(&mut self) -> u64 {
        match self.byte() {
            b @ 0..=0xEF => u64::from(b),
            b => (u64::from(b) << (8 * (b & 7))) & ((1 << 62) - 1),
        }
    }
}

fn pick<T: Copy>(list: &[T], b: u8) -> Option<T> {
    (!list.is_empty()).then(|| list[usize::from(b) % list.len()])
}

struct State {
    net: Net,
    codec: moqt_proto::Codec,
    /// Every stream our session can name: opened by it (`Open`), by the peer, or injected.
    streams: Vec<StreamId>,
    opened: BTreeSet<StreamId>,
    /// Streams fed to the session behind the wire's back.
    injected: BTreeSet<StreamId>,
    next_injected: u64,
    /// Whether any op bypassed the wire (then the wire may see breaches the harness caused).
    tampered: bool,
    subscriptions: Vec<SubscriptionId>,
    publications: Vec<PublicationId>,
    groups_out: Vec<GroupId>,
    groups_in: Vec<GroupId>,
    fetches_in: Vec<FetchId>,
    fetches_out: Vec<FetchId>,
    probes: Vec<ProbeId>,
    interests: Vec<InterestId>,
    track_requests: Vec<TrackRequestId>,
    /// The event invariants (subscriptions known, groups start and end once, …).
    check: EventCheck,
}

impl State {
    fn stream(&self, b: u8) -> StreamId {
        // Mostly a known stream; 1 in 16 an arbitrary one.
        if b & 0xF == 0xF {
            return StreamId(u64::from(b >> 4));
        }
        pick(&self.streams, b >> 4).unwrap_or(StreamId(u64::from(b)))
    }

    /// Feeds a transport event straight to the session, behind the wire's back.
    fn inject(&mut self, ev: TransportEvent) {
        self.tampered = true;
        if let TransportEvent::StreamOpened(id) = ev {
            if id.is_remote() && self.injected.insert(id) {
                self.streams.push(id);
            }
        }
        self.net.inject(A, ev);
    }

    /// The peer opens a stream carrying `bytes` (and FIN) through the wire.
    fn peer_stream(&mut self, uni: bool, bytes: &[u8], fin: bool) {
        let wire = self.net.wire(0);
        let (theirs, ours) = wire.open_raw(PEER, uni);
        wire.write_raw(PEER, theirs, bytes, fin);
        self.streams.push(ours);
    }

    /// The peer's name for one of our streams, if the peer can send on it.
    fn peer_sender(&mut self, id: StreamId) -> Option<StreamId> {
        let theirs = self.net.wire(0).peer_name(A, id)?;
        (!theirs.is_uni() || !theirs.is_remote()).then_some(theirs)
    }

    fn encode(&self, msgs: &[StreamMessage]) -> Vec<u8> {
        let mut enc = StreamEncoder::new(self.codec);
        let mut buf = BytesMut::new();
        for m in msgs {
            enc.encode(m, &mut buf);
        }
        buf.to_vec()
    }

    /// Runs the network and checks every command and event since the last call.
    fn settle(&mut self) {
        if self.net.try_run().is_err() {
            panic!("the network did not settle");
        }
        for cmd in self.net.commands(A) {
            let named = match &cmd {
                Command::Open { stream, .. } => {
                    assert!(!stream.is_remote(), "Open names a remote id: {cmd:?}");
                    assert!(self.opened.insert(*stream), "stream opened twice: {cmd:?}");
                    self.streams.push(*stream);
                    None
                }
                Command::Read { stream, .. }
                | Command::Write { stream, .. }
                | Command::Reset { stream, .. }
                | Command::StopSending { stream, .. }
                | Command::SetPriority { stream, .. } => Some(*stream),
                Command::SendDatagram(d) => {
                    assert!(d.len() <= 1200, "datagram larger than max_datagram_size");
                    None
                }
                Command::Close { .. } => None,
            };
            if let Some(id) = named {
                let known = self.opened.contains(&id) || self.injected.contains(&id) || self.net.wire(0).knows(A, id);
                assert!(known, "command names a stream never opened: {cmd:?}");
            }
        }
        if !self.tampered {
            let v = self.net.wire(0).violations();
            assert!(v.is_empty(), "driver contract breached: {v:#?}");
        }
        for ev in self.net.events(A) {
            if let Err(breach) = self.check.event(&ev) {
                panic!("{breach}");
            }
            match ev {
                Event::GroupStarted { group, .. } => self.groups_in.push(group),
                Event::SubscribeRequest { publication, .. } => self.publications.push(publication),
                Event::FetchRequest { fetch, .. } => self.fetches_in.push(fetch),
                Event::ProbeRequest { probe } => self.probes.push(probe),
                Event::TrackRequest { request, .. } => self.track_requests.push(request),
                _ => {}
            }
        }
        let s = self.net.session(A);
        let max = s.config().session_limits.max_queued;
        assert!(s.queued_bytes() <= max, "queued {} > {max}", s.queued_bytes());
        if s.is_closed() {
            assert_eq!(s.queued_bytes(), 0);
            assert!(s.poll_timeout().is_none());
        }
    }
}

/// Runs one input. Returns whether the session was still open before the final close.
pub fn session(input: &[u8]) -> bool {
    let mut inp = Input { data: input };
    let cfg = inp.byte();
    let version = VERSIONS[usize::from(cfg & 3)];
    let perspective = if cfg & 8 != 0 { Perspective::Server } else { Perspective::Client };
    let mut config = Config::new(version, perspective);
    if cfg & 4 != 0 {
        config.dialect = Dialect::Gomoqt;
    }
    if cfg & 0x10 != 0 {
        config.limits = crate::harness::tight_limits();
    }
    config.session_limits = SESSION_LIMITS;
    config.hop_id = u64::from(cfg >> 5);
    let codec = moqt_proto::Codec::new(version).with_dialect(config.dialect).with_limits(config.limits);
    let mut net = Net::scripted(config);
    // Breaches are checked in `settle` (where the harness knows which ones it caused).
    net.strict = false;
    net.max_rounds = 100_000;
    let mut st = State {
        net,
        codec,
        streams: Vec::new(),
        opened: BTreeSet::new(),
        injected: BTreeSet::new(),
        next_injected: 0,
        tampered: false,
        subscriptions: Vec::new(),
        publications: Vec::new(),
        groups_out: Vec::new(),
        groups_in: Vec::new(),
        fetches_in: Vec::new(),
        fetches_out: Vec::new(),
        probes: Vec::new(),
        interests: Vec::new(),
        track_requests: Vec::new(),
        check: EventCheck::new(),
    };
    st.settle();

    let mut ops = 0;
    while !inp.data.is_empty() && ops < 4096 {
        ops += 1;
        let op = inp.byte();
        if !peer_or_wire(&mut st, &mut inp, op % 40, version) {
            app::application(&mut st, &mut inp, op % 40);
        }
        st.settle();
    }

    let open = !st.net.session(A).is_closed();
    st.net.session(A).close(0, "end");
    st.settle();
    // Every started group ended exactly once, and `Closed` came once, last.
    if let Err(breach) = st.check.finished() {
        panic!("{breach}");
    }
    open
}

/// Ops 0-10 and 38-39: what the peer, the wire and the transport do. Returns whether `op` was one.
fn peer_or_wire(st: &mut State, inp: &mut Input<'_>, op: u8, version: Version) -> bool {
    match op {
        // Behind the wire's back: a stream the transport never opened.
        0 => {
            let b = inp.byte();
            let id = StreamId::remote((1 << 30) + u64::from(b >> 1), b & 1 == 1);
            st.inject(TransportEvent::StreamOpened(id));
        }
        // The peer writes raw bytes (and maybe FIN) on a stream it can send on.
        1 => {
            let id = st.stream(inp.byte());
            let flags = inp.byte();
            let data = inp.bytes(usize::from(flags >> 1)).to_vec();
            if let Some(theirs) = st.peer_sender(id) {
                st.net.wire(0).write_raw(PEER, theirs, &data, flags & 1 == 1);
            }
        }
        // The peer resets its side of a stream.
        2 => {
            let id = st.stream(inp.byte());
            let code = inp.u64();
            if let Some(theirs) = st.peer_sender(id) {
                st.net.wire(0).reset_raw(PEER, theirs, code);
            }
        }
        // The peer asks us to stop sending.
        3 => {
            let id = st.stream(inp.byte());
            let code = inp.u64();
            if let Some(theirs) = st.net.wire(0).peer_name(A, id) {
                st.net.wire(0).stop_raw(PEER, theirs, code);
            }
        }
        // Behind the wire's back: a `Written` nobody asked for.
        4 => {
            let id = st.stream(inp.byte());
            let bytes = usize::from(inp.byte());
            st.inject(TransportEvent::Written { stream: id, bytes });
        }
        5 => {
            let n = usize::from(inp.byte());
            let data = Bytes::copy_from_slice(inp.bytes(n));
            st.net.wire(0).execute(PEER, Command::SendDatagram(data));
        }
        6 => {
            let code = inp.u64();
            st.net.disconnect(0, code);
        }
        // The wire's shape changes.
        7 => {
            let which = inp.byte();
            let value = usize::from(inp.byte()) * 8 + 1;
            let wire = st.net.wire(0);
            match which % 5 {
                0 => wire.options_mut().bandwidth = value,
                1 => wire.options_mut().send_window = value,
                2 => wire.options_mut().recv_window = value,
                3 => wire.options_mut().max_read = value,
                _ => wire.hold(A, which & 0x80 != 0),
            }
        }
        // ----- well-formed peer input -----
        8 => {
            // A SUBSCRIBE from the peer.
            let id = inp.u64();
            let track = format!("t{}", inp.byte() % 3);
            let sub = Subscribe {
                id,
                path: Path::new(PATHS[usize::from(inp.byte() % 4)]),
                track,
                priority: inp.byte(),
                ordered: inp.byte() & 1 == 1,
                max_latency: inp.u64(),
                start_group: None,
                end_group: None,
                start_frame: 0,
                end_frame: None,
            };
            let bytes = st.encode(&[StreamMessage::Type(StreamType::Subscribe), StreamMessage::Subscribe(sub)]);
            st.peer_stream(false, &bytes, false);
        }
        9 => {
            // A GROUP stream for one of our subscriptions (or any id), with a few frames.
            let sub = match inp.byte() {
                b if b < 0xF0 => pick(&st.subscriptions, b).map_or(u64::from(b), |s| s.0),
                b => u64::from(b),
            };
            let sequence = inp.u64();
            let flags = inp.byte();
            let mut msgs = vec![
                StreamMessage::Type(StreamType::Group),
                StreamMessage::Group(GroupHeader { subscribe_id: sub, sequence, frame_start: 0 }),
            ];
            for i in 0..(flags >> 1) % 5 {
                let len = usize::from(inp.byte() % 32);
                let payload = Bytes::copy_from_slice(inp.bytes(len));
                let timestamp = version.has_frame_timestamps().then_some(u64::from(i) * 10);
                msgs.push(StreamMessage::Frame(moqt_proto::Frame { timestamp, payload }));
            }
            let bytes = st.encode(&msgs);
            st.peer_stream(true, &bytes, flags & 1 == 1);
        }
        10 => {
            // A SUBSCRIBE response on one of our streams.
            let id = st.stream(inp.byte());
            let kind = inp.byte();
            let group = inp.u64();
            let resp = match kind % 3 {
                0 if !version.has_subscribe_start() => SubscribeResponse::Ok(SubscribeOk {
                    priority: 0,
                    ordered: false,
                    max_latency: 0,
                    start_group: Some(group),
                    end_group: None,
                }),
                0 => SubscribeResponse::Start(group),
                1 if version.has_subscribe_start() => SubscribeResponse::End(group),
                _ => SubscribeResponse::Drop(moqt_proto::message::SubscribeDrop {
                    start: group,
                    end: group + 1,
                    error: 5,
                }),
            };
            let bytes = st.encode(&[StreamMessage::SubscribeResponse(resp)]);
            if let Some(theirs) = st.peer_sender(id) {
                st.net.wire(0).write_raw(PEER, theirs, &bytes, kind & 0x80 != 0);
            }
        }
        // The wire back to normal: nothing held, no limits.
        38 => {
            let wire = st.net.wire(0);
            wire.hold(A, false);
            *wire.options_mut() = Default::default();
        }
        // Behind the wire's back: bytes the session did not ask for, on any stream.
        39 => {
            let id = match inp.byte() {
                b if b & 1 == 0 => st.stream(b),
                b => {
                    let id = StreamId::remote((1 << 31) + st.next_injected, b & 2 == 2);
                    st.next_injected += 1;
                    st.inject(TransportEvent::StreamOpened(id));
                    id
                }
            };
            let flags = inp.byte();
            let data = Bytes::copy_from_slice(inp.bytes(usize::from(flags >> 1)));
            st.inject(TransportEvent::StreamData { stream: id, data, fin: flags & 1 == 1 });
        }
        _ => return false,
    }
    true
}
