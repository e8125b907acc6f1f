//! Wire primitives shared by every moq-lite message: QUIC varints, strings, byte strings, zigzag
//! deltas, length-prefixed (`Msg{}`) and typed (`Typed(T){}`) framing, and the incremental
//! receive buffer that turns arbitrarily chunked stream data into whole messages.
//!
//! This module owns byte-level correctness and the bounds checks that run *before* any
//! allocation. It knows nothing about message semantics.

mod error;
mod limits;
mod reader;
mod recv;
mod varint;
mod writer;

pub use error::DecodeError;
pub use limits::Limits;
pub use reader::Reader;
pub use recv::RecvBuf;
pub use varint::{varint_len, zigzag_decode, zigzag_encode, VarInt, MAX_VARINT};
pub use writer::{encode_msg, put_bytes, put_str, put_varint, put_zigzag, varint_bytes};
