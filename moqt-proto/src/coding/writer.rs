//! Encoding helpers. Encoding never fails: every value the message types can hold has a wire
//! form, and out-of-range varints (above 2^62-1) are a caller bug that is clamped.

use bytes::{BufMut, BytesMut};

use super::varint::{varint_len, zigzag_encode, MAX_VARINT};

/// Appends `value` as a shortest-form QUIC varint.
#[inline]
pub fn put_varint(buf: &mut BytesMut, value: u64) {
    debug_assert!(value <= MAX_VARINT, "varint out of range: {value}");
    let value = value.min(MAX_VARINT);
    match varint_len(value) {
        1 => buf.put_u8(value as u8),
        2 => buf.put_u16(0x4000 | value as u16),
        4 => buf.put_u32(0x8000_0000 | value as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | value),
    }
}

/// Appends a zigzag-mapped signed value as a varint.
#[inline]
pub fn put_zigzag(buf: &mut BytesMut, value: i64) {
    put_varint(buf, zigzag_encode(value));
}

/// Appends a length-prefixed byte string.
#[inline]
pub fn put_bytes(buf: &mut BytesMut, value: &[u8]) {
    put_varint(buf, value.len() as u64);
    buf.put_slice(value);
}

/// Appends a length-prefixed UTF-8 string.
#[inline]
pub fn put_str(buf: &mut BytesMut, value: &str) {
    put_bytes(buf, value.as_bytes());
}

/// The shortest-form encoding of `value`, in a stack buffer, and its length.
#[inline]
pub fn varint_bytes(value: u64) -> ([u8; 8], usize) {
    let value = value.min(MAX_VARINT);
    let len = varint_len(value);
    let tagged = value | (u64::from(len.trailing_zeros() as u8) << (len * 8 - 2));
    let mut out = [0u8; 8];
    out[..len].copy_from_slice(&tagged.to_be_bytes()[8 - len..]);
    (out, len)
}

/// Appends `Msg{ body }`: the body written by `body`, preceded by its length as a varint.
///
/// The body is written in place and then shifted right by the size of the length prefix, so no
/// temporary buffer is needed.
pub fn encode_msg(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    body(buf);
    let len = buf.len() - start;
    let (prefix, n) = varint_bytes(len as u64);
    buf.resize(buf.len() + n, 0);
    buf.copy_within(start..start + len, start + n);
    buf[start..start + n].copy_from_slice(&prefix[..n]);
}
