//! `moqt bench`: a load generator in one process. It publishes M test-pattern broadcasts and
//! subscribes N sessions to them (round robin), against any relay, over raw QUIC or WebTransport,
//! in any version, and reports each second and at the end: delivered frames/s, groups lost,
//! latency percentiles from an HDR histogram, connection failures, and its own CPU use.
//!
//! Every subscriber owns its counters and histogram behind an uncontended lock; the reporter
//! drains them once a second.
//!
//! `--watch-pid` adds another process's CPU (from /proc, per delivered frame) and RSS to every
//! report: point it at the relay. `--step N` ramps instead of holding: it adds N subscribers,
//! lets them settle, measures `--step-secs`, and goes on until a step loses a group, delivers
//! under 97 % of its frames, or passes `--stop-p99-ms`; the capacity is the last step that passed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use moqt_driver_quinn::{Client, Session, SessionOptions};
use moqt_driver_tokio::transport::ClientConfig;
use moqt_proto::session::SubscribeParams;
use serde::Serialize;

use crate::cli::ConnectArgs;
use crate::client_cmd::{pattern_frame, pattern_latency};

/// `moqt bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Subscriber sessions.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Publisher sessions, one broadcast each (0: subscribe to broadcasts published elsewhere).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Broadcast names are PREFIX/0, PREFIX/1, …
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// The track name.
    #[arg(long, default_value = "pattern")]
    pub track: String,
    /// Frames per second per publisher.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// Frame size in bytes (at least 16: send time and counter).
    #[arg(long, default_value_t = 8192)]
    pub size: usize,
    /// Frames per group.
    #[arg(long, default_value_t = 30)]
    pub group: u64,
    /// Seconds over which the subscribers connect (evenly spread).
    #[arg(long, default_value_t = 5.0)]
    pub ramp: f64,
    /// Seconds to measure once every subscriber is connected (and one group has passed).
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Subscriber max latency in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub max_latency: u64,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also report this process's CPU per delivered frame and its RSS (the relay's pid).
    #[arg(long)]
    pub watch_pid: Option<u32>,
    /// Capacity search: add this many subscribers per step (after `--subscribers` at first).
    #[arg(long, default_value_t = 0)]
    pub step: usize,
    /// Seconds each step is measured (after one second to connect and one to settle).
    #[arg(long, default_value_t = 6.0)]
    pub step_secs: f64,
    /// A step fails when its p99 latency passes this many milliseconds.
    #[arg(long, default_value_t = 200.0)]
    pub stop_p99_ms: f64,
    /// The capacity search stops here.
    #[arg(long, default_value_t = 5000)]
    pub max_subscribers: usize,
    /// Subscribers that share one UDP socket.
    #[arg(long, default_value_t = 10)]
    pub subscribers_per_socket: usize,
}

/// One subscriber's counters since the last report.
#[derive(Default)]
struct Counters {
    frames: u64,
    bytes: u64,
    lost: u64,
    latency: Option<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// What one report says.
#[derive(Debug, Serialize)]
struct Report {
    /// Seconds since measuring began (negative while ramping up).
    t: f64,
    subscribers: usize,
    frames_per_sec: f64,
    mbit_per_sec: f64,
    groups_lost: u64,
    latency_ms_p50: f64,
    latency_ms_p90: f64,
    latency_ms_p99: f64,
    latency_ms_max: f64,
    connect_failures: u64,
    sessions_ended: u64,
    cpu_percent: f64,
    /// The watched process's CPU use, per delivered frame, and its resident memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    relay_cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relay_us_per_frame: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relay_rss_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<bool>,
    /// A capacity-search step's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<bool>,
    /// Capacity search: the last step that passed, and why the search stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
}

/// `a - b` in seconds, negative when `a` is earlier.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    a.saturating_duration_since(b).as_secs_f64() - b.saturating_duration_since(a).as_secs_f64()
}

/// This process's CPU time (user + system) in seconds, from /proc.
fn cpu_seconds() -> f64 {
    proc_stat("self").0
}

/// A process's CPU time (user + system) in seconds and resident memory in bytes, from
/// /proc/PID/stat (assuming 100 ticks per second and 4 KiB pages, as on Linux x86-64).
fn proc_stat(pid: &str) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return (0.0, 0.0) };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, rss field 24 (12, 13 and 22 after the name).
    ((num(11) + num(12)) / 100.0, num(21) * 4096.0)
}

