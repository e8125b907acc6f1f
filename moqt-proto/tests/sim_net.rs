//! Checks the deterministic network simulator (`tests/support/sim.rs`) on its own, before any moq-lite session
//! runs over it: bulk transfer with and without loss, determinism by seed, bidi streams, resets, stop-sending,
//! datagrams and connection close.

mod support;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use quinn_proto::ConnectionError;
use support::sim::{Dir, Link, NetEvent, Sim, SimConfig, Stats, StreamError, StreamId};

const MIB: usize = 1024 * 1024;

fn config(seed: u64, loss: f64, jitter_ms: u64) -> SimConfig {
    SimConfig {
        seed,
        link: Link { latency: Duration::from_millis(10), jitter: Duration::from_millis(jitter_ms), loss },
        ..SimConfig::default()
    }
}

/// A payload whose pattern does not repeat at any chunk size used here, so a lost or reordered chunk shows.
fn payload(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect::<Vec<u8>>().into()
}

/// Runs until both sides reported `Connected`; fails on any other event.
fn connect(sim: &mut Sim) {
    let (mut client, mut server) = (false, false);
    let ok = sim.run_until(
        |sim| {
            while let Some(ev) = sim.client().poll_event() {
                assert_eq!(ev, NetEvent::Connected);
                client = true;
            }
            while let Some(ev) = sim.server().poll_event() {
                assert_eq!(ev, NetEvent::Connected);
                server = true;
            }
            client && server
        },
        Duration::from_secs(30),
    );
    assert!(ok, "handshake did not complete by {:?}", sim.elapsed());
    assert!(sim.client().is_connected() && sim.server().is_connected());
}

/// Result of one bulk transfer.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    elapsed: Duration,
    stats: Stats,
    writable_events: usize,
}

/// Client sends `data` on a uni stream (pull model: writes only when writable), server reads it to the fin.
fn transfer_uni(cfg: SimConfig, data: &Bytes, limit: Duration) -> Outcome {
    let mut sim = Sim::new(cfg);
    connect(&mut sim);

    let send_id = sim.client().open(Dir::Uni).expect("stream credit for a uni stream");
    const CHUNK: usize = 64 * 1024;
    let mut pending: VecDeque<Bytes> =
        (0..data.len()).step_by(CHUNK).map(|at| data.slice(at..(at + CHUNK).min(data.len()))).collect();
    let (mut writable, mut finished, mut writable_events) = (true, false, 0);
    let (mut recv_id, mut received, mut fin) = (None::<StreamId>, Vec::with_capacity(data.len()), false);

    let done = sim.run_until(
        |sim| {
            let mut client = sim.client();
            while let Some(ev) = client.poll_event() {
                match ev {
                    NetEvent::Writable { id } if id == send_id => {
                        writable = true;
                        writable_events += 1;
                    }
                    NetEvent::Finished { id } if id == send_id => {}
                    other => panic!("client: unexpected {other:?}"),
                }
            }
            if writable && !finished {
                match client.write_chunks(send_id, pending.make_contiguous()) {
                    Ok(n) => assert!(n > 0),
                    Err(StreamError::Blocked) => writable = false,
                    Err(e) => panic!("write: {e:?}"),
                }
                while pending.front().is_some_and(Bytes::is_empty) {
                    pending.pop_front();
                }
                if pending.is_empty() {
                    client.finish(send_id).unwrap();
                    finished = true;
                }
            }

            let mut server = sim.server();
            while let Some(ev) = server.poll_event() {
                match ev {
                    NetEvent::Opened { id } => {
                        assert_eq!((id.dir(), recv_id), (Dir::Uni, None));
                        recv_id = Some(id);
                    }
                    NetEvent::Readable { id } => assert_eq!(Some(id), recv_id),
                    other => panic!("server: unexpected {other:?}"),
                }
            }
            while let (Some(id), false) = (recv_id, fin) {
                match server.read(id, usize::MAX) {
                    Ok(r) => {
                        r.chunks.iter().for_each(|c| received.extend_from_slice(c));
                        fin = r.fin;
                    }
                    Err(StreamError::Blocked) => break,
                    Err(e) => panic!("read: {e:?}"),
                }
            }
            fin
        },
        limit,
    );
    assert!(done, "transfer incomplete at {:?}: {} of {} bytes", sim.elapsed(), received.len(), data.len());
    assert!(received == data[..], "payload corrupted ({} bytes received)", received.len());
    Outcome { elapsed: sim.elapsed(), stats: sim.stats(), writable_events }
}

