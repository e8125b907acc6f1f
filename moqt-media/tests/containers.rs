//! Property tests of the two containers: encode → decode gives back what went in, and decoding
//! arbitrary or damaged bytes returns an error instead of panicking.

use bytes::Bytes;
use moqt_media::container::cmaf::{decode_fragment, encode_fragment, TrackDefaults};
use moqt_media::container::{legacy, Sample};
use proptest::prelude::*;

/// (composition offset, duration, keyframe, payload) of one generated sample.
type RawSample = (i32, u32, bool, Vec<u8>);

fn samples() -> impl Strategy<Value = (u64, Vec<RawSample>)> {
    (
        0u64..(1 << 60),
        prop::collection::vec(
            (-100_000i32..100_000, 0u32..100_000, any::<bool>(), prop::collection::vec(any::<u8>(), 1..64)),
            1..20,
        ),
    )
}

proptest! {
    #[test]
    fn legacy_round_trip(ts in 0u64..=legacy::MAX_TIMESTAMP, payload in prop::collection::vec(any::<u8>(), 0..512)) {
        let frame = legacy::encode(ts, &payload);
        let (t, p) = legacy::decode(&frame).unwrap();
        prop_assert_eq!(t, ts);
        prop_assert_eq!(&p[..], &payload[..]);
    }

    #[test]
    fn legacy_clamps_and_decodes_anything(ts in any::<u64>(), bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        let (t, _) = legacy::decode(&legacy::encode(ts, b"x")).unwrap();
        prop_assert_eq!(t, ts.min(legacy::MAX_TIMESTAMP));
        let frame = Bytes::from(bytes.clone());
        if let Ok((_, payload)) = legacy::decode(&frame) {
            prop_assert!(bytes.ends_with(&payload));
        }
    }

    #[test]
    fn cmaf_round_trip((start, list) in samples(), track_id in 1u32..1000, sequence in any::<u32>()) {
        let mut dts = start;
        let mut input = Vec::new();
        for (cts, duration, keyframe, data) in list {
            input.push(Sample { dts, cts, duration, keyframe, data: Bytes::from(data) });
            dts += u64::from(duration);
        }
        let frame = encode_fragment(track_id, sequence, &input).unwrap();
        let video = TrackDefaults::default();
        prop_assert_eq!(&decode_fragment(&frame, track_id, video).unwrap(), &input);
        // For an audio track every sample reads as a keyframe.
        let audio = TrackDefaults { audio: true, ..Default::default() };
        let decoded = decode_fragment(&frame, track_id, audio).unwrap();
        prop_assert!(decoded.iter().all(|s| s.keyframe));
        // The fragment belongs to its track only.
        prop_assert!(decode_fragment(&frame, track_id + 1, video).is_err());
    }

    #[test]
    fn cmaf_damaged_fragments_never_panic((start, list) in samples(), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let input: Vec<Sample> = list
            .into_iter()
            .map(|(cts, duration, keyframe, data)| Sample { dts: start, cts, duration, keyframe, data: Bytes::from(data) })
            .collect();
        let frame = encode_fragment(1, 1, &input).unwrap();
        let mut damaged = frame.to_vec();
        let i = at.index(damaged.len());
        damaged[i] ^= xor;
        let _ = decode_fragment(&Bytes::from(damaged.clone()), 1, TrackDefaults::default());
        damaged.truncate(i);
        prop_assert!(decode_fragment(&Bytes::from(damaged), 1, TrackDefaults::default()).is_err());
    }

    #[test]
    fn cmaf_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_fragment(&Bytes::from(bytes), 1, TrackDefaults::default());
    }
}
