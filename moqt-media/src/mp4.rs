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

/// Decodes one whole box (header included) with mp4-atom.
pub(crate) fn decode_box<T: mp4_atom::Atom>(bytes: &[u8], offset: u64) -> Result<T> {
    let mut buf = bytes;
    let atom = T::decode(&mut buf).map_err(|e| Error::mp4(T::KIND, offset, e))?;
    Ok(atom)
}

/// Appends one box to `out` with mp4-atom.
pub(crate) fn encode_into<T: Encode>(atom: &T, out: &mut Vec<u8>) -> Result<()> {
    atom.encode(out).map_err(Error::Mp4Encode)
}
