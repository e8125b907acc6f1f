//! The adversarial suite (issue "Bounded memory and CPU under hostile and faulty peers"): a real
//! `moqt relay` process on loopback with small budgets, attacked over real QUIC (and TCP for
//! HTTP) by the raw peers of `attack/`. Each attack test asserts that
//! (a) the relay's memory stays within the configured budget, by its own accounting (the
//!     `/metrics` gauges) and by its resident size (VmRSS, peak above the baseline), and
//! (b) a well-behaved `moqt pub` → `moqt sub --stats` pair through the same relay keeps
//!     delivering with no lost group while the attack runs;
//! and that the limit meant to stop the attack was hit (its `/metrics` counter).
//!
//! Each test prints one `ADVERSARIAL:` line with its figures (attacker bytes, peak RSS, the good
//! pair's frames and worst p99) and the limit counters hit; docs/limits.md has the table.
//! The tests run one at a time (a shared lock): they measure the relay's memory.

mod attack;
mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use attack::relay::{limits_hit, metric, GoodPair, PeakRss, Relay};
use attack::Sent;
use bytes::Bytes;
use moqt_driver_quinn::ConnectionError;

const MIB: u64 = 1 << 20;
/// The relay's configured memory budgets (attack/relay.rs LIMITS): node receive + cache.
const NODE_BUDGET: u64 = 16 * MIB + 16 * MIB;
/// Allocator and runtime slack on top of the budgets.
const SLACK: u64 = 32 * MIB;
/// What one attacking connection may hold in quinn (1 MiB receive + 1 MiB send window).
const PER_CONN: u64 = 2 * MIB;

/// A byte count for the figures.
fn human(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The measured side of one attack.
struct Attack<'a> {
    name: &'static str,
    relay: &'a Relay,
    good: GoodPair,
    baseline: u64,
    peak: PeakRss,
    start_frames: u64,
}

impl<'a> Attack<'a> {
    /// Starts the good pair, lets it settle, and records the baseline.
    fn begin(name: &'static str, relay: &'a Relay) -> Attack<'a> {
        let mut good = GoodPair::start(relay);
        good.more_frames(25);
        let baseline = relay.rss();
        let peak = PeakRss::start(relay.pid);
        let start_frames = good.mark();
        Attack { name, relay, good, baseline, peak, start_frames }
    }

    /// Checks both promises and prints the figures; `sent` is what the attacker sent.
    fn end(mut self, sent: u64, budget: u64) {
        // The good pair still delivers after the attack peaked.
        self.good.more_frames(50);
        let peak = self.peak.finish();
        let m = self.relay.metrics();
        let frames = self.good.frames() - self.start_frames;
        let grown = peak.saturating_sub(self.baseline);
        eprintln!(
            "ADVERSARIAL: {} | attacker sent {} | relay RSS baseline {:.1} MiB, peak {:.1} MiB (+{:.1}, budget {:.1}) | \
             good pair {} frames, 0 groups lost, worst p99 {} ms | limits hit: {}",
            self.name,
            human(sent),
            self.baseline as f64 / MIB as f64,
            peak as f64 / MIB as f64,
            grown as f64 / MIB as f64,
            budget as f64 / MIB as f64,
            frames,
            self.good.worst_p99(),
            limits_hit(&m).join(", ")
        );
        let recv = metric(&m, "moqt_recv_buffered_bytes");
        let cache = metric(&m, "moqt_cache_bytes");
        assert!(recv <= 16 * MIB, "receive buffer over the node budget: {recv}");
        assert!(cache <= 16 * MIB, "cache over its budget: {cache}");
        assert!(grown <= budget, "{}: RSS grew {grown} bytes, budget {budget}", self.name);
        assert!(frames >= 50, "the good pair stalled: {frames} frames");
    }
}

