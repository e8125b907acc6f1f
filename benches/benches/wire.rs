//! Wire-layer throughput: encoding and decoding control messages, and decoding group streams of
//! frames through `StreamDecoder` in transport-sized chunks.
//!
//! Message benches process one message per iteration (`Throughput::Elements(1)`), so criterion's
//! time is nanoseconds per message. Frame-stream benches report bytes of stream per second.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moqt_proto::message::{Announce, AnnounceStart, AnnounceStatus, GroupHeader, Message, RouteCost, Subscribe};
use moqt_proto::{Codec, Path, StreamDecoder, StreamEncoder, StreamMessage, StreamType, Version};

/// A typical SUBSCRIBE (fields as in vector V11 of docs/wire/vectors.md).
fn subscribe() -> Subscribe {
    Subscribe {
        id: 1,
        path: Path::new("room/alice"),
        track: "video".to_string(),
        priority: 0x80,
        ordered: false,
        max_latency: 500,
        start_group: None,
        end_group: Some(99),
        start_frame: 0,
        end_frame: None,
    }
}

fn announce() -> Announce {
    Announce { status: AnnounceStatus::Active, suffix: Path::new("room/alice"), hops: [7, 300].into_iter().collect() }
}

fn announce_start() -> AnnounceStart {
    AnnounceStart {
        suffix: Path::new("room/alice"),
        hops: [7, 300].into_iter().collect(),
        cost: RouteCost { warm: 5, cold: 9 },
    }
}

fn group_header() -> GroupHeader {
    GroupHeader { subscribe_id: 1, sequence: 16384, frame_start: 0 }
}

/// The body of a `Msg{}` encoding (without its length prefix).
fn body_of<M: Message>(msg: &M, codec: &Codec) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode_body(codec, &mut buf);
    buf.to_vec()
}

fn bench_messages(c: &mut Criterion) {
    let lite05 = Codec::new(Version::Lite05);
    let lite06 = Codec::new(Version::Lite06);

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    let mut buf = BytesMut::with_capacity(256);
    for (name, codec) in [("subscribe/lite-05", lite05), ("subscribe/lite-06", lite06)] {
        let msg = subscribe();
        g.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                black_box(&msg).encode(&codec, &mut buf);
                black_box(buf.len())
            })
        });
    }
    let msg = announce();
    g.bench_function("announce/lite-05", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&msg).encode(&lite05, &mut buf);
            black_box(buf.len())
        })
    });
    let msg = announce_start();
    g.bench_function("announce_start/lite-06", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&msg).encode(&lite06, &mut buf);
            black_box(buf.len())
        })
    });
    let msg = group_header();
    g.bench_function("group_header/lite-06", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&msg).encode(&lite06, &mut buf);
            black_box(buf.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, codec) in [("subscribe/lite-05", lite05), ("subscribe/lite-06", lite06)] {
        let body = body_of(&subscribe(), &codec);
        g.bench_function(name, |b| b.iter(|| Subscribe::decode(black_box(&body), &codec).unwrap()));
    }
    let body = body_of(&announce(), &lite05);
    g.bench_function("announce/lite-05", |b| b.iter(|| Announce::decode(black_box(&body), &lite05).unwrap()));
    // ANNOUNCE_START is typed: drop the type byte and the length prefix to get its body.
    let mut buf = BytesMut::new();
    announce_start().encode(&lite06, &mut buf);
    let body = buf[2..].to_vec();
    assert_eq!(AnnounceStart::decode(&body, &lite06).unwrap(), announce_start());
    g.bench_function("announce_start/lite-06", |b| {
        b.iter(|| AnnounceStart::decode(black_box(&body), &lite06).unwrap())
    });
    let body = body_of(&group_header(), &lite06);
    g.bench_function("group_header/lite-06", |b| b.iter(|| GroupHeader::decode(black_box(&body), &lite06).unwrap()));
    g.finish();

    // A realistic announce stream: 1000 ANNOUNCEs (lite-05) / ANNOUNCE_STARTs (lite-06) in 1200-byte
    // chunks through the responder's StreamDecoder.
    let mut g = c.benchmark_group("decode_stream");
    const N: usize = 1000;
    g.throughput(Throughput::Elements(N as u64));
    for (name, codec) in [("announce_x1000/lite-05", lite05), ("announce_start_x1000/lite-06", lite06)] {
        let mut enc = StreamEncoder::new(codec);
        let mut buf = BytesMut::new();
        if codec.version.has_announce_ok() {
            enc.encode(&StreamMessage::AnnounceOk(Default::default()), &mut buf);
        }
        for i in 0..N {
            let suffix = Path::new(&format!("room/user{i}"));
            let msg = if codec.version == Version::Lite06 {
                StreamMessage::AnnounceStart(AnnounceStart { suffix, ..announce_start() })
            } else {
                StreamMessage::Announce(Announce { suffix, ..announce() })
            };
            enc.encode(&msg, &mut buf);
        }
        let chunks = split(buf.freeze(), 1200);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut dec = StreamDecoder::responder(codec, StreamType::Announce);
                let mut n = 0;
                for chunk in &chunks {
                    dec.push(chunk.clone());
                    while let Some(msg) = dec.next().unwrap() {
                        black_box(msg);
                        n += 1;
                    }
                }
                dec.finish().unwrap();
                n
            })
        });
    }
    g.finish();
}

