//! The incremental receive buffer: stream data arrives as `Bytes` chunks of any size, and whole
//! messages come out. A message or frame payload that lies inside one chunk is returned as a
//! slice of that chunk (no copy); only data that straddles chunks is gathered into a new buffer.
//! "Need more bytes" is `Ok(None)` and consumes nothing.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::{DecodeError, VarInt};

/// Buffered, not yet decoded bytes of one stream direction.
#[derive(Debug, Default)]
pub struct RecvBuf {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl RecvBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk received from the transport.
    pub fn push(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.len += data.len();
            self.chunks.push_back(data);
        }
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops everything buffered.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Decodes the varint that starts `offset` bytes in, without consuming anything.
    /// `None` means more bytes are needed.
    pub fn peek_varint(&self, offset: usize, strict: bool) -> Result<Option<(u64, usize)>, DecodeError> {
        let mut tmp = [0u8; 8];
        let mut have = 0;
        let mut skip = offset;
        for chunk in &self.chunks {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            let part = &chunk[skip..];
            skip = 0;
            let n = part.len().min(8 - have);
            tmp[have..have + n].copy_from_slice(&part[..n]);
            have += n;
            if have == 8 {
                break;
            }
        }
        match VarInt::decode(&tmp[..have]) {
            None => Ok(None),
            Some((_, _, false)) if strict => Err(DecodeError::NonMinimalVarint),
            Some((value, len, _)) => Ok(Some((value, len))),
        }
    }

    /// Discards `n` buffered bytes. `n` must not exceed [`RecvBuf::len`].
    pub fn skip(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Removes the first `n` bytes as one contiguous `Bytes`: a slice of the first chunk when it
    /// holds them all, otherwise one gathered copy. `n` must not exceed [`RecvBuf::len`].
    pub fn take(&mut self, n: usize) -> Bytes {
        debug_assert!(n <= self.len);
        if n == 0 {
            return Bytes::new();
        }
        self.len -= n;
        let front = self.chunks.front_mut().expect("take within len");
        if front.len() >= n {
            let out = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(n);
        let mut need = n;
        while need > 0 {
            let front = self.chunks.front_mut().expect("take within len");
            let k = front.len().min(need);
            out.extend_from_slice(&front[..k]);
            need -= k;
            if k == front.len() {
                self.chunks.pop_front();
            } else {
                front.advance(k);
            }
        }
        out.freeze()
    }

    /// Takes one `Msg{}` body if it is complete. Fails if its declared length exceeds `max`,
    /// before anything is buffered for it.
    pub fn take_msg(&mut self, max: u64, strict: bool) -> Result<Option<Bytes>, DecodeError> {
        let Some((len, prefix)) = self.peek_varint(0, strict)? else {
            return Ok(None);
        };
        if len > max {
            return Err(DecodeError::MessageTooLarge(len));
        }
        let len = len as usize;
        if self.len < prefix + len {
            return Ok(None);
        }
        self.skip(prefix);
        Ok(Some(self.take(len)))
    }

    /// Takes one `Typed(T){}` message (type, then length, then body) if it is complete.
    pub fn take_typed(&mut self, max: u64, strict: bool) -> Result<Option<(u64, Bytes)>, DecodeError> {
        let Some((kind, kind_len)) = self.peek_varint(0, strict)? else {
            return Ok(None);
        };
        let Some((len, len_len)) = self.peek_varint(kind_len, strict)? else {
            return Ok(None);
        };
        if len > max {
            return Err(DecodeError::MessageTooLarge(len));
        }
        let len = len as usize;
        if self.len < kind_len + len_len + len {
            return Ok(None);
        }
        self.skip(kind_len + len_len);
        Ok(Some((kind, self.take(len))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_is_zero_copy_within_a_chunk() {
        let chunk = Bytes::from_static(b"\x03abcdef");
        let mut buf = RecvBuf::new();
        buf.push(chunk.clone());
        let body = buf.take_msg(100, false).unwrap().unwrap();
        assert_eq!(&body[..], b"abc");
        assert_eq!(body.as_ptr(), chunk[1..].as_ptr());
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn split_message_needs_more_then_gathers() {
        let mut buf = RecvBuf::new();
        buf.push(Bytes::from_static(b"\x04ab"));
        assert_eq!(buf.take_msg(100, false).unwrap(), None);
        assert_eq!(buf.len(), 3, "nothing consumed while incomplete");
        buf.push(Bytes::from_static(b"cd"));
        assert_eq!(&buf.take_msg(100, false).unwrap().unwrap()[..], b"abcd");
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_length_is_rejected_before_buffering() {
        let mut buf = RecvBuf::new();
        buf.push(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(buf.take_msg(1024, false), Err(DecodeError::MessageTooLarge((1 << 62) - 1)));
    }
}
