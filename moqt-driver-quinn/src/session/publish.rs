//! Publisher handles: a broadcast we announce, its tracks, their groups, and the fetches the
//! application is asked to serve.

use std::sync::Arc;

use bytes::Bytes;
use moqt_proto::relay::FetchRequestId;
use moqt_proto::session::{stream_code, Error as CoreError};

use super::owner::{Request, Serve};
use super::{BroadcastRequest, Error, Session};
use crate::sync::{Counter, Queue};

/// A broadcast we announce. Dropping it unannounces the broadcast and ends its tracks.
pub struct BroadcastPublisher {
    session: Session,
    key: u64,
    queue: Arc<Queue<BroadcastRequest>>,
}

impl BroadcastPublisher {
    pub(super) fn new(session: Session, key: u64, queue: Arc<Queue<BroadcastRequest>>) -> Self {
        Self { session, key, queue }
    }

    /// Creates a track; the peer's subscriptions to it are accepted automatically, and late
    /// subscribers start at the current group.
    pub fn create_track(&self, name: &str) -> TrackPublisher {
        let key = self.session.key();
        let subscribers = Arc::new(Counter::default());
        self.session.send(Request::CreateTrack {
            broadcast: self.key,
            key,
            name: name.to_owned(),
            subscribers: subscribers.clone(),
        });
        TrackPublisher { session: self.session.clone(), key, subscribers }
    }

    /// The next request for this broadcast (a track to create, a fetch to serve); `None` once
    /// the session ends.
    pub async fn next_request(&self) -> Option<BroadcastRequest> {
        self.queue.pop().await.ok()
    }
}

impl Drop for BroadcastPublisher {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        self.session.send(Request::Unpublish { key: self.key });
    }
}

/// A track we publish. Dropping it ends its subscriptions cleanly.
pub struct TrackPublisher {
    session: Session,
    key: u64,
    subscribers: Arc<Counter>,
}

impl TrackPublisher {
    /// Subscriptions currently served for this track.
    pub fn subscribers(&self) -> usize {
        self.subscribers.get()
    }

    /// Waits until at least `n` subscriptions are served (or the session closes).
    pub async fn wait_subscribers(&self, n: usize) -> Result<(), Error> {
        let subscribed = std::pin::pin!(self.subscribers.at_least(n));
        let closed = std::pin::pin!(self.session.closed());
        match futures::future::select(subscribed, closed).await {
            futures::future::Either::Left(_) => Ok(()),
            futures::future::Either::Right(_) => Err(Error::Closed),
        }
    }

    /// Opens group `sequence` for every current and late subscriber.
    pub fn open_group(&self, sequence: u64) -> GroupPublisher {
        self.session.send(Request::OpenGroup { track: self.key, sequence });
        GroupPublisher { session: self.session.clone(), track: self.key, sequence, finished: false }
    }
}

impl Drop for TrackPublisher {
    fn drop(&mut self) {
        self.session.send(Request::DropTrack { key: self.key });
    }
}

/// A group we publish. Dropping it without [`GroupPublisher::finish`] finishes it too.
pub struct GroupPublisher {
    session: Session,
    track: u64,
    sequence: u64,
    finished: bool,
}

impl GroupPublisher {
    /// The group sequence.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Appends a frame (not copied).
    pub fn write_frame(&self, payload: Bytes) -> Result<(), Error> {
        self.write_frame_at(0, payload)
    }

    /// [`GroupPublisher::write_frame`] with an absolute timestamp (lite-05+ carries it; it must
    /// stay below 2^61).
    pub fn write_frame_at(&self, timestamp: u64, payload: Bytes) -> Result<(), Error> {
        if self.finished {
            return Err(CoreError::InvalidState.into());
        }
        if timestamp >= 1 << 61 {
            return Err(CoreError::InvalidArgument.into());
        }
        if self.session.shared.closed.get().is_some() {
            return Err(Error::Closed);
        }
        self.session.send(Request::WriteFrame { track: self.track, sequence: self.sequence, timestamp, payload });
        Ok(())
    }

    /// Ends the group cleanly.
    pub fn finish(mut self) {
        self.end(None);
    }

    /// Abandons the group (reset with `code`).
    pub fn reset(mut self, code: u64) {
        self.end(Some(code));
    }

    fn end(&mut self, code: Option<u64>) {
        self.finished = true;
        self.session.send(Request::EndGroup { track: self.track, sequence: self.sequence, code });
    }
}

impl Drop for GroupPublisher {
    fn drop(&mut self) {
        if !self.finished {
            self.end(None);
        }
    }
}

/// A fetch the peer asked of one of our broadcasts for a group that is not cached. Dropping it
/// unanswered refuses it with `NOT_FOUND`.
pub struct FetchRequest {
    session: Session,
    request: FetchRequestId,
    track: String,
    group: u64,
    done: bool,
}

impl std::fmt::Debug for FetchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchRequest").field("track", &self.track).field("group", &self.group).finish()
    }
}

impl FetchRequest {
    pub(super) fn new(session: Session, request: FetchRequestId, track: String, group: u64) -> Self {
        Self { session, request, track, group, done: false }
    }

    /// The track.
    pub fn track(&self) -> &str {
        &self.track
    }

    /// The group wanted.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// Sends one frame of the group.
    pub fn write_frame(&self, payload: Bytes) {
        self.write_frame_at(0, payload);
    }

    /// Sends one frame of the group with its timestamp.
    pub fn write_frame_at(&self, timestamp: u64, payload: Bytes) {
        self.session.send(Request::Serve { request: self.request, action: Serve::Frame(timestamp, payload) });
    }

    /// Ends the fetch after the frames written.
    pub fn finish(mut self) {
        self.done = true;
        self.session.send(Request::Serve { request: self.request, action: Serve::Finish });
    }

    /// Refuses the fetch with a stream code (e.g. `stream_code::NOT_FOUND`).
    pub fn reject(mut self, code: u64) {
        self.done = true;
        self.session.send(Request::Serve { request: self.request, action: Serve::Reject(code) });
    }
}

impl Drop for FetchRequest {
    fn drop(&mut self) {
        if !self.done {
            let action = Serve::Reject(stream_code::NOT_FOUND);
            self.session.send(Request::Serve { request: self.request, action });
        }
    }
}