#[test]
fn half_frame_flood_is_flow_controlled_and_reset() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&[], 0);
    let attack = Attack::begin("half-frame flood (100 streams x 30 MiB frames, 4 MiB sent each)", &relay);
    let rt = runtime();
    let sent = Sent::default();
    let (url, fp, s) = (relay.url(), relay.fp.clone(), sent.clone());
    rt.spawn(async move {
        let c = attack::connector(&fp, false);
        let conn = c.connect(&url).await.unwrap();
        let mut subs = attack::serve_publisher(conn.clone(), vec!["evil".into()], s.clone());
        let victim = c.connect(&url).await.unwrap();
        attack::await_announced(&victim, "evil").await;
        let _hold = attack::subscribe(&victim, 0, "evil", "t", 10_000).await;
        let sub = subs.recv().await.unwrap();
        let chunk = Bytes::from(vec![0u8; 64 << 10]);
        for stream in 0..100u64 {
            let (conn, s, chunk) = (conn.clone(), s.clone(), chunk.clone());
            tokio::spawn(async move {
                let mut seq = stream;
                loop {
                    let Some(mut g) = attack::open_group(&conn, sub.id, seq, &s).await else { return };
                    let _ = g.write(attack::frame_header(30 << 20)).await;
                    for _ in 0..64 {
                        if g.write(chunk.clone()).await.is_err() {
                            break;
                        }
                        s.add(chunk.len());
                    }
                    // Stall with the frame unfinished until the relay resets it, then again.
                    let _ = g.stopped().await;
                    seq += 100;
                }
            });
        }
        std::future::pending::<()>().await;
    });
    relay.wait_metrics("a stalled partial frame was reset", |m| metric(m, "moqt_partial_timeouts_total") >= 1);
    relay.wait_metrics("reads were deferred", |m| metric(m, "moqt_reads_deferred_total") >= 1);
    attack.end(sent.get(), NODE_BUDGET + 2 * PER_CONN + 8 * MIB + SLACK);
    drop(rt);
}

#[test]
fn announce_flood_with_watchers_that_do_not_read() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&["--max-broadcasts", "3000"], 0);
    let attack = Attack::begin("announce flood (5000 paths) + 20 watchers that never read", &relay);
    let rt = runtime();
    let sent = Sent::default();
    let (url, fp, s) = (relay.url(), relay.fp.clone(), sent.clone());
    rt.spawn(async move {
        let c = attack::connector(&fp, true);
        let mut held = Vec::new();
        for _ in 0..20 {
            let w = c.connect(&url).await.unwrap();
            held.push((attack::watch(&w).await, w));
        }
        let paths: Vec<String> = (0..5000).map(|i| format!("flood/{i:05}/{}", "x".repeat(150))).collect();
        let conn = c.connect(&url).await.unwrap();
        let _subs = attack::serve_publisher(conn.clone(), paths, s);
        std::future::pending::<()>().await;
    });
    relay.wait_metrics("the origin cap refused broadcasts", |m| metric(m, "moqt_broadcasts_refused_total") >= 1);
    relay.wait_metrics("non-reading watchers were cut off", |m| metric(m, "moqt_control_overflows_total") >= 1);
    attack.end(sent.get(), NODE_BUDGET + 21 * PER_CONN + SLACK);
    drop(rt);
}

#[test]
fn a_group_that_never_ends_is_cut() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&[], 0);
    let attack = Attack::begin("a group that never ends (64 KiB frames, no FIN)", &relay);
    let rt = runtime();
    let sent = Sent::default();
    let (url, fp, s) = (relay.url(), relay.fp.clone(), sent.clone());
    rt.spawn(async move {
        let c = attack::connector(&fp, false);
        let conn = c.connect(&url).await.unwrap();
        let mut subs = attack::serve_publisher(conn.clone(), vec!["endless".into()], s.clone());
        let victim = c.connect(&url).await.unwrap();
        attack::await_announced(&victim, "endless").await;
        let _hold = attack::subscribe(&victim, 0, "endless", "t", 10_000).await;
        let sub = subs.recv().await.unwrap();
        let payload = Bytes::from(vec![7u8; 64 << 10]);
        for seq in 0.. {
            let Some(mut g) = attack::open_group(&conn, sub.id, seq, &s).await else { return };
            while g.write(attack::frame_header(payload.len())).await.is_ok() && g.write(payload.clone()).await.is_ok() {
                s.add(payload.len());
            }
        }
    });
    relay.wait_metrics("the endless group was cut", |m| metric(m, "moqt_groups_cut_total") >= 2);
    attack.end(sent.get(), NODE_BUDGET + 2 * PER_CONN + SLACK);
    drop(rt);
}

#[test]
fn a_hundred_stalled_subscribers() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&[], 0);
    let attack = Attack::begin("100 stalled subscribers of the good track (10 connections)", &relay);
    let rt = runtime();
    let sent = Sent::default();
    let (url, fp) = (relay.url(), relay.fp.clone());
    rt.spawn(async move {
        let c = attack::connector(&fp, true);
        let mut held = Vec::new();
        for _ in 0..10 {
            let conn = c.connect(&url).await.unwrap();
            for id in 0..10 {
                held.push(attack::subscribe(&conn, id, "good", "pattern", 1000).await);
            }
            std::mem::forget(conn);
        }
        std::future::pending::<()>().await;
    });
    relay.wait_metrics("stalled subscribers' groups were dropped", |m| {
        metric(m, "moqt_groups_expired_total") + metric(m, "moqt_groups_over_budget_total") >= 100
    });
    attack.end(sent.get(), NODE_BUDGET + 10 * PER_CONN + SLACK);
    drop(rt);
}

