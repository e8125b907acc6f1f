//! `moqt relay`'s authentication: the `--auth-*` flags and their `[relay.auth]` TOML table, the
//! gatekeeper that checks tokens (moqt-auth) and public patterns, and the refusal counters for
//! `/metrics`. The external auth server (`--auth-url`) is in [`crate::auth_server`].
//!
//! Who decides, by configuration:
//!
//! | configured | a session with a token | a session without |
//! |---|---|---|
//! | nothing | open relay (a warning at start) | open relay |
//! | `--auth-key` / `--auth-key-dir` | the token alone decides | public patterns, else refused |
//! | only `--auth-public*` | refused (nothing can verify it) | public patterns, else refused |
//! | `--auth-url` | the auth server decides (it reads the query) | the auth server decides |

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Args;
use moqt_auth::claims::UnknownClaims;
use moqt_auth::{Key, KeyDir, KeySet, Refusal, Verifier};
use moqt_driver_quinn::relay::{AccessHandle, AdmissionRequest, Decision, Gate, Gatekeeper};
use moqt_proto::access::{Access, Pattern, Patterns};
use moqt_proto::session::session_code;
use moqt_proto::Path;
use serde::Deserialize;

/// A key directory is read again when a token names an unknown key and the directory changed
/// since the last read (or the last read is this old), and in the background every
/// `RESCAN_EVERY` (so removed keys stop working).
const RESCAN_MIN: Duration = Duration::from_secs(1);
const RESCAN_EVERY: Duration = Duration::from_secs(10);

/// The `--auth-*` flags of `moqt relay`.
#[derive(Debug, Args, Default, Clone)]
pub struct AuthArgs {
    /// A JWK key file (as `moq-token generate` writes) that verifies tokens.
    #[arg(long, conflicts_with = "auth_key_dir")]
    pub auth_key: Option<PathBuf>,
    /// A directory of {kid}.jwk keys, re-read for rotation; tokens must name their kid.
    #[arg(long)]
    pub auth_key_dir: Option<PathBuf>,
    /// A pattern anyone may publish and subscribe to without a token, rooted at / (`anon/**`);
    /// repeatable.
    #[arg(long = "auth-public")]
    pub auth_public: Vec<String>,
    /// A pattern anyone may publish without a token; repeatable.
    #[arg(long = "auth-public-publish")]
    pub auth_public_publish: Vec<String>,
    /// A pattern anyone may subscribe to without a token; repeatable.
    #[arg(long = "auth-public-subscribe")]
    pub auth_public_subscribe: Vec<String>,
    /// moq-relay's external auth server (`moq auth serve`): https://, unix://, or http:// on
    /// loopback; one JSON POST per session event.
    #[arg(long)]
    pub auth_url: Option<String>,
    /// Seconds of clock leeway on a token's exp and nbf [default: 30].
    #[arg(long)]
    pub auth_leeway: Option<u64>,
    /// Accept tokens with claims moqt does not know (moq-token's rule) instead of refusing them.
    #[arg(long)]
    pub auth_ignore_unknown_claims: bool,
    /// This relay's name in auth server requests [default: moqt].
    #[arg(long)]
    pub auth_node: Option<String>,
}

/// The `[relay.auth]` table: the same settings as the flags, without the `auth_` prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub key: Option<PathBuf>,
    pub key_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub public: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub public_publish: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub public_subscribe: Vec<String>,
    pub url: Option<String>,
    pub leeway: Option<u64>,
    #[serde(default)]
    pub ignore_unknown_claims: bool,
    pub node: Option<String>,
}

