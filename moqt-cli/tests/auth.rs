//! Authentication end to end with the `moqt` binary over loopback: tokens in the WebTransport
//! URL and in the raw QUIC SETUP path (lite-05/06), public patterns (also for lite-04 raw QUIC,
//! which has no path), every refusal with the code the client sees (the refusal matrix, printed),
//! expiry during a session, key rotation in a key directory, tokens made by moq-dev's
//! `moq-token` (committed fixtures, and the binary when `MOQ_TOKEN_BIN` is set), relay peers with
//! and without the cluster right, and `--auth-url` against a small HTTP server in the test.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Proc, BIN, WAIT};

/// A scratch directory removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("moqt-auth-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `moqt ARGS` to completion; returns stdout (trimmed), failing on a non-zero exit.
fn moqt(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).env("MOQT_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "moqt {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A relay on a free loopback port: (process, address, fingerprint, the auth line it printed).
fn relay(extra: &[&str]) -> (Proc, String, String, String) {
    let mut args = vec!["relay", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args);
    let fp = p.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
    let line = p.wait_err("listening on");
    let addr = line.split_whitespace().nth(2).unwrap().to_string();
    let auth = p.wait_err("auth");
    (p, addr, fp, auth)
}

/// How a client reaches the relay.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// WebTransport (the token in the URL query).
    Wt,
    /// WebSocket on the relay's TCP port (the token in the URL query, as for WebTransport).
    Ws,
    /// Raw QUIC with this version (lite-05/06: the token in the SETUP path; lite-03/04: none).
    Quic(&'static str),
}

impl Via {
    fn url(self, addr: &str, path: &str, jwt: Option<&str>) -> String {
        let query = jwt.map(|t| format!("?jwt={t}")).unwrap_or_default();
        match self {
            Via::Wt => format!("https://{addr}{path}{query}"),
            Via::Ws => format!("ws://{addr}{path}{query}"),
            Via::Quic(_) => format!("moqt://{addr}{path}{query}"),
        }
    }

    fn args(self) -> Vec<&'static str> {
        match self {
            Via::Wt | Via::Ws => vec![],
            Via::Quic(v) => vec!["--version", v],
        }
    }

    fn name(self) -> String {
        match self {
            Via::Wt => "WebTransport lite-06".into(),
            Via::Ws => "WebSocket lite-06".into(),
            Via::Quic(v) => format!("raw QUIC {v}"),
        }
    }
}

/// `moqt <cmd> URL ARGS… --tls-fingerprint FP` plus the transport's flags.
fn client(cmd: &str, via: Via, url: &str, fp: &str, rest: &[&str]) -> Proc {
    let mut args = vec![cmd, url];
    args.extend_from_slice(rest);
    args.extend(via.args());
    args.extend(["--tls-fingerprint", fp]);
    Proc::spawn(&args)
}

/// What a client saw: `ok` (it did what it came for) or the code that ended it.
fn outcome(p: Proc) -> String {
    let (ok, err) = p.finish();
    let text = err.join("\n");
    assert!(!text.contains("panicked"), "{text}");
    if ok {
        return "ok".into();
    }
    if let Some(i) = text.find("the session closed (code ") {
        let rest = text[i + "the session closed (code ".len()..].lines().next().unwrap_or("");
        return format!("session closed {}", rest.replace(',', ""));
    }
    if let Some(i) = text.find("ended with code ") {
        let code = text[i + "ended with code ".len()..].split_whitespace().next().unwrap_or("");
        return format!("stream reset {code}");
    }
    format!("failed: {text}")
}

/// GETs `path` from the relay's HTTP side.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// Waits until the relay's /metrics holds `line` (polled: the counters move with the traffic).
fn await_metric(addr: &str, line: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = http_get(addr, "/metrics");
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no metrics line {line:?} in:\n{text}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Keys and tokens for the matrix: key `k1` (HS256), an impostor key with the same kid.
struct Keys {
    dir: Scratch,
}

impl Keys {
    fn new(name: &str) -> Keys {
        let dir = Scratch::new(name);
        moqt(&["token", "generate", "--id", "k1", "--out", &dir.path("k1.jwk")]);
        moqt(&["token", "generate", "--id", "k1", "--out", &dir.path("impostor.jwk")]);
        Keys { dir }
    }

    fn key(&self) -> String {
        self.dir.path("k1.jwk")
    }

    /// `moqt token sign` with the real key and these extra flags.
    fn sign(&self, flags: &[&str]) -> String {
        self.sign_with("k1.jwk", flags)
    }

    fn sign_with(&self, key: &str, flags: &[&str]) -> String {
        let key = self.dir.path(key);
        let mut args = vec!["token", "sign", "--key", &key];
        args.extend_from_slice(flags);
        moqt(&args)
    }
}

/// A publisher of `name` (a clock) through `url`; returns once it runs.
fn publisher(via: Via, url: &str, fp: &str, name: &str) -> Proc {
    let p = client("pub", via, url, fp, &[name, "--clock"]);
    p.wait_err("publishing");
    p
}

/// Waits until `name` is announced to a session at `url` (the readiness signal for subscribers).
fn await_announced(via: Via, url: &str, fp: &str, name: &str) {
    let watcher = client("announced", via, url, fp, &[name, "--count", "1"]);
    assert_eq!(watcher.next_out(), format!("+ {name}"));
    // It closes its session and exits by itself (the relay sees the close at once).
    let (ok, err) = watcher.finish();
    assert!(ok, "{err:?}");
}

/// One subscriber attempt: `ok` once it got a frame.
fn try_sub(via: Via, url: &str, fp: &str, name: &str) -> String {
    outcome(client("sub", via, url, fp, &[name, "--track", "seconds", "--count", "1"]))
}

/// One watcher attempt: `ok` once it saw `name` announced under `prefix`.
fn try_watch(via: Via, url: &str, fp: &str, prefix: &str) -> String {
    outcome(client("announced", via, url, fp, &[prefix, "--count", "1"]))
}

#[test]
fn the_refusal_matrix() {
    let keys = Keys::new("matrix");
    let key = keys.key();
    let (_relay, addr, fp, auth) = relay(&["--auth-key", &key, "--auth-public", "anon/**", "--auth-leeway", "0"]);
    assert!(auth.contains("tokens checked with one key") && auth.contains("publish [anon/**]"), "{auth}");
    let far = (unix_now() + 3600).to_string();
    let past = (unix_now() - 60).to_string();
    // A publisher with everything, at the top, over raw QUIC lite-06; it publishes room/cam.
    let root = keys.sign(&["--publish", "", "--subscribe", "", "--expires", &far]);
    let _cam = publisher(Via::Quic("lite-06"), &Via::Quic("lite-06").url(&addr, "/", Some(&root)), &fp, "room/cam");
    let _anon = publisher(Via::Wt, &Via::Wt.url(&addr, "/anon", None), &fp, "cam");
    let top = Via::Quic("lite-05").url(&addr, "/", Some(&root));
    await_announced(Via::Quic("lite-05"), &top, &fp, "room/cam");
    await_announced(Via::Quic("lite-05"), &top, &fp, "anon/cam");
    let reader = keys.sign(&["--root", "room", "--subscribe", "", "--expires", &far]);
    let alice_only = keys.sign(&["--root", "room", "--subscribe", "alice", "--expires", &far]);
    let expired = keys.sign(&["--root", "room", "--subscribe", "", "--expires", &past]);
    let early = keys.sign(&["--root", "room", "--subscribe", "", "--not-before", &far]);
    let impostor = keys.sign_with("impostor.jwk", &["--root", "room", "--subscribe", ""]);
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb290IjoiIiwiZ2V0IjpbIiJdfQ.".to_string();
    let wrong_kid = {
        moqt(&["token", "generate", "--id", "k2", "--out", &keys.dir.path("k2.jwk")]);
        keys.sign_with("k2.jwk", &["--root", "room", "--subscribe", ""])
    };

    type Case<'a> = (&'a str, Via, &'a str, Option<&'a str>, &'a str, &'a str);
    // (who, via, connect path, token, what it tries, expected)
    let cases: Vec<Case> = vec![
        ("reader of room", Via::Wt, "/room", Some(&reader), "subscribe cam", "ok"),
        ("reader of room", Via::Quic("lite-05"), "/room", Some(&reader), "subscribe cam", "ok"),
        ("reader of room", Via::Quic("lite-06"), "/", Some(&reader), "subscribe room/cam", "ok"),
        ("reader of room/alice", Via::Quic("lite-06"), "/room", Some(&alice_only), "subscribe cam", "stream reset 0x3"),
        ("reader of room/alice", Via::Wt, "/room", Some(&alice_only), "subscribe cam", "stream reset 0x3"),
        ("reader of room", Via::Ws, "/room", Some(&reader), "subscribe cam", "ok"),
        ("reader of room/alice", Via::Ws, "/room", Some(&alice_only), "subscribe cam", "stream reset 0x3"),
        ("expired token", Via::Ws, "/room", Some(&expired), "connect", "session closed 0x2 unauthorized: expired"),
        (
            "reader of room",
            Via::Quic("lite-05"),
            "/other",
            Some(&reader),
            "connect",
            "session closed 0x2 unauthorized: root_mismatch",
        ),
        ("expired token", Via::Wt, "/room", Some(&expired), "connect", "session closed 0x2 unauthorized: expired"),
        (
            "token not yet valid",
            Via::Quic("lite-06"),
            "/room",
            Some(&early),
            "connect",
            "session closed 0x2 unauthorized: not_yet_valid",
        ),
        (
            "token of another key, same kid",
            Via::Quic("lite-05"),
            "/room",
            Some(&impostor),
            "connect",
            "session closed 0x2 unauthorized: bad_signature",
        ),
        (
            "token with another kid",
            Via::Wt,
            "/room",
            Some(&wrong_kid),
            "connect",
            "session closed 0x2 unauthorized: wrong_kid",
        ),
        (
            "unsigned token (alg none)",
            Via::Quic("lite-06"),
            "/room",
            Some(&none),
            "connect",
            "session closed 0x2 unauthorized: alg_none",
        ),
        ("garbage token", Via::Wt, "/room", Some("abc"), "connect", "session closed 0x2 unauthorized: malformed"),
        ("anonymous", Via::Wt, "/room", None, "connect", "session closed 0x2 unauthorized: not_public"),
        ("anonymous", Via::Quic("lite-06"), "/room", None, "connect", "session closed 0x2 unauthorized: not_public"),
        ("anonymous", Via::Wt, "/anon", None, "subscribe cam", "ok"),
        ("anonymous", Via::Quic("lite-05"), "/", None, "subscribe anon/cam", "ok"),
        ("anonymous", Via::Quic("lite-05"), "/", None, "subscribe room/cam", "stream reset 0x3"),
        ("anonymous (no path)", Via::Quic("lite-04"), "", None, "subscribe anon/cam", "ok"),
        ("anonymous (no path)", Via::Quic("lite-03"), "", None, "subscribe room/cam", "stream reset 0x3"),
        (
            "token (no path: not sent)",
            Via::Quic("lite-04"),
            "",
            Some(&reader),
            "subscribe room/cam",
            "stream reset 0x3",
        ),
    ];
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (who, via, path, token, tries, want) in cases {
        let url = via.url(&addr, path, token);
        let got = match tries.strip_prefix("subscribe ") {
            Some(name) => try_sub(via, &url, &fp, name),
            None => try_watch(via, &url, &fp, ""),
        };
        // The close reason carries the refusal kind first: keep the kind only.
        let got = match got.split_once(": ") {
            Some((head, rest)) if got.starts_with("session closed") => {
                format!("{head}: {}", rest.split(':').next().unwrap_or(""))
            }
            _ => got,
        };
        if got != want {
            failures.push(format!("{who} via {} at {path:?} tried {tries}: want {want:?}, got {got:?}", via.name()));
        }
        rows.push(format!(
            "| {who} | {} | `{}` | {tries} | {got} |",
            via.name(),
            if path.is_empty() { "(none)" } else { path }
        ));
    }
    // An announcement outside the publish patterns is ignored, and counted.
    let cam_writer = keys.sign(&["--root", "room", "--publish", "cam", "--expires", &far]);
    let _outside = publisher(Via::Wt, &Via::Wt.url(&addr, "/room", Some(&cam_writer)), &fp, "mic");
    await_metric(&addr, "moqt_access_refused_total{request=\"announce\"} 1");
    rows.push("| writer of room/cam | WebTransport lite-06 | `/room` | announce mic | ignored (counted) |".into());

    let mut table = String::from("| who | via | connect path | tries | result |\n|---|---|---|---|---|\n");
    for r in &rows {
        table += r;
        table.push('\n');
    }
    let _ = writeln!(std::io::stderr(), "refusal matrix:\n{table}");
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));

    let metrics = http_get(&addr, "/metrics");
    for kind in ["root_mismatch", "not_yet_valid", "bad_signature", "wrong_kid", "alg_none", "malformed"] {
        assert!(metrics.contains(&format!("moqt_auth_refused_total{{kind=\"{kind}\"}} 1")), "{kind}:\n{metrics}");
    }
    // Expired twice: over WebTransport and over WebSocket.
    assert!(metrics.contains("moqt_auth_refused_total{kind=\"expired\"} 2"), "{metrics}");
    assert!(metrics.contains("moqt_auth_refused_total{kind=\"not_public\"} 2"), "{metrics}");
    assert!(metrics.contains("moqt_access_refused_total{request=\"subscribe\"} 6"), "{metrics}");
}

