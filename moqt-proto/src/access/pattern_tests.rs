use super::*;

fn p(text: &str) -> Pattern {
    text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn path(text: &str) -> Path {
    Path::new(text)
}

fn set(texts: &[&str]) -> Patterns {
    texts.iter().map(|t| p(t)).collect()
}

#[test]
fn parse_and_print_are_canonical() {
    for text in ["", "a", "a/b", "*", "**", "a/*/b", "**/x.hang", "a/**/b/*", "**/*", "foo*", "*bar", "f*r", "a b/ü"] {
        assert_eq!(p(text).to_string(), text);
    }
    // `*` next to `**` moves behind it.
    assert_eq!(p("a/*/**/b").as_str(), "a/**/*/b");
    assert_eq!(p("*/*/**").as_str(), "**/*/*");
    assert_eq!(p("a/*/**/b").segments()[1], Segment::Globstar);
    assert_eq!(p("x*y").segments(), &[Segment::Partial { prefix: "x".into(), suffix: "y".into() }]);
}

#[test]
fn parse_refuses_bad_text() {
    assert_eq!("/a".parse::<Pattern>(), Err(PatternError::EmptySegment));
    assert_eq!("a/".parse::<Pattern>(), Err(PatternError::EmptySegment));
    assert_eq!("a//b".parse::<Pattern>(), Err(PatternError::EmptySegment));
    assert_eq!("/".parse::<Pattern>(), Err(PatternError::EmptySegment));
    assert_eq!("**/**".parse::<Pattern>(), Err(PatternError::TwoGlobstars));
    assert_eq!("a/**/b/**".parse::<Pattern>(), Err(PatternError::TwoGlobstars));
    assert_eq!("***".parse::<Pattern>(), Err(PatternError::BadSegment("***".into())));
    assert_eq!("a*b*c".parse::<Pattern>(), Err(PatternError::BadSegment("a*b*c".into())));
    let deep = ["a"; MAX_SEGMENTS + 1].join("/");
    assert_eq!(deep.parse::<Pattern>(), Err(PatternError::TooDeep));
    assert!(["a"; MAX_SEGMENTS].join("/").parse::<Pattern>().is_ok());
    assert_eq!(
        Pattern::new([Segment::Partial { prefix: String::new(), suffix: String::new() }]),
        Err(PatternError::BadSegment("*".into()))
    );
    assert_eq!(Pattern::new([Segment::Literal("a/b".into())]), Err(PatternError::BadSegment("a/b".into())));
    assert_eq!(Pattern::new([Segment::Literal(String::new())]), Err(PatternError::EmptySegment));
}

#[test]
fn exact_and_subtree_come_from_paths() {
    assert_eq!(Pattern::exact(&path("/foo//bar/")).unwrap(), p("foo/bar"));
    assert_eq!(Pattern::exact(&Path::root()).unwrap(), p(""));
    assert_eq!(Pattern::subtree(&path("foo")).unwrap(), p("foo/**"));
    assert_eq!(Pattern::subtree(&Path::root()).unwrap(), Pattern::all());
    // A path is never read as a pattern.
    assert!(Pattern::exact(&path("a/*")).is_err());
    assert!(Pattern::subtree(&path("a*b")).is_err());
    // At the depth limit nothing is below, so the subtree is the path itself.
    let deepest = path(&["a"; MAX_SEGMENTS].join("/"));
    assert_eq!(Pattern::subtree(&deepest).unwrap(), Pattern::exact(&deepest).unwrap());
}

#[test]
fn prefix_shape() {
    assert_eq!(p("**").as_prefix(), Some(""));
    assert_eq!(p("a/b/**").as_prefix(), Some("a/b"));
    assert_eq!(p("a/b").as_prefix(), None);
    assert_eq!(p("a/*/**").as_prefix(), None);
    assert_eq!(p("**/a").as_prefix(), None);
    assert_eq!(p("").as_prefix(), None);
    assert!(p("**").is_all() && !p("a/**").is_all());
    assert!(p("a/b").is_exact() && p("").is_exact() && !p("a*").is_exact());
}

#[test]
fn matching_is_exact_and_by_segment() {
    let cases: &[(&str, &str, bool)] = &[
        ("foo", "foo", true),
        ("foo", "foo/bar", false),
        ("foo", "foobar", false),
        ("foo/**", "foo", true),
        ("foo/**", "foo/bar/baz", true),
        ("foo/**", "foobar", false),
        ("**", "", true),
        ("**", "x/y", true),
        ("", "", true),
        ("", "x", false),
        ("*", "x", true),
        ("*", "", false),
        ("*", "x/y", false),
        ("*/chat", "room/chat", true),
        ("*/chat", "chat", false),
        ("**/chat", "chat", true),
        ("**/chat", "a/b/chat", true),
        ("**/chat", "a/chatter", false),
        ("a/**/z", "a/z", true),
        ("a/**/z", "a/b/c/z", true),
        ("a/**/z", "z", false),
        ("cam*", "camera", true),
        ("cam*", "cam", true),
        ("cam*", "ca", false),
        ("*.hang", "x.hang", true),
        ("*.hang", ".hang", true),
        ("*.hang", "x.han", false),
        ("ab*ba", "aba", false),
        ("ab*ba", "abba", true),
        ("ab*ba", "abxba", true),
    ];
    for &(pat, candidate, want) in cases {
        assert_eq!(p(pat).matches(&path(candidate)), want, "{pat} ~ {candidate}");
    }
    // Paths are normalised before matching.
    assert!(p("foo/bar").matches(&path("/foo//bar/")));
}

#[test]
fn containment_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "anything/**", true),
        ("**", "", true),
        ("a/**", "a", true),
        ("a/**", "a/b/**", true),
        ("a/**", "ab/**", false),
        ("a", "a/**", false),
        ("a/*", "a/b", true),
        ("a/*", "a/b*", true),
        ("a/*", "a/**", false),
        ("a*", "ab*", true),
        ("a*", "b*", false),
        ("*b", "a*b", true),
        ("a*", "*", false),
        ("**/x", "a/b/x", true),
        ("**/x", "a/**/x", true),
        ("**/x", "**/y/x", true),
        ("**/*", "a/**", true),
        ("**/*", "**", false),
        ("a/*/**", "a/**/b", true),
        ("a/b/**", "a/**", false),
        ("", "", true),
        ("", "**", false),
    ];
    for &(a, b, want) in cases {
        assert_eq!(p(a).contains(&p(b)), want, "{a} ⊇ {b}");
    }
}

