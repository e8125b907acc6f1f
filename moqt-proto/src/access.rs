//! Access control: what one session may publish, subscribe to and see, as the relay core
//! enforces it. This module owns the permission model only; verifying a credential (a JWT, an
//! auth server's answer, public rules) and turning it into a [`Grant`] happens elsewhere.
//!
//! - A [`Pattern`] names a set of broadcast paths (`foo`, `foo/**`, `**`, `*/chat`, …);
//!   [`Patterns`] is a union of them.
//! - A [`Grant`] is what a credential grants: publish and subscribe patterns relative to its own
//!   `root`, a cluster right, and an optional expiry.
//! - [`Grant::authorize`] meets a grant with the path the session connected to and yields the
//!   session's [`Access`], whose patterns are relative to that connect path, the way moq-dev's
//!   relay scopes sessions: a connect path below the root narrows the grant, one above the root
//!   keeps it anchored at the root, and an unrelated one is refused.
//!
//! All paths handed to [`Access`] are normalised [`Path`]s; which are relative to the connect
//! path and which are absolute is said on each method.

mod pattern;

pub use pattern::{Pattern, PatternError, Segment, MAX_SEGMENTS};

use crate::path::Path;

/// A union of patterns, reduced so that no member contains another and kept in canonical order:
/// two unions describing the same reduced set are equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    /// The empty union: nothing.
    pub fn new() -> Patterns {
        Patterns(Vec::new())
    }

    /// `**`: everything.
    pub fn all() -> Patterns {
        Patterns(vec![Pattern::all()])
    }

    /// Adds a pattern, dropping the members it contains. Returns `false` (and changes nothing)
    /// when a member already contains it.
    pub fn insert(&mut self, pattern: Pattern) -> bool {
        if self.contains(&pattern) {
            return false;
        }
        self.0.retain(|m| !pattern.contains(m));
        let at = self.0.partition_point(|m| *m < pattern);
        self.0.insert(at, pattern);
        true
    }

    /// Whether some member matches `path`.
    pub fn matches(&self, path: &Path) -> bool {
        self.0.iter().any(|m| m.matches(path))
    }

    /// Whether one member contains `pattern` (a candidate covered only by several members
    /// together is not contained; write `a/**` for a subtree).
    pub fn contains(&self, pattern: &Pattern) -> bool {
        self.0.iter().any(|m| m.contains(pattern))
    }

    /// Whether every member of `other` is contained here: `other` grants nothing this does not.
    pub fn covers(&self, other: &Patterns) -> bool {
        other.0.iter().all(|p| self.contains(p))
    }

    /// Whether some member overlaps `pattern`.
    pub fn overlaps(&self, pattern: &Pattern) -> bool {
        self.0.iter().any(|m| m.overlaps(pattern))
    }

    /// Every member seen from below `root` (see [`Pattern::rebase`]).
    pub fn rebase(&self, root: &Path) -> Patterns {
        self.0.iter().flat_map(|m| m.rebase(root)).collect()
    }

    /// Every member placed below `root` (see [`Pattern::rooted`]).
    pub fn rooted(&self, root: &Path) -> Result<Patterns, PatternError> {
        self.0.iter().map(|m| m.rooted(root)).collect()
    }

    /// Adds every member of `other`.
    pub fn union(&mut self, other: &Patterns) {
        for p in &other.0 {
            self.insert(p.clone());
        }
    }

    /// Whether this union matches every path.
    pub fn is_all(&self) -> bool {
        self.0.iter().any(Pattern::is_all)
    }

    /// The members, in canonical order.
    pub fn iter(&self) -> std::slice::Iter<'_, Pattern> {
        self.0.iter()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no member, so nothing matches.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Pattern> for Patterns {
    fn from_iter<I: IntoIterator<Item = Pattern>>(iter: I) -> Patterns {
        let mut out = Patterns::new();
        for p in iter {
            out.insert(p);
        }
        out
    }
}

