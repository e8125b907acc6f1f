//! Bad input from the peer ends the connection with CONNECTION_CLOSE carrying the QUIC error
//! code the drafts give, and nothing else happens afterwards.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use moqt_qmux::frame::{self, Frame};
use moqt_qmux::params::TransportParams;
use moqt_qmux::{
    Config, Connection, ConnectionError, Dir, Event, Framing, Role, StreamId, TransportErrorCode as Code, Version,
};

fn record(frames: &[Frame]) -> Bytes {
    let mut out = BytesMut::new();
    for f in frames {
        frame::encode(f, &mut out).unwrap();
    }
    out.freeze()
}

/// What a client with the default config sends.
fn client_params() -> Frame {
    let c = Config::default();
    Frame::TransportParameters(TransportParams {
        max_idle_timeout: 30_000,
        initial_max_data: c.max_data,
        initial_max_stream_data_bidi_local: c.max_stream_data_bidi_local,
        initial_max_stream_data_bidi_remote: c.max_stream_data_bidi_remote,
        initial_max_stream_data_uni: c.max_stream_data_uni,
        initial_max_streams_bidi: c.max_streams_bidi,
        initial_max_streams_uni: c.max_streams_uni,
        max_datagram_frame_size: 16_382,
        max_record_size: 16_382,
        reset_stream_at: false,
    })
}

/// A server on `version` that has the client's parameters (for QMux versions).
fn server(version: Version, config: Config) -> Connection {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, version, config, now).unwrap();
    if version.is_qmux() {
        conn.handle_record(now, record(&[client_params()]));
    }
    while conn.poll_event().is_some() {}
    while conn.poll_transmit(now).is_some() {}
    conn
}

/// Feeds `input` (one record) and checks the close: our event, the CONNECTION_CLOSE on the
/// wire, and silence afterwards.
fn expect_close(mut conn: Connection, input: Bytes, code: Code) {
    let now = Instant::now();
    conn.handle_record(now, input);
    let mut events = Vec::new();
    while let Some(e) = conn.poll_event() {
        events.push(e);
    }
    let Some(Event::Closed(ConnectionError::LocalTransport(err))) = events.last() else {
        panic!("expected a local transport error, got {events:?}");
    };
    assert_eq!(err.code, code, "{err}");
    let mut wire = conn.poll_transmit(now).expect("a CONNECTION_CLOSE record");
    let close = if conn.version().is_qmux() {
        // A connection that had not sent its parameters yet sends them first.
        let mut f = frame::decode(&mut wire).unwrap();
        if matches!(f, Frame::TransportParameters(_)) {
            if wire.is_empty() {
                // qmux-00: one frame per message.
                wire = conn.poll_transmit(now).expect("the close after the parameters");
            }
            f = frame::decode(&mut wire).unwrap();
        }
        assert!(wire.is_empty());
        f
    } else {
        frame::decode_legacy(wire).unwrap()
    };
    let Frame::ConnectionClose { code: sent, .. } = close else { panic!("sent {close:?}") };
    assert_eq!(sent, code.0);
    assert!(conn.is_drained());
    assert_eq!(conn.poll_transmit(now), None);
    conn.handle_record(now, record(&[Frame::MaxData(1)]));
    assert_eq!(conn.poll_event(), None, "input after the close is ignored");
}

fn uni(index: u64) -> StreamId {
    StreamId::new(Role::Client, Dir::Uni, index)
}

fn data(id: StreamId, offset: u64, len: usize, fin: bool) -> Frame {
    Frame::Stream { id, offset, data: Bytes::from(vec![0u8; len]), fin }
}

#[test]
fn garbage_and_oversized_records() {
    for version in [Version::Qmux00, Version::Qmux01, Version::Qmux02] {
        let c = || server(version, Config::default());
        expect_close(c(), Bytes::from_static(&[0x21, 0xff, 0x00]), Code::FRAME_ENCODING_ERROR);
        expect_close(c(), Bytes::from_static(&[0x0e, 0x02, 0x00, 0x05, 0x61]), Code::FRAME_ENCODING_ERROR);
        expect_close(c(), Bytes::from_static(&[0x01]), Code::FRAME_ENCODING_ERROR);
        let limit = if version.has_records() { 16_382 } else { 16_384 };
        // A record one byte over the limit, even of PADDING, is refused before decoding.
        expect_close(c(), Bytes::from(vec![0u8; limit + 1]), Code::FRAME_ENCODING_ERROR);
        let mut ok = c();
        ok.handle_record(Instant::now(), Bytes::from(vec![0u8; limit]));
        assert!(!ok.is_closed(), "{version}: a record at the limit is fine");
    }
    let legacy = || server(Version::WebTransport, Config::default());
    expect_close(legacy(), Bytes::from_static(&[0x10, 0x01]), Code::FRAME_ENCODING_ERROR);
    expect_close(legacy(), Bytes::new(), Code::FRAME_ENCODING_ERROR);
    expect_close(legacy(), Bytes::from(vec![0x08; 16_385]), Code::FRAME_ENCODING_ERROR);
}