#[test]
fn overlap_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("a/**", "**/b", true),
        ("a", "b", false),
        ("a*", "*b", true),
        ("a*b", "*a", false),
        ("x/**", "y/**", false),
        ("**", "", true),
        ("*", "", false),
        ("a/*/c", "a/b/*", true),
        ("a/**/c", "b/**", false),
    ];
    for &(a, b, want) in cases {
        assert_eq!(p(a).overlaps(&p(b)), want, "{a} ∩ {b}");
        assert_eq!(p(b).overlaps(&p(a)), want, "{b} ∩ {a}");
    }
}

#[test]
fn rebase_table() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("room/alice/**", "room", &["alice/**"]),
        ("room/alice/**", "room/alice", &["**"]),
        ("room/alice/**", "room/alice/cam", &["**"]),
        ("room/alice/**", "room/bob", &[]),
        ("room/alice", "room/alice", &[""]),
        ("room/alice", "room/alice/cam", &[]),
        ("**", "anything/deep", &["**"]),
        ("**/chat", "chat", &["", "**/chat"]),
        ("**/a/b", "x/a", &["b", "**/a/b"]),
        ("*/chat", "room", &["chat"]),
        ("a*/x", "abc", &["x"]),
        ("a*/x", "b", &[]),
        ("", "", &[""]),
        ("", "x", &[]),
    ];
    for &(pat, root, want) in cases {
        assert_eq!(p(pat).rebase(&path(root)), set(want), "{pat} at {root}");
    }
}

#[test]
fn rooted_places_below_and_refuses_wildcard_roots() {
    assert_eq!(p("alice/**").rooted(&path("demo/room")).unwrap(), p("demo/room/alice/**"));
    assert_eq!(p("**").rooted(&Path::root()).unwrap(), p("**"));
    assert!(p("x").rooted(&path("a*")).is_err());
    let deep = path(&["a"; MAX_SEGMENTS].join("/"));
    assert_eq!(p("x").rooted(&deep), Err(PatternError::TooDeep));
}

