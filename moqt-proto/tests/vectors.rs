//! Every hex vector of `docs/wire/vectors.md`, checked both ways: encoding the fields gives the
//! bytes, and decoding the bytes gives the fields. V1–V27 (lite-03 to lite-05) are in the `v12_*`
//! tests, L1–L20 (lite-06) in the `lite06_*` tests.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use moqt_proto::coding::{put_varint, put_zigzag, RecvBuf};
use moqt_proto::message::*;
use moqt_proto::stream::{decode_all, Frame, StreamDecoder, StreamEncoder, StreamMessage, StreamType};
use moqt_proto::{Codec, Dialect, Path, Version};
use smallvec::smallvec;

const L03: Version = Version::Lite03;
const L04: Version = Version::Lite04;
const L05: Version = Version::Lite05;
const L06: Version = Version::Lite06;

fn hx(s: &str) -> Bytes {
    Bytes::from(hex::decode(s.replace([' ', '|'], "")).expect("valid hex in test"))
}

fn draft(v: Version) -> Codec {
    Codec::new(v)
}

fn gomoqt() -> Codec {
    Codec::new(L04).with_dialect(Dialect::Gomoqt)
}

/// A `Msg{}` message: encode gives `hex`, decode of `hex` gives `value`.
fn msg<M: Message + PartialEq + Debug>(codec: Codec, value: &M, hex: &str) {
    let mut buf = BytesMut::new();
    value.encode(&codec, &mut buf);
    assert_eq!(buf.freeze(), hx(hex), "encode {value:?} for {:?}", codec.version);
    assert_eq!(&decode_msg::<M>(codec, hex), value, "decode {hex}");
}

fn decode_msg<M: Message>(codec: Codec, hex: &str) -> M {
    let mut rb = RecvBuf::new();
    rb.push(hx(hex));
    let body = rb.take_msg(u64::MAX, false).unwrap().expect("complete message");
    assert!(rb.is_empty(), "one message exactly");
    M::decode(&body, &codec).unwrap()
}

/// A whole stream direction: encode of `msgs` gives `hex`, decoding `hex` gives `msgs`.
fn stream(decoder: StreamDecoder, msgs: &[StreamMessage], hex: &str) {
    let codec = *decoder.codec();
    let mut enc = StreamEncoder::new(codec);
    let mut buf = BytesMut::new();
    for m in msgs {
        enc.encode(m, &mut buf);
    }
    assert_eq!(buf.freeze(), hx(hex), "encode {msgs:?}");
    assert_eq!(decode_all(decoder, hx(hex)).unwrap(), msgs, "decode {hex}");
}

fn responses(codec: Codec, msgs: &[SubscribeResponse], hex: &str) {
    let m: Vec<_> = msgs.iter().copied().map(StreamMessage::SubscribeResponse).collect();
    stream(StreamDecoder::responder(codec, StreamType::Subscribe), &m, hex);
}

fn p(s: &str) -> Path {
    Path::new(s)
}

#[test]
fn v12_1_varints_and_zigzag() {
    for (value, hex) in [
        (37u64, "25"),
        (63, "3f"),
        (64, "4040"),
        (300, "412c"),
        (15293, "7bbd"),
        (16383, "7fff"),
        (16384, "80004000"),
        (494878333, "9d7f3e7d"),
        (1 << 30, "c000000040000000"),
        (151288809941952652, "c2197c5eff14e88c"),
        (0xff0dad02, "c0000000ff0dad02"),
        (0xfeedbabe, "c0000000feedbabe"),
    ] {
        let mut buf = BytesMut::new();
        put_varint(&mut buf, value);
        assert_eq!(buf.freeze(), hx(hex));
        assert_eq!(moqt_proto::coding::VarInt::decode(&hx(hex)).map(|(v, n, _)| (v, n)), Some((value, hex.len() / 2)));
    }
    for (value, hex) in [(0i64, "00"), (-1, "01"), (1, "02"), (33, "4042"), (-33, "4041"), (3000, "5770")] {
        let mut buf = BytesMut::new();
        put_zigzag(&mut buf, value);
        assert_eq!(buf.freeze(), hx(hex));
        let (u, _, _) = moqt_proto::coding::VarInt::decode(&hx(hex)).unwrap();
        assert_eq!(moqt_proto::coding::zigzag_decode(u), value);
    }
}