#[test]
fn byte_stream_oversized_record() {
    let now = Instant::now();
    let config = Config { framing: Framing::ByteStream, ..Config::default() };
    let mut conn = Connection::new(Role::Server, Version::Qmux01, config, now).unwrap();
    conn.handle_bytes(now, Bytes::from_static(&[0x80, 0x00, 0x40, 0x00]));
    assert!(matches!(
        conn.poll_event(),
        Some(Event::Closed(ConnectionError::LocalTransport(e))) if e.code == Code::FRAME_ENCODING_ERROR
    ));
    // Records need qmux-01+ on a byte stream.
    let config = Config { framing: Framing::ByteStream, ..Config::default() };
    assert!(Connection::new(Role::Server, Version::Qmux00, config, now).is_err());
}

#[test]
fn stream_state_and_limits() {
    for version in Version::ALL {
        let c = || server(version, Config::default());
        let own_uni = StreamId::new(Role::Server, Dir::Uni, 0);
        let own_bi = StreamId::new(Role::Server, Dir::Bi, 0);
        let rec = |f: Frame| {
            if version.is_qmux() {
                record(&[f])
            } else {
                let mut out = BytesMut::new();
                frame::encode_legacy(&f, &mut out).unwrap();
                out.freeze()
            }
        };
        // Data on a stream we never opened, and on our own uni (send-only for us).
        expect_close(c(), rec(data(own_bi, 0, 1, false)), Code::STREAM_STATE_ERROR);
        let mut opened = c();
        opened.open(Dir::Uni).unwrap();
        expect_close(opened, rec(data(own_uni, 0, 1, false)), Code::STREAM_STATE_ERROR);
        // STOP_SENDING on the peer's uni (receive-only for us).
        expect_close(c(), rec(Frame::StopSending { id: uni(0), code: 0 }), Code::STREAM_STATE_ERROR);
        // RESET_STREAM on our uni.
        let mut opened = c();
        opened.open(Dir::Uni).unwrap();
        expect_close(opened, rec(Frame::ResetStream { id: own_uni, code: 0, final_size: 0 }), Code::STREAM_STATE_ERROR);
        // The 101st uni stream when 100 are allowed (legacy: twice that, see receive_paused).
        let cap = if version.is_qmux() { 100 } else { 200 };
        expect_close(c(), rec(data(uni(cap), 0, 1, false)), Code::STREAM_LIMIT_ERROR);
        let mut fine = c();
        fine.handle_record(Instant::now(), rec(data(uni(cap - 1), 0, 1, false)));
        let opened = std::iter::from_fn(|| fine.poll_event()).filter(|e| matches!(e, Event::StreamOpened(_))).count();
        assert_eq!(opened as u64, cap, "{version}: the last allowed stream opens all below it");
        assert_eq!(fine.receive_paused(), !version.is_qmux());
    }
    let c = || server(Version::Qmux01, Config::default());
    let own_uni = StreamId::new(Role::Server, Dir::Uni, 0);
    expect_close(c(), record(&[Frame::MaxStreamData { id: uni(0), max: 9 }]), Code::STREAM_STATE_ERROR);
    expect_close(c(), record(&[Frame::MaxStreamData { id: own_uni, max: 9 }]), Code::STREAM_STATE_ERROR);
}

