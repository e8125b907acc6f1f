//! Relay clusters end to end: `moqt relay` processes linked with `--peer` and `--peer-list` over
//! loopback.
//!
//! - Failover: publisher → A; A → B → D and A → C → D (the C links priced higher, so D goes
//!   through B). B is killed with SIGKILL while frames flow: D's subscriber continues through C
//!   without being reset; the gap (ms without frames, groups lost) is printed as
//!   `FAILOVER GAP: …`. B restarts on its port and D links with it again.
//! - Drain: B is stopped with SIGTERM instead; D leaves it on its GOAWAY, before it closes
//!   (`DRAIN GAP: …`).
//! - Membership: a relay's peer list file gains a peer (SIGHUP) and loses it again (polling):
//!   the link comes and goes without a restart, and so does the broadcast behind it.
//! - A mixed cluster with moq-dev's moq-relay (when `MOQ_RELAY_BIN` names it): our `--peer` to
//!   it, its `--cluster-connect` to us; a broadcast crosses each way.
//!
//! Readiness comes from the processes' own lines; the only waits are bounded reads of them.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;

use common::Proc;
use moqt_driver_tokio::tls::Identity;

/// One certificate for every relay (so one pinned fingerprint reaches them all, and a restarted
/// relay presents the same one).
struct Cert {
    dir: PathBuf,
    fp: String,
}

impl Cert {
    fn new(name: &str) -> Cert {
        let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let dir = std::env::temp_dir().join(format!("moqt-cli-cluster-{name}-{}", std::process::id()));
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

/// A relay with hop id `hop` on `listen`: (process, bound address). Peers are verified against
/// the shared certificate; links are declared dead after 1 s of silence.
fn relay(cert: &Cert, listen: &str, hop: u64, extra: &[&str]) -> (Proc, String) {
    let (c, k, h) = (cert.path("cert.pem"), cert.path("key.pem"), hop.to_string());
    let mut args = vec![
        "relay",
        "--listen",
        listen,
        "--tls-cert",
        &c,
        "--tls-key",
        &k,
        "--cluster-id",
        &h,
        "--peer-fingerprint",
        &cert.fp,
        "--idle-timeout",
        "1",
    ];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args);
    let line = p.wait_err("listening on");
    let addr = line.split_whitespace().nth(2).unwrap().to_string();
    (p, addr)
}

fn moqt(addr: &str) -> String {
    format!("moqt://{addr}")
}

/// `GET path` on a relay's HTTP port: the body.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// The value of a metric line `NAME{peer="LABEL"} N`.
fn peer_metric(metrics: &str, name: &str, peer: &str) -> u64 {
    let key = format!("moqt_{name}{{peer=\"{peer}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in\n{metrics}"))
}

