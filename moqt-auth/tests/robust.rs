//! Arbitrary input never panics: tokens, claims, JWK text, auth server replies.

mod common;

use common::*;
use moqt_auth::claims::UnknownClaims;
use moqt_auth::{server, Claims, Key, KeySet, Verifier};
use moqt_proto::Path;
use proptest::prelude::*;

fn token_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "[A-Za-z0-9_-]{0,40}",
        Just(b64(br#"{"alg":"HS256","kid":"fx-HS256"}"#)),
        Just(b64(br#"{"alg":"none"}"#)),
        Just(b64(br#"{"put":[""],"get":"x","exp":1e400}"#)),
        any::<Vec<u8>>().prop_map(|b| b64(&b)),
    ];
    proptest::collection::vec(part, 0..5).prop_map(|parts| parts.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verifying_anything_never_panics(token in token_like(), now in any::<u64>(), leeway in any::<u64>()) {
        for name in ["HS256.jwk", "ES256.pub.jwk", "RS256.pub.jwk", "EdDSA.pub.jwk"] {
            let v = Verifier { keys: KeySet::Single(Box::new(key(name))), options: moqt_auth::Options { leeway, ..Default::default() } };
            let _ = v.authorize(&token, &Path::new("a/b"), now);
        }
    }

    #[test]
    fn signed_garbage_claims_never_panic(payload in any::<Vec<u8>>(), json in "\\{(\"[a-z]{1,6}\":(\\[\"[a-z*/]{0,6}\"\\]|[0-9-]{1,25}|null|true|\"[a-z/*]{0,8}\"),?){0,6}\\}") {
        let v = Verifier::new(KeySet::Single(Box::new(key("HS256.jwk"))));
        let secret = secret(&key("HS256.jwk"));
        let header = r#"{"alg":"HS256"}"#;
        let t = forge_hmac(&secret, jsonwebtoken::Algorithm::HS256, header, &String::from_utf8_lossy(&payload));
        let _ = v.authorize(&t, &Path::root(), NOW);
        let t = forge_hmac(&secret, jsonwebtoken::Algorithm::HS256, header, &json);
        let _ = v.authorize(&t, &Path::new("x"), NOW);
        let _ = Claims::from_json(json.as_bytes(), UnknownClaims::Ignore);
    }

    #[test]
    fn reading_any_key_text_never_panics(text in any::<String>(), json in "\\{(\"(alg|kty|crv|x|y|d|k|n|e|kid|key_ops|scope)\":(\"[A-Za-z0-9_-]{0,48}\"|\\[\\]|null|1),?){0,8}\\}") {
        let _ = Key::from_text(&text);
        let _ = Key::from_text(&json);
        let _ = Key::from_text(&b64(json.as_bytes()));
    }

    #[test]
    fn any_auth_server_reply_never_panics(status in any::<u16>(), body in any::<Vec<u8>>(), now in any::<u64>()) {
        let _ = server::admit(status, &body, "/room", now);
        let current = moqt_proto::access::Access::full(&Path::new("room"));
        let _ = server::recheck(&current, status, &body, "/room", now);
        let _ = server::admit(200, br#"{"publish":["**"],"expires":-9223372036854775808}"#, "/", now);
    }
}