impl From<Pattern> for Patterns {
    fn from(p: Pattern) -> Patterns {
        Patterns(vec![p])
    }
}

impl IntoIterator for Patterns {
    type Item = Pattern;
    type IntoIter = std::vec::IntoIter<Pattern>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Patterns {
    type Item = &'a Pattern;
    type IntoIter = std::slice::Iter<'a, Pattern>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Why a grant gives a session nothing at its connect path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The connect path is neither at or below the grant's root nor above it.
    #[error("the connect path `{path}` does not overlap the root `{root}`")]
    RootMismatch {
        /// The grant's root.
        root: Path,
        /// The connect path.
        path: Path,
    },
    /// The paths overlap, but no publish or subscribe pattern reaches the connect path.
    #[error("nothing is granted at `{path}`")]
    NoAccess {
        /// The connect path.
        path: Path,
    },
    /// Placing the patterns below the root would exceed the pattern grammar (a `*` in the root,
    /// or more than [`MAX_SEGMENTS`] segments).
    #[error("the grant cannot be placed at the connect path: {0}")]
    Pattern(#[from] PatternError),
}

/// What a credential grants, before it meets a connect path: patterns relative to `root`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The path the patterns are relative to (moq-dev's `root` claim; empty for the top).
    pub root: Path,
    /// What the holder may publish.
    pub publish: Patterns,
    /// What the holder may subscribe to (and see announced).
    pub subscribe: Patterns,
    /// An explicit cluster right (moq-token 0.5's `cluster` claim, an auth server's `peer`).
    pub cluster: bool,
    /// When access ends, in unix seconds, already including any clock leeway.
    pub expires: Option<u64>,
}

impl Grant {
    /// Anonymous rules: patterns rooted at the top (`/`), no expiry, no explicit cluster right.
    pub fn public(publish: Patterns, subscribe: Patterns) -> Grant {
        Grant { root: Path::root(), publish, subscribe, cluster: false, expires: None }
    }

    /// The access this grant gives a session that connected to `connect`, with every pattern
    /// re-expressed relative to `connect`:
    ///
    /// - `connect` at or below the root (root `demo`, connect `demo/room`): each pattern is seen
    ///   from `connect` ([`Patterns::rebase`]); those that reach nothing there are dropped.
    /// - `connect` above the root (root `demo`, connect `/`): each pattern is placed below the
    ///   rest of the root (`alice` becomes `demo/alice`).
    /// - otherwise: [`Denied::RootMismatch`]. Matching is by segment: root `foo` does not cover
    ///   `foobar`.
    ///
    /// When neither role keeps a pattern the result is [`Denied::NoAccess`]; losing one role is
    /// fine (a read-only or write-only grant). The session has the cluster right when the grant
    /// says so or when it is a root grant: connected at the top with everything to publish and
    /// subscribe.
    pub fn authorize(&self, connect: &Path) -> Result<Access, Denied> {
        let (publish, subscribe) = if let Some(below) = connect.strip_prefix(&self.root) {
            let below = Path::new(below);
            (self.publish.rebase(&below), self.subscribe.rebase(&below))
        } else if let Some(above) = self.root.strip_prefix(connect) {
            let above = Path::new(above);
            (self.publish.rooted(&above)?, self.subscribe.rooted(&above)?)
        } else {
            return Err(Denied::RootMismatch { root: self.root.clone(), path: connect.clone() });
        };
        if publish.is_empty() && subscribe.is_empty() {
            return Err(Denied::NoAccess { path: connect.clone() });
        }
        let cluster = self.cluster || (connect.is_root() && publish.is_all() && subscribe.is_all());
        Ok(Access { root: connect.clone(), publish, subscribe, cluster, expires: self.expires })
    }
}

/// One session's permissions: patterns relative to the path it connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    root: Path,
    publish: Patterns,
    subscribe: Patterns,
    cluster: bool,
    expires: Option<u64>,
}

