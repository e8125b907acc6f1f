//! The relay's HTTP side as a client sees it: GET/HEAD/OPTIONS semantics, CORS on the
//! certificate fingerprint, keep-alive, the bounds (request head size, header timeout) and the
//! back-off when `accept` fails for lack of file descriptors.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, WAIT};

fn relay(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["relay", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args);
    let line = p.wait_err("listening on");
    let addr = line.split_whitespace().nth(2).unwrap().to_string();
    (p, addr)
}

/// Sends `request` as is and reads until the server closes.
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn get_head_options_and_other_methods() {
    let (_relay, addr) = relay(&[]);
    let get = exchange(&addr, b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(get.starts_with("HTTP/1.0 200") && get.ends_with("\r\n\r\nok\n"), "{get}");
    assert_eq!(header(&get, "content-length"), Some("3"));

    let head = exchange(&addr, b"HEAD /health HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200") && head.ends_with("\r\n\r\n"), "HEAD has no body: {head:?}");
    assert_eq!(header(&head, "content-length"), Some("3"), "HEAD announces the GET length");

    let cert = exchange(&addr, b"GET /certificate.sha256 HTTP/1.0\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n");
    assert_eq!(header(&cert, "access-control-allow-origin"), Some("*"), "{cert}");
    assert_eq!(cert.split("\r\n\r\n").nth(1).map(str::len), Some(64), "{cert}");

    let options = exchange(&addr, b"OPTIONS /certificate.sha256 HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(options.starts_with("HTTP/1.0 204"), "{options}");
    assert!(header(&options, "access-control-allow-methods").is_some_and(|m| m.contains("GET")), "{options}");

    let post = exchange(&addr, b"POST /health HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    assert!(post.starts_with("HTTP/1.0 405"), "{post}");
    let missing = exchange(&addr, b"GET /nope HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");
    let index = exchange(&addr, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(index.starts_with("HTTP/1.0 200") && index.contains("moqt relay"), "{index}");
    // An upgrade goes to the WebSocket handler, which refuses one offering no moq-lite subprotocol.
    let upgrade = exchange(
        &addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nConnection: close\r\n\r\n",
    );
    assert!(upgrade.starts_with("HTTP/1.1 400") && upgrade.contains("Sec-WebSocket-Protocol"), "{upgrade}");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let (_relay, addr) = relay(&[]);
    let two = exchange(
        &addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(two.matches("HTTP/1.1 200").count(), 2, "{two}");
}

#[test]
fn an_oversized_head_is_refused_and_an_idle_connection_is_closed() {
    let (relay, addr) = relay(&["--http-header-timeout", "1", "--http-max-header-bytes", "8KiB"]);
    let big = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(20_000));
    let refused = exchange(&addr, big.as_bytes());
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused:?}");

    // Half a request head, then silence: the server closes at the header timeout.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(WAIT)).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "closed (or 408) at the header timeout: {text:?}");
    let metrics = exchange(&addr, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(metrics.contains("moqt_http_connection_errors_total 2"), "{metrics}");
    drop(relay);
}

#[test]
fn accept_failures_back_off_instead_of_spinning() {
    // A relay with 30 file descriptors: 40 connections exhaust them and `accept` fails (EMFILE).
    let bin = common::BIN;
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -n 30 && exec {bin} relay --listen 127.0.0.1:0 --http-header-timeout 2 \
                 --http-max-connections-per-address 1000"
            ),
        ])
        .env("MOQT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0, "the relay exited");
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let held: Vec<TcpStream> = (0..40).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    // The held connections time out (2 s) and free their descriptors; then /metrics answers.
    let start = std::time::Instant::now();
    let metrics = loop {
        assert!(start.elapsed() < WAIT, "/metrics never answered");
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        if text.starts_with("HTTP/1.0 200") {
            break text;
        }
    };
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("moqt_http_accept_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the accept error counter");
    // Back-off from 10 ms doubling to 1 s: a handful of failures over the seconds the
    // descriptors were exhausted; a spinning loop would count millions.
    assert!((1..=100).contains(&errors), "{errors} accept failures");
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
}
