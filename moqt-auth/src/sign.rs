//! Signing: claims in, a compact JWT out, shaped like moq-token's (header
//! `{"typ":"JWT","alg":…,"kid":…}`, claims as in [`Claims::to_json`]).

use jsonwebtoken::Header;

use crate::claims::Claims;
use crate::error::KeyError;
use crate::jwk::Key;

/// Signs `claims` with `key`. Refused when the key may not sign or has no private part, when the
/// claims grant nothing, and when they exceed the key's scope (all as moq-token refuses).
pub fn sign(key: &Key, claims: &Claims) -> Result<String, KeyError> {
    if !key.allows("sign") {
        return Err(KeyError::Operation("sign"));
    }
    if !key.is_private() {
        return Err(KeyError::NotPrivate);
    }
    if claims.is_useless() {
        return Err(KeyError::Useless);
    }
    if key.scope().is_some_and(|s| !s.allows(claims)) {
        return Err(KeyError::ScopeExceeded);
    }
    let mut header = Header::new(key.algorithm().jwt());
    header.kid = key.kid().map(str::to_string);
    jsonwebtoken::encode(&header, &claims.wire(), &key.encoding_key()?).map_err(|e| KeyError::Crypto(e.to_string()))
}