pub async fn run(mut args: BenchArgs) -> Result<()> {
    args.connect.url = args.connect.url()?;
    args.connect.jwt = None;
    if args.size < 16 {
        bail!("--size must be at least 16 bytes");
    }
    if args.publishers == 0 && args.subscribers == 0 {
        bail!("nothing to do: no publishers and no subscribers");
    }
    let mut config = ClientConfig::new(args.connect.verification()?);
    if let Some(v) = args.connect.version {
        config.versions = vec![v];
    }
    config.runtime = Some(moqt_driver_tokio::runtime());
    config.resolver = Some(Arc::new(moqt_driver_tokio::TokioResolver));
    config.tcp = Some(Arc::new(moqt_driver_tokio::TokioTcp));
    config.websocket_fallback = !args.connect.no_websocket_fallback;
    let options = SessionOptions { max_pending_groups: 64, ..SessionOptions::default() };
    let client = Arc::new(Client::new(config.clone())?.with_options(options.clone()));
    // Subscribers share a UDP socket only in small numbers: one socket receiving for hundreds of
    // connections overflows its receive buffer in every fan-out burst, and the retransmissions
    // would show up as the relay's latency.
    let per_socket = args.subscribers_per_socket.max(1);
    let mut clients: Vec<Arc<Client>> = Vec::new();
    let broadcasts = args.publishers.max(1);
    let names: Vec<String> = (0..broadcasts).map(|i| format!("{}/{i}", args.prefix)).collect();

    // Publishers first: each waits for its broadcast to be announced back by the relay.
    let mut publishers = Vec::new();
    for name in names.iter().take(args.publishers) {
        let session = client.connect(&args.connect.url).await.with_context(|| format!("publisher {name}"))?;
        let broadcast = session.publish(name);
        let track = broadcast.create_track(&args.track);
        let (fps, size, group) = (args.fps, args.size, args.group.max(1));
        publishers.push(tokio::spawn(async move {
            let _keep = (&session, &broadcast);
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / fps));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut frame = 0u64;
            let mut current = None;
            loop {
                tick.tick().await;
                if frame % group == 0 {
                    if let Some(g) = current.take() {
                        moqt_driver_quinn::GroupPublisher::finish(g);
                    }
                    current = Some(track.open_group(frame / group));
                }
                if let Some(g) = &current {
                    if g.write_frame(pattern_frame(frame, size)).is_err() {
                        break;
                    }
                }
                frame += 1;
            }
        }));
    }
    if args.publishers > 0 {
        let watcher = client.connect(&args.connect.url).await.context("watcher")?;
        let mut announced = watcher.announced(&args.prefix).await?;
        let mut seen = 0;
        while seen < args.publishers {
            match tokio::time::timeout(Duration::from_secs(10), announced.next()).await {
                Ok(Ok(Some(moqt_driver_quinn::Announcement::Active(_)))) => seen += 1,
                Ok(Ok(Some(_))) => {}
                _ => bail!("the relay did not announce the bench broadcasts"),
            }
        }
    }

    // Subscribers, ramped up.
    let failures = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let params = SubscribeParams { max_latency: args.max_latency, ..SubscribeParams::default() };
    let mut spawn = |i: usize| -> Result<Arc<Mutex<Counters>>> {
        if i / per_socket >= clients.len() {
            clients.push(Arc::new(Client::new(config.clone())?.with_options(options.clone())));
        }
        let client = clients[i / per_socket].clone();
        let c = Arc::new(Mutex::new(Counters { latency: Some(histogram()), ..Counters::default() }));
        let (url, name, track) = (args.connect.url.clone(), names[i % names.len()].clone(), args.track.clone());
        let (failures, ended, counters) = (failures.clone(), ended.clone(), c.clone());
        tokio::spawn(async move {
            let session = match client.connect(&url).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%e, "subscriber connect failed");
                    failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            if subscriber(&session, &name, &track, params, &counters).await.is_err() {
                ended.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(c)
    };
    let mut counters: Vec<Arc<Mutex<Counters>>> = Vec::new();
    let start = Instant::now();
    let ramp = Duration::from_secs_f64(args.ramp.max(0.0));
    // Late joiners first get the current group from the relay's cache (old send times): measure
    // from one group after the last one joined.
    let settle = Duration::from_secs_f64((args.group.max(1) as f64 / args.fps).clamp(0.0, 5.0));
    let mut reporter = Reporter::new(args.json, start + ramp + settle, args.watch_pid);
    for i in 0..args.subscribers {
        let due = start + ramp.mul_f64(i as f64 / args.subscribers as f64);
        while Instant::now() < due {
            let wait = due.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            tokio::time::sleep(wait).await;
            reporter.maybe_report(&counters, &failures, &ended);
        }
        counters.push(spawn(i)?);
    }
    if args.step > 0 {
        // Capacity search: one step at a time until one fails.
        let mut capacity = None;
        let stopped = loop {
            let from = counters.len();
            if from >= args.max_subscribers {
                break "max-subscribers".to_string();
            }
            let to = (from + args.step).min(args.max_subscribers);
            let connect = Instant::now();
            for i in from..to {
                let due = connect + Duration::from_secs(1).mul_f64((i - from) as f64 / (to - from) as f64);
                tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                counters.push(spawn(i)?);
            }
            // Late joiners get the current group from the cache: let that pass before measuring.
            tokio::time::sleep(settle.max(Duration::from_secs(1))).await;
            reporter.restart(&counters);
            let end = Instant::now() + Duration::from_secs_f64(args.step_secs.max(1.0));
            while Instant::now() < end {
                tokio::time::sleep(end.saturating_duration_since(Instant::now()).min(Duration::from_millis(200))).await;
                reporter.maybe_report(&counters, &failures, &ended);
            }
            let r = reporter.window(&counters, &failures, &ended, Mark::Step);
            let expected = counters.len() as f64 * args.fps;
            reporter.print(&r);
            let why = if r.connect_failures > 0 || r.sessions_ended > 0 {
                Some(format!("{} connect failures, {} ended", r.connect_failures, r.sessions_ended))
            } else if r.groups_lost > 0 {
                Some(format!("{} groups lost at {} subscribers", r.groups_lost, r.subscribers))
            } else if r.latency_ms_p99 > args.stop_p99_ms {
                Some(format!("p99 {:.1} ms at {} subscribers", r.latency_ms_p99, r.subscribers))
            } else if r.frames_per_sec < 0.97 * expected {
                Some(format!("{:.0} of {expected:.0} frames/s at {} subscribers", r.frames_per_sec, r.subscribers))
            } else {
                None
            };
            match why {
                Some(why) => break why,
                None => capacity = Some(r.subscribers),
            }
        };
        let mut r = reporter.window(&counters, &failures, &ended, Mark::Total);
        r.capacity = Some(capacity.unwrap_or(0));
        r.stopped = Some(stopped);
        reporter.print(&r);
    } else {
        let end = start + ramp + settle + Duration::from_secs_f64(args.duration);
        while Instant::now() < end {
            tokio::time::sleep(end.saturating_duration_since(Instant::now()).min(Duration::from_millis(200))).await;
            reporter.maybe_report(&counters, &failures, &ended);
        }
        let r = reporter.window(&counters, &failures, &ended, Mark::Total);
        reporter.print(&r);
    }
    for p in publishers {
        p.abort();
    }
    Ok(())
}

/// One subscriber: reads every group and frame, counting gaps and pattern latency.
async fn subscriber(
    session: &Session,
    name: &str,
    track: &str,
    params: SubscribeParams,
    counters: &Mutex<Counters>,
) -> Result<()> {
    let mut reader = session.subscribe(name, track, params).await?;
    let mut last: Option<u64> = None;
    while let Some(mut group) = reader.next_group().await? {
        let seq = group.sequence();
        let gap = last.map_or(0, |l| seq.saturating_sub(l + 1));
        last = Some(last.map_or(seq, |l| l.max(seq)));
        counters.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.lost += gap;
        while let Some(frame) = group.next_frame().await? {
            let latency = pattern_latency(&frame);
            let mut c = counters.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            c.frames += 1;
            c.bytes += frame.len() as u64;
            if let (Some(l), Some(h)) = (latency, c.latency.as_mut()) {
                h.saturating_record(l.max(1));
            }
        }
    }
    Ok(())
}

/// What a whole-window report is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Step,
    Total,
}

