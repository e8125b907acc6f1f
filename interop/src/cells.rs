//! The cells of the matrix: which peers, which relay, which version and transport, and what each
//! cell checks. One function per cell kind (`a` to `i`, described in `main.rs` and the README).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::clock::{follow, Clock};
use crate::peers::{moq_clock, our_connected, our_moqt, their_clock, their_connected};
use crate::relay::Relay;
use crate::{Opts, GONE, READY};

/// The pinned versions of the main cells.
const VERSIONS: [u8; 4] = [3, 4, 5, 6];

/// How a client reaches a relay.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Raw QUIC, `moqt://`.
    Quic,
    /// WebTransport, `https://`.
    Wt,
    /// moq-lite over WebSocket (QMux) on the relay's TCP port, `ws://`.
    Ws,
}

impl Transport {
    /// Its short name in cell keys and reports.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Wt => "wt",
            Transport::Ws => "ws",
        }
    }

    /// The URL of a relay at `addr`.
    pub fn url(self, addr: &str) -> String {
        match self {
            Transport::Quic => format!("moqt://{addr}"),
            Transport::Wt => format!("https://{addr}/"),
            Transport::Ws => format!("ws://{addr}/"),
        }
    }

    /// How our binaries name it in `connected to URL (moq-lite-0N, KIND)`.
    pub fn ours(self) -> &'static str {
        match self {
            Transport::Quic => "RawQuic",
            Transport::Wt => "WebTransport",
            Transport::Ws => "WebSocket",
        }
    }
}

/// What every cell shares: the options and the two relays.
pub struct Ctx {
    /// The command line.
    pub opts: Opts,
    /// moq-dev's relay.
    pub theirs: Relay,
    /// `moqt relay`.
    pub ours: Relay,
}

/// One cell: a kind (`id`, `title`) run on one version over one transport.
#[derive(Clone)]
pub struct Cell {
    /// `a` to `i`.
    pub id: &'static str,
    /// The path the media takes, e.g. `moqt-pub>moq-relay>clock-sub`.
    pub title: &'static str,
    /// The pinned lite version, 3 to 6, or 0 for nothing pinned.
    pub version: u8,
    /// Raw QUIC or WebTransport.
    pub transport: Transport,
}

impl Cell {
    /// `id:title version transport`, what `--only` matches.
    pub fn key(&self) -> String {
        format!("{}:{} {} {}", self.id, self.title, vname(self.version), self.transport.name())
    }

    /// The broadcast name, unique per cell.
    pub fn broadcast(&self) -> String {
        format!("interop/{}/{}/{}", self.id, vname(self.version), self.transport.name())
    }

    /// The cell's log directory.
    pub fn dir(&self, opts: &Opts) -> PathBuf {
        opts.logs.join(format!("{}-{}-{}", self.id, vname(self.version), self.transport.name()))
    }
}

/// `lite-0N`, or `any` for 0: nothing pinned, each side offers all it speaks.
pub fn vname(v: u8) -> String {
    if v == 0 {
        "any".into()
    } else {
        format!("lite-0{v}")
    }
}

/// How a cell went.
pub struct Outcome {
    /// The cell.
    pub cell: Cell,
    /// Whether every check held.
    pub pass: bool,
    /// Negotiated versions as reported by each side.
    pub negotiated: String,
    /// What was seen, or why it failed.
    pub detail: String,
    /// Wall time of the cell.
    pub secs: f64,
}

/// a: `moqt pub --clock` → moq-relay → their `clock subscribe`.
fn cell_a(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.theirs;
    let url = cell.transport.url(&r.addr);
    let v = format!("lite-0{}", cell.version);
    let b = cell.broadcast();
    let publisher = our_moqt(
        ctx,
        cell,
        "moqt-pub",
        &["pub", &url, &b, "--clock", "--version", &v, "--tls-fingerprint", &r.fingerprint],
    )?;
    let ours = our_connected(&publisher, cell)?;
    publisher.wait_err("\"publishing\"", READY, |l| l.starts_with("publishing"))?;
    let sub = their_clock(ctx, cell, r, "subscribe", cell.version)?;
    let theirs = their_connected(&sub, cell.version)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::joined)?;
    Ok((format!("pub={ours} sub={theirs}"), clock.summary()))
}

