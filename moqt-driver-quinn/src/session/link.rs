//! Keeping a client session connected: the I/O side of `moqt_proto::reconnect`. When the
//! session's connection is lost, or the peer sends GOAWAY, the owner dials again as the policy
//! says, adds the new connection to its node, and either makes it the default upstream (after a
//! loss: waiting tracks resubscribe from the next group) or migrates to it make-before-break
//! (after a GOAWAY: the old connection serves until every track has switched, then closes).

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use moqt_proto::reconnect::{Action, Reconnect, ReconnectPolicy};
use moqt_proto::relay::SessionId;
use moqt_proto::session::{session_code, Config, Perspective};

use super::owner::{Owner, MAX_STATES};
use super::{CloseInfo, ConnectionState, Redial, SessionOptions};
use crate::connection::{Connection, TransportKind};
use crate::rt::Sleep;
use crate::transport::TransportError;

/// The longest an old connection serves after a GOAWAY once the new one is up.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// How long an old connection stays once idle, at least (and at least 4 RTTs): what it sent
/// last (the end of a track we published, say) must reach the old relay before the close.
const DRAIN_LINGER: Duration = Duration::from_millis(250);

/// An old connection serving its last groups after a migration.
#[derive(Debug, Clone, Copy)]
struct Draining {
    session: SessionId,
    /// Closed at this time whatever it still carries.
    until: Instant,
    /// Idle since: closed once idle this long.
    idle_at: Option<Instant>,
}

/// What [`Link::poll`] has.
pub(super) enum Dial {
    /// A dial finished.
    Done(Result<Connection, TransportError>),
    /// A backoff or drain deadline passed.
    Due,
}

/// The reconnection state of one session.
pub(super) struct Link {
    redial: Option<Redial>,
    reconnect: Reconnect,
    dialing: Option<BoxFuture<'static, Result<Connection, TransportError>>>,
    /// The URL of the dial in progress (the original URL, or a GOAWAY's next URI).
    target: String,
    /// The dial in progress follows a GOAWAY (make-before-break).
    migrating: bool,
    /// Old sessions serving their last groups after a migration.
    draining: Vec<Draining>,
    timer: Option<Sleep>,
    random: u64,
}

impl Link {
    pub(super) fn new(redial: Option<Redial>, policy: ReconnectPolicy) -> Self {
        // Without a way to dial (server side) there is nothing to reconnect.
        let policy = if redial.is_some() { policy } else { ReconnectPolicy::disabled() };
        let url = redial.as_ref().map_or("", |r| r.url.as_str()).to_owned();
        let seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), Instant::now());
        Self {
            reconnect: Reconnect::new(policy, &url),
            redial,
            dialing: None,
            target: String::new(),
            migrating: false,
            draining: Vec::new(),
            timer: None,
            random: seed | 1,
        }
    }

    /// The URL this session dials ("" on the server side).
    pub(super) fn url(&self) -> &str {
        self.redial.as_ref().map_or("", |r| r.url.as_str())
    }

    /// The session configuration for a connection.
    pub(super) fn session_config(
        &self,
        connection: &Connection,
        perspective: Perspective,
        path: Option<&str>,
        options: &SessionOptions,
    ) -> Config {
        let mut config = Config::new(connection.version(), perspective);
        config.session_limits = options.limits;
        if perspective == Perspective::Client && connection.kind() == TransportKind::RawQuic {
            // lite-05+ raw QUIC carries the URL's path (and query) in SETUP.
            config.setup_path = path.filter(|p| !p.is_empty() && *p != "/").map(str::to_owned);
        }
        config
    }

    fn next_random(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    fn start(&mut self, url: String, migrating: bool) {
        let Some(redial) = &self.redial else { return };
        let connector = redial.connector.clone();
        self.migrating = migrating;
        self.target = url.clone();
        self.dialing = Some(Box::pin(async move {
            let parsed = url::Url::parse(&url)
                .map_err(|e| TransportError::InvalidUrl { url: url.clone(), reason: e.to_string() })?;
            connector.connect_url(&parsed).await
        }));
    }

    /// A finished dial, or a deadline.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Dial> {
        if let Some(dialing) = &mut self.dialing {
            if let Poll::Ready(result) = dialing.as_mut().poll(cx) {
                self.dialing = None;
                return Poll::Ready(Dial::Done(result));
            }
        }
        let deadline = [
            self.reconnect.poll_timeout(),
            self.draining.iter().map(|d| d.idle_at.unwrap_or(d.until).min(d.until)).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(deadline) = deadline else {
            self.timer = None;
            return Poll::Pending;
        };
        let runtime = self.redial.as_ref().map(|r| r.connector.runtime().clone());
        let timer = match (&mut self.timer, runtime) {
            (Some(t), _) => {
                t.reset(deadline);
                t
            }
            (None, Some(runtime)) => self.timer.insert(Sleep::until(&runtime, deadline)),
            (None, None) => return Poll::Pending,
        };
        if timer.poll_expired(cx).is_ready() {
            self.timer = None;
            return Poll::Ready(Dial::Due);
        }
        Poll::Pending
    }
}

