//! `moqt bench`: a load generator in one process. It publishes M test-pattern broadcasts and
//! subscribes N sessions to them (round robin), against any relay, over raw QUIC or WebTransport,
//! in any version, and reports each second and at the end: delivered frames/s, groups lost,
//! latency percentiles from an HDR histogram, connection failures, and its own CPU use.
//!
//! Every subscriber owns its counters and histogram behind an uncontended lock; the reporter
//! drains them once a second.

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
    /// Seconds to measure once every subscriber is connected.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Subscriber max latency in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub max_latency: u64,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<bool>,
}

/// `a - b` in seconds, negative when `a` is earlier.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    a.saturating_duration_since(b).as_secs_f64() - b.saturating_duration_since(a).as_secs_f64()
}

/// This process's CPU time (user + system) in seconds, from /proc.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
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
    let client = Arc::new(Client::new(config)?.with_options(options));
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
    let mut counters: Vec<Arc<Mutex<Counters>>> = Vec::new();
    let params = SubscribeParams { max_latency: args.max_latency, ..SubscribeParams::default() };
    let start = Instant::now();
    let ramp = Duration::from_secs_f64(args.ramp.max(0.0));
    let mut reporter = Reporter::new(args.json, start + ramp);
    for i in 0..args.subscribers {
        let due = start + ramp.mul_f64(i as f64 / args.subscribers as f64);
        while Instant::now() < due {
            let wait = due.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            tokio::time::sleep(wait).await;
            reporter.maybe_report(&counters, &failures, &ended);
        }
        let c = Arc::new(Mutex::new(Counters { latency: Some(histogram()), ..Counters::default() }));
        counters.push(c.clone());
        let (client, url, name, track) =
            (client.clone(), args.connect.url.clone(), names[i % names.len()].clone(), args.track.clone());
        let (failures, ended) = (failures.clone(), ended.clone());
        tokio::spawn(async move {
            let session = match client.connect(&url).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%e, "subscriber connect failed");
                    failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            if subscriber(&session, &name, &track, params, &c).await.is_err() {
                ended.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let end = start + ramp + Duration::from_secs_f64(args.duration);
    while Instant::now() < end {
        tokio::time::sleep(end.saturating_duration_since(Instant::now()).min(Duration::from_millis(200))).await;
        reporter.maybe_report(&counters, &failures, &ended);
    }
    reporter.total(&counters, &failures, &ended);
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

/// Collects the subscribers' counters into interval and whole-run figures.
struct Reporter {
    json: bool,
    measuring_from: Instant,
    last: Instant,
    last_cpu: f64,
    first_cpu: Option<(Instant, f64)>,
    run: Counters,
    run_histogram: Histogram<u64>,
}

impl Reporter {
    fn new(json: bool, measuring_from: Instant) -> Self {
        Self {
            json,
            measuring_from,
            last: Instant::now(),
            last_cpu: cpu_seconds(),
            first_cpu: None,
            run: Counters::default(),
            run_histogram: histogram(),
        }
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
            if self.first_cpu.is_none() {
                self.first_cpu = Some((self.last, self.last_cpu));
            }
            self.run.frames += sum.frames;
            self.run.bytes += sum.bytes;
            self.run.lost += sum.lost;
            let _ = self.run_histogram.add(&h);
        }
        (sum, h)
    }

    fn maybe_report(&mut self, counters: &[Arc<Mutex<Counters>>], failures: &AtomicU64, ended: &AtomicU64) {
        if self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let (sum, h) = self.drain(counters);
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64();
        let cpu = cpu_seconds();
        let report = self.report(&sum, &h, secs, cpu - self.last_cpu, counters.len(), failures, ended, None);
        self.last = now;
        self.last_cpu = cpu;
        self.print(&report);
    }

    fn total(&mut self, counters: &[Arc<Mutex<Counters>>], failures: &AtomicU64, ended: &AtomicU64) {
        let _ = self.drain(counters);
        let (from, cpu0) = self.first_cpu.unwrap_or((self.measuring_from, self.last_cpu));
        let secs = from.elapsed().as_secs_f64();
        let run = std::mem::take(&mut self.run);
        let h = self.run_histogram.clone();
        let report = self.report(&run, &h, secs, cpu_seconds() - cpu0, counters.len(), failures, ended, Some(true));
        self.print(&report);
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        c: &Counters,
        h: &Histogram<u64>,
        secs: f64,
        cpu: f64,
        subscribers: usize,
        failures: &AtomicU64,
        ended: &AtomicU64,
        total: Option<bool>,
    ) -> Report {
        let secs = secs.max(1e-9);
        let ms = |q: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1000.0 };
        Report {
            t: signed_secs(Instant::now(), self.measuring_from),
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
            cpu_percent: cpu / secs * 100.0,
            total,
        }
    }

    fn print(&self, r: &Report) {
        if self.json {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        } else {
            println!(
                "{}t={:.0}s subs={} {:.0} frames/s {:.1} Mbit/s lost={} latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} \
                 connect_failures={} ended={} cpu={:.0}%",
                if r.total.is_some() { "total " } else { "" },
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
        }
    }
}
