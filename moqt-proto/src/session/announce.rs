//! Announcements on a session: the broadcasts we announce and how each peer interest sees
//! them (initial set, live/ended updates, hop chains, exclude hop / split horizon), and the
//! interests we open and the announcements they receive.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::{stream_code, Error, Event, InterestId, Role, Session, StreamId, CONTROL_PRIORITY};
use crate::message::{
    Announce, AnnounceEnd, AnnounceOk, AnnounceRequest, AnnounceRestart, AnnounceStart, AnnounceStatus, Hops, Message,
    RouteCost,
};
use crate::path::Path;
use crate::stream::{StreamMessage, StreamType};
use crate::version::Version;

/// A broadcast we announce: its hop chain (excluding us) and lite-06 route cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Broadcast {
    pub hops: Hops,
    pub cost: RouteCost,
}

/// A peer's announce interest that we answer.
#[derive(Debug, Default)]
pub(super) struct InterestIn {
    prefix: Path,
    exclude: u64,
    started: bool,
    /// Paths announced on this stream, with their lite-06 announce id.
    live: BTreeMap<Path, u64>,
    next_id: u64,
}

/// One of our announce interests.
#[derive(Debug, Default)]
pub(super) struct InterestOut {
    prefix: Path,
    /// The publisher's hop id from ANNOUNCE_OK (lite-05+).
    publisher_hop: Option<u64>,
    /// Initial announcements still to come (lite-05+).
    initial_left: u64,
    /// Live paths.
    live: std::collections::BTreeSet<Path>,
    /// lite-06: announce id → path.
    ids: FxHashMap<u64, Path>,
    next_id: u64,
}

impl Session {
    /// Announces a broadcast we originate (empty hop chain, zero cost).
    pub fn announce(&mut self, path: Path) -> Result<(), Error> {
        self.announce_route(path, Hops::new(), RouteCost::default())
    }

    /// Announces (or re-announces with a new route) a broadcast with a hop chain that excludes
    /// us, and its lite-06 route cost. Every matching peer interest hears it.
    pub fn announce_route(&mut self, path: Path, hops: Hops, cost: RouteCost) -> Result<(), Error> {
        self.ensure_open()?;
        Self::check(&hops)?;
        Self::check(&[cost.warm, cost.cold])?;
        let broadcast = Broadcast { hops, cost };
        if self.broadcasts.get(&path) == Some(&broadcast) {
            return Ok(());
        }
        self.broadcasts.insert(path.clone(), broadcast.clone());
        for id in self.started_interests() {
            self.advertise(id, &path, Some(&broadcast));
        }
        Ok(())
    }

    /// Ends a broadcast we announced.
    pub fn unannounce(&mut self, path: &Path) -> Result<(), Error> {
        self.ensure_open()?;
        if self.broadcasts.remove(path).is_none() {
            return Err(Error::UnknownHandle);
        }
        for id in self.started_interests() {
            self.advertise(id, path, None);
        }
        Ok(())
    }

    /// Opens an announce interest for `prefix`; announcements arrive as events.
    pub fn announce_interest(&mut self, prefix: Path) -> Result<InterestId, Error> {
        self.ensure_can_request()?;
        let request = AnnounceRequest { prefix: prefix.clone(), exclude_hop: self.config.hop_id };
        let state = InterestOut { prefix, ..Default::default() };
        let id = self.open(StreamType::Announce, Role::InterestOut(Box::new(state)), CONTROL_PRIORITY);
        self.write_msg(id, |buf, codec| request.encode(codec, buf));
        Ok(InterestId(id))
    }

    /// Withdraws one of our announce interests. Its live paths end (with events).
    pub fn cancel_announce_interest(&mut self, interest: InterestId) -> Result<(), Error> {
        self.ensure_open()?;
        match self.streams.get(&interest.0).map(|s| &s.role) {
            Some(Role::InterestOut(_)) => {
                self.end_interest_out(interest.0, Some(stream_code::CANCEL));
                Ok(())
            }
            _ => Err(Error::UnknownHandle),
        }
    }

    fn started_interests(&self) -> Vec<StreamId> {
        let mut ids: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| matches!(&s.role, Role::InterestIn(i) if i.started))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The exclude hop that applies to a peer interest.
    fn exclude_for(&self, interest: &InterestIn) -> u64 {
        if self.codec.version.has_exclude_hop() {
            interest.exclude
        } else if self.codec.version.has_typed_announce() {
            self.peer_setup.as_ref().and_then(|s| s.hop).unwrap_or(0)
        } else {
            0
        }
    }

    /// Whether a broadcast may be shown to a peer interest (prefix, exclude hop, hop limit).
    fn visible(&self, interest: &InterestIn, path: &Path, b: &Broadcast) -> bool {
        if !path.has_prefix(&interest.prefix) || b.hops.len() as u64 >= self.codec.limits.max_hops {
            return false;
        }
        let exclude = self.exclude_for(interest);
        exclude == 0 || (exclude != self.config.hop_id && !b.hops.contains(&exclude))
    }