/// b: their `clock publish` → moq-relay → `moqt sub`.
fn cell_b(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.theirs;
    let url = cell.transport.url(&r.addr);
    let v = format!("lite-0{}", cell.version);
    let b = cell.broadcast();
    let publisher = their_clock(ctx, cell, r, "publish", cell.version)?;
    let theirs = their_connected(&publisher, cell.version)?;
    // Readiness: the relay announces the broadcast.
    let watch = our_moqt(
        ctx,
        cell,
        "moqt-announced",
        &["announced", &url, &b, "--version", &v, "--tls-fingerprint", &r.fingerprint, "--count", "1"],
    )?;
    let plus = watch.next_out("announcement", READY)?;
    if plus != format!("+ {b}") {
        return Err(format!("moqt-announced: {plus:?}"));
    }
    let sub = our_moqt(
        ctx,
        cell,
        "moqt-sub",
        &["sub", &url, &b, "--track", "seconds", "--version", &v, "--tls-fingerprint", &r.fingerprint, "--count", "8"],
    )?;
    let ours = our_connected(&sub, cell)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::frame)?;
    Ok((format!("pub={theirs} sub={ours}"), clock.summary()))
}

/// c: their `clock publish` → `moqt relay` → their `clock subscribe`.
fn cell_c(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.ours;
    let publisher = their_clock(ctx, cell, r, "publish", cell.version)?;
    let p = their_connected(&publisher, cell.version)?;
    let sub = their_clock(ctx, cell, r, "subscribe", cell.version)?;
    let s = their_connected(&sub, cell.version)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::joined)?;
    Ok((format!("pub={p} sub={s}"), clock.summary()))
}

/// d: `moq-clock publish` → `moqt relay` → `moq-clock subscribe`.
fn cell_d(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.ours;
    let publisher = moq_clock(ctx, cell, r, "publish", cell.version)?;
    let p = their_connected(&publisher, cell.version)?;
    let sub = moq_clock(ctx, cell, r, "subscribe", cell.version)?;
    let s = their_connected(&sub, cell.version)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::joined)?;
    Ok((format!("pub={p} sub={s}"), clock.summary()))
}

/// f: their `clock publish` on lite-06 → `moqt relay` → `moq-clock subscribe` on lite-0V: our relay
/// bridges the newest and the oldest version.
fn cell_f(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.ours;
    let publisher = their_clock(ctx, cell, r, "publish", 6)?;
    let p = their_connected(&publisher, 6)?;
    let sub = moq_clock(ctx, cell, r, "subscribe", cell.version)?;
    let s = their_connected(&sub, cell.version)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::joined)?;
    Ok((format!("pub={p} sub={s}"), clock.summary()))
}

/// g: `moq-clock publish` on lite-0V → `moqt relay` → their `clock subscribe` on lite-06.
fn cell_g(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.ours;
    let publisher = moq_clock(ctx, cell, r, "publish", cell.version)?;
    let p = their_connected(&publisher, cell.version)?;
    let sub = their_clock(ctx, cell, r, "subscribe", 6)?;
    let s = their_connected(&sub, 6)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::joined)?;
    Ok((format!("pub={p} sub={s}"), clock.summary()))
}

/// h: nothing pinned: `moqt pub --clock` → moq-relay → their `clock subscribe`; records what each
/// side negotiates when it offers everything it speaks.
fn cell_h(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.theirs;
    let url = cell.transport.url(&r.addr);
    let b = cell.broadcast();
    let publisher =
        our_moqt(ctx, cell, "moqt-pub", &["pub", &url, &b, "--clock", "--tls-fingerprint", &r.fingerprint])?;
    let ours = our_connected(&publisher, cell)?;
    publisher.wait_err("\"publishing\"", READY, |l| l.starts_with("publishing"))?;
    let sub = their_clock(ctx, cell, r, "subscribe", 0)?;
    let theirs = their_connected(&sub, 0)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::joined)?;
    Ok((format!("pub={ours} sub={theirs}"), clock.summary()))
}

