//! Stream types and the per-stream decoder: which messages may appear, in which order, on each
//! direction of each stream type, for each version. Feed it transport chunks with
//! [`StreamDecoder::push`], pull messages with [`StreamDecoder::next`], and call
//! [`StreamDecoder::finish`] on FIN.

use bytes::{Bytes, BytesMut};

use crate::coding::{put_varint, DecodeError, Reader, RecvBuf};
use crate::message::{
    Announce, AnnounceEnd, AnnounceOk, AnnounceRequest, AnnounceRestart, AnnounceStart, Codec, Fetch, FrameHeader,
    Goaway, GroupHeader, Message, Probe, Setup, Subscribe, SubscribeResponse, SubscribeUpdate, Track, TrackInfo,
};
use crate::version::Version;

/// The stream types of lite-03 to lite-06.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// Bidi 0x1: announcements for a prefix.
    Announce,
    /// Bidi 0x2: one subscription.
    Subscribe,
    /// Bidi 0x3: one past group.
    Fetch,
    /// Bidi 0x4: bandwidth probing.
    Probe,
    /// Bidi 0x5 (lite-04+): shutdown notice.
    Goaway,
    /// Bidi 0x6 (lite-05+): track properties.
    Track,
    /// Uni 0x0: one group of frames.
    Group,
    /// Uni 0x1 (lite-05+): SETUP.
    Setup,
}

impl StreamType {
    /// Whether the stream is unidirectional.
    pub const fn is_uni(self) -> bool {
        matches!(self, StreamType::Group | StreamType::Setup)
    }

    /// The stream type code written first on the stream.
    pub const fn code(self) -> u64 {
        match self {
            StreamType::Announce => 0x1,
            StreamType::Subscribe => 0x2,
            StreamType::Fetch => 0x3,
            StreamType::Probe => 0x4,
            StreamType::Goaway => 0x5,
            StreamType::Track => 0x6,
            StreamType::Group => 0x0,
            StreamType::Setup => 0x1,
        }
    }

    /// Whether `version` defines this stream type.
    pub const fn exists_in(self, version: Version) -> bool {
        match self {
            StreamType::Goaway => version.has_goaway(),
            StreamType::Track | StreamType::Setup => version.has_setup(),
            _ => true,
        }
    }

    /// Looks up a code for a uni or bidi stream in `version`.
    pub fn from_code(code: u64, uni: bool, version: Version) -> Result<Self, DecodeError> {
        let ty = match (code, uni) {
            (0x0, true) => StreamType::Group,
            (0x1, true) => StreamType::Setup,
            (0x1, false) => StreamType::Announce,
            (0x2, false) => StreamType::Subscribe,
            (0x3, false) => StreamType::Fetch,
            (0x4, false) => StreamType::Probe,
            (0x5, false) => StreamType::Goaway,
            (0x6, false) => StreamType::Track,
            _ => return Err(DecodeError::UnknownStreamType(code)),
        };
        if ty.exists_in(version) {
            Ok(ty)
        } else {
            Err(DecodeError::UnknownStreamType(code))
        }
    }

    /// Parses a name as used by `moqt wire decode` (`announce`, `subscribe`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "announce" => StreamType::Announce,
            "subscribe" => StreamType::Subscribe,
            "fetch" => StreamType::Fetch,
            "probe" => StreamType::Probe,
            "goaway" => StreamType::Goaway,
            "track" => StreamType::Track,
            "group" => StreamType::Group,
            "setup" => StreamType::Setup,
            _ => return None,
        })
    }

    /// Appends the stream type code.
    pub fn encode(self, buf: &mut BytesMut) {
        put_varint(buf, self.code());
    }
}

/// A frame read from a group stream or a fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Absolute timestamp in the track timescale (lite-05+), rebuilt from the deltas.
    pub timestamp: Option<u64>,
    /// The payload: a slice of the received chunk when it arrived in one piece.
    pub payload: Bytes,
}

