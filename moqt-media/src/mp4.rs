//! Top-level MP4 box framing and thin wrappers around mp4-atom.
//!
//! Box contents are decoded and encoded by mp4-atom. What this module adds is the framing a
//! stream needs: reading a box header (`size(4) type(4) [largesize(8)]`) to know how many bytes
//! the whole box takes before it has arrived, so that `mdat` payloads can be sliced out of the
//! input as `Bytes` instead of being copied through a decoder.

use bytes::Bytes;
use mp4_atom::{Decode as _, Encode};

use crate::error::{Error, Result};

/// A box header: its type and total size (header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    /// The four-character code.
    pub kind: [u8; 4],
    /// Header length: 8, or 16 with a 64-bit size.
    pub header_len: usize,
    /// Total size in bytes, header included.
    pub size: u64,
}

/// A four-character code as text (non-printable bytes escaped).
pub(crate) fn fourcc_name(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| if b.is_ascii_graphic() || b == b' ' { (b as char).to_string() } else { format!("\\x{b:02x}") })
        .collect()
}

/// Reads a box header from the front of `buf`. `Ok(None)` means more bytes are needed;
/// `offset` is where `buf` starts in the stream, for error messages. Refuses sizes smaller than
/// the header, size 0 ("to the end of the file") and sizes above `max`.
pub(crate) fn read_header(buf: &[u8], offset: u64, max: u64) -> Result<Option<BoxHeader>> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = [buf[4], buf[5], buf[6], buf[7]];
    let (size, header_len) = match size32 {
        0 => return Err(Error::UnsizedBox { kind: fourcc_name(&kind), offset }),
        1 => {
            if buf.len() < 16 {
                return Ok(None);
            }
            let mut large = [0u8; 8];
            large.copy_from_slice(&buf[8..16]);
            (u64::from_be_bytes(large), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header_len as u64 {
        return Err(Error::InvalidBoxSize { kind: fourcc_name(&kind), size, offset });
    }
    if size > max {
        return Err(Error::BoxTooLarge { kind: fourcc_name(&kind), size, max, offset });
    }
    Ok(Some(BoxHeader { kind, header_len, size }))
}

/// Splits a buffer that holds whole boxes into `(header, box bytes)` pairs.
pub(crate) fn split_boxes(buf: &Bytes, base: u64) -> Result<Vec<(BoxHeader, Bytes)>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let offset = base + pos as u64;
        let header =
            read_header(&buf[pos..], offset, u64::MAX)?.ok_or(Error::Truncated { buffered: buf.len() - pos })?;
        let end = usize::try_from(header.size).ok().and_then(|s| pos.checked_add(s));
        let end = end.filter(|e| *e <= buf.len()).ok_or(Error::Truncated { buffered: buf.len() - pos })?;
        out.push((header, buf.slice(pos..end)));
        pos = end;
    }
    Ok(out)
}

/// Refuses, before mp4-atom sees them, boxes that make mp4-atom 0.17 loop without consuming
/// input. Its `sgpd` decoder reads each entry of a version-0 box with an unknown grouping type
/// as "the rest of the box", so every entry after the first is empty and a count of 2^32 - 1
/// allocates without bound (found by the `media_import` fuzz target, in `stbl` and inside an
/// `mp4a` sample entry: mp4-atom decodes an `sgpd` wherever a child box may appear). Real
/// version-0 `sgpd` boxes hold at most one such entry.
///
/// Every occurrence of the type `sgpd` is checked, not only the ones at known positions in the
/// box tree, since the positions mp4-atom accepts are many. `moov` and `moof` hold no media
/// bytes, so a false match needs those four letters in a string or parameter set and a header
/// of the refused shape around them.
fn guard(bytes: &[u8], offset: u64) -> Result<()> {
    let mut from = 4;
    while let Some(found) = bytes.get(from..).and_then(|rest| rest.windows(4).position(|w| w == b"sgpd")) {
        let at = from + found; // the type; the box starts 4 bytes earlier
        from = at + 4;
        let size = u32::from_be_bytes([bytes[at - 4], bytes[at - 3], bytes[at - 2], bytes[at - 1]]) as usize;
        let (body_start, end) = match size {
            1 => {
                let Some(large) = bytes.get(at + 4..at + 12) else { continue };
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                let size = usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX);
                (at + 12, (at - 4).saturating_add(size))
            }
            0 => (at + 4, bytes.len()),
            n => (at + 4, (at - 4).saturating_add(n)),
        };
        let Some(body) = bytes.get(body_start..end.min(bytes.len())) else { continue };
        if body.len() >= 12 && body[0] == 0 && &body[4..8] != b"refs" {
            let count = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
            if count > 1 {
                return Err(Error::mp4(
                    "sgpd",
                    offset + (at - 4) as u64,
                    mp4_atom::Error::InvalidCombination("version 0 sgpd with several entries of unknown length"),
                ));
            }
        }
    }
    Ok(())
}