/// i: nothing pinned: their `clock publish` → `moqt relay` → `moq-clock subscribe` and our
/// `moqt sub`.
fn cell_i(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.ours;
    let url = cell.transport.url(&r.addr);
    let b = cell.broadcast();
    let publisher = their_clock(ctx, cell, r, "publish", 0)?;
    let p = their_connected(&publisher, 0)?;
    let sub = moq_clock(ctx, cell, r, "subscribe", 0)?;
    let s = their_connected(&sub, 0)?;
    let mut clock = Clock::default();
    follow(&sub, &mut clock, Clock::joined)?;
    let ours = our_moqt(
        ctx,
        cell,
        "moqt-sub",
        &["sub", &url, &b, "--track", "seconds", "--tls-fingerprint", &r.fingerprint, "--count", "8"],
    )?;
    let o = our_connected(&ours, cell)?;
    let mut mine = Clock::default();
    follow(&ours, &mut mine, Clock::frame)?;
    Ok((format!("pub={p} moq-clock-sub={s} moqt-sub={o}"), format!("{} / {}", clock.summary(), mine.summary())))
}

/// e: `moqt announced` on moq-relay sees their clock broadcast come and go.
fn cell_e(ctx: &Ctx, cell: &Cell) -> Result<(String, String), String> {
    let r = &ctx.theirs;
    let url = cell.transport.url(&r.addr);
    let v = format!("lite-0{}", cell.version);
    let b = cell.broadcast();
    let watch = our_moqt(
        ctx,
        cell,
        "moqt-announced",
        &["announced", &url, &b, "--version", &v, "--tls-fingerprint", &r.fingerprint, "--count", "2"],
    )?;
    let ours = our_connected(&watch, cell)?;
    let mut publisher = their_clock(ctx, cell, r, "publish", cell.version)?;
    let theirs = their_connected(&publisher, cell.version)?;
    let plus = watch.next_out("\"+\" announcement", READY)?;
    if plus != format!("+ {b}") {
        return Err(format!("moqt-announced: {plus:?}, wanted \"+ {b}\""));
    }
    // The clock example has no signal handler: SIGINT ends it without closing the session, so the
    // relay retracts the broadcast when the connection idles out.
    let gone = Instant::now();
    publisher.interrupt(Duration::from_secs(2));
    let minus = watch.next_out("\"-\" announcement", GONE)?;
    if minus != format!("- {b}") {
        return Err(format!("moqt-announced: {minus:?}, wanted \"- {b}\""));
    }
    Ok((
        format!("announced={ours} pub={theirs}"),
        format!("{plus:?} then {minus:?} {:.1}s after the publisher died", gone.elapsed().as_secs_f64()),
    ))
}

/// Runs one cell to its outcome.
pub fn run_cell(ctx: &Ctx, cell: &Cell) -> Outcome {
    let started = Instant::now();
    let result = match cell.id {
        "a" => cell_a(ctx, cell),
        "b" => cell_b(ctx, cell),
        "c" => cell_c(ctx, cell),
        "d" => cell_d(ctx, cell),
        "e" => cell_e(ctx, cell),
        "f" => cell_f(ctx, cell),
        "g" => cell_g(ctx, cell),
        "h" => cell_h(ctx, cell),
        "i" => cell_i(ctx, cell),
        _ => unreachable!(),
    };
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok((negotiated, detail)) => Outcome { cell: cell.clone(), pass: true, negotiated, detail, secs },
        Err(detail) => Outcome { cell: cell.clone(), pass: false, negotiated: String::new(), detail, secs },
    }
}