/// One decoded item of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    /// The stream type (the first thing on an opener's stream).
    Type(StreamType),
    /// SETUP.
    Setup(Setup),
    /// ANNOUNCE_PLEASE / ANNOUNCE_REQUEST.
    AnnounceRequest(AnnounceRequest),
    /// ANNOUNCE_OK.
    AnnounceOk(AnnounceOk),
    /// lite-03 to 05 ANNOUNCE.
    Announce(Announce),
    /// lite-06 ANNOUNCE_START.
    AnnounceStart(AnnounceStart),
    /// lite-06 ANNOUNCE_END.
    AnnounceEnd(AnnounceEnd),
    /// lite-06 ANNOUNCE_RESTART.
    AnnounceRestart(AnnounceRestart),
    /// A lite-06 announce message of unknown type (skipped by length).
    AnnounceUnknown(u64),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBSCRIBE_UPDATE.
    SubscribeUpdate(SubscribeUpdate),
    /// A subscribe response.
    SubscribeResponse(SubscribeResponse),
    /// TRACK.
    Track(Track),
    /// TRACK_INFO.
    TrackInfo(TrackInfo),
    /// FETCH.
    Fetch(Fetch),
    /// PROBE.
    Probe(Probe),
    /// GOAWAY.
    Goaway(Goaway),
    /// GROUP header.
    Group(GroupHeader),
    /// FRAME.
    Frame(Frame),
}

/// Which direction of a stream is being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Bytes written by the endpoint that opened the stream (they start with the stream type).
    Opener,
    /// Bytes written back by the endpoint that accepted the stream (bidi only).
    Responder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Type {
        uni: bool,
    },
    Setup,
    AnnounceRequest,
    AnnounceOk,
    Announcements,
    Subscribe,
    SubscribeUpdates,
    SubscribeResponses,
    Fetch,
    Frames,
    Probes,
    Goaway,
    Track,
    TrackInfo,
    GroupHeader,
    /// Nothing more may arrive on this direction.
    Done,
}

/// Decodes one direction of one stream, incrementally.
#[derive(Debug)]
pub struct StreamDecoder {
    codec: Codec,
    buf: RecvBuf,
    state: State,
    timestamp: u64,
}

impl StreamDecoder {
    /// Decodes the opener's direction of a uni (`uni = true`) or bidi stream, type first.
    pub fn opener(codec: Codec, uni: bool) -> Self {
        Self { codec, buf: RecvBuf::new(), state: State::Type { uni }, timestamp: 0 }
    }

    /// Decodes the opener's direction of a stream whose type was already read.
    pub fn opener_after_type(codec: Codec, ty: StreamType) -> Self {
        let mut d = Self::opener(codec, ty.is_uni());
        d.state = Self::opener_state(ty);
        d
    }

    /// Decodes the responder's direction of a bidi stream of type `ty`.
    pub fn responder(codec: Codec, ty: StreamType) -> Self {
        let state = match ty {
            StreamType::Announce if codec.version.has_announce_ok() => State::AnnounceOk,
            StreamType::Announce => State::Announcements,
            StreamType::Subscribe => State::SubscribeResponses,
            StreamType::Fetch => State::Frames,
            StreamType::Probe => State::Probes,
            StreamType::Track => State::TrackInfo,
            StreamType::Goaway | StreamType::Group | StreamType::Setup => State::Done,
        };
        Self { codec, buf: RecvBuf::new(), state, timestamp: 0 }
    }

    fn opener_state(ty: StreamType) -> State {
        match ty {
            StreamType::Announce => State::AnnounceRequest,
            StreamType::Subscribe => State::Subscribe,
            StreamType::Fetch => State::Fetch,
            StreamType::Probe => State::Probes,
            StreamType::Goaway => State::Goaway,
            StreamType::Track => State::Track,
            StreamType::Group => State::GroupHeader,
            StreamType::Setup => State::Setup,
        }
    }

