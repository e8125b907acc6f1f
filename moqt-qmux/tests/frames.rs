//! Frame codec against @moq/qmux 0.3.3: every vector below is what its encoder wrote
//! (`tests/node/vectors.mjs`), and our encoder must write the same bytes and our decoder read
//! them back to the same frame. Plus round trips of arbitrary frames and decode errors.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use moqt_qmux::frame::{self, Frame};
use moqt_qmux::params::TransportParams;
use moqt_qmux::{Config, Connection, Dir, Role, StreamId, TransportErrorCode, Version};
use proptest::prelude::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn recommended(reset_stream_at: bool, datagrams: bool) -> TransportParams {
    TransportParams {
        max_idle_timeout: 30_000,
        initial_max_data: 1_048_576,
        initial_max_stream_data_bidi_local: 262_144,
        initial_max_stream_data_bidi_remote: 262_144,
        initial_max_stream_data_uni: 262_144,
        initial_max_streams_bidi: 100,
        initial_max_streams_uni: 100,
        max_datagram_frame_size: if datagrams { 16_382 } else { 0 },
        max_record_size: 16_382,
        reset_stream_at,
    }
}

/// (name in vectors.mjs, hex from @moq/qmux, the frame).
fn qmux_vectors() -> Vec<(&'static str, &'static str, Frame)> {
    let id = StreamId;
    vec![
        ("stream", "0e0400026869", Frame::Stream { id: id(4), offset: 0, data: b("hi"), fin: false }),
        ("stream_fin_offset", "0f028001117003627965", Frame::Stream { id: id(2), offset: 70_000, data: b("bye"), fin: true }),
        ("stream_fin_empty", "0f030500", Frame::Stream { id: id(3), offset: 5, data: Bytes::new(), fin: true }),
        ("reset_stream", "04042a43e8", Frame::ResetStream { id: id(4), code: 42, final_size: 1000 }),
        ("stop_sending", "0507412c", Frame::StopSending { id: id(7), code: 300 }),
        ("connection_close", "1c0a0003626164", Frame::ConnectionClose { code: 10, frame_type: 0, reason: b("bad") }),
        ("application_close", "1d0003627965", Frame::ApplicationClose { code: 0, reason: b("bye") }),
        ("max_data", "1080100000", Frame::MaxData(1_048_576)),
        ("max_stream_data", "110480040000", Frame::MaxStreamData { id: id(4), max: 262_144 }),
        ("max_streams_bidi", "124064", Frame::MaxStreams { dir: Dir::Bi, max: 100 }),
        ("max_streams_uni", "136710", Frame::MaxStreams { dir: Dir::Uni, max: 10_000 }),
        ("data_blocked", "1480100000", Frame::DataBlocked(1_048_576)),
        ("stream_data_blocked", "150810", Frame::StreamDataBlocked { id: id(8), limit: 16 }),
        ("streams_blocked_bidi", "164064", Frame::StreamsBlocked { dir: Dir::Bi, limit: 100 }),
        ("streams_blocked_uni", "1707", Frame::StreamsBlocked { dir: Dir::Uni, limit: 7 }),
        ("ping_request", "f48c67529ef8c7bd00", Frame::Ping(0)),
        ("ping_response", "f48c67529ef8c7be412c", Frame::Pong(300)),
        ("datagram", "3105646772616d", Frame::Datagram(b("dgram"))),
        (
            "params_recommended",
            "ff5153300d0a0d0a35010480007530040480100000050480040000060480040000070480040000080240640902406420027ffec571c59429cd0845027ffe",
            Frame::TransportParameters(recommended(false, true)),
        ),
        (
            "params_recommended_qmux02",
            "ff5153300d0a0d0a37010480007530040480100000050480040000060480040000070480040000080240640902406420027ffec571c59429cd0845027ffe1d00",
            Frame::TransportParameters(recommended(true, true)),
        ),
        (
            "params_qmux00",
            "ff5153300d0a0d0a310104800075300404801000000504800400000604800400000704800400000802406409024064c571c59429cd0845027ffe",
            Frame::TransportParameters(recommended(false, false)),
        ),
        ("params_default", "ff5153300d0a0d0a0bc571c59429cd0845027ffe", Frame::TransportParameters(TransportParams::default())),
    ]
}

fn legacy_vectors() -> Vec<(&'static str, &'static str, Frame)> {
    let id = StreamId;
    vec![
        ("legacy_stream", "08046869", Frame::Stream { id: id(4), offset: 0, data: b("hi"), fin: false }),
        ("legacy_stream_fin", "0908627965", Frame::Stream { id: id(8), offset: 0, data: b("bye"), fin: true }),
        ("legacy_reset_stream", "04042a", Frame::ResetStream { id: id(4), code: 42, final_size: 0 }),
        ("legacy_stop_sending", "050407", Frame::StopSending { id: id(4), code: 7 }),
        ("legacy_connection_close", "1c0a626164", Frame::ConnectionClose { code: 10, frame_type: 0, reason: b("bad") }),
        ("legacy_application_close", "1d01627965", Frame::ApplicationClose { code: 1, reason: b("bye") }),
    ]
}

