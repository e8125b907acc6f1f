//! `moqt token generate|sign|verify` end to end through the binary (no other tool needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MOQT: &str = env!("CARGO_BIN_EXE_moqt");

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("moqt-token-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(MOQT).args(args).env("MOQT_LOG", "warn").output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn generate_sign_verify() {
    let dir = Scratch::new("flow");
    // To stdout: one base64url line.
    let key = ok(&["token", "generate", "--id", "k1"]);
    assert_eq!(key.lines().count(), 1);
    assert!(key.trim().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let (private, public) = (dir.path("p.jwk"), dir.path("q.jwk"));
    ok(&["token", "generate", "--algorithm", "EdDSA", "--id", "k2", "--out", &private, "--public", &public]);
    let token = ok(&[
        "token",
        "sign",
        "--key",
        &private,
        "--root",
        "room",
        "--publish",
        "alice",
        "--subscribe-pattern",
        "*/cam",
        "--valid-for",
        "600",
    ]);
    let file = dir.path("t.jwt");
    std::fs::write(&file, &token).unwrap();
    let out = ok(&["token", "verify", "--key", &public, "--in", &file, "--path", "room"]);
    let mut lines = out.lines();
    let claims = lines.next().unwrap();
    assert!(claims.starts_with(r#"{"root":"room","publish":["alice/**"],"subscribe":["*/cam"],"exp":"#), "{claims}");
    assert!(lines
        .next()
        .unwrap()
        .starts_with(r#"access at "room": publish ["alice/**"] subscribe ["*/cam"] cluster false expires "#));
    // Refusals exit non-zero and name the kind.
    assert!(
        fails(&["token", "verify", "--key", &public, "--in", &file, "--path", "elsewhere"]).contains("root_mismatch")
    );
    assert!(fails(&["token", "verify", "--key", &public, "--in", &file, "--now", "99999999999"]).contains("(expired)"));
    let other = dir.path("o.jwk");
    ok(&["token", "generate", "--algorithm", "EdDSA", "--id", "k2", "--out", &other]);
    assert!(fails(&["token", "verify", "--key", &other, "--in", &file]).contains("bad_signature"));
    // A key directory picks by kid.
    let keys = dir.path("keys");
    std::fs::create_dir(&keys).unwrap();
    ok(&["token", "generate", "--algorithm", "ES384", "--id", "d1", "--out-dir", &keys]);
    assert!(Path::new(&keys).join("d1.jwk").is_file());
    let t = ok(&["token", "sign", "--key", &format!("{keys}/d1.jwk"), "--publish", "", "--subscribe", "", "--cluster"]);
    std::fs::write(&file, &t).unwrap();
    let out = ok(&["token", "verify", "--key-dir", &keys, "--in", &file, "--path", "/"]);
    assert!(out.contains("cluster true"), "{out}");
    assert!(fails(&["token", "verify", "--key-dir", &dir.path(""), "--in", &file]).contains("unknown_kid"));
}

#[test]
fn usage_errors() {
    let dir = Scratch::new("usage");
    assert!(fails(&["token", "generate", "--public", "-"]).contains("both keys to stdout"));
    assert!(fails(&["token", "generate", "--public", &dir.path("x.jwk"), "--out", &dir.path("y.jwk")])
        .contains("no public part"));
    assert!(fails(&["token", "generate", "--algorithm", "ES512"]).contains("unsupported algorithm"));
    assert!(fails(&["token", "generate", "--id", "../x"]).contains("invalid key ID"));
    let key = dir.path("k.jwk");
    ok(&["token", "generate", "--out", &key]);
    assert!(fails(&["token", "sign", "--key", &key]).contains("useless"));
    assert!(fails(&["token", "sign", "--key", &key, "--publish-pattern", "/bad"]).contains("invalid pattern"));
    assert!(fails(&["token", "verify", "--key", "-", "--in", "-"]).contains("stdin"));
}
