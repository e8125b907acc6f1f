//! Fuzz harness for moqt-qmux (target `qmux_records`). Also compiled into
//! `moqt-qmux/tests/fuzz_corpus.rs`, which replays `fuzz/corpus/qmux_records/` under `cargo test`.
//!
//! Two connections, A (under attack) and B (an honest peer), are driven by a byte script:
//!
//! `[cfg, op, args.., op, args..]`
//!
//! `cfg` bits: 0-1 version (0 qmux-00, 1 qmux-01, 2 qmux-02, 3 legacy), 2 A is the server,
//! 3 byte-stream framing (qmux-01+), 4 tight limits, 5 exchange parameters before the script.
//!
//! An op byte is `kind | arg << 4 | side << 7` (side 0 = A, 1 = B); kinds:
//! 0 raw record into A (`len`, bytes), 1 deliver records both ways, 2 open (arg bit 0 = uni),
//! 3 write (`stream`, `len/64`), 4 finish, 5 reset (`stream`, `code`), 6 read (`stream`,
//! `max/16`), 7 stop, 8 priority (`stream`, `prio`), 9 send datagram (`len/64`),
//! 10 receive datagram, 11 advance the clock (`x 250 ms`), 12 close, 13 ping, 14 a well-formed
//! frame into A (`kind`, args), 15 the transport ends.
//!
//! Checks: nothing panics; `Closed` is the last event; peer streams come with the peer's
//! role; neither side buffers more than its `max_data` nor queues more than its send buffer;
//! records stay within the size limits; and while A received only what B sent (no raw bytes
//! or injected frames), neither side ever finds a protocol error in the other (QMux
//! versions; the legacy format has no flow control to respect).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use moqt_qmux::frame::{self, Frame};
use moqt_qmux::params::TransportParams;
use moqt_qmux::{Config, Connection, ConnectionError, Dir, Event, Framing, Role, StreamId, Version};

struct Side {
    conn: Connection,
    streams: Vec<StreamId>,
    closed: bool,
    /// Records sent and not yet delivered.
    out: Vec<Bytes>,
}

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

    fn varint(&mut self) -> u64 {
        // A small or a large value, from one or eight bytes.
        let b = self.byte();
        if b & 0x80 == 0 {
            u64::from(b)
        } else {
            let mut v = 0u64;
            for _ in 0..7 {
                v = (v << 8) | u64::from(self.byte());
            }
            v & moqt_qmux::varint::MAX
        }
    }
}

fn config(tight: bool, framing: Framing) -> Config {
    let base = Config { framing, ..Config::default() };
    if !tight {
        return base;
    }
    Config {
        max_streams_bidi: 4,
        max_streams_uni: 4,
        max_data: 32 << 10,
        max_stream_data_bidi_local: 8 << 10,
        max_stream_data_bidi_remote: 8 << 10,
        max_stream_data_uni: 8 << 10,
        send_buffer: 64 << 10,
        datagram_send_queue: 4,
        datagram_recv_queue: 4,
        idle_timeout: Duration::from_secs(5),
        ..base
    }
}

/// Checks a side's new events and state.
fn check(side: &mut Side, peer_role: Role, honest: bool, legacy: bool) {
    while let Some(event) = side.conn.poll_event() {
        assert!(!side.closed, "event after Closed: {event:?}");
        match event {
            Event::StreamOpened(id) => {
                assert_eq!(id.initiator(), peer_role, "peer stream with our role");
                side.streams.push(id);
            }
            Event::Closed(err) => {
                side.closed = true;
                if honest && !legacy {
                    assert!(!matches!(err, ConnectionError::LocalTransport(_)), "honest peer rejected: {err}");
                }
            }
            _ => {}
        }
    }
    if !side.closed {
        // The legacy format only pauses at max_data and enforces twice that.
        let cap = side.conn.config().max_data * if legacy { 2 } else { 1 };
        assert!(side.conn.buffered_bytes() <= cap, "buffered beyond max_data");
        assert!(side.conn.queued_bytes() <= side.conn.config().send_buffer, "queued beyond the send buffer");
    }
    if side.streams.len() > 64 {
        side.streams.drain(..32);
    }
}