#[test]
fn a_session_ends_when_its_token_expires() {
    let keys = Keys::new("expiry");
    let (_relay, addr, fp, _) = relay(&["--auth-key", &keys.key(), "--auth-leeway", "0"]);
    let far = (unix_now() + 3600).to_string();
    let root = keys.sign(&["--publish", "", "--subscribe", "", "--expires", &far]);
    let _clock = publisher(Via::Wt, &Via::Wt.url(&addr, "/", Some(&root)), &fp, "clock");
    await_announced(Via::Wt, &Via::Wt.url(&addr, "/", Some(&root)), &fp, "clock");
    for via in [Via::Wt, Via::Quic("lite-05"), Via::Quic("lite-06")] {
        let soon = (unix_now() + 3).to_string();
        let short = keys.sign(&["--subscribe", "", "--expires", &soon]);
        let sub = client("sub", via, &via.url(&addr, "/", Some(&short)), &fp, &["clock", "--track", "seconds"]);
        // Frames flow until the expiry, then the relay closes the session.
        sub.next_out();
        let started = Instant::now();
        let line = sub.wait_err("the session closed");
        assert!(line.contains("code 0x2, unauthorized: access expired"), "{}: {line}", via.name());
        assert!(started.elapsed() < Duration::from_secs(10), "{}: closed at the expiry", via.name());
    }
    await_metric(&addr, "moqt_sessions_expired_total 3");
}

