//! Property tests: every message of every version survives encode→decode, and any chunking of
//! a valid stream decodes to the same messages as the whole stream.

use bytes::{Bytes, BytesMut};
use moqt_proto::coding::MAX_VARINT;
use moqt_proto::message::*;
use moqt_proto::stream::{decode_all, Frame, StreamDecoder, StreamEncoder, StreamMessage, StreamType};
use moqt_proto::{Codec, Dialect, Path, Version};
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(Version::ALL.to_vec())
}

fn codec() -> impl Strategy<Value = Codec> {
    (version(), any::<bool>()).prop_map(|(v, gomoqt)| {
        let c = Codec::new(v);
        if gomoqt && v == Version::Lite04 {
            c.with_dialect(Dialect::Gomoqt)
        } else {
            c
        }
    })
}

fn vi() -> impl Strategy<Value = u64> {
    prop_oneof![0..64u64, 0..16384u64, 0..(1u64 << 30), 0..=MAX_VARINT]
}

/// A value that fits an `opt+1` field.
fn group() -> impl Strategy<Value = u64> {
    prop_oneof![0..100u64, 0..MAX_VARINT]
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec("[a-z0-9._-]{1,6}", 0..5).prop_map(|segs| Path::new(&segs.join("/")))
}

fn name() -> impl Strategy<Value = String> {
    "[ -~]{0,12}|\\PC{0,6}"
}

fn hops(v: Version) -> BoxedStrategy<Hops> {
    if v.has_hop_list() {
        let unique = v.has_typed_announce();
        prop::collection::vec(vi(), 0..6)
            .prop_map(move |mut h| {
                if unique {
                    let mut seen = Vec::new();
                    h.retain(|x| {
                        *x == 0
                            || (!seen.contains(x) && {
                                seen.push(*x);
                                true
                            })
                    });
                }
                Hops::from_vec(h)
            })
            .boxed()
    } else {
        (0..6usize).prop_map(|n| std::iter::repeat_n(0, n).collect()).boxed()
    }
}

prop_compose! {
    fn subscribe(v: Version)(id in vi(), path in path(), track in name(), priority in any::<u8>(), ordered in any::<bool>(),
        max_latency in vi(), start in prop::option::of(group()), end in prop::option::of(group()),
        start_frame in vi(), end_frame in prop::option::of(group())) -> Subscribe {
        let mut s = Subscribe { id, path, track, priority, ordered, max_latency, start_group: start, end_group: end, start_frame: 0, end_frame: None };
        canon_params(v, &mut s.ordered, &mut s.start_group, &s.end_group, &mut s.start_frame, &mut s.end_frame, start_frame, end_frame);
        s
    }
}

prop_compose! {
    fn update(v: Version)(priority in any::<u8>(), ordered in any::<bool>(), max_latency in vi(),
        start in prop::option::of(group()), end in prop::option::of(group()),
        start_frame in vi(), end_frame in prop::option::of(group())) -> SubscribeUpdate {
        let mut s = SubscribeUpdate { priority, ordered, max_latency, start_group: start, end_group: end, start_frame: 0, end_frame: None };
        canon_params(v, &mut s.ordered, &mut s.start_group, &s.end_group, &mut s.start_frame, &mut s.end_frame, start_frame, end_frame);
        s
    }
}

/// Makes subscription parameters canonical for a version (fields it cannot carry are default).
#[allow(clippy::too_many_arguments)]
fn canon_params(
    v: Version,
    ordered: &mut bool,
    start: &mut Option<u64>,
    end: &Option<u64>,
    start_frame: &mut u64,
    end_frame: &mut Option<u64>,
    sf: u64,
    ef: Option<u64>,
) {
    if v.has_frame_bounds() {
        *ordered = false;
        *start_frame = sf;
        *end_frame = if end.is_some() { ef } else { None };
        if *start == Some(0) && sf == 0 {
            *start = None;
        }
        if start.is_none() && sf != 0 {
            *start = Some(0);
        }
    }
}

fn response(v: Version) -> BoxedStrategy<SubscribeResponse> {
    let drop = (group(), 0..1000u64, vi()).prop_map(|(start, len, error)| {
        SubscribeResponse::Drop(SubscribeDrop { start, end: start.saturating_add(len).min(MAX_VARINT - 1), error })
    });
    if v.has_subscribe_start() {
        prop_oneof![vi().prop_map(SubscribeResponse::Start), vi().prop_map(SubscribeResponse::End), drop].boxed()
    } else {
        let ok = (any::<u8>(), any::<bool>(), vi(), prop::option::of(group()), prop::option::of(group())).prop_map(
            |(priority, ordered, max_latency, start_group, end_group)| {
                SubscribeResponse::Ok(SubscribeOk { priority, ordered, max_latency, start_group, end_group })
            },
        );
        prop_oneof![ok, drop].boxed()
    }
}

