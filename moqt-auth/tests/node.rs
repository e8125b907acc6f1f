//! Tokens of both claim forms, verified and authorized at a connect path, then enforced by the
//! relay core on the in-memory rig: which announcements each session hears and what it may
//! subscribe to, for every kind of pattern (literal, subtree, `*`, `pre*suf`, `**` inside, the
//! empty pattern) and connect paths at, below and above the token's root.

mod common;

use common::{hs256, key, NOW};
use moqt_auth::{KeySet, Verifier};
use moqt_proto::access::Access;
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::{stream_code, Config, Event, Perspective, SubscribeParams};
use moqt_proto::testing::{Net, WireOptions};
use moqt_proto::{Path, Version};

const BROADCASTS: [&str; 7] =
    ["room/alice", "room/alice/cam", "room/bob/chat", "room/carol/chat/x", "room/camera", "lobby/chat", "roomy"];

/// The access a token with this payload gives at `connect`.
fn access(payload: &str, connect: &str) -> Access {
    let verifier = Verifier::new(KeySet::Single(Box::new(key("HS256.jwk"))));
    verifier.authorize(&hs256(payload), &Path::new(connect), NOW).unwrap_or_else(|e| panic!("{payload}: {e}"))
}

/// A relay with a publisher of every broadcast; then a session with `access` watches everything.
/// Returns what it heard and, per path asked, whether a subscription was refused.
fn hears(v: Version, access: Access, ask: &[&str]) -> (Vec<String>, Vec<bool>) {
    let mut net = Net::new(v);
    let relay = net.add_node(NodeConfig { require_access: true, ..NodeConfig::relay() });
    let connect = |net: &mut Net| {
        let ep = net.add_session(Config::new(v, Perspective::Client));
        let link = net.connect(ep, relay, WireOptions::default());
        (ep, net.ends(link)[1].session.unwrap())
    };
    let (publisher, sid) = connect(&mut net);
    net.node(relay).set_access(sid, Access::full(&Path::root()), None);
    for b in BROADCASTS {
        net.session(publisher).announce(Path::new(b)).unwrap();
    }
    net.run();
    let (watcher, sid) = connect(&mut net);
    net.node(relay).set_access(sid, access, None);
    net.session(watcher).announce_interest(Path::root()).unwrap();
    let ids: Vec<_> = ask
        .iter()
        .map(|p| net.session(watcher).subscribe(Path::new(p), "t", SubscribeParams::default()).unwrap())
        .collect();
    net.run();
    let events = net.events(watcher);
    let mut heard: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Announced { path, .. } => Some(path.as_str().to_string()),
            _ => None,
        })
        .collect();
    heard.sort();
    let refused = ids
        .iter()
        .map(|id| {
            events.iter().any(|e| {
                matches!(e, Event::SubscriptionEnded { subscription, code: Some(c) }
                    if subscription == id && *c == stream_code::UNAUTHORIZED)
            })
        })
        .collect();
    (heard, refused)
}

#[test]
fn every_claim_form_and_pattern_through_the_relay() {
    // (payload, connect path, heard, [(asked path, refused?)])
    type Case = (&'static str, &'static str, &'static [&'static str], &'static [(&'static str, bool)]);
    let cases: [Case; 11] = [
        // moq-token's prefix form: a prefix is a subtree, by segment.
        (
            r#"{"root":"room","get":["alice"]}"#,
            "/room",
            &["alice", "alice/cam"],
            &[("alice/cam", false), ("bob/chat", true)],
        ),
        (
            r#"{"root":"room","get":[""]}"#,
            "/room",
            &["alice", "alice/cam", "bob/chat", "camera", "carol/chat/x"],
            &[("camera", false)],
        ),
        (r#"{"root":"room","put":["alice"],"get":["bob"]}"#, "/room", &["bob/chat"], &[("alice", true)]),
        // The same grant seen from above its root: anchored there.
        (
            r#"{"root":"room","get":["alice"]}"#,
            "/",
            &["room/alice", "room/alice/cam"],
            &[("room/alice", false), ("roomy", true)],
        ),
        // And from below: narrowed.
        // (the connect path's own broadcast is named by the empty path; `..` is an ordinary
        // segment, so "../bob" is room/alice/../bob, which is allowed and has no route)
        (r#"{"root":"room","get":[""]}"#, "/room/alice", &["", "cam"], &[("cam", false), ("../bob", false)]),
        // moq-auth's pattern form.
        (
            r#"{"root":"room","subscribe":["*/chat"]}"#,
            "/room",
            &["bob/chat"],
            &[("bob/chat", false), ("carol/chat/x", true)],
        ),
        (
            r#"{"root":"room","subscribe":["**/chat"]}"#,
            "/room",
            &["bob/chat"],
            &[("x/y/chat", false), ("chat/x", true)],
        ),
        (r#"{"root":"room","subscribe":["cam*"]}"#, "/room", &["camera"], &[("cam", false), ("ca", true)]),
        (r#"{"root":"room","subscribe":["alice"]}"#, "/room", &["alice"], &[("alice/cam", true)]),
        (r#"{"root":"room/alice","subscribe":[""]}"#, "/room", &["alice"], &[("alice", false), ("alice/cam", true)]),
        (
            r#"{"subscribe":["**"]}"#,
            "/",
            &[
                "lobby/chat",
                "room/alice",
                "room/alice/cam",
                "room/bob/chat",
                "room/camera",
                "room/carol/chat/x",
                "roomy",
            ],
            &[],
        ),
    ];
    for v in [Version::Lite03, Version::Lite04, Version::Lite05, Version::Lite06] {
        for (payload, connect, want, asks) in cases {
            let paths: Vec<&str> = asks.iter().map(|(p, _)| *p).collect();
            let (heard, refused) = hears(v, access(payload, connect), &paths);
            assert_eq!(heard, want, "{v} {payload} at {connect}");
            for ((path, want_refused), got) in asks.iter().zip(refused) {
                assert_eq!(got, *want_refused, "{v} {payload} at {connect}: subscribe {path}");
            }
        }
    }
}

#[test]
fn a_token_that_reaches_nothing_at_the_connect_path_is_refused() {
    let verifier = Verifier::new(KeySet::Single(Box::new(key("HS256.jwk"))));
    let token = hs256(r#"{"root":"room","get":["alice"]}"#);
    let kind = |connect: &str| verifier.authorize(&token, &Path::new(connect), NOW).unwrap_err().kind();
    assert_eq!(kind("/roomy"), "root_mismatch");
    assert_eq!(kind("/room/bob"), "no_access");
    assert_eq!(kind("/other"), "root_mismatch");
}
