//! The origin: every broadcast this node knows, with each route to it (published locally, or
//! announced by a session), and the choice of the best route. Routes are kept in path order and
//! ranked deterministically: local first, then lower lite-06 warm/cold cost, then the shorter
//! hop chain, then the older session.

use std::collections::BTreeMap;

use super::SessionId;
use crate::message::{Hops, RouteCost};
use crate::path::Path;

/// Where a route leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Published by an application on this node.
    Local,
    /// Announced by a remote session.
    Session(SessionId),
}

/// One way to reach a broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Where it leads.
    pub source: Source,
    /// The hop chain, oldest first (without this node).
    pub hops: Hops,
    /// lite-06 route cost.
    pub cost: RouteCost,
}

impl Route {
    /// How routes compare: lower is better.
    pub(super) fn rank(&self) -> (bool, u64, u64, usize, Source) {
        (self.source != Source::Local, self.cost.warm, self.cost.cold, self.hops.len(), self.source)
    }
}

/// The broadcast table.
#[derive(Debug, Default)]
pub struct Origin {
    paths: BTreeMap<Path, Vec<Route>>,
}

impl Origin {
    /// Adds or replaces the route from `route.source`. Returns whether the path's routes changed.
    pub fn add(&mut self, path: &Path, route: Route) -> bool {
        let routes = self.paths.entry(path.clone()).or_default();
        match routes.iter_mut().find(|r| r.source == route.source) {
            Some(r) if *r == route => false,
            Some(r) => {
                *r = route;
                true
            }
            None => {
                routes.push(route);
                true
            }
        }
    }

    /// Removes the route from `source`. Returns whether it existed.
    pub fn remove(&mut self, path: &Path, source: Source) -> bool {
        let Some(routes) = self.paths.get_mut(path) else { return false };
        let before = routes.len();
        routes.retain(|r| r.source != source);
        let removed = routes.len() != before;
        if routes.is_empty() {
            self.paths.remove(path);
        }
        removed
    }

    /// Removes every route through a session; returns the affected paths.
    pub fn remove_session(&mut self, session: SessionId) -> Vec<Path> {
        let affected: Vec<Path> = self
            .paths
            .iter()
            .filter(|(_, routes)| routes.iter().any(|r| r.source == Source::Session(session)))
            .map(|(p, _)| p.clone())
            .collect();
        for p in &affected {
            self.remove(p, Source::Session(session));
        }
        affected
    }

    /// The best route to `path`, ignoring routes through `except` (split horizon).
    pub fn best(&self, path: &Path, except: Option<SessionId>) -> Option<&Route> {
        self.paths
            .get(path)?
            .iter()
            .filter(|r| except.is_none_or(|s| r.source != Source::Session(s)))
            .min_by_key(|r| r.rank())
    }

    /// Every route to `path`.
    pub fn routes(&self, path: &Path) -> impl Iterator<Item = &Route> {
        self.paths.get(path).into_iter().flatten()
    }

    /// Whether `path` is published locally.
    pub fn is_local(&self, path: &Path) -> bool {
        self.paths.get(path).is_some_and(|rs| rs.iter().any(|r| r.source == Source::Local))
    }

    /// Whether some session announced `path` (a route other than a local publisher).
    pub fn has_remote(&self, path: &Path) -> bool {
        self.paths.get(path).is_some_and(|rs| rs.iter().any(|r| r.source != Source::Local))
    }

    /// Whether `path` has any route.
    pub fn contains(&self, path: &Path) -> bool {
        self.paths.contains_key(path)
    }

    /// Every known path, in order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.paths.keys()
    }

    /// Number of known broadcasts.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no broadcast is known.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}