#[test]
fn v12_2_announce_family() {
    // V1: lite-03 ANNOUNCE_PLEASE, prefix "room/" normalised to "room".
    let req = AnnounceRequest { prefix: p("room/"), exclude_hop: 0 };
    msg(draft(L03), &req, "05 04 72 6f 6f 6d");
    // V2: lite-04/05 with exclude hop 42.
    let req = AnnounceRequest { prefix: p("room"), exclude_hop: 42 };
    msg(draft(L04), &req, "06 04 72 6f 6f 6d 2a");
    msg(draft(L05), &req, "06 04 72 6f 6f 6d 2a");
    // V3: lite-04 root request.
    msg(draft(L04), &AnnounceRequest::default(), "02 00 00");
    // V4: gomoqt stream opening, prefix "/room/".
    stream(
        StreamDecoder::opener(gomoqt(), false),
        &[
            StreamMessage::Type(StreamType::Announce),
            StreamMessage::AnnounceRequest(AnnounceRequest { prefix: p("room"), exclude_hop: 0 }),
        ],
        "01 08 06 2f 72 6f 6f 6d 2f 00",
    );
    // V5: lite-03 ANNOUNCE active, hops = 2 (a bare count).
    let a = Announce { status: AnnounceStatus::Active, suffix: p("alice"), hops: smallvec![0, 0] };
    msg(draft(L03), &a, "08 01 05 61 6c 69 63 65 02");
    // V6: lite-04/05 hop ids [7, 300].
    let a = Announce { status: AnnounceStatus::Active, suffix: p("alice"), hops: smallvec![7, 300] };
    msg(draft(L04), &a, "0b 01 05 61 6c 69 63 65 02 07 41 2c");
    msg(draft(L05), &a, "0b 01 05 61 6c 69 63 65 02 07 41 2c");
    // V7: ended, every version.
    let ended = Announce { status: AnnounceStatus::Ended, suffix: p("alice"), hops: smallvec![] };
    for v in [L03, L04, L05] {
        msg(draft(v), &ended, "08 00 05 61 6c 69 63 65 00");
    }
    // V8: gomoqt ANNOUNCE active with an empty hop list.
    let a = Announce { status: AnnounceStatus::Active, suffix: p("alice"), hops: smallvec![] };
    msg(gomoqt(), &a, "08 01 05 61 6c 69 63 65 00");
    // V9: lite-05 ANNOUNCE_OK.
    msg(draft(L05), &AnnounceOk { hop_id: 1000, active_count: 2 }, "03 43 e8 02");
    // V10 (the August 2026 lite-06-wip form, one cost varint) is not implemented; lite-06 is below.
}

#[test]
fn v12_3_subscribe_family() {
    // V11: identical bytes on lite-03, 04 and 05.
    let sub = Subscribe {
        id: 1,
        path: p("room/alice"),
        track: "video".into(),
        priority: 0x80,
        ordered: false,
        max_latency: 500,
        start_group: None,
        end_group: Some(99),
        ..Default::default()
    };
    let v11 = "19 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 41 f4 00 40 64";
    for v in [L03, L04, L05] {
        msg(draft(v), &sub, v11);
    }
    // V12: "/live/cam/" normalised, explicit start group 0.
    let sub = Subscribe {
        id: 0,
        path: p("/live/cam/"),
        track: "audio".into(),
        priority: 2,
        ordered: true,
        max_latency: 0,
        start_group: Some(0),
        end_group: None,
        ..Default::default()
    };
    msg(draft(L04), &sub, "15 00 08 6c 69 76 65 2f 63 61 6d 05 61 75 64 69 6f 02 01 00 01 00");
    // V13: SUBSCRIBE_UPDATE.
    let upd =
        SubscribeUpdate { priority: 200, ordered: true, max_latency: 2000, start_group: Some(0), ..Default::default() };
    for v in [L03, L04, L05] {
        msg(draft(v), &upd, "06 c8 01 47 d0 01 00");
    }
    // V14: lite-03/04 SUBSCRIBE_OK as moq-net sends it.
    let ok = SubscribeOk { priority: 0x80, ..Default::default() };
    responses(draft(L03), &[SubscribeResponse::Ok(ok)], "00 05 80 00 00 00 00");
    responses(draft(L04), &[SubscribeResponse::Ok(ok)], "00 05 80 00 00 00 00");
    // V15: gomoqt's lazy SUBSCRIBE_OK when its first group (1) opens.
    let ok = SubscribeOk { start_group: Some(1), ..Default::default() };
    responses(gomoqt(), &[SubscribeResponse::Ok(ok)], "00 05 00 00 00 02 00");
    // V16: SUBSCRIBE_DROP for groups 5..=7.
    let drop = SubscribeResponse::Drop(SubscribeDrop { start: 5, end: 7, error: 0 });
    responses(draft(L03), &[drop], "01 03 05 07 00");
    responses(draft(L04), &[drop], "01 03 05 07 00");
    responses(gomoqt(), &[drop], "01 03 06 08 00");
    responses(draft(L05), &[drop], "02 03 05 07 00");
    // V17: lite-05 START and END.
    responses(draft(L05), &[SubscribeResponse::Start(1234), SubscribeResponse::End(1235)], "00 02 44 d2 01 02 44 d3");
}

