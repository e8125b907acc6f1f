//! Allocation accounting for the wire layer, with a counting global allocator.
//!
//! * Steady-state frame decoding from already-shared `Bytes` chunks allocates nothing per frame.
//! * Hostile inputs (huge declared lengths and counts) allocate at most a small multiple of the
//!   bytes actually received: every bound is checked before anything is reserved.
//!
//! The counting allocator is the benches' (`benches/src/counting.rs`, included here): only
//! allocations made by a thread inside `measure` count, and the tests take turns.

#[path = "../../benches/src/counting.rs"]
mod counting;

use bytes::{Bytes, BytesMut};
use counting::{measure, serial, Counting};
use moqt_proto::message::GroupHeader;
use moqt_proto::{Codec, Limits, StreamDecoder, StreamEncoder, StreamMessage, StreamType, Version};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A group stream (type, header, `count` frames of `size` bytes) and the offsets where each frame
/// ends, so that chunks can be cut on frame boundaries.
fn group_stream(codec: Codec, size: usize, count: usize) -> (Bytes, Vec<usize>) {
    let mut enc = StreamEncoder::new(codec);
    let mut buf = BytesMut::new();
    enc.encode(&StreamMessage::Type(StreamType::Group), &mut buf);
    enc.encode(&StreamMessage::Group(GroupHeader { subscribe_id: 1, sequence: 9, frame_start: 0 }), &mut buf);
    let mut ends = vec![buf.len()];
    let payload = vec![0x5au8; size];
    for i in 0..count {
        enc.frame_header(1000 + i as u64 * 33, size, &mut buf);
        buf.extend_from_slice(&payload);
        ends.push(buf.len());
    }
    (buf.freeze(), ends)
}

/// Cuts `data` at the given offsets into slices that share its buffer (already promoted to the
/// shared representation, as chunks from the transport are).
fn cut(data: &Bytes, cuts: impl IntoIterator<Item = usize>) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    for end in cuts {
        if end > at {
            out.push(data.slice(at..end));
            at = end;
        }
    }
    if at < data.len() {
        out.push(data.slice(at..));
    }
    out
}

/// Pushes each chunk and drains the decoder; returns the number of frames.
fn drain(dec: &mut StreamDecoder, chunks: &[Bytes]) -> usize {
    let mut frames = 0;
    for chunk in chunks {
        dec.push(chunk.clone());
        while let Some(msg) = dec.next().expect("valid stream") {
            if let StreamMessage::Frame(f) = msg {
                std::hint::black_box(&f.payload);
                frames += 1;
            }
        }
    }
    frames
}

#[test]
fn steady_state_frame_decoding_does_not_allocate() {
    let _serial = serial();
    const WARM: usize = 200;
    const N: usize = 10_000;
    for version in [Version::Lite04, Version::Lite06] {
        let codec = Codec::new(version);
        for size in [0usize, 1, 64, 1000, 1100, 4096] {
            let (stream, ends) = group_stream(codec, size, WARM + N);
            let warm_end = ends[WARM];

            // Chunks that hold whole frames (up to ~1200 bytes of them, or one big frame each):
            // zero allocations, whatever the number of frames.
            let mut cuts = Vec::new();
            let (mut start, mut prev) = (0, 0);
            for &end in &ends {
                if end - start > 1200 && prev > start {
                    cuts.push(prev);
                    start = prev;
                }
                if end == warm_end {
                    cuts.push(end);
                    start = end;
                }
                prev = end;
            }
            let chunks = cut(&stream, cuts);
            let mut offset = 0;
            let split = chunks
                .iter()
                .position(|c| {
                    let at = offset;
                    offset += c.len();
                    at == warm_end
                })
                .expect("a chunk starts after the warm-up frames");
            let (warm, rest) = chunks.split_at(split);
            let mut dec = StreamDecoder::opener(codec, true);
            assert_eq!(drain(&mut dec, warm), WARM);
            let (frames, allocs, bytes) = measure(|| drain(&mut dec, rest));
            dec.finish().unwrap();
            assert_eq!(frames, N);
            assert_eq!(
                allocs, 0,
                "{version}: {N} frames of {size} B in frame-aligned chunks allocated {allocs} times ({bytes} B)"
            );

            // 1200-byte chunks that ignore frame boundaries: only a frame that straddles two
            // chunks is gathered into a new buffer, so at most one allocation per chunk.
            let chunks = cut(&stream, (1200..stream.len()).step_by(1200));
            let split = chunks.len() / 50 + 1;
            let (warm, rest) = chunks.split_at(split);
            let mut dec = StreamDecoder::opener(codec, true);
            let before = drain(&mut dec, warm);
            let (frames, allocs, _) = measure(|| drain(&mut dec, rest));
            dec.finish().unwrap();
            assert_eq!(before + frames, WARM + N);
            assert!(
                allocs <= rest.len(),
                "{version}: {size} B frames in {} unaligned chunks allocated {allocs} times",
                rest.len()
            );
        }
    }
}

