//! The smaller request/response flows: SETUP (lite-05+), FETCH, TRACK (lite-05+), PROBE and
//! GOAWAY (lite-04+), from both sides.

use bytes::Bytes;

use super::delivery::fetch_priority;
use super::{Error, Event, FetchId, ProbeId, Role, Session, TrackRequestId, CONTROL_PRIORITY};
use crate::message::{Fetch, Goaway, Message, Probe, Setup, Track, TrackInfo};
use crate::path::Path;
use crate::stream::StreamType;

impl Session {
    pub(super) fn on_setup(&mut self, setup: Setup) {
        self.peer_setup = Some(setup.clone());
        self.events.push_back(Event::PeerSetup(setup));
        self.start_waiting_interests();
    }

    // ----- fetch -----

    /// Asks for one past group (frames `start_frame..=end_frame` on lite-06). Frames arrive as
    /// [`Event::FetchFrame`], then [`Event::FetchEnded`].
    pub fn fetch(&mut self, path: Path, track: &str, priority: u8, group: u64) -> Result<FetchId, Error> {
        self.fetch_frames(path, track, priority, group, 0, None)
    }

    /// [`Session::fetch`] with lite-06 frame bounds.
    pub fn fetch_frames(
        &mut self,
        path: Path,
        track: &str,
        priority: u8,
        group: u64,
        start_frame: u64,
        end_frame: Option<u64>,
    ) -> Result<FetchId, Error> {
        self.ensure_can_request()?;
        Self::check(&[group, start_frame])?;
        Self::check_opt(&[end_frame])?;
        if end_frame.is_some_and(|e| e < start_frame) {
            return Err(Error::InvalidArgument);
        }
        let msg = Fetch { path, track: track.to_string(), priority, group, start_frame, end_frame };
        let id = self.open(StreamType::Fetch, Role::FetchOut, fetch_priority(priority));
        self.write_msg(id, |buf, codec| msg.encode(codec, buf));
        Ok(FetchId(id))
    }

