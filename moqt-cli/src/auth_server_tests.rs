//! The auth server client against a small HTTP server inside the test.

use std::sync::Mutex as StdMutex;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

/// A scripted auth server: answers each POST with the next reply and reports each request body.
struct Script {
    url: String,
    requests: mpsc::UnboundedReceiver<serde_json::Value>,
}

/// Serves `replies` in order (status, extra headers, body); each request's JSON comes out of
/// `requests`. `chunked` sends bodies chunked.
async fn script(replies: Vec<(u16, &'static str)>, chunked: bool) -> Script {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/auth?x=1", listener.local_addr().unwrap());
    let (tx, requests) = mpsc::unbounded_channel();
    let replies = Arc::new(StdMutex::new(replies.into_iter()));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (tx, replies) = (tx.clone(), replies.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "the client closed before its request was complete");
                    buf.extend_from_slice(&chunk[..n]);
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let mut req = httparse::Request::new(&mut headers);
                    if let httparse::Status::Complete(start) = req.parse(&buf).unwrap() {
                        assert_eq!(req.method, Some("POST"));
                        assert_eq!(req.path, Some("/auth?x=1"));
                        let len: usize = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                            .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                            .unwrap();
                        assert!(req
                            .headers
                            .iter()
                            .any(|h| h.name.eq_ignore_ascii_case("content-type") && h.value == b"application/json"));
                        if buf.len() >= start + len {
                            break buf[start..start + len].to_vec();
                        }
                    }
                };
                tx.send(serde_json::from_slice(&body).unwrap()).unwrap();
                let (status, reply) = replies.lock().unwrap().next().unwrap_or((500, ""));
                let head = if chunked {
                    let half = reply.len() / 2;
                    let body = format!(
                        "{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                        half,
                        &reply[..half],
                        reply.len() - half,
                        &reply[half..]
                    );
                    format!("HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
                } else {
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{reply}", reply.len())
                };
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.shutdown().await.ok();
            });
        }
    });
    Script { url, requests }
}

fn asked(target: &str) -> AdmissionRequest {
    AdmissionRequest {
        session: 7,
        kind: moqt_driver_quinn::TransportKind::WebTransport,
        version: moqt_proto::Version::Lite06,
        remote: Some("127.0.0.1:5000".parse().unwrap()),
        target: Some(target.to_string()),
    }
}

/// A handle whose updates land in a channel.
fn handle() -> (AccessHandle, mpsc::UnboundedReceiver<Decision>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (AccessHandle::new(7, move |d| tx.send(d).is_ok()), rx)
}

#[test]
fn replies_are_read_whole() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(parse_reply(head, false).unwrap(), Some((200, b"hello".to_vec())));
    assert_eq!(parse_reply(&head[..head.len() - 1], false).unwrap(), None);
    assert!(parse_reply(&head[..head.len() - 1], true).is_err());
    let chunked = b"HTTP/1.1 403 No\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    assert_eq!(parse_reply(chunked, false).unwrap(), Some((403, b"abcde".to_vec())));
    assert_eq!(parse_reply(&chunked[..40], false).unwrap(), None);
    let to_eof = b"HTTP/1.1 200 OK\r\n\r\n{}";
    assert_eq!(parse_reply(to_eof, false).unwrap(), None);
    assert_eq!(parse_reply(to_eof, true).unwrap(), Some((200, b"{}".to_vec())));
    assert!(parse_reply(b"NOT HTTP\r\n\r\n", true).is_err());
    // Sizes that cannot be honoured are errors, not panics.
    let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab";
    assert_eq!(parse_reply(huge, false).unwrap(), None);
    assert!(parse_reply(huge, true).is_err());
    assert!(parse_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff0\r\n", true).is_err());
    let long = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n{}";
    assert!(parse_reply(long, true).is_err());
    // Every prefix of a reply either waits for more or is an error at the end.
    for cut in 0..chunked.len() {
        assert!(parse_reply(&chunked[..cut], false).is_ok());
        let _ = parse_reply(&chunked[..cut], true);
    }
    assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true).is_err());
}