/// Splits `data` into `size`-byte chunks that share its buffer.
fn split(data: Bytes, size: usize) -> Vec<Bytes> {
    (0..data.len()).step_by(size).map(|at| data.slice(at..(at + size).min(data.len()))).collect()
}

/// A whole group stream: type, GROUP header, then `count` frames of `size` bytes, 33 ms apart.
fn group_stream(codec: Codec, size: usize, count: usize) -> Bytes {
    let mut enc = StreamEncoder::new(codec);
    let mut buf = BytesMut::with_capacity(count * (size + 8) + 16);
    enc.encode(&StreamMessage::Type(StreamType::Group), &mut buf);
    enc.encode(&StreamMessage::Group(group_header()), &mut buf);
    let payload = vec![0xa5u8; size];
    for i in 0..count {
        enc.frame_header(i as u64 * 33, size, &mut buf);
        buf.extend_from_slice(&payload);
    }
    buf.freeze()
}

/// Frames per stream for a frame size: about 1 MiB of payload, at least 16 frames.
fn frame_count(size: usize) -> usize {
    ((1 << 20) / size).max(16)
}

fn bench_frames(c: &mut Criterion) {
    let codec = Codec::new(Version::Lite06);
    let mut g = c.benchmark_group("frames");
    for size in [64usize, 1024, 64 * 1024] {
        let count = frame_count(size);
        let stream = group_stream(codec, size, count);
        g.throughput(Throughput::Bytes(stream.len() as u64));

        let payload = Bytes::from(vec![0xa5u8; size]);
        let mut out = BytesMut::with_capacity(stream.len() + 64);
        g.bench_function(BenchmarkId::new("encode", size), |b| {
            b.iter(|| {
                out.clear();
                let mut enc = StreamEncoder::new(codec);
                enc.encode(&StreamMessage::Type(StreamType::Group), &mut out);
                enc.encode(&StreamMessage::Group(group_header()), &mut out);
                for i in 0..count {
                    enc.frame_header(i as u64 * 33, size, &mut out);
                    out.extend_from_slice(&payload);
                }
                black_box(out.len())
            })
        });

        for (label, chunk) in [("decode_1200B_chunks", 1200), ("decode_whole", stream.len())] {
            let chunks = split(stream.clone(), chunk);
            g.bench_function(BenchmarkId::new(label, size), |b| {
                b.iter(|| {
                    let mut dec = StreamDecoder::opener(codec, true);
                    let mut frames = 0;
                    for chunk in &chunks {
                        dec.push(chunk.clone());
                        while let Some(msg) = dec.next().unwrap() {
                            if let StreamMessage::Frame(f) = msg {
                                black_box(f.payload);
                                frames += 1;
                            }
                        }
                    }
                    dec.finish().unwrap();
                    assert_eq!(frames, count);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_messages, bench_frames);
criterion_main!(benches);
