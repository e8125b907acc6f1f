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
    let is_head = |l: &str| l.len() == 17 && l.ends_with(':');
    assert!(is_head(&head), "{name}: {head:?}");
    let a: u32 = a.parse().expect("seconds");
    assert!(a < 60, "{name}: {a}");
    // The next frame is the next second, or at the turn of a minute the next minute's head.
    match b.parse::<u32>() {
        Ok(b) => assert_eq!(b, a + 1, "{name}: {a} then {b}"),
        Err(_) => assert!(is_head(&b) && b > head, "{name}: {head:?}, {a}, then {b:?}"),
    }
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

/// A raw WebSocket client speaking QMux bytes by hand, for the bad-input tests.
mod raw {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// QX_TRANSPORT_PARAMETERS with no parameters (all defaults: the server may send nothing).
    pub const EMPTY_PARAMS: &[u8] = &[0xff, 0x51, 0x53, 0x30, 0x0d, 0x0a, 0x0d, 0x0a, 0x00];

    /// A masked client frame (mask key 0, so the payload is sent as is).
    pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len < 65536 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// A binary message.
    pub fn binary(payload: &[u8]) -> Vec<u8> {
        frame(0x2, payload)
    }

    /// A QUIC varint.
    pub fn varint(v: u64, out: &mut Vec<u8>) {
        if v < 1 << 6 {
            out.push(v as u8);
        } else if v < 1 << 14 {
            out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
        } else if v < 1 << 30 {
            out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
        } else {
            out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
        }
    }

    fn read_varint(b: &[u8]) -> Option<u64> {
        let len = 1usize << (b.first()? >> 6);
        let mut v = u64::from(b[0] & 0x3f);
        for x in b.get(1..len)? {
            v = (v << 8) | u64::from(*x);
        }
        Some(v)
    }

    /// An upgraded connection.
    pub struct Ws {
        s: TcpStream,
    }

    impl Ws {
        /// Upgrades with `protocol`, checks the 101 names it, and reads the server's transport
        /// parameters.
        pub fn connect(addr: &str, protocol: &str) -> Ws {
            let mut s = TcpStream::connect(addr).unwrap();
            // A guard against a hung test only; every read below expects data or an end.
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            write!(
                s,
                "GET /room HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
            )
            .unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            let head = String::from_utf8(head).unwrap();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            assert!(head.to_ascii_lowercase().contains(&format!("sec-websocket-protocol: {protocol}")), "{head}");
            assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
            let mut ws = Ws { s };
            let (op, first) = ws.read().expect("server transport parameters");
            assert_eq!(op, 0x2);
            assert!(first.starts_with(&EMPTY_PARAMS[..8]), "first record: {first:02x?}");
            ws
        }

        /// Writes raw bytes.
        pub fn send(&mut self, bytes: &[u8]) {
            self.s.write_all(bytes).unwrap();
        }

        /// The next server message (opcode, payload), or `None` at the end of the connection.
        pub fn read(&mut self) -> Option<(u8, Vec<u8>)> {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).ok()?;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).ok()?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).ok()?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.s.read_exact(&mut payload).ok()?;
            Some((h[0] & 0x0f, payload))
        }

        /// Reads to the end: the QMux CONNECTION_CLOSE (0x1c) code and the WebSocket close code
        /// the server sent, if any.
        pub fn outcome(mut self) -> (Option<u64>, Option<u16>) {
            let (mut qmux, mut ws) = (None, None);
            while let Some((op, payload)) = self.read() {
                match op {
                    0x2 if payload.first() == Some(&0x1c) => qmux = read_varint(&payload[1..]),
                    0x8 if payload.len() >= 2 => {
                        ws = Some(u16::from_be_bytes([payload[0], payload[1]]));
                        // Answer the close, as a client does; the server then ends the TCP connection.
                        let _ = self.s.write_all(&frame(0x8, &payload[..2]));
                    }
                    _ => {}
                }
            }
            (qmux, ws)
        }
    }
}

