//! `moqt wire decode`: decode the bytes of one stream direction and print one JSON object per
//! message. A debugging tool for packet captures.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use moqt_proto::message::{AnnounceStatus, Hops, SubscribeResponse};
use moqt_proto::stream::{Side, StreamDecoder, StreamMessage, StreamType};
use moqt_proto::{Codec, Dialect, Version};
use serde_json::{json, Value};

/// Decodes `hex` (whitespace, `:` and `|` ignored) and returns the JSON lines.
pub fn decode(version: Version, dialect: Dialect, responder: Option<&str>, hex_text: &str) -> Result<Vec<String>> {
    let cleaned: String = hex_text.chars().filter(|c| !c.is_whitespace() && *c != ':' && *c != '|').collect();
    let bytes = hex::decode(&cleaned).context("input is not valid hex")?;
    let codec = Codec::new(version).with_dialect(dialect);
    let (mut decoder, side) = match responder {
        None => {
            // A stream starts with its type; uni type codes overlap bidi ones, so try bidi first
            // unless the first byte is only meaningful on a uni stream (0x00 = group).
            let uni = bytes.first() == Some(&0x00);
            (StreamDecoder::opener(codec, uni), Side::Opener)
        }
        Some(name) => {
            let ty = StreamType::from_name(name).with_context(|| {
                format!("unknown stream type {name:?} (announce, subscribe, fetch, probe, goaway, track)")
            })?;
            if ty.is_uni() {
                bail!("{name} streams are unidirectional: they have no responder side");
            }
            if !ty.exists_in(version) {
                bail!("{name} streams do not exist in {version}");
            }
            (StreamDecoder::responder(codec, ty), Side::Responder)
        }
    };
    decoder.push(Bytes::from(bytes));
    let mut out = Vec::new();
    loop {
        match decoder.next() {
            Ok(Some(msg)) => out.push(to_json(&msg).to_string()),
            Ok(None) => break,
            Err(e) => bail!("{side:?} stream, message {}: {e}", out.len() + 1),
        }
    }
    decoder.finish().map_err(|e| anyhow::anyhow!("{side:?} stream ends mid-message: {e}"))?;
    Ok(out)
}

fn hops(h: &Hops) -> Value {
    json!(h.as_slice())
}

fn opt(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |v| json!(v))
}

