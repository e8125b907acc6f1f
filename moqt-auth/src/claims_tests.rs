use super::*;

fn set(texts: &[&str]) -> Patterns {
    texts.iter().map(|t| t.parse::<Pattern>().unwrap()).collect()
}

fn read(json: &str) -> Result<Claims, Refusal> {
    Claims::from_json(json.as_bytes(), UnknownClaims::Refuse)
}

#[test]
fn prefix_form_reads_as_subtrees() {
    let c = read(r#"{"root":"room","put":["alice"],"get":[""]}"#).unwrap();
    assert_eq!(c.root, "room");
    assert_eq!(c.publish, set(&["alice/**"]));
    assert_eq!(c.subscribe, set(&["**"]));
    // A bare string is one prefix; slashes are normalised.
    let c = read(r#"{"put":"/a//b/","get":["x","x/y"]}"#).unwrap();
    assert_eq!(c.publish, set(&["a/b/**"]));
    assert_eq!(c.subscribe, set(&["x/**"]));
    // An empty list grants nothing in that role.
    let c = read(r#"{"put":[],"get":[""]}"#).unwrap();
    assert!(c.publish.is_empty());
}

#[test]
fn pattern_form_reads_patterns_exactly() {
    let c = read(r#"{"root":"room","publish":["alice"],"subscribe":["*/cam","**"]}"#).unwrap();
    assert_eq!(c.publish, set(&["alice"]));
    assert_eq!(c.subscribe, set(&["**"]));
    let c = read(r#"{"subscribe":["a/**/b",""]}"#).unwrap();
    assert_eq!(c.subscribe, set(&["", "a/**/b"]));
}

#[test]
fn times_and_registered_claims() {
    let c =
        read(r#"{"put":"a","exp":4102444800,"iat":1700000000,"nbf":1600000000,"iss":"me","sub":"x","jti":1}"#).unwrap();
    assert_eq!((c.expires, c.issued, c.not_before), (Some(4102444800), Some(1700000000), Some(1600000000)));
    let c = read(r#"{"put":"a","exp":null,"nbf":null,"iat":null}"#).unwrap();
    assert_eq!((c.expires, c.issued, c.not_before), (None, None, None));
    let c = read(r#"{"put":"a","exp":-5}"#).unwrap();
    assert_eq!(c.expires, Some(-5));
}

#[test]
fn cluster_claim() {
    assert!(read(r#"{"put":[""],"get":[""],"cluster":true}"#).unwrap().cluster);
    assert!(!read(r#"{"put":[""],"cluster":false}"#).unwrap().cluster);
    assert!(matches!(read(r#"{"put":[""],"cluster":1}"#), Err(Refusal::InvalidClaims(_))));
    assert!(matches!(read(r#"{"put":[""],"cluster":null}"#), Err(Refusal::InvalidClaims(_))));
}

#[test]
fn refusals() {
    let invalid = [
        r#"{"root":"t","publish":["a"],"get":["b"]}"#,
        r#"{"root":"t","put":[],"subscribe":["b"]}"#,
        r#"{"put":null,"publish":["a"]}"#,
        r#"{"publish":null}"#,
        r#"{"get":null}"#,
        r#"{"publish":"a"}"#,
        r#"{"put":[1]}"#,
        r#"{"put":{"a":1}}"#,
        r#"{"put":["a/*"]}"#,
        r#"{"publish":["a/**/b/**"]}"#,
        r#"{"publish":["/a"]}"#,
        r#"{"root":null,"put":"a"}"#,
        r#"{"root":5,"put":"a"}"#,
        r#"{"put":"a","exp":1.5}"#,
        r#"{"put":"a","exp":"1"}"#,
        r#"{"put":"a","nbf":true}"#,
        r#"{"put":"a","root":"x","root":"y"}"#,
        r#"["put"]"#,
        r#"{"put":"a"} trailing"#,
        "not json",
    ];
    for json in invalid {
        assert!(matches!(read(json), Err(Refusal::InvalidClaims(_))), "{json}: {:?}", read(json));
    }
    assert_eq!(read(r#"{"put":"a","aud":"relay"}"#), Err(Refusal::Audience));
    assert_eq!(read(r#"{"put":"a","foo":1}"#), Err(Refusal::UnknownClaim("foo".into())));
    // Ignoring unknown claims (moq-token's way) still refuses an audience.
    let lenient = |json: &str| Claims::from_json(json.as_bytes(), UnknownClaims::Ignore);
    assert_eq!(lenient(r#"{"put":"a","foo":{"x":1}}"#).unwrap().publish, set(&["a/**"]));
    assert_eq!(lenient(r#"{"put":"a","aud":"relay"}"#), Err(Refusal::Audience));
    let many = format!(r#"{{"put":[{}]}}"#, vec!["\"a\""; MAX_PATTERNS + 1].join(","));
    assert!(matches!(read(&many), Err(Refusal::InvalidClaims(_))));
}

#[test]
fn writing_chooses_the_form() {
    let mut c = Claims { root: "live".into(), publish: set(&["cam/**"]), subscribe: set(&["**"]), ..Claims::default() };
    c.expires = Some(4102444800);
    c.issued = Some(1700000000);
    assert_eq!(c.to_json(), r#"{"root":"live","put":["cam"],"get":[""],"exp":4102444800,"iat":1700000000}"#);
    let c = Claims { publish: set(&["cam"]), subscribe: set(&["*/chat"]), cluster: true, ..Claims::default() };
    assert_eq!(c.to_json(), r#"{"publish":["cam"],"subscribe":["*/chat"],"cluster":true}"#);
    // Round trip in both forms.
    for json in [r#"{"root":"r","put":["a"],"nbf":5}"#, r#"{"publish":["a"],"subscribe":["b/*"]}"#] {
        let c = read(json).unwrap();
        assert_eq!(c.to_json(), json);
        assert_eq!(read(&c.to_json()).unwrap(), c);
    }
}

#[test]
fn grant_adds_the_leeway_to_the_expiry() {
    let c = read(r#"{"root":"r","put":"a","exp":100}"#).unwrap();
    let g = c.grant(30);
    assert_eq!(g.expires, Some(130));
    assert_eq!(g.root, Path::new("r"));
    assert_eq!(read(r#"{"put":"a","exp":-100}"#).unwrap().grant(30).expires, Some(0));
    assert_eq!(read(r#"{"put":"a"}"#).unwrap().grant(30).expires, None);
    assert!(read(r#"{"put":[]}"#).unwrap().is_useless());
}

#[test]
fn scopes() {
    let scope = Scope::from_value(&serde_json::json!({"root":"project","put":["live"],"get":["watch"]})).unwrap();
    let allows = |json: &str| scope.allows(&read(json).unwrap());
    assert!(allows(r#"{"root":"project/live/room","put":[""]}"#));
    assert!(allows(r#"{"root":"project","put":["live/x"],"get":["watch"]}"#));
    assert!(allows(r#"{"put":["project/live/x"]}"#));
    assert!(allows(r#"{"root":"/project/live/","publish":["room/*"]}"#));
    assert!(!allows(r#"{"root":"project/lively","put":[""]}"#));
    assert!(!allows(r#"{"root":"project/live","get":[""]}"#));
    assert!(!allows(r#"{"put":[""]}"#));
    assert!(!allows(r#"{"root":"project","put":["live/room","other"]}"#));
    let exact = Scope::from_value(&serde_json::json!({"root":"p","publish":["live"]})).unwrap();
    assert!(exact.allows(&read(r#"{"root":"p","publish":["live"]}"#).unwrap()));
    assert!(!exact.allows(&read(r#"{"root":"p","publish":["live/**"]}"#).unwrap()));
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"root":"p"}),
        serde_json::json!({"put":"a"}),
        serde_json::json!({"put":null,"publish":["a"]}),
        serde_json::json!({"put":["a"],"publish":["b"]}),
        serde_json::json!({"put":["a"],"extra":1}),
        serde_json::json!(["a"]),
    ] {
        assert!(Scope::from_value(&bad).is_err(), "{bad}");
    }
    assert_eq!(scope.to_value(), serde_json::json!({"root":"project","put":["live"],"get":["watch"]}));
}