/// `n` connection attempts from the attacker address, `parallel` at a time; the connections that
/// completed their handshake (admitted, or about to be closed with a reason).
async fn connect_many(url: &str, fp: &str, n: usize, parallel: usize) -> Vec<moqt_driver_quinn::Connection> {
    let c = std::sync::Arc::new(attack::connector(fp, false));
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (c, url, gate) = (c.clone(), url.to_owned(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            c.connect(&url).await.ok()
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        held.extend(t.await.unwrap());
    }
    held
}

fn refused(m: &str, reason: &str) -> u64 {
    metric(m, &format!("moqt_sessions_refused_total{{reason=\"{reason}\"}}"))
}

#[test]
fn a_flood_of_2000_handshakes_is_refused_with_a_reason() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay =
        Relay::start(&["--max-sessions", "300", "--max-sessions-per-address", "200", "--max-handshakes", "32"], 0);
    let attack = Attack::begin("connection flood (2000 handshakes: 250 at 16 in parallel, then 1750 at 100)", &relay);
    let rt = runtime();
    let (url, fp) = (relay.url(), relay.fp.clone());
    let before = relay.metric("moqt_quic_connections");

    // Within the handshake limit: the address fills its 200 sessions; the rest are closed with
    // LIMIT_EXCEEDED and a reason the client reads.
    let (first, reasons) = rt.block_on(async {
        let held = connect_many(&url, &fp, 250, 16).await;
        let closes = held.iter().map(|c| tokio::time::timeout(Duration::from_secs(2), c.closed()));
        let reasons: Vec<_> = futures::future::join_all(closes)
            .await
            .into_iter()
            .filter_map(|r| match r {
                Ok(ConnectionError::Closed { code, reason }) => Some((code, reason)),
                _ => None,
            })
            .collect();
        (held, reasons)
    });
    let m = relay.metrics();
    let admitted = metric(&m, "moqt_quic_connections") - before;
    assert!(admitted <= 200, "max_sessions_per_address: {admitted} admitted");
    assert!(refused(&m, "per_address") >= 1, "{m}");
    assert!(
        reasons.iter().any(|(code, r)| *code == 0x16 && r == "too many sessions from this address"),
        "a refused client reads the reason: {reasons:?}"
    );

    // Past the handshake limit and with the address full: every attempt is refused, none admitted.
    let refusals = refused(&m, "per_address") + refused(&m, "handshakes");
    let second = rt.block_on(connect_many(&url, &fp, 1750, 100));
    let m = relay.wait_metrics("every attempt was refused", |m| {
        refused(m, "per_address") + refused(m, "handshakes") >= refusals + 1750
    });
    assert_eq!(metric(&m, "moqt_quic_connections") - before, admitted, "nothing more was admitted");
    eprintln!(
        "ADVERSARIAL: connection flood: {admitted} admitted, {} refused clients read the reason, {} of 1750 \
         later attempts finished a handshake before being closed",
        reasons.len(),
        second.len()
    );
    attack.end(0, NODE_BUDGET + 300 * MIB / 4 + SLACK);
    drop((first, second));
    drop(rt);
}

#[test]
fn a_thousand_idle_http_sockets_while_health_answers() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&["--http-header-timeout", "2", "--http-max-connections-per-address", "50"], 0);
    let attack = Attack::begin("slowloris (1000 idle HTTP sockets)", &relay);
    let rt = runtime();
    let addr = relay.addr;
    let sent = Sent::default();
    let s = sent.clone();
    let sockets = rt.block_on(async move {
        let mut sockets = Vec::new();
        for _ in 0..1000 {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let Ok(mut stream) = sock.connect(addr).await else { continue };
            let head = b"GET /health HTTP/1.1\r\nHost: x\r\n";
            if tokio::io::AsyncWriteExt::write_all(&mut stream, head).await.is_ok() {
                s.add(head.len());
            }
            sockets.push(stream);
        }
        sockets
    });
    relay.wait_metrics("slots past the per-address cap were refused", |m| {
        metric(m, "moqt_http_connections_refused_total{reason=\"per_address\"}") >= 900
    });
    let (status, body) = relay.get("/health");
    assert!(status.contains("200") && body == "ok\n", "{status} {body:?}");
    relay.wait_metrics("idle sockets were dropped at the header timeout", |m| {
        metric(m, "moqt_http_connection_errors_total") >= 40
    });
    attack.end(sent.get(), NODE_BUDGET + SLACK);
    drop(sockets);
    drop(rt);
}