fn announce_msg(v: Version) -> BoxedStrategy<StreamMessage> {
    if v.has_typed_announce() {
        let cost = (vi(), vi()).prop_map(|(warm, cold)| RouteCost { warm, cold }).boxed();
        prop_oneof![
            (path(), hops(v), cost.clone())
                .prop_map(|(suffix, hops, cost)| StreamMessage::AnnounceStart(AnnounceStart { suffix, hops, cost })),
            vi().prop_map(|id| StreamMessage::AnnounceEnd(AnnounceEnd { id })),
            (vi(), hops(v), cost).prop_map(|(id, hops, cost)| StreamMessage::AnnounceRestart(AnnounceRestart {
                id,
                hops,
                cost
            })),
        ]
        .boxed()
    } else {
        let status = if v == Version::Lite05 {
            prop::sample::select(vec![AnnounceStatus::Active, AnnounceStatus::Ended, AnnounceStatus::Restart]).boxed()
        } else {
            prop::sample::select(vec![AnnounceStatus::Active, AnnounceStatus::Ended]).boxed()
        };
        (status, path(), hops(v))
            .prop_map(|(status, suffix, hops)| StreamMessage::Announce(Announce { status, suffix, hops }))
            .boxed()
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::option::of(prop::sample::select(vec![ProbeLevel::None, ProbeLevel::Report, ProbeLevel::Increase])),
        prop::option::of("\\PC{0,20}"),
        prop::option::of(prop::sample::select(vec![Role::Both, Role::Publisher, Role::Subscriber])),
        prop::option::of(vi()),
        prop::option::of(1..=MAX_VARINT),
    )
        .prop_map(|(probe, path, role, cost, hop)| Setup { probe, path, role, cost, hop })
}

fn frames(v: Version) -> impl Strategy<Value = Vec<StreamMessage>> {
    let ts = v.has_frame_timestamps();
    prop::collection::vec((0..1u64 << 40, prop::collection::vec(any::<u8>(), 0..300)), 0..8).prop_map(move |fs| {
        fs.into_iter()
            .map(|(t, data)| StreamMessage::Frame(Frame { timestamp: ts.then_some(t), payload: Bytes::from(data) }))
            .collect()
    })
}

/// A valid sequence of messages for one direction of one stream, opener first.
fn stream_script(c: Codec) -> BoxedStrategy<(StreamDecoder, Vec<StreamMessage>)> {
    let v = c.version;
    let ty = |t| StreamMessage::Type(t);
    let mut options: Vec<BoxedStrategy<(StreamDecoder, Vec<StreamMessage>)>> = vec![
        (subscribe(v), prop::collection::vec(update(v), 0..4))
            .prop_map(move |(s, us)| {
                let mut m = vec![ty(StreamType::Subscribe), StreamMessage::Subscribe(s)];
                m.extend(us.into_iter().map(StreamMessage::SubscribeUpdate));
                (StreamDecoder::opener(c, false), m)
            })
            .boxed(),
        prop::collection::vec(response(v), 0..5)
            .prop_map(move |rs| {
                (
                    StreamDecoder::responder(c, StreamType::Subscribe),
                    rs.into_iter().map(StreamMessage::SubscribeResponse).collect(),
                )
            })
            .boxed(),
        (vi(), vi(), any::<u64>(), frames(v))
            .prop_map(move |(sub, seq, fs, frames)| {
                let frame_start = if v.has_frame_bounds() { fs % 100 } else { 0 };
                let mut m = vec![
                    ty(StreamType::Group),
                    StreamMessage::Group(GroupHeader { subscribe_id: sub, sequence: seq, frame_start }),
                ];
                m.extend(frames);
                (StreamDecoder::opener(c, true), m)
            })
            .boxed(),
        (path(), vi())
            .prop_map(move |(prefix, ex)| {
                let exclude_hop = if v.has_exclude_hop() { ex } else { 0 };
                let m = vec![
                    ty(StreamType::Announce),
                    StreamMessage::AnnounceRequest(AnnounceRequest { prefix, exclude_hop }),
                ];
                (StreamDecoder::opener(c, false), m)
            })
            .boxed(),
        (vi(), prop::collection::vec(announce_msg(v), 0..6))
            .prop_map(move |(hop, msgs)| {
                let mut m = Vec::new();
                if v.has_announce_ok() {
                    m.push(StreamMessage::AnnounceOk(AnnounceOk { hop_id: hop, active_count: msgs.len() as u64 }));
                }
                m.extend(msgs);
                (StreamDecoder::responder(c, StreamType::Announce), m)
            })
            .boxed(),
        (path(), name(), any::<u8>(), vi(), 0..50u64, prop::option::of(50..100u64))
            .prop_map(move |(path, track, priority, group, sf, ef)| {
                let (start_frame, end_frame) = if v.has_frame_bounds() { (sf, ef) } else { (0, None) };
                let f = Fetch { path, track, priority, group, start_frame, end_frame };
                (StreamDecoder::opener(c, false), vec![ty(StreamType::Fetch), StreamMessage::Fetch(f)])
            })
            .boxed(),
        frames(v).prop_map(move |f| (StreamDecoder::responder(c, StreamType::Fetch), f)).boxed(),
        prop::collection::vec((vi(), vi()), 0..5)
            .prop_map(move |ps| {
                let mut m = vec![ty(StreamType::Probe)];
                m.extend(ps.into_iter().map(|(bitrate, rtt)| {
                    StreamMessage::Probe(Probe { bitrate, rtt_ms: if v.probe_has_rtt() { rtt } else { 0 } })
                }));
                (StreamDecoder::opener(c, false), m)
            })
            .boxed(),
    ];
    if v.has_goaway() {
        options.push(
            "\\PC{0,40}"
                .prop_map(move |uri| {
                    (
                        StreamDecoder::opener(c, false),
                        vec![ty(StreamType::Goaway), StreamMessage::Goaway(Goaway { uri })],
                    )
                })
                .boxed(),
        );
    }
    if v.has_setup() {
        options.push(
            setup()
                .prop_map(move |s| {
                    (StreamDecoder::opener(c, true), vec![ty(StreamType::Setup), StreamMessage::Setup(s)])
                })
                .boxed(),
        );
        options.push(
            (path(), name())
                .prop_map(move |(path, track)| {
                    (
                        StreamDecoder::opener(c, false),
                        vec![ty(StreamType::Track), StreamMessage::Track(Track { path, track })],
                    )
                })
                .boxed(),
        );
        options.push(
            (any::<u8>(), any::<bool>(), vi(), 1..=MAX_VARINT)
                .prop_map(move |(priority, ordered, max_latency, timescale)| {
                    let ordered = ordered && v.has_ordered();
                    let info = TrackInfo { priority, ordered, max_latency, timescale };
                    (StreamDecoder::responder(c, StreamType::Track), vec![StreamMessage::TrackInfo(info)])
                })
                .boxed(),
        );
    }
    prop::strategy::Union::new(options).boxed()
}

