//! Interop matrix against moq-dev's published binaries (`moq-relay`, moq-tokio's `clock` example and
//! `moq-clock`), installed by `.ci/peers` into `.ci/cache/peers/bin`.
//!
//! ```text
//! cargo build --release -p moqt-driver-tokio --bin moqt --example interop_matrix
//! target/release/examples/interop_matrix --peers .ci/cache/peers/bin
//! ```
//!
//! Every process is started here, on loopback, with free ports; readiness comes from the processes'
//! own output lines; every wait has a deadline; everything is killed at the end. One line per cell:
//! `PASS|FAIL cell version transport details`, then a summary table; the exit status is non-zero if
//! any cell failed.
//!
//! Cells, for each version lite-03..06 and each transport (raw QUIC `moqt://`, WebTransport `https://`):
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

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Startup, connection and announcement waits.
const READY: Duration = Duration::from_secs(30);
/// Waiting for frames: the clock sends one a second, a late joiner may wait for the group's backlog.
const FRAMES: Duration = Duration::from_secs(30);
/// Waiting for an announcement to end after its publisher was killed: moq-relay notices only when
/// the QUIC idle timeout (10 s by default) expires, as a killed process sends no CONNECTION_CLOSE.
const GONE: Duration = Duration::from_secs(45);

const VERSIONS: [u8; 4] = [3, 4, 5, 6];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Quic,
    Wt,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Wt => "wt",
        }
    }

    fn url(self, addr: &str) -> String {
        match self {
            Transport::Quic => format!("moqt://{addr}"),
            Transport::Wt => format!("https://{addr}/"),
        }
    }

    /// How our binaries name it in `connected to URL (moq-lite-0N, KIND)`.
    fn ours(self) -> &'static str {
        match self {
            Transport::Quic => "RawQuic",
            Transport::Wt => "WebTransport",
        }
    }
}

struct Opts {
    peers: PathBuf,
    moqt: PathBuf,
    logs: PathBuf,
    only: Vec<String>,
    jobs: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: interop_matrix [--peers DIR] [--moqt PATH] [--logs DIR] [--only SUBSTRING]... [--jobs N]\n\
         \x20 --peers  directory with moq-relay, clock, moq-clock [default: .ci/cache/peers/bin]\n\
         \x20 --moqt   our moqt binary [default: the one next to this example's directory]\n\
         \x20 --logs   where each process's output goes [default: target/interop-logs]\n\
         \x20 --only   run only cells whose `name version transport` contains this (repeatable)\n\
         \x20 --jobs   cells running at once [default: 12]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/examples/interop_matrix → target/<profile>/moqt
    let default_moqt = exe.parent().and_then(Path::parent).map(|d| d.join("moqt")).unwrap_or_else(|| "moqt".into());
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

// ------------------------------------------------------------------------------------------------
// Processes

/// Removes ANSI colour sequences (moq-dev's binaries colour their logs even into a pipe).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A child process whose stdout and stderr lines arrive on channels and are also written to
/// `<logs>/<name>.out` and `<name>.err`.
struct Proc {
    name: String,
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    /// The last stderr lines, for failure details.
    tail: Arc<Mutex<VecDeque<String>>>,
}

fn pump<R: Read + Send + 'static>(
    r: R,
    log: PathBuf,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut file = File::create(&log).ok();
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = strip_ansi(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']));
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if let Some(t) = &tail {
                let mut t = t.lock().unwrap();
                if t.len() == 8 {
                    t.pop_front();
                }
                t.push_back(line.clone());
            }
            // The receiver may be gone; the log file still gets every line.
            let _ = tx.send(line);
        }
    });
    rx
}

impl Proc {
    fn spawn(program: &Path, args: &[&str], dir: &Path, name: &str) -> Result<Proc, String> {
        Self::spawn_env(program, args, &[], dir, name)
    }

