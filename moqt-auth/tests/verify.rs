//! Verification of tokens made by the real moq-token (committed fixtures), and every refusal.

mod common;

use common::*;
use moqt_auth::claims::UnknownClaims;
use moqt_auth::jwk::Algorithm;
use moqt_auth::verify::{self, Options};
use moqt_auth::{sign, Claims, Key, KeyDir, KeySet, Refusal, Verifier};
use moqt_proto::access::{Denied, Pattern, Patterns};
use moqt_proto::Path;

fn set(texts: &[&str]) -> Patterns {
    texts.iter().map(|t| t.parse::<Pattern>().unwrap()).collect()
}

fn opts() -> Options {
    Options::default()
}

fn single(name: &str) -> Verifier {
    Verifier::new(KeySet::Single(Box::new(key(name))))
}

#[test]
fn moq_token_fixtures_verify_with_every_algorithm() {
    for alg in Algorithm::ALL {
        let token = token(&format!("{alg}.jwt"));
        let mut keys = vec![key(&format!("{alg}.jwk"))];
        if !alg.is_hmac() {
            keys.push(key(&format!("{alg}.pub.jwk")));
        }
        for k in keys {
            let claims = verify::verify(&k, &token, NOW, &opts()).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(claims.root, "demo");
            assert_eq!(claims.publish, set(&["alice/**"]));
            assert_eq!(claims.subscribe, set(&["**"]));
            assert_eq!(claims.expires, Some(4102444800));
            assert_eq!(claims.issued, Some(1700000000));
            let access = verify::authorize(&k, &token, &Path::new("/demo"), NOW, &opts()).unwrap();
            assert!(access.can_publish(&Path::new("alice/cam")));
            assert!(!access.can_publish(&Path::new("bob")));
            assert!(access.can_subscribe(&Path::new("bob")));
            assert_eq!(access.expires(), Some(4102444800 + verify::DEFAULT_LEEWAY));
        }
    }
}

#[test]
fn connect_path_scopes_the_fixture_token() {
    let v = single("ES256.pub.jwk");
    let t = token("ES256.jwt");
    let top = v.authorize(&t, &Path::root(), NOW).unwrap();
    assert_eq!(top.publish(), &set(&["demo/alice/**"]));
    assert_eq!(top.subscribe(), &set(&["demo/**"]));
    let alice = v.authorize(&t, &Path::new("demo/alice"), NOW).unwrap();
    assert_eq!(alice.publish(), &set(&["**"]));
    let bob = v.authorize(&t, &Path::new("demo/bob"), NOW).unwrap();
    assert!(bob.publish().is_empty() && bob.subscribe().is_all());
    assert_eq!(
        v.authorize(&t, &Path::new("other"), NOW),
        Err(Refusal::Denied(Denied::RootMismatch { root: Path::new("demo"), path: Path::new("other") }))
    );
    assert!(matches!(
        v.authorize(&t, &Path::new("demolition"), NOW),
        Err(Refusal::Denied(Denied::RootMismatch { .. }))
    ));
}

#[test]
fn key_directory_and_scoped_key_fixtures() {
    let (dir, scan) = KeyDir::open(&fixture("keydir")).unwrap();
    assert_eq!(scan.added, ["dir-a", "dir-b"]);
    assert!(scan.skipped.is_empty());
    let v = Verifier::new(KeySet::Dir(dir));
    let a = v.verify(&token("dir-a.jwt"), NOW).unwrap();
    assert_eq!(a.subscribe, set(&["**"]));
    let b = v.verify(&token("dir-b.jwt"), NOW).unwrap();
    assert_eq!(b.publish, set(&["room/bob/**"]));
    assert_eq!(v.verify(&token("HS256.jwt"), NOW), Err(Refusal::UnknownKid("fx-HS256".into())));

    let scoped = single("scoped.pub.jwk");
    let c = scoped.verify(&token("scoped.jwt"), NOW).unwrap();
    assert_eq!((c.root.as_str(), c.publish.clone()), ("project/live", set(&["room/**"])));
    // The same private key without its scope signs more than the scope allows: refused.
    let mut unscoped: serde_json::Value = serde_json::from_str(&key("scoped.jwk").to_json()).unwrap();
    unscoped.as_object_mut().unwrap().remove("scope");
    let unscoped = Key::from_jwk(&unscoped).unwrap();
    let wide = Claims { root: "project".into(), subscribe: set(&["**"]), ..Claims::default() };
    let t = sign(&unscoped, &wide).unwrap();
    assert_eq!(scoped.verify(&t, NOW), Err(Refusal::ScopeExceeded));
    // And the scoped key refuses to sign it at all.
    assert!(sign(&key("scoped.jwk"), &wide).is_err());
}