fn encode_all(c: Codec, msgs: &[StreamMessage]) -> Bytes {
    let mut enc = StreamEncoder::new(c);
    let mut buf = BytesMut::new();
    for m in msgs {
        enc.encode(m, &mut buf);
    }
    buf.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every message of every version: encode then decode gives the value back.
    #[test]
    fn every_stream_roundtrips((decoder, msgs) in codec().prop_flat_map(stream_script)) {
        let codec = *decoder.codec();
        let bytes = encode_all(codec, &msgs);
        prop_assert_eq!(decode_all(decoder, bytes).unwrap(), msgs);
    }

    /// Any chunking of a valid stream decodes to the same messages.
    #[test]
    fn any_chunking_decodes_the_same(
        ((decoder, msgs), cuts) in (codec().prop_flat_map(stream_script), prop::collection::vec(any::<prop::sample::Index>(), 0..12))
    ) {
        let codec = *decoder.codec();
        let bytes = encode_all(codec, &msgs);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut decoder = decoder;
        let mut out = Vec::new();
        let mut prev = 0;
        for p in points.into_iter().chain(std::iter::once(bytes.len())) {
            decoder.push(bytes.slice(prev..p));
            prev = p;
            while let Some(m) = decoder.next().unwrap() {
                out.push(m);
            }
        }
        decoder.finish().unwrap();
        prop_assert_eq!(out, msgs);
    }

    /// Every single-message type through the `Message` trait, and datagrams.
    #[test]
    fn single_messages_roundtrip(c in codec(), s in setup(), hop in vi(), n in vi(), uri in "\\PC{0,30}",
        sub in 0..1000u64, grp in vi(), ts in vi(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
        fn rt<M: Message + PartialEq + std::fmt::Debug>(c: &Codec, m: &M) {
            let mut buf = BytesMut::new();
            m.encode(c, &mut buf);
            let mut rb = moqt_proto::coding::RecvBuf::new();
            rb.push(buf.freeze());
            let body = rb.take_msg(u64::MAX, false).unwrap().unwrap();
            assert_eq!(&M::decode(&body, c).unwrap(), m);
        }
        rt(&c, &s);
        rt(&c, &AnnounceOk { hop_id: hop, active_count: n });
        rt(&c, &Goaway { uri });
        let d = Datagram { subscribe_id: sub, group: grp, timestamp: ts, payload: Bytes::from(payload) };
        let mut buf = BytesMut::new();
        d.encode(&c, &mut buf);
        prop_assert_eq!(Datagram::decode(&buf.freeze(), &c).unwrap(), d);
    }
}
