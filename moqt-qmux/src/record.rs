//! Record framing on a byte stream (TCP, TLS, Unix sockets): each record is
//! `Size (i) | Frames (Size bytes)`. On WebSocket the message boundary replaces `Size`, so
//! none of this is used there.
//!
//! [`RecordReader`] reassembles records from arbitrary chunks. The declared size is checked
//! against `max_record_size` before any byte of the record is buffered or allocated, and a
//! record that sits inside one received chunk is returned as a slice of it (no copy).

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{TransportError, TransportErrorCode};
use crate::varint;

/// Reassembles length-prefixed records from a byte stream.
#[derive(Debug)]
pub struct RecordReader {
    chunks: VecDeque<Bytes>,
    len: usize,
    max_record_size: u64,
}

impl RecordReader {
    /// A reader accepting records of at most `max_record_size` bytes (the value we advertise).
    pub fn new(max_record_size: u64) -> Self {
        Self { chunks: VecDeque::new(), len: 0, max_record_size }
    }

    /// Bytes received but not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// The size prefix at the front, if all of its bytes have arrived.
    fn peek_size(&self) -> Option<(u64, usize)> {
        let mut head = [0u8; 8];
        let mut n = 0;
        for chunk in &self.chunks {
            let take = (head.len() - n).min(chunk.len());
            head[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
            if n == head.len() {
                break;
            }
        }
        varint::peek(&head[..n])
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else { return };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// The next complete record's frames, `None` if it has not fully arrived. A declared size
    /// above the limit is FRAME_ENCODING_ERROR (the stream cannot be resynchronised after it).
    pub fn next_record(&mut self) -> Result<Option<Bytes>, TransportError> {
        let Some((size, prefix)) = self.peek_size() else { return Ok(None) };
        if size > self.max_record_size {
            return Err(TransportError::new(
                TransportErrorCode::FRAME_ENCODING_ERROR,
                "record larger than max_record_size",
            ));
        }
        let size = size as usize;
        if self.len < prefix + size {
            return Ok(None);
        }
        self.advance(prefix);
        if let Some(front) = self.chunks.front_mut() {
            if front.len() >= size {
                let record = front.split_to(size);
                if front.is_empty() {
                    self.chunks.pop_front();
                }
                self.len -= size;
                return Ok(Some(record));
            }
        }
        let mut record = BytesMut::with_capacity(size);
        while record.len() < size {
            let Some(front) = self.chunks.front_mut() else { break };
            let take = (size - record.len()).min(front.len());
            record.put_slice(&front[..take]);
            front.advance(take);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        self.len -= size;
        Ok(Some(record.freeze()))
    }
}

/// Prefixes `frames` with its size, as a byte-stream record.
pub fn prefixed(frames: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(varint::len(frames.len() as u64) + frames.len());
    varint::put(&mut out, frames.len() as u64);
    out.put_slice(frames);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_and_slices() {
        let mut r = RecordReader::new(16382);
        let wire = [prefixed(b"abc"), prefixed(b""), prefixed(&[7u8; 100])].concat();
        // Byte by byte.
        for b in &wire {
            r.push(Bytes::copy_from_slice(&[*b]));
        }
        assert_eq!(r.next_record().unwrap().unwrap(), &b"abc"[..]);
        assert_eq!(r.next_record().unwrap().unwrap(), &b""[..]);
        assert_eq!(r.next_record().unwrap().unwrap().len(), 100);
        assert_eq!(r.next_record().unwrap(), None);
        assert_eq!(r.buffered(), 0);
        // One chunk: the record is a slice of it.
        let chunk = Bytes::from(wire.clone());
        r.push(chunk.clone());
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.as_ptr(), chunk[1..].as_ptr());
    }

    #[test]
    fn oversized_before_buffering() {
        let mut r = RecordReader::new(16382);
        // Size 16383 declared with a 2-byte varint, no body yet.
        r.push(Bytes::from_static(&[0x7f, 0xff]));
        let e = r.next_record().unwrap_err();
        assert_eq!(e.code, TransportErrorCode::FRAME_ENCODING_ERROR);
        let mut r = RecordReader::new(16382);
        r.push(Bytes::from_static(&[0xc0, 0, 0, 0]));
        assert_eq!(r.next_record().unwrap(), None, "incomplete size prefix");
        r.push(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        assert!(r.next_record().is_err());
    }
}
