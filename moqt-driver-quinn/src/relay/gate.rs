//! Admission in the relay driver: when a [`Gatekeeper`] is configured, every session the relay
//! accepts waits in the core (`require_access`) until the gatekeeper decides what it may do.
//!
//! The driver finds the dialed path and query (the credential travels in its `?jwt=`):
//!
//! | transport | where the path comes from | asked |
//! |---|---|---|
//! | WebTransport | the request URL (`Accepted.path`) | at once |
//! | raw QUIC, lite-05/06 | the client's SETUP Path parameter | when the SETUP arrives |
//! | raw QUIC, lite-03/04 | nowhere (`target: None`) | at once |
//!
//! The gatekeeper answers with a [`Decision`]; an admitted session's [`Access`] ends at its
//! expiry (the core closes it with `UNAUTHORIZED`). Through the [`AccessHandle`] it gets, the
//! gatekeeper may later replace the access (a re-check) or close the session. Links this relay
//! dials itself (`--peer`) are trusted: they get full access without asking.
//!
//! The gatekeeper's own logic (tokens, public rules, an auth server) lives with the caller; this
//! module only moves requests and decisions between it and the core.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::channel::mpsc;
use moqt_proto::access::Access;
use moqt_proto::relay::SessionId;
use moqt_proto::session::Perspective;
use moqt_proto::{Path, Version};

use super::{Owner, OwnerMsg};
use crate::connection::TransportKind;

/// Names of sessions for gatekeepers, unique in the process.
static NEXT_GATE_ID: AtomicU64 = AtomicU64::new(1);

/// What the relay knows about a session when it asks for its access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionRequest {
    /// The session's id for the gatekeeper: unique in the process (across the workers of a
    /// relay), stable for the session's lifetime; [`Gatekeeper::ended`] names it again.
    pub session: u64,
    /// Raw QUIC or WebTransport.
    pub kind: TransportKind,
    /// The negotiated version.
    pub version: Version,
    /// The peer's address.
    pub remote: Option<SocketAddr>,
    /// The path and query as dialed (`/room?jwt=…`): the WebTransport request's, or the SETUP
    /// Path parameter on raw QUIC lite-05/06. `None` where the transport carries none (raw QUIC
    /// lite-03/04, or a client that sent no Path): the session is at `/` without a credential.
    pub target: Option<String>,
}

/// What a gatekeeper decided about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The session may do what `access` allows, until its expiry (unix seconds, in the access).
    Admit(Access),
    /// The session is closed with this session code and reason.
    Refuse {
        /// A session close code (`session_code::UNAUTHORIZED` for a refused credential).
        code: u64,
        /// Why (sent as the close reason).
        reason: String,
    },
}

/// Decides what sessions may do. Called from the relay's owner task: `admit` must not block (do
/// slow work inside the future it returns).
pub trait Gatekeeper: Send + Sync + 'static {
    /// Decides a new session. `handle` may be kept to replace the access or close the session
    /// later (for re-checks).
    fn admit(&self, request: AdmissionRequest, handle: AccessHandle) -> Pin<Box<dyn Future<Output = Decision> + Send>>;

    /// A session that was asked about ended (admitted or not), with the core's close reason.
    fn ended(&self, session: u64, reason: &str, admitted: Option<Duration>) {
        let _ = (session, reason, admitted);
    }
}

/// A gatekeeper for [`RelayConfig`](super::RelayConfig).
#[derive(Clone)]
pub struct Gate(pub Arc<dyn Gatekeeper>);

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gate(..)")
    }
}

/// Lets a gatekeeper change its mind about one session after admitting it.
#[derive(Clone)]
pub struct AccessHandle {
    session: u64,
    send: Arc<dyn Fn(Decision) -> bool + Send + Sync>,
}

impl fmt::Debug for AccessHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessHandle").field("session", &self.session).finish()
    }
}

impl AccessHandle {
    /// A handle whose updates go to `send` (which returns whether they can still be delivered);
    /// the relay makes its own, this is for driving a gatekeeper elsewhere (tests).
    pub fn new(session: u64, send: impl Fn(Decision) -> bool + Send + Sync + 'static) -> AccessHandle {
        AccessHandle { session, send: Arc::new(send) }
    }

    fn to_owner(id: u64, sid: SessionId, tx: mpsc::UnboundedSender<OwnerMsg>) -> AccessHandle {
        AccessHandle::new(id, move |decision| tx.unbounded_send(OwnerMsg::Decided { sid, decision }).is_ok())
    }

