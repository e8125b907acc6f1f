//! End-to-end tests of the `moqt` binary over loopback: `moqt relay`, `moqt pub`, `moqt sub` and
//! `moqt announced` as real processes. Readiness comes from the processes' own output lines
//! (`listening on …`, `publishing …`, announcement lines), never from sleeps.

mod common;

use std::thread;

use common::Proc;

/// A relay on a free loopback port: (process, address, fingerprint).
fn relay(extra: &[&str]) -> (Proc, String, String) {
    let mut args = vec!["relay", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args);
    let fp = p.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
    let line = p.wait_err("listening on");
    let addr = line.split_whitespace().nth(2).unwrap().to_string();
    (p, addr, fp)
}

fn url(addr: &str, webtransport: bool) -> String {
    if webtransport {
        format!("https://{addr}/")
    } else {
        format!("moqt://{addr}")
    }
}

/// Waits until `broadcast` is announced by the relay (a readiness signal for subscribers).
fn await_announced(u: &str, fp: &str, broadcast: &str) {
    let a = Proc::spawn(&["announced", u, broadcast, "--tls-fingerprint", fp, "--count", "1"]);
    assert_eq!(a.next_out(), format!("+ {broadcast}"));
}

#[test]
fn clock_through_the_relay_in_every_version_over_both_transports() {
    let (_relay, addr, fp) = relay(&[]);
    let mut runs = Vec::new();
    for version in ["lite-03", "lite-04", "lite-05", "lite-06"] {
        for wt in [false, true] {
            let (addr, fp) = (addr.clone(), fp.clone());
            runs.push(thread::spawn(move || {
                let u = url(&addr, wt);
                let name = format!("clock-{version}-{}", if wt { "wt" } else { "quic" });
                let publisher =
                    Proc::spawn(&["pub", &u, &name, "--clock", "--version", version, "--tls-fingerprint", &fp]);
                publisher.wait_err("publishing");
                await_announced(&u, &fp, &name);
                let sub = Proc::spawn(&[
                    "sub",
                    &u,
                    &name,
                    "--track",
                    "seconds",
                    "--version",
                    version,
                    "--tls-fingerprint",
                    &fp,
                    "--count",
                    "4",
                ]);
                let connected = sub.wait_err("connected to");
                assert!(connected.contains(&format!("moq-{version}")), "{connected}");
                assert!(connected.contains(if wt { "WebTransport" } else { "RawQuic" }), "{connected}");
                // Frame 0 of each group (a minute) is "YYYY-MM-DD HH:MM:", then two-digit seconds,
                // one apart. A minute may turn during the test: its new group starts with a header.
                let is_head = |l: &str| l.len() == 17 && l.ends_with(':') && l.as_bytes()[4] == b'-';
                let head = sub.next_out();
                assert!(is_head(&head), "{name}: {head:?}");
                let mut seconds = Vec::new();
                while seconds.len() < 2 {
                    let line = sub.next_out();
                    if !is_head(&line) {
                        seconds.push(line.parse::<u32>().unwrap_or_else(|e| panic!("{name}: {line:?}: {e}")));
                    }
                }
                let (a, b) = (seconds[0], seconds[1]);
                assert!(a < 60 && b == (a + 1) % 60, "{name}: {a} then {b}");
                let (ok, _) = sub.finish();
                assert!(ok, "{name}: subscriber exit status");
                version
            }));
        }
    }
    for r in runs {
        r.join().expect("a version/transport combination failed");
    }
}

#[test]
fn announced_lists_the_broadcast_and_then_its_end() {
    let (_relay, addr, fp) = relay(&[]);
    let u = url(&addr, false);
    let watcher = Proc::spawn(&["announced", &u, "", "--tls-fingerprint", &fp, "--count", "2"]);
    watcher.wait_err("connected to");
    let publisher =
        Proc::spawn(&["pub", &u, "show/one", "--fps", "20", "--size", "64", "--count", "20", "--tls-fingerprint", &fp]);
    assert_eq!(watcher.next_out(), "+ show/one");
    // The publisher stops after 20 frames and closes its session: the broadcast ends.
    let (ok, _) = publisher.finish();
    assert!(ok);
    assert_eq!(watcher.next_out(), "- show/one");
    let (ok, _) = watcher.finish();
    assert!(ok);
}