#[test]
fn only_allowed_urls_are_accepted() {
    assert!(HttpClient::new("http://127.0.0.1:1/auth").is_ok());
    assert!(HttpClient::new("http://localhost:1/auth").is_ok());
    assert!(HttpClient::new("unix:///run/auth.sock").is_ok());
    assert!(HttpClient::new("http://203.0.113.1/auth").is_err());
    assert!(HttpClient::new("ftp://127.0.0.1/auth").is_err());
}

#[tokio::test]
async fn connect_admits_with_the_grant_and_reports_the_end() {
    for chunked in [false, true] {
        let grant = r#"{"publish":["alice/**"],"subscribe":["**"],"root":"pid/room","tier":"gold","unknown":1}"#;
        let mut server = script(vec![(200, grant), (200, "")], chunked).await;
        let metrics = Arc::new(AuthMetrics::default());
        let gate = ServerGate::new(&server.url, "relay-1", metrics.clone()).unwrap();
        let (h, _) = handle();
        let decision = gate.admit(asked("/room?jwt=abc"), h).await;
        let Decision::Admit(access) = decision else { panic!("{decision:?}") };
        assert_eq!(access.root().as_str(), "pid/room", "the root alias replaces the dialed path");
        assert!(access.can_publish(&moqt_proto::Path::new("alice/cam")));
        assert!(!access.can_publish(&moqt_proto::Path::new("bob")));
        assert!(!access.cluster());
        let connect = server.requests.recv().await.unwrap();
        assert_eq!(connect["event"], "connect");
        assert_eq!(connect["node"], "relay-1");
        assert_eq!(connect["transport"], "quic");
        assert_eq!(connect["path"], "/room");
        assert_eq!(connect["query"], "jwt=abc");
        assert_eq!(connect["alpn"], "moq-lite-06");
        assert_eq!(connect["remote"], "127.0.0.1:5000");
        assert_eq!(connect["id"].as_str().unwrap().len(), 32);

        gate.ended(7, "", Some(Duration::from_millis(1500)));
        let end = server.requests.recv().await.unwrap();
        assert_eq!(end["event"], "end");
        assert_eq!(end["id"], connect["id"], "the same id for every event of a session");
        assert_eq!(end["reason"], "dropped");
        assert_eq!(end["duration"], 1.5);
        assert!(metrics.render().contains("moqt_auth_admitted_total{via=\"server\"} 1"));
    }
}