#[test]
fn v12_4_track_fetch_probe_goaway_setup() {
    // V18: TRACK.
    let track = Track { path: p("room/alice"), track: "video".into() };
    msg(draft(L05), &track, "11 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f");
    // V19: TRACK_INFO (the older zero-priority vector, the moq-net default, and a second case).
    msg(draft(L05), &TrackInfo { priority: 0, ..TrackInfo::default() }, "06 00 00 53 88 43 e8");
    msg(draft(L05), &TrackInfo::default(), "06 7f 00 53 88 43 e8");
    let info = TrackInfo { priority: 1, ordered: true, max_latency: 10_000, timescale: 90_000 };
    msg(draft(L05), &info, "08 01 01 67 10 80 01 5f 90");
    // V20: FETCH, identical on lite-03/04/05.
    let fetch = Fetch { path: p("room/alice"), track: "video".into(), priority: 10, group: 64, ..Default::default() };
    for v in [L03, L04, L05] {
        msg(draft(v), &fetch, "14 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 0a 40 40");
    }
    // Fetch responses: frames only.
    let frame = |ts: Option<u64>, data: &'static [u8]| {
        StreamMessage::Frame(Frame { timestamp: ts, payload: Bytes::from_static(data) })
    };
    stream(
        StreamDecoder::responder(draft(L04), StreamType::Fetch),
        &[frame(None, b"ab"), frame(None, b"c")],
        "02 61 62 01 63",
    );
    stream(
        StreamDecoder::responder(draft(L05), StreamType::Fetch),
        &[frame(Some(90_000), b"ab"), frame(Some(93_000), b"c")],
        "80 02 bf 20 02 61 62 57 70 01 63",
    );
    // V21: PROBE.
    msg(draft(L03), &Probe { bitrate: 1_000_000, rtt_ms: 0 }, "04 80 0f 42 40");
    msg(draft(L04), &Probe { bitrate: 1_000_000, rtt_ms: 25 }, "05 80 0f 42 40 19");
    msg(draft(L05), &Probe { bitrate: 1_000_000, rtt_ms: 25 }, "05 80 0f 42 40 19");
    msg(draft(L04), &Probe::default(), "02 00 00");
    // V22: GOAWAY.
    for v in [L04, L05, L06] {
        msg(draft(v), &Goaway::default(), "01 00");
        msg(
            draft(v),
            &Goaway { uri: "https://b.example/".into() },
            "13 12 68 74 74 70 73 3a 2f 2f 62 2e 65 78 61 6d 70 6c 65 2f",
        );
    }
    // V23: lite-05 SETUP.
    msg(draft(L05), &Setup::default(), "01 00");
    msg(draft(L05), &Setup { probe: Some(ProbeLevel::Report), ..Default::default() }, "04 01 01 01 01");
    msg(draft(L05), &Setup { role: Some(Role::Subscriber), ..Default::default() }, "04 01 03 01 02");
    msg(
        draft(L05),
        &Setup { path: Some("/anon/room?jwt=x".into()), ..Default::default() },
        "13 01 02 10 2f 61 6e 6f 6e 2f 72 6f 6f 6d 3f 6a 77 74 3d 78",
    );
    msg(draft(L05), &Setup { hop: Some(0x1234), ..Default::default() }, "05 01 05 02 52 34");
}

