use super::*;

fn p(text: &str) -> Pattern {
    text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn set(texts: &[&str]) -> Patterns {
    texts.iter().map(|t| p(t)).collect()
}

fn path(text: &str) -> Path {
    Path::new(text)
}

fn grant(root: &str, publish: &[&str], subscribe: &[&str]) -> Grant {
    Grant { root: path(root), publish: set(publish), subscribe: set(subscribe), cluster: false, expires: None }
}

#[test]
fn connect_at_the_root() {
    let a = grant("room/123", &["alice/**"], &["**"]).authorize(&path("/room/123/")).unwrap();
    assert_eq!(a.root(), &path("room/123"));
    assert_eq!(a.publish(), &set(&["alice/**"]));
    assert_eq!(a.subscribe(), &set(&["**"]));
    assert!(a.can_publish(&path("alice")));
    assert!(a.can_publish(&path("alice/cam")));
    assert!(!a.can_publish(&path("bob")));
    assert!(a.can_subscribe(&path("bob")));
    assert!(!a.cluster());
}

#[test]
fn connect_below_the_root_narrows() {
    let a = grant("room/123", &["alice/**"], &["bob/**"]).authorize(&path("room/123/alice")).unwrap();
    assert_eq!(a.publish(), &set(&["**"]));
    assert!(a.subscribe().is_empty());
    // A literal grant reached exactly is the connect path itself, nothing below.
    let a = grant("room", &["alice"], &[]).authorize(&path("room/alice")).unwrap();
    assert_eq!(a.publish(), &set(&[""]));
    assert!(a.can_publish(&Path::root()));
    assert!(!a.can_publish(&path("cam")));
}

#[test]
fn connect_above_the_root_keeps_it_anchored() {
    let a = grant("demo", &["alice/**"], &["**"]).authorize(&Path::root()).unwrap();
    assert_eq!(a.publish(), &set(&["demo/alice/**"]));
    assert_eq!(a.subscribe(), &set(&["demo/**"]));
    assert!(a.can_subscribe(&path("demo/x")));
    assert!(!a.can_subscribe(&path("other")));
}

#[test]
fn empty_root_grants_what_it_lists_wherever_it_connects() {
    let a = grant("", &[], &["demo/**"]).authorize(&path("demo/room")).unwrap();
    assert_eq!(a.subscribe(), &set(&["**"]));
    assert!(a.publish().is_empty());
}

#[test]
fn refusals() {
    // Segment-aware: `foo` does not cover `foobar`.
    let g = grant("foo", &["**"], &["**"]);
    assert_eq!(g.authorize(&path("foobar")), Err(Denied::RootMismatch { root: path("foo"), path: path("foobar") }));
    assert!(matches!(grant("demo", &["**"], &["**"]).authorize(&path("other")), Err(Denied::RootMismatch { .. })));
    // Overlapping, but every pattern is elsewhere.
    assert_eq!(grant("", &[], &["demo/**"]).authorize(&path("other")), Err(Denied::NoAccess { path: path("other") }));
    // A wildcard in the root cannot be placed below a connect path above it.
    assert!(matches!(grant("a*/b", &["**"], &[]).authorize(&Path::root()), Err(Denied::Pattern(_))));
    // Too deep once placed.
    let deep = ["d"; MAX_SEGMENTS].join("/");
    assert!(matches!(grant(&deep, &["x"], &[]).authorize(&Path::root()), Err(Denied::Pattern(PatternError::TooDeep))));
}

#[test]
fn wildcards_rebase_as_sets() {
    let a = grant("", &[], &["**/chat"]).authorize(&path("chat")).unwrap();
    assert_eq!(a.subscribe(), &set(&["", "**/chat"]));
    let a = grant("", &["*/cam"], &[]).authorize(&path("room")).unwrap();
    assert_eq!(a.publish(), &set(&["cam"]));
}

#[test]
fn cluster_right() {
    // A root grant used at the top is a cluster peer's credential.
    assert!(grant("", &["**"], &["**"]).authorize(&Path::root()).unwrap().cluster());
    // Anything narrower is not.
    assert!(!grant("", &["**"], &["**"]).authorize(&path("demo")).unwrap().cluster());
    assert!(!grant("", &["**"], &["a/**"]).authorize(&Path::root()).unwrap().cluster());
    assert!(!grant("demo", &["**"], &["**"]).authorize(&Path::root()).unwrap().cluster());
    // Unless the credential says so explicitly (scope still applies).
    let mut g = grant("demo", &["**"], &[]);
    g.cluster = true;
    let a = g.authorize(&path("demo")).unwrap();
    assert!(a.cluster());
    assert!(!a.can_subscribe(&path("x")));
    assert!(Access::full(&Path::root()).cluster());
    assert!(!Access::none(&Path::root()).cluster());
    assert!(!Access::full(&Path::root()).with_cluster(false).cluster());
    assert!(Access::none(&Path::root()).with_cluster(true).cluster());
}

#[test]
fn announcements_are_filtered_by_subscribe_rights() {
    let a = grant("room", &["me/**"], &["*/cam", "public/**"]).authorize(&path("room")).unwrap();
    assert_eq!(a.may_see(&path("room/alice/cam")), Some(path("alice/cam")));
    assert_eq!(a.may_see(&path("room/me/cam")), Some(path("me/cam")));
    assert_eq!(a.may_see(&path("room/alice/mic")), None);
    assert_eq!(a.may_see(&path("room/public/x/y")), Some(path("public/x/y")));
    // Outside the connect path.
    assert_eq!(a.may_see(&path("other/public/x")), None);
    assert_eq!(a.may_see(&path("roomy/public/x")), None);
    // Publishing a path does not make it visible.
    assert_eq!(a.may_see(&path("room/me/mic")), None);
    assert!(a.may_watch(&Path::root()));
    assert!(a.may_watch(&path("alice")));
    assert!(a.may_watch(&path("public/x")));
    assert!(a.may_watch(&path("me")));
    assert!(!a.may_watch(&path("me/cam/deeper")));
    assert!(a.may_watch(&path("other")));
    assert!(!a.may_watch(&path("other/x")));
    assert!(a.may_publish_under(&Path::root()));
    assert!(a.may_publish_under(&path("me/deeper")));
    assert!(!a.may_publish_under(&path("alice")));
}

#[test]
fn absolute_and_relative() {
    let a = Access::full(&path("room/1"));
    assert_eq!(a.absolute(&path("cam")), path("room/1/cam"));
    assert_eq!(a.absolute(&Path::root()), path("room/1"));
    assert_eq!(a.relative(&path("room/1/cam")), Some(path("cam")));
    assert_eq!(a.relative(&path("room/1")), Some(Path::root()));
    assert_eq!(a.relative(&path("room/10")), None);
}

#[test]
fn public_access() {
    let public = set(&["anon/**"]);
    let none = Patterns::new();
    let a = Access::public(&public, &public, &Path::root()).unwrap();
    assert_eq!(a.publish(), &set(&["anon/**"]));
    let a = Access::public(&public, &public, &path("anon/room")).unwrap();
    assert_eq!(a.subscribe(), &set(&["**"]));
    assert!(matches!(Access::public(&public, &public, &path("other")), Err(Denied::NoAccess { .. })));
    // Subscribe-only public rules.
    let a = Access::public(&none, &public, &path("anon")).unwrap();
    assert!(a.can_subscribe(&path("x")) && !a.can_publish(&path("x")));
    assert!(!a.cluster());
    // Everything public is an open relay, cluster right included.
    assert!(Access::public(&Patterns::all(), &Patterns::all(), &Path::root()).unwrap().cluster());
}

#[test]
fn combining_with_public_patterns() {
    let token = grant("room", &["alice/**"], &[]).authorize(&Path::root()).unwrap();
    let public = set(&["anon/**"]);
    let both = token.clone().with_public(&Patterns::new(), &public);
    assert!(both.can_subscribe(&path("anon/x")));
    assert!(both.can_publish(&path("room/alice")));
    assert!(!both.can_subscribe(&path("room/alice")));
    // Public rules that reach nothing at the connect path change nothing.
    let at_room = grant("room", &["alice/**"], &[]).authorize(&path("room")).unwrap();
    assert_eq!(at_room.clone().with_public(&public, &public), at_room);
}

#[test]
fn expiry() {
    let mut g = grant("", &["**"], &[]);
    g.expires = Some(1_000);
    let a = g.authorize(&Path::root()).unwrap();
    assert_eq!(a.expires(), Some(1_000));
    assert!(!a.is_expired(999));
    assert!(a.is_expired(1_000));
    assert!(!Access::full(&Path::root()).is_expired(u64::MAX));
}

#[test]
fn legacy_prefixes_are_subtrees() {
    // moq-token's `put`/`get` prefix `p` means exactly `p/**`; scoping agrees with its rules
    // (a prefix covering the connect path grants everything below it).
    let g = grant("rooms/123", &["alice/**"], &["**"]);
    let a = g.authorize(&path("rooms/123/alice/cam")).unwrap();
    assert_eq!(a.publish(), &set(&["**"]));
    assert_eq!(a.subscribe(), &set(&["**"]));
    let a = g.authorize(&path("rooms/123/bob")).unwrap();
    assert!(a.publish().is_empty());
}