/// The number before `name` in a `, `-separated stats line.
fn field(line: &str, name: &str) -> u64 {
    line.split(", ")
        .find_map(|part| part.strip_suffix(name)?.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in {line:?}"))
}

/// Waits until `announced URL NAME` hears the broadcast.
fn wait_announced(url: &str, fp: &str, name: &str) {
    let watcher = Proc::spawn(&["announced", url, name, "--count", "1", "--tls-fingerprint", fp]);
    assert_eq!(watcher.next_out(), format!("+ {name}"));
}

#[test]
fn a_killed_middle_relay_is_routed_around_and_rejoins() {
    let cert = Cert::new("failover");
    let (_a, a) = relay(&cert, "127.0.0.1:0", 1, &[]);
    let (mut b_proc, b) = relay(&cert, "127.0.0.1:0", 2, &["--peer", &moqt(&a)]);
    b_proc.wait_err(&format!("peer {} up", moqt(&a)));
    let c_peer = format!("{}?cost=5", moqt(&a));
    let (c_proc, c) = relay(&cert, "127.0.0.1:0", 3, &["--peer", &c_peer]);
    c_proc.wait_err(&format!("peer {} up", moqt(&a)));
    let d_to_c = format!("{}?cost=5", moqt(&c));
    let (d_proc, d) = relay(&cert, "127.0.0.1:0", 4, &["--peer", &moqt(&b), "--peer", &d_to_c]);
    d_proc.wait_err_all(&[&format!("peer {} up", moqt(&b)), &format!("peer {} up", moqt(&c))]);

    // 10 groups a second of 5 frames each, published on A, watched on D.
    let publisher = Proc::spawn(&[
        "pub",
        &moqt(&a),
        "live",
        "--fps",
        "50",
        "--group",
        "5",
        "--size",
        "64",
        "--tls-fingerprint",
        &cert.fp,
    ]);
    publisher.wait_err("publishing");
    wait_announced(&moqt(&d), &cert.fp, "live");
    let subscriber = Proc::spawn(&["sub", &moqt(&d), "live", "--stats", "--tls-fingerprint", &cert.fp]);
    let first = subscriber.next_out();
    assert!(field(&first, "frames") > 0, "{first}");
    let before = subscriber.next_out();
    assert!(field(&before, "frames") > field(&first, "frames"), "{first} then {before}");

    // D subscribes through B, the cheaper route (cost 3 against 11).
    let metrics = http_get(&d, "/metrics");
    assert_eq!(peer_metric(&metrics, "peer_upstream_subscriptions", &moqt(&b)), 1, "{metrics}");
    assert_eq!(peer_metric(&metrics, "peer_upstream_subscriptions", &moqt(&c)), 0, "{metrics}");
    assert_eq!(peer_metric(&metrics, "peer_price", &moqt(&c)), 5, "{metrics}");
    let health = http_get(&d, "/health");
    assert!(health.starts_with("ok\n"), "{health}");
    assert!(health.contains(&format!("peer {} up", moqt(&b))), "{health}");

    b_proc.kill();
    d_proc.wait_err(&format!("peer {} down", moqt(&b)));
    // The subscriber carries on through C: read stats lines until frames flow again after the
    // gap, adding up what the gap cost.
    let (mut gap_ms, mut lost) = (0, 0);
    let mut line = subscriber.next_out();
    for _ in 0..30 {
        gap_ms = gap_ms.max(field(&line, "ms max frame gap"));
        lost = field(&line, "groups lost") - field(&before, "groups lost");
        if gap_ms >= 300 {
            break;
        }
        line = subscriber.next_out();
    }
    let after = subscriber.next_out();
    println!("FAILOVER GAP: middle relay killed (idle timeout 1 s): {gap_ms} ms without frames, {lost} groups lost (10 groups/s)");
    assert!(field(&after, "frames") > field(&line, "frames"), "frames flow again: {line} then {after}");
    assert_eq!(field(&after, "reconnects"), 0, "the subscriber's own session never dropped: {after}");
    assert_eq!(field(&after, "duplicate groups"), 0, "{after}");
    let metrics = http_get(&d, "/metrics");
    assert_eq!(peer_metric(&metrics, "peer_upstream_subscriptions", &moqt(&c)), 1, "{metrics}");
    assert_eq!(peer_metric(&metrics, "peer_up", &moqt(&b)), 0, "{metrics}");

    // B comes back on its port: it links with A again, and D links with it again.
    let (b_again, b2) = relay(&cert, &b, 2, &["--peer", &moqt(&a)]);
    assert_eq!(b2, b);
    b_again.wait_err(&format!("peer {} up", moqt(&a)));
    d_proc.wait_err(&format!("peer {} up", moqt(&b)));
    let health = http_get(&d, "/health");
    assert!(health.contains(&format!("peer {} up", moqt(&b))), "{health}");
    let metrics = http_get(&d, "/metrics");
    assert_eq!(peer_metric(&metrics, "peer_connects", &moqt(&b)), 2, "{metrics}");
    // And the broadcast is routed through it again for a new subscriber there.
    wait_announced(&moqt(&b), &cert.fp, "live");
    let last = subscriber.next_out();
    assert_eq!(field(&last, "duplicate groups"), 0, "{last}");
}

/// The same diamond, but B is stopped gracefully (SIGTERM: GOAWAY, then a drain): D moves its
/// subscription to C while B still serves it, so the subscriber sees no gap and no lost group.
#[test]
fn a_draining_middle_relay_is_left_before_it_closes() {
    let cert = Cert::new("drain");
    let (_a, a) = relay(&cert, "127.0.0.1:0", 1, &[]);
    let b_args = ["--peer", &moqt(&a), "--drain-timeout", "3"];
    let (b_proc, b) = relay(&cert, "127.0.0.1:0", 2, &b_args);
    b_proc.wait_err(&format!("peer {} up", moqt(&a)));
    let c_peer = format!("{}?cost=5", moqt(&a));
    let (c_proc, c) = relay(&cert, "127.0.0.1:0", 3, &["--peer", &c_peer]);
    c_proc.wait_err(&format!("peer {} up", moqt(&a)));
    let d_to_c = format!("{}?cost=5", moqt(&c));
    let (d_proc, d) = relay(&cert, "127.0.0.1:0", 4, &["--peer", &moqt(&b), "--peer", &d_to_c]);
    d_proc.wait_err_all(&[&format!("peer {} up", moqt(&b)), &format!("peer {} up", moqt(&c))]);
    let publisher = Proc::spawn(&[
        "pub",
        &moqt(&a),
        "live",
        "--fps",
        "50",
        "--group",
        "5",
        "--size",
        "64",
        "--tls-fingerprint",
        &cert.fp,
    ]);
    publisher.wait_err("publishing");
    wait_announced(&moqt(&d), &cert.fp, "live");
    let subscriber = Proc::spawn(&["sub", &moqt(&d), "live", "--stats", "--tls-fingerprint", &cert.fp]);
    subscriber.next_out();
    let before = subscriber.next_out();
    let metrics = http_get(&d, "/metrics");
    assert_eq!(peer_metric(&metrics, "peer_upstream_subscriptions", &moqt(&b)), 1, "{metrics}");

    b_proc.terminate();
    // D is told, moves to C at once, and B then closes the emptied link at its drain's end.
    d_proc.wait_err(&format!("peer {} down", moqt(&b)));
    let metrics = http_get(&d, "/metrics");
    assert_eq!(peer_metric(&metrics, "peer_upstream_subscriptions", &moqt(&c)), 1, "{metrics}");
    // Five stats lines (a second each) span the GOAWAY, the move and the drain's end (3 s).
    let lines: Vec<String> = (0..5).map(|_| subscriber.next_out()).collect();
    let (after, last) = (&lines[3], &lines[4]);
    let gap = lines.iter().map(|l| field(l, "ms max frame gap")).max().unwrap();
    let lost = field(last, "groups lost") - field(&before, "groups lost");
    println!(
        "DRAIN GAP: middle relay stopped with SIGTERM: {gap} ms longest frame gap, {lost} groups lost (10 groups/s)"
    );
    assert!(field(last, "frames") > field(after, "frames"), "{after} then {last}");
    assert_eq!(field(last, "duplicate groups"), 0, "{last}");
    assert_eq!(field(last, "reconnects"), 0, "{last}");
}

#[test]
fn a_peer_list_change_takes_effect_without_a_restart() {
    let cert = Cert::new("peerlist");
    let (_far, far) = relay(&cert, "127.0.0.1:0", 1, &[]);
    let list = cert.dir.join("peers.json");
    std::fs::write(&list, "[]").unwrap();
    let list_arg = list.display().to_string();
    let (near_proc, near) = relay(&cert, "127.0.0.1:0", 2, &["--peer-list", &list_arg, "--peer-list-interval", "0.2"]);
    near_proc.wait_err("peers: 0 (added 0, removed 0)");
    let publisher = Proc::spawn(&["pub", &moqt(&far), "behind", "--fps", "10", "--tls-fingerprint", &cert.fp]);
    publisher.wait_err("publishing");
    let watcher = Proc::spawn(&["announced", &moqt(&near), "behind", "--tls-fingerprint", &cert.fp]);

    // Added, then SIGHUP: the link comes up and the broadcast behind it is announced.
    std::fs::write(&list, format!(r#"[{{"url": "{}", "cost": 2}}]"#, moqt(&far))).unwrap();
    near_proc.signal("HUP");
    near_proc.wait_err("peers: 1 (added 1, removed 0)");
    near_proc.wait_err(&format!("peer {} up", moqt(&far)));
    assert_eq!(watcher.next_out(), "+ behind");
    let health = http_get(&near, "/health");
    assert!(health.contains(&format!("peer {} up", moqt(&far))) && health.contains("price=2"), "{health}");

    // Removed, no signal: the next poll drops the link and the broadcast with it.
    std::fs::write(&list, "[]").unwrap();
    near_proc.wait_err("peers: 0 (added 0, removed 1)");
    assert_eq!(watcher.next_out(), "- behind");
    let health = http_get(&near, "/health");
    assert_eq!(health, "ok\n");

    // A list that does not parse leaves the peers as they are.
    std::fs::write(&list, "{not json").unwrap();
    near_proc.wait_err("peer list not reloaded");
}

/// The peer list from an http:// URL: polled, and a failed fetch keeps the peers.
#[test]
fn a_peer_list_from_an_http_url_is_polled() {
    let cert = Cert::new("peerlist-http");
    let (_far, far) = relay(&cert, "127.0.0.1:0", 1, &[]);
    // A one-route HTTP server answering every GET with the current list (503 when it is empty).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/peers", listener.local_addr().unwrap());
    let body = std::sync::Arc::new(std::sync::Mutex::new(format!(r#"["{}?cost=3"]"#, moqt(&far))));
    let served = body.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = served.lock().unwrap().clone();
            let reply = if body.is_empty() {
                "HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    let (near_proc, near) = relay(&cert, "127.0.0.1:0", 2, &["--peer-list", &url, "--peer-list-interval", "0.2"]);
    near_proc.wait_err("peers: 1 (added 1, removed 0)");
    near_proc.wait_err(&format!("peer {} up", moqt(&far)));
    let metrics = http_get(&near, "/metrics");
    assert_eq!(peer_metric(&metrics, "peer_price", &moqt(&far)), 3, "{metrics}");
    // The endpoint fails: the peer stays.
    body.lock().unwrap().clear();
    near_proc.wait_err("peer list not reloaded");
    assert_eq!(peer_metric(&http_get(&near, "/metrics"), "peer_up", &moqt(&far)), 1);
    // It answers again, without the peer: the peer goes.
    *body.lock().unwrap() = "[]".to_string();
    near_proc.wait_err_all(&["peers: 0 (added 0, removed 1)", &format!("peer {} removed", moqt(&far))]);
}

/// moq-relay as a child process whose stderr lines arrive on a channel.
struct MoqRelay {
    child: std::process::Child,
    err: std::sync::mpsc::Receiver<String>,
}

impl MoqRelay {
    fn wait_err(&self, needle: &str) -> String {
        loop {
            match self.err.recv_timeout(common::WAIT) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("moq-relay: no line containing {needle:?}: {e}"),
            }
        }
    }
}

impl Drop for MoqRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_mixed_cluster_with_moq_relay_carries_broadcasts_both_ways() {
    let Some(bin) = std::env::var_os("MOQ_RELAY_BIN").map(PathBuf::from) else {
        println!("SKIPPED a_mixed_cluster_with_moq_relay_carries_broadcasts_both_ways: MOQ_RELAY_BIN is not set");
        return;
    };
    let cert = Cert::new("mixed");
    // `ours` is dialled by moq-relay (--cluster-connect); `dialler` dials moq-relay (--peer).
    let (_ours_proc, ours) = relay(&cert, "127.0.0.1:0", 7, &[]);
    let theirs = format!("127.0.0.1:{}", free_port());
    let mut child = std::process::Command::new(&bin)
        .args(["--listen", &theirs, "--listen-tls-cert", &cert.path("cert.pem")])
        .args(["--listen-tls-key", &cert.path("key.pem"), "--web-http-listen", &theirs, "--auth-public", "**"])
        .args(["--connect-bind", "127.0.0.1:0", "--connect-tls-fingerprint", &cert.fp, "--drain-timeout", "0s"])
        .args(["--cluster-connect", &moqt(&ours), "--cluster-id", "9", "--log-level", "info"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn moq-relay");
    let (tx, err) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let theirs_proc = MoqRelay { child, err };
    theirs_proc.wait_err("\"quic\"");
    let (dialler_proc, dialler) = relay(&cert, "127.0.0.1:0", 8, &["--peer", &moqt(&theirs)]);
    dialler_proc.wait_err(&format!("peer {} up", moqt(&theirs)));

    // Published on our dialling relay, heard on moq-relay; published on moq-relay, heard and
    // received on the relay moq-relay dialled.
    let p1 = Proc::spawn(&["pub", &moqt(&dialler), "from-ours", "--fps", "10", "--tls-fingerprint", &cert.fp]);
    p1.wait_err("publishing");
    wait_announced(&moqt(&theirs), &cert.fp, "from-ours");
    let p2 = Proc::spawn(&["pub", &moqt(&theirs), "from-theirs", "--fps", "10", "--tls-fingerprint", &cert.fp]);
    p2.wait_err("publishing");
    wait_announced(&moqt(&ours), &cert.fp, "from-theirs");
    let sub = Proc::spawn(&["sub", &moqt(&ours), "from-theirs", "--stats", "--tls-fingerprint", &cert.fp]);
    let line = sub.next_out();
    assert!(field(&line, "frames") > 0, "{line}");
    let sub = Proc::spawn(&["sub", &moqt(&theirs), "from-ours", "--stats", "--tls-fingerprint", &cert.fp]);
    let line = sub.next_out();
    assert!(field(&line, "frames") > 0, "{line}");
}

/// A loopback port free on both UDP and TCP (QUIC and HTTP share the number).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
