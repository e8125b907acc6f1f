//! `moqt interop server` and `moqt interop client` as processes over loopback, raw QUIC and
//! WebTransport, every version: every step prints `ok` (GOAWAY is `skipped` on lite-03), both
//! exit 0; and a client whose steps fail exits non-zero. Readiness comes from the processes'
//! output lines, never from sleeps.

mod common;

use common::Proc;

const NEXT_URI: &str = "moqt://127.0.0.1:1/next";

/// `moqt interop server` on a free loopback port: (process, address, fingerprint).
fn server(sessions: usize) -> (Proc, String, String) {
    let n = sessions.to_string();
    let p = Proc::spawn(&["interop", "server", "--listen", "127.0.0.1:0", "--next-uri", NEXT_URI, "--sessions", &n]);
    let fp = p.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
    let addr = p.wait_err("listening on").split_whitespace().nth(2).unwrap().to_string();
    (p, addr, fp)
}

fn is_ok(line: &str) -> bool {
    line.ends_with(": ok") || line.contains(": ok (")
}

const CLIENT_STEPS: [&str; 10] = [
    "connect",
    "discover",
    "subscribe",
    "fetch",
    "probe",
    "server/discover-client",
    "server/read-client",
    "server/probe-client",
    "goaway",
    "close",
];

#[test]
fn interop_scenario_over_raw_quic_and_webtransport_in_every_version() {
    let runs: Vec<(Option<&str>, bool)> = [None, Some("lite-03"), Some("lite-04"), Some("lite-05")]
        .into_iter()
        .flat_map(|v| [(v, false), (v, true)])
        .collect();
    let (srv, addr, fp) = server(runs.len());
    for (version, wt) in &runs {
        let url = if *wt { format!("https://{addr}/") } else { format!("moqt://{addr}") };
        let mut args = vec!["interop", "client", url.as_str(), "--tls-fingerprint", fp.as_str()];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        let what = format!("{url} {}", version.unwrap_or("default"));
        let (ok, out) = Proc::spawn(&args).finish_out();
        let steps: Vec<&str> = out.iter().map(|l| l.split(": ").next().unwrap()).collect();
        assert_eq!(steps, CLIENT_STEPS, "{what}: {out:#?}");
        let version = version.unwrap_or("lite-06");
        assert!(
            out[0].contains(&format!("moq-{version} over {}", if *wt { "WebTransport" } else { "RawQuic" })),
            "{out:?}"
        );
        for line in &out {
            if line.starts_with("goaway") && version == "lite-03" {
                assert_eq!(line, "goaway: skipped (lite-03 has no GOAWAY)", "{what}");
            } else {
                assert!(is_ok(line), "{what}: {line}");
            }
        }
        assert!(out.iter().any(|l| l == &format!("goaway: ok (next session uri {NEXT_URI})")) || version == "lite-03");
        assert!(out.iter().any(|l| l == "subscribe: ok (payload: HELLO)"), "{what}: {out:?}");
        assert!(out.iter().any(|l| l == "fetch: ok (payload: HELLO)"), "{what}: {out:?}");
        assert!(out.iter().any(|l| l == "server/read-client: ok (payload: HELLO)"), "{what}: {out:?}");
        assert!(ok, "{what}: client exit status");
    }
    let (ok, out) = srv.finish_out();
    assert_eq!(out.iter().filter(|l| l.contains("] close: ok")).count(), runs.len(), "{out:#?}");
    for line in &out {
        assert!(is_ok(line) || line.ends_with("goaway: skipped (lite-03 has no GOAWAY)"), "server: {line}");
    }
    assert!(ok, "server exit status: {out:#?}");
}

#[test]
fn failed_steps_make_the_client_exit_non_zero() {
    // A plain relay publishes no interop/server: discovery times out, as do the steps after it.
    let p = Proc::spawn(&["relay", "--listen", "127.0.0.1:0"]);
    let fp = p.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
    let addr = p.wait_err("listening on").split_whitespace().nth(2).unwrap().to_string();
    let url = format!("moqt://{addr}");
    let (ok, out) =
        Proc::spawn(&["interop", "client", &url, "--tls-fingerprint", &fp, "--timeout", "0.5"]).finish_out();
    assert!(!ok, "{out:?}");
    assert_eq!(out[0].split(": ").next(), Some("connect"));
    assert!(is_ok(&out[0]), "{out:?}");
    assert!(out.iter().any(|l| l.starts_with("discover: FAILED")), "{out:?}");
}
