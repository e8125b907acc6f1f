//! # moqt-auth
//!
//! Token authentication for moqt, compatible with moq-dev's `moq-token` (keys and tokens),
//! `moq-auth` (claims with patterns) and `moq-relay` (the external auth server contract). It turns
//! a credential into a [`moqt_proto::access::Access`], which the relay core enforces.
//!
//! - [`jwk`]: keys in moq-token's file format, every algorithm it offers.
//! - [`keygen`]: key generation; [`sign()`]: signing (what `moqt token generate|sign` use).
//! - [`claims`]: both claim forms (`put`/`get` prefixes, `publish`/`subscribe` patterns) and key
//!   scopes.
//! - [`verify`]: JWT verification with the time passed in; [`keys`]: one key or a key directory
//!   that rescans for rotation, and the [`Verifier`] that combines them.
//! - [`server`]: the auth server's request and answer types and the decisions around them.
//! - [`jwt_from_query`]: the token in a connect URL's `?jwt=`.
//!
//! The exact rules, with examples, are in `docs/auth.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod claims;
pub mod error;
pub mod jwk;
pub mod keygen;
pub mod keys;
pub mod server;
mod sign;
pub mod verify;

pub use claims::{Claims, Scope, UnknownClaims};
pub use error::{KeyError, Refusal};
pub use jwk::{Algorithm, Key};
pub use keys::{KeyDir, KeySet, Scan, Verifier};
pub use sign::sign;
pub use verify::Options;

/// The token a connect URL's query carries: the last non-empty `jwt` parameter, percent-decoded
/// (moq-relay's rule; a JWT never needs decoding, but a client may have encoded it anyway).
pub fn jwt_from_query(query: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, v)| k == "jwt" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .last()
}

/// Splits a dialed path from its query: `/room?jwt=x` is (`/room`, `Some("jwt=x")`).
pub fn split_path_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}
