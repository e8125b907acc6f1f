//! The relay under attack and its honest witnesses: a `moqt relay` process with small budgets,
//! its `/metrics` and `/health`, its resident size (VmRSS from /proc), and a well-behaved
//! `moqt pub` → `moqt sub --stats` pair whose statistics lines say whether delivery went on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Proc, WAIT};

/// A relay process with the limit flags of a test.
pub struct Relay {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub fp: String,
    pub pid: u32,
    /// The budget (bytes) the relay's memory must stay within above its baseline.
    pub budget: u64,
}

/// The budgets every adversarial relay runs with (small, so attacks reach them fast).
pub const LIMITS: &[&str] = &[
    "--max-recv-buffered",
    "16MiB",
    "--session-max-recv-buffered",
    "8MiB",
    "--quic-receive-window",
    "1MiB",
    "--quic-stream-window",
    "256KiB",
    "--quic-send-window",
    "1MiB",
    "--max-cache-bytes",
    "16MiB",
    "--cache-max-track-bytes",
    "4MiB",
    "--cache-max-group-bytes",
    "2MiB",
    "--session-max-queued",
    "4MiB",
    "--session-max-queued-per-subscription",
    "1MiB",
    "--session-max-queued-control",
    "256KiB",
    "--session-partial-timeout",
    "2",
    "--max-queued-datagrams",
    "16",
    "--quic-datagram-buffer",
    "64KiB",
];