#[test]
fn goaway_on_relay_shutdown_reaches_the_client() {
    let (relay, addr, fp) = relay(&["--next-uri", "moqt://next.example:4443", "--drain-timeout", "2"]);
    let u = url(&addr, false);
    // --no-reconnect: the clients only report the GOAWAY (following it would look the name up).
    let publisher =
        Proc::spawn(&["pub", &u, "bye", "--fps", "20", "--size", "64", "--tls-fingerprint", &fp, "--no-reconnect"]);
    publisher.wait_err("publishing");
    await_announced(&u, &fp, "bye");
    let sub = Proc::spawn(&["sub", &u, "bye", "--stats", "--tls-fingerprint", &fp, "--no-reconnect"]);
    sub.next_out(); // a stats line: data is flowing
    relay.interrupt();
    let line = sub.wait_err("goaway received");
    assert!(line.contains("\"moqt://next.example:4443\"); not following it (--no-reconnect)"), "{line}");
    publisher.wait_err("goaway received");
    // At the end of the drain the relay closes the sessions, which ends the subscriber.
    let (ok, _) = relay.finish();
    assert!(ok, "relay exits cleanly after the drain");
    let (_, err) = sub.finish();
    assert!(err.iter().any(|l| l == "session closed (code 0x10: relay shutting down)"), "{err:?}");
    assert!(!err.iter().any(|l| l.contains("reconnecting") || l.contains("reconnected")), "{err:?}");
}

