//! A cursor over one complete message body. Every read is bounds-checked against the bytes that
//! remain, so a hostile length or count can never cause an allocation larger than the input.

use super::{varint::zigzag_decode, DecodeError, Limits, VarInt};

/// Reads fields from a complete message body.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    limits: &'a Limits,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, applying `limits`.
    pub fn new(buf: &'a [u8], limits: &'a Limits) -> Self {
        Self { buf, limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &'a Limits {
        self.limits
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Reads a QUIC varint.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let (value, len, minimal) = VarInt::decode(self.buf).ok_or(DecodeError::Truncated)?;
        if !minimal && self.limits.strict_varints {
            return Err(DecodeError::NonMinimalVarint);
        }
        self.buf = &self.buf[len..];
        Ok(value)
    }

    /// Reads one raw byte.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    /// Reads a zigzag-mapped signed varint.
    #[inline]
    pub fn zigzag(&mut self) -> Result<i64, DecodeError> {
        self.varint().map(zigzag_decode)
    }

    /// Reads an `opt+1` group field: 0 is `None`, N is `Some(N-1)`.
    #[inline]
    pub fn opt_plus_one(&mut self) -> Result<Option<u64>, DecodeError> {
        Ok(self.varint()?.checked_sub(1))
    }

    /// Reads `n` raw bytes.
    #[inline]
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Takes every byte that remains.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: u64) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        if len > max {
            return Err(DecodeError::StringTooLong(len));
        }
        // `len <= max` fits in usize on every supported target; the bounds check is in `raw`.
        self.raw(usize::try_from(len).map_err(|_| DecodeError::Truncated)?)
    }

    /// Reads a length-prefixed UTF-8 string within the string limit.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        self.str_max(self.limits.max_string_len)
    }

    /// Reads a length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str_max(&mut self, max: u64) -> Result<&'a str, DecodeError> {
        let bytes = self.bytes(max)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Reads a count of items that each take at least one byte, checking it against `max`.
    pub fn count(&mut self, max: u64, too_many: fn(u64) -> DecodeError) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > max {
            return Err(too_many(n));
        }
        if n > self.buf.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }

    /// Fails if bytes remain after the last field.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}
