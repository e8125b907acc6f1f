//! `moqt relay` tells a first-time user what to do next: once it listens it prints the demo page's
//! URL and a `moqt pub` / `moqt sub` pair with its certificate's fingerprint. These tests start
//! relays on each kind of address and use what they print exactly as printed: the URL must serve
//! the page, the pair must carry frames, and a relay bound to one address family must never send
//! anyone to `localhost`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

use common::Proc;

/// What the relay printed at start.
struct Hints {
    fingerprint: String,
    /// Everything it printed about next steps, for "never localhost" checks.
    text: String,
    /// The line between the URL and the pair ("next: publish …", or the build hint first).
    built_hint: String,
    url: String,
    publish: Vec<String>,
    subscribe: Vec<String>,
}

fn start(args: &[&str]) -> (Proc, Hints) {
    let relay = Proc::spawn(args);
    let fingerprint = relay.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
    relay.wait_err("listening on");
    let open = relay.wait_err("next: open");
    let url = relay.wait_err("  http://").trim().to_string();
    let built_hint = relay.wait_err(""); // the line right after the URL
    let what =
        if built_hint.starts_with("next: publish") { built_hint.clone() } else { relay.wait_err("next: publish") };
    let publish = relay.wait_err(" pub moqt://");
    let subscribe = relay.wait_err(" sub https://");
    let text = [&open, &url, &what, &publish, &subscribe].map(|s| s.as_str()).join("\n");
    let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let text = format!("{text}\n{built_hint}");
    (relay, Hints { fingerprint, text, built_hint, url, publish: words(&publish), subscribe: words(&subscribe) })
}

/// `GET /` on the printed URL, over plain TCP: the status line and the body.
fn get(url: &str) -> (String, String) {
    let authority = url.strip_prefix("http://").unwrap().trim_end_matches('/');
    let addrs: Vec<_> = authority.to_socket_addrs().expect("a resolvable host").collect();
    let mut stream = TcpStream::connect(&addrs[..]).expect("the printed URL accepts TCP");
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    write!(stream, "GET / HTTP/1.0\r\nHost: {authority}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// Runs the printed pair as printed: the publisher, then (once the relay announces the broadcast)
/// the subscriber, whose first statistics line must count frames.
fn run_pair(h: &Hints) {
    let same_binary = |word: &str| {
        std::fs::canonicalize(word).ok() == std::fs::canonicalize(common::BIN).ok()
            || (word == "moqt" && common::BIN.ends_with("/moqt"))
    };
    for cmd in [&h.publish, &h.subscribe] {
        assert!(same_binary(&cmd[0]), "the pair runs this binary: {cmd:?}");
        let fp = cmd.iter().position(|w| w == "--tls-fingerprint").map(|i| cmd[i + 1].as_str());
        assert_eq!(fp, Some(h.fingerprint.as_str()), "{cmd:?}");
    }
    let args = |cmd: &[String]| cmd[1..].to_vec();
    let publish = args(&h.publish);
    let publisher = Proc::spawn(&publish.iter().map(String::as_str).collect::<Vec<_>>());
    publisher.wait_err("publishing demo/pattern");
    // The broadcast is live at the relay once `announced` lists it (a readiness signal).
    let url = h.subscribe[2].clone();
    let announced = Proc::spawn(&["announced", &url, "demo", "--count", "1", "--tls-fingerprint", &h.fingerprint]);
    assert_eq!(announced.next_out(), "+ demo");
    let subscribe = args(&h.subscribe);
    let subscriber = Proc::spawn(&subscribe.iter().map(String::as_str).collect::<Vec<_>>());
    let stats = subscriber.next_out();
    let frames: u64 = stats.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(stats.starts_with("sub: ") && frames > 0, "{stats}");
}

#[test]
fn a_relay_on_ipv4_loopback_prints_an_ipv4_url_and_a_pair_that_works() {
    let dir = std::env::temp_dir().join(format!("moqt-hints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<title>the demo page</title>").unwrap();
    let (_relay, h) = start(&["relay", "--listen", "127.0.0.1:0", "--web-root", dir.to_str().unwrap()]);
    assert!(h.url.starts_with("http://127.0.0.1:") && h.url.ends_with('/'), "{}", h.text);
    assert!(!h.text.contains("localhost"), "bound to 127.0.0.1 only:\n{}", h.text);
    assert!(h.built_hint.starts_with("next: publish"), "the page is built: no build hint\n{}", h.text);
    let (status, body) = get(&h.url);
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "<title>the demo page</title>");
    assert_eq!(h.publish[2], format!("moqt://{}", &h.url["http://".len()..h.url.len() - 1]));
    assert_eq!(h.subscribe[2], h.url.replace("http://", "https://"));
    run_pair(&h);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_relay_on_ipv6_loopback_prints_an_ipv6_url_and_a_pair_that_works() {
    let (_relay, h) = start(&["relay", "--listen", "[::1]:0"]);
    assert!(h.url.starts_with("http://[::1]:"), "{}", h.text);
    assert!(!h.text.contains("localhost"), "bound to ::1 only:\n{}", h.text);
    run_pair(&h);
}

#[test]
fn a_relay_on_the_ipv4_wildcard_points_at_ipv4_loopback() {
    let (_relay, h) = start(&["relay", "--listen", "0.0.0.0:0"]);
    assert!(h.url.starts_with("http://127.0.0.1:"), "{}", h.text);
    assert!(!h.text.contains("localhost"), "{}", h.text);
    // No page built where the test runs: the hint says how to build it, and the URL still answers.
    assert!(h.built_hint.contains("npm run build"), "{}", h.text);
    let (status, body) = get(&h.url);
    assert!(status.contains("200") && body.contains("npm ci"), "{status}: {body}");
    run_pair(&h);
}

#[test]
fn a_relay_on_the_ipv6_wildcard_says_localhost_only_when_it_holds_both_families() {
    let (_relay, h) = start(&["relay", "--listen", "[::]:0"]);
    let port = h.url.rsplit(':').next().unwrap().trim_end_matches('/').to_string();
    // Whether the IPv6 wildcard also took the IPv4 port decides between localhost and [::1].
    let dual = std::net::UdpSocket::bind(format!("0.0.0.0:{port}")).is_err();
    let expect = if dual { format!("http://localhost:{port}/") } else { format!("http://[::1]:{port}/") };
    assert_eq!(h.url, expect, "{}", h.text);
    let (status, _) = get(&h.url);
    assert!(status.contains("200"), "{status}");
    run_pair(&h);
}