/// Bad input on one upgraded socket closes that session with the right code; a clock over
/// another WebSocket session through the same relay keeps flowing meanwhile.
#[test]
fn bad_input_closes_only_that_session() {
    use raw::{binary, varint, Ws, EMPTY_PARAMS};

    let (_relay, addr, fp) = relay(&[]);
    let u = format!("ws://{addr}/");
    let publisher = Proc::spawn(&["pub", &u, "steady", "--clock", "--tls-fingerprint", &fp]);
    publisher.wait_err("publishing");
    await_announced(&u, &fp, "steady");
    let sub = Proc::spawn(&["sub", &u, "steady", "--track", "seconds", "--tls-fingerprint", &fp]);
    sub.next_out();
    let before: u32 = sub.next_out().parse().unwrap();

    const FLOW_CONTROL_ERROR: u64 = 0x3;
    const STREAM_STATE_ERROR: u64 = 0x5;
    const FRAME_ENCODING_ERROR: u64 = 0x7;
    const PROTOCOL_VIOLATION: u64 = 0xa;
    let protocol = "qmux-01.moq-lite-05";

    // A STREAM frame (OFF|LEN) on stream `id` at `offset`. (Offsets are not checked: moq-dev's
    // older peers wrote none; flow control counts bytes.)
    let stream = |id: u64, offset: u64, data: &[u8]| {
        let mut f = vec![0x0e];
        varint(id, &mut f);
        varint(offset, &mut f);
        varint(data.len() as u64, &mut f);
        f.extend_from_slice(data);
        f
    };
    // (name, bytes sent after the transport parameters, QMux close code, WebSocket close code)
    type Case = (&'static str, Vec<u8>, Option<u64>, Option<u16>);
    let cases: Vec<Case> = vec![
        // A record over max_record_size (16382): 17000 bytes of PADDING.
        ("oversized record", binary(&vec![0u8; 17000]), Some(FRAME_ENCODING_ERROR), Some(1002)),
        // Server-initiated uni stream 3 was never opened by the server.
        ("stream that does not exist", binary(&stream(3, 0, b"x")), Some(STREAM_STATE_ERROR), Some(1002)),
        // Our uni stream 2 reset with a final size past its 1 MiB window (RESET_STREAM id 2,
        // code 0, final size 2 MiB).
        (
            "stream flow control",
            binary(&[0x04, 0x02, 0x00, 0x80, 0x20, 0x00, 0x00]),
            Some(FLOW_CONTROL_ERROR),
            Some(1002),
        ),
        // An unknown frame type.
        ("unknown frame", binary(&[0x3e, 0x00]), Some(FRAME_ENCODING_ERROR), Some(1002)),
        // QMux is binary only.
        ("text message", raw::frame(0x1, b"hello"), Some(PROTOCOL_VIOLATION), Some(1003)),
        // Not WebSocket framing at all (reserved opcode, no mask).
        ("garbage", vec![0x0f; 64], None, Some(1002)),
    ];
    for (name, bad, qmux, ws) in cases {
        let mut conn = Ws::connect(&addr, protocol);
        conn.send(&binary(EMPTY_PARAMS));
        conn.send(&bad);
        let (got_qmux, got_ws) = conn.outcome();
        assert_eq!(got_qmux, qmux, "{name}: QMux close code");
        assert_eq!(got_ws, ws, "{name}: WebSocket close code");
    }

    // The other session kept flowing: the second after the bad sessions ended arrives right
    // after the second they ended in (the clock's frames are the wall clock's seconds, one
    // group a minute; a late joiner's backlog only holds seconds before it subscribed).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (s, next) = ((now % 60) as u32, ((now + 1) % 60) as u32);
    let mut last = Some(before);
    for _ in 0..200 {
        let value = sub.next_out().parse::<u32>().ok();
        if value == Some(next) && (last == Some(s) || next == 0) {
            return;
        }
        last = value;
    }
    panic!("second {next} never followed second {s}");
}

/// Upgrades the relay refuses: unknown or bare subprotocols (HTTP 400), a wrong WebSocket
/// version (426).
#[test]
fn refused_upgrades() {
    use std::io::{Read, Write};
    let (_relay, addr, _fp) = relay(&[]);
    let ask = |version: &str, protocol: Option<&str>| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let protocol = protocol.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{protocol}\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines().next().unwrap_or_default().to_string()
    };
    assert!(ask("13", Some("qmux-01, qmux-00, webtransport")).starts_with("HTTP/1.1 400"));
    assert!(ask("13", Some("qmux-01.moqt-17")).starts_with("HTTP/1.1 400"));
    assert!(ask("13", None).starts_with("HTTP/1.1 400"));
    assert!(ask("8", Some("qmux-01.moq-lite-05")).starts_with("HTTP/1.1 426"));
}