fn transmit(side: &mut Side, now: Instant, version: Version, framing: Framing) {
    while let Some(record) = side.conn.poll_transmit(now) {
        let limit = if version.has_records() { 16_382 + 8 } else { 16_384 };
        assert!(record.len() <= limit, "record of {} bytes", record.len());
        if framing == Framing::WebSocket && version.is_qmux() {
            let mut r = record.clone();
            while !r.is_empty() {
                frame::decode(&mut r).expect("our own record does not decode");
            }
        }
        side.out.push(record);
    }
}

fn deliver(to: &mut Side, records: Vec<Bytes>, now: Instant, framing: Framing) {
    for r in records {
        match framing {
            Framing::WebSocket => to.conn.handle_record(now, r),
            Framing::ByteStream => to.conn.handle_bytes(now, r),
        }
    }
}

/// A frame built from the script, valid on its own (it may still break A's rules).
fn injected(input: &mut Input, peer: Role) -> Frame {
    let kind = input.byte() % 10;
    let dir = if input.byte() & 1 == 0 { Dir::Bi } else { Dir::Uni };
    let id = StreamId::new(peer, dir, u64::from(input.byte() % 8));
    match kind {
        0 => {
            let len = usize::from(input.byte()) * 8;
            Frame::Stream { id, offset: input.varint(), data: Bytes::from(vec![0x5a; len]), fin: input.byte() & 1 == 1 }
        }
        1 => Frame::MaxData(input.varint()),
        2 => Frame::MaxStreamData { id, max: input.varint() },
        3 => Frame::MaxStreams { dir, max: input.varint() & ((1 << 60) - 1) },
        4 => Frame::ResetStream { id, code: input.varint(), final_size: input.varint() },
        5 => Frame::StopSending { id, code: input.varint() },
        6 => Frame::Ping(input.varint()),
        7 => Frame::Pong(input.varint()),
        8 => Frame::Datagram(Bytes::from(vec![7u8; usize::from(input.byte()) * 16])),
        _ => Frame::TransportParameters(TransportParams {
            initial_max_data: input.varint(),
            initial_max_streams_uni: u64::from(input.byte()),
            initial_max_stream_data_uni: input.varint(),
            max_record_size: 16_382 + input.varint(),
            ..TransportParams::default()
        }),
    }
}

/// What a run did, for the corpus test's sanity checks on the seeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// Stream payload bytes each side received.
    pub stream_bytes_received: [u64; 2],
    /// Datagrams each side received.
    pub datagrams_received: [u64; 2],
    /// Whether each side ended.
    pub closed: [bool; 2],
}

