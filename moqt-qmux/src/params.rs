//! Transport parameters (RFC 9000 §18 layout) as QMux carries them in QX_TRANSPORT_PARAMETERS.
//!
//! Each parameter is `id (i) | length (i) | value`. Integer parameters hold exactly one varint.
//! Encoding follows moq-dev's peers: ids in ascending order of the QUIC ones, then
//! `max_record_size`, then the empty `reset_stream_at` flag; parameters whose value is 0 are
//! left out (0 is every QUIC default).

use bytes::{Buf, BufMut, Bytes};

use crate::error::{TransportError, TransportErrorCode};
use crate::stream_id::MAX_STREAM_COUNT;
use crate::varint;

/// `max_idle_timeout` (milliseconds).
pub const ID_MAX_IDLE_TIMEOUT: u64 = 0x01;
/// `initial_max_data`.
pub const ID_INITIAL_MAX_DATA: u64 = 0x04;
/// `initial_max_stream_data_bidi_local`.
pub const ID_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: u64 = 0x05;
/// `initial_max_stream_data_bidi_remote`.
pub const ID_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: u64 = 0x06;
/// `initial_max_stream_data_uni`.
pub const ID_INITIAL_MAX_STREAM_DATA_UNI: u64 = 0x07;
/// `initial_max_streams_bidi`.
pub const ID_INITIAL_MAX_STREAMS_BIDI: u64 = 0x08;
/// `initial_max_streams_uni`.
pub const ID_INITIAL_MAX_STREAMS_UNI: u64 = 0x09;
/// `reset_stream_at` (draft-ietf-quic-reliable-stream-reset): empty value, presence = support.
pub const ID_RESET_STREAM_AT: u64 = 0x1d;
/// `max_datagram_frame_size` (RFC 9221); 0 or absent = no datagrams.
pub const ID_MAX_DATAGRAM_FRAME_SIZE: u64 = 0x20;
/// `max_record_size` (QMux).
pub const ID_MAX_RECORD_SIZE: u64 = 0x0571_c594_29cd_0845;
/// `application_protocols` (moq-dev's in-band ALPN for transports without one). Not used on
/// WebSocket; receiving it is an error, as it is for moq-dev's peers there.
pub const ID_APPLICATION_PROTOCOLS: u64 = 0x3d4f_9c2a_8b1e_6075;

/// The default (and minimum) `max_record_size`: 16382.
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 16382;

/// The QMux transport parameters this crate understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportParams {
    /// `max_idle_timeout` in milliseconds (0 = none).
    pub max_idle_timeout: u64,
    /// `initial_max_data`.
    pub initial_max_data: u64,
    /// `initial_max_stream_data_bidi_local`.
    pub initial_max_stream_data_bidi_local: u64,
    /// `initial_max_stream_data_bidi_remote`.
    pub initial_max_stream_data_bidi_remote: u64,
    /// `initial_max_stream_data_uni`.
    pub initial_max_stream_data_uni: u64,
    /// `initial_max_streams_bidi`.
    pub initial_max_streams_bidi: u64,
    /// `initial_max_streams_uni`.
    pub initial_max_streams_uni: u64,
    /// `max_datagram_frame_size` (0 = no datagrams).
    pub max_datagram_frame_size: u64,
    /// `max_record_size` (defaults to 16382 when absent).
    pub max_record_size: u64,
    /// `reset_stream_at` present.
    pub reset_stream_at: bool,
}

impl Default for TransportParams {
    /// The values that apply when a parameter is absent.
    fn default() -> Self {
        Self {
            max_idle_timeout: 0,
            initial_max_data: 0,
            initial_max_stream_data_bidi_local: 0,
            initial_max_stream_data_bidi_remote: 0,
            initial_max_stream_data_uni: 0,
            initial_max_streams_bidi: 0,
            initial_max_streams_uni: 0,
            max_datagram_frame_size: 0,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            reset_stream_at: false,
        }
    }
}

fn param_error(reason: &'static str) -> TransportError {
    TransportError::new(TransportErrorCode::TRANSPORT_PARAMETER_ERROR, reason)
}

impl TransportParams {
    /// The integer parameters in wire order, with their ids.
    fn integers(&self) -> [(u64, u64); 9] {
        [
            (ID_MAX_IDLE_TIMEOUT, self.max_idle_timeout),
            (ID_INITIAL_MAX_DATA, self.initial_max_data),
            (ID_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL, self.initial_max_stream_data_bidi_local),
            (ID_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE, self.initial_max_stream_data_bidi_remote),
            (ID_INITIAL_MAX_STREAM_DATA_UNI, self.initial_max_stream_data_uni),
            (ID_INITIAL_MAX_STREAMS_BIDI, self.initial_max_streams_bidi),
            (ID_INITIAL_MAX_STREAMS_UNI, self.initial_max_streams_uni),
            (ID_MAX_DATAGRAM_FRAME_SIZE, self.max_datagram_frame_size),
            (ID_MAX_RECORD_SIZE, self.max_record_size),
        ]
    }

