//! moq-relay 0.15+'s external auth server contract (`--auth-url`, the protocol `moq auth serve`
//! answers): one JSON POST per session event, and the pure decisions around it. The HTTP client
//! itself is left to the caller; everything here is data and functions of data and time.
//!
//! - [`Request`]: what the relay sends on `connect`, `revalidate` and `end` (the same shape each
//!   time; `end` adds `reason`, `duration` and `bytes`).
//! - [`Answer`]: the grant a 2xx reply carries. 401 and 403 refuse; any other status, a transport
//!   error or a body that does not parse is an outage.
//! - [`admit`], [`recheck`]: what to do with a reply on connect and on a re-check.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use moqt_proto::access::{Access, Grant, Pattern, Patterns};
use moqt_proto::Path;
use serde::{Deserialize, Serialize};

/// The bound on each request: a server that hangs longer refuses (connect) or counts as an
/// outage (revalidate).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between failed re-checks.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Everything the relay knows about a session, sent on every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// 128-bit random hex, the same for every event of one session.
    pub id: String,
    /// The event (`"event": "connect" | "revalidate" | "end"`, flattened into the object).
    #[serde(flatten)]
    pub event: Event,
    /// The operator's name for this relay.
    pub node: String,
    /// How the session arrived.
    pub transport: Transport,
    /// The peer's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
    /// The relay's address the session arrived on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<SocketAddr>,
    /// The TLS SNI the client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// The negotiated ALPN (names the moq version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// The path exactly as dialed (`/room/1`).
    pub path: String,
    /// The raw query string without `?` (`jwt=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A moq-transport SETUP authorization token (never sent by moq-lite sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SetupToken>,
    /// The direction a moq-transport client declared (absent: both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The verified client certificate, if one was presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PeerCert>,
}

impl Request {
    /// A `connect` for a new session with a fresh random id (from `random`, 16 bytes).
    pub fn connect(random: [u8; 16], node: &str, transport: Transport, path: &str, query: Option<&str>) -> Request {
        Request {
            id: random.iter().map(|b| format!("{b:02x}")).collect(),
            event: Event::Connect,
            node: node.to_string(),
            transport,
            remote: None,
            local: None,
            server_name: None,
            alpn: None,
            path: path.to_string(),
            query: query.map(str::to_string),
            token: None,
            role: None,
            tls: None,
        }
    }

    /// The same session's request for another event.
    pub fn with_event(&self, event: Event) -> Request {
        Request { event, ..self.clone() }
    }
}

/// The lifecycle event a [`Request`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// A session asks to be admitted.
    Connect,
    /// The grant's `revalidate` cadence came around.
    Revalidate,
    /// The session closed.
    End {
        /// Why: `dropped`, `expired`, `refused`, `invalid`, or the session's own words.
        reason: String,
        /// How long it was admitted, in seconds (fractional).
        duration: f64,
        /// What it moved.
        bytes: Bytes,
    },
}

/// Byte totals of a session, from the relay's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bytes {
    /// Sent to the peer.
    pub sent: u64,
    /// Received from the peer.
    pub received: u64,
}

/// How the session reached the relay.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// QUIC, raw or WebTransport.
    Quic,
    Iroh,
    WebSocket,
    Tcp,
    Unix,
    Http,
}

/// The one direction a moq-transport client declared.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Publisher,
    Subscriber,
}

/// A SETUP authorization token: its type and bytes (base64url without padding on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupToken {
    /// The token type (0: out of band, read as a JWT; 1: a Common Access Token).
    pub kind: u64,
    /// The token bytes.
    #[serde(with = "b64")]
    pub value: Vec<u8>,
}

/// A verified client certificate, as facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCert {
    /// The first DNS SAN, else the CN, else the fingerprint.
    pub name: String,
    /// SHA-256 of the leaf certificate, hex.
    pub fingerprint: String,
    /// notAfter, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// The issuer's distinguished name.
    pub issuer: String,
}

/// A 2xx reply's body: what the session may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Answer {
    /// Patterns the session may publish, relative to the root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// Patterns the session may subscribe to, relative to the root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
    /// The path the patterns are relative to, replacing the dialed one (absent: the dialed path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Subtrees read from elsewhere (moqt does not support them and treats such an answer as
    /// invalid).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mounts: BTreeMap<String, String>,
    /// When the session closes, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// Seconds until the relay asks again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revalidate: Option<u64>,
    /// A label for statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The session is a relay peer (the cluster right).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub peer: bool,
}

/// Why a reply does not admit (or keep) a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// 401 or 403, or a grant that names nothing.
    #[error("the auth server refused the session")]
    Refused,
    /// No answer, another status, or a body that is not an answer.
    #[error("auth server unavailable: {0}")]
    Unavailable(String),
    /// A 2xx answer the relay cannot honor (expired, a re-check cadence without an expiry or of
    /// zero, mounts, a bad pattern).
    #[error("invalid grant: {0}")]
    Invalid(String),
}