    /// The session this handle is for.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Replaces the session's access (a re-check: same root, a new expiry or a wider grant) or
    /// closes it. Returns `false` once the relay has stopped.
    pub fn update(&self, decision: Decision) -> bool {
        (self.send)(decision)
    }
}

/// Where a session is in its admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// No gatekeeper, or a link this relay dialed: open.
    Open,
    /// Waiting for the SETUP to learn the path.
    AwaitingSetup,
    /// Asked; waiting for the decision.
    Asked,
    /// Admitted at this time.
    Admitted(Instant),
}

/// When an access ends, as an `Instant` (its expiry is in unix seconds).
fn deadline(access: &Access) -> Option<Instant> {
    let expires = access.expires()?;
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let left = Duration::from_secs(expires.saturating_sub(unix));
    Some(Instant::now().checked_add(left).unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 32)))
}

impl Owner {
    /// A new session: decides where its admission starts.
    pub(super) fn admission_start(
        &mut self,
        sid: SessionId,
        perspective: Perspective,
        kind: TransportKind,
        version: Version,
        target: Option<String>,
    ) -> Admission {
        if self.gate.is_none() {
            return Admission::Open;
        }
        if perspective == Perspective::Client {
            // A link this relay dialed (`--peer`): trusted.
            self.node().set_access(sid, Access::full(&Path::root()), None);
            return Admission::Open;
        }
        if kind == TransportKind::RawQuic && version.has_setup() {
            return Admission::AwaitingSetup;
        }
        self.ask(sid, kind, version, target);
        Admission::Asked
    }

    /// Asks the gatekeeper about a session; the decision comes back as an owner message.
    pub(super) fn ask(&mut self, sid: SessionId, kind: TransportKind, version: Version, target: Option<String>) {
        let Some(gate) = self.gate.clone() else { return };
        let Some(conn) = self.conns.get_mut(&sid) else { return };
        // Workers of one relay share the gatekeeper, and their nodes number sessions alike.
        conn.gate_id = NEXT_GATE_ID.fetch_add(1, Ordering::Relaxed);
        let request = AdmissionRequest { session: conn.gate_id, kind, version, remote: conn.remote, target };
        let handle = AccessHandle::to_owner(conn.gate_id, sid, self.tx.clone());
        let decided = gate.0.admit(request, handle.clone());
        self.runtime.spawn(Box::pin(async move {
            let decision = decided.await;
            handle.update(decision);
        }));
    }

    /// A session sent its SETUP: ask about it now if it was waiting for it.
    pub(super) fn setup_arrived(&mut self, sid: SessionId, setup_path: Option<String>) {
        let Some(conn) = self.conns.get_mut(&sid) else { return };
        if conn.admission != Admission::AwaitingSetup {
            return;
        }
        conn.admission = Admission::Asked;
        let (kind, version) = (conn.kind, conn.version);
        self.ask(sid, kind, version, setup_path);
    }

    /// A decision (first or later) about a session.
    pub(super) fn decided(&mut self, sid: SessionId, decision: Decision) {
        let Some(conn) = self.conns.get_mut(&sid) else { return };
        match decision {
            Decision::Admit(access) => {
                if !matches!(conn.admission, Admission::Admitted(_)) {
                    conn.admission = Admission::Admitted(Instant::now());
                }
                let deadline = deadline(&access);
                tracing::info!(session = sid.0, root = %access.root(), publish = ?access.publish(),
                    subscribe = ?access.subscribe(), cluster = access.cluster(), expires = ?access.expires(),
                    "session admitted");
                self.node().set_access(sid, access, deadline);
            }
            Decision::Refuse { code, reason } => {
                tracing::info!(session = sid.0, code, reason, "session refused");
                self.node().close_session(sid, code, &reason);
            }
        }
    }

    /// A session closed: the gatekeeper hears of it if it was asked.
    pub(super) fn admission_ended(&mut self, admission: Admission, gate_id: u64, reason: &str) {
        let Some(gate) = &self.gate else { return };
        let admitted = match admission {
            Admission::Open | Admission::AwaitingSetup => return,
            Admission::Asked => None,
            Admission::Admitted(at) => Some(at.elapsed()),
        };
        gate.0.ended(gate_id, reason, admitted);
    }
}