#[test]
fn v12_5_data_plane() {
    // V24: GROUP header.
    msg(draft(L04), &GroupHeader { subscribe_id: 1, sequence: 16384, frame_start: 0 }, "05 01 80 00 40 00");
    let frame = |ts: Option<u64>, data: &'static [u8]| {
        StreamMessage::Frame(Frame { timestamp: ts, payload: Bytes::from_static(data) })
    };
    let group = |fs| StreamMessage::Group(GroupHeader { subscribe_id: 1, sequence: 0, frame_start: fs });
    let ty = StreamMessage::Type(StreamType::Group);
    // V25: complete lite-04 group stream.
    stream(
        StreamDecoder::opener(draft(L04), true),
        &[ty.clone(), group(0), frame(None, b"hello"), frame(None, b"")],
        "00 | 02 01 00 | 05 68 65 6c 6c 6f | 00",
    );
    // V26: complete lite-05 group stream with zigzag timestamp deltas.
    stream(
        StreamDecoder::opener(draft(L05), true),
        &[ty.clone(), group(0), frame(Some(1000), b"hello"), frame(Some(1033), b""), frame(Some(1020), b"x")],
        "00 | 02 01 00 | 47 d0 05 68 65 6c 6c 6f | 40 42 00 | 19 01 78",
    );
    // V27: DATAGRAM.
    for (d, hex) in [
        (
            Datagram { subscribe_id: 7, group: 42, timestamp: 1000, payload: Bytes::from_static(b"hello") },
            "07 2a 43 e8 68 65 6c 6c 6f",
        ),
        (Datagram { subscribe_id: 1, group: 2, timestamp: 3, payload: Bytes::from_static(b"hi") }, "01 02 03 68 69"),
    ] {
        let mut buf = BytesMut::new();
        d.encode(&draft(L05), &mut buf);
        assert_eq!(buf.freeze(), hx(hex));
        assert_eq!(Datagram::decode(&hx(hex), &draft(L05)).unwrap(), d);
    }
}

#[test]
fn lite06_setup() {
    let c = draft(L06);
    msg(c, &Setup::default(), "01 00");
    msg(c, &Setup { probe: Some(ProbeLevel::Report), ..Default::default() }, "04 01 01 01 01");
    msg(
        c,
        &Setup { path: Some("/room?jwt=x".into()), ..Default::default() },
        "0e 01 02 0b 2f 72 6f 6f 6d 3f 6a 77 74 3d 78",
    );
    msg(c, &Setup { path: Some(String::new()), ..Default::default() }, "03 01 02 00");
    msg(c, &Setup { role: Some(Role::Subscriber), ..Default::default() }, "04 01 03 01 02");
    msg(c, &Setup { role: Some(Role::Publisher), ..Default::default() }, "04 01 03 01 01");
    msg(c, &Setup { cost: Some(0), ..Default::default() }, "04 01 04 01 00");
    msg(c, &Setup { cost: Some(100), ..Default::default() }, "05 01 04 02 40 64");
    msg(c, &Setup { hop: Some(42), ..Default::default() }, "04 01 05 01 2a");
    msg(c, &Setup { hop: Some(0x1234), ..Default::default() }, "05 01 05 02 52 34");
    // Two parameters: we write id order; the other order (as moq-net may send) decodes the same.
    let both = Setup { probe: Some(ProbeLevel::Report), hop: Some(42), ..Default::default() };
    msg(c, &both, "07 02 01 01 01 05 01 2a");
    assert_eq!(decode_msg::<Setup>(c, "07 02 05 01 2a 01 01 01"), both);
}

#[test]
fn lite06_announce() {
    let c = draft(L06);
    // L1: prefix only; "/room/" normalises.
    msg(c, &AnnounceRequest { prefix: p("/room/"), exclude_hop: 0 }, "05 04 72 6f 6f 6d");
    msg(c, &AnnounceRequest::default(), "01 00");
    msg(draft(L05), &AnnounceRequest { prefix: p("room"), exclude_hop: 42 }, "06 04 72 6f 6f 6d 2a");
    // L2: ANNOUNCE_OK.
    msg(c, &AnnounceOk { hop_id: 1000, active_count: 2 }, "03 43 e8 02");
    msg(c, &AnnounceOk { hop_id: 1, active_count: 0 }, "02 01 00");
    // L3..L7 on one announce stream, responder side.
    let max = RouteCost { warm: (1 << 62) - 1, cold: (1 << 62) - 1 };
    let msgs = [
        StreamMessage::AnnounceOk(AnnounceOk { hop_id: 1, active_count: 0 }),
        StreamMessage::AnnounceStart(AnnounceStart {
            suffix: p("alice"),
            hops: smallvec![7, 300],
            cost: RouteCost { warm: 5, cold: 9 },
        }),
        StreamMessage::AnnounceStart(AnnounceStart {
            suffix: p("room/cam"),
            hops: smallvec![],
            cost: RouteCost::default(),
        }),
        StreamMessage::AnnounceStart(AnnounceStart { suffix: p("a"), hops: smallvec![1], cost: max }),
        StreamMessage::AnnounceEnd(AnnounceEnd { id: 3 }),
        StreamMessage::AnnounceEnd(AnnounceEnd { id: 300 }),
        StreamMessage::AnnounceRestart(AnnounceRestart { id: 3, hops: smallvec![7, 300], cost: RouteCost::default() }),
        StreamMessage::AnnounceRestart(AnnounceRestart {
            id: 0,
            hops: smallvec![9],
            cost: RouteCost { warm: 2, cold: 3 },
        }),
    ];
    let hex = "02 01 00 \
        00 0c 05 61 6c 69 63 65 02 07 41 2c 05 09 \
        00 0c 08 72 6f 6f 6d 2f 63 61 6d 00 00 00 \
        00 14 01 61 01 01 ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff \
        01 01 03 \
        01 02 41 2c \
        02 07 03 02 07 41 2c 00 00 \
        02 05 00 01 09 02 03";
    stream(StreamDecoder::responder(c, StreamType::Announce), &msgs, hex);
}

