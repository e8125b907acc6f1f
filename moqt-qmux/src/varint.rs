//! QUIC variable-length integers (RFC 9000 §16): the only integer encoding QMux uses.
//!
//! The two top bits of the first byte give the length (1, 2, 4 or 8 bytes); the rest is the
//! value, big-endian. Decoders here accept any length for a value (RFC 9000 allows it, except
//! for frame types, which QMux peers in practice always write minimally).

use bytes::{Buf, BufMut, Bytes};

/// The largest value a varint can carry: 2^62 - 1.
pub const MAX: u64 = (1 << 62) - 1;

/// The buffer ended inside a varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// The number of bytes the shortest encoding of `value` takes (8 for anything above 2^30).
pub const fn len(value: u64) -> usize {
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

/// Decodes one varint from the front of `buf` without consuming it: the value and its length.
pub fn peek(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let n = 1usize << (first >> 6);
    let bytes = buf.get(..n)?;
    let mut value = u64::from(first & 0x3f);
    for b in &bytes[1..] {
        value = (value << 8) | u64::from(*b);
    }
    Some((value, n))
}

/// Decodes one varint from the front of `buf` and advances past it.
pub fn read(buf: &mut Bytes) -> Result<u64, Truncated> {
    let (value, n) = peek(buf).ok_or(Truncated)?;
    buf.advance(n);
    Ok(value)
}

/// Appends the shortest encoding of `value`. Values above [`MAX`] are a caller bug: they are
/// clamped to [`MAX`] (and trip a debug assertion).
pub fn put<B: BufMut>(buf: &mut B, value: u64) {
    debug_assert!(value <= MAX, "varint out of range: {value}");
    let value = value.min(MAX);
    match len(value) {
        1 => buf.put_u8(value as u8),
        2 => buf.put_u16(0x4000 | value as u16),
        4 => buf.put_u32(0x8000_0000 | value as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9000_examples() {
        // RFC 9000 §A.1 sample encodings.
        for (hex, value) in [
            ("c2197c5eff14e88c", 151_288_809_941_952_652u64),
            ("9d7f3e7d", 494_878_333),
            ("7bbd", 15_293),
            ("25", 37),
            ("4025", 37),
        ] {
            let raw = hex::decode(hex).unwrap();
            let mut buf = Bytes::from(raw.clone());
            assert_eq!(read(&mut buf), Ok(value));
            assert!(buf.is_empty());
            if hex != "4025" {
                let mut out = Vec::new();
                put(&mut out, value);
                assert_eq!(out, raw);
            }
        }
    }

    #[test]
    fn truncated_and_bounds() {
        assert_eq!(read(&mut Bytes::from_static(&[0x40])), Err(Truncated));
        assert_eq!(read(&mut Bytes::new()), Err(Truncated));
        let mut out = Vec::new();
        put(&mut out, MAX);
        assert_eq!(out, [0xff; 8]);
        assert_eq!(len(MAX), 8);
        assert_eq!(len(63), 1);
        assert_eq!(len(64), 2);
        assert_eq!(len(16_383), 2);
        assert_eq!(len(16_384), 4);
    }
}