/// The lite versions moq-clock 0.10 (moq-net 0.1.18) shares with us: its ALPN list is `moq-lite-04`,
/// `moq-lite-03`, `moql` (lite-01/02 by SETUP) and IETF drafts; its `moq-lite-05-wip` is opt-in and
/// not our lite-05. Both over raw QUIC and WebTransport.
const MOQ_CLOCK_VERSIONS: [u8; 2] = [3, 4];

/// Every cell kind on every version and transport it applies to, filtered by `--only`.
pub fn cells(ctx: &Ctx) -> Vec<Cell> {
    let mut all = Vec::new();
    let titles = [
        ("a", "moqt-pub>moq-relay>clock-sub"),
        ("b", "clock-pub>moq-relay>moqt-sub"),
        ("c", "clock-pub>moqt-relay>clock-sub"),
        ("d", "moq-clock-pub>moqt-relay>moq-clock-sub"),
        ("e", "moqt-announced@moq-relay+clock-pub"),
        ("f", "clock-pub(lite-06)>moqt-relay>moq-clock-sub"),
        ("g", "moq-clock-pub>moqt-relay>clock-sub(lite-06)"),
        ("h", "moqt-pub>moq-relay>clock-sub(unpinned)"),
        ("i", "clock-pub>moqt-relay>moq-clock-sub+moqt-sub(unpinned)"),
    ];
    for (id, title) in titles {
        let versions: &[u8] = if matches!(id, "h" | "i") { &[0] } else { &VERSIONS };
        for &version in versions {
            for transport in [Transport::Quic, Transport::Wt, Transport::Ws] {
                if matches!(id, "d" | "f" | "g") && !MOQ_CLOCK_VERSIONS.contains(&version) {
                    continue;
                }
                // WebSocket: our clients and relay against moq-relay's WebSocket listener and
                // moq-tokio's clock (moq-clock 0.10 speaks no QMux).
                if transport == Transport::Ws && !matches!(id, "a" | "b" | "c" | "e") {
                    continue;
                }
                all.push(Cell { id, title, version, transport });
            }
        }
    }
    all.retain(|c| ctx.opts.only.is_empty() || ctx.opts.only.iter().any(|o| c.key().contains(o.as_str())));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(only: &[&str]) -> Ctx {
        let relay = || Relay { addr: "127.0.0.1:1".into(), fingerprint: String::new() };
        Ctx {
            opts: Opts {
                peers: PathBuf::new(),
                moqt: PathBuf::new(),
                logs: PathBuf::new(),
                only: only.iter().map(|s| s.to_string()).collect(),
                jobs: 1,
            },
            theirs: relay(),
            ours: relay(),
        }
    }

    #[test]
    fn the_full_matrix_has_64_cells() {
        let all = cells(&ctx(&[]));
        assert_eq!(all.len(), 64);
        // a, b, c, e: 4 versions × 3 transports (QUIC, WebTransport, WebSocket); d, f, g: 2 × 2;
        // h, i: 1 × 2.
        for (id, n) in [("a", 12), ("b", 12), ("c", 12), ("d", 4), ("e", 12), ("f", 4), ("g", 4), ("h", 2), ("i", 2)] {
            assert_eq!(all.iter().filter(|c| c.id == id).count(), n, "cell {id}");
        }
        let mut names: Vec<String> = all.iter().map(Cell::broadcast).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 64, "every cell has its own broadcast");
        assert_eq!(all.iter().filter(|c| c.transport == Transport::Ws).count(), 16);
    }

    #[test]
    fn only_filters_by_key() {
        let some = cells(&ctx(&["c:", "lite-04 wt"]));
        assert!(some.iter().all(|c| c.id == "c" || (c.version == 4 && c.transport == Transport::Wt)));
        // c: 12, plus lite-04 wt of a, b, d, e, f, g (c's is already counted).
        assert_eq!(some.len(), 12 + 6);
    }
}
