//! The raw API of a [`Wire`]: streams no endpoint drives. Tests play an endpoint by hand with it
//! ([`Wire::open_raw`], [`Wire::write_raw`], [`Wire::read_raw`], [`Wire::poll_raw_event`], …):
//! raw streams bypass the endpoint on their side, so garbage can be injected beside a real
//! session, or a whole side can be a byte script (see `Net::scripted`).

use bytes::Bytes;

use super::wire::Wire;
use crate::session::{Command, StreamId, TransportEvent};

/// Raw stream ids start here, far above any id an endpoint picks.
const RAW_BASE: u64 = 1 << 40;

impl Wire {
    /// Opens a stream on behalf of `side` that `side`'s endpoint does not know about (a scripted
    /// peer's stream, or garbage beside a real endpoint). Events about it on `side` go to
    /// [`Wire::poll_raw_event`]. Returns `side`'s name for it and the other side's.
    pub fn open_raw(&mut self, side: usize, uni: bool) -> (StreamId, StreamId) {
        let index = RAW_BASE + self.ends[side].next_raw;
        self.ends[side].next_raw += 1;
        let id = StreamId::local(index, uni);
        self.ends[side].raw.insert(id);
        let peer = self.open(side, id, 0);
        (id, peer)
    }

    /// Queues bytes (and FIN) on a stream `side` can send on, bypassing `side`'s endpoint and the
    /// send window. Ignored once the stream was stopped or finished.
    pub fn write_raw(&mut self, side: usize, stream: StreamId, data: &[u8], fin: bool) {
        let end = &mut self.ends[side];
        let Some(s) = end.sends.get_mut(&stream) else { return };
        if s.done || s.fin {
            return;
        }
        if !data.is_empty() {
            s.queued.push_back(Bytes::copy_from_slice(data));
            s.queued_bytes += data.len();
            end.queued_bytes += data.len();
        }
        s.fin |= fin;
        if s.fin || !s.queued.is_empty() {
            end.active.insert(stream);
        }
    }

    /// Resets a stream `side` can send on, bypassing `side`'s endpoint.
    pub fn reset_raw(&mut self, side: usize, stream: StreamId, code: u64) {
        if self.ends[side].sends.contains_key(&stream) && !self.closed {
            self.execute(side, Command::Reset { stream, code });
        }
    }

    /// Asks the sender of a stream `side` receives on to stop, bypassing `side`'s endpoint.
    pub fn stop_raw(&mut self, side: usize, stream: StreamId, code: u64) {
        if self.ends[side].recvs.contains_key(&stream) && !self.closed {
            self.execute(side, Command::StopSending { stream, code });
        }
    }

    /// Takes every byte that arrived for `side` on `stream`, whatever the read grants, and
    /// whether the sender's FIN arrived (only once: the stream is then forgotten).
    pub fn read_raw(&mut self, side: usize, stream: StreamId) -> (Vec<u8>, bool) {
        let end = &mut self.ends[side];
        let Some(r) = end.recvs.get_mut(&stream) else { return (Vec::new(), false) };
        let mut out = Vec::with_capacity(r.unread_bytes);
        for chunk in r.unread.drain(..) {
            out.extend_from_slice(&chunk);
        }
        r.unread_bytes = 0;
        let fin = r.fin;
        if fin {
            end.recvs.remove(&stream);
        }
        (out, fin)
    }

    /// The next event about one of `side`'s raw streams.
    pub fn poll_raw_event(&mut self, side: usize) -> Option<TransportEvent> {
        self.ends[side].raw_events.pop_front()
    }
}
