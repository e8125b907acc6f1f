//! `interop-matrix`: our `moqt` binary against moq-dev's published binaries (`moq-relay`, moq-tokio's
//! `clock` example and `moq-clock`), installed by `.ci/peers` into `.ci/cache/peers/bin`.
//!
//! ```text
//! cargo build --release -p moqt-cli --bin moqt -p moqt-interop
//! target/release/interop-matrix --peers .ci/cache/peers/bin
//! ```
//!
//! Every process is started here, on loopback, with free ports; readiness comes from the processes'
//! own output lines; every wait has a deadline; everything is killed at the end. One line per cell:
//! `PASS|FAIL cell version transport details`, then a summary table; the exit status is non-zero if
//! any cell failed.
//!
//! Cells, for each version lite-03..06 and each transport (raw QUIC `moqt://`, WebTransport `https://`,
//! and for `a`, `b`, `c`, `e` also WebSocket `ws://` on the relays' TCP port):
//! * `a`: our `moqt pub --clock` → moq-relay → their `clock subscribe`
//! * `b`: their `clock publish` → moq-relay → our `moqt sub`
//! * `c`: their `clock publish` → our `moqt relay` → their `clock subscribe`
//! * `d`: `moq-clock` publish → our `moqt relay` → `moq-clock` subscribe (the versions it speaks)
//! * `e`: our `moqt announced` on moq-relay sees their clock broadcast come (`+`) and go (`-`)
//! * `f`, `g` (extra, moq-clock's versions only): our relay bridges versions, their `clock` on
//!   lite-06 on one side and `moq-clock` on lite-0V on the other, in both directions
//! * `h`, `i` (extra, version `any`): nothing pinned, to record what gets negotiated: `h` as `a`;
//!   `i` their `clock publish` → `moqt relay` → `moq-clock subscribe` and `moqt sub`
//!
//! A clock cell passes when the subscriber gets frame 0 (`"YYYY-MM-DD HH:MM:"`, within two minutes
//! of now) and then three consecutive seconds (`"SS"`) of the same group, each intact.
//!
//! Modules: [`process`] (children and their output), [`relay`] (the two relays), [`peers`] (the
//! clients of a cell), [`clock`] (checking clock frames), [`cells`] (what each cell does),
//! [`report`] (the output).

mod cells;
mod clock;
mod peers;
mod process;
mod relay;
mod report;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Startup, connection and announcement waits.
const READY: Duration = Duration::from_secs(30);
/// Waiting for frames: the clock sends one a second, a late joiner may wait for the group's backlog.
const FRAMES: Duration = Duration::from_secs(30);
/// Waiting for an announcement to end after its publisher was killed: moq-relay notices only when
/// the QUIC idle timeout (10 s by default) expires, as a killed process sends no CONNECTION_CLOSE.
const GONE: Duration = Duration::from_secs(45);

/// The command line.
pub struct Opts {
    /// Directory with `moq-relay`, `clock`, `moq-clock`.
    pub peers: PathBuf,
    /// Our `moqt` binary.
    pub moqt: PathBuf,
    /// Where each process's output goes.
    pub logs: PathBuf,
    /// Substrings of cell keys to run (all when empty).
    pub only: Vec<String>,
    /// Cells running at once.
    pub jobs: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: interop-matrix [--peers DIR] [--moqt PATH] [--logs DIR] [--only SUBSTRING]... [--jobs N]\n\
         \x20 --peers  directory with moq-relay, clock, moq-clock [default: .ci/cache/peers/bin]\n\
         \x20 --moqt   our moqt binary [default: the one next to this binary]\n\
         \x20 --logs   where each process's output goes [default: target/interop-logs]\n\
         \x20 --only   run only cells whose `id:title version transport` contains this (repeatable)\n\
         \x20 --jobs   cells running at once [default: 12]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/interop-matrix → target/<profile>/moqt
    let default_moqt = exe.parent().map(|d| d.join("moqt")).unwrap_or_else(|| "moqt".into());
    let mut opts = Opts {
        peers: ".ci/cache/peers/bin".into(),
        moqt: default_moqt,
        logs: "target/interop-logs".into(),
        only: Vec::new(),
        jobs: 12,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--peers" => opts.peers = value().into(),
            "--moqt" => opts.moqt = value().into(),
            "--logs" => opts.logs = value().into(),
            "--only" => opts.only.push(value()),
            "--jobs" => opts.jobs = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    opts
}

/// A counting semaphore for `--jobs`.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn take(&self) {
        let mut f = self.free.lock().unwrap();
        while *f == 0 {
            f = self.cv.wait(f).unwrap();
        }
        *f -= 1;
    }

    fn give(&self) {
        *self.free.lock().unwrap() += 1;
        self.cv.notify_one();
    }
}

/// Exits with status 2 when a binary the matrix needs is missing.
fn check_binaries(opts: &Opts) {
    // A missing moq-clock fails only the cells that use it.
    for bin in ["moq-relay", "clock"] {
        if !opts.peers.join(bin).is_file() {
            eprintln!("missing {} (run .ci/peers)", opts.peers.join(bin).display());
            std::process::exit(2);
        }
    }
    if !Path::new(&opts.moqt).is_file() {
        eprintln!("missing {} (cargo build -p moqt-cli --bin moqt)", opts.moqt.display());
        std::process::exit(2);
    }
}

fn main() {
    let opts = parse_opts();
    let started = Instant::now();
    check_binaries(&opts);
    let _ = fs::remove_dir_all(&opts.logs);
    let (mut their_proc, theirs) = relay::start_moq_relay(&opts).unwrap_or_else(|e| {
        eprintln!("moq-relay: {e}");
        std::process::exit(1)
    });
    let (mut our_proc, ours) = relay::start_moqt_relay(&opts).unwrap_or_else(|e| {
        eprintln!("moqt relay: {e}");
        std::process::exit(1)
    });
    eprintln!(
        "moq-relay at {} (sha256 {}), moqt relay at {}; logs in {}",
        theirs.addr,
        theirs.fingerprint,
        ours.addr,
        opts.logs.display()
    );
    let jobs = opts.jobs.max(1);
    let ctx = Arc::new(cells::Ctx { opts, theirs, ours });
    let list = cells::cells(&ctx);
    let slots = Arc::new(Slots { free: Mutex::new(jobs), cv: Condvar::new() });
    let (tx, rx) = mpsc::channel();
    for cell in list {
        let (ctx, slots, tx) = (ctx.clone(), slots.clone(), tx.clone());
        thread::spawn(move || {
            slots.take();
            let outcome = cells::run_cell(&ctx, &cell);
            slots.give();
            let _ = tx.send(outcome);
        });
    }
    drop(tx);
    let mut outcomes = Vec::new();
    for o in rx.iter() {
        println!("{}", report::line(&o));
        outcomes.push(o);
    }
    let failed = report::summary(&mut outcomes, started.elapsed());

    // Cell processes died with their cells; `exit` runs no destructors, so stop the relays here.
    their_proc.kill();
    our_proc.kill();
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
