//! Path patterns: the grammar moq-dev's tokens and auth servers use to name sets of broadcast
//! paths, and the set operations access control needs (match, containment, overlap, re-rooting).
//!
//! A pattern is `/`-separated segments, each one of:
//!
//! - a literal (`room`), matching exactly that segment;
//! - `*`, matching any one segment;
//! - `pre*suf` (one `*` inside a segment, `pre` or `suf` may be empty but not both), matching one
//!   segment that starts with `pre` and ends with `suf` without the two overlapping;
//! - `**`, matching any run of zero or more segments; at most one per pattern.
//!
//! Patterns are exact: `foo` is the one broadcast `foo`; `foo/**` is `foo` and everything below
//! it; `**` is everything; the empty pattern is only the root itself. A pattern has at most
//! [`MAX_SEGMENTS`] segments. Parsing is strict (no leading, trailing or doubled `/`) so that a
//! typo cannot widen a grant. `*` next to `**` commutes with it, so `*/**` is stored as `**/*`:
//! two patterns are equal exactly when their canonical texts are.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::path::Path;

use super::Patterns;

/// The most segments a pattern (and so a path it can name) may have; the wire's path depth limit.
pub const MAX_SEGMENTS: usize = 32;

/// Why a text or a list of segments is not a valid [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A leading, trailing or doubled `/`, or an empty literal.
    #[error("empty path segment")]
    EmptySegment,
    /// A segment with more than one `*`, a literal or partial containing `/` or `*`, or a
    /// literal path segment that holds a `*`.
    #[error("invalid pattern segment {0:?}")]
    BadSegment(String),
    /// More than one `**`.
    #[error("more than one ** in a pattern")]
    TwoGlobstars,
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("more than {MAX_SEGMENTS} segments")]
    TooDeep,
}

/// One segment of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Exactly this segment (never empty, never contains `/` or `*`).
    Literal(String),
    /// `*`: any one segment.
    Any,
    /// `prefix*suffix`: one segment starting with `prefix` and ending with `suffix`.
    Partial {
        /// What the segment starts with (may be empty).
        prefix: String,
        /// What the segment ends with (may be empty, not together with `prefix`).
        suffix: String,
    },
    /// `**`: any run of zero or more segments.
    Globstar,
}

impl Segment {
    fn parse(text: &str) -> Result<Segment, PatternError> {
        match text {
            "" => Err(PatternError::EmptySegment),
            "*" => Ok(Segment::Any),
            "**" => Ok(Segment::Globstar),
            _ => match text.split_once('*') {
                None => Ok(Segment::Literal(text.to_string())),
                Some((prefix, suffix)) if !suffix.contains('*') => {
                    Ok(Segment::Partial { prefix: prefix.to_string(), suffix: suffix.to_string() })
                }
                Some(_) => Err(PatternError::BadSegment(text.to_string())),
            },
        }
    }

    /// Whether this (non-`**`) segment matches the path segment `part`.
    fn matches(&self, part: &str) -> bool {
        match self {
            Segment::Literal(l) => l == part,
            Segment::Any => true,
            Segment::Partial { prefix, suffix } => {
                part.len() >= prefix.len() + suffix.len()
                    && part.starts_with(prefix.as_str())
                    && part.ends_with(suffix.as_str())
            }
            Segment::Globstar => false,
        }
    }

    /// Whether every segment `other` matches, this one matches too (neither is `**`).
    fn covers(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Any, Segment::Literal(_) | Segment::Partial { .. } | Segment::Any) => true,
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Partial { .. }, Segment::Literal(l)) => self.matches(l),
            (Segment::Partial { prefix, suffix }, Segment::Partial { prefix: p2, suffix: s2 }) => {
                p2.starts_with(prefix.as_str()) && s2.ends_with(suffix.as_str())
            }
            _ => false,
        }
    }

    /// Whether some path segment matches both (neither is `**`).
    fn meets(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Partial { prefix: p1, suffix: s1 }, Segment::Partial { prefix: p2, suffix: s2 }) => {
                (p1.starts_with(p2.as_str()) || p2.starts_with(p1.as_str()))
                    && (s1.ends_with(s2.as_str()) || s2.ends_with(s1.as_str()))
            }
            _ => self.covers(other) || other.covers(self),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Segment::Literal(l) => out.push_str(l),
            Segment::Any => out.push('*'),
            Segment::Partial { prefix, suffix } => {
                out.push_str(prefix);
                out.push('*');
                out.push_str(suffix);
            }
            Segment::Globstar => out.push_str("**"),
        }
    }
}

/// A set of broadcast paths, named by the grammar in the module docs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
    /// Index of the `**` segment, if any.
    globstar: Option<usize>,
}

