//! The importer's input buffer: chunks as they arrived, taken out box by box. A box that lies
//! inside one chunk comes out as a slice of it (no copy); only a box that straddles chunks is
//! gathered into one new buffer.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Buffered input not yet framed into boxes.
#[derive(Debug, Default)]
pub(crate) struct ChunkBuf {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl ChunkBuf {
    /// Appends a chunk.
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

    /// Copies up to `out.len()` leading bytes into `out`; returns how many.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        let mut have = 0;
        for chunk in &self.chunks {
            if have == out.len() {
                break;
            }
            let n = chunk.len().min(out.len() - have);
            out[have..have + n].copy_from_slice(&chunk[..n]);
            have += n;
        }
        have
    }

    /// Removes the first `n` bytes (`n <= len`) as one `Bytes`.
    pub fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.len);
        if n == 0 {
            return Bytes::new();
        }
        self.len -= n;
        if let Some(front) = self.chunks.front_mut() {
            if front.len() >= n {
                let out = front.split_to(n);
                if front.is_empty() {
                    self.chunks.pop_front();
                }
                return out;
            }
        }
        let mut out = BytesMut::with_capacity(n);
        let mut need = n;
        while need > 0 {
            let Some(front) = self.chunks.front_mut() else { break };
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

    /// Drops everything.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_slices_within_a_chunk_and_gathers_across() {
        let mut buf = ChunkBuf::default();
        let first = Bytes::from_static(b"abcdef");
        buf.push(first.clone());
        buf.push(Bytes::from_static(b"ghij"));
        let mut head = [0u8; 8];
        assert_eq!(buf.peek(&mut head), 8);
        assert_eq!(&head, b"abcdefgh");
        let a = buf.take(4);
        assert_eq!(&a[..], b"abcd");
        // A slice of the pushed chunk: same memory, no copy.
        assert_eq!(a.as_ptr(), first.as_ptr());
        let b = buf.take(4);
        assert_eq!(&b[..], b"efgh");
        assert_eq!(buf.len(), 2);
        assert_eq!(&buf.take(10)[..], b"ij");
        assert_eq!(buf.len(), 0);
    }
}