/// CPU readings at one instant: ours and the watched process's.
#[derive(Clone, Copy)]
struct Reading {
    at: Instant,
    cpu: f64,
    watched: f64,
}

/// Collects the subscribers' counters into interval and whole-window figures.
struct Reporter {
    json: bool,
    watch: Option<String>,
    measuring_from: Instant,
    last: Reading,
    /// Where the current window began (set at the first report once measuring).
    window: Option<Reading>,
    run: Counters,
    run_histogram: Histogram<u64>,
}

impl Reporter {
    fn new(json: bool, measuring_from: Instant, watch_pid: Option<u32>) -> Self {
        let watch = watch_pid.map(|p| p.to_string());
        let mut r = Self {
            json,
            watch,
            measuring_from,
            last: Reading { at: Instant::now(), cpu: 0.0, watched: 0.0 },
            window: None,
            run: Counters::default(),
            run_histogram: histogram(),
        };
        r.last = r.read();
        r
    }

    fn read(&self) -> Reading {
        let watched = self.watch.as_deref().map_or(0.0, |p| proc_stat(p).0);
        Reading { at: Instant::now(), cpu: cpu_seconds(), watched }
    }

    /// Starts a new window now, discarding what was counted so far.
    fn restart(&mut self, counters: &[Arc<Mutex<Counters>>]) {
        self.measuring_from = Instant::now();
        let _ = self.drain(counters);
        self.run = Counters::default();
        self.run_histogram.reset();
        self.last = self.read();
        self.window = Some(self.last);
    }

