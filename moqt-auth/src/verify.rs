//! Verification: a compact JWT and the current time in, the verified [`Claims`] (or a
//! [`Refusal`]) out. Nothing here reads a clock; the caller passes `now` in unix seconds.
//!
//! Checks, in order: length; three parts and a JSON header; `alg` present, not `none`, one
//! moq-token offers, and the same as the key's (so an HMAC token is never checked against a
//! public key); no `crit`; the key found by `kid`; `key_ops` allow `verify`; the signature; the
//! claims well-formed; `exp` and `nbf` with the leeway; something granted; the key's scope.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use moqt_proto::access::Access;
use moqt_proto::Path;
use serde_json::Value;

use crate::claims::{Claims, UnknownClaims};
use crate::error::Refusal;
use crate::jwk::{Algorithm, Key};

/// The longest token read, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The default clock leeway, in seconds.
pub const DEFAULT_LEEWAY: u64 = 30;

/// How tokens are checked, apart from the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Seconds of clock difference forgiven on `exp` and `nbf` (default [`DEFAULT_LEEWAY`]).
    pub leeway: u64,
    /// Claims this crate does not know: refused (default) or ignored.
    pub unknown_claims: UnknownClaims,
}

impl Default for Options {
    fn default() -> Options {
        Options { leeway: DEFAULT_LEEWAY, unknown_claims: UnknownClaims::Refuse }
    }
}

/// The parts of a JWT header the verifier looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    /// The algorithm.
    pub alg: Algorithm,
    /// The key ID, if named.
    pub kid: Option<String>,
}

/// Reads and checks the header (length, shape, `alg`, `crit`) without verifying anything else.
pub fn header(token: &str) -> Result<TokenHeader, Refusal> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::TooLong(MAX_TOKEN_LEN));
    }
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed("a JWT has three dot-separated parts".into()));
    };
    let bytes = URL_SAFE_NO_PAD.decode(head).map_err(|e| Refusal::Malformed(format!("header: {e}")))?;
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(Refusal::Malformed("the header is not a JSON object".into()));
    };
    let alg = match map.get("alg") {
        Some(Value::String(a)) if a.eq_ignore_ascii_case("none") => return Err(Refusal::AlgNone),
        Some(Value::String(a)) => a.parse::<Algorithm>().map_err(|_| Refusal::UnsupportedAlgorithm(a.clone()))?,
        _ => return Err(Refusal::Malformed("the header has no alg".into())),
    };
    if map.contains_key("crit") {
        return Err(Refusal::Critical);
    }
    let kid = match map.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(Refusal::Malformed("kid must be a string".into())),
    };
    Ok(TokenHeader { alg, kid })
}

/// Verifies `token` with `key` at `now` (unix seconds) and returns its claims. The `kid` is not
/// compared here (see [`KeySet`](crate::KeySet)).
pub fn verify(key: &Key, token: &str, now: u64, options: &Options) -> Result<Claims, Refusal> {
    let head = header(token)?;
    if head.alg != key.algorithm() {
        return Err(Refusal::AlgorithmMismatch { token: head.alg.to_string(), key: key.algorithm().to_string() });
    }
    if !key.allows("verify") {
        return Err(Refusal::KeyCannotVerify);
    }
    let mut validation = jsonwebtoken::Validation::new(key.algorithm().jwt());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => Refusal::BadSignature,
            ErrorKind::InvalidAlgorithm => {
                Refusal::AlgorithmMismatch { token: head.alg.to_string(), key: key.algorithm().to_string() }
            }
            _ => Refusal::Malformed(e.to_string()),
        }
    })?;
    // Read the claims from their own bytes so that duplicated names are caught (a `Value` keeps
    // only the last).
    let payload = token.split('.').nth(1).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|e| Refusal::Malformed(format!("payload: {e}")))?;
    drop(data);
    let claims = Claims::from_json(&payload, options.unknown_claims)?;
    check_times(&claims, now, options.leeway)?;
    if claims.is_useless() {
        return Err(Refusal::Useless);
    }
    if key.scope().is_some_and(|s| !s.allows(&claims)) {
        return Err(Refusal::ScopeExceeded);
    }
    Ok(claims)
}

/// `exp` refuses from `exp + leeway` on; `nbf` refuses until `nbf - leeway`. With no leeway this
/// is moq-auth's rule (expired at `exp` itself, valid at `nbf` itself).
pub fn check_times(claims: &Claims, now: u64, leeway: u64) -> Result<(), Refusal> {
    let (t, l) = (i128::from(now), i128::from(leeway));
    if let Some(exp) = claims.expires {
        if i128::from(exp) + l <= t {
            return Err(Refusal::Expired { exp, now, leeway });
        }
    }
    if let Some(nbf) = claims.not_before {
        if i128::from(nbf) > t + l {
            return Err(Refusal::NotYetValid { nbf, now, leeway });
        }
    }
    Ok(())
}

/// Verifies `token` with `key` and authorizes it at the connect path: the session's access.
pub fn authorize(key: &Key, token: &str, connect: &Path, now: u64, options: &Options) -> Result<Access, Refusal> {
    let claims = verify(key, token, now, options)?;
    Ok(claims.grant(options.leeway).authorize(connect)?)
}
