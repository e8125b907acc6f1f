//! `moqt-soak`: runs a real `moqt relay` process for a configurable time under churn —
//! publishers and subscribers join and leave, a share of the subscribers stall (subscribe and
//! never read) — with every client behind a lossy UDP proxy, and prints the relay's resident
//! size, its open streams and sessions, and the frames delivered, every interval.
//!
//! A bench, not a test: it asserts nothing and takes minutes. Build the relay first:
//!
//! ```text
//! cargo build --release -p moqt-cli -p moqt-soak
//! target/release/moqt-soak --duration 600 --loss 0.02
//! ```
//!
//! Why a separate crate with a binary (not a `moqt soak` subcommand, not a criterion bench): the
//! soak drives a real relay process from the outside, like an operator's load would, so the
//! relay's RSS is measured alone; it belongs to no library, and `benches/`' criterion harness
//! times functions, which a 10-minute run is not.

mod peers;
mod proxy;
mod rng;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Soak a relay: churn, stalls and loss for a while, reporting its memory over time.
#[derive(Debug, Parser)]
struct Args {
    /// The `moqt` binary [default: `moqt` next to this program].
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Seconds to run.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Seconds between reports.
    #[arg(long, default_value_t = 30)]
    interval: u64,
    /// Probability that the proxy drops a datagram (each direction).
    #[arg(long, default_value_t = 0.02)]
    loss: f64,
    /// Publisher slots (each publisher lives 20–90 s, then a new one takes its place).
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Subscriber slots (each subscription lives 5–40 s).
    #[arg(long, default_value_t = 40)]
    subscribers: usize,
    /// Share of subscriptions that stall (never read).
    #[arg(long, default_value_t = 0.1)]
    stall: f64,
    /// Frames per second per publisher (one group per second).
    #[arg(long, default_value_t = 30)]
    fps: u64,
    /// Frame size in bytes.
    #[arg(long, default_value_t = 2000)]
    size: usize,
    /// Random seed (the run's churn repeats with the same seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Extra flags for `moqt relay` (after `--`).
    #[arg(last = true)]
    relay_args: Vec<String>,
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .map_or(0, |kib: u64| kib * 1024)
}

async fn metrics(addr: SocketAddr) -> String {
    let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").await;
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text)).await;
    text
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

const MIB: f64 = (1 << 20) as f64;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.relay_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("moqt"),
    };
    if !bin.exists() {
        bail!("{} not found: build it (cargo build --release -p moqt-cli) or pass --relay-bin", bin.display());
    }
    let mut relay = tokio::process::Command::new(&bin)
        .args(["relay", "--listen", "127.0.0.1:0", "--max-sessions-per-address", "100000", "--idle-timeout", "5"])
        .args(&args.relay_args)
        .env("MOQT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = relay.id().context("relay pid")?;
    let mut lines = BufReader::new(relay.stderr.take().context("relay stderr")?).lines();
    let (mut fp, mut addr) = (None, None);
    while fp.is_none() || addr.is_none() {
        let line = lines.next_line().await?.context("the relay exited before it listened")?;
        if let Some(f) = line.strip_prefix("certificate sha256 ") {
            fp = Some(f.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("listening on ") {
            addr = rest.split_whitespace().next().and_then(|a| a.parse::<SocketAddr>().ok());
        }
    }
    let (fp, addr) = (fp.unwrap_or_default(), addr.context("relay address")?);
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let proxy_stats = Arc::new(proxy::ProxyStats::default());
    let front = proxy::start(addr, args.loss, args.seed, proxy_stats.clone()).await?;
    let start = Instant::now();
    let until = start + Duration::from_secs(args.duration);
    let world = peers::World {
        url: format!("moqt://{front}"),
        fingerprint: fp,
        fps: args.fps,
        size: args.size,
        stall: args.stall,
        live: Arc::new(Mutex::new(Vec::new())),
        stats: Arc::new(peers::PeerStats::default()),
        until,
    };
    let start_rss = rss(pid);
    println!(
        "soak: relay pid {pid} on {addr}, proxy {front} (loss {:.1}%), {} publishers, {} subscribers ({:.0}% stall), \
         {} s; RSS at start {:.1} MiB",
        args.loss * 100.0,
        args.publishers,
        args.subscribers,
        args.stall * 100.0,
        args.duration,
        start_rss as f64 / MIB
    );
    let mut tasks = Vec::new();
    for slot in 0..args.publishers {
        tasks.push(tokio::spawn(peers::publisher(world.clone(), slot, args.seed * 1000 + slot as u64)));
    }
    for slot in 0..args.subscribers {
        tasks.push(tokio::spawn(peers::subscriber(world.clone(), args.seed * 7919 + slot as u64)));
    }

    println!("     t   rss_mib  sessions  subs  open_streams  cache_mib  queued_mib  frames_out  delivered  dropped_groups  lost_pkts");
    let mut peak = start_rss;
    let mut tick = tokio::time::interval(Duration::from_secs(args.interval.max(1)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let m = metrics(addr).await;
        let r = rss(pid);
        peak = peak.max(r);
        let s = &world.stats;
        println!(
            "{:>6} {:>9.1} {:>9} {:>5} {:>13} {:>10.1} {:>11.1} {:>11} {:>10} {:>15} {:>10}",
            (now - start).as_secs(),
            r as f64 / MIB,
            metric(&m, "moqt_sessions"),
            metric(&m, "moqt_subscriptions"),
            metric(&m, "moqt_open_streams"),
            metric(&m, "moqt_cache_bytes") as f64 / MIB,
            metric(&m, "moqt_queued_bytes") as f64 / MIB,
            metric(&m, "moqt_frames_out_total"),
            s.frames_delivered.load(Ordering::Relaxed),
            metric(&m, "moqt_groups_dropped_total"),
            proxy_stats.dropped.load(Ordering::Relaxed),
        );
        if now >= until {
            break;
        }
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    // Everyone has left: what the relay still holds is what it would leak.
    let settle = Instant::now();
    let m = loop {
        let m = metrics(addr).await;
        if (metric(&m, "moqt_sessions") == 0 && metric(&m, "moqt_open_streams") == 0)
            || settle.elapsed() > Duration::from_secs(30)
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let end_rss = rss(pid);
    let s = &world.stats;
    println!(
        "soak: done after {} s | RSS start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB (all peers gone: {} sessions, {} streams, \
         cache {:.1} MiB) | {} sessions, {} frames published, {} delivered, {} subscription errors, {} connect errors, \
         {} packets dropped by the proxy",
        start.elapsed().as_secs(),
        start_rss as f64 / MIB,
        peak as f64 / MIB,
        end_rss as f64 / MIB,
        metric(&m, "moqt_sessions"),
        metric(&m, "moqt_open_streams"),
        metric(&m, "moqt_cache_bytes") as f64 / MIB,
        s.sessions.load(Ordering::Relaxed),
        s.frames_published.load(Ordering::Relaxed),
        s.frames_delivered.load(Ordering::Relaxed),
        s.subscribe_errors.load(Ordering::Relaxed),
        s.connect_errors.load(Ordering::Relaxed),
        proxy_stats.dropped.load(Ordering::Relaxed),
    );
    let limits: Vec<&str> = m
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("_total") && !l.ends_with(" 0"))
        .filter(|l| {
            !l.starts_with("moqt_frames") && !l.starts_with("moqt_bytes") && !l.starts_with("moqt_sessions_total")
        })
        .collect();
    println!("soak: counters at the end:\n  {}", limits.join("\n  "));
    let _ = relay.start_kill();
    Ok(())
}