    pub(super) fn on_announce_request(&mut self, id: StreamId, req: AnnounceRequest) {
        if let Some(Role::InterestIn(i)) = self.streams.get_mut(&id).map(|s| &mut s.role) {
            i.prefix = req.prefix.clone();
            i.exclude = req.exclude_hop;
        }
        self.events.push_back(Event::AnnounceInterest { interest: InterestId(id), prefix: req.prefix });
        if self.codec.version.has_typed_announce() && self.peer_setup.is_none() {
            // lite-06: split horizon needs the peer's hop id from its SETUP.
            self.interests_waiting_setup.push(id);
        } else {
            self.start_interest(id);
        }
    }

    /// Sends ANNOUNCE_OK (lite-05+) and the initial set to a peer interest.
    pub(super) fn start_interest(&mut self, id: StreamId) {
        let Some(Role::InterestIn(interest)) = self.streams.get(&id).map(|s| &s.role) else { return };
        let initial: Vec<Path> = self
            .broadcasts
            .iter()
            .filter(|(path, b)| self.visible(interest, path, b))
            .map(|(path, _)| path.clone())
            .collect();
        if self.codec.version.has_announce_ok() {
            let ok = AnnounceOk { hop_id: self.config.hop_id, active_count: initial.len() as u64 };
            self.write_msg(id, |buf, codec| ok.encode(codec, buf));
        }
        if let Some(Role::InterestIn(i)) = self.streams.get_mut(&id).map(|s| &mut s.role) {
            i.started = true;
        }
        for path in initial {
            let b = self.broadcasts.get(&path).cloned();
            self.advertise(id, &path, b.as_ref());
        }
    }

    /// Brings one peer interest up to date with one path: `Some` = live with this route.
    fn advertise(&mut self, id: StreamId, path: &Path, broadcast: Option<&Broadcast>) {
        let Some(Role::InterestIn(interest)) = self.streams.get(&id).map(|s| &s.role) else { return };
        let Some(suffix) = path.strip_prefix(&interest.prefix).map(Path::new) else { return };
        let visible = broadcast.filter(|b| self.visible(interest, path, b));
        let live_id = interest.live.get(path).copied();
        let version = self.codec.version;
        let hop_id = self.config.hop_id;
        let chain = |b: &Broadcast| -> Hops {
            match version {
                Version::Lite03 => std::iter::repeat_n(0, b.hops.len() + 1).collect(),
                Version::Lite04 => {
                    let mut hops = b.hops.clone();
                    if hop_id != 0 {
                        hops.push(hop_id);
                    }
                    hops
                }
                Version::Lite05 | Version::Lite06 => b.hops.clone(),
            }
        };
        let typed = version.has_typed_announce();
        match (visible, live_id) {
            (None, None) => {}
            (None, Some(aid)) => {
                if typed {
                    self.write_msg(id, |buf, codec| AnnounceEnd { id: aid }.encode(codec, buf));
                } else {
                    let ended = Announce { status: AnnounceStatus::Ended, suffix, hops: Hops::new() };
                    self.write_msg(id, |buf, codec| ended.encode(codec, buf));
                }
                if let Some(Role::InterestIn(i)) = self.streams.get_mut(&id).map(|s| &mut s.role) {
                    i.live.remove(path);
                }
            }
            (Some(b), Some(aid)) => {
                let hops = chain(b);
                match version {
                    Version::Lite06 => {
                        let restart = AnnounceRestart { id: aid, hops, cost: b.cost };
                        self.write_msg(id, |buf, codec| restart.encode(codec, buf));
                    }
                    Version::Lite05 => {
                        let active = Announce { status: AnnounceStatus::Active, suffix, hops };
                        self.write_msg(id, |buf, codec| active.encode(codec, buf));
                    }
                    Version::Lite03 | Version::Lite04 => {
                        // These versions alternate strictly: end the old route, then announce the new.
                        let ended =
                            Announce { status: AnnounceStatus::Ended, suffix: suffix.clone(), hops: Hops::new() };
                        let active = Announce { status: AnnounceStatus::Active, suffix, hops };
                        self.write_msg(id, |buf, codec| {
                            ended.encode(codec, buf);
                            active.encode(codec, buf);
                        });
                    }
                }
            }
            (Some(b), None) => {
                let hops = chain(b);
                let Some(Role::InterestIn(i)) = self.streams.get_mut(&id).map(|s| &mut s.role) else { return };
                let aid = i.next_id;
                i.next_id += 1;
                i.live.insert(path.clone(), aid);
                if typed {
                    let start = AnnounceStart { suffix, hops, cost: b.cost };
                    self.write_msg(id, |buf, codec| start.encode(codec, buf));
                } else {
                    let active = Announce { status: AnnounceStatus::Active, suffix, hops };
                    self.write_msg(id, |buf, codec| active.encode(codec, buf));
                }
            }
        }
    }

