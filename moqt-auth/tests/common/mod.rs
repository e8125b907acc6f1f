//! Helpers shared by the integration tests: fixture paths and forging tokens with chosen bytes.
#![allow(dead_code)]

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use moqt_auth::jwk::Material;
use moqt_auth::Key;

/// A time before every fixture's `exp` (4102444800, year 2100) and after its `iat`.
pub const NOW: u64 = 1_800_000_000;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn key(name: &str) -> Key {
    Key::from_file(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn token(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap().trim().to_string()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with exactly this header and payload text, signed with HMAC-`alg` over `secret`
/// (`alg` names the hash: HS256, HS384 or HS512).
pub fn forge_hmac(secret: &[u8], alg: jsonwebtoken::Algorithm, header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap();
    format!("{message}.{signature}")
}

/// The HMAC secret of an `oct` key.
pub fn secret(key: &Key) -> Vec<u8> {
    match key.material() {
        Material::Oct { secret } => secret.clone(),
        _ => panic!("not an HMAC key"),
    }
}

/// A token signed with the HS256 fixture key, with this payload and kid `fx-HS256`.
pub fn hs256(payload: &str) -> String {
    forge_hmac(
        &secret(&key("HS256.jwk")),
        jsonwebtoken::Algorithm::HS256,
        r#"{"typ":"JWT","alg":"HS256","kid":"fx-HS256"}"#,
        payload,
    )
}