#[test]
fn flow_control_violations() {
    let config = Config { max_data: 64 << 10, max_stream_data_uni: 16 << 10, ..Config::default() };
    for version in Version::ALL {
        let c = || server(version, config.clone());
        let rec = |frames: Vec<Frame>| -> Vec<Bytes> {
            frames
                .into_iter()
                .map(|f| {
                    let mut out = BytesMut::new();
                    if version.is_qmux() {
                        frame::encode(&f, &mut out).unwrap();
                    } else {
                        frame::encode_legacy(&f, &mut out).unwrap();
                    }
                    out.freeze()
                })
                .collect()
        };
        if !version.is_qmux() {
            // Legacy: no stream windows; twice max_data unread is the limit.
            let mut conn = c();
            let frames: Vec<Frame> = (0..16).map(|i| data(uni(i), 0, 8 << 10, false)).collect();
            for (i, r) in rec(frames).into_iter().enumerate() {
                conn.handle_record(Instant::now(), r);
                assert_eq!(conn.receive_paused(), i >= 7, "paused from 64 KiB unread on");
            }
            assert!(!conn.is_closed());
            expect_close(conn, rec(vec![data(uni(16), 0, 1, false)]).remove(0), Code::FLOW_CONTROL_ERROR);
            continue;
        }
        // One byte over a stream window.
        let mut conn = c();
        let mut inputs = rec(vec![data(uni(0), 0, 16_000, false), data(uni(0), 16_000, 385, false)]);
        let last = inputs.pop().unwrap();
        for r in inputs {
            conn.handle_record(Instant::now(), r);
        }
        assert!(!conn.is_closed(), "{version}: exactly the window is fine");
        expect_close(conn, last, Code::FLOW_CONTROL_ERROR);
        // One byte over the connection window, spread over streams.
        let mut conn = c();
        let frames: Vec<Frame> = (0..8).map(|i| data(uni(i / 2), (i % 2) * 8_192, 8 << 10, false)).collect();
        for r in rec(frames) {
            conn.handle_record(Instant::now(), r);
        }
        assert!(!conn.is_closed(), "{version}");
        expect_close(conn, rec(vec![data(uni(4), 0, 1, false)]).remove(0), Code::FLOW_CONTROL_ERROR);
        // Data after FIN.
        let mut conn = c();
        conn.handle_record(Instant::now(), rec(vec![data(uni(0), 0, 3, true)]).remove(0));
        expect_close(conn, rec(vec![data(uni(0), 3, 1, false)]).remove(0), Code::FINAL_SIZE_ERROR);
    }
    // A RESET_STREAM whose final size exceeds the stream window.
    let c = || server(Version::Qmux01, config.clone());
    expect_close(
        c(),
        record(&[Frame::ResetStream { id: uni(0), code: 0, final_size: 20_000 }]),
        Code::FLOW_CONTROL_ERROR,
    );
}

#[test]
fn transport_parameter_rules() {
    let now = Instant::now();
    let fresh = |v| Connection::new(Role::Server, v, Config::default(), now).unwrap();
    // qmux-02: the parameters must come first, and only once (all versions).
    expect_close(fresh(Version::Qmux02), record(&[Frame::MaxData(5)]), Code::PROTOCOL_VIOLATION);
    for v in [Version::Qmux00, Version::Qmux01, Version::Qmux02] {
        expect_close(fresh(v), record(&[client_params(), client_params()]), Code::PROTOCOL_VIOLATION);
    }
    let mut lenient = fresh(Version::Qmux01);
    lenient.handle_record(now, record(&[Frame::MaxData(5), client_params()]));
    assert!(!lenient.is_closed(), "qmux-01 takes other frames before the parameters");
    // max_record_size below 16382.
    let small = Frame::TransportParameters(TransportParams { max_record_size: 16_381, ..TransportParams::default() });
    expect_close(fresh(Version::Qmux01), record(std::slice::from_ref(&small)), Code::TRANSPORT_PARAMETER_ERROR);
    let mut q00 = fresh(Version::Qmux00);
    q00.handle_record(now, record(&[small]));
    assert!(!q00.is_closed(), "qmux-00 has no max_record_size rule");
    // A malformed parameter list.
    let bad = Bytes::from(hex::decode("ff5153300d0a0d0a030a0103").unwrap());
    expect_close(fresh(Version::Qmux01), bad, Code::TRANSPORT_PARAMETER_ERROR);
}

