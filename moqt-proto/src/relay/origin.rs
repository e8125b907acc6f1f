//! The origin: every broadcast this node knows, with each route to it (published locally, or
//! announced by a session), and the choice of the best route. Routes are kept in path order and
//! ranked deterministically: local first, then lower lite-06 warm/cold cost, then the shorter
//! hop chain, then the older session.
//!
//! **Anonymous routes** (a hop chain with a 0 past its first entry: every lite-03 chain, or one
//! that crossed a relay without a hop id) cannot prove that they do not lead back here, so they
//! are used only when *feasible*: their chain is no longer than the shortest chain this node has
//! advertised for the path since it last had no route (its feasibility distance). A neighbour
//! whose route goes through this node is always farther than that, so no loop forms. When only
//! infeasible routes remain, the path is withdrawn and held down for a while; then the distance is
//! forgotten and the best remaining route is taken (the routes through this node are gone by then).

use std::collections::BTreeMap;
use std::time::Instant;

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
    /// Whether the chain cannot prove it avoids this node: a 0 past the first entry (the first
    /// is the originating publisher, which may be a client without a hop id).
    pub fn is_anonymous(&self) -> bool {
        self.hops.iter().skip(1).any(|h| *h == 0)
    }

    /// How routes compare: lower is better.
    pub(super) fn rank(&self) -> (bool, u64, u64, usize, Source) {
        (self.source != Source::Local, self.cost.warm, self.cost.cold, self.hops.len(), self.source)
    }
}

/// A path's feasibility distance (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Feasibility {
    /// The shortest chain advertised since the path last had no route.
    distance: usize,
    /// When the hold-down of a path without a feasible route ends.
    hold_until: Option<Instant>,
}

/// The broadcast table.
#[derive(Debug, Default)]
pub struct Origin {
    paths: BTreeMap<Path, Vec<Route>>,
    feasibility: BTreeMap<Path, Feasibility>,
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

    /// The best usable route to `path`, ignoring routes through `except` (split horizon).
    pub fn best(&self, path: &Path, except: Option<SessionId>) -> Option<&Route> {
        self.usable(path).filter(|r| except.is_none_or(|s| r.source != Source::Session(s))).min_by_key(|r| r.rank())
    }

    /// The routes to `path` that may be used: every route with a full hop chain, and anonymous
    /// routes that are feasible.
    pub fn usable(&self, path: &Path) -> impl Iterator<Item = &Route> {
        let limit = self.feasibility.get(path).map(|f| f.distance);
        self.routes(path).filter(move |r| !r.is_anonymous() || limit.is_none_or(|d| r.hops.len() <= d))
    }

    /// Records that a route with this chain (without this node) was advertised for `path`.
    pub fn advertised(&mut self, path: &Path, chain: usize) {
        let f = self.feasibility.entry(path.clone()).or_insert(Feasibility { distance: chain, hold_until: None });
        f.distance = f.distance.min(chain);
    }

    /// Brings the hold-down of `path` up to date after its routes changed: a path with a
    /// distance but no usable route is held until `now + hold`; one with a usable route is not.
    /// Returns when the hold ends, if it is held, and whether it just started.
    pub fn hold(&mut self, path: &Path, now: Instant, hold: std::time::Duration) -> Option<(Instant, bool)> {
        let usable = self.best(path, None).is_some();
        let f = self.feasibility.get_mut(path)?;
        if usable {
            f.hold_until = None;
            return None;
        }
        let new = f.hold_until.is_none();
        Some((*f.hold_until.get_or_insert(now.checked_add(hold).unwrap_or(now)), new))
    }

    /// Changes the cost of every route from `source`; returns the affected paths.
    pub fn reprice(&mut self, source: Source, f: impl Fn(RouteCost) -> RouteCost) -> Vec<Path> {
        let mut changed = Vec::new();
        for (path, routes) in &mut self.paths {
            for r in routes.iter_mut().filter(|r| r.source == source) {
                let cost = f(r.cost);
                if cost != r.cost {
                    r.cost = cost;
                    changed.push(path.clone());
                }
            }
        }
        changed
    }

    /// How many paths have a route from `source`.
    pub fn routes_from(&self, source: Source) -> usize {
        self.paths.values().filter(|rs| rs.iter().any(|r| r.source == source)).count()
    }

    /// Forgets the distances whose hold-down ended by `now`; returns their paths. The next
    /// earliest hold end is [`Origin::next_hold`].
    pub fn release_holds(&mut self, now: Instant) -> Vec<Path> {
        let due: Vec<Path> = self
            .feasibility
            .iter()
            .filter(|(_, f)| f.hold_until.is_some_and(|t| t <= now))
            .map(|(p, _)| p.clone())
            .collect();
        for p in &due {
            self.feasibility.remove(p);
        }
        due
    }

    /// The earliest hold-down end.
    pub fn next_hold(&self) -> Option<Instant> {
        self.feasibility.values().filter_map(|f| f.hold_until).min()
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