#[test]
fn qmux_frames_match_moq_qmux() {
    for (name, hex, frame) in qmux_vectors() {
        let mut out = BytesMut::new();
        frame::encode(&frame, &mut out).unwrap();
        assert_eq!(hex::encode(&out), hex, "{name}: encoding");
        assert_eq!(frame::encoded_len(&frame), out.len(), "{name}: encoded_len");
        let mut wire = Bytes::from(hex::decode(hex).unwrap());
        assert_eq!(frame::decode(&mut wire).unwrap(), frame, "{name}: decoding");
        assert!(wire.is_empty(), "{name}: trailing bytes");
    }
}

#[test]
fn legacy_frames_match_moq_qmux() {
    for (name, hex, frame) in legacy_vectors() {
        let mut out = BytesMut::new();
        frame::encode_legacy(&frame, &mut out).unwrap();
        assert_eq!(hex::encode(&out), hex, "{name}: encoding");
        assert_eq!(frame::legacy_len(&frame), out.len(), "{name}: legacy_len");
        assert_eq!(frame::decode_legacy(Bytes::from(hex::decode(hex).unwrap())).unwrap(), frame, "{name}: decoding");
    }
    // Flow-control frames have no legacy form.
    assert!(frame::encode_legacy(&Frame::MaxData(1), &mut BytesMut::new()).is_err());
    assert!(frame::decode_legacy(Bytes::from_static(&[0x10, 0x01])).is_err());
    assert!(frame::decode_legacy(Bytes::from_static(&[0x04, 0x04, 0x2a, 0x00])).is_err(), "trailing bytes");
}

/// Frames @moq/qmux decodes but never writes: we read them the same way it does.
#[test]
fn decode_only_frames_match_moq_qmux() {
    let decode_all = |hex: &str| {
        let mut wire = Bytes::from(hex::decode(hex).unwrap());
        let mut out = Vec::new();
        while !wire.is_empty() {
            match frame::decode(&mut wire).unwrap() {
                Frame::Padding => {}
                f => out.push(f),
            }
        }
        out
    };
    let id = StreamId(4);
    assert_eq!(decode_all("24042a406405"), [Frame::ResetStreamAt { id, code: 42, final_size: 100, reliable_size: 5 }]);
    assert_eq!(decode_all("0a0402686900"), [Frame::Stream { id, offset: 0, data: b("hi"), fin: false }]);
    assert_eq!(decode_all("0c040568656c6c6f"), [Frame::Stream { id, offset: 5, data: b("hello"), fin: false }]);
    assert_eq!(decode_all("306869"), [Frame::Datagram(b("hi"))]);
    assert_eq!(
        decode_all("1080100000124064"),
        [Frame::MaxData(1_048_576), Frame::MaxStreams { dir: Dir::Bi, max: 100 }]
    );
    // RESET_STREAM_AT is never sent.
    assert!(frame::encode(
        &Frame::ResetStreamAt { id, code: 0, final_size: 1, reliable_size: 0 },
        &mut BytesMut::new()
    )
    .is_err());
}

/// The transport parameters a connection sends with the default config are byte-identical to
/// @moq/qmux's recommended ones for the version.
#[test]
fn default_config_sends_moq_qmux_parameters() {
    for (version, name) in [
        (Version::Qmux00, "params_qmux00"),
        (Version::Qmux01, "params_recommended"),
        (Version::Qmux02, "params_recommended_qmux02"),
    ] {
        let hex = qmux_vectors().into_iter().find(|v| v.0 == name).unwrap().1;
        let mut conn = Connection::new(Role::Server, version, Config::default(), Instant::now()).unwrap();
        let record = conn.poll_transmit(Instant::now()).unwrap();
        assert_eq!(hex::encode(&record), hex, "{version}");
        assert_eq!(conn.poll_transmit(Instant::now()), None);
    }
    let mut legacy = Connection::new(Role::Server, Version::WebTransport, Config::default(), Instant::now()).unwrap();
    assert_eq!(legacy.poll_transmit(Instant::now()), None, "legacy sends no parameters");
}