    /// Cancels one of our fetches.
    pub fn cancel_fetch(&mut self, fetch: FetchId) -> Result<(), Error> {
        self.ensure_open()?;
        let fetch = fetch.0;
        match self.streams.get(&fetch).map(|s| &s.role) {
            Some(Role::FetchOut) => {
                self.abort(fetch, super::stream_code::CANCEL);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Writes one frame of a fetch we serve.
    pub fn fetch_frame(&mut self, fetch: FetchId, timestamp: u64, payload: Bytes) -> Result<(), Error> {
        self.ensure_open()?;
        let fetch = fetch.0;
        let Some(stream) = self.streams.get_mut(&fetch) else { return Err(Error::UnknownHandle) };
        let Role::FetchIn { last_timestamp, served } = &mut stream.role else { return Err(Error::UnknownHandle) };
        if stream.send.fin || stream.send.closed {
            return Err(Error::InvalidState);
        }
        if !super::timestamp_fits(self.codec.version, timestamp) {
            return Err(Error::InvalidArgument);
        }
        *served = true;
        let delta = timestamp as i64 - *last_timestamp as i64;
        *last_timestamp = timestamp;
        let header = crate::message::FrameHeader { timestamp_delta: delta, size: payload.len() as u64 };
        self.write_msg(fetch, |buf, codec| header.encode(codec, buf));
        self.queue(fetch, payload);
        Ok(())
    }

    /// Ends a fetch we serve (FIN after its frames).
    pub fn fetch_finish(&mut self, fetch: FetchId) -> Result<(), Error> {
        self.ensure_open()?;
        let fetch = fetch.0;
        match self.streams.get(&fetch).map(|s| &s.role) {
            Some(Role::FetchIn { .. }) => {
                self.finish(fetch);
                if let Some(s) = self.streams.get_mut(&fetch) {
                    s.recv = None;
                }
                self.gc(fetch);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Refuses a fetch we were asked for (reset with `code`).
    pub fn fetch_reject(&mut self, fetch: FetchId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        let fetch = fetch.0;
        Self::check(&[code])?;
        match self.streams.get(&fetch).map(|s| &s.role) {
            Some(Role::FetchIn { .. }) => {
                self.abort(fetch, code);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    // ----- track -----

    /// Asks for a track's properties (lite-05+): [`Event::TrackInfo`] or [`Event::TrackFailed`].
    pub fn track_info(&mut self, path: Path, track: &str) -> Result<TrackRequestId, Error> {
        self.ensure_can_request()?;
        if !self.codec.version.has_track() {
            return Err(Error::Unsupported);
        }
        let msg = Track { path, track: track.to_string() };
        let id = self.open(StreamType::Track, Role::TrackOut { answered: false }, CONTROL_PRIORITY);
        self.write_msg(id, |buf, codec| msg.encode(codec, buf));
        Ok(TrackRequestId(id))
    }

    /// Answers a TRACK request.
    pub fn track_reply(&mut self, request: TrackRequestId, info: TrackInfo) -> Result<(), Error> {
        self.ensure_open()?;
        let stream = request.0;
        Self::check(&[info.max_latency, info.timescale])?;
        if info.timescale == 0 {
            return Err(Error::InvalidArgument);
        }
        match self.streams.get(&stream).map(|s| &s.role) {
            Some(Role::TrackIn) => {
                self.write_msg(stream, |buf, codec| info.encode(codec, buf));
                self.finish(stream);
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.recv = None;
                }
                self.gc(stream);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Refuses a TRACK request (reset with `code`).
    pub fn track_reject(&mut self, request: TrackRequestId, code: u64) -> Result<(), Error> {
        self.ensure_open()?;
        let stream = request.0;
        Self::check(&[code])?;
        match self.streams.get(&stream).map(|s| &s.role) {
            Some(Role::TrackIn) => {
                self.abort(stream, code);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    // ----- probe -----

    /// Opens a probe stream, optionally sending a target bitrate (moq-net publishers reject any
    /// byte from the subscriber, so `None` sends nothing). Reports arrive as events.
    pub fn probe(&mut self, target_bitrate: Option<u64>) -> Result<ProbeId, Error> {
        self.ensure_can_request()?;
        Self::check(&[target_bitrate.unwrap_or(0)])?;
        let id = self.open(StreamType::Probe, Role::ProbeOut, CONTROL_PRIORITY);
        if let Some(bitrate) = target_bitrate {
            let msg = Probe { bitrate, rtt_ms: 0 };
            self.write_msg(id, |buf, codec| msg.encode(codec, buf));
        }
        Ok(ProbeId(id))
    }

    /// Sends a new target bitrate on one of our probe streams.
    pub fn probe_target(&mut self, probe: ProbeId, bitrate: u64) -> Result<(), Error> {
        self.send_probe(probe, Probe { bitrate, rtt_ms: 0 }, |r| matches!(r, Role::ProbeOut))
    }

    /// Sends a bitrate/RTT report on a probe stream the peer opened.
    pub fn probe_report(&mut self, probe: ProbeId, report: Probe) -> Result<(), Error> {
        self.send_probe(probe, report, |r| matches!(r, Role::ProbeIn))
    }

    fn send_probe(&mut self, probe_id: ProbeId, probe: Probe, role: fn(&Role) -> bool) -> Result<(), Error> {
        self.ensure_open()?;
        let stream = probe_id.0;
        Self::check(&[probe.bitrate, probe.rtt_ms])?;
        match self.streams.get(&stream).map(|s| &s.role) {
            Some(r) if role(r) => {
                self.write_msg(stream, |buf, codec| probe.encode(codec, buf));
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    /// Ends a probe stream, ours or the peer's.
    pub fn probe_close(&mut self, probe: ProbeId) -> Result<(), Error> {
        self.ensure_open()?;
        let stream = probe.0;
        match self.streams.get(&stream).map(|s| &s.role) {
            Some(Role::ProbeIn | Role::ProbeOut) => {
                self.abort(stream, super::stream_code::CANCEL);
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    // ----- goaway -----

    /// Tells the peer we are shutting down (lite-04+), optionally where to reconnect. The
    /// session keeps working until it is closed.
    pub fn goaway(&mut self, uri: &str) -> Result<(), Error> {
        self.ensure_open()?;
        if uri.len() as u64 > self.codec.limits.max_goaway_uri {
            return Err(Error::InvalidArgument);
        }
        if !self.codec.version.has_goaway() {
            return Err(Error::Unsupported);
        }
        if self.goaway_sent {
            return Err(Error::InvalidState);
        }
        self.goaway_sent = true;
        let msg = Goaway { uri: uri.to_string() };
        let id = self.open(StreamType::Goaway, Role::GoawayOut, CONTROL_PRIORITY);
        self.write_msg(id, |buf, codec| msg.encode(codec, buf));
        self.finish(id);
        Ok(())
    }
}