    /// The encoded length of [`Self::encode`].
    pub fn encoded_len(&self) -> usize {
        let ints: usize = self
            .integers()
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|&(id, v)| {
                let v = v.min(varint::MAX);
                varint::len(id) + 1 + varint::len(v)
            })
            .sum();
        ints + if self.reset_stream_at { 2 } else { 0 }
    }

    /// Appends the parameter list (without the frame's type and length).
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        for (id, value) in self.integers() {
            if value == 0 {
                continue;
            }
            let value = value.min(varint::MAX);
            varint::put(buf, id);
            varint::put(buf, varint::len(value) as u64);
            varint::put(buf, value);
        }
        if self.reset_stream_at {
            varint::put(buf, ID_RESET_STREAM_AT);
            varint::put(buf, 0);
        }
    }

    /// Decodes a parameter list. Errors are TRANSPORT_PARAMETER_ERROR: a truncated list, a
    /// repeated known parameter, a value that is not exactly one varint, a QUIC v1 parameter
    /// QMux forbids, `application_protocols`, or a stream count above 2^60. Unknown ids are
    /// skipped.
    pub fn decode(mut buf: Bytes) -> Result<Self, TransportError> {
        let mut params = Self::default();
        // Bit i set = the i-th known parameter was seen (duplicates are an error).
        let mut seen: u16 = 0;
        while buf.has_remaining() {
            let id = varint::read(&mut buf).map_err(|_| param_error("truncated transport parameter"))?;
            let len = varint::read(&mut buf).map_err(|_| param_error("truncated transport parameter"))?;
            if len > buf.len() as u64 {
                return Err(param_error("transport parameter longer than the frame"));
            }
            let mut value = buf.split_to(len as usize);
            let slot = match id {
                ID_MAX_IDLE_TIMEOUT => 0,
                ID_INITIAL_MAX_DATA..=ID_INITIAL_MAX_STREAMS_UNI => 1 + (id - ID_INITIAL_MAX_DATA) as u16,
                ID_MAX_DATAGRAM_FRAME_SIZE => 7,
                ID_MAX_RECORD_SIZE => 8,
                ID_RESET_STREAM_AT => 9,
                ID_APPLICATION_PROTOCOLS => {
                    return Err(param_error("application_protocols is not used over WebSocket"));
                }
                0x00 | 0x02 | 0x03 | 0x0a..=0x10 => {
                    return Err(param_error("QUIC v1 transport parameter forbidden by QMux"))
                }
                _ => continue,
            };
            if seen & (1 << slot) != 0 {
                return Err(param_error("duplicate transport parameter"));
            }
            seen |= 1 << slot;
            if id == ID_RESET_STREAM_AT {
                if !value.is_empty() {
                    return Err(param_error("reset_stream_at must be empty"));
                }
                params.reset_stream_at = true;
                continue;
            }
            let v = varint::read(&mut value).map_err(|_| param_error("transport parameter value is not a varint"))?;
            if !value.is_empty() {
                return Err(param_error("trailing bytes in a transport parameter"));
            }
            match id {
                ID_MAX_IDLE_TIMEOUT => params.max_idle_timeout = v,
                ID_INITIAL_MAX_DATA => params.initial_max_data = v,
                ID_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL => params.initial_max_stream_data_bidi_local = v,
                ID_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE => params.initial_max_stream_data_bidi_remote = v,
                ID_INITIAL_MAX_STREAM_DATA_UNI => params.initial_max_stream_data_uni = v,
                ID_INITIAL_MAX_STREAMS_BIDI | ID_INITIAL_MAX_STREAMS_UNI if v > MAX_STREAM_COUNT => {
                    return Err(param_error("initial_max_streams above 2^60"));
                }
                ID_INITIAL_MAX_STREAMS_BIDI => params.initial_max_streams_bidi = v,
                ID_INITIAL_MAX_STREAMS_UNI => params.initial_max_streams_uni = v,
                ID_MAX_DATAGRAM_FRAME_SIZE => params.max_datagram_frame_size = v,
                _ => params.max_record_size = v,
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_hex(hex: &str) -> Result<TransportParams, TransportError> {
        TransportParams::decode(Bytes::from(hex::decode(hex).unwrap()))
    }

    #[test]
    fn defaults_when_empty() {
        assert_eq!(decode_hex("").unwrap(), TransportParams::default());
        let mut out = Vec::new();
        TransportParams::default().encode(&mut out);
        // Only max_record_size (never 0) is written.
        assert_eq!(hex::encode(&out), "c571c59429cd0845027ffe");
    }

    #[test]
    fn errors() {
        // Duplicate initial_max_data.
        assert!(decode_hex("040101040101").is_err());
        // Forbidden ack_delay_exponent (0x0a).
        assert!(decode_hex("0a0103").is_err());
        // Value longer than one varint.
        assert!(decode_hex("04020101").is_err());
        // Truncated value.
        assert!(decode_hex("0402").is_err());
        // reset_stream_at with a value.
        assert!(decode_hex("1d0100").is_err());
        // Stream count above 2^60.
        assert!(decode_hex("0808d000000000000001").is_err());
        // application_protocols.
        assert!(decode_hex("fd4f9c2a8b1e607500").is_err());
        // A value byte 0xff announces an 8-byte varint: truncated.
        let e = decode_hex("0401ff").unwrap_err();
        assert_eq!(e.code, TransportErrorCode::TRANSPORT_PARAMETER_ERROR);
        // Unknown ids are skipped, even repeated.
        let p = decode_hex("2101aa2101bb040125").unwrap();
        assert_eq!(p.initial_max_data, 0x25);
    }
}