#[test]
fn a_key_added_to_the_key_directory_is_used_without_a_restart() {
    let dir = Scratch::new("rotation");
    let keys = dir.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    moqt(&["token", "generate", "--id", "old", "--out-dir", &keys]);
    let (_relay, addr, fp, auth) = relay(&["--auth-key-dir", &keys, "--auth-public-subscribe", "**"]);
    assert!(auth.contains("keys in"), "{auth}");
    let sign = |kid: &str| moqt(&["token", "sign", "--key", &format!("{keys}/{kid}.jwk"), "--publish", ""]);
    let old = sign("old");
    let _a = publisher(Via::Wt, &Via::Wt.url(&addr, "/", Some(&old)), &fp, "a");
    await_announced(Via::Wt, &Via::Wt.url(&addr, "/", None), &fp, "a");
    assert_eq!(try_sub(Via::Quic("lite-06"), &Via::Quic("lite-06").url(&addr, "/", None), &fp, "a"), "ok");
    // A key written after the start: its tokens work at once (the directory is read again).
    moqt(&["token", "generate", "--algorithm", "EdDSA", "--id", "new", "--out-dir", &keys]);
    let new = sign("new");
    let _b = publisher(Via::Quic("lite-05"), &Via::Quic("lite-05").url(&addr, "/", Some(&new)), &fp, "b");
    await_announced(Via::Wt, &Via::Wt.url(&addr, "/", None), &fp, "b");
    assert_eq!(try_sub(Via::Wt, &Via::Wt.url(&addr, "/", None), &fp, "b"), "ok");
    // A token naming a key that is not there.
    moqt(&["token", "generate", "--id", "gone", "--out", &dir.path("gone.jwk")]);
    let gone = moqt(&["token", "sign", "--key", &dir.path("gone.jwk"), "--publish", ""]);
    let got = outcome(client("pub", Via::Wt, &Via::Wt.url(&addr, "/", Some(&gone)), &fp, &["c", "--clock"]));
    assert!(got.starts_with("session closed 0x2 unauthorized: unknown_kid"), "{got}");
}