    fn spawn_env(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path, name: &str) -> Result<Proc, String> {
        let _ = fs::create_dir_all(dir);
        if let Ok(mut f) = File::create(dir.join(format!("{name}.cmd"))) {
            let vars: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
            let _ = writeln!(f, "{vars}{} {}", program.display(), args.join(" "));
        }
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("MOQT_LOG", std::env::var("INTEROP_MOQT_LOG").unwrap_or_else(|_| "info".into()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let out = pump(child.stdout.take().unwrap(), dir.join(format!("{name}.out")), None);
        let err = pump(child.stderr.take().unwrap(), dir.join(format!("{name}.err")), Some(tail.clone()));
        Ok(Proc { name: name.to_string(), child, out, err, tail })
    }

    fn wait(
        rx: &mpsc::Receiver<String>,
        what: &str,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(format!("{name}: no {what} within {timeout:?}")),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("{name}: exited before {what}")),
            }
        }
    }

    /// Waits for a stderr line that satisfies `pred`.
    fn wait_err(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String, String> {
        Self::wait(&self.err, what, &self.name, timeout, pred).map_err(|e| self.with_tail(e))
    }

    /// The next stdout line.
    fn next_out(&self, what: &str, timeout: Duration) -> Result<String, String> {
        Self::wait(&self.out, what, &self.name, timeout, |_| true).map_err(|e| self.with_tail(e))
    }

    /// Adds the process's last error or warning line, if any.
    fn with_tail(&self, e: String) -> String {
        let t = self.tail.lock().unwrap();
        match t.iter().rev().find(|l| l.contains("ERROR") || l.contains("WARN") || l.starts_with("error")) {
            Some(l) => format!("{e} (last: {})", l.trim()),
            None => e,
        }
    }

    /// Ends the process now (SIGKILL): no goodbye on the wire.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT, then SIGKILL if it has not exited after `grace`.
    fn interrupt(&mut self, grace: Duration) {
        // Already reaped (std keeps the status): the pid may belong to someone else by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for Proc {
    /// SIGINT first, so our clients close their sessions cleanly (moq-dev's clocks have no handler
    /// and just die), then SIGKILL.
    fn drop(&mut self) {
        self.interrupt(Duration::from_secs(2));
    }
}

// ------------------------------------------------------------------------------------------------
// Relays

/// Where a relay listens; its process stays with `main`.
struct Relay {
    addr: String,
    fingerprint: String,
}

/// A loopback port free on both UDP and TCP (QUIC and HTTP share the number).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `GET /certificate.sha256` over plain HTTP.
fn http_fingerprint(addr: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("http connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET /certificate.sha256 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| format!("http read: {e}"))?;
    let (head, body) = body.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET /certificate.sha256: {}", head.lines().next().unwrap_or("")));
    }
    let fp = body.trim().to_string();
    if fp.len() == 64 && fp.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(fp)
    } else {
        Err(format!("odd fingerprint {fp:?}"))
    }
}

