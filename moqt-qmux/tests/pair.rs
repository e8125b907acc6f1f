//! Two connections back to back: many streams under flow-control and stream-count pressure,
//! bidi traffic both ways, priorities, datagrams, resets, closes and timers, on every version
//! and both framings.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use common::{pattern, Pair};
use moqt_qmux::frame::{self, Frame};
use moqt_qmux::{
    Config, ConnectionError, DatagramError, Dir, Event, Framing, OpenError, ReadError, StreamId, Version, WriteError,
};

fn tight_server() -> Config {
    Config {
        max_streams_uni: 8,
        max_streams_bidi: 4,
        max_data: 64 << 10,
        max_stream_data_uni: 16 << 10,
        max_stream_data_bidi_remote: 16 << 10,
        ..Config::default()
    }
}

/// The client sends `count` uni streams of different sizes to a server that reads at most
/// `read_per_step` bytes per stream per step. Checks every byte, and that the server never
/// buffers more than it granted.
fn many_uni_streams(version: Version, framing: Framing, chunk: usize, count: u64, read_per_step: usize) {
    let client_cfg = Config { framing, ..Config::default() };
    // The legacy format cannot tell the peer our limits: they only bound what we accept, so
    // they must be generous there.
    let server_cfg = if version.is_qmux() {
        Config { framing, ..tight_server() }
    } else {
        Config { max_data: 16 << 20, ..Config::default() }
    };
    let max_data = server_cfg.max_data;
    let mut pair = Pair::connected(version, client_cfg, server_cfg);
    pair.chunk = chunk;

    // Client state: streams still to open, data still to write per open stream.
    let mut to_open: VecDeque<u64> = (0..count).collect();
    let mut pending: BTreeMap<StreamId, Bytes> = BTreeMap::new();
    let mut seeds: BTreeMap<StreamId, u64> = BTreeMap::new();
    let mut blocked_opens = 0;
    let mut writable_events = 0;
    let mut may_open = true;
    // Server state.
    let mut readable: BTreeSet<StreamId> = BTreeSet::new();
    let mut received: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
    let mut done: BTreeSet<StreamId> = BTreeSet::new();

    let write = |pair: &mut Pair, id: StreamId, pending: &mut BTreeMap<StreamId, Bytes>| {
        let Some(data) = pending.get_mut(&id) else { return };
        while !data.is_empty() {
            match pair.client.conn.write(id, data.clone()) {
                Ok(n) => {
                    let _ = data.split_to(n);
                }
                Err(WriteError::Blocked) => return,
                Err(e) => panic!("write: {e}"),
            }
        }
        pair.client.conn.finish(id).unwrap();
        pending.remove(&id);
    };

    for _ in 0..100_000 {
        // Client: open what the stream limit allows (retrying only after StreamsAvailable).
        while may_open {
            let Some(&seed) = to_open.front() else { break };
            match pair.client.conn.open(Dir::Uni) {
                Ok(id) => {
                    to_open.pop_front();
                    let len = 20_000 + seed as usize * 1_500;
                    pending.insert(id, Bytes::from(pattern(seed, len)));
                    seeds.insert(id, seed);
                    write(&mut pair, id, &mut pending);
                }
                Err(OpenError::Blocked) => {
                    blocked_opens += 1;
                    may_open = false;
                }
                Err(e) => panic!("open: {e}"),
            }
        }
        for event in pair.client.take(|e| Some(e.clone())) {
            match event {
                Event::StreamsAvailable(Dir::Uni) => may_open = true,
                Event::Writable(id) => {
                    writable_events += 1;
                    write(&mut pair, id, &mut pending);
                }
                other => panic!("client event {other:?}"),
            }
        }
        // Server: a slow reader.
        for event in pair.server.take(|e| Some(e.clone())) {
            match event {
                Event::StreamOpened(id) => assert_eq!(id.dir(), Dir::Uni),
                Event::Readable(id) => {
                    readable.insert(id);
                }
                other => panic!("server event {other:?}"),
            }
        }
        for id in readable.clone() {
            let out = received.entry(id).or_default();
            let mut budget = read_per_step;
            loop {
                if budget == 0 {
                    break;
                }
                match pair.server.conn.read(id, budget) {
                    Ok(Some(chunk)) => {
                        budget -= chunk.len();
                        out.extend_from_slice(&chunk);
                    }
                    Ok(None) => {
                        done.insert(id);
                        readable.remove(&id);
                        break;
                    }
                    Err(ReadError::Blocked) => {
                        readable.remove(&id);
                        break;
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        assert!(pair.server.conn.buffered_bytes() <= max_data, "server buffers more than max_data");
        if done.len() as u64 == count {
            break;
        }
        pair.step();
    }
    assert_eq!(done.len() as u64, count, "not every stream finished ({version}, {framing:?})");
    for (id, data) in &received {
        let seed = seeds[id];
        assert!(data == &pattern(seed, 20_000 + seed as usize * 1_500), "stream {id:?}: {} bytes", data.len());
    }
    if version.is_qmux() {
        assert!(blocked_opens > 0, "the stream limit never blocked an open");
        assert!(writable_events > 0, "flow control never blocked a write");
    }
    // Everything was forgotten on both sides, and the server replenished MAX_STREAMS.
    pair.settle();
    assert_eq!(pair.client.conn.open_streams(), 0);
    assert_eq!(pair.server.conn.open_streams(), 0);
    assert_eq!(pair.client.conn.queued_bytes(), 0);
    assert!(!pair.client.conn.is_closed() && !pair.server.conn.is_closed());
}

#[test]
fn many_streams_qmux01_websocket() {
    many_uni_streams(Version::Qmux01, Framing::WebSocket, usize::MAX, 40, 4_000);
}

#[test]
fn many_streams_qmux02_websocket() {
    many_uni_streams(Version::Qmux02, Framing::WebSocket, usize::MAX, 40, 4_000);
}

#[test]
fn many_streams_qmux00_websocket() {
    many_uni_streams(Version::Qmux00, Framing::WebSocket, usize::MAX, 30, 4_000);
}

#[test]
fn many_streams_qmux01_byte_stream_small_chunks() {
    many_uni_streams(Version::Qmux01, Framing::ByteStream, 7, 20, 4_000);
}

#[test]
fn many_streams_qmux02_byte_stream() {
    many_uni_streams(Version::Qmux02, Framing::ByteStream, 1_000, 40, 4_000);
}

/// The legacy format has no flow control on the wire: a prompt reader keeps up.
#[test]
fn many_streams_legacy_prompt_reader() {
    many_uni_streams(Version::WebTransport, Framing::WebSocket, usize::MAX, 30, usize::MAX);
}

/// The legacy format cannot announce limits: past `max_data` unread the connection asks the
/// driver to stop reading (`receive_paused`); a peer only gets to twice that if the driver
/// ignores it, and is then closed with FLOW_CONTROL_ERROR.
#[test]
fn legacy_receive_backpressure() {
    let mut pair = Pair::connected(Version::WebTransport, Config::default(), tight_server());
    let id = pair.client.conn.open(Dir::Uni).unwrap();
    assert_eq!(pair.client.conn.write(id, Bytes::from(vec![1u8; 70 << 10])).unwrap(), 70 << 10);
    pair.settle();
    assert!(pair.server.conn.receive_paused() && !pair.server.conn.is_closed());
    let mut out = Vec::new();
    pair.server.read_all(id, &mut out);
    assert_eq!(out.len(), 70 << 10);
    assert!(!pair.server.conn.receive_paused());
    // A driver that keeps reading regardless lets the peer go past twice max_data.
    assert_eq!(pair.client.conn.write(id, Bytes::from(vec![1u8; 130 << 10])).unwrap(), 130 << 10);
    pair.settle();
    let err = pair.server.closed().unwrap();
    assert_eq!(err.code(), 0x3, "{err}");
    assert!(matches!(pair.client.closed(), Some(ConnectionError::PeerTransport { .. })));
}

/// Bidi streams both ways: each side opens some, the other echoes.
#[test]
fn bidi_echo_both_directions() {
    for version in Version::ALL {
        let mut pair = Pair::connected(version, Config::default(), Config::default());
        let mut sent = BTreeMap::new();
        for i in 0..3u64 {
            let c = pair.client.conn.open(Dir::Bi).unwrap();
            let s = pair.server.conn.open(Dir::Bi).unwrap();
            for (end, id) in [(&mut pair.client, c), (&mut pair.server, s)] {
                let data = pattern(id.0 + i, 30_000);
                assert_eq!(end.conn.write(id, Bytes::from(data.clone())).unwrap(), data.len());
                end.conn.finish(id).unwrap();
                sent.insert(id, data);
            }
        }
        let mut echoed: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
        let mut back: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
        for _ in 0..200 {
            pair.step();
            for end in [&mut pair.client, &mut pair.server] {
                for id in end.take(|e| match e {
                    Event::Readable(id) => Some(*id),
                    _ => None,
                }) {
                    let mine = id.initiator() == end.conn.role();
                    let buf = if mine { back.entry(id).or_default() } else { echoed.entry(id).or_default() };
                    let before = buf.len();
                    let ended = end.read_all(id, buf);
                    if !mine {
                        let new = Bytes::copy_from_slice(&buf[before..]);
                        if !new.is_empty() {
                            assert_eq!(end.conn.write(id, new.clone()).unwrap(), new.len());
                        }
                        if ended {
                            end.conn.finish(id).unwrap();
                        }
                    }
                }
                end.take(|e| matches!(e, Event::StreamOpened(_)).then_some(()));
            }
        }
        assert!(back == sent, "{version}: {} of {} streams echoed", back.len(), sent.len());
        pair.settle();
        assert_eq!(pair.client.conn.open_streams() + pair.server.conn.open_streams(), 0, "{version}");
    }
}

/// Frames of each stream in the records the client sends, in order: (id, payload length).
fn stream_frames(records: &[Bytes]) -> Vec<(StreamId, usize)> {
    let mut out = Vec::new();
    for r in records {
        let mut r = r.clone();
        while !r.is_empty() {
            if let Frame::Stream { id, data, .. } = frame::decode(&mut r).unwrap() {
                out.push((id, data.len()));
            }
        }
    }
    out
}

#[test]
fn priorities_and_round_robin() {
    let server = Config { max_data: 64 << 10, ..Config::default() };
    let mut pair = Pair::connected(Version::Qmux01, Config::default(), server);
    let c = &mut pair.client.conn;
    let low = c.open(Dir::Uni).unwrap();
    let high = c.open(Dir::Uni).unwrap();
    c.set_priority(high, 10);
    assert_eq!(c.write(low, Bytes::from(vec![0u8; 40_000])).unwrap(), 40_000);
    assert_eq!(c.write(high, Bytes::from(vec![1u8; 40_000])).unwrap(), 40_000);
    let mut records = Vec::new();
    while let Some(r) = c.poll_transmit(pair.now) {
        assert!(r.len() <= 16_382, "record {} bytes", r.len());
        records.push(r);
    }
    let frames = stream_frames(&records);
    let first_low = frames.iter().position(|f| f.0 == low).unwrap();
    let high_total: usize = frames[..first_low].iter().filter(|f| f.0 == high).map(|f| f.1).sum();
    assert_eq!(high_total, 40_000, "the high-priority stream goes first");
    let total: usize = frames.iter().map(|f| f.1).sum();
    assert_eq!(total, 64 << 10, "connection credit bounds what is sent");
    assert!(frames.iter().all(|f| f.1 <= moqt_qmux::MAX_STREAM_PAYLOAD));

    // Equal priorities take turns, one frame each.
    let mut pair = Pair::connected(Version::Qmux01, Config::default(), Config::default());
    let c = &mut pair.client.conn;
    let a = c.open(Dir::Uni).unwrap();
    let b = c.open(Dir::Uni).unwrap();
    c.write(a, Bytes::from(vec![0u8; 50_000])).unwrap();
    c.write(b, Bytes::from(vec![0u8; 50_000])).unwrap();
    let mut records = Vec::new();
    while let Some(r) = c.poll_transmit(pair.now) {
        records.push(r);
    }
    let order: Vec<StreamId> = stream_frames(&records).iter().map(|f| f.0).collect();
    assert!(order.windows(2).take(4).all(|w| w[0] != w[1]), "{order:?}");
}

#[test]
fn datagrams() {
    let server = Config { datagram_recv_queue: 4, ..Config::default() };
    let mut pair = Pair::connected(Version::Qmux01, Config::default(), server);
    let max = pair.client.conn.max_datagram_size().unwrap();
    assert_eq!(max, 16_382 - 1 - 2);
    assert_eq!(pair.client.conn.send_datagram(Bytes::from(vec![0u8; max + 1])), Err(DatagramError::TooLarge(max)));
    pair.client.conn.send_datagram(Bytes::from(vec![9u8; max])).unwrap();
    pair.settle();
    assert_eq!(pair.server.take(|e| (*e == Event::DatagramsReadable).then_some(())).len(), 1);
    assert_eq!(pair.server.conn.recv_datagram().unwrap().len(), max);
    assert_eq!(pair.server.conn.recv_datagram(), None);

    // The send queue keeps the newest 64; the receiver's queue the newest 4.
    for i in 0..100u8 {
        pair.client.conn.send_datagram(Bytes::from(vec![i])).unwrap();
    }
    assert_eq!(pair.client.conn.stats().datagrams_dropped_send, 36);
    pair.settle();
    let got: Vec<u8> = std::iter::from_fn(|| pair.server.conn.recv_datagram()).map(|d| d[0]).collect();
    assert_eq!(got, [96, 97, 98, 99]);
    assert_eq!(pair.server.conn.stats().datagrams_dropped_recv, 60);
    assert_eq!(pair.server.conn.stats().datagrams_received, 65);

    for version in [Version::Qmux00, Version::WebTransport] {
        let mut pair = Pair::connected(version, Config::default(), Config::default());
        assert_eq!(pair.client.conn.max_datagram_size(), None);
        assert_eq!(pair.client.conn.send_datagram(Bytes::from_static(b"x")), Err(DatagramError::Unsupported));
    }
    let no_dgram = Config { max_datagram_frame_size: 0, ..Config::default() };
    let mut pair = Pair::connected(Version::Qmux02, Config::default(), no_dgram);
    assert_eq!(pair.client.conn.send_datagram(Bytes::from_static(b"x")), Err(DatagramError::Unsupported));
}

#[test]
fn resets_and_stop_sending() {
    for version in Version::ALL {
        let server = if version.is_qmux() { tight_server() } else { Config::default() };
        let mut pair = Pair::connected(version, Config::default(), server);
        // Reset mid-stream: the server learns the code, the credit comes back.
        let a = pair.client.conn.open(Dir::Uni).unwrap();
        pair.client.conn.write(a, Bytes::from(vec![1u8; 10_000])).unwrap();
        pair.settle();
        pair.client.conn.reset(a, 7).unwrap();
        assert_eq!(pair.client.conn.write(a, Bytes::from_static(b"x")), Err(WriteError::Finished));
        pair.settle();
        let resets = pair.server.take(|e| match e {
            Event::Reset { id, code } => Some((*id, *code)),
            _ => None,
        });
        assert_eq!(resets, [(a, 7)], "{version}");
        assert_eq!(pair.server.conn.read(a, 10), Err(ReadError::UnknownStream));
        assert_eq!(pair.server.conn.buffered_bytes(), 0);

        // A reset as the first frame still opens the stream.
        let b = pair.client.conn.open(Dir::Uni).unwrap();
        pair.client.conn.reset(b, 8).unwrap();
        pair.settle();
        assert!(pair.server.opened().contains(&b));
        assert!(pair.server.events.contains(&Event::Reset { id: b, code: 8 }));

        // STOP_SENDING: the client resets with the server's code and learns of it.
        let c = pair.client.conn.open(Dir::Bi).unwrap();
        pair.client.conn.write(c, Bytes::from_static(b"hello")).unwrap();
        pair.settle();
        pair.server.conn.stop(c, 9).unwrap();
        pair.settle();
        let stops = pair.client.take(|e| match e {
            Event::StopSending { id, code } => Some((*id, *code)),
            _ => None,
        });
        assert_eq!(stops, [(c, 9)], "{version}");
        assert!(matches!(
            pair.client.conn.write(c, Bytes::from_static(b"x")),
            Err(WriteError::Stopped(9) | WriteError::UnknownStream)
        ));
        // The bidi stream's other half still works.
        pair.server.conn.write(c, Bytes::from_static(b"back")).unwrap();
        pair.server.conn.finish(c).unwrap();
        pair.settle();
        let mut out = Vec::new();
        assert!(pair.client.read_all(c, &mut out));
        assert_eq!(out, b"back");

        // After all that, a full connection window still flows.
        let d = pair.client.conn.open(Dir::Uni).unwrap();
        let data = pattern(5, 200_000);
        let mut rest = Bytes::from(data.clone());
        let mut got = Vec::new();
        for _ in 0..1_000 {
            while !rest.is_empty() {
                match pair.client.conn.write(d, rest.clone()) {
                    Ok(n) => drop(rest.split_to(n)),
                    Err(WriteError::Blocked) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            if rest.is_empty() {
                let _ = pair.client.conn.finish(d);
            }
            pair.step();
            if pair.server.read_all(d, &mut got) {
                break;
            }
        }
        assert!(got == data, "{version}: {} of {} bytes", got.len(), data.len());
        assert!(!pair.client.conn.is_closed(), "{version}");
    }
}

#[test]
fn application_close_both_ways() {
    for version in Version::ALL {
        let mut pair = Pair::connected(version, Config::default(), Config::default());
        let id = pair.client.conn.open(Dir::Uni).unwrap();
        pair.client.conn.close(5, b"done");
        assert!(pair.client.conn.is_closed() && !pair.client.conn.is_drained());
        assert_eq!(pair.client.conn.write(id, Bytes::from_static(b"x")), Err(WriteError::Closed));
        assert_eq!(pair.client.conn.open(Dir::Uni), Err(OpenError::Closed));
        pair.settle();
        assert!(pair.client.conn.is_drained());
        assert_eq!(
            pair.client.closed(),
            Some(ConnectionError::LocalClose { code: 5, reason: Bytes::from_static(b"done") })
        );
        let err = pair.server.closed().unwrap();
        assert_eq!(err, ConnectionError::PeerClose { code: 5, reason: Bytes::from_static(b"done") }, "{version}");
        assert!(err.is_application_close());
        assert!(pair.server.events.is_empty(), "Closed is the last event");
        assert_eq!(pair.server.conn.poll_transmit(pair.now), None, "nothing answers a close");
        assert_eq!(pair.server.conn.poll_timeout(), None);
    }
}

#[test]
fn keep_alive_and_idle_timeout() {
    let mut pair = Pair::connected(Version::Qmux01, Config::default(), Config::default());
    // Idle 30 s each side → QX_PING after 10 s of silence; a live peer answers and nothing closes.
    for _ in 0..120 {
        pair.advance(Duration::from_secs(1));
        pair.step();
    }
    assert!(!pair.client.conn.is_closed() && !pair.server.conn.is_closed());
    assert!(pair.client.conn.stats().pings_sent >= 10);
    assert!(pair.client.conn.rtt().is_some());
    // The server goes silent: the client closes 30 s after it last heard from it.
    pair.cut_to_client = true;
    let cut = pair.now;
    while !pair.client.conn.is_closed() {
        pair.advance(Duration::from_millis(100));
        pair.step();
        assert!(pair.now - cut <= Duration::from_secs(31), "no idle close");
    }
    assert!(pair.now - cut >= Duration::from_secs(29));
    assert_eq!(pair.client.closed(), Some(ConnectionError::IdleTimeout));
    assert_eq!(pair.client.conn.poll_transmit(pair.now), None, "idle close is silent");

    // Without idle timeouts on either side nothing is scheduled after the handshake.
    let none = Config { idle_timeout: Duration::ZERO, ..Config::default() };
    let pair = Pair::connected(Version::Qmux02, none.clone(), none);
    assert_eq!(pair.client.conn.poll_timeout(), None);
    // qmux-00 has no idle timeout or QX_PING.
    let pair = Pair::connected(Version::Qmux00, Config::default(), Config::default());
    assert_eq!(pair.client.conn.poll_timeout(), None);
}

#[test]
fn ping_measures_rtt() {
    let mut pair = Pair::connected(Version::Qmux02, Config::default(), Config::default());
    let t0 = pair.now;
    pair.client.conn.ping();
    let ping = pair.client.conn.poll_transmit(t0).unwrap();
    pair.server.conn.handle_record(t0 + Duration::from_millis(20), ping);
    let pong = pair.server.conn.poll_transmit(t0 + Duration::from_millis(20)).unwrap();
    pair.client.conn.handle_record(t0 + Duration::from_millis(50), pong);
    assert_eq!(pair.client.conn.rtt(), Some(Duration::from_millis(50)));
}

#[test]
fn handshake_timeout() {
    let mut pair = Pair::default(Version::Qmux01);
    pair.cut_to_server = true;
    pair.step();
    assert!(pair.client.conn.is_connected() && !pair.server.conn.is_connected());
    pair.advance(Duration::from_secs(9));
    assert!(!pair.server.conn.is_closed());
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.server.closed(), Some(ConnectionError::HandshakeTimeout));
}

#[test]
fn transport_closed() {
    let mut pair = Pair::connected(Version::Qmux01, Config::default(), Config::default());
    pair.server.conn.handle_transport_closed();
    assert_eq!(pair.server.closed(), Some(ConnectionError::TransportClosed));
    assert!(pair.server.conn.is_drained());
}

/// A connection closed before it sent anything still sends its parameters first, so a strict
/// qmux-02 peer sees a clean close; once the transport is gone nothing is sent at all.
#[test]
fn close_before_parameters() {
    for version in [Version::Qmux00, Version::Qmux01, Version::Qmux02] {
        let mut pair = Pair::default(version);
        pair.server.conn.close(3, b"bye");
        pair.settle();
        assert_eq!(
            pair.client.closed(),
            Some(ConnectionError::PeerClose { code: 3, reason: Bytes::from_static(b"bye") }),
            "{version}"
        );
    }
    let mut pair = Pair::default(Version::Qmux02);
    pair.server.conn.close(3, b"bye");
    pair.server.conn.handle_transport_closed();
    assert!(pair.server.conn.is_drained());
    assert_eq!(pair.server.conn.poll_transmit(pair.now), None);
}