    fn drain(&mut self, counters: &[Arc<Mutex<Counters>>]) -> (Counters, Histogram<u64>) {
        let mut sum = Counters::default();
        let mut h = histogram();
        let measuring = Instant::now() >= self.measuring_from;
        for c in counters {
            let Ok(mut c) = c.lock() else { continue };
            sum.frames += c.frames;
            sum.bytes += c.bytes;
            sum.lost += c.lost;
            if let Some(l) = c.latency.as_mut() {
                let _ = h.add(&*l);
                l.reset();
            }
            c.frames = 0;
            c.bytes = 0;
            c.lost = 0;
        }
        if measuring {
            if self.window.is_none() {
                self.window = Some(self.last);
            }
            self.run.frames += sum.frames;
            self.run.bytes += sum.bytes;
            self.run.lost += sum.lost;
            let _ = self.run_histogram.add(&h);
        }
        (sum, h)
    }

    fn maybe_report(&mut self, counters: &[Arc<Mutex<Counters>>], failures: &AtomicU64, ended: &AtomicU64) {
        if self.last.at.elapsed() < Duration::from_secs(1) {
            return;
        }
        let (sum, h) = self.drain(counters);
        let now = self.read();
        let report = self.report(&sum, &h, self.last, now, counters.len(), failures, ended);
        self.last = now;
        self.print(&report);
    }

    /// The figures of the whole window so far.
    fn window(
        &mut self,
        counters: &[Arc<Mutex<Counters>>],
        failures: &AtomicU64,
        ended: &AtomicU64,
        mark: Mark,
    ) -> Report {
        let _ = self.drain(counters);
        let now = self.read();
        self.last = now;
        let from = self.window.unwrap_or(now);
        let run = std::mem::take(&mut self.run);
        let h = std::mem::replace(&mut self.run_histogram, histogram());
        let mut r = self.report(&run, &h, from, now, counters.len(), failures, ended);
        match mark {
            Mark::Step => r.step = Some(true),
            Mark::Total => r.total = Some(true),
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        c: &Counters,
        h: &Histogram<u64>,
        from: Reading,
        to: Reading,
        subscribers: usize,
        failures: &AtomicU64,
        ended: &AtomicU64,
    ) -> Report {
        let secs = to.at.duration_since(from.at).as_secs_f64().max(1e-9);
        let ms = |q: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1000.0 };
        let watched = to.watched - from.watched;
        Report {
            t: signed_secs(to.at, self.measuring_from),
            subscribers,
            frames_per_sec: c.frames as f64 / secs,
            mbit_per_sec: c.bytes as f64 * 8.0 / secs / 1e6,
            groups_lost: c.lost,
            latency_ms_p50: ms(0.5),
            latency_ms_p90: ms(0.9),
            latency_ms_p99: ms(0.99),
            latency_ms_max: if h.is_empty() { 0.0 } else { h.max() as f64 / 1000.0 },
            connect_failures: failures.load(Ordering::Relaxed),
            sessions_ended: ended.load(Ordering::Relaxed),
            cpu_percent: (to.cpu - from.cpu) / secs * 100.0,
            relay_cpu_percent: self.watch.as_ref().map(|_| watched / secs * 100.0),
            relay_us_per_frame: self.watch.as_ref().map(|_| watched * 1e6 / c.frames.max(1) as f64),
            relay_rss_mb: self.watch.as_deref().map(|p| proc_stat(p).1 / 1e6),
            total: None,
            step: None,
            capacity: None,
            stopped: None,
        }
    }

    fn print(&self, r: &Report) {
        if self.json {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
            return;
        }
        let mut line = format!(
            "{}t={:.0}s subs={} {:.0} frames/s {:.1} Mbit/s lost={} latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} \
             connect_failures={} ended={} cpu={:.0}%",
            if r.total.is_some() {
                "total "
            } else if r.step.is_some() {
                "step "
            } else {
                ""
            },
            r.t,
            r.subscribers,
            r.frames_per_sec,
            r.mbit_per_sec,
            r.groups_lost,
            r.latency_ms_p50,
            r.latency_ms_p90,
            r.latency_ms_p99,
            r.latency_ms_max,
            r.connect_failures,
            r.sessions_ended,
            r.cpu_percent
        );
        if let (Some(cpu), Some(us), Some(rss)) = (r.relay_cpu_percent, r.relay_us_per_frame, r.relay_rss_mb) {
            line += &format!(" relay: cpu={cpu:.0}% {us:.1} us/frame rss={rss:.1} MB");
        }
        if let (Some(c), Some(why)) = (r.capacity, &r.stopped) {
            line += &format!(" capacity={c} stopped: {why}");
        }
        println!("{line}");
    }
}
