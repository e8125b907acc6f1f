use super::*;
use crate::keygen::generate;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn jwk(value: serde_json::Value) -> Result<Key, KeyError> {
    Key::from_jwk(&value)
}

#[test]
fn every_moq_token_fixture_loads() {
    for alg in Algorithm::ALL {
        let key = Key::from_file(&fixture(&format!("{alg}.jwk"))).unwrap();
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.kid(), Some(format!("fx-{alg}").as_str()));
        assert!(key.is_private() && key.allows("sign") && key.allows("verify"));
        if !alg.is_hmac() {
            let public = Key::from_file(&fixture(&format!("{alg}.pub.jwk"))).unwrap();
            assert!(!public.is_private() && public.allows("verify") && !public.allows("sign"));
            // Our public half is theirs.
            assert_eq!(key.public().unwrap().to_json(), public.to_json());
        }
    }
    let scoped = Key::from_file(&fixture("scoped.pub.jwk")).unwrap();
    assert_eq!(scoped.scope().unwrap().root, "project");
}

#[test]
fn text_forms_round_trip() {
    let key = Key::from_file(&fixture("ES256.jwk")).unwrap();
    let text = key.to_text();
    assert!(!text.contains('=') && !text.contains('\n'));
    assert_eq!(Key::from_text(&text).unwrap().to_json(), key.to_json());
    // Raw JSON, padded base64url and surrounding whitespace are read too.
    assert_eq!(Key::from_text(&key.to_json()).unwrap().to_json(), key.to_json());
    let padded = URL_SAFE.encode(key.to_json());
    assert_eq!(Key::from_text(&format!("\n {padded}\n")).unwrap().to_json(), key.to_json());
    // moq-token's field order.
    assert!(key.to_json().starts_with(r#"{"alg":"ES256","key_ops":["sign","verify"],"kty":"EC","crv":"P-256","x":"#));
}

#[test]
fn generate_every_algorithm() {
    // RSA generation is the same for all six RSA algorithms and costs about a second each, so two
    // are generated and the other four reuse one of them.
    let rsa = generate(Algorithm::PS512, None).unwrap().material;
    for alg in Algorithm::ALL {
        let key = match alg {
            Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS384 => {
                Key::new(alg, rsa.clone(), Some("k1".into())).unwrap()
            }
            _ => generate(alg, Some("k1".into())).unwrap(),
        };
        assert_eq!(key.algorithm(), alg);
        assert!(key.is_private());
        let again = Key::from_text(&key.to_text()).unwrap();
        assert_eq!(again.to_json(), key.to_json(), "{alg}");
        let size = match &key.material {
            Material::Oct { secret } => secret.len(),
            Material::Ec { x, .. } | Material::Okp { x, .. } => x.len(),
            Material::Rsa { n, .. } => n.len(),
        };
        let want = match alg {
            Algorithm::HS256 | Algorithm::ES256 | Algorithm::EdDSA => 32,
            Algorithm::HS384 | Algorithm::ES384 => 48,
            Algorithm::HS512 => 64,
            _ => 256,
        };
        assert_eq!(size, want, "{alg}");
        assert_eq!(key.public().is_err(), alg.is_hmac());
    }
    let kid = crate::keygen::random_kid();
    assert_eq!(kid.len(), 16);
    assert!(check_kid(&kid).is_ok());
    assert_ne!(kid, crate::keygen::random_kid());
}

#[test]
fn kty_defaults_to_oct() {
    let key = jwk(serde_json::json!({"alg":"HS256","k":URL_SAFE_NO_PAD.encode([7u8; 32])})).unwrap();
    assert!(matches!(key.material(), Material::Oct { .. }));
    assert!(key.allows("sign") && key.allows("verify"));
}

#[test]
fn bad_keys_are_refused() {
    let es = Key::from_file(&fixture("ES256.jwk")).unwrap();
    let es: serde_json::Value = serde_json::from_str(&es.to_json()).unwrap();
    let with = |patch: serde_json::Value| {
        let mut v = es.clone();
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v
    };
    let other = generate(Algorithm::ES256, None).unwrap();
    let Material::Ec { d: Some(other_d), y: other_y, .. } = &other.material else { unreachable!() };
    let secret = |n: usize| URL_SAFE_NO_PAD.encode(vec![1u8; n]);
    let cases = [
        ("short secret", serde_json::json!({"alg":"HS256","kty":"oct","k":secret(31)})),
        ("oct for ES256", serde_json::json!({"alg":"ES256","kty":"oct","k":secret(32)})),
        ("unknown alg", serde_json::json!({"alg":"ES512","kty":"oct","k":secret(32)})),
        ("no alg", serde_json::json!({"kty":"oct","k":secret(32)})),
        ("no k", serde_json::json!({"alg":"HS256","kty":"oct"})),
        ("bad base64", serde_json::json!({"alg":"HS256","kty":"oct","k":"!!!"})),
        ("unknown kty", serde_json::json!({"alg":"HS256","kty":"XYZ","k":secret(32)})),
        ("ES384 on P-256", with(serde_json::json!({"alg":"ES384"}))),
        ("P-521", with(serde_json::json!({"crv":"P-521"}))),
        ("short x", with(serde_json::json!({"x":secret(31)}))),
        ("off curve", with(serde_json::json!({"y":URL_SAFE_NO_PAD.encode(other_y)}))),
        ("foreign d", with(serde_json::json!({"d":URL_SAFE_NO_PAD.encode(other_d)}))),
        ("bad kid", with(serde_json::json!({"kid":"../etc"}))),
        ("empty kid", with(serde_json::json!({"kid":""}))),
        ("unknown op", with(serde_json::json!({"key_ops":["sign","wrapKey"]}))),
        ("ops not a list", with(serde_json::json!({"key_ops":"sign"}))),
        ("useless scope", with(serde_json::json!({"scope":{"root":"x"}}))),
        ("not an object", serde_json::json!(["alg"])),
        ("short Ed25519", serde_json::json!({"alg":"EdDSA","kty":"OKP","crv":"Ed25519","x":secret(31)})),
        ("Ed448", serde_json::json!({"alg":"EdDSA","kty":"OKP","crv":"Ed448","x":secret(57)})),
        ("EdDSA as ES256", serde_json::json!({"alg":"ES256","kty":"OKP","crv":"Ed25519","x":secret(32)})),
        ("small RSA", serde_json::json!({"alg":"RS256","kty":"RSA","n":secret(128),"e":"AQAB"})),
        ("RSA for HS256", serde_json::json!({"alg":"HS256","kty":"RSA","n":secret(256),"e":"AQAB"})),
    ];
    for (what, value) in cases {
        assert!(jwk(value.clone()).is_err(), "{what}: {value}");
    }
    let rs = Key::from_file(&fixture("RS256.jwk")).unwrap();
    let rs: serde_json::Value = serde_json::from_str(&rs.to_json()).unwrap();
    let mut partial = rs.clone();
    partial.as_object_mut().unwrap().remove("qi");
    assert!(jwk(partial).is_err(), "partial RSA private key");
    let mut oth = rs.clone();
    oth["oth"] = serde_json::json!([{"r":"AQ","d":"AQ","t":"AQ"}]);
    assert!(jwk(oth).is_err(), "multi-prime RSA");
    let mut wrong_d = rs.clone();
    wrong_d["d"] = rs["dp"].clone();
    assert!(jwk(wrong_d).is_err(), "inconsistent RSA private key");
    assert!(Key::from_text("eyJub3QiOiJqc29uIg").is_err());
    assert!(Key::from_text("").is_err());
}

#[test]
fn unknown_jwk_fields_are_ignored() {
    let key =
        jwk(serde_json::json!({"alg":"HS256","k":URL_SAFE_NO_PAD.encode([7u8; 32]),"use":"sig","x5c":[]})).unwrap();
    assert_eq!(key.algorithm(), Algorithm::HS256);
}

#[cfg(unix)]
#[test]
fn private_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("moqt-auth-jwk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private.jwk");
    std::fs::write(&private, "old contents").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = generate(Algorithm::ES256, Some("p".into())).unwrap();
    key.write_file(&private).unwrap();
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&private).unwrap(), key.to_text());
    let public = dir.join("public.jwk");
    key.public().unwrap().write_file(&public).unwrap();
    assert_ne!(std::fs::metadata(&public).unwrap().permissions().mode() & 0o077, 0);
    assert!(!Key::from_file(&public).unwrap().is_private());
    std::fs::remove_dir_all(&dir).unwrap();
}