/// Reads a reply to `connect` or `revalidate`: the status, the body, and the time now (unix
/// seconds).
pub fn read_reply(status: u16, body: &[u8], now: u64) -> Result<Answer, ServerError> {
    if status == 401 || status == 403 {
        return Err(ServerError::Refused);
    }
    if !(200..300).contains(&status) {
        return Err(ServerError::Unavailable(format!("auth server answered {status}")));
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| ServerError::Unavailable(format!("unreadable answer: {e}")))?;
    answer.validate(now)?;
    Ok(answer)
}

impl Answer {
    /// Refuses an answer that admits nothing, asks for a re-check without an expiry or at zero
    /// seconds, has already expired at `now`, carries mounts, or names a bad pattern.
    pub fn validate(&self, now: u64) -> Result<(), ServerError> {
        if self.publish.is_empty() && self.subscribe.is_empty() {
            return Err(ServerError::Refused);
        }
        if self.revalidate.is_some() && self.expires.is_none() {
            return Err(ServerError::Invalid("revalidate without expires".into()));
        }
        if self.revalidate == Some(0) {
            return Err(ServerError::Invalid("revalidate of zero seconds".into()));
        }
        if self.expires.is_some_and(|e| i128::from(e) <= i128::from(now)) {
            return Err(ServerError::Invalid("already expired".into()));
        }
        if !self.mounts.is_empty() {
            return Err(ServerError::Invalid("mounts are not supported".into()));
        }
        self.patterns().map(|_| ())
    }

    fn patterns(&self) -> Result<(Patterns, Patterns), ServerError> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|p| p.parse::<Pattern>().map_err(|e| ServerError::Invalid(format!("pattern {p:?}: {e}"))))
                .collect::<Result<Patterns, _>>()
        };
        Ok((parse(&self.publish)?, parse(&self.subscribe)?))
    }

    /// The session's access for a session that dialed `dialed`: patterns relative to `root` (or
    /// the dialed path), the cluster right from `peer`, the expiry from `expires`.
    pub fn access(&self, dialed: &str) -> Result<Access, ServerError> {
        let (publish, subscribe) = self.patterns()?;
        let root = Path::new(self.root.as_deref().unwrap_or(dialed));
        let expires = self.expires.map(|e| e.max(0) as u64);
        let grant = Grant { root: root.clone(), publish, subscribe, cluster: self.peer, expires };
        grant.authorize(&root).map(|a| a.with_cluster(self.peer)).map_err(|e| ServerError::Invalid(e.to_string()))
    }
}

/// What a connect reply means for the session: its access, or the error that refuses it (the
/// relay answers [`ServerError::Refused`] with 401/unauthorized and the others with 502).
pub fn admit(status: u16, body: &[u8], dialed: &str, now: u64) -> Result<Access, ServerError> {
    read_reply(status, body, now)?.access(dialed)
}

/// What a re-check means for a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// Keep the session; the new access may have a new expiry (or be wider).
    Keep(Access),
    /// End the session with this `end` reason.
    End(String),
    /// The server could not be asked: keep the current access until its expiry and ask again
    /// after [`backoff`].
    Retry,
}

/// Decides a re-check reply against the access the session holds. Ends the session on a refusal
/// (`refused`), an invalid grant (`invalid`), and a grant that changes the root (`root changed`),
/// the cluster right (`peer changed`) or narrows what is granted (`grant narrowed`).
pub fn recheck(current: &Access, status: u16, body: &[u8], dialed: &str, now: u64) -> Recheck {
    let fresh = match read_reply(status, body, now).and_then(|a| a.access(dialed)) {
        Ok(fresh) => fresh,
        Err(ServerError::Refused) => return Recheck::End("refused".into()),
        Err(ServerError::Invalid(_)) => return Recheck::End("invalid".into()),
        Err(ServerError::Unavailable(_)) => return Recheck::Retry,
    };
    if fresh.root() != current.root() {
        return Recheck::End("root changed".into());
    }
    if fresh.cluster() != current.cluster() {
        return Recheck::End("peer changed".into());
    }
    if !fresh.publish().covers(current.publish()) || !fresh.subscribe().covers(current.subscribe()) {
        return Recheck::End("grant narrowed".into());
    }
    Recheck::Keep(fresh)
}

/// The wait before re-asking after `failures` failed re-checks: one second doubling, capped by
/// the grant's cadence and [`BACKOFF_MAX`]. moq-auth multiplies it by a random factor in
/// 0.75..=1.25 so a fleet does not retry in step; `jitter` is that factor.
pub fn backoff(failures: u32, cadence: Duration, jitter: f64) -> Duration {
    let base = Duration::from_secs(1) * 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    base.min(cadence).min(BACKOFF_MAX).mul_f64(jitter.clamp(0.75, 1.25))
}

/// Where an auth server may be: `https://` anywhere, `http://` only on a loopback host, and
/// `unix://` (HTTP over the socket at the URL's path).
pub fn check_url(url: &url::Url) -> Result<(), ServerError> {
    let ok = match url.scheme() {
        "https" | "unix" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            Some(url::Host::Domain(host)) => host == "localhost",
            None => false,
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ServerError::Invalid(format!(
            "auth URL must be https://, unix://, or http:// to a loopback host: {}://{}",
            url.scheme(),
            url.host_str().unwrap_or("")
        )))
    }
}

mod b64 {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        URL_SAFE_NO_PAD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