/// Builds a key directory of the committed moq-token fixtures' verification keys, named by kid.
fn fixture_keys(dir: &Scratch) -> (String, Vec<(String, String)>) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../moqt-auth/tests/fixtures");
    let keys = dir.path("fixtures");
    std::fs::create_dir_all(&keys).unwrap();
    let mut tokens = Vec::new();
    for alg in
        ["HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]
    {
        let public = fixtures.join(format!("{alg}.pub.jwk"));
        let key = if public.exists() { public } else { fixtures.join(format!("{alg}.jwk")) };
        std::fs::copy(&key, format!("{keys}/fx-{alg}.jwk")).unwrap();
        let token = std::fs::read_to_string(fixtures.join(format!("{alg}.jwt"))).unwrap().trim().to_string();
        tokens.push((alg.to_string(), token));
    }
    (keys, tokens)
}

#[test]
fn tokens_made_by_moq_token_are_accepted() {
    let dir = Scratch::new("fixtures");
    let (keys, tokens) = fixture_keys(&dir);
    let (_relay, addr, fp, _) = relay(&["--auth-key-dir", &keys]);
    // The fixtures grant {"root":"demo","put":["alice"],"get":[""]}: at /demo, alice/** and **.
    let (_, first) = &tokens[0];
    let _clock = publisher(Via::Wt, &Via::Wt.url(&addr, "/demo", Some(first)), &fp, "alice/clock");
    await_announced(Via::Wt, &Via::Wt.url(&addr, "/demo", Some(first)), &fp, "alice/clock");
    let vias = [Via::Wt, Via::Quic("lite-05"), Via::Quic("lite-06")];
    for (i, (alg, token)) in tokens.iter().enumerate() {
        let via = vias[i % vias.len()];
        let got = try_sub(via, &via.url(&addr, "/demo", Some(token)), &fp, "alice/clock");
        assert_eq!(got, "ok", "{alg} via {}", via.name());
    }
    // Publishing outside `alice` with the same tokens is not allowed.
    let (_, token) = &tokens[3];
    let _bob = publisher(Via::Quic("lite-06"), &Via::Quic("lite-06").url(&addr, "/demo", Some(token)), &fp, "bob");
    await_metric(&addr, "moqt_access_refused_total{request=\"announce\"} 1");

    // With the moq-token binary: fresh keys and tokens of every algorithm it offers.
    let Some(bin) = std::env::var_os("MOQ_TOKEN_BIN").map(PathBuf::from) else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the moq-token binary half of tokens_made_by_moq_token_are_accepted: MOQ_TOKEN_BIN is not set"
        );
        return;
    };
    let fresh = dir.path("fresh");
    let private = dir.path("private");
    for alg in ["HS256", "ES256", "RS256", "PS256", "EdDSA"] {
        let kid = format!("mt-{alg}");
        let mut args = vec!["generate", "--algorithm", alg, "--id", &kid, "--out-dir", &private];
        let symmetric = alg.starts_with("HS");
        if !symmetric {
            args.extend(["--public-dir", &fresh]);
        }
        std::fs::create_dir_all(&fresh).unwrap();
        std::fs::create_dir_all(&private).unwrap();
        let out = Command::new(&bin).args(&args).output().unwrap();
        assert!(out.status.success(), "moq-token {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        if symmetric {
            std::fs::copy(format!("{private}/{kid}.jwk"), format!("{fresh}/{kid}.jwk")).unwrap();
        }
    }
    let (_relay2, addr2, fp2, _) = relay(&["--auth-key-dir", &fresh]);
    let sign = |alg: &str, flags: &[&str]| {
        let key = format!("{private}/mt-{alg}.jwk");
        let mut args = vec!["sign", "--key", &key];
        args.extend_from_slice(flags);
        let out = Command::new(&bin).args(&args).output().unwrap();
        assert!(out.status.success(), "moq-token {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let writer = sign("EdDSA", &["--root", "live", "--publish", "cam"]);
    let _cam = publisher(Via::Wt, &Via::Wt.url(&addr2, "/live", Some(&writer)), &fp2, "cam");
    let watcher = sign("HS256", &["--root", "live", "--subscribe", ""]);
    await_announced(Via::Wt, &Via::Wt.url(&addr2, "/live", Some(&watcher)), &fp2, "cam");
    for (i, alg) in ["HS256", "ES256", "RS256", "PS256", "EdDSA"].iter().enumerate() {
        let reader = sign(alg, &["--root", "live", "--subscribe", ""]);
        let via = vias[i % vias.len()];
        assert_eq!(try_sub(via, &via.url(&addr2, "/live", Some(&reader)), &fp2, "cam"), "ok", "moq-token {alg}");
    }
}

/// Two relays: `core` (keys required) and `edge` linked to it with `token`; a publisher on the
/// edge. Returns (core, edge, core address, core fingerprint, the publisher).
fn linked(keys: &Keys, token: &str, version: &'static str) -> (Proc, Proc, String, String, Proc) {
    let (core, addr, fp, _) = relay(&["--auth-key", &keys.key()]);
    let peer = format!("moqt://{addr}/?jwt={token}");
    let (edge, edge_addr, edge_fp, _) =
        relay(&["--peer", &peer, "--peer-fingerprint", &fp, "--version", version, "--hop-id", "77"]);
    let p = publisher(Via::Quic(version), &format!("moqt://{edge_addr}"), &edge_fp, "live/cam");
    (core, edge, addr, fp, p)
}

#[test]
fn a_relay_peer_needs_the_cluster_right_to_forward() {
    let keys = Keys::new("peers");
    for version in ["lite-05", "lite-06"] {
        let reader = keys.sign(&["--subscribe", ""]);
        // A root token (everything at the top): the cluster right.
        let root = keys.sign(&["--publish", "", "--subscribe", ""]);
        let (_core, _edge, addr, fp, _p) = linked(&keys, &root, version);
        let url = Via::Quic(version).url(&addr, "/", Some(&reader));
        await_announced(Via::Quic(version), &url, &fp, "live/cam");
        assert_eq!(try_sub(Via::Quic(version), &url, &fp, "live/cam"), "ok", "{version}: root token");

        // Everything to publish, but not everything to subscribe: an ordinary session.
        let narrow = keys.sign(&["--publish", "", "--subscribe", "live"]);
        let (_core, _edge, addr, fp, _p) = linked(&keys, &narrow, version);
        await_metric(&addr, "moqt_access_refused_total{request=\"forward\"} 1");
        let url = Via::Quic(version).url(&addr, "/", Some(&reader));
        let got = outcome(client("sub", Via::Quic(version), &url, &fp, &["live/cam", "--count", "1"]));
        assert_eq!(got, "stream reset 0x33", "{version}: nothing to route to");

        // moq-token 0.5's cluster claim gives it too, within the patterns.
        let cluster = keys.sign(&["--publish", "live", "--subscribe", "live", "--cluster"]);
        let (_core, _edge, addr, fp, _p) = linked(&keys, &cluster, version);
        let url = Via::Quic(version).url(&addr, "/", Some(&reader));
        await_announced(Via::Quic(version), &url, &fp, "live/cam");
        assert_eq!(try_sub(Via::Quic(version), &url, &fp, "live/cam"), "ok", "{version}: cluster claim");
    }
}

/// A small auth server: grants `{"publish":["**"],"subscribe":["**"]}` to a query holding
/// `jwt=good`, refuses (403) anything else, and reports every request body.
fn auth_server() -> (String, mpsc::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/moq-auth", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0;
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert!(line.starts_with("POST /moq-auth "), "{line}");
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let good = request["query"].as_str().is_some_and(|q| q.contains("jwt=good"));
                let event = request["event"].as_str().unwrap_or("").to_string();
                tx.lock().unwrap().send(request).unwrap();
                let (status, reply) = match (event.as_str(), good) {
                    ("end", _) => ("204 No Content", String::new()),
                    (_, true) => ("200 OK", r#"{"publish":["**"],"subscribe":["**"],"tier":"t"}"#.to_string()),
                    (_, false) => ("403 Forbidden", String::new()),
                };
                let mut stream = stream;
                write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{reply}", reply.len()).unwrap();
            });
        }
    });
    (url, rx)
}