/// A string or a list of strings (moq-relay's `public = "anon/**"` or a list).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl AuthArgs {
    /// Fills unset flags from the file.
    pub fn merge(mut self, file: AuthFile) -> AuthArgs {
        if self.auth_key.is_none() && self.auth_key_dir.is_none() {
            self.auth_key = file.key;
            self.auth_key_dir = file.key_dir;
        }
        for (flag, from) in [
            (&mut self.auth_public, file.public),
            (&mut self.auth_public_publish, file.public_publish),
            (&mut self.auth_public_subscribe, file.public_subscribe),
        ] {
            if flag.is_empty() {
                *flag = from;
            }
        }
        self.auth_url = self.auth_url.or(file.url);
        self.auth_leeway = self.auth_leeway.or(file.leeway);
        self.auth_ignore_unknown_claims |= file.ignore_unknown_claims;
        self.auth_node = self.auth_node.or(file.node);
        self
    }

    fn has_public(&self) -> bool {
        !(self.auth_public.is_empty() && self.auth_public_publish.is_empty() && self.auth_public_subscribe.is_empty())
    }

    /// The public rules: (publish, subscribe) patterns rooted at `/`.
    fn public(&self) -> Result<Option<(Patterns, Patterns)>> {
        if !self.has_public() {
            return Ok(None);
        }
        let parse = |flag: &str, list: &[String]| -> Result<Patterns> {
            let mut out = Patterns::new();
            for text in list {
                let pattern: Pattern = text.parse().with_context(|| format!("--{flag} {text:?}"))?;
                // moq-relay's rule: a bare literal names exactly one broadcast; ask for the subtree.
                if pattern.is_exact() {
                    let subtree = Pattern::subtree(&Path::new(text)).with_context(|| format!("--{flag} {text:?}"))?;
                    if subtree != pattern {
                        bail!("--{flag} `{text}` has no wildcard, so it names exactly one broadcast; write `{}` for the subtree", subtree.as_str());
                    }
                }
                out.insert(pattern);
            }
            Ok(out)
        };
        let both = parse("auth-public", &self.auth_public)?;
        let mut publish = parse("auth-public-publish", &self.auth_public_publish)?;
        let mut subscribe = parse("auth-public-subscribe", &self.auth_public_subscribe)?;
        publish.union(&both);
        subscribe.union(&both);
        Ok(Some((publish, subscribe)))
    }

    /// The gatekeeper these flags describe and what to print at start, or `None` for an open
    /// relay.
    pub fn gate(&self) -> Result<(Option<Gate>, Arc<AuthMetrics>, String)> {
        let metrics = Arc::new(AuthMetrics::default());
        let keyed = self.auth_key.is_some() || self.auth_key_dir.is_some();
        if let Some(url) = &self.auth_url {
            if keyed || self.has_public() {
                bail!("--auth-url cannot be combined with --auth-key, --auth-key-dir or --auth-public: the server decides");
            }
            let node = self.auth_node.clone().unwrap_or_else(|| "moqt".to_string());
            let gate = crate::auth_server::ServerGate::new(url, &node, metrics.clone())?;
            return Ok((Some(Gate(Arc::new(gate))), metrics, format!("auth: every session is decided by {url}")));
        }
        let public = self.public()?;
        if !keyed && public.is_none() {
            let line = "warning: no --auth-key, --auth-key-dir, --auth-public or --auth-url: anyone may publish and \
                        subscribe to anything"
                .to_string();
            return Ok((None, metrics, line));
        }
        let keys = match (&self.auth_key, &self.auth_key_dir) {
            (Some(path), _) => {
                let key = Key::from_file(path).with_context(|| format!("--auth-key {}", path.display()))?;
                if !key.allows("verify") {
                    bail!("--auth-key {}: the key's key_ops do not allow verify", path.display());
                }
                Some(KeySet::Single(Box::new(key)))
            }
            (None, Some(dir)) => {
                let (keys, scan) = KeyDir::open(dir).with_context(|| format!("--auth-key-dir {}", dir.display()))?;
                for (path, e) in &scan.skipped {
                    tracing::warn!("auth: skipped {}: {e}", path.display());
                }
                Some(KeySet::Dir(keys))
            }
            (None, None) => None,
        };
        let unknown_claims =
            if self.auth_ignore_unknown_claims { UnknownClaims::Ignore } else { UnknownClaims::Refuse };
        let options = moqt_auth::Options {
            leeway: self.auth_leeway.unwrap_or(moqt_auth::verify::DEFAULT_LEEWAY),
            unknown_claims,
        };
        let describe = |ps: &Patterns| ps.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>().join(",");
        let line = match (&keys, &public) {
            (Some(KeySet::Dir(dir)), _) => format!("auth: tokens checked with the keys in {}", dir.path().display()),
            (Some(_), _) => "auth: tokens checked with one key".to_string(),
            (None, _) => "auth: public access only (tokens cannot be verified)".to_string(),
        };
        let line = match &public {
            Some((p, s)) => format!("{line}; public: publish [{}] subscribe [{}]", describe(p), describe(s)),
            None => format!("{line}; nothing is public"),
        };
        let verifier = keys.map(|keys| Keys::new(Verifier { keys, options }));
        let gate =
            TokenGate { inner: Arc::new(Inner { verifier: Mutex::new(verifier), public, metrics: metrics.clone() }) };
        gate.spawn_rescans();
        Ok((Some(Gate(Arc::new(gate))), metrics, line))
    }
}

