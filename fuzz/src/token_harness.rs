//! Token input for moqt-auth: the first byte picks what the rest is fed to. Nothing may panic.
//!
//! - 0: a compact JWT, verified with an HS256 key and an Ed25519 public key, then authorized at a
//!   connect path taken from the input's tail;
//! - 1: a claims document (both unknown-claim modes), turned into a grant and authorized;
//! - 2: key text (JSON or base64url JWK);
//! - 3: an auth server reply (2-byte status, then the body), on connect and on a re-check.

use moqt_auth::claims::UnknownClaims;
use moqt_auth::{server, Claims, Key, KeySet, Options, Verifier};
use moqt_proto::access::Access;
use moqt_proto::Path;

const HS256: &str = r#"{"alg":"HS256","kty":"oct","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","kid":"fz"}"#;
const ED25519: &str = r#"{"alg":"EdDSA","key_ops":["verify"],"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

/// Runs one input.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let now = 1_800_000_000;
    match mode % 4 {
        0 => {
            let (token, path) = text.split_once('\n').unwrap_or((&text, "room"));
            for key in [HS256, ED25519] {
                let key = Key::from_text(key).expect("the fuzz keys are valid");
                let v = Verifier { keys: KeySet::Single(Box::new(key)), options: Options::default() };
                let _ = v.authorize(token, &Path::new(path), now);
            }
        }
        1 => {
            for unknown in [UnknownClaims::Refuse, UnknownClaims::Ignore] {
                if let Ok(claims) = Claims::from_json(rest, unknown) {
                    let _ = claims.to_json();
                    for path in ["", "a", "a/b/c"] {
                        if let Ok(access) = claims.grant(30).authorize(&Path::new(path)) {
                            let _ = access.can_publish(&Path::new("a/b"));
                            let _ = access.may_see(&Path::new("a/b/c"));
                            let _ = access.may_watch(&Path::new("a"));
                        }
                    }
                }
            }
        }
        2 => {
            if let Ok(key) = Key::from_text(&text) {
                let _ = key.to_text();
                let _ = key.public();
            }
        }
        _ => {
            if rest.len() < 2 {
                return;
            }
            let status = u16::from_be_bytes([rest[0], rest[1]]);
            let body = &rest[2..];
            let _ = server::admit(status, body, "/room", now);
            let _ = server::recheck(&Access::full(&Path::new("room")), status, body, "/room", now);
        }
    }
}