impl Pattern {
    /// Builds a pattern from segments: validates them and moves `**` before adjacent `*`.
    pub fn new(segments: impl IntoIterator<Item = Segment>) -> Result<Pattern, PatternError> {
        let mut segments: Vec<Segment> = segments.into_iter().collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(PatternError::TooDeep);
        }
        let mut globstar = None;
        for (i, s) in segments.iter().enumerate() {
            match s {
                Segment::Literal(l) if l.is_empty() => return Err(PatternError::EmptySegment),
                Segment::Literal(l) if l.contains(['*', '/']) => return Err(PatternError::BadSegment(l.clone())),
                Segment::Partial { prefix, suffix }
                    if (prefix.is_empty() && suffix.is_empty())
                        || prefix.contains(['*', '/'])
                        || suffix.contains(['*', '/']) =>
                {
                    return Err(PatternError::BadSegment(format!("{prefix}*{suffix}")));
                }
                Segment::Globstar if globstar.is_some() => return Err(PatternError::TwoGlobstars),
                Segment::Globstar => globstar = Some(i),
                _ => {}
            }
        }
        if let Some(mut at) = globstar {
            while at > 0 && segments[at - 1] == Segment::Any {
                segments.swap(at - 1, at);
                at -= 1;
            }
            globstar = Some(at);
        }
        let mut text = String::new();
        for (i, s) in segments.iter().enumerate() {
            if i > 0 {
                text.push('/');
            }
            s.write(&mut text);
        }
        Ok(Pattern { text, segments, globstar })
    }

    /// `**`: every path.
    pub fn all() -> Pattern {
        Pattern { text: "**".to_string(), segments: vec![Segment::Globstar], globstar: Some(0) }
    }

    /// The pattern naming exactly `path`. Fails when a segment holds a `*` (a path is never read
    /// as a pattern) or the path is deeper than [`MAX_SEGMENTS`].
    pub fn exact(path: &Path) -> Result<Pattern, PatternError> {
        Pattern::new(literals(path))
    }

    /// `path/**`: the path and everything below it (`**` for the root). A path of
    /// [`MAX_SEGMENTS`] segments has nothing below it and yields the exact pattern.
    pub fn subtree(path: &Path) -> Result<Pattern, PatternError> {
        let mut segments: Vec<Segment> = literals(path).collect();
        if segments.len() < MAX_SEGMENTS {
            segments.push(Segment::Globstar);
        }
        Pattern::new(segments)
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the pattern is `**`, matching every path.
    pub fn is_all(&self) -> bool {
        self.segments.len() == 1 && self.globstar == Some(0)
    }

    /// Whether the pattern has no wildcard, so it names exactly one path.
    pub fn is_exact(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The prefix this pattern covers if it is `literal/…/**` (or `**`, the empty prefix): the
    /// shape of moq-token's `put`/`get` entries. `None` for any other shape.
    pub fn as_prefix(&self) -> Option<&str> {
        match self.segments.split_last() {
            Some((Segment::Globstar, head)) if head.iter().all(|s| matches!(s, Segment::Literal(_))) => {
                Some(self.text.strip_suffix("**").unwrap_or("").trim_end_matches('/'))
            }
            _ => None,
        }
    }

    /// The segments before and after the `**` (all of them and none without one).
    fn split(&self) -> (&[Segment], &[Segment]) {
        match self.globstar {
            Some(i) => (&self.segments[..i], &self.segments[i + 1..]),
            None => (&self.segments, &[]),
        }
    }

    /// Whether `path` is in this set. Allocation-free.
    pub fn matches(&self, path: &Path) -> bool {
        // A normal path has no empty segments, so splitting its text yields exactly its segments
        // (the root has none and is never split below).
        let text = path.as_str();
        let (head, tail) = self.split();
        let depth = path.depth();
        let fits = match self.globstar {
            None => depth == head.len(),
            Some(_) => depth >= head.len() + tail.len(),
        };
        fits && (depth == 0
            || (head.iter().zip(text.split('/')).all(|(s, p)| s.matches(p))
                && tail.iter().rev().zip(text.rsplit('/')).all(|(s, p)| s.matches(p))))
    }

    /// Whether every path `other` matches, this pattern matches too (a grant containing a request).
    pub fn contains(&self, other: &Pattern) -> bool {
        let (head, tail) = self.split();
        match (self.globstar, other.globstar) {
            (None, None) => {
                self.segments.len() == other.segments.len()
                    && self.segments.iter().zip(&other.segments).all(|(a, b)| a.covers(b))
            }
            // A fixed length never contains a set of many lengths.
            (None, Some(_)) => false,
            (Some(_), None) => {
                let o = &other.segments;
                o.len() >= head.len() + tail.len()
                    && head.iter().zip(o).all(|(a, b)| a.covers(b))
                    && tail.iter().rev().zip(o.iter().rev()).all(|(a, b)| a.covers(b))
            }
            (Some(_), Some(_)) => {
                // The other's `**` can be any length, so each of our segments that lines up with
                // it (past the other's head or tail) must be `*`; and the other's shortest path
                // must still be long enough for us.
                let (o_head, o_tail) = other.split();
                head.len() + tail.len() < other.segments.len()
                    && covers_run(head.iter(), o_head.iter())
                    && covers_run(tail.iter().rev(), o_tail.iter().rev())
            }
        }
    }

    /// Whether some path matches both patterns.
    pub fn overlaps(&self, other: &Pattern) -> bool {
        let front = |a: &[Segment], b: &[Segment]| a.iter().zip(b).all(|(x, y)| x.meets(y));
        let back = |a: &[Segment], b: &[Segment]| a.iter().rev().zip(b.iter().rev()).all(|(x, y)| x.meets(y));
        match (self.globstar, other.globstar) {
            (None, None) => self.segments.len() == other.segments.len() && front(&self.segments, &other.segments),
            (None, Some(_)) => other.overlaps(self),
            (Some(_), None) => {
                let (head, tail) = self.split();
                other.segments.len() >= head.len() + tail.len()
                    && front(head, &other.segments)
                    && back(tail, &other.segments)
            }
            (Some(_), Some(_)) => {
                // A long enough path keeps the heads and the tails apart.
                let (head, tail) = self.split();
                let (o_head, o_tail) = other.split();
                front(head, o_head) && back(tail, o_tail)
            }
        }
    }

    /// The patterns that, named from below `root`, match exactly the paths this one matches at or
    /// below `root`. A set, because a `**` may end inside the root or run past it: `**/a` seen
    /// from `a` is both the empty pattern (`a` itself) and `**/a` (deeper paths ending in `a`).
    /// Empty when nothing at or below `root` matches.
    pub fn rebase(&self, root: &Path) -> Patterns {
        let root: Vec<&str> = root.segments().collect();
        let mut out = Patterns::new();
        let run = |segs: &[Segment], parts: &[&str]| segs.iter().zip(parts).all(|(s, p)| s.matches(p));
        // A suffix of a valid pattern is valid, so these constructions cannot fail.
        let mut add = |segs: &[Segment]| {
            if let Ok(p) = Pattern::new(segs.to_vec()) {
                out.insert(p);
            }
        };
        let (head, tail) = self.split();
        match self.globstar {
            None => {
                if root.len() <= self.segments.len() && run(&self.segments, &root) {
                    add(&self.segments[root.len()..]);
                }
            }
            Some(at) => {
                if root.len() <= head.len() {
                    if run(head, &root) {
                        add(&self.segments[root.len()..]);
                    }
                } else if run(head, &root) {
                    // The root reaches into the `**`: either it swallows the rest of the root and
                    // stays open, or it closed inside the root and the first `n` tail segments
                    // already matched the root's last `n` segments.
                    let rest = &root[head.len()..];
                    add(&self.segments[at..]);
                    for n in 1..=tail.len().min(rest.len()) {
                        if run(&tail[..n], &rest[rest.len() - n..]) {
                            add(&tail[n..]);
                        }
                    }
                }
            }
        }
        out
    }

    /// This pattern placed below the literal path `root`: the same paths, named from the root's
    /// parent. Fails when `root` holds a `*` or the result is too deep.
    pub fn rooted(&self, root: &Path) -> Result<Pattern, PatternError> {
        Pattern::new(literals(root).chain(self.segments.iter().cloned()))
    }
}

/// Whether each of `ours` covers the segment of `theirs` at the same position, where `theirs` is
/// the fixed run beside a `**`: a segment of ours past its end lines up with that `**`, so only `*`
/// covers it.
fn covers_run<'a>(ours: impl Iterator<Item = &'a Segment>, mut theirs: impl Iterator<Item = &'a Segment>) -> bool {
    ours.into_iter().all(|a| match theirs.next() {
        Some(b) => a.covers(b),
        None => *a == Segment::Any,
    })
}

/// The segments of a normalised path, as literals (validated by [`Pattern::new`]).
fn literals(path: &Path) -> impl Iterator<Item = Segment> + '_ {
    path.segments().map(|s| Segment::Literal(s.to_string()))
}

impl FromStr for Pattern {
    type Err = PatternError;

    /// Parses canonical text strictly: `""` is the empty pattern, and no `/` may lead, trail or
    /// repeat.
    fn from_str(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Pattern::new([]);
        }
        text.split('/').map(Segment::parse).collect::<Result<Vec<_>, _>>().and_then(Pattern::new)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.text)
    }
}

impl PartialOrd for Pattern {
    fn partial_cmp(&self, other: &Pattern) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pattern {
    /// By canonical text, so a sorted set is deterministic.
    fn cmp(&self, other: &Pattern) -> Ordering {
        self.text.cmp(&other.text)
    }
}

#[cfg(test)]
#[path = "pattern_tests.rs"]
mod tests;
