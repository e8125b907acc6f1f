//! Audio decoder records: Opus (`dOps` in MP4 ⇄ `OpusHead` as WebCodecs' description) and
//! AAC (the AudioSpecificConfig carried in `esds` and used as the description).
//!
//! `OpusHead` (RFC 7845 §5.1), little-endian: `"OpusHead"`, version 1, channel count, pre-skip
//! (u16), input sample rate (u32), output gain (i16), mapping family, then for a nonzero family
//! stream count, coupled count and one mapping byte per channel. `dOps` holds the same fields
//! big-endian with version 0 and no magic.

use bytes::{BufMut, Bytes, BytesMut};
use mp4_atom::{Dops, OpusChannelMapping};

/// The 19+ byte `OpusHead` for a `dOps` record.
pub fn opus_head(dops: &Dops) -> Bytes {
    let mut out = BytesMut::with_capacity(21 + usize::from(dops.output_channel_count));
    out.put_slice(b"OpusHead");
    out.put_u8(1);
    out.put_u8(dops.output_channel_count);
    out.put_u16_le(dops.pre_skip);
    out.put_u32_le(dops.input_sample_rate);
    out.put_i16_le(dops.output_gain);
    match &dops.channel_mapping {
        None => out.put_u8(0),
        Some(map) => {
            out.put_u8(map.family);
            out.put_u8(map.stream_count);
            out.put_u8(map.coupled_count);
            out.put_slice(&map.channel_mapping);
        }
    }
    out.freeze()
}

/// The `dOps` record for an `OpusHead`; `None` if it is not one.
pub fn dops_from_head(head: &[u8]) -> Option<Dops> {
    if head.len() < 19 || &head[..8] != b"OpusHead" {
        return None;
    }
    let channels = head[9];
    let family = head[18];
    let channel_mapping = if family == 0 {
        None
    } else {
        let table = head.get(19..21 + usize::from(channels))?;
        Some(OpusChannelMapping {
            family,
            stream_count: table[0],
            coupled_count: table[1],
            channel_mapping: table[2..].to_vec(),
        })
    };
    Some(Dops {
        output_channel_count: channels,
        pre_skip: u16::from_le_bytes([head[10], head[11]]),
        input_sample_rate: u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
        output_gain: i16::from_le_bytes([head[16], head[17]]),
        channel_mapping,
    })
}

/// A default `dOps` for a channel count (family 0 for mono/stereo, 1 otherwise).
pub fn default_dops(channels: u8) -> Dops {
    let channel_mapping = (channels > 2).then(|| {
        // Vorbis order: as many coupled pairs as fit, the rest mono.
        let coupled = channels / 2;
        OpusChannelMapping {
            family: 1,
            stream_count: channels - coupled,
            coupled_count: coupled,
            channel_mapping: (0..channels).collect(),
        }
    });
    Dops { output_channel_count: channels, pre_skip: 312, input_sample_rate: 48_000, output_gain: 0, channel_mapping }
}

/// The sampling frequencies an AudioSpecificConfig frequency index stands for.
const AAC_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// The leading fields of an AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR, 29 = PS).
    pub object_type: u8,
    /// Sampling rate, when the index is a known one or explicit.
    pub sample_rate: Option<u32>,
    /// Channel count for channel configurations 1-7; `None` for 0 (in the PCE).
    pub channels: Option<u32>,
}

impl AacConfig {
    /// Parses the first fields of an AudioSpecificConfig; `None` when too short.
    pub fn parse(asc: &[u8]) -> Option<Self> {
        let mut bits = Bits { data: asc, pos: 0 };
        let mut object_type = bits.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6)? as u8;
        }
        let index = bits.read(4)?;
        let sample_rate = if index == 15 { Some(bits.read(24)?) } else { AAC_RATES.get(index as usize).copied() };
        let channel_config = bits.read(4)?;
        let channels = match channel_config {
            1..=6 => Some(channel_config),
            7 => Some(8),
            _ => None,
        };
        Some(AacConfig { object_type, sample_rate, channels })
    }

    /// A two-byte (or five-byte, for a rate without an index) AudioSpecificConfig.
    pub fn encode(object_type: u8, sample_rate: u32, channels: u32) -> Bytes {
        let channel_config = match channels {
            8 => 7,
            c @ 1..=6 => c,
            _ => 0,
        };
        let mut bits: u64 = u64::from(object_type.min(30));
        let mut len: usize = 5;
        match AAC_RATES.iter().position(|r| *r == sample_rate) {
            Some(i) => {
                bits = (bits << 4) | i as u64;
                len += 4;
            }
            None => {
                bits = (bits << 28) | (15 << 24) | u64::from(sample_rate & 0xff_ffff);
                len += 28;
            }
        }
        bits = (bits << 4) | u64::from(channel_config);
        len += 4;
        let bytes = len.div_ceil(8);
        bits <<= bytes * 8 - len;
        Bytes::copy_from_slice(&bits.to_be_bytes()[8 - bytes..])
    }
}

/// A big-endian bit reader over a byte slice.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}
