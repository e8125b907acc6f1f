//! Property tests: records reassemble from any split of a byte stream, and stream data arrives
//! intact whatever the write sizes, read sizes, priorities, chunking and version.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{pattern, Pair};
use moqt_qmux::record::{prefixed, RecordReader};
use moqt_qmux::{Config, Dir, Event, Framing, StreamId, Version, WriteError};
use proptest::prelude::*;

proptest! {
    /// Any split of a stream of size-prefixed records gives back the same records.
    #[test]
    fn record_reader_any_split(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
        cuts in proptest::collection::vec(1usize..64, 1..20),
    ) {
        let wire: Vec<u8> = records.iter().flat_map(|r| prefixed(r).to_vec()).collect();
        let mut reader = RecordReader::new(16_382);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < wire.len() {
            let n = cuts[i % cuts.len()].min(wire.len() - pos);
            reader.push(Bytes::copy_from_slice(&wire[pos..pos + n]));
            pos += n;
            i += 1;
            while let Some(r) = reader.next_record().unwrap() {
                out.push(r.to_vec());
            }
        }
        prop_assert_eq!(out, records);
        prop_assert_eq!(reader.buffered(), 0);
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    version: Version,
    framing: Framing,
    /// Byte-stream delivery chunk size.
    chunk: usize,
    /// Per stream: (bidi?, total length, write size, priority).
    streams: Vec<(bool, usize, usize, i32)>,
    /// Read sizes, cycled.
    reads: Vec<usize>,
    send_record_size: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let version =
        prop_oneof![Just(Version::Qmux00), Just(Version::Qmux01), Just(Version::Qmux02), Just(Version::WebTransport)];
    (
        version,
        any::<bool>(),
        1usize..5_000,
        proptest::collection::vec((any::<bool>(), 0usize..60_000, 1usize..20_000, -3i32..3), 1..12),
        proptest::collection::vec(1usize..20_000, 1..6),
        16_382u64..40_000,
    )
        .prop_map(|(version, byte_stream, chunk, streams, reads, send_record_size)| Scenario {
            version,
            framing: if byte_stream && version.has_records() { Framing::ByteStream } else { Framing::WebSocket },
            chunk,
            streams,
            reads,
            send_record_size,
        })
}

fn run(s: Scenario) -> Result<(), TestCaseError> {
    let client = Config { framing: s.framing, send_record_size: s.send_record_size, ..Config::default() };
    // The legacy format cannot announce limits, so they only work when generous.
    let (conn_window, stream_window, streams) =
        if s.version.is_qmux() { (128 << 10, 32 << 10, 3) } else { (64 << 20, 64 << 20, 1_000) };
    let server = Config {
        framing: s.framing,
        max_record_size: 40_000,
        max_data: conn_window,
        max_stream_data_uni: stream_window,
        max_stream_data_bidi_remote: stream_window,
        max_streams_uni: streams,
        max_streams_bidi: streams,
        ..Config::default()
    };
    let mut pair = Pair::connected(s.version, client, server);
    pair.chunk = s.chunk;
    // Client: streams not yet opened, then the rest of each open stream's data.
    let mut todo: Vec<(usize, (bool, usize, usize, i32))> = s.streams.iter().copied().enumerate().rev().collect();
    let mut rest: BTreeMap<StreamId, (Bytes, usize)> = BTreeMap::new();
    let mut expected: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
    let mut got: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
    let mut ended = 0;
    let mut read_i = 0;
    for _ in 0..20_000 {
        while let Some(&(i, (bidi, len, write_size, prio))) = todo.last() {
            let Ok(id) = pair.client.conn.open(if bidi { Dir::Bi } else { Dir::Uni }) else { break };
            todo.pop();
            pair.client.conn.set_priority(id, prio);
            let data = pattern(i as u64, len);
            expected.insert(id, data.clone());
            rest.insert(id, (Bytes::from(data), write_size));
        }
        for (id, (data, write_size)) in rest.iter_mut() {
            while !data.is_empty() {
                let piece = data.slice(..(*write_size).min(data.len()));
                match pair.client.conn.write(*id, piece) {
                    Ok(n) => drop(data.split_to(n)),
                    Err(WriteError::Blocked) => break,
                    Err(e) => return Err(TestCaseError::fail(format!("write: {e}"))),
                }
            }
            if data.is_empty() {
                let _ = pair.client.conn.finish(*id);
            }
        }
        rest.retain(|_, (d, _)| !d.is_empty());
        pair.client.take(|_| Some(()));
        for e in pair.server.take(|e| Some(e.clone())) {
            prop_assert!(!matches!(e, Event::Closed(_)), "server closed: {e:?}");
            // A bidi stream is done once both sides finished: the server answers with a FIN.
            if let Event::StreamOpened(id) = e {
                if id.dir() == Dir::Bi {
                    pair.server.conn.finish(id).unwrap();
                }
            }
        }
        for id in expected.keys().copied() {
            let out = got.entry(id).or_default();
            loop {
                let size = s.reads[read_i % s.reads.len()];
                read_i += 1;
                match pair.server.conn.read(id, size) {
                    Ok(Some(chunk)) => {
                        prop_assert!(chunk.len() <= size);
                        out.extend_from_slice(&chunk);
                    }
                    Ok(None) => {
                        ended += 1;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        if ended == s.streams.len() && todo.is_empty() {
            break;
        }
        pair.step();
    }
    prop_assert_eq!(ended, s.streams.len(), "not every stream ended");
    for (id, data) in &expected {
        prop_assert!(got.get(id) == Some(data), "stream {:?} differs", id);
    }
    prop_assert!(!pair.client.conn.is_closed() && !pair.server.conn.is_closed());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    /// Data arrives intact and in order whatever the sizes, priorities, chunking and version.
    #[test]
    fn streams_survive_any_chunking(s in scenario()) {
        run(s)?;
    }
}