#[test]
fn union_reduces_by_containment() {
    let u = set(&["a/b", "a/**", "c", "a/b/**"]);
    assert_eq!(u.iter().map(Pattern::as_str).collect::<Vec<_>>(), ["a/**", "c"]);
    let mut v = Patterns::new();
    assert!(v.insert(p("x/y")));
    assert!(!v.insert(p("x/y")));
    assert!(v.insert(p("x/**")));
    assert_eq!(v, set(&["x/**"]));
    assert!(u.covers(&set(&["a/q/r", "c"])));
    assert!(!u.covers(&set(&["c/**"])));
    assert!(set(&["**"]).is_all() && !set(&["a/**"]).is_all());
}

// --- exhaustive checks against brute force over a small universe --------------------------------

const TOKENS: [&str; 7] = ["a", "ab", "*", "a*", "*b", "a*b", "**"];
const PARTS: [&str; 6] = ["a", "b", "ab", "ba", "aa", "abb"];

fn patterns_up_to(len: usize) -> Vec<Pattern> {
    let mut out = vec![p("")];
    let mut frontier: Vec<Vec<&str>> = vec![vec![]];
    for _ in 0..len {
        let mut next = Vec::new();
        for prefix in &frontier {
            for t in TOKENS {
                let mut v = prefix.clone();
                v.push(t);
                if let Ok(pat) = v.join("/").parse::<Pattern>() {
                    out.push(pat);
                }
                next.push(v);
            }
        }
        frontier = next;
    }
    out.sort();
    out.dedup();
    out
}

fn paths_up_to(depth: usize) -> Vec<Path> {
    let mut out: Vec<Vec<&str>> = vec![vec![]];
    let mut frontier: Vec<Vec<&str>> = vec![vec![]];
    for _ in 0..depth {
        let mut next = Vec::new();
        for prefix in &frontier {
            for part in PARTS {
                let mut v = prefix.clone();
                v.push(part);
                next.push(v);
            }
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    out.iter().map(|parts| Path::new(&parts.join("/"))).collect()
}

fn bitset(pat: &Pattern, paths: &[Path]) -> Vec<u64> {
    let mut bits = vec![0u64; paths.len().div_ceil(64)];
    for (i, q) in paths.iter().enumerate() {
        if pat.matches(q) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}

#[test]
fn containment_is_sound_and_overlap_exact() {
    let pats = patterns_up_to(3);
    let paths = paths_up_to(4);
    let bits: Vec<Vec<u64>> = pats.iter().map(|pat| bitset(pat, &paths)).collect();
    let mut contained = 0;
    for (i, a) in pats.iter().enumerate() {
        for (j, b) in pats.iter().enumerate() {
            let subset = bits[j].iter().zip(&bits[i]).all(|(&in_b, &in_a)| in_b & !in_a == 0);
            let meet = bits[i].iter().zip(&bits[j]).any(|(&x, &y)| x & y != 0);
            if a.contains(b) {
                assert!(subset, "{a} claims to contain {b}");
                contained += 1;
            }
            assert_eq!(a.overlaps(b), meet, "{a} overlaps {b}");
        }
    }
    // Sanity: the check above saw both answers many times.
    assert!(contained > pats.len(), "only {contained} containments among {} patterns", pats.len());
}

#[test]
fn rebase_and_rooted_preserve_the_matched_paths() {
    let pats = patterns_up_to(3);
    let paths = paths_up_to(2);
    let roots = paths_up_to(2);
    for pat in &pats {
        for root in &roots {
            let rebased = pat.rebase(root);
            let rooted = pat.rooted(root).unwrap();
            for q in &paths {
                let full = root.join(q.as_str());
                assert_eq!(pat.matches(&full), rebased.matches(q), "{pat} at {root}: {q}");
                assert_eq!(rooted.matches(&full), pat.matches(q), "{pat} below {root}: {q}");
                if rooted.matches(q) {
                    assert!(q.has_prefix(root), "{rooted} escapes {root}: {q}");
                }
            }
        }
    }
}