fn start_moq_relay(opts: &Opts) -> Result<(Proc, Relay), String> {
    let bin = opts.peers.join("moq-relay");
    let dir = opts.logs.join("relays");
    // The port can be taken between the probe and the bind: retry a few times.
    let mut last = String::new();
    for _ in 0..3 {
        let addr = format!("127.0.0.1:{}", free_port());
        let proc = Proc::spawn(
            &bin,
            &[
                "--listen",
                &addr,
                "--listen-tls-generate",
                "localhost",
                "--web-http-listen",
                &addr,
                "--auth-public",
                "**",
                "--connect-bind",
                "127.0.0.1:0",
                "--drain-timeout",
                "0s",
            ],
            &dir,
            "moq-relay",
        )?;
        // `listening addr=… kind="http"` and `… kind="quic"`, in either order.
        let (mut http, mut quic) = (false, false);
        let mut ok = true;
        while !(http && quic) {
            match proc.wait_err("listening line", READY, |l| l.contains("listening") || l.contains("Error")) {
                Ok(l) if l.contains("kind=\"http\"") => http = true,
                Ok(l) if l.contains("kind=\"quic\"") => quic = true,
                Ok(l) if l.contains("Error") => {
                    last = l;
                    ok = false;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    last = e;
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let fingerprint = http_fingerprint(&addr)?;
        return Ok((proc, Relay { addr, fingerprint }));
    }
    Err(format!("moq-relay did not start: {last}"))
}

fn start_moqt_relay(opts: &Opts) -> Result<(Proc, Relay), String> {
    let dir = opts.logs.join("relays");
    let proc =
        Proc::spawn(&opts.moqt, &["relay", "--listen", "127.0.0.1:0", "--drain-timeout", "0"], &dir, "moqt-relay")?;
    let fp = proc.wait_err("certificate line", READY, |l| l.starts_with("certificate sha256"))?;
    let fingerprint = fp.rsplit(' ').next().unwrap().to_string();
    let line = proc.wait_err("listening line", READY, |l| l.starts_with("listening on"))?;
    let addr = line.split_whitespace().nth(2).ok_or("odd listening line")?.to_string();
    Ok((proc, Relay { addr, fingerprint }))
}

// ------------------------------------------------------------------------------------------------
// Clock frames

/// Today's UTC `"YYYY-MM-DD HH:MM:"` for a Unix time (days-to-civil, proleptic Gregorian).
fn utc_minute(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:", rem / 3600, rem % 3600 / 60)
}

/// Frame 0 of a clock group: `"YYYY-MM-DD HH:MM:"` naming a minute within two of now.
fn check_base(s: &str) -> Result<(), String> {
    let shape = "dddd-dd-dd dd:dd:";
    let ok = s.len() == shape.len()
        && s.bytes().zip(shape.bytes()).all(|(c, p)| if p == b'd' { c.is_ascii_digit() } else { c == p });
    if !ok {
        return Err(format!("frame 0 not \"YYYY-MM-DD HH:MM:\": {s:?}"));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    if ![now - 120, now - 60, now, now + 60].iter().any(|t| utc_minute(*t) == s) {
        return Err(format!("frame 0 {s:?} is not the current minute ({})", utc_minute(now)));
    }
    Ok(())
}

fn parse_second(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if s.len() == 2 && v < 60 => Ok(v),
        _ => Err(format!("not a \"SS\" frame: {s:?}")),
    }
}

/// Consecutive seconds (after frame 0, in one group) that make a clock cell pass: the minimum is
/// two; a third makes sure at least one full live second went by.
const RUN: usize = 3;

/// Follows a clock track; done after frame 0 and `RUN` consecutive seconds of one group.
#[derive(Default)]
struct Clock {
    base: Option<String>,
    last: Option<u32>,
    /// Length of the current run of consecutive seconds.
    run: usize,
    seen: Vec<String>,
}

impl Clock {
    /// A new group begins with frame 0.
    fn base(&mut self, b: &str) -> Result<(), String> {
        check_base(b)?;
        if self.base.as_deref() != Some(b) {
            self.base = Some(b.to_string());
            self.last = None;
            self.run = 0;
            self.seen.push(format!("{b:?}"));
        }
        Ok(())
    }

    /// A seconds frame; Ok(true) once done.
    fn second(&mut self, s: &str) -> Result<bool, String> {
        let v = parse_second(s)?;
        if self.base.is_none() {
            return Err(format!("second {s:?} before any frame 0"));
        }
        self.seen.push(s.to_string());
        self.run = if self.last.is_some_and(|a| v == a + 1) { self.run + 1 } else { 1 };
        self.last = Some(v);
        Ok(self.run >= RUN)
    }

    /// One line of our `moqt sub`: one frame.
    fn frame(&mut self, line: &str) -> Result<bool, String> {
        if line.len() == 17 {
            self.base(line).map(|_| false)
        } else {
            self.second(line)
        }
    }

    /// One line of their clock subscriber: `println!("{base}{second}")`.
    fn joined(&mut self, line: &str) -> Result<bool, String> {
        if line.len() != 19 || !line.is_char_boundary(17) {
            return Err(format!("not \"YYYY-MM-DD HH:MM:SS\": {line:?}"));
        }
        self.base(&line[..17])?;
        self.second(&line[17..])
    }

    fn summary(&self) -> String {
        self.seen.join(" ")
    }
}

/// Reads `proc`'s stdout through `step` until done.
fn follow(proc: &Proc, clock: &mut Clock, step: fn(&mut Clock, &str) -> Result<bool, String>) -> Result<(), String> {
    let deadline = Instant::now() + FRAMES;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{}: frames incomplete after {FRAMES:?}: {}", proc.name, clock.summary()));
        }
        let line = proc.next_out("frame", left).map_err(|e| format!("{e}; got {}", clock.summary()))?;
        match step(clock, &line) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(format!("{}: {e}; got {}", proc.name, clock.summary())),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Cells

struct Ctx {
    opts: Opts,
    /// moq-dev's relay.
    theirs: Relay,
    /// `moqt relay`.
    ours: Relay,
}

#[derive(Clone)]
struct Cell {
    id: &'static str,
    title: &'static str,
    version: u8,
    transport: Transport,
}

impl Cell {
    fn key(&self) -> String {
        format!("{}:{} {} {}", self.id, self.title, vname(self.version), self.transport.name())
    }

    fn broadcast(&self) -> String {
        format!("interop/{}/{}/{}", self.id, vname(self.version), self.transport.name())
    }

    fn dir(&self, opts: &Opts) -> PathBuf {
        opts.logs.join(format!("{}-{}-{}", self.id, vname(self.version), self.transport.name()))
    }
}

/// `lite-0N`, or `any` for 0: nothing pinned, each side offers all it speaks.
fn vname(v: u8) -> String {
    if v == 0 {
        "any".into()
    } else {
        format!("lite-0{v}")
    }
}

struct Outcome {
    cell: Cell,
    pass: bool,
    /// Negotiated versions as reported by each side.
    negotiated: String,
    detail: String,
    secs: f64,
}

/// Our binary's `connected to URL (moq-lite-0N, KIND)`: checks the version and transport.
fn our_connected(p: &Proc, cell: &Cell) -> Result<String, String> {
    let line = p.wait_err("\"connected to\"", READY, |l| l.starts_with("connected to"))?;
    let inner = line.rsplit_once('(').map(|(_, r)| r.trim_end_matches(')')).unwrap_or("");
    let (got, kind) = inner.split_once(", ").unwrap_or((inner, ""));
    let version_ok =
        if cell.version == 0 { got.starts_with("moq-lite-0") } else { got == format!("moq-{}", vname(cell.version)) };
    if !version_ok || kind != cell.transport.ours() {
        return Err(format!(
            "{}: negotiated {inner:?}, wanted {} over {}",
            p.name,
            vname(cell.version),
            cell.transport.ours()
        ));
    }
    Ok(got.to_string())
}

/// Their `INFO …: connected version=moq-lite-0N` (moq-tokio's client, and moq-native's).
fn their_connected(p: &Proc, version: u8) -> Result<String, String> {
    let line = p.wait_err("\"connected\" log line", READY, |l| {
        l.contains(" connected") && l.contains("version=") || l.contains("ERROR")
    })?;
    if line.contains("ERROR") {
        return Err(format!("{}: {}", p.name, line.trim()));
    }
    let v = line.split("version=").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("?").to_string();
    let ok = if version == 0 { v.starts_with("moq-lite-0") } else { v == format!("moq-lite-0{version}") };
    if !ok {
        return Err(format!("{}: negotiated {v}, wanted moq-{}", p.name, vname(version)));
    }
    Ok(v)
}

/// moq-tokio's `clock` against `url`.
fn their_clock(ctx: &Ctx, cell: &Cell, relay: &Relay, role: &str, version: u8) -> Result<Proc, String> {
    let url = cell.transport.url(&relay.addr);
    let pinned = format!("moq-lite-0{version}");
    let pin: &[&str] = if version == 0 { &[] } else { &["--connect-version", &pinned] };
    let b = cell.broadcast();
    let args = [
        &["--connect", &url, "--broadcast", &b][..],
        pin,
        &[
            "--connect-tls-fingerprint",
            &relay.fingerprint,
            // No WebSocket race: the cell is about QUIC / WebTransport.
            "--connect-websocket-enabled=false",
            "--connect-once",
            role,
        ],
    ]
    .concat();
    Proc::spawn(&ctx.opts.peers.join("clock"), &args, &cell.dir(&ctx.opts), &format!("clock-{role}"))
}

fn our_moqt(ctx: &Ctx, cell: &Cell, name: &str, args: &[&str]) -> Result<Proc, String> {
    Proc::spawn(&ctx.opts.moqt, args, &cell.dir(&ctx.opts), name)
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

/// `moq-clock` (moq-native 0.14 / moq-net 0.1) against `relay`. It has no fingerprint option, so
/// it skips verification; it always reconnects, so a failure shows as a timeout. Its
/// `--websocket-enabled` is a clap `SetTrue` flag that cannot be turned off on the command line,
/// so the WebSocket race is disabled through its environment variable.
fn moq_clock(ctx: &Ctx, cell: &Cell, relay: &Relay, role: &str, version: u8) -> Result<Proc, String> {
    let url = cell.transport.url(&relay.addr);
    let pinned = format!("moq-lite-0{version}");
    let pin: &[&str] = if version == 0 { &[] } else { &["--client-version", &pinned] };
    let b = cell.broadcast();
    let args = [&["--url", &url, "--broadcast", &b][..], pin, &["--tls-disable-verify", role]].concat();
    Proc::spawn_env(
        &ctx.opts.peers.join("moq-clock"),
        &args,
        &[("MOQ_CLIENT_WEBSOCKET_ENABLED", "false")],
        &cell.dir(&ctx.opts),
        &format!("moq-clock-{role}"),
    )
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

fn run_cell(ctx: &Ctx, cell: &Cell) -> Outcome {
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

fn cells(ctx: &Ctx) -> Vec<Cell> {
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
            for transport in [Transport::Quic, Transport::Wt] {
                if matches!(id, "d" | "f" | "g") && !MOQ_CLOCK_VERSIONS.contains(&version) {
                    continue;
                }
                all.push(Cell { id, title, version, transport });
            }
        }
    }
    all.retain(|c| ctx.opts.only.is_empty() || ctx.opts.only.iter().any(|o| c.key().contains(o.as_str())));
    all
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

fn main() {
    let opts = parse_opts();
    let started = Instant::now();
    // A missing moq-clock fails only the `d` cells.
    for bin in ["moq-relay", "clock"] {
        if !opts.peers.join(bin).is_file() {
            eprintln!("missing {} (run .ci/peers)", opts.peers.join(bin).display());
            std::process::exit(2);
        }
    }
    if !opts.moqt.is_file() {
        eprintln!("missing {} (cargo build --release --bin moqt)", opts.moqt.display());
        std::process::exit(2);
    }
    let _ = fs::remove_dir_all(&opts.logs);
    let (mut their_proc, theirs) = start_moq_relay(&opts).unwrap_or_else(|e| {
        eprintln!("moq-relay: {e}");
        std::process::exit(1)
    });
    let (mut our_proc, ours) = start_moqt_relay(&opts).unwrap_or_else(|e| {
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
    let ctx = Arc::new(Ctx { opts, theirs, ours });
    let list = cells(&ctx);
    let slots = Arc::new(Slots { free: Mutex::new(jobs), cv: Condvar::new() });
    let (tx, rx) = mpsc::channel();
    for cell in list.clone() {
        let (ctx, slots, tx) = (ctx.clone(), slots.clone(), tx.clone());
        thread::spawn(move || {
            slots.take();
            let outcome = run_cell(&ctx, &cell);
            slots.give();
            let _ = tx.send(outcome);
        });
    }
    drop(tx);
    let mut outcomes = Vec::new();
    for o in rx.iter() {
        println!(
            "{} {} {} {} [{}] {} ({:.1}s)",
            if o.pass { "PASS" } else { "FAIL" },
            o.cell.title,
            vname(o.cell.version),
            o.cell.transport.name(),
            o.negotiated,
            o.detail,
            o.secs
        );
        outcomes.push(o);
    }
    outcomes.sort_by_key(|o| (o.cell.id, o.cell.version, o.cell.transport.name()));

    // Summary table (markdown).
    println!();
    println!("| cell | version | transport | result | negotiated |");
    println!("|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {}: {} | {} | {} | {} | {} |",
            o.cell.id,
            o.cell.title,
            vname(o.cell.version),
            o.cell.transport.name(),
            if o.pass { "PASS" } else { "FAIL" },
            if o.pass { o.negotiated.as_str() } else { "-" }
        );
    }
    let failed = outcomes.iter().filter(|o| !o.pass).count();
    println!();
    println!(
        "{} cells, {} passed, {} failed, {:.0}s",
        outcomes.len(),
        outcomes.len() - failed,
        failed,
        started.elapsed().as_secs_f64()
    );

    // Cell processes died with their cells; `exit` runs no destructors, so stop the relays here.
    their_proc.kill();
    our_proc.kill();
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
