//! [`Peer`]: stream-level access to one side of the simulator ([`super::sim`]), with what its
//! operations return ([`StreamError`], [`Received`]). Owns no state of its own: it borrows the
//! side's connection and event queue for one call.

use std::time::Instant;

use bytes::Bytes;
use quinn_proto::{
    ClosedStream, Connection, FinishError, ReadError, ReadableError, SendDatagramError, VarInt, WriteError,
};

use super::sim::{Dir, NetEvent, Node, Side, StreamId};

/// Why a stream operation did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// Flow or congestion control: wait for `Writable` / `Readable`.
    Blocked,
    /// The peer sent STOP_SENDING with this code.
    Stopped(u64),
    /// The peer sent RESET_STREAM with this code.
    Reset(u64),
    /// The stream is finished, reset, stopped or unknown.
    Closed,
    /// The operation does not apply to this stream's direction (e.g. reading our own uni stream).
    WrongDirection,
    /// No connection (not yet accepted on the server, or already drained).
    NoConnection,
}

/// Result of [`Peer::read`]: the chunks taken (zero-copy `Bytes` from quinn) and whether the stream ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub chunks: Vec<Bytes>,
    pub fin: bool,
}

/// Stream-level access to one side. Operations take effect at the current simulated time; the resulting
/// datagrams leave on the next [`Sim::step`].
pub struct Peer<'a> {
    pub(super) node: &'a mut Node,
    pub(super) now: Instant,
}