/// Admission counters for `/metrics`: refusals by kind, admissions by credential.
#[derive(Debug, Default)]
pub struct AuthMetrics {
    refused: Mutex<BTreeMap<&'static str, u64>>,
    admitted: Mutex<BTreeMap<&'static str, u64>>,
}

impl AuthMetrics {
    pub fn refused(&self, kind: &'static str) {
        *self.refused.lock().expect("metrics lock").entry(kind).or_default() += 1;
    }

    pub fn admitted(&self, via: &'static str) {
        *self.admitted.lock().expect("metrics lock").entry(via).or_default() += 1;
    }

    /// The Prometheus text: `moqt_auth_refused_total{kind}` and `moqt_auth_admitted_total{via}`.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP moqt_auth_refused_total Sessions refused at admission, by refusal kind.\n\
             # TYPE moqt_auth_refused_total counter\n",
        );
        for (kind, n) in self.refused.lock().expect("metrics lock").iter() {
            out += &format!("moqt_auth_refused_total{{kind=\"{kind}\"}} {n}\n");
        }
        out += "# HELP moqt_auth_admitted_total Sessions admitted, by credential.\n\
                # TYPE moqt_auth_admitted_total counter\n";
        for (via, n) in self.admitted.lock().expect("metrics lock").iter() {
            out += &format!("moqt_auth_admitted_total{{via=\"{via}\"}} {n}\n");
        }
        out
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The connect path and the token of a session's dialed target (`/room?jwt=…`; none: `/`).
pub fn credentials(target: Option<&str>) -> (Path, Option<String>) {
    let (path, query) = moqt_auth::split_path_query(target.unwrap_or("/"));
    (Path::new(path), query.and_then(moqt_auth::jwt_from_query))
}

/// Checks tokens with a key (or key directory) and admits tokenless sessions by public patterns.
struct TokenGate {
    inner: Arc<Inner>,
}

/// The verifier, and when and in what state its key directory was last read.
struct Keys {
    verifier: Verifier,
    scanned: Instant,
    modified: Option<SystemTime>,
}

impl Keys {
    fn new(verifier: Verifier) -> Keys {
        let modified = Keys::modified(&verifier);
        Keys { verifier, scanned: Instant::now(), modified }
    }

    /// The key directory's modification time (it changes when a key file is added or removed).
    fn modified(verifier: &Verifier) -> Option<SystemTime> {
        match &verifier.keys {
            KeySet::Dir(dir) => std::fs::metadata(dir.path()).and_then(|m| m.modified()).ok(),
            KeySet::Single(_) => None,
        }
    }

    /// Reads the key directory again.
    fn rescan(&mut self) {
        self.scanned = Instant::now();
        self.modified = Keys::modified(&self.verifier);
        match self.verifier.rescan() {
            Ok(scan) if !(scan.added.is_empty() && scan.changed.is_empty() && scan.removed.is_empty()) => {
                tracing::info!(added = ?scan.added, changed = ?scan.changed, removed = ?scan.removed, "auth: keys reloaded");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("auth: cannot read the key directory: {e}"),
        }
    }

    /// Whether the directory may hold keys not read yet.
    fn stale(&self) -> bool {
        let modified = Keys::modified(&self.verifier);
        (modified.is_some() && modified != self.modified) || self.scanned.elapsed() >= RESCAN_MIN
    }
}

struct Inner {
    verifier: Mutex<Option<Keys>>,
    public: Option<(Patterns, Patterns)>,
    metrics: Arc<AuthMetrics>,
}

impl Inner {
    /// Decides one session.
    fn decide(&self, request: &AdmissionRequest) -> Decision {
        let (connect, token) = credentials(request.target.as_deref());
        let result = match token {
            Some(token) => self.check_token(&token, &connect),
            None => self.check_public(&connect),
        };
        match result {
            Ok((access, via)) => {
                self.metrics.admitted(via);
                Decision::Admit(access)
            }
            Err((kind, reason)) => {
                self.metrics.refused(kind);
                tracing::debug!(session = request.session, target = ?request.target.as_deref().map(redact), kind, reason, "refused");
                Decision::Refuse { code: session_code::UNAUTHORIZED, reason: format!("{kind}: {reason}") }
            }
        }
    }

    fn check_token(&self, token: &str, connect: &Path) -> Result<(Access, &'static str), (&'static str, String)> {
        let mut guard = self.verifier.lock().expect("verifier lock");
        let Some(keys) = guard.as_mut() else {
            return Err(("no_key", "a token was presented but no key is configured to verify it".into()));
        };
        let now = unix_now();
        let mut result = keys.verifier.authorize(token, connect, now);
        // A key added to the directory since the last read: read it again.
        if matches!(result, Err(Refusal::UnknownKid(_))) && keys.stale() {
            keys.rescan();
            result = keys.verifier.authorize(token, connect, now);
        }
        result.map(|a| (a, "token")).map_err(|e| (e.kind(), e.to_string()))
    }