#[test]
fn four_mib_uni_stream_without_loss() {
    let data = payload(4 * MIB);
    let out = transfer_uni(config(1, 0.0, 0), &data, Duration::from_secs(60));
    println!("0% loss: {out:?}");
    assert_eq!(out.stats.dropped, 0);
    // Without loss every datagram sent was delivered, except the last few still in flight at completion.
    assert!(out.stats.sent - out.stats.delivered < 100, "{:?}", out.stats);
    assert!(out.stats.bytes_sent > 4 * MIB as u64, "at least the payload crossed the link");
    // The receive window is smaller than 4 MiB, so the writer must have been blocked and woken.
    assert!(out.writable_events > 0);
    // 4 MiB cannot cross a 10 ms link in one round trip, nor should it take anywhere near the idle timeout.
    assert!(out.elapsed > Duration::from_millis(40) && out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
}

#[test]
fn four_mib_uni_stream_under_loss_and_jitter() {
    let data = payload(4 * MIB);
    let out = transfer_uni(config(2, 0.10, 30), &data, Duration::from_secs(600));
    println!("10% loss, 0-30 ms jitter: {out:?}");
    let rate = out.stats.dropped as f64 / out.stats.sent as f64;
    assert!((0.07..0.13).contains(&rate), "drop rate {rate} far from 10%");
    assert!(out.stats.delivered <= out.stats.sent - out.stats.dropped);
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let data = payload(MIB);
    let run = |seed| transfer_uni(config(seed, 0.05, 10), &data, Duration::from_secs(300));
    let (a, b, c) = (run(7), run(7), run(8));
    println!("seed 7: {a:?}\nseed 8: {c:?}");
    assert_eq!(a, b);
    assert_ne!(a.stats, c.stats);
    assert_ne!(a.stats.schedule_hash, c.stats.schedule_hash);
}

/// Polls `side`'s events until `want` matches one, failing on connection loss.
fn expect_event(sim: &mut Sim, server: bool, mut want: impl FnMut(&NetEvent) -> bool) -> NetEvent {
    let mut found = None;
    let ok = sim.run_until(
        |sim| {
            let mut peer = if server { sim.server() } else { sim.client() };
            while let Some(ev) = peer.poll_event() {
                assert!(!matches!(ev, NetEvent::Closed(_)), "connection lost: {ev:?}");
                if want(&ev) {
                    found = Some(ev);
                    return true;
                }
            }
            false
        },
        Duration::from_secs(10),
    );
    assert!(ok, "event not seen by {:?}", sim.elapsed());
    found.unwrap()
}

/// Reads `id` until fin, Blocked-waiting through `Readable` events on that side.
fn read_to_end(sim: &mut Sim, server: bool, id: StreamId) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fin = false;
    let ok = sim.run_until(
        |sim| {
            let mut peer = if server { sim.server() } else { sim.client() };
            while !fin {
                match peer.read(id, usize::MAX) {
                    Ok(r) => {
                        r.chunks.iter().for_each(|c| out.extend_from_slice(c));
                        fin = r.fin;
                    }
                    Err(StreamError::Blocked) => break,
                    Err(e) => panic!("read {id}: {e:?}"),
                }
            }
            fin
        },
        Duration::from_secs(10),
    );
    assert!(ok, "no fin on {id}");
    out
}

