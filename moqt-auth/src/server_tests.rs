use super::*;

fn set(texts: &[&str]) -> Patterns {
    texts.iter().map(|t| t.parse::<Pattern>().unwrap()).collect()
}

fn request() -> Request {
    let mut r = Request::connect([0xab; 16], "relay-1", Transport::Quic, "/demo/room", Some("jwt=abc"));
    r.remote = Some("203.0.113.9:4433".parse().unwrap());
    r
}

#[test]
fn connect_request_shape() {
    let r = request();
    assert_eq!(r.id.len(), 32);
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"id":"{}","event":"connect","node":"relay-1","transport":"quic","remote":"203.0.113.9:4433","path":"/demo/room","query":"jwt=abc"}}"#,
            "ab".repeat(16)
        )
    );
    assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
    let json = serde_json::to_value(r.with_event(Event::Revalidate)).unwrap();
    assert_eq!(json["event"], "revalidate");
}

/// The byte vector moq-auth's own tests pin for an `end` (its JS twin parses the same bytes).
#[test]
fn end_request_matches_moq_auth_vector() {
    let mut r = Request::connect([0; 16], "relay-1", Transport::WebSocket, "/demo/room", Some("jwt=abc"));
    r.id = "00ff".into();
    r.remote = Some("203.0.113.9:4433".parse().unwrap());
    r.event = Event::End { reason: "expired".into(), duration: 1.5, bytes: Bytes { sent: 10, received: 20 } };
    let want = r#"{"id":"00ff","event":"end","reason":"expired","duration":1.5,"bytes":{"sent":10,"received":20},"node":"relay-1","transport":"websocket","remote":"203.0.113.9:4433","path":"/demo/room","query":"jwt=abc"}"#;
    assert_eq!(serde_json::to_string(&r).unwrap(), want);
    assert_eq!(serde_json::from_str::<Request>(want).unwrap(), r);
}

