//! Hostile and faulty peers, written against raw QUIC streams (`moqt_driver_quinn::Connection`)
//! with moq-lite-04 messages from `moqt_proto`'s encoder, so they can do what no well-behaved
//! client does: declare frames they never send, never read, never end a group, send garbage.
//! Every peer connects from 127.0.0.2 (the relay counts sessions per source address; the good
//! pair comes from 127.0.0.1).
#![allow(dead_code)]

pub mod relay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use moqt_driver_quinn::transport::{ClientConfig, Connector};
use moqt_driver_quinn::{Connection, QuicLimits, RecvStream, SendStream, Verification};
use moqt_proto::message::{
    Announce, AnnounceRequest, AnnounceStatus, GroupHeader, Subscribe, SubscribeOk, SubscribeResponse,
};
use moqt_proto::stream::{StreamDecoder, StreamEncoder, StreamMessage, StreamType};
use moqt_proto::{Codec, Path, Version};
use tokio::sync::mpsc;

/// The version every raw peer speaks (no SETUP stream).
pub const VERSION: Version = Version::Lite04;

/// The codec of [`VERSION`].
pub fn codec() -> Codec {
    Codec::new(VERSION)
}

/// Bytes an attacker sent, counted by every peer that shares it.
#[derive(Debug, Default, Clone)]
pub struct Sent(pub Arc<AtomicU64>);

impl Sent {
    pub fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A connector from 127.0.0.2 pinned to the relay's certificate, speaking lite-04. `small`
/// gives the attacker tiny receive windows (a peer that stops reading stalls the relay fast).
pub fn connector(fp: &str, small: bool) -> Connector {
    let mut cc = ClientConfig::new(Verification::pinned(fp.parse().unwrap())).with_version(VERSION);
    cc.bind = Some("127.0.0.2:0".parse().unwrap());
    cc.runtime = Some(moqt_driver_tokio::runtime());
    cc.handshake_timeout = std::time::Duration::from_secs(30);
    // A long idle timeout: on a loaded machine a debug-built relay may take seconds to answer.
    let mut limits = QuicLimits { idle_timeout: std::time::Duration::from_secs(30), ..QuicLimits::default() };
    if small {
        limits.stream_receive_window = 16 << 10;
        limits.receive_window = 64 << 10;
    }
    cc.transport = Some(Arc::new(limits.transport_config()));
    Connector::new(cc).unwrap()
}

fn encode(msgs: &[StreamMessage]) -> Bytes {
    let mut enc = StreamEncoder::new(codec());
    let mut buf = BytesMut::new();
    for m in msgs {
        enc.encode(m, &mut buf);
    }
    buf.freeze()
}

/// The first message after the type of a stream the relay opened.
async fn read_request(recv: &mut RecvStream) -> Option<(StreamType, StreamMessage)> {
    let mut dec = StreamDecoder::opener(codec(), false);
    let mut ty = None;
    loop {
        while let Ok(Some(msg)) = dec.next() {
            match (ty, msg) {
                (None, StreamMessage::Type(t)) => ty = Some(t),
                (Some(t), m) => return Some((t, m)),
                (None, _) => return None,
            }
        }
        let chunk = recv.read().await.ok()??;
        dec.push(chunk);
    }
}

/// A publisher that announces `paths` and answers every SUBSCRIBE with SUBSCRIBE_OK; the
/// subscription ids the relay used arrive on the returned channel. The streams are held open
/// for as long as the connection lives.
pub fn serve_publisher(conn: Connection, paths: Vec<String>, sent: Sent) -> mpsc::UnboundedReceiver<Subscribe> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let (paths, tx, sent) = (paths.clone(), tx.clone(), sent.clone());
            tokio::spawn(async move {
                let Some((ty, msg)) = read_request(&mut recv).await else { return };
                let reply = match (ty, msg) {
                    (StreamType::Announce, StreamMessage::AnnounceRequest(_)) => {
                        let msgs: Vec<StreamMessage> = paths
                            .iter()
                            .map(|p| {
                                StreamMessage::Announce(Announce {
                                    status: AnnounceStatus::Active,
                                    suffix: Path::new(p),
                                    hops: Default::default(),
                                })
                            })
                            .collect();
                        encode(&msgs)
                    }
                    (StreamType::Subscribe, StreamMessage::Subscribe(sub)) => {
                        let ok = SubscribeOk {
                            priority: 0,
                            ordered: false,
                            max_latency: 0,
                            start_group: None,
                            end_group: None,
                        };
                        let _ = tx.send(sub);
                        encode(&[StreamMessage::SubscribeResponse(SubscribeResponse::Ok(ok))])
                    }
                    _ => return,
                };
                sent.add(reply.len());
                if send.write(reply).await.is_err() {
                    return;
                }
                // Hold the stream until the relay ends it.
                let _ = recv.read_to_end(usize::MAX).await;
                drop(send);
            });
        }
    });
    rx
}