#[test]
fn decode_errors_have_quic_codes() {
    let code = |hex: &str| frame::decode(&mut Bytes::from(hex::decode(hex).unwrap())).unwrap_err().code;
    let enc = TransportErrorCode::FRAME_ENCODING_ERROR;
    assert_eq!(code("0e04000568"), enc, "payload shorter than LEN");
    assert_eq!(code("01"), enc, "PING is prohibited");
    assert_eq!(code("02000000"), enc, "ACK is prohibited");
    assert_eq!(code("1e"), enc, "HANDSHAKE_DONE is prohibited");
    assert_eq!(code("21"), enc, "unknown type");
    assert_eq!(code("12d000000000000001"), enc, "MAX_STREAMS above 2^60");
    assert_eq!(code("2404000105"), enc, "RESET_STREAM_AT reliable size above final size");
    assert_eq!(code("1d0005616263"), enc, "reason longer than the frame");
    assert_eq!(code("0e04ffffffffffffffff0161"), enc, "offset + length beyond 2^62");
    assert_eq!(code("ff5153300d0a0d0a030a0103"), TransportErrorCode::TRANSPORT_PARAMETER_ERROR);
    assert_eq!(code("ff5153300d0a0d0a05"), enc, "parameters longer than the frame");
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let v = 0..=moqt_qmux::varint::MAX;
    let id = (0..=moqt_qmux::varint::MAX).prop_map(StreamId);
    let data = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
    let count = 0..=moqt_qmux::MAX_STREAM_COUNT;
    let dir = prop_oneof![Just(Dir::Bi), Just(Dir::Uni)];
    prop_oneof![
        Just(Frame::Padding),
        (id.clone(), v.clone(), v.clone()).prop_map(|(id, code, final_size)| Frame::ResetStream {
            id,
            code,
            final_size
        }),
        (id.clone(), v.clone()).prop_map(|(id, code)| Frame::StopSending { id, code }),
        (id.clone(), 0..(1u64 << 40), data.clone(), any::<bool>()).prop_map(|(id, offset, data, fin)| Frame::Stream {
            id,
            offset,
            data,
            fin
        }),
        v.clone().prop_map(Frame::MaxData),
        (id.clone(), v.clone()).prop_map(|(id, max)| Frame::MaxStreamData { id, max }),
        (dir.clone(), count.clone()).prop_map(|(dir, max)| Frame::MaxStreams { dir, max }),
        v.clone().prop_map(Frame::DataBlocked),
        (id, v.clone()).prop_map(|(id, limit)| Frame::StreamDataBlocked { id, limit }),
        (dir, count.clone()).prop_map(|(dir, limit)| Frame::StreamsBlocked { dir, limit }),
        (v.clone(), v.clone(), data.clone()).prop_map(|(code, frame_type, reason)| Frame::ConnectionClose {
            code,
            frame_type,
            reason
        }),
        (v.clone(), data.clone()).prop_map(|(code, reason)| Frame::ApplicationClose { code, reason }),
        v.clone().prop_map(Frame::Ping),
        v.clone().prop_map(Frame::Pong),
        data.prop_map(Frame::Datagram),
        (v.clone(), v.clone(), v.clone(), v, count.clone(), count, 16_382..=moqt_qmux::varint::MAX, any::<bool>())
            .prop_map(|(a, b, c, d, e, f, g, h)| {
                Frame::TransportParameters(TransportParams {
                    max_idle_timeout: a,
                    initial_max_data: b,
                    initial_max_stream_data_bidi_local: c,
                    initial_max_stream_data_bidi_remote: d,
                    initial_max_stream_data_uni: a ^ b,
                    initial_max_streams_bidi: e,
                    initial_max_streams_uni: f,
                    max_datagram_frame_size: c.min(d),
                    max_record_size: g,
                    reset_stream_at: h,
                })
            }),
    ]
}

proptest! {
    /// Any sequence of frames survives encode → decode, also as one record.
    #[test]
    fn frames_round_trip(frames in proptest::collection::vec(arb_frame(), 1..8)) {
        let mut record = BytesMut::new();
        for f in &frames {
            frame::encode(f, &mut record).unwrap();
        }
        let expected: usize = frames.iter().map(frame::encoded_len).sum();
        prop_assert_eq!(record.len(), expected);
        let mut wire = record.freeze();
        for f in &frames {
            prop_assert_eq!(&frame::decode(&mut wire).unwrap(), f);
        }
        prop_assert!(wire.is_empty());
    }

    /// Decoding arbitrary bytes never panics, and whatever decodes re-encodes to a frame that
    /// decodes the same.
    #[test]
    fn arbitrary_bytes_decode_safely(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut wire = Bytes::from(raw.clone());
        while !wire.is_empty() {
            let Ok(f) = frame::decode(&mut wire) else { break };
            if matches!(f, Frame::ResetStreamAt { .. }) {
                continue;
            }
            let mut out = BytesMut::new();
            frame::encode(&f, &mut out).unwrap();
            prop_assert_eq!(frame::decode(&mut out.freeze()).unwrap(), f);
        }
        let _ = frame::decode_legacy(Bytes::from(raw));
    }
}