#[tokio::test]
async fn refusals_outages_and_invalid_grants() {
    let cases: [(u16, &'static str, u64, &str); 6] = [
        (401, "", session_code::UNAUTHORIZED, "server_refused"),
        (403, "{}", session_code::UNAUTHORIZED, "server_refused"),
        (200, r#"{"publish":[],"subscribe":[]}"#, session_code::UNAUTHORIZED, "server_refused"),
        (502, "", session_code::INTERNAL, "server_unavailable"),
        (200, "not json", session_code::INTERNAL, "server_unavailable"),
        (200, r#"{"subscribe":["**"],"mounts":{"a":"b"}}"#, session_code::INTERNAL, "server_invalid"),
    ];
    for (status, body, code, kind) in cases {
        let mut server = script(vec![(status, body)], false).await;
        let metrics = Arc::new(AuthMetrics::default());
        let gate = ServerGate::new(&server.url, "relay-1", metrics.clone()).unwrap();
        let (h, _) = handle();
        let decision = gate.admit(asked("/"), h).await;
        match decision {
            Decision::Refuse { code: c, reason } => {
                assert_eq!(c, code, "{status} {body}");
                assert!(reason.starts_with(kind), "{reason}");
            }
            other => panic!("{status} {body}: {other:?}"),
        }
        assert_eq!(server.requests.recv().await.unwrap()["event"], "connect");
        assert!(metrics.render().contains(&format!("moqt_auth_refused_total{{kind=\"{kind}\"}} 1")));
        // A refused session was never admitted: no end is reported.
        gate.ended(7, "refused", None);
        assert!(gate.inner.sessions.lock().unwrap().is_empty());
    }
    // A session that ends while the server answers: its grant is reported ended at once.
    let grant = r#"{"subscribe":["**"],"expires":4102444800,"revalidate":1}"#;
    let mut server = script(vec![(200, grant), (200, "")], false).await;
    let gate = ServerGate::new(&server.url, "relay-1", Arc::new(AuthMetrics::default())).unwrap();
    let (h, mut updates) = handle();
    let asking = gate.admit(asked("/"), h);
    gate.ended(7, "", None);
    assert!(matches!(asking.await, Decision::Admit(_)));
    let connect = server.requests.recv().await.unwrap();
    let end = server.requests.recv().await.unwrap();
    assert_eq!((end["event"].as_str(), end["id"].as_str()), (Some("end"), connect["id"].as_str()));
    assert!(gate.inner.sessions.lock().unwrap().is_empty(), "nothing is kept for it");
    assert!(updates.try_recv().is_err(), "and nothing re-checks it");

    // Nobody listening: an outage.
    let gate = ServerGate::new("http://127.0.0.1:1/auth", "relay-1", Arc::new(AuthMetrics::default())).unwrap();
    let (h, _) = handle();
    assert!(matches!(gate.admit(asked("/"), h).await, Decision::Refuse { code: session_code::INTERNAL, .. }));
}

#[tokio::test]
async fn a_re_check_extends_the_grant_then_a_narrower_one_ends_the_session() {
    let far = unix_now() + 3600;
    let first: &'static str = Box::leak(
        format!(r#"{{"subscribe":["**"],"publish":["a/**"],"expires":{far},"revalidate":1}}"#).into_boxed_str(),
    );
    let later: &'static str = Box::leak(
        format!(r#"{{"subscribe":["**"],"publish":["a/**","b/**"],"expires":{},"revalidate":1}}"#, far + 60)
            .into_boxed_str(),
    );
    let narrower: &'static str =
        Box::leak(format!(r#"{{"subscribe":["x/**"],"expires":{far},"revalidate":1}}"#).into_boxed_str());
    let mut server = script(vec![(200, first), (200, later), (503, ""), (200, narrower), (200, "")], false).await;
    let gate = ServerGate::new(&server.url, "relay-1", Arc::new(AuthMetrics::default())).unwrap();
    let (h, mut updates) = handle();
    assert!(matches!(gate.admit(asked("/room?jwt=abc"), h).await, Decision::Admit(_)));
    assert_eq!(server.requests.recv().await.unwrap()["event"], "connect");
    // The cadence comes round: the wider grant with a later expiry is taken.
    assert_eq!(server.requests.recv().await.unwrap()["event"], "revalidate");
    match updates.recv().await.unwrap() {
        Decision::Admit(a) => {
            assert_eq!(a.expires(), Some(far + 60));
            assert!(a.can_publish(&moqt_proto::Path::new("b")));
        }
        other => panic!("{other:?}"),
    }
    // An outage keeps the grant and asks again; the narrower answer ends the session.
    assert_eq!(server.requests.recv().await.unwrap()["event"], "revalidate");
    assert_eq!(server.requests.recv().await.unwrap()["event"], "revalidate");
    match updates.recv().await.unwrap() {
        Decision::Refuse { code, reason } => {
            assert_eq!(code, session_code::UNAUTHORIZED);
            assert_eq!(reason, "grant narrowed");
        }
        other => panic!("{other:?}"),
    }
    gate.ended(7, "grant narrowed", Some(Duration::from_secs(3)));
    let end = server.requests.recv().await.unwrap();
    assert_eq!((end["event"].as_str(), end["reason"].as_str()), (Some("end"), Some("grant narrowed")));
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_urls_speak_http_over_the_socket() {
    let path = std::env::temp_dir().join(format!("moqt-auth-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut len = 0;
        // Head and the 2-byte body `{}`.
        while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || !buf[..len].ends_with(b"{}") {
            let n = stream.read(&mut buf[len..]).await.unwrap();
            assert!(n > 0);
            len += n;
        }
        let head = String::from_utf8_lossy(&buf[..len]).to_string();
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nokay").await.unwrap();
        head
    });
    let client = HttpClient::new(&format!("unix://{}", path.display())).unwrap();
    assert_eq!(client.post_json(b"{}").await.unwrap(), (200, b"okay".to_vec()));
    let head = server.await.unwrap();
    assert!(head.starts_with("POST / HTTP/1.1\r\n") && head.contains("Host: localhost\r\n"), "{head}");
    let _ = std::fs::remove_file(&path);
}