    /// A message from the publisher on one of our announce interests.
    pub(super) fn on_announcement(&mut self, id: StreamId, msg: StreamMessage) {
        let version = self.codec.version;
        let Some(Role::InterestOut(interest)) = self.streams.get_mut(&id).map(|s| &mut s.role) else { return };
        let (path, hops, cost, active) = match msg {
            StreamMessage::AnnounceOk(ok) => {
                interest.publisher_hop = Some(ok.hop_id);
                interest.initial_left = ok.active_count;
                if ok.active_count == 0 {
                    self.events.push_back(Event::AnnounceSynced { interest: InterestId(id) });
                }
                return;
            }
            StreamMessage::Announce(a) => {
                let path = interest.prefix.join(a.suffix.as_str());
                let mut hops = a.hops;
                if version.has_announce_ok() {
                    hops.push(interest.publisher_hop.unwrap_or(0));
                }
                match a.status {
                    AnnounceStatus::Ended => {
                        if interest.live.remove(&path) {
                            self.announced -= 1;
                            self.events.push_back(Event::Unannounced { interest: InterestId(id), path });
                        }
                        // An ENDED for a path that is not live is ignored, as moq-net does:
                        // a publisher may end a path it had filtered out.
                        return;
                    }
                    AnnounceStatus::Active | AnnounceStatus::Restart => {
                        if interest.live.contains(&path) && !version.has_announce_ok() {
                            return self.violation("duplicate ACTIVE announcement");
                        }
                        (path, hops, RouteCost::default(), true)
                    }
                }
            }
            StreamMessage::AnnounceStart(s) => {
                let path = interest.prefix.join(s.suffix.as_str());
                if interest.live.contains(&path) {
                    return self.violation("START for a live announcement");
                }
                let aid = interest.next_id;
                interest.next_id += 1;
                interest.ids.insert(aid, path.clone());
                let mut hops = s.hops;
                hops.push(interest.publisher_hop.unwrap_or(0));
                (path, hops, s.cost, true)
            }
            StreamMessage::AnnounceRestart(r) => {
                let Some(path) = interest.ids.get(&r.id).cloned() else {
                    return self.violation("RESTART for an unknown announce id");
                };
                let mut hops = r.hops;
                hops.push(interest.publisher_hop.unwrap_or(0));
                (path, hops, r.cost, false)
            }
            StreamMessage::AnnounceEnd(e) => {
                let Some(path) = interest.ids.remove(&e.id) else {
                    return self.violation("END for an unknown announce id");
                };
                interest.live.remove(&path);
                self.announced -= 1;
                self.events.push_back(Event::Unannounced { interest: InterestId(id), path });
                return;
            }
            StreamMessage::AnnounceUnknown(_) => return,
            _ => return self.violation("unexpected message on announce stream"),
        };
        let new = interest.live.insert(path.clone());
        let initial_done = active && interest.initial_left > 0 && {
            interest.initial_left -= 1;
            interest.initial_left == 0
        };
        if new {
            self.announced += 1;
            if self.announced > self.config.session_limits.max_announced {
                self.stats.announcements_refused += 1;
                tracing::debug!("too many announcements: dropping the interest");
                return self.end_interest_out(id, Some(stream_code::LIMIT_EXCEEDED));
            }
        }
        self.events.push_back(Event::Announced { interest: InterestId(id), path, hops, cost });
        if initial_done {
            self.events.push_back(Event::AnnounceSynced { interest: InterestId(id) });
        }
    }

    /// Ends one of our interests: its live paths end, then the interest itself.
    pub(super) fn end_interest_out(&mut self, id: StreamId, code: Option<u64>) {
        let Some(Role::InterestOut(interest)) = self.streams.get_mut(&id).map(|s| &mut s.role) else { return };
        let live = std::mem::take(&mut interest.live);
        self.announced -= live.len();
        for path in live {
            self.events.push_back(Event::Unannounced { interest: InterestId(id), path });
        }
        self.events.push_back(Event::AnnounceInterestEnded { interest: InterestId(id), code });
        match code {
            None => {
                self.finish(id);
                if let Some(s) = self.streams.get_mut(&id) {
                    s.recv = None;
                }
                self.gc(id);
            }
            Some(code) => self.abort(id, code),
        }
    }

    /// Starts lite-06 interests that were waiting for the peer's SETUP.
    pub(super) fn start_waiting_interests(&mut self) {
        for id in std::mem::take(&mut self.interests_waiting_setup) {
            self.start_interest(id);
        }
    }
}
