//! Fuzz harness for one `Session`: arbitrary transport events and application calls.
//!
//! Input: `[cfg, op…]`. `cfg` bits 0-1 pick the version (lite-03 … lite-06), bit 2 the gomoqt
//! dialect, bit 3 the perspective (server), bit 4 tight wire limits. Each op is an opcode byte
//! followed by its arguments (see [`session`]); a truncated op reads zeros. Besides raw bytes on
//! any stream, some ops write well-formed messages (a SUBSCRIBE, a GROUP stream for one of our
//! subscriptions, a SUBSCRIBE response), so the fuzzer reaches the deep states quickly.
//!
//! Checked after every op: no panic; `queued_bytes() <= max_queued`; commands only name streams
//! the session opened (`Open` first) or was told about (`StreamOpened`); subscription events only
//! name ids `subscribe` returned; each group starts once and ends once, and after a final close
//! every started group has ended, `Closed` is the last event, exactly once, and no timer remains.
//! This file is shared with `moqt-proto/tests/fuzz_corpus.rs`, which replays the corpus.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use moqt_proto::message::{GroupHeader, Probe, Subscribe, SubscribeOk, SubscribeResponse, TrackInfo};
use moqt_proto::session::{
    Command, Config, Event, Perspective, PublishParams, Session, SessionLimits, StreamId, SubscribeParams,
    TransportEvent,
};
use moqt_proto::{Dialect, Path, StreamEncoder, StreamMessage, StreamType, Version};

const VERSIONS: [Version; 4] = [Version::Lite03, Version::Lite04, Version::Lite05, Version::Lite06];

const SESSION_LIMITS: SessionLimits = SessionLimits {
    max_subscriptions: 4,
    max_outgoing_subscriptions: 4,
    max_announce_interests: 3,
    max_announced: 6,
    max_streams: 24,
    max_queued_per_subscription: 2048,
    max_queued: 3072,
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
    s: Session,
    now: Instant,
    codec: moqt_proto::Codec,
    /// Local streams from `Open`, remote streams from `StreamOpened`.
    local: BTreeSet<StreamId>,
    remote: Vec<StreamId>,
    next_remote: u64,
    /// Streams with a pending `Transmit`.
    transmit: BTreeSet<StreamId>,
    subscriptions: Vec<u64>,
    publications: Vec<StreamId>,
    groups_out: Vec<StreamId>,
    groups_in: Vec<StreamId>,
    fetches_in: Vec<StreamId>,
    fetches_out: Vec<StreamId>,
    probes: Vec<StreamId>,
    interests: Vec<StreamId>,
    started: BTreeMap<StreamId, u32>,
    closed_events: u32,
    events_after_close: u32,
}

impl State {
    fn all_streams(&self) -> Vec<StreamId> {
        self.local.iter().copied().chain(self.remote.iter().copied()).collect()
    }

    fn stream(&self, b: u8) -> StreamId {
        // Mostly a known stream; 1 in 16 an arbitrary one.
        if b & 0xF == 0xF {
            return StreamId(u64::from(b >> 4));
        }
        pick(&self.all_streams(), b >> 4).unwrap_or(StreamId(u64::from(b)))
    }

    fn handle(&mut self, ev: TransportEvent) {
        if let TransportEvent::StreamOpened(id) = ev {
            if id.is_remote() && !self.remote.contains(&id) {
                self.remote.push(id);
            }
        }
        self.s.handle(self.now, ev);
    }