impl Peer<'_> {
    /// Next event from this side's queue.
    pub fn poll_event(&mut self) -> Option<NetEvent> {
        self.node.events.pop_front()
    }

    /// The connection, for anything this API does not cover (stats, rtt, transport tweaks).
    pub fn connection(&mut self) -> Option<&mut Connection> {
        self.node.conn.as_mut().map(|(_, c)| c)
    }

    pub fn is_connected(&mut self) -> bool {
        self.connection().is_some_and(|c| !c.is_handshaking() && !c.is_closed())
    }

    /// Opens a stream; `None` at the peer's MAX_STREAMS limit (wait for `Available`) or with no connection.
    pub fn open(&mut self, dir: Dir) -> Option<StreamId> {
        self.connection()?.streams().open(dir)
    }

    /// Writes as much of `chunks` as the transport accepts and returns the byte count. Fully written chunks
    /// are left empty and a partly written one is advanced past what was taken. `Err(Blocked)` if nothing fit.
    pub fn write_chunks(&mut self, id: StreamId, chunks: &mut [Bytes]) -> Result<usize, StreamError> {
        let written = self.send_side(id)?.send_stream(id).write_chunks(chunks).map_err(write_error)?;
        Ok(written.bytes)
    }

    /// Ends the stream after the data written so far.
    pub fn finish(&mut self, id: StreamId) -> Result<(), StreamError> {
        self.send_side(id)?.send_stream(id).finish().map_err(|e| match e {
            FinishError::Stopped(code) => StreamError::Stopped(code.into()),
            FinishError::ClosedStream => StreamError::Closed,
        })
    }

    /// Abandons sending (RESET_STREAM with `code`).
    pub fn reset(&mut self, id: StreamId, code: u64) -> Result<(), StreamError> {
        self.send_side(id)?.send_stream(id).reset(varint(code)).map_err(closed)
    }

    /// Asks the peer to stop sending (STOP_SENDING with `code`) and discards unread data.
    pub fn stop_sending(&mut self, id: StreamId, code: u64) -> Result<(), StreamError> {
        self.recv_side(id)?.recv_stream(id).stop(varint(code)).map_err(closed)
    }

    pub fn set_priority(&mut self, id: StreamId, priority: i32) -> Result<(), StreamError> {
        self.send_side(id)?.send_stream(id).set_priority(priority).map_err(closed)
    }

    /// Sends an unreliable datagram (`drop`s the oldest queued one rather than blocking).
    pub fn send_datagram(&mut self, data: Bytes) -> Result<(), SendDatagramError> {
        let conn = self.connection().ok_or(SendDatagramError::Disabled)?;
        conn.datagrams().send(data, true)
    }

    /// Reads at most one chunk of at most `max` bytes, in order: `Ok((Some(chunk), false))`,
    /// `Ok((None, true))` at the end of the stream, `Err(Blocked)` when nothing is available yet,
    /// `Err(Reset(code))` if the peer reset.
    pub fn read_chunk(&mut self, id: StreamId, max: usize) -> Result<(Option<Bytes>, bool), StreamError> {
        let conn = self.recv_side(id)?;
        let mut recv = conn.recv_stream(id);
        let mut chunks = recv.read(true).map_err(|_| StreamError::Closed)?;
        let out = match chunks.next(max.max(1)) {
            Ok(Some(chunk)) => Ok((Some(chunk.bytes), false)),
            Ok(None) => Ok((None, true)),
            Err(ReadError::Blocked) => Err(StreamError::Blocked),
            Err(ReadError::Reset(code)) => Err(StreamError::Reset(code.into())),
        };
        let _ = chunks.finalize(); // releases flow-control credit; the next step transmits it
        out
    }

    /// Reads up to `max` bytes in order. `fin` is set once the end of the stream was reached (after the
    /// returned chunks). `Err(Blocked)` when nothing is available yet, `Err(Reset(code))` if the peer reset.
    pub fn read(&mut self, id: StreamId, max: usize) -> Result<Received, StreamError> {
        let conn = self.recv_side(id)?;
        let mut recv = conn.recv_stream(id);
        let mut chunks = recv.read(true).map_err(|e| match e {
            ReadableError::ClosedStream => StreamError::Closed,
            ReadableError::IllegalOrderedRead => StreamError::Closed,
        })?;
        let mut out = Received::default();
        let mut left = max;
        let mut error = None;
        while left > 0 {
            match chunks.next(left) {
                Ok(Some(chunk)) => {
                    left -= chunk.bytes.len();
                    out.chunks.push(chunk.bytes);
                }
                Ok(None) => {
                    out.fin = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    error = Some(StreamError::Reset(code.into()));
                    break;
                }
            }
        }
        let _ = chunks.finalize(); // releases flow-control credit; the next step transmits it
        match error {
            Some(e) => Err(e),
            None if out.chunks.is_empty() && !out.fin => Err(StreamError::Blocked),
            None => Ok(out),
        }
    }

    /// Closes the connection with an application error code.
    pub fn close(&mut self, code: u64, reason: &[u8]) {
        let now = self.now;
        if let Some(conn) = self.connection() {
            conn.close(now, varint(code), Bytes::copy_from_slice(reason));
        }
    }

    /// The connection, if `id` can be sent on from this side (quinn-proto panics otherwise).
    fn send_side(&mut self, id: StreamId) -> Result<&mut Connection, StreamError> {
        let local = self.local_side();
        let conn = self.connection().ok_or(StreamError::NoConnection)?;
        match id.dir() == Dir::Bi || id.initiator() == local {
            true => Ok(conn),
            false => Err(StreamError::WrongDirection),
        }
    }

    /// The connection, if `id` can be received on from this side (quinn-proto panics otherwise).
    fn recv_side(&mut self, id: StreamId) -> Result<&mut Connection, StreamError> {
        let local = self.local_side();
        let conn = self.connection().ok_or(StreamError::NoConnection)?;
        match id.dir() == Dir::Bi || id.initiator() != local {
            true => Ok(conn),
            false => Err(StreamError::WrongDirection),
        }
    }

    fn local_side(&self) -> quinn_proto::Side {
        match self.node.side {
            Side::Client => quinn_proto::Side::Client,
            Side::Server => quinn_proto::Side::Server,
        }
    }
}

fn varint(code: u64) -> VarInt {
    VarInt::from_u64(code).expect("error code above 2^62")
}

fn closed(_: ClosedStream) -> StreamError {
    StreamError::Closed
}

fn write_error(e: WriteError) -> StreamError {
    match e {
        WriteError::Blocked => StreamError::Blocked,
        WriteError::Stopped(code) => StreamError::Stopped(code.into()),
        WriteError::ClosedStream => StreamError::Closed,
    }
}