#[test]
fn an_auth_server_decides_every_session() {
    let (url, requests) = auth_server();
    // Two workers share the gatekeeper: their sessions must not meet under one id.
    let (_relay, addr, fp, auth) = relay(&["--auth-url", &url, "--auth-node", "edge-1", "--workers", "2"]);
    assert!(auth.contains(&url), "{auth}");
    let recv = || requests.recv_timeout(WAIT).expect("an auth server request");
    let via = Via::Quic("lite-06");
    let publisher = publisher(via, &via.url(&addr, "/room", Some("good")), &fp, "cam");
    let connect = recv();
    assert_eq!(
        (connect["event"].as_str(), connect["path"].as_str(), connect["query"].as_str(), connect["node"].as_str()),
        (Some("connect"), Some("/room"), Some("jwt=good"), Some("edge-1"))
    );
    assert_eq!(connect["alpn"], "moq-lite-06");
    await_announced(via, &via.url(&addr, "/room", Some("good")), &fp, "cam");
    assert_eq!(recv()["event"], "connect");
    assert_eq!(recv()["event"], "end");
    assert_eq!(try_sub(Via::Wt, &Via::Wt.url(&addr, "/room", Some("good")), &fp, "cam"), "ok");
    assert_eq!(recv()["event"], "connect");
    let sub_end = recv();
    assert_eq!(sub_end["event"], "end", "the subscriber left: {sub_end}");
    assert!(sub_end["duration"].as_f64().unwrap() >= 0.0);
    let got = outcome(client("sub", via, &via.url(&addr, "/room", Some("bad")), &fp, &["cam", "--count", "1"]));
    assert!(got.starts_with("session closed 0x2 unauthorized: server_refused"), "{got}");
    assert_eq!(recv()["event"], "connect");
    await_metric(&addr, "moqt_auth_refused_total{kind=\"server_refused\"} 1");
    // Ctrl-C: the publisher closes its session, and the relay reports the end.
    publisher.interrupt();
    let end = recv();
    assert_eq!((end["event"].as_str(), end["id"].as_str()), (Some("end"), connect["id"].as_str()));
}