#[test]
fn lite06_subscribe() {
    let c = draft(L06);
    // L8.
    let sub = Subscribe {
        id: 1,
        path: p("room/alice"),
        track: "video".into(),
        priority: 0x80,
        max_latency: 500,
        end_group: Some(99),
        ..Default::default()
    };
    msg(c, &sub, "1a 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 41 f4 00 40 64 00 00");
    msg(draft(L05), &sub, "19 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 41 f4 00 40 64");
    // L9: start "group 0" is no floor on lite-06 and `opt+1` 1 on lite-05.
    let sub = Subscribe { id: 0, path: p("/live/cam/"), track: "audio".into(), priority: 2, ..Default::default() };
    msg(c, &sub, "16 00 08 6c 69 76 65 2f 63 61 6d 05 61 75 64 69 6f 02 00 00 00 00 00");
    let sub05 = Subscribe { start_group: Some(0), ..sub };
    msg(draft(L05), &sub05, "15 00 08 6c 69 76 65 2f 63 61 6d 05 61 75 64 69 6f 02 00 00 01 00");
    // L10: frame bounds.
    let sub = Subscribe {
        id: 5,
        path: p("room"),
        track: "video".into(),
        priority: 3,
        max_latency: 250,
        start_group: Some(7),
        end_group: Some(9),
        start_frame: 4,
        end_frame: Some(2),
        ..Default::default()
    };
    msg(c, &sub, "13 05 04 72 6f 6f 6d 05 76 69 64 65 6f 03 40 fa 07 0a 04 03");
    let sub = Subscribe {
        id: 6,
        path: p("room"),
        track: "catalog".into(),
        priority: 0,
        max_latency: 10_000,
        start_group: Some(0),
        start_frame: 3,
        ..Default::default()
    };
    msg(c, &sub, "15 06 04 72 6f 6f 6d 07 63 61 74 61 6c 6f 67 00 67 10 00 00 03 00");
    // L11: SUBSCRIBE_UPDATE.
    let upd = SubscribeUpdate { priority: 200, max_latency: 2000, start_group: Some(5), ..Default::default() };
    msg(c, &upd, "07 c8 47 d0 05 00 00 00");
    msg(draft(L05), &upd, "06 c8 00 47 d0 06 00");
    let upd = SubscribeUpdate { priority: 1, end_group: Some(20), end_frame: Some(0), ..Default::default() };
    msg(c, &upd, "06 01 00 00 15 00 01");
    // L12: responses, same bytes as lite-05.
    responses(
        c,
        &[
            SubscribeResponse::Start(1234),
            SubscribeResponse::End(1235),
            SubscribeResponse::End(0),
            SubscribeResponse::Drop(SubscribeDrop { start: 5, end: 7, error: 0 }),
        ],
        "00 02 44 d2 01 02 44 d3 01 01 00 02 03 05 07 00",
    );
}