    fn check_public(&self, connect: &Path) -> Result<(Access, &'static str), (&'static str, String)> {
        let Some((publish, subscribe)) = &self.public else {
            return Err(("no_token", "a token is required".into()));
        };
        Access::public(publish, subscribe, connect)
            .map(|a| (a, "public"))
            .map_err(|e| ("not_public", format!("no token, and the public patterns do not reach {connect}: {e}")))
    }
}

impl TokenGate {
    /// Re-reads a key directory in the background, so removed keys stop working.
    fn spawn_rescans(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RESCAN_EVERY).await;
                let Some(inner) = weak.upgrade() else { return };
                let mut guard = inner.verifier.lock().expect("verifier lock");
                if let Some(keys) = guard.as_mut() {
                    keys.rescan();
                }
            }
        });
    }
}

impl Gatekeeper for TokenGate {
    fn admit(
        &self,
        request: AdmissionRequest,
        _handle: AccessHandle,
    ) -> Pin<Box<dyn Future<Output = Decision> + Send>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.decide(&request) })
    }
}

/// A target with its `jwt` value hidden, for logs.
pub fn redact(target: &str) -> String {
    match target.split_once('?') {
        Some((path, _)) => format!("{path}?…"),
        None => target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(public: &[&str]) -> AuthArgs {
        AuthArgs { auth_public: public.iter().map(|s| s.to_string()).collect(), ..AuthArgs::default() }
    }

    #[test]
    fn a_public_literal_without_wildcard_is_refused() {
        let e = args(&["anon"]).public().unwrap_err().to_string();
        assert!(e.contains("write `anon/**`"), "{e}");
        assert!(args(&["anon/**", "*/chat"]).public().unwrap().is_some());
    }

    #[test]
    fn credentials_come_from_the_target() {
        assert_eq!(credentials(Some("/room?jwt=abc&x=1")), (Path::new("room"), Some("abc".into())));
        assert_eq!(credentials(Some("/room")), (Path::new("room"), None));
        assert_eq!(credentials(None), (Path::root(), None));
        assert_eq!(credentials(Some("/?jwt=")), (Path::root(), None));
    }

    #[test]
    fn public_rules_decide_tokenless_sessions_and_refuse_tokens_without_a_key() {
        let inner = Inner {
            verifier: Mutex::new(None),
            public: args(&["anon/**"]).public().unwrap(),
            metrics: Arc::new(AuthMetrics::default()),
        };
        let req = |target: &str| AdmissionRequest {
            session: 1,
            kind: moqt_driver_quinn::TransportKind::WebTransport,
            version: moqt_proto::Version::Lite06,
            remote: None,
            target: Some(target.to_string()),
        };
        assert!(matches!(inner.decide(&req("/anon/room")), Decision::Admit(a) if a.can_publish(&Path::new("x"))));
        assert!(matches!(inner.decide(&req("/")), Decision::Admit(a) if !a.can_subscribe(&Path::new("other"))));
        assert!(matches!(inner.decide(&req("/other")), Decision::Refuse { code: 2, .. }));
        assert!(matches!(inner.decide(&req("/anon?jwt=x.y.z")), Decision::Refuse { code: 2, .. }));
        let text = inner.metrics.render();
        assert!(text.contains("moqt_auth_refused_total{kind=\"no_key\"} 1"), "{text}");
        assert!(text.contains("moqt_auth_refused_total{kind=\"not_public\"} 1"), "{text}");
        assert!(text.contains("moqt_auth_admitted_total{via=\"public\"} 2"), "{text}");
    }

    #[test]
    fn the_file_fills_what_the_flags_leave() {
        let file: AuthFile = toml::from_str("key_dir = \"keys\"\npublic = \"anon/**\"\nleeway = 5").unwrap();
        let merged = AuthArgs::default().merge(file);
        assert_eq!(merged.auth_key_dir, Some(PathBuf::from("keys")));
        assert_eq!(merged.auth_public, vec!["anon/**".to_string()]);
        assert_eq!(merged.auth_leeway, Some(5));
        let file: AuthFile = toml::from_str("public = [\"a/**\", \"b/**\"]").unwrap();
        assert_eq!(args(&["c/**"]).merge(file).auth_public, vec!["c/**".to_string()]);
    }
}