#[test]
fn the_config_file_and_the_start_line_say_who_decides() {
    let keys = Keys::new("config");
    let file = keys.dir.path("relay.toml");
    let key = keys.key();
    std::fs::write(&file, format!("[relay.auth]\nkey = {key:?}\npublic = \"anon/**\"\nleeway = 0\n")).unwrap();
    let (_relay, addr, fp, auth) = relay(&["--config", &file]);
    assert!(auth.contains("tokens checked with one key") && auth.contains("publish [anon/**]"), "{auth}");
    let via = Via::Quic("lite-06");
    let got = outcome(client("announced", via, &via.url(&addr, "/room", None), &fp, &["", "--count", "1"]));
    assert!(got.starts_with("session closed 0x2 unauthorized: not_public"), "{got}");
    // Nothing configured: open, with a warning.
    let (_open, _, _, line) = relay(&[]);
    assert!(line.starts_with("warning: no --auth-key"), "{line}");
    // Refused at start: a public literal, and a server next to keys.
    for (args, needle) in [
        (vec!["--auth-public", "anon"], "write `anon/**`"),
        (vec!["--auth-url", "http://127.0.0.1:1/", "--auth-key", key.as_str()], "the server decides"),
        (vec!["--auth-url", "http://203.0.113.1/"], "loopback"),
    ] {
        let mut all = vec!["relay", "--listen", "127.0.0.1:0"];
        all.extend(args);
        let (ok, err) = Proc::spawn(&all).finish();
        assert!(!ok && err.join("\n").contains(needle), "{all:?}: {err:?}");
    }
}
