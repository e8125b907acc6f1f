//! QUIC variable-length integers (RFC 9000 §16) and the zigzag mapping used for lite-05+
//! frame timestamp deltas.

/// The largest value a QUIC varint can carry: 2^62 - 1.
pub const MAX_VARINT: u64 = (1 << 62) - 1;

/// Helpers for QUIC varints.
pub struct VarInt;

impl VarInt {
    /// Decodes one varint from the front of `buf`.
    ///
    /// Returns the value, the number of bytes it used and whether the encoding was the shortest
    /// possible one. `None` means `buf` is too short to hold it.
    #[inline]
    pub fn decode(buf: &[u8]) -> Option<(u64, usize, bool)> {
        let first = *buf.first()?;
        let len = 1usize << (first >> 6);
        if buf.len() < len {
            return None;
        }
        let mut value = u64::from(first & 0x3f);
        for b in &buf[1..len] {
            value = (value << 8) | u64::from(*b);
        }
        Some((value, len, varint_len(value) == len))
    }
}

/// The number of bytes the shortest encoding of `value` takes. Values above [`MAX_VARINT`]
/// are a caller bug; they report 8 and are clamped when written.
#[inline]
pub const fn varint_len(value: u64) -> usize {
    if value < (1 << 6) {
        1
    } else if value < (1 << 14) {
        2
    } else if value < (1 << 30) {
        4
    } else {
        8
    }
}

/// Maps a signed value to an unsigned one so that small magnitudes stay small:
/// 0→0, -1→1, 1→2, -2→3, 2→4.
#[inline]
pub const fn zigzag_encode(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag_encode`].
#[inline]
pub const fn zigzag_decode(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_mapping() {
        for (s, u) in [(0i64, 0u64), (-1, 1), (1, 2), (-2, 3), (2, 4), (33, 66), (-33, 65)] {
            assert_eq!(zigzag_encode(s), u);
            assert_eq!(zigzag_decode(u), s);
        }
        assert_eq!(zigzag_decode(zigzag_encode(i64::MIN)), i64::MIN);
        assert_eq!(zigzag_decode(zigzag_encode(i64::MAX)), i64::MAX);
    }

    #[test]
    fn decode_reports_minimality() {
        assert_eq!(VarInt::decode(&[0x25]), Some((37, 1, true)));
        assert_eq!(VarInt::decode(&[0x40, 0x25]), Some((37, 2, false)));
        assert_eq!(VarInt::decode(&[0x40]), None);
        assert_eq!(VarInt::decode(&[]), None);
    }
}
