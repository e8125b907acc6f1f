//! Interoperability of `moqt token` with moq-dev's `moq-token` binary (crate moq-token-cli): keys
//! and tokens each one makes are accepted by the other. Runs when `MOQ_TOKEN_BIN` names the
//! binary (CI installs it with .ci/peers); without it each test says on stderr that it skipped.
//! The verification half also runs always, on committed moq-token fixtures (moqt-auth's tests).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MOQT: &str = env!("CARGO_BIN_EXE_moqt");

const ALGORITHMS: [&str; 12] =
    ["HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"];

/// The moq-token binary, or `None` after saying the test is skipped (written to stderr directly,
/// which the test harness does not capture).
fn moq_token(test: &str) -> Option<PathBuf> {
    match std::env::var_os("MOQ_TOKEN_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "MOQ_TOKEN_BIN={} is not a file", path.display());
            Some(path)
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: MOQ_TOKEN_BIN is not set, so nothing was checked against moq-token \
                 (install it with `bash .ci/peers moq-token`)"
            );
            None
        }
    }
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("moqt-token-interop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).env("MOQT_LOG", "warn").output().unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

/// Runs and expects success; returns stdout.
fn ok(bin: &Path, args: &[&str]) -> String {
    let out = run(bin, args);
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn in_an_hour() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    (now + 3600).to_string()
}

#[test]
fn tokens_made_by_moq_token_pass_moqt_verify() {
    let Some(mt) = moq_token("tokens_made_by_moq_token_pass_moqt_verify") else { return };
    let moqt = Path::new(MOQT);
    let dir = Scratch::new("theirs");
    let exp = in_an_hour();
    for alg in ALGORITHMS {
        let private = dir.path(&format!("{alg}.jwk"));
        let public = dir.path(&format!("{alg}.pub.jwk"));
        let mut gen = vec!["generate", "--algorithm", alg, "--id", "theirs", "--out", s(&private)];
        if !alg.starts_with("HS") {
            gen.extend(["--public", s(&public)]);
        }
        ok(&mt, &gen);
        let token = dir.path(&format!("{alg}.jwt"));
        let signed = ok(
            &mt,
            &[
                "sign",
                "--key",
                s(&private),
                "--root",
                "demo",
                "--publish",
                "alice",
                "--subscribe",
                "",
                "--expires",
                &exp,
            ],
        );
        std::fs::write(&token, signed.trim()).unwrap();
        let verifier = if alg.starts_with("HS") { &private } else { &public };
        let out = ok(moqt, &["token", "verify", "--key", s(verifier), "--in", s(&token), "--path", "demo/alice"]);
        assert!(out.starts_with(&format!(r#"{{"root":"demo","put":["alice"],"get":[""],"exp":{exp}"#)), "{alg}: {out}");
        assert!(out.contains(r#"access at "demo/alice": publish ["**"] subscribe ["**"]"#), "{alg}: {out}");
        // A moq-token key file is also a moqt signing key.
        let ours = ok(moqt, &["token", "sign", "--key", s(&private), "--subscribe", "x"]);
        std::fs::write(&token, ours.trim()).unwrap();
        ok(&mt, &["verify", "--key", s(verifier), "--in", s(&token)]);
    }
    // A key directory written by moq-token.
    let keys = dir.path("keys");
    std::fs::create_dir(&keys).unwrap();
    ok(
        &mt,
        &[
            "generate",
            "--algorithm",
            "EdDSA",
            "--id",
            "dir-one",
            "--out",
            s(&dir.path("one.jwk")),
            "--public-dir",
            s(&keys),
        ],
    );
    ok(&mt, &["generate", "--id", "dir-two", "--out-dir", s(&keys)]);
    for (kid, key) in [("one", dir.path("one.jwk")), ("two", keys.join("dir-two.jwk"))] {
        let token = dir.path(&format!("{kid}.jwt"));
        std::fs::write(&token, ok(&mt, &["sign", "--key", s(&key), "--publish", kid]).trim()).unwrap();
        let out = ok(moqt, &["token", "verify", "--key-dir", s(&keys), "--in", s(&token)]);
        assert_eq!(out.trim(), format!(r#"{{"put":["{kid}"]}}"#));
    }
}

#[test]
fn tokens_made_by_moqt_pass_moq_token_verify() {
    let Some(mt) = moq_token("tokens_made_by_moqt_pass_moq_token_verify") else { return };
    let moqt = Path::new(MOQT);
    let dir = Scratch::new("ours");
    let exp = in_an_hour();
    for alg in ALGORITHMS {
        let private = dir.path(&format!("{alg}.jwk"));
        let public = dir.path(&format!("{alg}.pub.jwk"));
        let mut gen = vec!["token", "generate", "--algorithm", alg, "--id", "ours", "--out", s(&private)];
        if !alg.starts_with("HS") {
            gen.extend(["--public", s(&public)]);
        }
        ok(moqt, &gen);
        let token = dir.path(&format!("{alg}.jwt"));
        let signed = ok(
            moqt,
            &[
                "token",
                "sign",
                "--key",
                s(&private),
                "--root",
                "demo",
                "--publish",
                "alice",
                "--subscribe",
                "",
                "--expires",
                &exp,
                "--issued",
                "1700000000",
            ],
        );
        std::fs::write(&token, signed.trim()).unwrap();
        let verifier = if alg.starts_with("HS") { &private } else { &public };
        let out = ok(&mt, &["verify", "--key", s(verifier), "--in", s(&token)]);
        assert!(out.contains(r#"root: "demo""#) && out.contains(r#""alice""#), "{alg}: {out}");
        assert!(out.contains(&format!("tv_sec: {exp}")), "{alg}: {out}");
        // Our key files are moq-token signing keys too.
        std::fs::write(&token, ok(&mt, &["sign", "--key", s(&private), "--publish", "bob"]).trim()).unwrap();
        assert_eq!(
            ok(moqt, &["token", "verify", "--key", s(verifier), "--in", s(&token)]).trim(),
            r#"{"put":["bob"]}"#
        );
    }
    // moq-token really checks: a token of ours under another key is refused by it.
    let other = dir.path("other.jwk");
    ok(moqt, &["token", "generate", "--algorithm", "HS256", "--id", "ours", "--out", s(&other)]);
    let out = run(&mt, &["verify", "--key", s(&other), "--in", s(&dir.path("HS256.jwt"))]);
    assert!(!out.status.success(), "moq-token accepted a token signed with another key");
    // A scoped key of ours: moq-token enforces its scope as we do.
    let scoped = dir.path("scoped.jwk");
    ok(
        moqt,
        &["token", "generate", "--algorithm", "ES256", "--root", "project", "--publish", "live", "--out", s(&scoped)],
    );
    let inside = ok(moqt, &["token", "sign", "--key", s(&scoped), "--root", "project/live", "--publish", "room"]);
    std::fs::write(dir.path("inside.jwt"), inside.trim()).unwrap();
    ok(&mt, &["verify", "--key", s(&scoped), "--in", s(&dir.path("inside.jwt"))]);
    let refused = run(&mt, &["sign", "--key", s(&scoped), "--publish", "other"]);
    assert!(!refused.status.success(), "moq-token signed beyond our key's scope");
}
