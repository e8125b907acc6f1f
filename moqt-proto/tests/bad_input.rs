//! Hostile and malformed input: every case is a typed error (or "need more bytes"), never a
//! panic and never an allocation sized by a number the peer chose.

use bytes::{Bytes, BytesMut};
use moqt_proto::coding::{put_varint, RecvBuf};
use moqt_proto::message::*;
use moqt_proto::stream::{decode_all, StreamDecoder, StreamType};
use moqt_proto::{Codec, DecodeError, Limits, Version};

fn hx(s: &str) -> Bytes {
    Bytes::from(hex::decode(s.replace(' ', "")).unwrap())
}

fn opener(v: Version, uni: bool, data: Bytes) -> Result<Vec<moqt_proto::StreamMessage>, DecodeError> {
    decode_all(StreamDecoder::opener(Codec::new(v), uni), data)
}

fn body<M: Message>(v: Version, hex: &str) -> Result<M, DecodeError> {
    M::decode(&hx(hex), &Codec::new(v))
}

#[test]
fn huge_length_prefixes_are_rejected_before_buffering() {
    // SUBSCRIBE stream whose message length is 2^62-1.
    let data = hx("02 ff ff ff ff ff ff ff ff");
    for v in Version::ALL {
        assert_eq!(opener(v, false, data.clone()), Err(DecodeError::MessageTooLarge((1 << 62) - 1)));
    }
    // A frame of 2^62-1 bytes on a lite-04 group stream.
    let data = hx("00 02 01 00 ff ff ff ff ff ff ff ff");
    assert_eq!(opener(Version::Lite04, true, data), Err(DecodeError::FrameTooLarge((1 << 62) - 1)));
    // A string length of 2^62-1 inside a small message.
    assert_eq!(
        body::<Goaway>(Version::Lite05, "ff ff ff ff ff ff ff ff"),
        Err(DecodeError::StringTooLong((1 << 62) - 1))
    );
    // A SETUP parameter value length of 2^62-1.
    assert_eq!(body::<Setup>(Version::Lite05, "01 07 ff ff ff ff ff ff ff ff"), Err(DecodeError::Truncated));
}

#[test]
fn counts_in_the_millions_are_rejected() {
    // Hop count of 2 million (lite-04 ANNOUNCE), then nothing.
    let mut b = BytesMut::new();
    b.extend_from_slice(&hx("01 01 61"));
    put_varint(&mut b, 2_000_000);
    assert_eq!(body::<Announce>(Version::Lite04, &hex::encode(&b)), Err(DecodeError::TooManyHops(2_000_000)));
    // lite-03 hop count (a bare number) of 2 million.
    assert_eq!(body::<Announce>(Version::Lite03, &hex::encode(&b)), Err(DecodeError::TooManyHops(2_000_000)));
    // A count within the limit but larger than the bytes left is truncated, not allocated.
    assert_eq!(body::<Announce>(Version::Lite04, "01 01 61 20 01"), Err(DecodeError::Truncated));
    // SETUP with 5 million parameters.
    let mut b = BytesMut::new();
    put_varint(&mut b, 5_000_000);
    assert_eq!(body::<Setup>(Version::Lite05, &hex::encode(&b)), Err(DecodeError::TooManyParameters(5_000_000)));
    // lite-06 START with 33 hops.
    let mut b = BytesMut::new();
    b.extend_from_slice(&hx("01 61 21"));
    for i in 1..=33u8 {
        b.extend_from_slice(&[i]);
    }
    b.extend_from_slice(&hx("00 00"));
    assert_eq!(AnnounceStart::decode(&b, &Codec::new(Version::Lite06)), Err(DecodeError::TooManyHops(33)));
}