#[test]
fn a_datagram_flood_is_bounded() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&[], 0);
    let attack = Attack::begin("datagram flood (1100-byte datagrams, 40 MiB)", &relay);
    let rt = runtime();
    let sent = Sent::default();
    let (url, fp, s) = (relay.url(), relay.fp.clone(), sent.clone());
    rt.block_on(async move {
        let c = attack::connector(&fp, false);
        let conn = c.connect(&url).await.unwrap();
        let payload = attack::garbage(3, 1100);
        let mut n = 0u64;
        while s.get() < 40 * MIB {
            if conn.send_datagram(payload.clone()).is_ok() {
                s.add(payload.len());
            }
            n += 1;
            if n % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        std::mem::forget(conn);
    });
    attack.end(sent.get(), NODE_BUDGET + PER_CONN + SLACK);
    drop(rt);
}

#[test]
fn open_reset_stream_churn_costs_bounded_cpu() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&[], 0);
    let attack = Attack::begin("open/reset churn (20000 streams)", &relay);
    let rt = runtime();
    let sent = Sent::default();
    let (url, fp, s) = (relay.url(), relay.fp.clone(), sent.clone());
    let before = attack::cpu_ticks(relay.pid);
    rt.block_on(async move {
        let c = attack::connector(&fp, false);
        let conn = c.connect(&url).await.unwrap();
        for i in 0..10_000u64 {
            if let Ok(mut u) = conn.open_uni().await {
                let _ = u.write(Bytes::from_static(&[0x00, 0x05])).await;
                let _ = u.reset(0);
                s.add(2);
            }
            if let Ok((mut b, _r)) = conn.open_bi().await {
                let _ = b.write(Bytes::from_static(&[0x02])).await;
                let _ = b.reset(1);
                s.add(1);
            }
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        std::mem::forget(conn);
    });
    let ticks = attack::cpu_ticks(relay.pid) - before;
    eprintln!("ADVERSARIAL: open/reset churn: relay CPU {} ms for 20000 streams", ticks * 10);
    attack.end(sent.get(), NODE_BUDGET + PER_CONN + SLACK);
    drop(rt);
}

#[test]
fn garbage_on_every_stream_type() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&[], 0);
    let attack = Attack::begin("garbage on every stream type (uni and bidi, 10 type codes)", &relay);
    let rt = runtime();
    let sent = Sent::default();
    let (url, fp, s) = (relay.url(), relay.fp.clone(), sent.clone());
    let outcomes = rt.block_on(async move {
        let c = attack::connector(&fp, false);
        let mut outcomes = Vec::new();
        for (i, ty) in [0x0u8, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x3f, 0xff].into_iter().enumerate() {
            for uni in [true, false] {
                let conn = c.connect(&url).await.unwrap();
                let mut data = vec![ty];
                data.extend_from_slice(&attack::garbage(i as u64 * 2 + uni as u64, 4096));
                s.add(data.len());
                let sent = if uni {
                    match conn.open_uni().await {
                        Ok(mut u) => u.write(data.into()).await.is_ok() && u.finish().is_ok(),
                        Err(_) => false,
                    }
                } else {
                    match conn.open_bi().await {
                        Ok((mut b, _r)) => b.write(data.into()).await.is_ok() && b.finish().is_ok(),
                        Err(_) => false,
                    }
                };
                // The relay either closes the session or drops the stream; either way it lives.
                let closed = tokio::time::timeout(Duration::from_millis(300), conn.closed()).await.ok();
                outcomes.push((ty, uni, sent, closed));
                conn.close(0, "done");
            }
        }
        outcomes
    });
    let closed = outcomes.iter().filter(|o| o.3.is_some()).count();
    eprintln!("ADVERSARIAL: garbage: {} streams sent, {closed} sessions closed by the relay", outcomes.len());
    assert!(closed >= 1, "no garbage was refused: {outcomes:?}");
    attack.end(sent.get(), NODE_BUDGET + PER_CONN + SLACK);
    drop(rt);
}