impl Relay {
    /// Starts `moqt relay` on a free loopback port with [`LIMITS`] and `extra` flags. `budget` is
    /// the memory it may use above its baseline under attack (by its configuration: the node's
    /// receive and cache budgets, quinn's windows per attacking connection, plus allocator slack).
    pub fn start(extra: &[&str], budget: u64) -> Relay {
        let mut args = vec!["relay", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(LIMITS);
        args.extend_from_slice(extra);
        let proc = Proc::spawn(&args);
        let fp = proc.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
        let line = proc.wait_err("listening on");
        let addr: SocketAddr = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        let pid = proc.pid();
        Relay { proc, addr, fp, pid, budget }
    }

    /// `moqt://ADDR`.
    pub fn url(&self) -> String {
        format!("moqt://{}", self.addr)
    }

    /// The resident set size in bytes.
    pub fn rss(&self) -> u64 {
        rss(self.pid)
    }

    /// GET `path` over HTTP/1.0 (from 127.0.0.1); (status line, body).
    pub fn get(&self, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(self.addr).expect("http connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).expect("http response");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (head.lines().next().unwrap_or("").to_string(), body.to_string())
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert!(status.contains("200"), "{status}");
        body
    }

    /// One sample's value (`name` includes labels if any); 0 when absent.
    pub fn metric(&self, name: &str) -> u64 {
        metric(&self.metrics(), name)
    }

    /// Polls `/metrics` until `done` holds (bounded by [`WAIT`]); returns the text.
    pub fn wait_metrics(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let m = self.metrics();
            if done(&m) {
                return m;
            }
            assert!(start.elapsed() < WAIT, "{what}: not reached within {WAIT:?}\n{m}");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A sample's value in a metrics text; 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The counters of limits that were hit (non-zero `*_total` samples of limit families).
pub fn limits_hit(text: &str) -> Vec<String> {
    const LIMIT_FAMILIES: &[&str] = &[
        "broadcasts_refused",
        "groups_cut",
        "cache_evictions",
        "fetches_too_large",
        "requests_timed_out",
        "track_requests_refused",
        "recv_budget_exhausted",
        "streams_refused",
        "subscriptions_refused",
        "interests_refused",
        "announcements_refused",
        "reads_deferred",
        "partial_timeouts",
        "control_overflows",
        "groups_over_budget",
        "groups_expired",
        "datagrams_dropped",
        "handshakes_timed_out",
        "sessions_refused",
        "http_connections_refused",
        "http_connection_errors",
        "http_accept_errors",
        "sessions_closed",
    ];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| LIMIT_FAMILIES.iter().any(|f| l.starts_with(&format!("moqt_{f}_total"))))
        .filter(|l| l.rsplit(' ').next().is_some_and(|v| v != "0"))
        .filter(|l| !l.contains("code=\"no_error\""))
        .map(str::to_owned)
        .collect()
}

/// VmRSS of a process in bytes.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Samples a process's RSS every 10 ms in a thread and keeps the peak.
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl PeakRss {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(rss(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = text
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next())
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        p.fetch_max(kib * 1024, Ordering::Relaxed);
                    }
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        PeakRss { peak, stop, thread: Some(thread) }
    }

    /// Stops sampling; the peak in bytes.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// One `moqt sub --stats` line: cumulative frames and lost groups, this second's p99.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubLine {
    pub frames: u64,
    pub lost: u64,
    pub p99_ms: f64,
}

fn parse_sub_line(line: &str) -> Option<SubLine> {
    let rest = line.strip_prefix("sub: ")?;
    let frames = rest.split_whitespace().next()?.parse().ok()?;
    let lost = rest.split(", ").find(|p| p.ends_with("groups lost"))?.split_whitespace().next()?.parse().ok()?;
    let p99 = rest.split(" p99 ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    Some(SubLine { frames, lost, p99_ms: p99 })
}

/// A well-behaved publisher and a `--stats` subscriber through the relay.
pub struct GoodPair {
    pub publisher: Proc,
    pub subscriber: Proc,
    /// The worst per-second p99 seen since the last [`GoodPair::mark`].
    worst_p99: f64,
    last: SubLine,
}

impl GoodPair {
    /// 50 frames/s of 2000 bytes, 10 frames per group, on `good/pattern`, both clients without
    /// reconnection; returns once the subscriber reported frames.
    pub fn start(relay: &Relay) -> GoodPair {
        let url = relay.url();
        let fp = relay.fp.as_str();
        let publisher = Proc::spawn(&[
            "pub",
            &url,
            "good",
            "--track",
            "pattern",
            "--fps",
            "50",
            "--size",
            "2000",
            "--group",
            "10",
            "--tls-fingerprint",
            fp,
            "--no-reconnect",
        ]);
        publisher.wait_err("publishing");
        let watch = Proc::spawn(&["announced", &url, "good", "--tls-fingerprint", fp, "--count", "1"]);
        assert_eq!(watch.next_out(), "+ good");
        // --no-reconnect: the pair measures the relay's own service; a reconnecting client would
        // hide a session the relay dropped.
        let subscriber = Proc::spawn(&[
            "sub",
            &url,
            "good",
            "--track",
            "pattern",
            "--stats",
            "--tls-fingerprint",
            fp,
            "--no-reconnect",
        ]);
        let mut pair = GoodPair { publisher, subscriber, worst_p99: 0.0, last: SubLine::default() };
        pair.until_frames(1);
        pair
    }

    fn next_line(&mut self) -> SubLine {
        loop {
            let line = self.subscriber.next_out();
            if let Some(s) = parse_sub_line(&line) {
                assert_eq!(s.lost, 0, "the good subscriber lost groups: {line}");
                self.worst_p99 = self.worst_p99.max(s.p99_ms);
                self.last = s;
                return s;
            }
        }
    }

    /// Waits (bounded) until the subscriber has counted `more` frames beyond now; returns them.
    pub fn more_frames(&mut self, more: u64) -> u64 {
        let from = self.last.frames;
        self.until_frames(from + more);
        self.last.frames - from
    }

    fn until_frames(&mut self, n: u64) {
        while self.last.frames < n {
            self.next_line();
        }
    }

    /// Starts a measurement window: returns the frames so far and resets the worst p99.
    pub fn mark(&mut self) -> u64 {
        self.worst_p99 = 0.0;
        self.last.frames
    }

    /// The worst per-second p99 latency (ms) since the mark.
    pub fn worst_p99(&self) -> f64 {
        self.worst_p99
    }

    /// Frames so far.
    pub fn frames(&self) -> u64 {
        self.last.frames
    }
}