#[test]
fn lite06_track_fetch_probe_group() {
    let c = draft(L06);
    // L13.
    msg(
        c,
        &Track { path: p("room/alice"), track: "video".into() },
        "11 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f",
    );
    // L14.
    msg(
        c,
        &TrackInfo { priority: 1, ordered: false, max_latency: 10_000, timescale: 90_000 },
        "07 01 67 10 80 01 5f 90",
    );
    msg(c, &TrackInfo::default(), "05 7f 53 88 43 e8");
    msg(
        draft(L05),
        &TrackInfo { priority: 1, ordered: false, max_latency: 10_000, timescale: 90_000 },
        "08 01 00 67 10 80 01 5f 90",
    );
    // L15.
    let fetch = Fetch { path: p("room/alice"), track: "video".into(), priority: 10, group: 64, ..Default::default() };
    msg(c, &fetch, "16 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 0a 40 40 00 00");
    let fetch =
        Fetch { path: p("room"), track: "video".into(), priority: 3, group: 7, start_frame: 2, end_frame: Some(6) };
    msg(c, &fetch, "0f 04 72 6f 6f 6d 05 76 69 64 65 6f 03 07 02 07");
    // L16 (L17, GOAWAY, is checked with V22 above).
    msg(c, &Probe { bitrate: 1_000_000, rtt_ms: 25 }, "05 80 0f 42 40 19");
    msg(c, &Probe { bitrate: 0, rtt_ms: 40 }, "02 00 28");
    // L18.
    msg(c, &GroupHeader { subscribe_id: 1, sequence: 16384, frame_start: 0 }, "06 01 80 00 40 00 00");
    msg(c, &GroupHeader { subscribe_id: 1, sequence: 7, frame_start: 4 }, "03 01 07 04");
    // L19: a complete group stream, and the same group resumed at frame 2.
    let frame = |ts: u64, data: &'static [u8]| {
        StreamMessage::Frame(Frame { timestamp: Some(ts), payload: Bytes::from_static(data) })
    };
    let ty = StreamMessage::Type(StreamType::Group);
    let group = |fs| StreamMessage::Group(GroupHeader { subscribe_id: 1, sequence: 0, frame_start: fs });
    stream(
        StreamDecoder::opener(c, true),
        &[ty.clone(), group(0), frame(1000, b"hello"), frame(1033, b""), frame(1020, b"x")],
        "00 | 03 01 00 00 | 47 d0 05 68 65 6c 6c 6f | 40 42 00 | 19 01 78",
    );
    stream(StreamDecoder::opener(c, true), &[ty, group(2), frame(1020, b"x")], "00 | 03 01 00 02 | 47 f8 01 78");
    // L20.
    let d = Datagram { subscribe_id: 7, group: 42, timestamp: 1000, payload: Bytes::from_static(b"hello") };
    assert_eq!(Datagram::decode(&hx("07 2a 43 e8 68 65 6c 6c 6f"), &c).unwrap(), d);
}

#[test]
fn lite06_decoder_checks() {
    let c = draft(L06);
    // end_frame without end_group is rejected.
    let mut rb = RecvBuf::new();
    rb.push(hx("0b 00 01 61 01 62 00 00 00 00 00 01"));
    let body = rb.take_msg(1024, false).unwrap().unwrap();
    assert!(Subscribe::decode(&body, &c).is_err());
    // A lite-05-shaped SUBSCRIBE fails to decode as lite-06.
    let v05 = "19 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 41 f4 00 40 64";
    let mut rb = RecvBuf::new();
    rb.push(hx(v05));
    let body = rb.take_msg(1024, false).unwrap().unwrap();
    assert!(Subscribe::decode(&body, &c).is_err());
    // An unknown announce type is skipped by length.
    let msgs =
        decode_all(StreamDecoder::responder(c, StreamType::Announce), hx("02 01 00 07 02 aa bb 01 01 00")).unwrap();
    assert_eq!(
        msgs,
        vec![
            StreamMessage::AnnounceOk(AnnounceOk { hop_id: 1, active_count: 0 }),
            StreamMessage::AnnounceUnknown(7),
            StreamMessage::AnnounceEnd(AnnounceEnd { id: 0 }),
        ]
    );
    // A repeated non-zero hop is a decode error; repeated zeros are fine.
    assert!(decode_all(StreamDecoder::responder(c, StreamType::Announce), hx("02 01 00 00 06 01 61 02 07 07 00 00"))
        .is_err());
    assert!(decode_all(StreamDecoder::responder(c, StreamType::Announce), hx("02 01 00 00 07 01 61 02 00 00 00 00"))
        .is_ok());
    // TRACK_INFO with timescale 0 is rejected.
    let mut rb = RecvBuf::new();
    rb.push(hx("03 01 00 00"));
    let body = rb.take_msg(1024, false).unwrap().unwrap();
    assert!(TrackInfo::decode(&body, &c).is_err());
}