#[test]
fn truncated_messages_need_more_then_fail_at_fin() {
    let whole = hx("02 19 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 41 f4 00 40 64");
    for cut in 1..whole.len() {
        let mut d = StreamDecoder::opener(Codec::new(Version::Lite04), false);
        d.push(whole.slice(..cut));
        // The type may come out; the SUBSCRIBE may not.
        while let Some(m) = d.next().unwrap() {
            assert_eq!(m, moqt_proto::StreamMessage::Type(StreamType::Subscribe));
        }
        if cut > 1 {
            assert_eq!(d.finish(), Err(DecodeError::FinMidMessage));
        }
    }
    // A body shorter than its fields (length says 2, fields need more).
    assert_eq!(opener(Version::Lite04, false, hx("02 02 01 0a")), Err(DecodeError::Truncated));
    // A frame cut by FIN.
    assert_eq!(opener(Version::Lite04, true, hx("00 02 01 00 05 68 65")), Err(DecodeError::FinMidMessage));
}

#[test]
fn trailing_bytes_are_rejected() {
    // GOAWAY with one byte more than its string.
    assert_eq!(opener(Version::Lite05, false, hx("05 02 00 ff")), Err(DecodeError::TrailingBytes(1)));
    // lite-03 PROBE carrying an RTT (lite-04 shape).
    assert_eq!(body::<Probe>(Version::Lite03, "80 0f 42 40 19"), Err(DecodeError::TrailingBytes(1)));
    // A SUBSCRIBE_OK with an extra byte.
    assert_eq!(
        decode_all(
            StreamDecoder::responder(Codec::new(Version::Lite04), StreamType::Subscribe),
            hx("00 06 80 00 00 00 00 00")
        ),
        Err(DecodeError::TrailingBytes(1))
    );
    // Bytes after the last message a direction may carry.
    assert_eq!(opener(Version::Lite05, false, hx("05 01 00 01 00")), Err(DecodeError::UnexpectedData));
}

#[test]
fn invalid_utf8_is_rejected() {
    assert_eq!(body::<Goaway>(Version::Lite04, "02 c3 28"), Err(DecodeError::InvalidUtf8));
    assert_eq!(body::<Track>(Version::Lite05, "01 61 01 ff"), Err(DecodeError::InvalidUtf8));
    assert_eq!(body::<Setup>(Version::Lite05, "01 02 01 ff"), Err(DecodeError::InvalidUtf8));
}

#[test]
fn non_minimal_varints_are_accepted_unless_strict() {
    // GOAWAY "" with a 2-byte length prefix and a 2-byte string length.
    let data = hx("05 40 02 40 00");
    assert_eq!(opener(Version::Lite05, false, data.clone()).unwrap().len(), 2);
    let strict = Codec::new(Version::Lite05).with_limits(Limits { strict_varints: true, ..Limits::default() });
    assert_eq!(decode_all(StreamDecoder::opener(strict, false), data), Err(DecodeError::NonMinimalVarint));
    // Inside a body.
    assert_eq!(Probe::decode(&hx("40 05 00"), &Codec::new(Version::Lite04)).unwrap().bitrate, 5);
    assert_eq!(Probe::decode(&hx("40 05 00"), &strict), Err(DecodeError::NonMinimalVarint));
}

#[test]
fn stream_types_are_gated_by_version() {
    for v in Version::ALL {
        assert_eq!(opener(v, false, hx("07")), Err(DecodeError::UnknownStreamType(7)));
        assert_eq!(opener(v, false, hx("00")), Err(DecodeError::UnknownStreamType(0)));
        assert_eq!(opener(v, true, hx("02")), Err(DecodeError::UnknownStreamType(2)));
    }
    assert_eq!(opener(Version::Lite04, false, hx("06")), Err(DecodeError::UnknownStreamType(6)));
    assert_eq!(opener(Version::Lite03, false, hx("05")), Err(DecodeError::UnknownStreamType(5)));
    assert_eq!(opener(Version::Lite04, true, hx("01")), Err(DecodeError::UnknownStreamType(1)));
}