#[test]
fn refusals_of_the_header() {
    let v = single("HS256.jwk");
    let s = secret(&key("HS256.jwk"));
    let hs = jsonwebtoken::Algorithm::HS256;
    let payload = r#"{"put":"a"}"#;
    let forged = |header: &str| forge_hmac(&s, hs, header, payload);

    assert_eq!(v.verify(&"a".repeat(20_000), NOW), Err(Refusal::TooLong(verify::MAX_TOKEN_LEN)));
    for bad in ["", "abc", "a.b", "a.b.c.d", "!!.e30.x", "e30.e30.", "bnVsbA.e30.x"] {
        assert!(matches!(v.verify(bad, NOW), Err(Refusal::Malformed(_))), "{bad}: {:?}", v.verify(bad, NOW));
    }
    assert_eq!(v.verify(&forged(r#"{"typ":"JWT"}"#), NOW).unwrap_err().kind(), "malformed");
    // Unsigned tokens, however the header spells it.
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(payload.as_bytes()));
    assert_eq!(v.verify(&unsigned, NOW), Err(Refusal::AlgNone));
    assert_eq!(v.verify(&forged(r#"{"alg":"NONE"}"#), NOW), Err(Refusal::AlgNone));
    assert_eq!(v.verify(&forged(r#"{"alg":"ES512"}"#), NOW), Err(Refusal::UnsupportedAlgorithm("ES512".into())));
    assert_eq!(v.verify(&forged(r#"{"alg":"HS1"}"#), NOW), Err(Refusal::UnsupportedAlgorithm("HS1".into())));
    // Another HMAC strength than the key's.
    let hs384 = forge_hmac(&s, jsonwebtoken::Algorithm::HS384, r#"{"alg":"HS384"}"#, payload);
    assert_eq!(v.verify(&hs384, NOW), Err(Refusal::AlgorithmMismatch { token: "HS384".into(), key: "HS256".into() }));
    assert_eq!(v.verify(&forged(r#"{"alg":"HS256","crit":["exp"]}"#), NOW), Err(Refusal::Critical));
    assert!(matches!(v.verify(&forged(r#"{"alg":"HS256","kid":5}"#), NOW), Err(Refusal::Malformed(_))));
    // The fixture key has kid fx-HS256: another kid is refused, none is accepted.
    assert_eq!(
        v.verify(&forged(r#"{"alg":"HS256","kid":"other"}"#), NOW),
        Err(Refusal::WrongKid { token: "other".into(), key: "fx-HS256".into() })
    );
    assert!(v.verify(&forged(r#"{"alg":"HS256"}"#), NOW).is_ok());
}

#[test]
fn algorithm_confusion_is_refused() {
    // The classic attack: an HMAC token keyed with the verifier's public key material.
    for name in ["RS256.pub.jwk", "ES256.pub.jwk", "EdDSA.pub.jwk"] {
        let public = key(name);
        let v = Verifier::new(KeySet::Single(Box::new(public.clone())));
        for secret in [public.to_json().into_bytes(), public.to_text().into_bytes()] {
            let t =
                forge_hmac(&secret, jsonwebtoken::Algorithm::HS256, r#"{"alg":"HS256"}"#, r#"{"put":[""],"get":[""]}"#);
            assert!(matches!(v.verify(&t, NOW), Err(Refusal::AlgorithmMismatch { .. })), "{name}");
        }
    }
    // An asymmetric token against an HMAC key.
    let v = single("HS256.jwk");
    let es = token("ES256.jwt");
    let body: Vec<&str> = es.split('.').collect();
    let retagged = format!("{}.{}.{}", b64(br#"{"alg":"ES256"}"#), body[1], body[2]);
    assert!(matches!(v.verify(&retagged, NOW), Err(Refusal::AlgorithmMismatch { .. })));
}

#[test]
fn refusals_of_keys_and_signatures() {
    // A key directory needs a kid, and knows only its own.
    let (dir, _) = KeyDir::open(&fixture("keydir")).unwrap();
    let v = Verifier::new(KeySet::Dir(dir));
    assert_eq!(v.verify(&hs256_without_kid(), NOW), Err(Refusal::MissingKid));
    assert_eq!(v.verify(&hs256(r#"{"put":"a"}"#), NOW), Err(Refusal::UnknownKid("fx-HS256".into())));
    // key_ops without verify.
    let sign_only = Verifier::new(KeySet::Single(Box::new(key("HS256.jwk").with_ops(&["sign"]))));
    assert_eq!(sign_only.verify(&token("HS256.jwt"), NOW), Err(Refusal::KeyCannotVerify));
    // Tampered payload, and a signature by another key of the same algorithm.
    let t = token("ES256.jwt");
    let parts: Vec<&str> = t.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(br#"{"root":"","put":[""],"get":[""]}"#), parts[2]);
    assert_eq!(single("ES256.pub.jwk").verify(&tampered, NOW), Err(Refusal::BadSignature));
    let other = moqt_auth::keygen::generate(Algorithm::ES256, Some("fx-ES256".into())).unwrap();
    let foreign = sign(&other, &Claims { publish: Patterns::all(), ..Claims::default() }).unwrap();
    assert_eq!(single("ES256.pub.jwk").verify(&foreign, NOW), Err(Refusal::BadSignature));
    let es_as_hs = verify::verify(&key("HS256.jwk"), &format!("{}.{}.AAAA", parts[0], parts[1]), NOW, &opts());
    assert_eq!(es_as_hs.unwrap_err().kind(), "algorithm_mismatch");
    let hs = token("HS256.jwt");
    let hp: Vec<&str> = hs.split('.').collect();
    assert_eq!(single("HS256.jwk").verify(&format!("{}.{}.AAAA", hp[0], hp[1]), NOW), Err(Refusal::BadSignature));
    assert!(matches!(single("HS256.jwk").verify(&format!("{}.{}.!!", hp[0], hp[1]), NOW), Err(Refusal::Malformed(_))));
}

fn hs256_without_kid() -> String {
    forge_hmac(&secret(&key("HS256.jwk")), jsonwebtoken::Algorithm::HS256, r#"{"alg":"HS256"}"#, r#"{"put":"a"}"#)
}

#[test]
fn refusals_of_the_claims() {
    let v = single("HS256.jwk");
    let check = |payload: &str| v.verify(&hs256(payload), NOW);
    assert_eq!(check(r#"{"put":"a","foo":1}"#), Err(Refusal::UnknownClaim("foo".into())));
    assert_eq!(check(r#"{"put":"a","aud":"relay"}"#), Err(Refusal::Audience));
    assert_eq!(check(r#"{"root":"x"}"#), Err(Refusal::Useless));
    assert_eq!(check(r#"{"put":[],"get":[]}"#), Err(Refusal::Useless));
    assert_eq!(check(r#"{"publish":[],"subscribe":[]}"#), Err(Refusal::Useless));
    for bad in [
        r#"{"put":["a"],"publish":["b"]}"#,
        r#"{"put":null}"#,
        r#"{"put":["a"],"put":["b"]}"#,
        r#"{"publish":["a//b"]}"#,
        r#"{"put":"a","exp":1e12}"#,
    ] {
        assert!(matches!(check(bad), Err(Refusal::InvalidClaims(_))), "{bad}: {:?}", check(bad));
    }
    assert!(matches!(check("[1,2]"), Err(Refusal::Malformed(_) | Refusal::InvalidClaims(_))));
    // Told to ignore unknown claims, moq-token's way.
    let lenient = Verifier {
        keys: KeySet::Single(Box::new(key("HS256.jwk"))),
        options: Options { unknown_claims: UnknownClaims::Ignore, ..opts() },
    };
    assert!(lenient.verify(&hs256(r#"{"put":"a","foo":1,"name":"alice"}"#), NOW).is_ok());
    // Both forms and every registered claim we read.
    let c = check(r#"{"root":"r","publish":["a","*/chat"],"subscribe":["**"],"iss":"me","sub":"u","jti":"1","iat":5}"#)
        .unwrap();
    assert_eq!(c.publish, set(&["a", "*/chat"]));
}

#[test]
fn expiry_and_not_before_with_leeway() {
    let exp = 1_000_000;
    let at = |leeway: u64, payload: &str, now: u64| {
        let v = Verifier { keys: KeySet::Single(Box::new(key("HS256.jwk"))), options: Options { leeway, ..opts() } };
        v.verify(&hs256(payload), now)
    };
    let expiring = format!(r#"{{"put":"a","exp":{exp}}}"#);
    // No leeway: valid until the second before exp (moq-auth's exact rule).
    assert!(at(0, &expiring, exp - 1).is_ok());
    assert_eq!(at(0, &expiring, exp), Err(Refusal::Expired { exp: exp as i64, now: exp, leeway: 0 }));
    // With leeway: valid until exp + leeway.
    assert!(at(30, &expiring, exp + 29).is_ok());
    assert!(matches!(at(30, &expiring, exp + 30), Err(Refusal::Expired { .. })));
    let early = format!(r#"{{"put":"a","nbf":{exp}}}"#);
    assert!(at(0, &early, exp).is_ok());
    assert_eq!(at(0, &early, exp - 1), Err(Refusal::NotYetValid { nbf: exp as i64, now: exp - 1, leeway: 0 }));
    assert!(at(30, &early, exp - 30).is_ok());
    assert!(matches!(at(30, &early, exp - 31), Err(Refusal::NotYetValid { .. })));
    // A negative or huge time never wraps around.
    let r = at(30, r#"{"put":"a","exp":-9223372036854775808}"#, 0);
    assert!(matches!(r, Err(Refusal::Expired { .. })), "{r:?}");
    assert!(at(u64::MAX, r#"{"put":"a","exp":9223372036854775807}"#, u64::MAX).is_ok());
    assert!(matches!(at(0, r#"{"put":"a","nbf":9223372036854775807}"#, 0), Err(Refusal::NotYetValid { .. })));
    assert!(at(0, r#"{"put":"a","nbf":9223372036854775807}"#, u64::MAX).is_ok());
    // The session's expiry includes the leeway.
    let v = Verifier { keys: KeySet::Single(Box::new(key("HS256.jwk"))), options: Options { leeway: 7, ..opts() } };
    let access = v.authorize(&hs256(&expiring), &Path::root(), exp - 100).unwrap();
    assert_eq!(access.expires(), Some(exp + 7));
    assert!(!access.is_expired(exp + 6) && access.is_expired(exp + 7));
}

#[test]
fn refusals_at_the_connect_path() {
    let v = single("HS256.jwk");
    let t = hs256(r#"{"root":"","get":["demo"]}"#);
    assert_eq!(
        v.authorize(&t, &Path::new("other"), NOW),
        Err(Refusal::Denied(Denied::NoAccess { path: Path::new("other") }))
    );
    let t = hs256(r#"{"root":"a*","put":[""]}"#);
    assert!(matches!(v.authorize(&t, &Path::root(), NOW), Err(Refusal::Denied(Denied::Pattern(_)))));
    assert!(v.authorize(&t, &Path::new("a*/x"), NOW).is_ok());
}

#[test]
fn cluster_rights() {
    let v = single("HS256.jwk");
    let root = hs256(r#"{"put":[""],"get":[""]}"#);
    assert!(v.authorize(&root, &Path::root(), NOW).unwrap().cluster());
    assert!(!v.authorize(&root, &Path::new("demo"), NOW).unwrap().cluster());
    let narrow = hs256(r#"{"put":["x"],"get":[""]}"#);
    assert!(!v.authorize(&narrow, &Path::root(), NOW).unwrap().cluster());
    let legacy = hs256(r#"{"put":["x"],"get":["x"],"cluster":true}"#);
    let a = v.authorize(&legacy, &Path::root(), NOW).unwrap();
    assert!(a.cluster() && !a.can_subscribe(&Path::new("y")));
}

#[test]
fn signing_round_trips_every_algorithm() {
    for alg in Algorithm::ALL {
        let private = key(&format!("{alg}.jwk"));
        let claims = Claims {
            root: "room".into(),
            publish: set(&["alice/**"]),
            subscribe: set(&["*/cam"]),
            expires: Some(4102444800),
            not_before: Some(1),
            ..Claims::default()
        };
        let t = sign(&private, &claims).unwrap();
        let verifier = if alg.is_hmac() { private.clone() } else { private.public().unwrap() };
        assert_eq!(verify::verify(&verifier, &t, NOW, &opts()).unwrap(), claims, "{alg}");
        let head = verify::header(&t).unwrap();
        assert_eq!((head.alg, head.kid.as_deref()), (alg, Some(format!("fx-{alg}").as_str())));
    }
    // A public key cannot sign, nor can a verify-only one; a useless token is not signed.
    assert!(sign(&key("ES256.pub.jwk"), &Claims { publish: Patterns::all(), ..Claims::default() }).is_err());
    assert!(sign(&key("HS256.jwk").with_ops(&["verify"]), &Claims { publish: Patterns::all(), ..Claims::default() })
        .is_err());
    assert!(sign(&key("HS256.jwk"), &Claims::default()).is_err());
}

#[test]
fn refusal_kinds_are_distinct() {
    let kinds = [
        Refusal::TooLong(1).kind(),
        Refusal::Malformed(String::new()).kind(),
        Refusal::AlgNone.kind(),
        Refusal::UnsupportedAlgorithm(String::new()).kind(),
        Refusal::AlgorithmMismatch { token: String::new(), key: String::new() }.kind(),
        Refusal::Critical.kind(),
        Refusal::MissingKid.kind(),
        Refusal::UnknownKid(String::new()).kind(),
        Refusal::WrongKid { token: String::new(), key: String::new() }.kind(),
        Refusal::KeyCannotVerify.kind(),
        Refusal::BadSignature.kind(),
        Refusal::Expired { exp: 0, now: 0, leeway: 0 }.kind(),
        Refusal::NotYetValid { nbf: 0, now: 0, leeway: 0 }.kind(),
        Refusal::InvalidClaims(String::new()).kind(),
        Refusal::UnknownClaim(String::new()).kind(),
        Refusal::Audience.kind(),
        Refusal::Useless.kind(),
        Refusal::ScopeExceeded.kind(),
    ];
    let unique: std::collections::HashSet<_> = kinds.iter().collect();
    assert_eq!(unique.len(), kinds.len());
}