#[test]
fn setup_token_is_base64url() {
    let mut r = Request::connect([0; 16], "relay-1", Transport::Quic, "/demo/room", None);
    r.id = "00ff".into();
    r.token = Some(SetupToken { kind: 1, value: vec![0x00, 0xfb, 0xff] });
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"id":"00ff","event":"connect","node":"relay-1","transport":"quic","path":"/demo/room","token":{"kind":1,"value":"APv_"}}"#
    );
    assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
    for bad in ["A", "AB", "APv_A", "AP+/"] {
        assert!(serde_json::from_str::<SetupToken>(&format!(r#"{{"kind":0,"value":"{bad}"}}"#)).is_err(), "{bad}");
    }
    for good in ["", "AA", "AAA", "AAAA", "AQ", "AAE"] {
        assert!(serde_json::from_str::<SetupToken>(&format!(r#"{{"kind":0,"value":"{good}"}}"#)).is_ok(), "{good}");
    }
}

#[test]
fn answer_shape() {
    let a = Answer {
        publish: vec!["alice/**".into()],
        subscribe: vec!["**".into()],
        root: Some("pid/room".into()),
        expires: Some(4_102_444_800),
        revalidate: Some(60),
        tier: Some("websocket".into()),
        peer: true,
        ..Answer::default()
    };
    let want = r#"{"publish":["alice/**"],"subscribe":["**"],"root":"pid/room","expires":4102444800,"revalidate":60,"tier":"websocket","peer":true}"#;
    assert_eq!(serde_json::to_string(&a).unwrap(), want);
    assert_eq!(serde_json::from_str::<Answer>(want).unwrap(), a);
    // Absent fields default; unknown ones are ignored.
    let a: Answer = serde_json::from_str(r#"{"publish":["**"],"future":1}"#).unwrap();
    assert_eq!(a.publish, ["**"]);
    assert!(a.expires.is_none() && !a.peer);
}

#[test]
fn statuses() {
    let ok = br#"{"subscribe":["**"]}"#;
    assert!(read_reply(200, ok, 0).is_ok());
    assert!(read_reply(204, ok, 0).is_ok());
    assert_eq!(read_reply(401, ok, 0), Err(ServerError::Refused));
    assert_eq!(read_reply(403, b"no", 0), Err(ServerError::Refused));
    assert!(matches!(read_reply(500, ok, 0), Err(ServerError::Unavailable(_))));
    assert!(matches!(read_reply(404, ok, 0), Err(ServerError::Unavailable(_))));
    assert!(matches!(read_reply(302, ok, 0), Err(ServerError::Unavailable(_))));
    assert!(matches!(read_reply(200, b"not json", 0), Err(ServerError::Unavailable(_))));
    assert!(matches!(read_reply(200, br#"{"publish":null}"#, 0), Err(ServerError::Unavailable(_))));
}

#[test]
fn answer_validation() {
    let now = 1_000;
    let check = |json: &str| read_reply(200, json.as_bytes(), now);
    assert_eq!(check("{}"), Err(ServerError::Refused));
    assert_eq!(check(r#"{"publish":[]}"#), Err(ServerError::Refused));
    assert!(matches!(check(r#"{"publish":["**"],"revalidate":5}"#), Err(ServerError::Invalid(_))));
    assert!(matches!(check(r#"{"publish":["**"],"revalidate":0,"expires":2000}"#), Err(ServerError::Invalid(_))));
    assert!(matches!(check(r#"{"publish":["**"],"expires":1000}"#), Err(ServerError::Invalid(_))));
    assert!(matches!(check(r#"{"publish":["**"],"expires":999}"#), Err(ServerError::Invalid(_))));
    assert!(check(r#"{"publish":["**"],"expires":1001,"revalidate":5}"#).is_ok());
    assert!(matches!(check(r#"{"publish":["**"],"mounts":{".svc":".svc/pid"}}"#), Err(ServerError::Invalid(_))));
    assert!(matches!(check(r#"{"publish":["/bad"]}"#), Err(ServerError::Invalid(_))));
}

#[test]
fn admitted_access() {
    let a = admit(200, br#"{"publish":["alice/**"],"subscribe":["**"],"expires":5000}"#, "/demo/room/", 10).unwrap();
    assert_eq!(a.root(), &Path::new("demo/room"));
    assert_eq!(a.publish(), &set(&["alice/**"]));
    assert_eq!(a.expires(), Some(5000));
    assert!(!a.cluster());
    // `root` replaces the dialed path; `peer` is the cluster right.
    let a = admit(200, br#"{"subscribe":["**"],"root":"pid","peer":true}"#, "/slug", 10).unwrap();
    assert_eq!(a.root(), &Path::new("pid"));
    assert!(a.cluster());
    // Only `peer` decides: everything at the top without it is not a peer.
    assert!(!admit(200, br#"{"publish":["**"],"subscribe":["**"]}"#, "/", 10).unwrap().cluster());
    assert_eq!(admit(403, b"", "/x", 10), Err(ServerError::Refused));
}

#[test]
fn rechecks() {
    let current = admit(200, br#"{"publish":["alice/**"],"subscribe":["**"],"expires":5000}"#, "/room", 10).unwrap();
    let re = |status: u16, body: &str| recheck(&current, status, body.as_bytes(), "/room", 100);
    match re(200, r#"{"publish":["alice/**","bob"],"subscribe":["**"],"expires":9000}"#) {
        Recheck::Keep(a) => assert_eq!(a.expires(), Some(9000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(re(403, ""), Recheck::End("refused".into()));
    assert_eq!(re(200, "{}"), Recheck::End("refused".into()));
    assert_eq!(re(200, r#"{"publish":["**"],"expires":50}"#), Recheck::End("invalid".into()));
    assert_eq!(
        re(200, r#"{"publish":["alice/**"],"subscribe":["**"],"root":"other"}"#),
        Recheck::End("root changed".into())
    );
    assert_eq!(
        re(200, r#"{"publish":["alice/**"],"subscribe":["**"],"peer":true}"#),
        Recheck::End("peer changed".into())
    );
    assert_eq!(re(200, r#"{"publish":["alice"],"subscribe":["**"]}"#), Recheck::End("grant narrowed".into()));
    assert_eq!(re(200, r#"{"publish":["alice/**"]}"#), Recheck::End("grant narrowed".into()));
    assert_eq!(re(503, ""), Recheck::Retry);
    assert_eq!(re(200, "garbage"), Recheck::Retry);
}

#[test]
fn backoff_doubles_to_the_cap() {
    let minute = Duration::from_secs(60);
    let secs = |n: u32| backoff(n, Duration::from_secs(3600), 1.0).as_secs();
    assert_eq!([secs(1), secs(2), secs(3), secs(6), secs(7), secs(100)], [1, 2, 4, 32, 60, 60]);
    assert_eq!(backoff(10, Duration::from_secs(5), 1.0), Duration::from_secs(5));
    assert_eq!(backoff(1, minute, 1.25), Duration::from_millis(1250));
    assert_eq!(backoff(1, minute, 9.0), Duration::from_millis(1250));
    assert_eq!(backoff(0, minute, 0.75), Duration::from_millis(750));
}

#[test]
fn auth_url_policy() {
    let ok = |u: &str| check_url(&u.parse().unwrap()).is_ok();
    assert!(ok("https://auth.example/"));
    assert!(ok("http://127.0.0.1:8080/"));
    assert!(ok("http://[::1]:8080/"));
    assert!(ok("http://localhost/"));
    assert!(ok("unix:///run/auth.sock"));
    assert!(!ok("http://auth.example/"));
    assert!(!ok("http://10.0.0.1/"));
    assert!(!ok("ftp://127.0.0.1/"));
}
