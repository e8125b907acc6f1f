//! Broadcast paths: normalisation, segment-aware prefix matching and suffix joining, and the two
//! wire spellings (moq-net's relative paths and gomoqt's absolute ones).
//!
//! A [`Path`] is always held in normal form: no leading or trailing `/`, no empty segments. The
//! root is the empty path. Input in either spelling normalises to the same value, so `"/live/cam/"`
//! and `"live/cam"` are equal.

use std::fmt;

use crate::coding::{DecodeError, Limits};
use crate::version::Dialect;

/// A normalised broadcast path or prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(String);

impl Path {
    /// The root path (matches everything as a prefix).
    pub const fn root() -> Path {
        Path(String::new())
    }

    /// Normalises `s`: trims `/` at both ends and collapses runs of `/`.
    pub fn new(s: &str) -> Path {
        if is_normal(s) {
            return Path(s.to_string());
        }
        let mut out = String::with_capacity(s.len());
        for seg in s.split('/').filter(|seg| !seg.is_empty()) {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(seg);
        }
        Path(out)
    }

    /// Normalises a path read from the wire and checks it against the limits (length applies to
    /// the normalised form; the caller bounds the raw bytes before they are read).
    pub fn decode(s: &str, limits: &Limits) -> Result<Path, DecodeError> {
        let path = Path::new(s);
        if path.0.len() > limits.max_path_len {
            return Err(DecodeError::PathTooLong(path.0.len()));
        }
        if path.depth() > limits.max_path_depth {
            return Err(DecodeError::PathTooDeep);
        }
        Ok(path)
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of segments (0 for the root).
    pub fn depth(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            self.0.bytes().filter(|&b| b == b'/').count() + 1
        }
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// Whether `prefix` matches this path segment by segment: `foo` matches `foo` and `foo/bar`,
    /// not `foobar`. The root matches everything.
    pub fn has_prefix(&self, prefix: &Path) -> bool {
        self.strip_prefix(prefix).is_some()
    }

    /// The part of this path after `prefix` (no leading `/`), if `prefix` matches.
    pub fn strip_prefix(&self, prefix: &Path) -> Option<&str> {
        if prefix.is_root() {
            return Some(&self.0);
        }
        let rest = self.0.strip_prefix(prefix.as_str())?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix('/')
        }
    }

    /// Joins a suffix below this prefix: `room` + `alice` = `room/alice`.
    pub fn join(&self, suffix: &str) -> Path {
        let suffix = Path::new(suffix);
        match (self.is_root(), suffix.is_root()) {
            (true, _) => suffix,
            (false, true) => self.clone(),
            (false, false) => Path(format!("{}/{}", self.0, suffix.0)),
        }
    }

    /// Writes this path as a full broadcast path in the given dialect.
    pub fn wire_path(&self, dialect: Dialect) -> WirePath<'_> {
        WirePath { path: self, dialect, prefix: false }
    }

    /// Writes this path as an announce prefix in the given dialect.
    pub fn wire_prefix(&self, dialect: Dialect) -> WirePath<'_> {
        WirePath { path: self, dialect, prefix: true }
    }
}

fn is_normal(s: &str) -> bool {
    !s.starts_with('/') && !s.ends_with('/') && !s.contains("//")
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Path {
    fn from(s: &str) -> Self {
        Path::new(s)
    }
}

impl From<String> for Path {
    fn from(s: String) -> Self {
        if is_normal(&s) {
            Path(s)
        } else {
            Path::new(&s)
        }
    }
}

impl AsRef<str> for Path {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A path as it is spelled on the wire in one dialect.
///
/// Draft: `live/cam`, prefix `live` (root `""`). gomoqt: `/live/cam`, prefix `/live/` (root `/`).
#[derive(Debug, Clone, Copy)]
pub struct WirePath<'a> {
    path: &'a Path,
    dialect: Dialect,
    prefix: bool,
}

impl WirePath<'_> {
    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        match self.dialect {
            Dialect::Draft => self.path.0.len(),
            Dialect::Gomoqt if self.path.is_root() => 1,
            Dialect::Gomoqt => self.path.0.len() + 1 + usize::from(self.prefix),
        }
    }

    /// Whether the encoding is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the bytes.
    pub fn write_to(&self, buf: &mut bytes::BytesMut) {
        match self.dialect {
            Dialect::Draft => buf.extend_from_slice(self.path.0.as_bytes()),
            Dialect::Gomoqt => {
                buf.extend_from_slice(b"/");
                if !self.path.is_root() {
                    buf.extend_from_slice(self.path.0.as_bytes());
                    if self.prefix {
                        buf.extend_from_slice(b"/");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(Path::new("/live/cam/").as_str(), "live/cam");
        assert_eq!(Path::new("//a///b//").as_str(), "a/b");
        assert_eq!(Path::new("/").as_str(), "");
        assert_eq!(Path::new(""), Path::root());
        assert_eq!(Path::new("a/b").depth(), 2);
        assert_eq!(Path::root().depth(), 0);
    }

    #[test]
    fn prefix_is_segment_aware() {
        let p = Path::new("foo/bar");
        assert!(p.has_prefix(&Path::new("foo")));
        assert!(p.has_prefix(&Path::new("/foo/")));
        assert!(p.has_prefix(&Path::root()));
        assert!(p.has_prefix(&Path::new("foo/bar")));
        assert!(!p.has_prefix(&Path::new("fo")));
        assert!(!Path::new("foobar").has_prefix(&Path::new("foo")));
        assert_eq!(p.strip_prefix(&Path::new("foo")), Some("bar"));
        assert_eq!(p.strip_prefix(&Path::new("foo/bar")), Some(""));
        assert_eq!(p.strip_prefix(&Path::root()), Some("foo/bar"));
    }

    #[test]
    fn join_round_trips_with_strip() {
        for (prefix, suffix, full) in [("room", "alice", "room/alice"), ("", "alice", "alice"), ("room", "", "room")] {
            let joined = Path::new(prefix).join(suffix);
            assert_eq!(joined.as_str(), full);
            assert_eq!(joined.strip_prefix(&Path::new(prefix)), Some(suffix));
        }
    }

    #[test]
    fn limits_apply() {
        let limits = Limits { max_path_depth: 2, max_path_len: 8, ..Limits::default() };
        assert_eq!(Path::decode("a/b/c", &limits), Err(DecodeError::PathTooDeep));
        assert_eq!(Path::decode("abcdefghi", &limits), Err(DecodeError::PathTooLong(9)));
        assert_eq!(Path::decode("/a/b/", &limits).unwrap().as_str(), "a/b");
    }
}