#[test]
fn bidi_exchange_reset_and_stop_sending() {
    let mut sim = Sim::new(config(3, 0.0, 5));
    connect(&mut sim);

    // Request/response on one bidi stream.
    let bidi = sim.client().open(Dir::Bi).unwrap();
    sim.client().set_priority(bidi, 5).unwrap();
    assert_eq!(sim.client().write_chunks(bidi, &mut [Bytes::from_static(b"ping")]), Ok(4));
    sim.client().finish(bidi).unwrap();
    let opened = expect_event(&mut sim, true, |ev| matches!(ev, NetEvent::Opened { .. }));
    assert_eq!(opened, NetEvent::Opened { id: bidi });
    assert_eq!(read_to_end(&mut sim, true, bidi), b"ping");
    let mut reply = [Bytes::from_static(b"po"), Bytes::from_static(b"ng")];
    assert_eq!(sim.server().write_chunks(bidi, &mut reply), Ok(4));
    assert!(reply.iter().all(Bytes::is_empty), "written chunks are consumed");
    sim.server().finish(bidi).unwrap();
    assert_eq!(read_to_end(&mut sim, false, bidi), b"pong");
    expect_event(&mut sim, false, |ev| *ev == NetEvent::Finished { id: bidi });

    // Reset by the sender: the receiver sees the code, not the data.
    let uni = sim.client().open(Dir::Uni).unwrap();
    sim.client().write_chunks(uni, &mut [Bytes::from_static(b"stale group")]).unwrap();
    sim.client().reset(uni, 42).unwrap();
    assert_eq!(sim.client().write_chunks(uni, &mut [Bytes::from_static(b"x")]), Err(StreamError::Closed));
    assert_eq!(expect_event(&mut sim, true, |ev| matches!(ev, NetEvent::Opened { .. })), NetEvent::Opened { id: uni });
    let mut reset = None;
    sim.run_until(
        |sim| match sim.server().read(uni, usize::MAX) {
            Err(StreamError::Reset(code)) => {
                reset = Some(code);
                true
            }
            Ok(_) | Err(StreamError::Blocked) => false,
            Err(e) => panic!("{e:?}"),
        },
        Duration::from_secs(10),
    );
    assert_eq!(reset, Some(42));
    assert_eq!(sim.server().read(uni, 1), Err(StreamError::Closed), "a reset stream is gone after it is seen");

    // Stop-sending by the receiver: the sender sees the code.
    let uni = sim.client().open(Dir::Uni).unwrap();
    sim.client().write_chunks(uni, &mut [Bytes::from_static(b"unwanted")]).unwrap();
    expect_event(&mut sim, true, |ev| *ev == NetEvent::Opened { id: uni });
    sim.server().stop_sending(uni, 7).unwrap();
    let stopped = expect_event(&mut sim, false, |ev| matches!(ev, NetEvent::Stopped { .. }));
    assert_eq!(stopped, NetEvent::Stopped { id: uni, code: 7 });
    assert_eq!(sim.client().write_chunks(uni, &mut [Bytes::from_static(b"x")]), Err(StreamError::Stopped(7)));

    // Misuse is an error, not a panic.
    assert_eq!(sim.server().write_chunks(uni, &mut [Bytes::new()]), Err(StreamError::WrongDirection));
    assert_eq!(sim.client().read(uni, 1), Err(StreamError::WrongDirection));
}

#[test]
fn datagram_round_trip_and_close() {
    let mut sim = Sim::new(config(4, 0.0, 0));
    connect(&mut sim);

    sim.client().send_datagram(Bytes::from_static(b"probe")).unwrap();
    let got = expect_event(&mut sim, true, |ev| matches!(ev, NetEvent::Datagram(_)));
    assert_eq!(got, NetEvent::Datagram(Bytes::from_static(b"probe")));
    let sent_at = sim.elapsed();
    sim.server().send_datagram(Bytes::from_static(b"echo")).unwrap();
    let got = expect_event(&mut sim, false, |ev| matches!(ev, NetEvent::Datagram(_)));
    assert_eq!(got, NetEvent::Datagram(Bytes::from_static(b"echo")));
    assert_eq!(sim.elapsed() - sent_at, Duration::from_millis(10), "one-way latency, no jitter");

    sim.client().close(9, b"bye");
    let mut lost = None;
    sim.run_until(
        |sim| {
            while let Some(ev) = sim.server().poll_event() {
                if let NetEvent::Closed(reason) = ev {
                    lost = Some(reason);
                }
            }
            lost.is_some()
        },
        Duration::from_secs(10),
    );
    match lost {
        Some(ConnectionError::ApplicationClosed(close)) => {
            assert_eq!(u64::from(close.error_code), 9);
            assert_eq!(&close.reason[..], b"bye");
        }
        other => panic!("server saw {other:?}"),
    }
    // Both sides drain and the simulation runs dry.
    while sim.step() {}
    assert!(sim.elapsed() < Duration::from_secs(10));
}