/// Opens a group stream for `subscribe_id` and writes its header.
pub async fn open_group(conn: &Connection, subscribe_id: u64, sequence: u64, sent: &Sent) -> Option<SendStream> {
    let mut send = conn.open_uni().await.ok()?;
    let header = encode(&[
        StreamMessage::Type(StreamType::Group),
        StreamMessage::Group(GroupHeader { subscribe_id, sequence, frame_start: 0 }),
    ]);
    sent.add(header.len());
    send.write(header).await.ok()?;
    Some(send)
}

/// A frame header declaring `size` payload bytes.
pub fn frame_header(size: usize) -> Bytes {
    let mut enc = StreamEncoder::new(codec());
    let mut buf = BytesMut::new();
    enc.frame_header(0, size, &mut buf);
    buf.freeze()
}

/// Subscribes to `path`/`track` on a fresh bidi stream and returns the stream halves unread.
pub async fn subscribe(
    conn: &Connection,
    id: u64,
    path: &str,
    track: &str,
    max_latency: u64,
) -> Option<(SendStream, RecvStream)> {
    let (mut send, recv) = conn.open_bi().await.ok()?;
    let sub = Subscribe {
        id,
        path: Path::new(path),
        track: track.to_owned(),
        priority: 0,
        ordered: false,
        max_latency,
        ..Subscribe::default()
    };
    send.write(encode(&[StreamMessage::Type(StreamType::Subscribe), StreamMessage::Subscribe(sub)])).await.ok()?;
    Some((send, recv))
}

/// Asks for every announcement on a fresh bidi stream and returns the stream halves unread.
pub async fn watch(conn: &Connection) -> Option<(SendStream, RecvStream)> {
    let (mut send, recv) = conn.open_bi().await.ok()?;
    let req = AnnounceRequest { prefix: Path::root(), exclude_hop: 0 };
    send.write(encode(&[StreamMessage::Type(StreamType::Announce), StreamMessage::AnnounceRequest(req)])).await.ok()?;
    Some((send, recv))
}

/// CPU time (user + system) of a process so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A deterministic pseudo-random byte source (xorshift), for garbage.
pub fn garbage(seed: u64, len: usize) -> Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Waits until the relay announces `path` to `conn` (so a subscription that follows finds it).
pub async fn await_announced(conn: &Connection, path: &str) {
    let (_send, mut recv) = watch(conn).await.expect("announce watch");
    let mut dec = StreamDecoder::responder(codec(), StreamType::Announce);
    let want = Path::new(path);
    loop {
        while let Ok(Some(msg)) = dec.next() {
            if let StreamMessage::Announce(a) = msg {
                if a.status == AnnounceStatus::Active && a.suffix == want {
                    return;
                }
            }
        }
        let chunk = recv.read().await.expect("announce stream").expect("announce stream ended");
        dec.push(chunk);
    }
}