    /// Drains commands and events, checking the invariants.
    fn settle(&mut self) {
        while let Some(cmd) = self.s.poll_command() {
            let named = match &cmd {
                Command::Open { id, .. } => {
                    assert!(!id.is_remote(), "Open names a remote id: {cmd:?}");
                    assert!(self.local.insert(*id), "stream opened twice: {cmd:?}");
                    None
                }
                Command::Transmit(id) => {
                    self.transmit.insert(*id);
                    Some(*id)
                }
                Command::Reset { id, .. } | Command::StopSending { id, .. } | Command::SetPriority { id, .. } => {
                    Some(*id)
                }
                Command::SendDatagram(d) => {
                    assert!(d.len() <= 1200, "datagram larger than max_datagram_size");
                    None
                }
                Command::Close { .. } => None,
            };
            if let Some(id) = named {
                let known = if id.is_remote() { self.remote.contains(&id) } else { self.local.contains(&id) };
                assert!(known, "command names a stream never opened: {cmd:?}");
            }
        }
        while let Some(ev) = self.s.poll_event() {
            if self.closed_events > 0 {
                self.events_after_close += 1;
            }
            let sub = match &ev {
                Event::Frame { subscription, .. }
                | Event::GroupStarted { subscription, .. }
                | Event::GroupEnded { subscription, .. }
                | Event::Datagram { subscription, .. } => Some(*subscription),
                Event::SubscribeOk { id, .. }
                | Event::SubscribeStart { id, .. }
                | Event::SubscribeEnd { id, .. }
                | Event::GroupsDropped { id, .. }
                | Event::SubscriptionEnded { id, .. } => Some(*id),
                _ => None,
            };
            if let Some(sub) = sub {
                assert!(self.subscriptions.contains(&sub), "event for a subscription never made: {ev:?}");
            }
            match ev {
                Event::GroupStarted { stream, .. } => {
                    assert!(self.started.insert(stream, 0).is_none(), "group started twice: {stream:?}");
                    self.groups_in.push(stream);
                }
                Event::GroupEnded { stream, .. } => {
                    let ends = self.started.get_mut(&stream).expect("group ended without starting");
                    *ends += 1;
                    assert_eq!(*ends, 1, "group ended twice: {stream:?}");
                }
                Event::Frame { stream, .. } => {
                    assert_eq!(self.started.get(&stream), Some(&0), "frame outside an open group");
                }
                Event::SubscribeRequest { stream, .. } => self.publications.push(stream),
                Event::FetchRequest { stream, .. } => self.fetches_in.push(stream),
                Event::ProbeRequest { stream } => self.probes.push(stream),
                Event::Closed { .. } => self.closed_events += 1,
                _ => {}
            }
        }
        let max = self.s.config().session_limits.max_queued;
        assert!(self.s.queued_bytes() <= max, "queued {} > {max}", self.s.queued_bytes());
        if self.s.is_closed() {
            assert_eq!(self.s.queued_bytes(), 0);
            assert!(self.s.poll_timeout().is_none());
        }
    }

    /// Pulls up to `budget` bytes from one stream with a pending Transmit (as a transport would).
    fn pull(&mut self, which: u8, budget: usize) {
        let list: Vec<StreamId> = self.transmit.iter().copied().collect();
        let Some(id) = pick(&list, which) else { return };
        let mut left = budget;
        loop {
            let Some((chunks, fin)) = self.s.send_chunks(id) else {
                self.transmit.remove(&id);
                return;
            };
            let total: usize = chunks.iter().map(Bytes::len).sum();
            let n = total.min(left);
            let fin = fin && n == total;
            self.s.advance_send(id, n, fin);
            left -= n;
            if fin || left == 0 || n == 0 {
                if fin {
                    self.transmit.remove(&id);
                }
                return;
            }
        }
    }