    /// The codec in use.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Appends received stream data.
    pub fn push(&mut self, data: Bytes) {
        self.buf.push(data);
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the decoder is between frames of a group or fetch response.
    pub fn in_frames(&self) -> bool {
        self.state == State::Frames
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next(&mut self) -> Result<Option<StreamMessage>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let strict = self.codec.limits.strict_varints;
        let max = self.codec.limits.max_message_size;
        let codec = self.codec;
        match self.state {
            State::Type { uni } => {
                let Some((code, n)) = self.buf.peek_varint(0, strict)? else {
                    return Ok(None);
                };
                let ty = StreamType::from_code(code, uni, codec.version)?;
                self.buf.skip(n);
                self.state = Self::opener_state(ty);
                Ok(Some(StreamMessage::Type(ty)))
            }
            State::Frames => self.next_frame(),
            State::Announcements if codec.version.has_typed_announce() => {
                let Some((kind, body)) = self.buf.take_typed(max, strict)? else {
                    return Ok(None);
                };
                Ok(Some(match kind {
                    crate::message::announce_kind::START => {
                        StreamMessage::AnnounceStart(AnnounceStart::decode(&body, &codec)?)
                    }
                    crate::message::announce_kind::END => {
                        StreamMessage::AnnounceEnd(AnnounceEnd::decode(&body, &codec)?)
                    }
                    crate::message::announce_kind::RESTART => {
                        StreamMessage::AnnounceRestart(AnnounceRestart::decode(&body, &codec)?)
                    }
                    other => StreamMessage::AnnounceUnknown(other),
                }))
            }
            State::SubscribeResponses => {
                let Some((kind, body)) = self.buf.take_typed(max, strict)? else {
                    return Ok(None);
                };
                Ok(Some(StreamMessage::SubscribeResponse(SubscribeResponse::decode(kind, &body, &codec)?)))
            }
            State::Done => Err(DecodeError::UnexpectedData),
            state => {
                let Some(body) = self.buf.take_msg(max, strict)? else {
                    return Ok(None);
                };
                let (msg, next) = match state {
                    State::Setup => (StreamMessage::Setup(Setup::decode(&body, &codec)?), State::Done),
                    State::AnnounceRequest => {
                        (StreamMessage::AnnounceRequest(AnnounceRequest::decode(&body, &codec)?), State::Done)
                    }
                    State::AnnounceOk => {
                        (StreamMessage::AnnounceOk(AnnounceOk::decode(&body, &codec)?), State::Announcements)
                    }
                    State::Announcements => {
                        (StreamMessage::Announce(Announce::decode(&body, &codec)?), State::Announcements)
                    }
                    State::Subscribe => {
                        (StreamMessage::Subscribe(Subscribe::decode(&body, &codec)?), State::SubscribeUpdates)
                    }
                    State::SubscribeUpdates => (
                        StreamMessage::SubscribeUpdate(SubscribeUpdate::decode(&body, &codec)?),
                        State::SubscribeUpdates,
                    ),
                    State::Fetch => (StreamMessage::Fetch(Fetch::decode(&body, &codec)?), State::Done),
                    State::Probes => (StreamMessage::Probe(Probe::decode(&body, &codec)?), State::Probes),
                    State::Goaway => (StreamMessage::Goaway(Goaway::decode(&body, &codec)?), State::Done),
                    State::Track => (StreamMessage::Track(Track::decode(&body, &codec)?), State::Done),
                    State::TrackInfo => (StreamMessage::TrackInfo(TrackInfo::decode(&body, &codec)?), State::Done),
                    State::GroupHeader => (StreamMessage::Group(GroupHeader::decode(&body, &codec)?), State::Frames),
                    State::Type { .. } | State::Frames | State::SubscribeResponses | State::Done => {
                        unreachable!("handled above")
                    }
                };
                self.state = next;
                Ok(Some(msg))
            }
        }
    }

    fn next_frame(&mut self) -> Result<Option<StreamMessage>, DecodeError> {
        let strict = self.codec.limits.strict_varints;
        let (delta, head) = if self.codec.version.has_frame_timestamps() {
            let Some((zz, n)) = self.buf.peek_varint(0, strict)? else {
                return Ok(None);
            };
            (Some(crate::coding::zigzag_decode(zz)), n)
        } else {
            (None, 0)
        };
        let Some((size, n)) = self.buf.peek_varint(head, strict)? else {
            return Ok(None);
        };
        if size > self.codec.limits.max_frame_size {
            return Err(DecodeError::FrameTooLarge(size));
        }
        let size = size as usize;
        if self.buf.len() < head + n + size {
            return Ok(None);
        }
        let timestamp = match delta {
            Some(delta) => {
                let ts = i128::from(self.timestamp) + i128::from(delta);
                if !(0..=i128::from(crate::coding::MAX_VARINT)).contains(&ts) {
                    return Err(DecodeError::TimestampOutOfRange);
                }
                self.timestamp = ts as u64;
                Some(self.timestamp)
            }
            None => None,
        };
        self.buf.skip(head + n);
        Ok(Some(StreamMessage::Frame(Frame { timestamp, payload: self.buf.take(size) })))
    }

    /// Declares the end of the stream (FIN): fails if a message was cut off.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::FinMidMessage)
        }
    }

    /// The size of the next frame payload if its header is complete (for receive-credit decisions).
    pub fn pending_frame_size(&self) -> Option<u64> {
        if self.state != State::Frames {
            return None;
        }
        let head = if self.codec.version.has_frame_timestamps() {
            self.buf.peek_varint(0, false).ok().flatten()?.1
        } else {
            0
        };
        self.buf.peek_varint(head, false).ok().flatten().map(|(size, _)| size)
    }
}