impl Access {
    /// Everything, with the cluster right and no expiry: a relay with no authentication.
    pub fn full(connect: &Path) -> Access {
        Access {
            root: connect.clone(),
            publish: Patterns::all(),
            subscribe: Patterns::all(),
            cluster: true,
            expires: None,
        }
    }

    /// Nothing at all (every check fails).
    pub fn none(connect: &Path) -> Access {
        Access {
            root: connect.clone(),
            publish: Patterns::new(),
            subscribe: Patterns::new(),
            cluster: false,
            expires: None,
        }
    }

    /// Anonymous access from public patterns rooted at `/` (for example `anon/**`), authorized at
    /// `connect` like a grant with an empty root.
    pub fn public(publish: &Patterns, subscribe: &Patterns, connect: &Path) -> Result<Access, Denied> {
        Grant::public(publish.clone(), subscribe.clone()).authorize(connect)
    }

    /// Adds what the public patterns (rooted at `/`) give at this session's connect path. Nothing
    /// changes where they give nothing. moq-dev's relays do not do this for a session that
    /// presented a token (its token alone decides); it is here for a relay that chooses to.
    pub fn with_public(mut self, publish: &Patterns, subscribe: &Patterns) -> Access {
        if let Ok(public) = Access::public(publish, subscribe, &self.root) {
            self.publish.union(&public.publish);
            self.subscribe.union(&public.subscribe);
        }
        self
    }

    /// Replaces the cluster right: where the credential states it outright (an auth server's
    /// `peer`), that word alone decides, not the root-grant rule of [`Grant::authorize`].
    pub fn with_cluster(mut self, cluster: bool) -> Access {
        self.cluster = cluster;
        self
    }

    /// The connect path every other path of this session is relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The publish patterns, relative to [`root`](Self::root).
    pub fn publish(&self) -> &Patterns {
        &self.publish
    }

    /// The subscribe patterns, relative to [`root`](Self::root).
    pub fn subscribe(&self) -> &Patterns {
        &self.subscribe
    }

    /// Whether the session may forward announcements that entered the cluster elsewhere (a
    /// relay peer).
    pub fn cluster(&self) -> bool {
        self.cluster
    }

    /// When the session must end, in unix seconds (`None`: never).
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }

    /// Whether access has ended at `now` (unix seconds): the session ends at its expiry.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    /// Whether the session may publish (announce) the broadcast `path`, relative to the root.
    pub fn can_publish(&self, path: &Path) -> bool {
        self.publish.matches(path)
    }

    /// Whether the session may subscribe to, fetch from, or ask about a track of the broadcast
    /// `path`, relative to the root.
    pub fn can_subscribe(&self, path: &Path) -> bool {
        self.subscribe.matches(path)
    }

    /// Whether an announce interest on `prefix` (relative to the root) can show the session
    /// anything: some subscribe pattern reaches a path at or below it.
    pub fn may_watch(&self, prefix: &Path) -> bool {
        Pattern::subtree(prefix).is_ok_and(|p| self.subscribe.overlaps(&p))
    }

    /// Whether the session may publish some path at or below `prefix` (relative to the root).
    pub fn may_publish_under(&self, prefix: &Path) -> bool {
        Pattern::subtree(prefix).is_ok_and(|p| self.publish.overlaps(&p))
    }

    /// The announcement filter: the name (relative to the root) under which this session sees
    /// the broadcast at the absolute `path`, or `None` when it may not see it (outside the root
    /// or not subscribable).
    pub fn may_see(&self, path: &Path) -> Option<Path> {
        let relative = self.relative(path)?;
        self.can_subscribe(&relative).then_some(relative)
    }

    /// The absolute path of `path`, which is relative to the root.
    pub fn absolute(&self, path: &Path) -> Path {
        self.root.join(path.as_str())
    }

    /// `path` (absolute) relative to the root, or `None` when it is not at or below the root.
    pub fn relative(&self, path: &Path) -> Option<Path> {
        path.strip_prefix(&self.root).map(Path::new)
    }
}

#[cfg(test)]
mod tests;