/// Runs one fuzz input.
pub fn qmux_records(data: &[u8]) -> Outcome {
    let mut input = Input { data };
    let cfg = input.byte();
    let version = [Version::Qmux00, Version::Qmux01, Version::Qmux02, Version::WebTransport][usize::from(cfg & 3)];
    let a_role = if cfg & 4 != 0 { Role::Server } else { Role::Client };
    let framing = if cfg & 8 != 0 && version.has_records() { Framing::ByteStream } else { Framing::WebSocket };
    let tight = cfg & 16 != 0;
    let legacy = !version.is_qmux();
    let mut now = Instant::now();
    let make = |role| {
        let conn = Connection::new(role, version, config(tight, framing), now).expect("valid config");
        Side { conn, streams: Vec::new(), closed: false, out: Vec::new() }
    };
    let mut sides = [make(a_role), make(a_role.peer())];
    let mut honest = true;
    if cfg & 32 != 0 {
        for side in &mut sides {
            transmit(side, now, version, framing);
        }
        let [a, b] = &mut sides;
        deliver(b, std::mem::take(&mut a.out), now, framing);
        deliver(a, std::mem::take(&mut b.out), now, framing);
    }
    let mut ops = 0;
    while !input.data.is_empty() && ops < 4_096 {
        ops += 1;
        let op = input.byte();
        let who = usize::from(op >> 7);
        let arg = (op >> 4) & 7;
        let pick = |side: &Side, b: u8| side.streams.get(usize::from(b) % side.streams.len().max(1)).copied();
        match op & 0x0f {
            0 => {
                let len = usize::from(input.byte()) * 8 + usize::from(arg);
                let raw = Bytes::copy_from_slice(input.bytes(len));
                honest = false;
                match framing {
                    Framing::WebSocket => sides[0].conn.handle_record(now, raw),
                    Framing::ByteStream => sides[0].conn.handle_bytes(now, raw),
                }
            }
            1 => {
                for side in &mut sides {
                    transmit(side, now, version, framing);
                }
                let [a, b] = &mut sides;
                deliver(b, std::mem::take(&mut a.out), now, framing);
                deliver(a, std::mem::take(&mut b.out), now, framing);
            }
            2 => {
                let side = &mut sides[who];
                if let Ok(id) = side.conn.open(if arg & 1 == 0 { Dir::Bi } else { Dir::Uni }) {
                    side.streams.push(id);
                }
            }
            3 => {
                let b = input.byte();
                let len = usize::from(input.byte()) * 64;
                if let Some(id) = pick(&sides[who], b) {
                    let _ = sides[who].conn.write(id, Bytes::from(vec![arg; len]));
                }
            }
            4 | 5 | 7 | 8 => {
                let b = input.byte();
                let value = input.varint();
                if let Some(id) = pick(&sides[who], b) {
                    let conn = &mut sides[who].conn;
                    match op & 0x0f {
                        4 => drop(conn.finish(id)),
                        5 => drop(conn.reset(id, value)),
                        7 => drop(conn.stop(id, value)),
                        _ => conn.set_priority(id, value as i8 as i32),
                    }
                }
            }
            6 => {
                let b = input.byte();
                let max = usize::from(input.byte()) * 16 + 1;
                if let Some(id) = pick(&sides[who], b) {
                    if let Ok(Some(chunk)) = sides[who].conn.read(id, max) {
                        assert!(chunk.len() <= max && !chunk.is_empty());
                    }
                }
            }
            9 => {
                let len = usize::from(input.byte()) * 64;
                let _ = sides[who].conn.send_datagram(Bytes::from(vec![arg; len]));
            }
            10 => drop(sides[who].conn.recv_datagram()),
            11 => {
                now += Duration::from_millis(u64::from(input.byte()) * 250);
                for side in &mut sides {
                    if side.conn.poll_timeout().is_some_and(|t| t <= now) {
                        side.conn.handle_timeout(now);
                    }
                }
            }
            12 => sides[who].conn.close(u64::from(arg), b"fuzz"),
            13 => sides[who].conn.ping(),
            14 => {
                honest = false;
                let frame = injected(&mut input, a_role.peer());
                let mut buf = BytesMut::new();
                let ok = if legacy { frame::encode_legacy(&frame, &mut buf) } else { frame::encode(&frame, &mut buf) };
                if ok.is_ok() {
                    let record = match framing {
                        Framing::WebSocket => buf.freeze(),
                        Framing::ByteStream => moqt_qmux::record::prefixed(&buf),
                    };
                    match framing {
                        Framing::WebSocket => sides[0].conn.handle_record(now, record),
                        Framing::ByteStream => sides[0].conn.handle_bytes(now, record),
                    }
                }
            }
            _ => sides[who].conn.handle_transport_closed(),
        }
        let peer_roles = [a_role.peer(), a_role];
        for (side, peer) in sides.iter_mut().zip(peer_roles) {
            check(side, peer, honest, legacy);
        }
    }
    let stats = |i: usize| sides[i].conn.stats().clone();
    Outcome {
        stream_bytes_received: [stats(0).stream_bytes_received, stats(1).stream_bytes_received],
        datagrams_received: [stats(0).datagrams_received, stats(1).datagrams_received],
        closed: [sides[0].closed, sides[1].closed],
    }
}