impl Owner {
    /// The application closes the session: every connection goes.
    pub(super) fn close(&mut self, code: u64, reason: &str) {
        self.link.reconnect.closed();
        self.link.dialing = None;
        for old in std::mem::take(&mut self.link.draining) {
            self.driver.node().close_session(old.session, code, reason);
        }
        let sid = self.sid;
        self.driver.node().close_session(sid, code, reason);
    }

    /// A session of the node closed.
    pub(super) fn session_closed(&mut self, session: SessionId, code: u64, reason: String) {
        if session != self.sid {
            self.link.draining.retain(|d| d.session != session);
            return;
        }
        // Refusals that another attempt would meet again end the session.
        let refused = code == session_code::UNAUTHORIZED || code == session_code::VERSION;
        let action = if refused {
            self.link.reconnect.closed();
            Action::GiveUp
        } else {
            let random = self.link.next_random();
            self.link.reconnect.lost(Instant::now(), random)
        };
        match action {
            Action::GiveUp => self.shared.closed.set(CloseInfo { code, reason }),
            action => {
                tracing::debug!(code, reason, url = self.link.url(), "connection lost: reconnecting");
                self.shared.states.push(ConnectionState::Lost { code, reason }, 0, MAX_STATES);
                if let Action::Dial(url) = action {
                    self.link.start(url, false);
                }
            }
        }
    }

    /// The peer of a session sent GOAWAY.
    pub(super) fn goaway(&mut self, session: SessionId, uri: String) {
        if session != self.sid {
            return;
        }
        self.shared.goaway.set(uri.clone());
        self.shared.states.push(ConnectionState::Moving { uri: uri.clone() }, 0, MAX_STATES);
        if let Action::Dial(url) = self.link.reconnect.goaway(&uri) {
            tracing::debug!(uri, "goaway: moving to the next uri");
            self.link.start(url, true);
        }
    }

    /// A dial finished.
    pub(super) fn dialed(&mut self, result: Result<Connection, TransportError>) {
        let connection = match result {
            Ok(connection) => connection,
            Err(err) => {
                tracing::info!(%err, "reconnection attempt failed");
                let random = self.link.next_random();
                if self.link.reconnect.failed(Instant::now(), random) == Action::GiveUp {
                    let info = CloseInfo { code: session_code::INTERNAL, reason: err.to_string() };
                    self.shared.closed.set(info);
                }
                return;
            }
        };
        if self.link.reconnect.is_done() {
            connection.close(0, "session closed");
            return;
        }
        // The URL actually dialled: a GOAWAY's next URI has its own path.
        let url = std::mem::take(&mut self.link.target);
        let path = url::Url::parse(&url).ok().map(|u| u.path().to_owned());
        let config = self.link.session_config(&connection, self.perspective, path.as_deref(), &self.options);
        let version = connection.version();
        let old = self.sid;
        let new = self.driver.add(connection.clone(), config);
        if self.link.migrating && self.driver.connection(old).is_some() {
            self.driver.node().migrate(old, new);
            self.link.draining.push(Draining { session: old, until: Instant::now() + DRAIN_MAX, idle_at: None });
        } else {
            self.driver.node().set_default_upstream(Some(new));
        }
        self.sid = new;
        *self.shared.current.lock().unwrap_or_else(|e| e.into_inner()) = connection;
        self.link.reconnect.connected();
        tracing::debug!(url, %version, "connected again");
        self.shared.states.push(ConnectionState::Connected { url, version }, 0, MAX_STATES);
    }

    /// A backoff ended (dial), or an old connection may be done serving (close it).
    pub(super) fn redial(&mut self) {
        let now = Instant::now();
        if let Some(url) = self.link.reconnect.poll_dial(now) {
            self.link.start(url, false);
        }
        self.settle_drains();
        let done: Vec<SessionId> = self
            .link
            .draining
            .iter()
            .filter(|d| d.until <= now || d.idle_at.is_some_and(|t| t <= now))
            .map(|d| d.session)
            .collect();
        for old in done {
            self.link.draining.retain(|d| d.session != old);
            self.driver.node().close_session(old, session_code::NO_ERROR, "moved");
        }
    }

    /// After every event: old connections that no longer carry anything are closed after a
    /// linger (see [`DRAIN_LINGER`]); one that carries something again is kept.
    pub(super) fn settle_drains(&mut self) {
        let now = Instant::now();
        for i in 0..self.link.draining.len() {
            let session = self.link.draining[i].session;
            let idle = self.idle(session);
            let rtt = self.driver.connection(session).map_or(Duration::ZERO, |c| c.rtt());
            let d = &mut self.link.draining[i];
            d.idle_at = match (idle, d.idle_at) {
                (false, _) => None,
                (true, Some(at)) => Some(at),
                (true, None) => Some(now + DRAIN_LINGER.max(rtt.saturating_mul(4))),
            };
        }
    }

    /// Whether an old connection neither feeds a track of ours nor serves a subscription of its
    /// relay's (a publisher keeps serving the old relay until its subscribers have moved, so
    /// that they lose nothing).
    fn idle(&mut self, session: SessionId) -> bool {
        let node = self.driver.node();
        node.feeds_through(session) == 0 && node.serves_through(session) == 0
    }
}