/// Decodes one whole box (header included) with mp4-atom.
pub(crate) fn decode_box<T: mp4_atom::Atom>(bytes: &[u8], offset: u64) -> Result<T> {
    guard(bytes, offset)?;
    let mut buf = bytes;
    let atom = T::decode(&mut buf).map_err(|e| Error::mp4(T::KIND, offset, e))?;
    Ok(atom)
}

/// Appends one box to `out` with mp4-atom.
pub(crate) fn encode_into<T: Encode>(atom: &T, out: &mut Vec<u8>) -> Result<()> {
    atom.encode(out).map_err(Error::Mp4Encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn moof_with_sgpd(version: u8, grouping: &[u8; 4], count: u32) -> Vec<u8> {
        let mut sgpd = vec![version, 0, 0, 0];
        sgpd.extend_from_slice(grouping);
        sgpd.extend_from_slice(&count.to_be_bytes());
        sgpd.extend_from_slice(&[0xff; 4]);
        boxed(b"moof", &boxed(b"traf", &boxed(b"sgpd", &sgpd)))
    }

    #[test]
    fn headers() {
        assert_eq!(read_header(b"\0\0\0\x08free", 0, 100).unwrap().unwrap().size, 8);
        assert_eq!(read_header(b"\0\0\0\x08fre", 0, 100).unwrap(), None);
        let large = b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x20";
        let h = read_header(large, 0, 100).unwrap().unwrap();
        assert_eq!((h.header_len, h.size), (16, 32));
        assert_eq!(read_header(&large[..12], 0, 100).unwrap(), None);
        assert!(matches!(read_header(large, 0, 31), Err(Error::BoxTooLarge { size: 32, max: 31, .. })));
        assert!(matches!(
            read_header(b"\0\0\0\x07free", 9, 100),
            Err(Error::InvalidBoxSize { size: 7, offset: 9, .. })
        ));
        assert!(matches!(read_header(b"\0\0\0\0mdat", 0, 100), Err(Error::UnsizedBox { .. })));
        assert_eq!(fourcc_name(b"a\x01 b"), "a\\x01 b");
    }

    #[test]
    fn guard_refuses_the_sgpd_mp4_atom_would_loop_on() {
        let bad = moof_with_sgpd(0, b"roll", u32::MAX);
        let err = decode_box::<mp4_atom::Moof>(&bad, 100).unwrap_err();
        assert!(matches!(err, Error::Mp4 { ref kind, offset: 116, .. } if kind == "sgpd"), "{err}");
        // Inside a sample entry (after its fixed fields), as the fuzzer found it.
        let mut sgpd = vec![0, 0, 0, 0];
        sgpd.extend_from_slice(b"roll");
        sgpd.extend_from_slice(&3u32.to_be_bytes());
        let mut entry = vec![0u8; 28];
        entry.extend_from_slice(&boxed(b"sgpd", &sgpd));
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend_from_slice(&boxed(b"mp4a", &entry));
        assert!(guard(&boxed(b"stsd", &stsd), 0).is_err());
        // One entry, a version 1 box or the refs grouping go on to mp4-atom.
        assert!(guard(&moof_with_sgpd(0, b"roll", 1), 0).is_ok());
        assert!(guard(&moof_with_sgpd(1, b"roll", u32::MAX), 0).is_ok());
        assert!(guard(&moof_with_sgpd(0, b"refs", u32::MAX), 0).is_ok());
    }
}
