//! The two relays every cell shares: moq-dev's `moq-relay` and our `moqt relay`, each started on a
//! free loopback port, with the address and certificate fingerprint clients need.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use crate::process::Proc;
use crate::{Opts, READY};

/// Where a relay listens; its process stays with `main`.
pub struct Relay {
    /// `127.0.0.1:PORT`, UDP for QUIC and TCP for HTTP.
    pub addr: String,
    /// SHA-256 of its certificate, hex.
    pub fingerprint: String,
}

/// A loopback port free on both UDP and TCP (QUIC and HTTP share the number).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `GET /certificate.sha256` over plain HTTP.
fn http_fingerprint(addr: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("http connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET /certificate.sha256 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| format!("http read: {e}"))?;
    let (head, body) = body.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET /certificate.sha256: {}", head.lines().next().unwrap_or("")));
    }
    let fp = body.trim().to_string();
    if fp.len() == 64 && fp.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(fp)
    } else {
        Err(format!("odd fingerprint {fp:?}"))
    }
}

/// Starts `moq-relay` with a generated certificate, anonymous access and no drain delay.
pub fn start_moq_relay(opts: &Opts) -> Result<(Proc, Relay), String> {
    let bin = opts.peers.join("moq-relay");
    let dir = opts.logs.join("relays");
    // The port can be taken between the probe and the bind: retry a few times.
    let mut last = String::new();
    for _ in 0..3 {
        let addr = format!("127.0.0.1:{}", free_port());
        let proc = Proc::spawn(
            &bin,
            &[
                "--listen",
                &addr,
                "--listen-tls-generate",
                "localhost",
                "--web-http-listen",
                &addr,
                "--auth-public",
                "**",
                "--connect-bind",
                "127.0.0.1:0",
                "--drain-timeout",
                "0s",
            ],
            &dir,
            "moq-relay",
        )?;
        // `listening addr=… kind="http"` and `… kind="quic"`, in either order.
        let (mut http, mut quic) = (false, false);
        let mut ok = true;
        while !(http && quic) {
            match proc.wait_err("listening line", READY, |l| l.contains("listening") || l.contains("Error")) {
                Ok(l) if l.contains("kind=\"http\"") => http = true,
                Ok(l) if l.contains("kind=\"quic\"") => quic = true,
                Ok(l) if l.contains("Error") => {
                    last = l;
                    ok = false;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    last = e;
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let fingerprint = http_fingerprint(&addr)?;
        return Ok((proc, Relay { addr, fingerprint }));
    }
    Err(format!("moq-relay did not start: {last}"))
}

/// Starts `moqt relay` on a free port; its address and fingerprint come from its own output.
pub fn start_moqt_relay(opts: &Opts) -> Result<(Proc, Relay), String> {
    let dir = opts.logs.join("relays");
    let proc =
        Proc::spawn(&opts.moqt, &["relay", "--listen", "127.0.0.1:0", "--drain-timeout", "0"], &dir, "moqt-relay")?;
    let fp = proc.wait_err("certificate line", READY, |l| l.starts_with("certificate sha256"))?;
    let fingerprint = fp.rsplit(' ').next().unwrap().to_string();
    let line = proc.wait_err("listening line", READY, |l| l.starts_with("listening on"))?;
    let addr = line.split_whitespace().nth(2).ok_or("odd listening line")?.to_string();
    Ok((proc, Relay { addr, fingerprint }))
}
