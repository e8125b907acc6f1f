//! Key rotation without a restart: a key directory rescanned while tokens come and go.

mod common;

use common::NOW;
use moqt_auth::jwk::Algorithm;
use moqt_auth::keygen::generate;
use moqt_auth::{sign, Claims, KeyDir, KeySet, Refusal, Verifier};
use moqt_proto::access::Patterns;

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("moqt-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn claims() -> Claims {
    Claims { subscribe: Patterns::all(), ..Claims::default() }
}

#[test]
fn keys_rotate_without_a_restart() {
    let tmp = TempDir::new("rotate");
    let dir = &tmp.0;
    let a = generate(Algorithm::ES256, Some("key-a".into())).unwrap();
    a.public().unwrap().write_file(&dir.join("key-a.jwk")).unwrap();
    let (keys, scan) = KeyDir::open(dir).unwrap();
    assert_eq!(scan.added, ["key-a"]);
    let mut v = Verifier::new(KeySet::Dir(keys));
    let token_a = sign(&a, &claims()).unwrap();
    assert!(v.verify(&token_a, NOW).is_ok());

    // A new key is unknown until the directory is rescanned.
    let b = generate(Algorithm::EdDSA, Some("key-b".into())).unwrap();
    b.write_file(&dir.join("key-b.jwk")).unwrap();
    let token_b = sign(&b, &claims()).unwrap();
    assert_eq!(v.verify(&token_b, NOW), Err(Refusal::UnknownKid("key-b".into())));
    let scan = v.rescan().unwrap();
    assert_eq!((scan.added.as_slice(), scan.changed.len(), scan.removed.len()), (&["key-b".to_string()][..], 0, 0));
    assert!(v.verify(&token_b, NOW).is_ok());
    assert!(v.verify(&token_a, NOW).is_ok());

    // Replacing a key under the same kid retires the tokens of the old one.
    let a2 = generate(Algorithm::ES256, Some("key-a".into())).unwrap();
    a2.write_file(&dir.join("key-a.jwk")).unwrap();
    let scan = v.rescan().unwrap();
    assert_eq!(scan.changed, ["key-a"]);
    assert_eq!(v.verify(&token_a, NOW), Err(Refusal::BadSignature));
    assert!(v.verify(&sign(&a2, &claims()).unwrap(), NOW).is_ok());

    // Removing a key retires its tokens; a rescan with no change reports nothing.
    std::fs::remove_file(dir.join("key-b.jwk")).unwrap();
    let scan = v.rescan().unwrap();
    assert_eq!(scan.removed, ["key-b"]);
    assert_eq!(v.verify(&token_b, NOW), Err(Refusal::UnknownKid("key-b".into())));
    let scan = v.rescan().unwrap();
    assert!(scan.added.is_empty() && scan.changed.is_empty() && scan.removed.is_empty() && scan.skipped.is_empty());
}

#[test]
fn a_scan_skips_what_it_cannot_use() {
    let tmp = TempDir::new("skip");
    let dir = &tmp.0;
    generate(Algorithm::HS256, Some("good".into())).unwrap().write_file(&dir.join("good.jwk")).unwrap();
    std::fs::write(dir.join("broken.jwk"), "not a key").unwrap();
    generate(Algorithm::HS256, None).unwrap().write_file(&dir.join("bad name.jwk")).unwrap();
    std::fs::write(dir.join("README.txt"), "ignored").unwrap();
    std::fs::create_dir(dir.join("sub.jwk")).unwrap();
    let (keys, scan) = KeyDir::open(dir).unwrap();
    assert_eq!(keys.kids().collect::<Vec<_>>(), ["good"]);
    let mut skipped: Vec<String> =
        scan.skipped.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    skipped.sort();
    assert_eq!(skipped, ["bad name.jwk", "broken.jwk"]);
    // A key that breaks is dropped, not kept in its old form.
    let mut keys = keys;
    std::fs::write(dir.join("good.jwk"), "garbage").unwrap();
    let scan = keys.rescan().unwrap();
    assert_eq!(scan.removed, ["good"]);
    assert!(keys.get("good").is_none());
    // A directory that is gone is an error, and the keys held stay.
    assert!(KeyDir::open(&dir.join("missing")).is_err());
}

#[test]
fn the_file_name_is_the_kid() {
    let tmp = TempDir::new("name");
    let dir = &tmp.0;
    // moq-relay looks keys up by file name only; the JWK's own kid does not matter.
    let key = generate(Algorithm::HS256, Some("inner".into())).unwrap();
    key.write_file(&dir.join("outer.jwk")).unwrap();
    let (keys, _) = KeyDir::open(dir).unwrap();
    assert!(keys.get("outer").is_some());
    let v = Verifier::new(KeySet::Dir(keys));
    assert_eq!(v.verify(&sign(&key, &claims()).unwrap(), NOW), Err(Refusal::UnknownKid("inner".into())));
}