#[test]
fn paths_and_strings_are_bounded() {
    let limits = Limits::default();
    let deep = (0..33).map(|_| "a").collect::<Vec<_>>().join("/");
    let mut b = BytesMut::new();
    moqt_proto::coding::put_str(&mut b, &deep);
    b.extend_from_slice(&hx("01 61"));
    assert_eq!(Track::decode(&b, &Codec::new(Version::Lite05)), Err(DecodeError::PathTooDeep));
    let long = "a".repeat(limits.max_path_len + 1);
    let mut b = BytesMut::new();
    moqt_proto::coding::put_str(&mut b, &long);
    b.extend_from_slice(&hx("01 61"));
    assert_eq!(Track::decode(&b, &Codec::new(Version::Lite05)), Err(DecodeError::PathTooLong(limits.max_path_len + 1)));
    let mut b = BytesMut::new();
    moqt_proto::coding::put_str(&mut b, &"u".repeat(8193));
    assert_eq!(Goaway::decode(&b, &Codec::new(Version::Lite06)), Err(DecodeError::StringTooLong(8193)));
}

#[test]
fn setup_rules() {
    // Duplicate parameter.
    assert_eq!(body::<Setup>(Version::Lite05, "02 01 01 01 01 01 02"), Err(DecodeError::DuplicateParameter(1)));
    // Duplicate unknown parameter.
    assert_eq!(body::<Setup>(Version::Lite05, "02 3f 00 3f 00"), Err(DecodeError::DuplicateParameter(0x3f)));
    // Unknown parameters are skipped.
    assert_eq!(body::<Setup>(Version::Lite06, "02 3f 02 aa bb 05 01 2a").unwrap().hop, Some(42));
    // A numeric parameter with trailing bytes.
    assert_eq!(body::<Setup>(Version::Lite05, "01 01 02 01 00"), Err(DecodeError::InvalidParameter(1)));
    // Probe >= 2 reads as Increase, unknown role as Both, hop 0 as none.
    let s = body::<Setup>(Version::Lite05, "03 01 01 07 03 01 09 05 01 00").unwrap();
    assert_eq!((s.probe, s.role, s.hop), (Some(ProbeLevel::Increase), Some(Role::Both), None));
    // 65 parameters exceed the default limit of 64.
    let mut b = BytesMut::new();
    put_varint(&mut b, 65);
    for i in 0..65u64 {
        put_varint(&mut b, 0x100 + i);
        put_varint(&mut b, 0);
    }
    assert_eq!(Setup::decode(&b, &Codec::new(Version::Lite05)), Err(DecodeError::TooManyParameters(65)));
}

#[test]
fn invalid_values() {
    // lite-03/04 ANNOUNCE status 2.
    assert_eq!(body::<Announce>(Version::Lite04, "02 01 61 00"), Err(DecodeError::InvalidValue("announce status")));
    // Unknown subscribe response type.
    assert_eq!(
        decode_all(StreamDecoder::responder(Codec::new(Version::Lite05), StreamType::Subscribe), hx("03 01 00")),
        Err(DecodeError::UnknownMessageType(3))
    );
    // DROP with end < start.
    assert!(decode_all(
        StreamDecoder::responder(Codec::new(Version::Lite05), StreamType::Subscribe),
        hx("02 03 07 05 00")
    )
    .is_err());
    // lite-06 FETCH end frame before start frame.
    assert_eq!(
        body::<Fetch>(Version::Lite06, "01 61 01 62 00 07 05 03"),
        Err(DecodeError::InvalidValue("fetch frame range"))
    );
    // A negative absolute frame timestamp.
    assert_eq!(opener(Version::Lite05, true, hx("00 02 01 00 01 00")), Err(DecodeError::TimestampOutOfRange));
    // RecvBuf bounds: a Msg bigger than the message limit.
    let mut rb = RecvBuf::new();
    rb.push(hx("80 01 00 01"));
    assert_eq!(rb.take_msg(65536, false), Err(DecodeError::MessageTooLarge(65537)));
}
