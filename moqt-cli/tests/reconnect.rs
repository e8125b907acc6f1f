//! Clients that survive, end to end: `moqt relay`, `moqt pub`, `moqt sub` and `moqt announced`
//! as real processes over loopback, reconnecting by default.
//!
//! - A relay killed with SIGKILL and restarted on the same port (same certificate, so pinned
//!   fingerprints still match): publishers and subscribers reconnect, subscriptions resume from
//!   the next group; the gap is printed (`RECONNECT GAP: …`).
//! - A rolling restart: relays drained with `--next-uri` pointing at another relay; publishers
//!   and subscribers move make-before-break with no group lost or repeated (the subscriber's
//!   frame count equals the publisher's).
//! - lite-03 has no GOAWAY: clients reconnect to the same URL once the draining relay closes.
//! - A malformed or unusable next URI: the session stays until the drain, then the client falls
//!   back to the original URL.
//!
//! Readiness comes from the processes' own lines; the only waits are bounded reads of them.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Proc;
use moqt_driver_tokio::tls::Identity;

/// A certificate in PEM files, so that a restarted relay presents the same one.
struct Cert {
    dir: PathBuf,
    fp: String,
}

impl Cert {
    fn new(name: &str) -> Cert {
        let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let dir = std::env::temp_dir().join(format!("moqt-cli-reconnect-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), identity.chain_pem()).unwrap();
        std::fs::write(dir.join("key.pem"), identity.key_pem()).unwrap();
        Cert { fp: identity.fingerprint().to_string(), dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A relay on `listen` with `cert`: (process, bound address).
fn relay(cert: &Cert, listen: &str, extra: &[&str]) -> (Proc, String) {
    let (c, k) = (cert.path("cert.pem"), cert.path("key.pem"));
    let mut args = vec!["relay", "--listen", listen, "--tls-cert", &c, "--tls-key", &k];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args);
    let fp = p.wait_err("certificate sha256");
    assert!(fp.ends_with(&cert.fp), "{fp}");
    let line = p.wait_err("listening on");
    let addr = line.split_whitespace().nth(2).unwrap().to_string();
    (p, addr)
}

fn url(scheme: &str, addr: &str) -> String {
    if scheme == "https" {
        format!("https://{addr}/")
    } else {
        format!("moqt://{addr}")
    }
}

/// The number before `name` in a `, `-separated stats line (`sub: 12 frames, …, 0 groups lost`).
fn field(line: &str, name: &str) -> u64 {
    line.split(", ")
        .find_map(|part| part.strip_suffix(name)?.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in {line:?}"))
}

/// A test-pattern publisher and a `--stats` subscriber of broadcast `name`.
struct Pair {
    name: String,
    publisher: Proc,
    subscriber: Proc,
}

impl Pair {
    /// Starts both and waits until frames flow (the subscriber's first stats line). With
    /// `from_start`, the publisher waits for the subscription, so the subscriber gets every frame.
    fn start(u: &str, fp: &str, version: &str, name: &str, from_start: bool) -> Pair {
        let common = ["--version", version, "--tls-fingerprint", fp, "--reconnect-max-delay", "500"];
        let mut args = vec!["pub", u, name, "--fps", "50", "--group", "5", "--size", "64"];
        args.extend_from_slice(&common);
        if from_start {
            args.push("--wait-subscriber");
        }
        let publisher = Proc::spawn(&args);
        publisher.wait_err("publishing");
        let watcher = Proc::spawn(&["announced", u, name, "--count", "1", "--tls-fingerprint", fp]);
        assert_eq!(watcher.next_out(), format!("+ {name}"));
        let mut args = vec!["sub", u, name, "--stats"];
        args.extend_from_slice(&common);
        let subscriber = Proc::spawn(&args);
        let first = subscriber.next_out();
        assert!(field(&first, "frames") > 0, "{name}: {first}");
        Pair { name: name.to_owned(), publisher, subscriber }
    }

    /// Two stats lines (skipping those from before reconnect number `reconnects`), with more
    /// frames in the second: frames flow, over connection number `reconnects`. Stats lines come
    /// a second apart, so the second was written at least a second after this call.
    fn flowing(&self, reconnects: u64) -> String {
        let mut a = self.subscriber.next_out();
        while field(&a, "reconnects") < reconnects {
            a = self.subscriber.next_out();
        }
        let b = self.subscriber.next_out();
        assert_eq!(field(&b, "reconnects"), reconnects, "{}: {b}", self.name);
        assert!(field(&b, "frames") > field(&a, "frames"), "{}: {a} then {b}", self.name);
        b
    }

    /// The subscriber's `resumed at group N: MS ms without frames, M groups missed` line:
    /// (ms, groups missed).
    fn resumed(&self) -> (u64, u64) {
        let line = self.subscriber.wait_err("resumed at group");
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = |w: &str| words.iter().position(|x| *x == w).unwrap_or_else(|| panic!("{line}"));
        let ms = words[at("ms") - 1].parse().unwrap();
        let missed = words[at("groups") - 1].parse().unwrap();
        (ms, missed)
    }
}

#[test]
fn a_relay_restart_is_survived_by_publishers_and_subscribers() {
    let cert = Cert::new("restart");
    let (mut first, addr) = relay(&cert, "127.0.0.1:0", &[]);
    let combos = [("moqt", "lite-06"), ("https", "lite-05"), ("https", "lite-04"), ("moqt", "lite-03")];
    let pairs: Vec<(&str, &str, Pair)> = combos
        .iter()
        .map(|&(s, v)| (s, v, Pair::start(&url(s, &addr), &cert.fp, v, &format!("restart-{s}-{v}"), false)))
        .collect();
    // A clock (one group a minute) and a listener of announcements over WebTransport.
    let u = url("moqt", &addr);
    let clock =
        Proc::spawn(&["pub", &u, "clock", "--clock", "--tls-fingerprint", &cert.fp, "--reconnect-max-delay", "500"]);
    clock.wait_err("publishing");
    let listener = Proc::spawn(&["announced", &url("https", &addr), "clock", "--tls-fingerprint", &cert.fp]);
    assert_eq!(listener.next_out(), "+ clock");
    let clock_sub = Proc::spawn(&[
        "sub",
        &u,
        "clock",
        "--track",
        "seconds",
        "--tls-fingerprint",
        &cert.fp,
        "--reconnect-max-delay",
        "500",
    ]);
    let head = clock_sub.next_out();
    assert!(head.len() == 17 && head.ends_with(':'), "{head}");
    let mut last: u32 = clock_sub.next_out().parse().expect("a seconds line");

    first.kill();
    let (_second, again) = relay(&cert, &addr, &[]);
    assert_eq!(again, addr);

    // The restarted relay resets the old connections (its stateless-reset key comes from its
    // private key): the loss is noticed at once. (WebTransport may report it as its session
    // closed with code 0, when its CONNECT stream fails first.)
    let reset = |s: &str, line: &str| {
        let reset = line.contains("(code 0x1: transport error: reset by peer)");
        assert!(reset || (s == "https" && line.contains("(code 0x0: )")), "{s}: {line}");
    };
    for (s, v, pair) in &pairs {
        let lost = pair.subscriber.wait_err("connection lost");
        reset(s, &lost);
        pair.subscriber.wait_err("reconnected to");
        let (ms, missed) = pair.resumed();
        println!("RECONNECT GAP: relay restart, {s} {v}: {ms} ms without frames, {missed} groups missed (10 groups/s)");
        let line = pair.flowing(1);
        assert_eq!(field(&line, "groups missed"), missed, "{s} {v}: {line}");
        assert_eq!(field(&line, "duplicate groups"), 0, "{s} {v}: {line}");
        reset(s, &pair.publisher.wait_err("connection lost"));
        pair.publisher.wait_err("reconnected to");
    }
    clock.wait_err("reconnected to");
    // The listener hears the clock again from the new relay.
    assert_eq!(listener.wait_out("clock"), "- clock");
    assert_eq!(listener.next_out(), "+ clock");
    // The clock's subscription resumes at the next group: the next minute's first frame.
    clock_sub.wait_err("reconnected to");
    // Lines printed before the kill may still be unread (a late joiner gets the minute so far at
    // once): they continue the old minute in order. The first line after them is a group's head.
    let head = loop {
        let line = clock_sub.next_out_within(Duration::from_secs(90));
        let Ok(second) = line.parse::<u32>() else { break line };
        assert!(second > last, "a seconds line out of its minute's order: {second} after {last}");
        last = second;
    };
    assert!(head.len() == 17 && head.ends_with(':'), "{head}");
    let seconds = clock_sub.next_out();
    assert!(seconds.parse::<u32>().is_ok_and(|s| s < 60), "{seconds}");
}

#[test]
fn a_rolling_restart_moves_everyone_without_losing_or_repeating_a_group() {
    let cert = Cert::new("rolling");
    let (_next, next) = relay(&cert, "127.0.0.1:0", &[]);
    // Raw QUIC clients are sent to the next relay's moqt:// URL, WebTransport ones to https://.
    let mut draining = Vec::new();
    let mut pairs = Vec::new();
    for scheme in ["moqt", "https"] {
        let to = url(scheme, &next);
        let (old, addr) = relay(&cert, "127.0.0.1:0", &["--next-uri", &to, "--drain-timeout", "30"]);
        for version in ["lite-04", "lite-05", "lite-06"] {
            let name = format!("rolling-{scheme}-{version}");
            pairs.push((to.clone(), version, Pair::start(&url(scheme, &addr), &cert.fp, version, &name, true)));
        }
        draining.push(old);
    }
    // Ctrl-C drains one, SIGTERM (what service managers send) the other.
    draining[0].interrupt();
    draining[1].terminate();
    for (to, v, pair) in &pairs {
        for p in [&pair.publisher, &pair.subscriber] {
            p.wait_err(&format!("goaway received: moving to {to} (make-before-break)"));
            let line = p.wait_err("reconnected to");
            assert!(line.contains(&format!("reconnected to {to} (moq-{v}")), "{line}");
        }
    }
    // Everyone left the old relays before their drain timeout: they exit cleanly, early.
    for old in draining {
        let (ok, err) = old.finish();
        assert!(ok, "{err:?}");
    }
    for (_, _, pair) in &pairs {
        pair.flowing(1);
        pair.publisher.interrupt();
    }
    for (to, v, pair) in pairs {
        let (_, pub_err) = pair.publisher.finish();
        let sent = pub_err
            .iter()
            .rev()
            .find(|l| l.starts_with("pub: ") && l.contains(" frames, "))
            .expect("the publisher's last report");
        let (ok, out, sub_err) = pair.subscriber.finish_all();
        assert!(ok, "{}: {sub_err:?}", pair.name);
        let total = out.iter().find(|l| l.starts_with("total sub: ")).expect("the subscriber's total line");
        println!("ROLLING RESTART: {} via {to}: sent {sent:?}; received {total:?}", pair.name);
        // Inside the stream nothing is skipped; at its end, lite-04 (no end-of-subscription
        // message) may lose the last frames of the last group to the race between the
        // subscription's FIN and that group's stream. lite-05 and later say which group is last:
        // every frame arrives.
        let (got, want) = (field(total, "frames"), field(sent, "frames"));
        assert_eq!(field(total, "frames skipped"), 0, "{}: {total}", pair.name);
        if v == "lite-04" {
            assert!(got <= want && want - got < 5, "{}: {got} of {want} frames", pair.name);
        } else {
            assert_eq!(got, want, "{}: every frame arrived once", pair.name);
        }
        assert_eq!(field(total, "groups lost"), 0, "{}: {total}", pair.name);
        assert_eq!(field(total, "duplicate groups"), 0, "{}: {total}", pair.name);
        assert_eq!(field(total, "reconnects"), 1, "{}: {total}", pair.name);
        assert!(
            !sub_err.iter().any(|l| l.contains("connection lost")),
            "{}: moved, never lost: {sub_err:?}",
            pair.name
        );
        assert!(sub_err.iter().any(|l| l == "the publisher ended the track"), "{v}: {sub_err:?}");
    }
}

#[test]
fn lite03_clients_reconnect_once_the_draining_relay_closes() {
    let cert = Cert::new("lite03");
    let (old, addr) = relay(&cert, "127.0.0.1:0", &["--next-uri", "moqt://127.0.0.1:9", "--drain-timeout", "1"]);
    let pairs: Vec<(&str, Pair)> = ["moqt", "https"]
        .into_iter()
        .map(|s| (s, Pair::start(&url(s, &addr), &cert.fp, "lite-03", &format!("lite03-{s}"), false)))
        .collect();
    let listener = Proc::spawn(&[
        "announced",
        &url("https", &addr),
        "lite03-moqt",
        "--version",
        "lite-03",
        "--tls-fingerprint",
        &cert.fp,
    ]);
    assert_eq!(listener.next_out(), "+ lite03-moqt");
    old.interrupt();
    // No GOAWAY in lite-03: the sessions run until the relay closes them at the end of its drain.
    let (ok, _) = old.finish();
    assert!(ok);
    for (s, pair) in &pairs {
        for p in [&pair.publisher, &pair.subscriber] {
            let lost = p.wait_err("connection lost");
            assert!(lost.contains("code 0x10: relay shutting down"), "{s}: {lost}");
        }
    }
    let (_new, again) = relay(&cert, &addr, &[]);
    assert_eq!(again, addr);
    for (s, pair) in &pairs {
        let line = pair.subscriber.wait_err("reconnected to");
        assert!(line.contains(&format!("reconnected to {} (moq-lite-03", url(s, &addr))), "{line}");
        let (ms, missed) = pair.resumed();
        println!("RECONNECT GAP: lite-03 drain and restart, {s}: {ms} ms without frames, {missed} groups missed");
        pair.flowing(1);
    }
    // The WebTransport listener keeps its watch across the close and hears the broadcast again.
    assert_eq!(listener.next_out(), "- lite03-moqt");
    assert_eq!(listener.next_out(), "+ lite03-moqt");
    for (s, pair) in pairs {
        pair.publisher.interrupt();
        let (ok, _, err) = pair.subscriber.finish_all();
        assert!(ok, "{s}: {err:?}");
        assert!(!err.iter().any(|l| l.contains("goaway")), "{s}: lite-03 has no GOAWAY: {err:?}");
    }
}

#[test]
fn a_bad_next_uri_keeps_the_session_until_the_drain_then_the_client_returns() {
    let cert = Cert::new("bad-uri");
    // A relay with another certificate: the next URI is reachable but refused (pinned fingerprint).
    let other = Cert::new("bad-uri-other");
    let (_elsewhere, elsewhere) = relay(&other, "127.0.0.1:0", &[]);
    let refused = url("moqt", &elsewhere);
    let cases = [("not a url", "moqt", "lite-06"), (refused.as_str(), "https", "lite-05")];
    let mut running = Vec::new();
    for (next, scheme, version) in cases {
        let (old, addr) = relay(&cert, "127.0.0.1:0", &["--next-uri", next, "--drain-timeout", "4"]);
        let pair = Pair::start(&url(scheme, &addr), &cert.fp, version, &format!("bad-{scheme}"), false);
        running.push((next, scheme, old, addr, pair));
    }
    for (_, _, old, _, _) in &running {
        old.interrupt();
    }
    // Each case on its own thread: the checks must happen while its relay drains.
    std::thread::scope(|scope| {
        for (next, scheme, old, addr, pair) in running {
            let cert = &cert;
            scope.spawn(move || bad_next_uri(cert, next, scheme, old, &addr, pair));
        }
    });
}

/// One case of [`a_bad_next_uri_keeps_the_session_until_the_drain_then_the_client_returns`],
/// from the GOAWAY on.
fn bad_next_uri(cert: &Cert, next: &str, scheme: &str, old: Proc, addr: &str, pair: Pair) {
    let original = url(scheme, addr);
    if next == "not a url" {
        pair.subscriber.wait_err(&format!(
            "goaway received with an unusable next uri \"not a url\": staying until the relay closes, then \
             reconnecting to {original}"
        ));
    } else {
        pair.subscriber.wait_err_all(&[
            &format!("goaway received: moving to {next}"),
            &format!("cannot reach the GOAWAY's next uri: staying until the drain, then reconnecting to {original}"),
        ]);
    }
    // The old session still carries frames after the GOAWAY (lines written after it, before any
    // reconnection).
    pair.subscriber.skip_out();
    pair.flowing(0);
    let lost = pair.subscriber.wait_err("connection lost");
    assert!(lost.contains(&format!("relay shutting down); reconnecting to {original}")), "{lost}");
    let (ok, _) = old.finish();
    assert!(ok);
    // Back at the original URL once a relay answers there again.
    let (_relay, again) = relay(cert, addr, &[]);
    assert_eq!(again, addr);
    let line = pair.subscriber.wait_err("reconnected to");
    assert!(line.contains(&format!("reconnected to {original} (")), "{next}: {line}");
    let (ms, missed) = pair.resumed();
    println!("RECONNECT GAP: bad next uri {next:?}, drain and restart, {scheme}: {ms} ms, {missed} groups missed");
    pair.flowing(1);
    pair.publisher.wait_err(&format!("reconnected to {original} ("));
}