/// Encodes stream messages, tracking the frame timestamp baseline of one stream direction.
#[derive(Debug)]
pub struct StreamEncoder {
    codec: Codec,
    timestamp: u64,
}

impl StreamEncoder {
    /// An encoder for one stream direction.
    pub fn new(codec: Codec) -> Self {
        Self { codec, timestamp: 0 }
    }

    /// Appends the frame header for a frame at `timestamp` with a payload of `size` bytes.
    pub fn frame_header(&mut self, timestamp: u64, size: usize, buf: &mut BytesMut) {
        let delta = timestamp as i64 - self.timestamp as i64;
        self.timestamp = timestamp;
        FrameHeader { timestamp_delta: delta, size: size as u64 }.encode(&self.codec, buf);
    }

    /// Appends one message; a frame's payload is copied in (use [`StreamEncoder::frame_header`]
    /// to keep payloads as separate chunks).
    pub fn encode(&mut self, msg: &StreamMessage, buf: &mut BytesMut) {
        let codec = &self.codec;
        match msg {
            StreamMessage::Type(ty) => ty.encode(buf),
            StreamMessage::Setup(m) => m.encode(codec, buf),
            StreamMessage::AnnounceRequest(m) => m.encode(codec, buf),
            StreamMessage::AnnounceOk(m) => m.encode(codec, buf),
            StreamMessage::Announce(m) => m.encode(codec, buf),
            StreamMessage::AnnounceStart(m) => m.encode(codec, buf),
            StreamMessage::AnnounceEnd(m) => m.encode(codec, buf),
            StreamMessage::AnnounceRestart(m) => m.encode(codec, buf),
            StreamMessage::AnnounceUnknown(kind) => crate::message::encode_unknown_announce(buf, *kind, &[]),
            StreamMessage::Subscribe(m) => m.encode(codec, buf),
            StreamMessage::SubscribeUpdate(m) => m.encode(codec, buf),
            StreamMessage::SubscribeResponse(m) => m.encode(codec, buf),
            StreamMessage::Track(m) => m.encode(codec, buf),
            StreamMessage::TrackInfo(m) => m.encode(codec, buf),
            StreamMessage::Fetch(m) => m.encode(codec, buf),
            StreamMessage::Probe(m) => m.encode(codec, buf),
            StreamMessage::Goaway(m) => m.encode(codec, buf),
            StreamMessage::Group(m) => m.encode(codec, buf),
            StreamMessage::Frame(f) => {
                self.frame_header(f.timestamp.unwrap_or(0), f.payload.len(), buf);
                buf.extend_from_slice(&f.payload);
            }
        }
    }
}

/// Decodes a whole byte string as one stream direction: every message, then FIN.
pub fn decode_all(mut decoder: StreamDecoder, data: Bytes) -> Result<Vec<StreamMessage>, DecodeError> {
    decoder.push(data);
    let mut out = Vec::new();
    while let Some(msg) = decoder.next()? {
        out.push(msg);
    }
    decoder.finish()?;
    Ok(out)
}

/// Decodes the body of a message read with a [`Reader`] (helper for fuzzing single messages).
pub fn decode_one<M: Message>(body: &[u8], codec: &Codec) -> Result<M, DecodeError> {
    let mut r = Reader::new(body, &codec.limits);
    let m = M::decode_body(&mut r, codec)?;
    r.finish()?;
    Ok(m)
}