/// Limits with every bound opened up, so that only the input size can stop a hostile count.
fn permissive() -> Limits {
    Limits {
        max_message_size: 1 << 40,
        max_frame_size: 1 << 40,
        max_string_len: u64::MAX,
        max_path_len: usize::MAX,
        max_path_depth: usize::MAX,
        max_hops: u64::MAX,
        max_setup_params: u64::MAX,
        max_goaway_uri: u64::MAX,
        strict_varints: false,
    }
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

/// A varint in its 8-byte form.
fn v8(value: u64) -> String {
    (0xc000_0000_0000_0000u64 | value).to_be_bytes().iter().map(|b| format!("{b:02x} ")).collect()
}

#[test]
fn hostile_inputs_allocate_in_proportion_to_their_size() {
    let _serial = serial();
    let max = v8((1 << 62) - 1);
    let million = "80 0f 42 40"; // 1 000 000
    let billion = "c0 00 00 00 3b 9a ca 00"; // 10^9
                                             // (name, version, uni opener?, stream bytes); every stream starts with its type.
    let cases: Vec<(&str, Version, bool, String)> = vec![
        ("message length 2^62-1", Version::Lite05, false, format!("02 {max}")),
        ("message length 10^9", Version::Lite05, false, format!("02 {billion} 01")),
        ("frame length 2^62-1", Version::Lite05, true, format!("00 02 01 00 00 {max} 61 62 63")),
        ("frame length 2^30", Version::Lite04, true, "00 02 01 00 c0 00 00 00 40 00 00 00 61".into()),
        ("setup length 2^62-1", Version::Lite06, true, format!("01 {max}")),
        ("setup parameter count 2^62-1", Version::Lite05, true, format!("01 08 {max}")),
        ("setup parameter count 10^9", Version::Lite06, true, format!("01 0b {billion} 01 01 01")),
        ("setup parameter length 2^62-1", Version::Lite05, true, format!("01 0b 01 02 {max} 61")),
        ("track name length 2^62-1", Version::Lite05, false, format!("02 0b 01 01 61 {max}")),
        ("path length 2^62-1", Version::Lite04, false, format!("02 0a 01 {max} 61")),
        ("goaway uri length 2^62-1", Version::Lite04, false, format!("05 08 {max}")),
        ("fetch track length 10^6", Version::Lite06, false, format!("03 07 01 61 {million} 62")),
        ("announce request prefix 10^9", Version::Lite03, false, format!("01 08 {billion}")),
    ];
    // Responder streams (announcements), where the hop counts live.
    let responder: Vec<(&str, Version, StreamType, String)> = vec![
        ("announce hop count 10^6", Version::Lite04, StreamType::Announce, format!("09 01 01 61 {million} 07 08")),
        ("announce hop count 2^62-1", Version::Lite05, StreamType::Announce, format!("02 00 00 0c 01 01 61 {max} 07")),
        (
            "announce_start hop count 10^9",
            Version::Lite06,
            StreamType::Announce,
            format!("02 00 00 00 0d 01 61 {billion} 07 08 09"),
        ),
        (
            "announce_restart hop count 10^6",
            Version::Lite06,
            StreamType::Announce,
            format!("02 00 00 02 07 05 {million} 07 08"),
        ),
        ("subscribe response length 2^62-1", Version::Lite05, StreamType::Subscribe, format!("00 {max}")),
        ("frame length 2^62-1 (fetch)", Version::Lite06, StreamType::Fetch, format!("02 {max}")),
    ];

    let mut report = Vec::new();
    for limits in [Limits::default(), permissive()] {
        let mut run = |name: &str, input: Vec<u8>, make: &dyn Fn(Codec) -> StreamDecoder, version: Version| {
            let codec = Codec::new(version).with_limits(limits);
            let data = Bytes::from(input);
            // Whole buffer and 3-byte chunks (pre-cut, so the chunks themselves are not counted).
            for chunk in [data.len(), 3] {
                let chunks = cut(&data, (chunk..data.len()).step_by(chunk));
                let mut dec = make(codec);
                let (outcome, allocs, bytes) = measure(|| {
                    for c in &chunks {
                        dec.push(c.clone());
                        loop {
                            match dec.next() {
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    dec.finish()
                });
                // The receive queue holds one 32-byte `Bytes` per chunk; everything else must be
                // bounded by the input itself.
                let bound = 4 * data.len() + 64 * chunks.len() + 256;
                assert!(
                    bytes <= bound,
                    "{name} ({}-byte chunks, {:?} limits): {allocs} allocations, {bytes} B for {} B of input \
                     (bound {bound}); outcome {outcome:?}",
                    chunk,
                    if limits == Limits::default() { "default" } else { "permissive" },
                    data.len(),
                );
                report.push(format!("{name}: {bytes} B in {allocs} allocations, {outcome:?}"));
            }
        };
        for (name, version, uni, input) in &cases {
            let uni = *uni;
            run(name, hex(input), &move |c| StreamDecoder::opener(c, uni), *version);
        }
        for (name, version, ty, input) in &responder {
            let ty = *ty;
            run(name, hex(input), &move |c| StreamDecoder::responder(c, ty), *version);
        }
    }
    // lite-03 carries a bare hop *count* with no entries on the wire, and the decoder expands it
    // into that many zero hop ids. Only `Limits::max_hops` bounds it (the default of 32 is safe,
    // above); with a raised limit the allocation follows the limit, not the input.
    for max_hops in [32u64, 1024] {
        let codec = Codec::new(Version::Lite03).with_limits(Limits { max_hops, ..permissive() });
        let data = hex(&format!("07 01 01 61 {million}"));
        let mut dec = StreamDecoder::responder(codec, StreamType::Announce);
        dec.push(Bytes::from(data.clone()));
        let (outcome, allocs, bytes) = measure(|| dec.next().map(|m| m.is_some()));
        assert!(outcome.is_err(), "a count above max_hops must be rejected");
        let bound = 4 * data.len() + 256;
        assert!(bytes <= bound, "lite-03 hop count with max_hops {max_hops}: {allocs} allocations, {bytes} B");
        // A count of exactly max_hops (2-byte varint), which is accepted.
        let data = hex(&format!("05 01 01 61 {:02x} {:02x}", 0x40 | (max_hops >> 8), max_hops & 0xff));
        let mut dec = StreamDecoder::responder(codec, StreamType::Announce);
        dec.push(Bytes::from(data.clone()));
        let (outcome, _, bytes) = measure(|| dec.next().map(|m| m.is_some()));
        assert_eq!(outcome, Ok(true));
        assert!(bytes <= 8 * max_hops as usize + 256, "lite-03 hop count {max_hops}: {bytes} B");
    }
    // Visible with `cargo test -- --nocapture`.
    for line in report {
        println!("{line}");
    }
}
