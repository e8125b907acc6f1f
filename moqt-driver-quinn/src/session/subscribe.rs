//! Subscriber handles: a subscription and its groups, announcements under a prefix, a fetch, and
//! a probe. Each reads a queue the owner task fills; dropping one cancels what it stands for.

use std::sync::Arc;

use bytes::Bytes;
use moqt_proto::message::Probe;

use super::owner::Request;
use super::{next_from, Announcement, Error, Session};
use crate::sync::Queue;

/// One of our subscriptions: yields groups. Dropping it unsubscribes.
pub struct TrackReader {
    session: Session,
    key: u64,
    queue: Arc<Queue<GroupReader>>,
}

impl TrackReader {
    pub(super) fn new(session: Session, key: u64, queue: Arc<Queue<GroupReader>>) -> Self {
        Self { session, key, queue }
    }

    /// The next group: `Ok(None)` when the publisher ended the track, `Err` when it was
    /// refused, reset or the session closed.
    pub async fn next_group(&mut self) -> Result<Option<GroupReader>, Error> {
        next_from(&self.queue).await
    }
}

impl Drop for TrackReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        self.session.send(Request::Unsubscribe { key: self.key });
    }
}

/// One group of a subscription: yields frames. Dropping it early stops the group.
pub struct GroupReader {
    session: Session,
    subscription: u64,
    sequence: u64,
    queue: Arc<Queue<Bytes>>,
}

impl GroupReader {
    pub(super) fn new(session: Session, subscription: u64, sequence: u64, queue: Arc<Queue<Bytes>>) -> Self {
        Self { session, subscription, sequence, queue }
    }

    /// The group sequence.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The next frame: `Ok(None)` at the end of the group, `Err` if it was cut short.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, Error> {
        next_from(&self.queue).await
    }

    /// Every remaining frame.
    pub async fn read_all(&mut self) -> Result<Vec<Bytes>, Error> {
        let mut out = Vec::new();
        while let Some(f) = self.next_frame().await? {
            out.push(f);
        }
        Ok(out)
    }
}

impl Drop for GroupReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        if !self.queue.is_ended() {
            self.session.send(Request::StopGroup { subscription: self.subscription, sequence: self.sequence });
        }
    }
}

/// Announcements under a prefix. Dropping it cancels the interest.
pub struct Announced {
    session: Session,
    key: u64,
    queue: Arc<Queue<Announcement>>,
}

impl Announced {
    pub(super) fn new(session: Session, key: u64, queue: Arc<Queue<Announcement>>) -> Self {
        Self { session, key, queue }
    }

    /// The next announcement; `Ok(None)` when the publisher closed the interest cleanly.
    pub async fn next(&mut self) -> Result<Option<Announcement>, Error> {
        next_from(&self.queue).await
    }
}

impl Drop for Announced {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        self.session.send(Request::Unwatch { key: self.key });
    }
}

/// One of our fetches: yields the group's frames. Dropping it early cancels the fetch.
pub struct FetchReader {
    session: Session,
    key: u64,
    queue: Arc<Queue<Bytes>>,
}

impl FetchReader {
    pub(super) fn new(session: Session, key: u64, queue: Arc<Queue<Bytes>>) -> Self {
        Self { session, key, queue }
    }

    /// The next frame: `Ok(None)` at the end, `Err` if refused or cut short.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, Error> {
        next_from(&self.queue).await
    }

    /// Every frame of the group.
    pub async fn read_all(&mut self) -> Result<Vec<Bytes>, Error> {
        let mut out = Vec::new();
        while let Some(f) = self.next_frame().await? {
            out.push(f);
        }
        Ok(out)
    }
}

impl Drop for FetchReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        if !self.queue.is_ended() {
            self.session.send(Request::CancelFetch { key: self.key });
        }
    }
}

/// One of our probe streams: yields reports. Dropping it closes the probe.
pub struct ProbeReader {
    session: Session,
    key: u64,
    queue: Arc<Queue<Probe>>,
}

impl ProbeReader {
    pub(super) fn new(session: Session, key: u64, queue: Arc<Queue<Probe>>) -> Self {
        Self { session, key, queue }
    }

    /// The next report (bitrate, RTT); `Ok(None)` when the peer ended the probe.
    pub async fn next_report(&mut self) -> Result<Option<Probe>, Error> {
        next_from(&self.queue).await
    }
}

impl Drop for ProbeReader {
    fn drop(&mut self) {
        self.queue.drop_receiver();
        self.session.send(Request::ProbeClose { key: self.key });
    }
}