#[test]
fn a_wrong_fingerprint_is_refused() {
    let (_relay, addr, _fp) = relay(&[]);
    let wrong = "00".repeat(32);
    let sub = Proc::spawn(&["sub", &url(&addr, false), "x", "--tls-fingerprint", &wrong]);
    let (ok, err) = sub.finish();
    assert!(!ok);
    let text = err.join("\n");
    assert!(text.contains("error:") && text.contains("fingerprint"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_garbage_sending_client_does_not_disturb_a_subscriber() {
    let (_relay, addr, fp) = relay(&[]);
    let u = url(&addr, false);
    let publisher = Proc::spawn(&["pub", &u, "steady", "--fps", "50", "--size", "256", "--tls-fingerprint", &fp]);
    publisher.wait_err("publishing");
    await_announced(&u, &fp, "steady");
    let sub = Proc::spawn(&["sub", &u, "steady", "--stats", "--tls-fingerprint", &fp]);
    sub.next_out();
    // A client that speaks nonsense on a control stream.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let code = runtime.block_on(async {
        use moqt_driver_tokio::transport::{ClientConfig, Connector};
        use moqt_driver_tokio::{Fingerprint, Verification};
        let mut config = ClientConfig::new(Verification::pinned(fp.parse::<Fingerprint>().unwrap()));
        config.runtime = Some(moqt_driver_tokio::runtime());
        let client = Connector::new(config).unwrap();
        let session = client.connect(&u).await.unwrap();
        let (mut send, _recv) = session.open_bi().await.unwrap();
        send.write(bytes::Bytes::from_static(&[0x02, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff])).await.unwrap();
        match session.closed().await {
            moqt_driver_tokio::ConnectionError::Closed { code, .. } => code,
            other => panic!("closed how? {other:?}"),
        }
    });
    assert_eq!(code, moqt_proto::session::session_code::PROTOCOL_VIOLATION, "cut off with the right code");
    // The subscriber keeps receiving afterwards.
    let after = sub.next_out();
    assert!(after.contains("frames"), "{after}");
    let next = sub.next_out();
    let frames = |l: &str| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap();
    assert!(frames(&next) > frames(&after), "still flowing: {after} / {next}");
}

#[test]
fn bad_flags_and_files_give_one_clear_error() {
    for (args, needle) in [
        (
            vec![
                "relay",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                "/nonexistent/key.pem",
            ],
            "/nonexistent/cert.pem",
        ),
        (vec!["relay", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent/cert.pem"], "--tls-cert and --tls-key"),
        (vec!["sub", "ftp://example/", "x"], "error:"),
        (vec!["wire", "decode", "--version", "lite-09", "00"], "lite-09"),
        (vec!["wire", "decode", "--version", "lite-05", "02", "19"], "mid-message"),
        (vec!["--config", "/nonexistent.toml", "relay"], "/nonexistent.toml"),
        (
            vec!["relay", "--listen", "127.0.0.1:0", "--workers", "2", "--peer", "moqt://127.0.0.1:9"],
            "--workers above 1 is not supported with cluster peers",
        ),
    ] {
        let p = Proc::spawn(&args);
        let (ok, err) = p.finish();
        let text = err.join("\n");
        assert!(!ok, "{args:?} must fail");
        assert!(text.contains(needle), "{args:?}: {text}");
        assert!(!text.contains("panicked"), "{args:?}: {text}");
    }
}

#[test]
fn relays_linked_with_peer_carry_content_and_read_a_config_file() {
    let (_a, addr_a, fp_a) = relay(&[]);
    // The second relay takes its settings from a TOML file: listen address, peer and its pin.
    let dir = std::env::temp_dir().join(format!("moqt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!("[relay]\nlisten = \"127.0.0.1:0\"\npeers = [\"moqt://{addr_a}\"]\npeer_fingerprint = \"{fp_a}\"\nhop_id = 77\n"),
    )
    .unwrap();
    let b = Proc::spawn(&["--config", config.to_str().unwrap(), "relay"]);
    let fp_b = b.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
    let addr_b = b.wait_err("listening on").split_whitespace().nth(2).unwrap().to_string();
    assert!(addr_b.starts_with("127.0.0.1:"), "listen address from the file: {addr_b}");
    // Publish on A, subscribe on B: the broadcast crosses the peer link.
    let ua = url(&addr_a, false);
    let ub = url(&addr_b, true);
    let publisher = Proc::spawn(&["pub", &ua, "far", "--fps", "20", "--size", "100", "--tls-fingerprint", &fp_a]);
    publisher.wait_err("publishing");
    await_announced(&ub, &fp_b, "far");
    let sub = Proc::spawn(&["sub", &ub, "far", "--stats", "--count", "20", "--tls-fingerprint", &fp_b]);
    let (ok, _) = sub.finish();
    assert!(ok, "20 frames crossed two relays");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_end_of_a_track_is_reported_as_such() {
    let (_relay, addr, fp) = relay(&[]);
    let u = url(&addr, false);
    let publisher = Proc::spawn(&[
        "pub",
        &u,
        "ends",
        "--fps",
        "50",
        "--group",
        "5",
        "--count",
        "10",
        "--wait-subscriber",
        "--tls-fingerprint",
        &fp,
    ]);
    publisher.wait_err("publishing");
    await_announced(&u, &fp, "ends");
    let sub = Proc::spawn(&["sub", &u, "ends", "--stats", "--tls-fingerprint", &fp]);
    let (pub_ok, _) = publisher.finish();
    assert!(pub_ok, "publisher exit status");
    let (ok, out, err) = sub.finish_all();
    assert!(ok, "subscriber exit status; stderr: {err:#?}");
    assert!(err.iter().any(|l| l == "the publisher ended the track"), "{err:#?}");
    assert!(!err.iter().any(|l| l.contains("error")), "{err:#?}");
    let total = out.iter().find(|l| l.starts_with("total ")).expect("a whole-run line");
    assert!(total.contains("sub: 10 frames"), "{total}");
}