    /// A new remote stream carrying `msgs`, encoded by the wire layer.
    fn inject(&mut self, uni: bool, msgs: &[StreamMessage], fin: bool) -> StreamId {
        let id = StreamId::remote(self.next_remote, uni);
        self.next_remote += 1;
        let mut enc = StreamEncoder::new(self.codec);
        let mut buf = BytesMut::new();
        for m in msgs {
            enc.encode(m, &mut buf);
        }
        self.handle(TransportEvent::StreamOpened(id));
        self.handle(TransportEvent::StreamData { id, data: buf.freeze(), fin });
        id
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
    let start = Instant::now();
    let codec = moqt_proto::Codec::new(version).with_dialect(config.dialect).with_limits(config.limits);
    let mut st = State {
        s: Session::new(config, start),
        now: start,
        codec,
        local: BTreeSet::new(),
        remote: Vec::new(),
        next_remote: 0,
        transmit: BTreeSet::new(),
        subscriptions: Vec::new(),
        publications: Vec::new(),
        groups_out: Vec::new(),
        groups_in: Vec::new(),
        fetches_in: Vec::new(),
        fetches_out: Vec::new(),
        probes: Vec::new(),
        interests: Vec::new(),
        started: BTreeMap::new(),
        closed_events: 0,
        events_after_close: 0,
    };
    st.settle();

    let mut ops = 0;
    while !inp.data.is_empty() && ops < 4096 {
        ops += 1;
        let op = inp.byte();
        match op % 40 {
            // ----- transport events -----
            0 => {
                let b = inp.byte();
                let id = StreamId::remote(u64::from(b >> 1), b & 1 == 1);
                st.handle(TransportEvent::StreamOpened(id));
            }
            1 => {
                let id = st.stream(inp.byte());
                let flags = inp.byte();
                let data = Bytes::copy_from_slice(inp.bytes(usize::from(flags >> 1)));
                st.handle(TransportEvent::StreamData { id, data, fin: flags & 1 == 1 });
            }
            2 => {
                let id = st.stream(inp.byte());
                let code = inp.u64();
                st.handle(TransportEvent::StreamReset { id, code });
            }
            3 => {
                let id = st.stream(inp.byte());
                let code = inp.u64();
                st.handle(TransportEvent::StopSending { id, code });
            }
            4 => {
                let id = st.stream(inp.byte());
                st.handle(TransportEvent::Writable(id));
            }
            5 => {
                let n = usize::from(inp.byte());
                let data = Bytes::copy_from_slice(inp.bytes(n));
                st.handle(TransportEvent::Datagram(data));
            }
            6 => {
                let code = inp.u64();
                st.handle(TransportEvent::Closed { code, reason: String::new() });
            }
            7 => {
                let which = inp.byte();
                let budget = usize::from(inp.byte()) * 8 + 1;
                st.pull(which, budget);
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
                st.inject(false, &[StreamMessage::Type(StreamType::Subscribe), StreamMessage::Subscribe(sub)], false);
            }
            9 => {
                // A GROUP stream for one of our subscriptions (or any id), with a few frames.
                let sub = match inp.byte() {
                    b if b < 0xF0 => pick(&st.subscriptions, b).unwrap_or(u64::from(b)),
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
                st.inject(true, &msgs, flags & 1 == 1);
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
                let mut buf = BytesMut::new();
                StreamEncoder::new(st.codec).encode(&StreamMessage::SubscribeResponse(resp), &mut buf);
                st.handle(TransportEvent::StreamData { id, data: buf.freeze(), fin: kind & 0x80 != 0 });
            }
            // ----- application calls -----
            11 => {
                let _ = st.s.announce(Path::new(PATHS[usize::from(inp.byte() % 4)]));
            }
            12 => {
                let _ = st.s.unannounce(&Path::new(PATHS[usize::from(inp.byte() % 4)]));
            }
            13 => {
                if let Ok(id) = st.s.announce_interest(Path::new(PATHS[usize::from(inp.byte() % 4)])) {
                    st.interests.push(id);
                }
            }
            14 => {
                let params = SubscribeParams {
                    priority: inp.byte(),
                    ordered: inp.byte() & 1 == 1,
                    max_latency: inp.u64(),
                    ..Default::default()
                };
                if let Ok(id) = st.s.subscribe(Path::new("a"), "t0", params) {
                    st.subscriptions.push(id);
                }
            }
            15 => {
                if let Some(id) = pick(&st.subscriptions, inp.byte()) {
                    let _ = st.s.unsubscribe(id);
                }
            }
            16 => {
                if let Some(id) = pick(&st.subscriptions, inp.byte()) {
                    let params = SubscribeParams { priority: inp.byte(), max_latency: inp.u64(), ..Default::default() };
                    let _ = st.s.update_subscription(id, params);
                }
            }
            17 => {
                if let Some(p) = pick(&st.publications, inp.byte()) {
                    let _ = st.s.accept_subscription(p, PublishParams::default());
                }
            }
            18 => {
                if let Some(p) = pick(&st.publications, inp.byte()) {
                    let code = inp.u64();
                    let _ = st.s.reject_subscription(p, code);
                }
            }
            19 => {
                if let Some(p) = pick(&st.publications, inp.byte()) {
                    let seq = inp.u64();
                    if let Ok(g) = st.s.open_group(p, seq) {
                        st.groups_out.push(g);
                    }
                }
            }
            20 => {
                if let Some(g) = pick(&st.groups_out, inp.byte()) {
                    let len = usize::from(inp.byte()) * 8;
                    let _ = st.s.write_frame(g, inp.u64(), Bytes::from(vec![0xAB; len]));
                }
            }
            21 => {
                if let Some(g) = pick(&st.groups_out, inp.byte()) {
                    let _ = st.s.finish_group(g);
                }
            }
            22 => {
                if let Some(g) = pick(&st.groups_out, inp.byte()) {
                    let code = inp.u64();
                    let _ = st.s.reset_group(g, code);
                }
            }
            23 => {
                if let Some(p) = pick(&st.publications, inp.byte()) {
                    let end = match inp.byte() {
                        0 => None,
                        b => Some(u64::from(b)),
                    };
                    let _ = st.s.end_subscription(p, end);
                }
            }
            24 => {
                let group = inp.u64();
                let start_frame = inp.u64();
                let end_frame = match inp.byte() {
                    0 => None,
                    b => Some(u64::from(b)),
                };
                if let Ok(f) = st.s.fetch_frames(Path::new("a"), "t0", 1, group, start_frame, end_frame) {
                    st.fetches_out.push(f);
                }
            }
            25 => {
                if let Some(f) = pick(&st.fetches_in, inp.byte()) {
                    match inp.byte() % 3 {
                        0 => {
                            let ts = inp.u64();
                            let _ = st.s.fetch_frame(f, ts, Bytes::from_static(b"fetched"));
                        }
                        1 => {
                            let _ = st.s.fetch_finish(f);
                        }
                        _ => {
                            let code = inp.u64();
                            let _ = st.s.fetch_reject(f, code);
                        }
                    }
                }
            }
            26 => {
                let target = match inp.byte() {
                    0 => None,
                    b => Some(u64::from(b) * 1000),
                };
                if let Ok(p) = st.s.probe(target) {
                    st.probes.push(p);
                }
            }
            27 => {
                if let Some(p) = pick(&st.probes, inp.byte()) {
                    let bitrate = inp.u64();
                    match inp.byte() % 3 {
                        0 => {
                            let _ = st.s.probe_report(p, Probe { bitrate, rtt_ms: 5 });
                        }
                        1 => {
                            let _ = st.s.probe_target(p, bitrate);
                        }
                        _ => {
                            let _ = st.s.probe_close(p);
                        }
                    }
                }
            }
            28 => {
                let n = usize::from(inp.byte() % 32);
                let uri = String::from_utf8_lossy(inp.bytes(n)).into_owned();
                let _ = st.s.goaway(&uri);
            }
            29 => {
                let code = inp.u64();
                st.s.close(code, "fuzz");
            }
            30 => {
                let ms = u64::from(inp.byte()) * u64::from(inp.byte() % 16 + 1);
                st.now += Duration::from_millis(ms);
                st.s.handle_timeout(st.now);
            }
            31 => {
                if let Some(g) = pick(&st.groups_in, inp.byte()) {
                    let code = inp.u64();
                    let _ = st.s.stop_group(g, code);
                }
            }
            32 => {
                if let Some(p) = pick(&st.publications, inp.byte()) {
                    let len = usize::from(inp.byte()) * 8;
                    let seq = inp.u64();
                    let _ = st.s.send_datagram(p, seq, 0, Bytes::from(vec![1; len]));
                }
            }
            33 => {
                if let Some(p) = pick(&st.publications, inp.byte()) {
                    let (a, b) = (inp.u64(), inp.u64());
                    let _ = st.s.drop_groups(p, a, b, 5);
                }
            }
            34 => {
                if let Some(f) = pick(&st.fetches_out, inp.byte()) {
                    let _ = st.s.cancel_fetch(f);
                }
            }
            35 => {
                if let Some(i) = pick(&st.interests, inp.byte()) {
                    let _ = st.s.cancel_announce_interest(i);
                }
            }
            36 => {
                let _ = st.s.track_info(Path::new("a"), "t0");
            }
            37 => {
                // Answer or refuse a TRACK request on any stream.
                let id = st.stream(inp.byte());
                if inp.byte() & 1 == 0 {
                    let _ = st.s.track_reply(id, TrackInfo { timescale: 1000, ..Default::default() });
                } else {
                    let _ = st.s.track_reject(id, 3);
                }
            }
            38 => {
                // Pull everything that is pending.
                let ids: Vec<StreamId> = st.transmit.iter().copied().collect();
                for (i, _) in ids.iter().enumerate() {
                    st.pull(i as u8, usize::MAX / 2);
                }
            }
            _ => {
                let _ = st.s.subscription_params(st.stream(inp.byte()));
            }
        }
        st.settle();
    }

    let open = !st.s.is_closed();
    st.s.close(0, "end");
    st.settle();
    for (stream, ends) in &st.started {
        assert_eq!(*ends, 1, "group {stream:?} never ended");
    }
    assert_eq!(st.closed_events, 1, "Closed must come exactly once");
    assert_eq!(st.events_after_close, 0, "events after Closed");
    open
}
