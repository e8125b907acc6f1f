//! moq-lite over WebSocket (QMux) through `moqt relay`'s TCP port, end to end with the `moqt`
//! binary: `ws://` both directions in every version, mixed with QUIC, `wss://` with
//! `--http-tls`. Readiness comes from the processes'
//! output lines, never from sleeps.

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

/// Waits until `broadcast` is announced at `u` (a readiness signal for subscribers).
fn await_announced(u: &str, fp: &str, broadcast: &str) {
    let a = Proc::spawn(&["announced", u, broadcast, "--tls-fingerprint", fp, "--count", "1"]);
    assert_eq!(a.next_out(), format!("+ {broadcast}"));
}

/// Subscribes to `name`'s clock at `u` and checks three frames arrive over `transport`.
fn expect_clock(u: &str, fp: &str, name: &str, version: &str, transport: &str) {
    let sub = Proc::spawn(&[
        "sub",
        u,
        name,
        "--track",
        "seconds",
        "--version",
        version,
        "--tls-fingerprint",
        fp,
        "--count",
        "3",
    ]);
    let connected = sub.wait_err("connected to");
    assert!(connected.contains(&format!("moq-{version}")), "{connected}");
    assert!(connected.contains(transport), "{connected}");
    let head = sub.next_out();
    let a = sub.next_out();
    let b = sub.next_out();
    assert!(head.len() == 17 && head.ends_with(':'), "{name}: {head:?}");
    let (a, b): (u32, u32) = (a.parse().expect("seconds"), b.parse().expect("seconds"));
    assert!(a < 60 && b == (a + 1) % 60, "{name}: {a} then {b}");
    let (ok, _) = sub.finish();
    assert!(ok, "{name}: subscriber exit status");
}

/// Publisher and subscriber on every combination of WebSocket and QUIC, in every version.
#[test]
fn clock_over_websocket_both_directions_in_every_version() {
    let (_relay, addr, fp) = relay(&[]);
    let ws = format!("ws://{addr}/");
    let quic = format!("moqt://{addr}");
    let mut runs = Vec::new();
    for version in ["lite-03", "lite-04", "lite-05", "lite-06"] {
        for (publish, subscribe) in [(&ws, &ws), (&ws, &quic), (&quic, &ws)] {
            let (publish, subscribe, fp) = (publish.clone(), subscribe.clone(), fp.clone());
            runs.push(thread::spawn(move || {
                let tag = |u: &str| if u.starts_with("ws") { "ws" } else { "quic" };
                let name = format!("clock-{version}-{}-{}", tag(&publish), tag(&subscribe));
                let publisher =
                    Proc::spawn(&["pub", &publish, &name, "--clock", "--version", version, "--tls-fingerprint", &fp]);
                let connected = publisher.wait_err("connected to");
                let expected = if publish.starts_with("ws") { "WebSocket" } else { "RawQuic" };
                assert!(connected.contains(expected), "{connected}");
                publisher.wait_err("publishing");
                await_announced(&subscribe, &fp, &name);
                let expected = if subscribe.starts_with("ws") { "WebSocket" } else { "RawQuic" };
                expect_clock(&subscribe, &fp, &name, version, expected);
            }));
        }
    }
    for r in runs {
        r.join().expect("a version/direction combination failed");
    }
}

/// `--http-tls`: wss:// with the QUIC certificate; https:// still lands on WebTransport when
/// QUIC works (the fallback is tested in-process in `moqt-cli/src/http/websocket.rs`).
#[test]
fn wss_with_the_quic_certificate() {
    let (_relay, addr, fp) = relay(&["--http-tls"]);
    let wss = format!("wss://{addr}/room");
    let publisher = Proc::spawn(&["pub", &wss, "clock", "--clock", "--tls-fingerprint", &fp]);
    let connected = publisher.wait_err("connected to");
    assert!(connected.contains("WebSocket"), "{connected}");
    publisher.wait_err("publishing");
    await_announced(&wss, &fp, "clock");
    expect_clock(&wss, &fp, "clock", "lite-06", "WebSocket");
    // QUIC works: https:// lands on WebTransport.
    let https = format!("https://{addr}/room");
    expect_clock(&https, &fp, "clock", "lite-06", "WebTransport");
}