#[test]
fn datagram_rules() {
    let dgram = |n: usize| record(&[Frame::Datagram(Bytes::from(vec![1u8; n]))]);
    expect_close(server(Version::Qmux00, Config::default()), dgram(1), Code::PROTOCOL_VIOLATION);
    let no = Config { max_datagram_frame_size: 0, ..Config::default() };
    expect_close(server(Version::Qmux01, no), dgram(1), Code::PROTOCOL_VIOLATION);
    let small = Config { max_datagram_frame_size: 100, ..Config::default() };
    // 0x31 + 2-byte length + 97 bytes = 100: fits; 98 bytes does not.
    let mut ok = server(Version::Qmux01, small.clone());
    ok.handle_record(Instant::now(), dgram(97));
    assert_eq!(ok.recv_datagram().unwrap().len(), 97);
    expect_close(server(Version::Qmux01, small.clone()), dgram(98), Code::PROTOCOL_VIOLATION);
    // The no-length form (0x30) is one byte shorter on the wire, and measured as such.
    let mut ok = server(Version::Qmux01, small);
    let mut raw = vec![0x30];
    raw.extend_from_slice(&[2u8; 99]);
    ok.handle_record(Instant::now(), Bytes::from(raw));
    assert_eq!(ok.recv_datagram().unwrap().len(), 99);
}

#[test]
fn qmux02_rules() {
    // RESET_STREAM_AT: accepted on qmux-02 (we advertise reset_stream_at), refused elsewhere.
    let at = Bytes::from(hex::decode("2402070300").unwrap()); // id 2 (client uni 0), code 7, final 3, reliable 0
    expect_close(server(Version::Qmux01, Config::default()), at.clone(), Code::PROTOCOL_VIOLATION);
    let mut conn = server(Version::Qmux02, Config::default());
    conn.handle_record(Instant::now(), at);
    let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert_eq!(events, [Event::StreamOpened(uni(0)), Event::Reset { id: uni(0), code: 7 }]);
    // QX_PING sequence numbers must increase, responses must echo a sent request.
    let c = || server(Version::Qmux02, Config::default());
    expect_close(c(), record(&[Frame::Ping(5), Frame::Ping(5)]), Code::PROTOCOL_VIOLATION);
    expect_close(c(), record(&[Frame::Pong(0)]), Code::PROTOCOL_VIOLATION);
    let mut lenient = server(Version::Qmux01, Config::default());
    lenient.handle_record(Instant::now(), record(&[Frame::Ping(5), Frame::Ping(5), Frame::Pong(3)]));
    assert!(!lenient.is_closed());
    // The two pings get one response, with the largest sequence number.
    let pong = lenient.poll_transmit(Instant::now()).unwrap();
    assert_eq!(frame::decode(&mut pong.clone()).unwrap(), Frame::Pong(5));
}

#[test]
fn peer_close_frames() {
    let mut conn = server(Version::Qmux01, Config::default());
    conn.handle_record(
        Instant::now(),
        record(&[
            Frame::ConnectionClose { code: 0xa, frame_type: 8, reason: Bytes::from_static(b"x") },
            Frame::MaxData(1),
        ]),
    );
    let Some(Event::Closed(ConnectionError::PeerTransport { code, frame_type, .. })) = conn.poll_event() else {
        panic!("expected a peer transport close");
    };
    assert_eq!((code, frame_type), (Code::PROTOCOL_VIOLATION, 8));
    assert_eq!(conn.poll_event(), None, "frames after the close are not processed");
    assert_eq!(conn.poll_transmit(Instant::now()), None, "no answer to a close");
    // Old senders wrote APPLICATION_CLOSE with a frame-type field; the close still counts,
    // whatever follows it in the record.
    let mut conn = server(Version::Qmux01, Config::default());
    conn.handle_record(Instant::now(), Bytes::from(hex::decode("1d0500026869").unwrap()));
    assert!(matches!(conn.poll_event(), Some(Event::Closed(ConnectionError::PeerClose { code: 5, .. }))));
}

/// qmux-00/01 peers may (leniently) open a stream before their parameters: our send side of
/// it has no credit until they arrive, then becomes writable.
#[test]
fn stream_before_parameters_on_lenient_drafts() {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, Version::Qmux01, Config::default(), now).unwrap();
    let bidi = StreamId::new(Role::Client, Dir::Bi, 0);
    conn.handle_record(now, record(&[data(bidi, 0, 3, false)]));
    assert_eq!(conn.write(bidi, Bytes::from_static(b"x")), Err(moqt_qmux::WriteError::Blocked));
    while conn.poll_event().is_some() {}
    conn.handle_record(now, record(&[client_params()]));
    let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert_eq!(events, [Event::Connected, Event::Writable(bidi)]);
    assert_eq!(conn.write(bidi, Bytes::from_static(b"x")), Ok(1));
}