/// One message as JSON: `{"type": "...", fields...}`.
pub fn to_json(msg: &StreamMessage) -> Value {
    match msg {
        StreamMessage::Type(t) => {
            json!({"type": "STREAM_TYPE", "stream": format!("{t:?}").to_lowercase(), "code": t.code()})
        }
        StreamMessage::Setup(s) => json!({
            "type": "SETUP",
            "probe": s.probe.map(|p| format!("{p:?}").to_lowercase()),
            "path": s.path, "role": s.role.map(|r| format!("{r:?}").to_lowercase()),
            "cost": s.cost, "hop": s.hop,
        }),
        StreamMessage::AnnounceRequest(r) => {
            json!({"type": "ANNOUNCE_REQUEST", "prefix": r.prefix.as_str(), "exclude_hop": r.exclude_hop})
        }
        StreamMessage::AnnounceOk(o) => {
            json!({"type": "ANNOUNCE_OK", "hop_id": o.hop_id, "active_count": o.active_count})
        }
        StreamMessage::Announce(a) => json!({
            "type": "ANNOUNCE",
            "status": match a.status { AnnounceStatus::Active => "active", AnnounceStatus::Ended => "ended", AnnounceStatus::Restart => "restart" },
            "suffix": a.suffix.as_str(), "hops": hops(&a.hops),
        }),
        StreamMessage::AnnounceStart(s) => {
            json!({"type": "ANNOUNCE_START", "suffix": s.suffix.as_str(), "hops": hops(&s.hops), "cost_warm": s.cost.warm, "cost_cold": s.cost.cold})
        }
        StreamMessage::AnnounceEnd(e) => json!({"type": "ANNOUNCE_END", "id": e.id}),
        StreamMessage::AnnounceRestart(r) => {
            json!({"type": "ANNOUNCE_RESTART", "id": r.id, "hops": hops(&r.hops), "cost_warm": r.cost.warm, "cost_cold": r.cost.cold})
        }
        StreamMessage::AnnounceUnknown(t) => json!({"type": "ANNOUNCE_UNKNOWN", "message_type": t}),
        StreamMessage::Subscribe(s) => json!({
            "type": "SUBSCRIBE", "id": s.id, "path": s.path.as_str(), "track": s.track, "priority": s.priority,
            "ordered": s.ordered, "max_latency_ms": s.max_latency, "start_group": opt(s.start_group), "end_group": opt(s.end_group),
            "start_frame": s.start_frame, "end_frame": opt(s.end_frame),
        }),
        StreamMessage::SubscribeUpdate(s) => json!({
            "type": "SUBSCRIBE_UPDATE", "priority": s.priority, "ordered": s.ordered, "max_latency_ms": s.max_latency,
            "start_group": opt(s.start_group), "end_group": opt(s.end_group), "start_frame": s.start_frame, "end_frame": opt(s.end_frame),
        }),
        StreamMessage::SubscribeResponse(r) => match r {
            SubscribeResponse::Ok(o) => json!({
                "type": "SUBSCRIBE_OK", "priority": o.priority, "ordered": o.ordered, "max_latency_ms": o.max_latency,
                "start_group": opt(o.start_group), "end_group": opt(o.end_group),
            }),
            SubscribeResponse::Start(g) => json!({"type": "SUBSCRIBE_START", "group": g}),
            SubscribeResponse::End(g) => json!({"type": "SUBSCRIBE_END", "group": g}),
            SubscribeResponse::Drop(d) => {
                json!({"type": "SUBSCRIBE_DROP", "start": d.start, "end": d.end, "error": d.error})
            }
        },
        StreamMessage::Track(t) => json!({"type": "TRACK", "path": t.path.as_str(), "track": t.track}),
        StreamMessage::TrackInfo(i) => {
            json!({"type": "TRACK_INFO", "priority": i.priority, "ordered": i.ordered, "max_latency_ms": i.max_latency, "timescale": i.timescale})
        }
        StreamMessage::Fetch(f) => {
            json!({"type": "FETCH", "path": f.path.as_str(), "track": f.track, "priority": f.priority, "group": f.group, "start_frame": f.start_frame, "end_frame": opt(f.end_frame)})
        }
        StreamMessage::Probe(p) => json!({"type": "PROBE", "bitrate": p.bitrate, "rtt_ms": p.rtt_ms}),
        StreamMessage::Goaway(g) => json!({"type": "GOAWAY", "uri": g.uri}),
        StreamMessage::Group(g) => {
            json!({"type": "GROUP", "subscribe_id": g.subscribe_id, "sequence": g.sequence, "frame_start": g.frame_start})
        }
        StreamMessage::Frame(f) => json!({
            "type": "FRAME", "timestamp": opt(f.timestamp), "size": f.payload.len(),
            "payload_hex": hex::encode(&f.payload[..f.payload.len().min(64)]),
            "payload_utf8": std::str::from_utf8(&f.payload).ok(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_lite04_group_stream() {
        let lines = decode(Version::Lite04, Dialect::Draft, None, "00 | 02 01 00 | 05 68 65 6c 6c 6f | 00").unwrap();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].contains("\"stream\":\"group\""));
        assert!(lines[2].contains("\"payload_utf8\":\"hello\""));
    }

    #[test]
    fn decodes_responder_and_dialect() {
        let lines = decode(Version::Lite04, Dialect::Gomoqt, Some("subscribe"), "01 03 06 08 00").unwrap();
        assert_eq!(lines, vec![r#"{"end":7,"error":0,"start":5,"type":"SUBSCRIBE_DROP"}"#]);
    }

    #[test]
    fn rejects_bad_input_clearly() {
        assert!(decode(Version::Lite05, Dialect::Draft, None, "zz").unwrap_err().to_string().contains("hex"));
        let e = decode(Version::Lite05, Dialect::Draft, None, "02 19 01").unwrap_err().to_string();
        assert!(e.contains("mid-message"), "{e}");
        assert!(decode(Version::Lite04, Dialect::Draft, Some("track"), "00").is_err());
    }
}