#[test]
fn a_thousand_sessions_come_and_go_and_memory_returns() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&[], 0);
    let mut good = GoodPair::start(&relay);
    let rt = runtime();
    let churn = |n: usize| {
        let (url, fp) = (relay.url(), relay.fp.clone());
        rt.block_on(async move {
            let c = std::sync::Arc::new(attack::connector(&fp, false));
            let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(20));
            let mut tasks = Vec::new();
            for i in 0..n {
                let (c, url, gate) = (c.clone(), url.clone(), gate.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = gate.acquire_owned().await.unwrap();
                    let conn = c.connect(&url).await.expect("a churn session connects");
                    let _subs = attack::serve_publisher(conn.clone(), vec![format!("churn/{i}")], Sent::default());
                    let (_send, mut recv) = attack::subscribe(&conn, 0, "good", "pattern", 1000).await.unwrap();
                    // The relay answered the subscription: the session did real work.
                    let _ = tokio::time::timeout(Duration::from_secs(10), recv.read()).await;
                    conn.close(0, "bye");
                    let _ = conn.closed().await;
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            c.wait_idle().await;
        });
        relay.wait_metrics("every churned session is gone", |m| {
            metric(m, "moqt_sessions") == 2
                && metric(m, "moqt_quic_connections") == 2
                && metric(m, "moqt_subscriptions") == 1
        })
    };
    // Warm-up of the same shape: the allocator's high-water mark for 20 concurrent sessions.
    churn(1000);
    let baseline = relay.rss();
    let peak = PeakRss::start(relay.pid);
    let m = churn(1000);
    let after = relay.rss();
    let peak = peak.finish();
    good.more_frames(25);
    eprintln!(
        "ADVERSARIAL: 1000 sessions came and went (20 at a time, after a warm-up of 1000) | RSS before {:.1} MiB, \
         peak {:.1} MiB, after {:.1} MiB | {} sessions served",
        baseline as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        after as f64 / MIB as f64,
        metric(&m, "moqt_sessions_total")
    );
    assert_eq!(metric(&m, "moqt_upstream_subscriptions"), 1, "{m}");
    assert!(metric(&m, "moqt_cache_bytes") <= 16 * MIB);
    assert!(after <= baseline + 4 * MIB, "memory did not return: {baseline} -> {after}");
}

#[test]
fn a_publisher_killed_without_close_ends_its_subscribers_within_the_idle_timeout() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let relay = Relay::start(&["--idle-timeout", "2", "--failover-grace", "0"], 0);
    let mut good = GoodPair::start(&relay);
    let (url, fp) = (relay.url(), relay.fp.as_str());
    let publisher =
        common::Proc::spawn(&["pub", &url, "doomed", "--track", "pattern", "--fps", "20", "--tls-fingerprint", fp]);
    publisher.wait_err("publishing");
    let watch = common::Proc::spawn(&["announced", &url, "doomed", "--tls-fingerprint", fp, "--count", "1"]);
    assert_eq!(watch.next_out(), "+ doomed");
    let mut sub = common::Proc::spawn(&[
        "sub",
        &url,
        "doomed",
        "--track",
        "pattern",
        "--stats",
        "--tls-fingerprint",
        fp,
        "--no-reconnect",
    ]);
    assert!(sub.next_out().starts_with("sub: "));
    let killed = Instant::now();
    publisher.signal("KILL");
    let ok = sub.wait_exit();
    let learned = killed.elapsed();
    let (_, err) = sub.finish();
    let why = err.join("\n");
    assert!(!ok && why.contains("code 0x"), "the subscription ends with an error code: {why}");
    let m = relay.wait_metrics("the relay freed the publisher's state", |m| {
        metric(m, "moqt_sessions") == 2
            && metric(m, "moqt_subscriptions") == 1
            && metric(m, "moqt_upstream_subscriptions") == 1
    });
    good.more_frames(25);
    eprintln!(
        "ADVERSARIAL: vanished publisher: subscriber learned after {:.2} s (idle timeout 2 s, failover grace 0): {} | {}",
        learned.as_secs_f64(),
        why.lines().last().unwrap_or(""),
        limits_hit(&m).join(", ")
    );
}

#[test]
fn sigterm_drains_like_ctrl_c() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut relay = Relay::start(&["--drain-timeout", "1", "--next-uri", "moqt://next.example:4443"], 0);
    let good = GoodPair::start(&relay);
    relay.proc.signal("TERM");
    relay.proc.wait_err("shutting down: GOAWAY \"moqt://next.example:4443\"");
    good.subscriber.wait_err("goaway received (next uri \"moqt://next.example:4443\"); not following it");
    assert!(relay.proc.wait_exit(), "the relay exits cleanly after the drain");
}
