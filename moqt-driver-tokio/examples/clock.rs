//! `clock`: moq-dev's clock. The publisher writes track [`TRACK`] of a broadcast (default
//! `clock`): one group per minute, numbered by minutes since the Unix epoch, whose frame 0 is
//! `"YYYY-MM-DD HH:MM:"` (UTC) followed by one `"SS"` frame per second. The subscriber waits for
//! the broadcast's announcement, subscribes, and prints `"YYYY-MM-DD HH:MM:SS"` per second.
//!
//! The publisher connects to a relay (the `relay` example, `moqt relay`, or moq-dev's
//! moq-relay), or serves the clock itself (`server` mode) to every session it accepts. See
//! `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example clock -- server [--listen 127.0.0.1:4443]
//! cargo run -p moqt-driver-tokio --example clock -- publish [URL] --fingerprint HEX [--broadcast clock]
//! cargo run -p moqt-driver-tokio --example clock -- subscribe [URL] --fingerprint HEX [--count N]
//! ```

pub mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use common::ConnectArgs;
use moqt_driver_tokio::{Announcement, GroupPublisher, Server, Session, SubscribeParams};

/// The port both sides use by default (the `relay` example's port).
pub const DEFAULT_PORT: u16 = 4443;
/// The default broadcast.
pub const BROADCAST: &str = "clock";
/// The track name moq-dev's clock uses.
pub const TRACK: &str = "seconds";

/// UTC `(year, month, day, hour, minute, second)` of a Unix time.
pub fn utc(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    // Days to civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = secs % 86_400;
    (year, month, day, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

/// `(group base "YYYY-MM-DD HH:MM:", "SS", minutes since the epoch)` of a time.
pub fn parts(at: SystemTime) -> (String, String, u64) {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d, h, mi, s) = utc(secs);
    (format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:"), format!("{s:02}"), secs / 60)
}

/// Publishes the clock under `broadcast` on `session`; stops after `count` seconds if given
/// (else runs until the session ends).
pub async fn publish(session: &Session, broadcast: &str, count: Option<u64>) -> Result<()> {
    let publisher = session.publish(broadcast);
    let track = publisher.create_track(TRACK);
    let mut group: Option<(u64, GroupPublisher)> = None;
    let mut sent = 0;
    while count.is_none_or(|c| sent < c) {
        if let Some(info) = session.close_info() {
            anyhow::bail!("session closed: code {:#x} {}", info.code, info.reason);
        }
        let now = SystemTime::now();
        let (base, seconds, minute) = parts(now);
        if group.as_ref().is_none_or(|(m, _)| *m != minute) {
            // A new minute: finish the previous group, open one whose frame 0 is the date.
            if let Some((_, old)) = group.take() {
                old.finish();
            }
            let g = track.open_group(minute);
            let _ = g.write_frame(Bytes::from(base));
            group = Some((minute, g));
        }
        if let Some((_, g)) = &group {
            // Fails only when no subscriber holds the group; the next minute starts afresh.
            let _ = g.write_frame(Bytes::from(seconds));
        }
        sent += 1;
        // Sleep to the start of the next second.
        let into =
            now.duration_since(UNIX_EPOCH).map_or(Duration::ZERO, |d| Duration::from_nanos(d.subsec_nanos().into()));
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(into)).await;
    }
    if let Some((_, g)) = group {
        g.finish();
    }
    Ok(())
}

/// Waits for `broadcast` to be announced, subscribes to its clock and hands each
/// `"YYYY-MM-DD HH:MM:SS"` line to `line`; returns after `count` lines if given.
pub async fn subscribe(
    session: &Session,
    broadcast: &str,
    count: Option<u64>,
    mut line: impl FnMut(&str),
) -> Result<u64> {
    let mut announced = session.announced("/").await.context("cannot ask for announcements")?;
    let want = moqt_proto::Path::new(broadcast);
    loop {
        match announced.next().await? {
            Some(Announcement::Active(path)) if path == want => break,
            Some(_) => {}
            None => anyhow::bail!("announcements ended before {broadcast} appeared"),
        }
    }
    let params = SubscribeParams { ordered: true, max_latency: 60_000, ..common::subscribe_params() };
    let mut track = session.subscribe(broadcast, TRACK, params).await?;
    let mut printed = 0;
    if count == Some(0) {
        return Ok(0);
    }
    while let Some(mut group) = track.next_group().await? {
        let Ok(Some(base)) = group.next_frame().await else { continue };
        let base = String::from_utf8_lossy(&base).into_owned();
        while let Ok(Some(seconds)) = group.next_frame().await {
            line(&format!("{base}{}", String::from_utf8_lossy(&seconds)));
            printed += 1;
            if count.is_some_and(|c| printed >= c) {
                return Ok(printed);
            }
        }
    }
    Ok(printed)
}

/// Serves the clock under `broadcast` to every session `server` accepts (no relay needed).
pub async fn serve(server: Server, broadcast: &str) {
    common::serve_each(server, |session| {
        let broadcast = broadcast.to_owned();
        async move {
            // Ends with the session.
            let _ = publish(&session, &broadcast, None).await;
        }
    })
    .await
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Args)]
struct Client {
    /// https://host:port/path (WebTransport) or moqt://host:port (raw QUIC).
    #[arg(default_value_t = format!("https://127.0.0.1:{DEFAULT_PORT}/"))]
    url: String,
    #[command(flatten)]
    connect: ConnectArgs,
    /// The broadcast path.
    #[arg(long, default_value = BROADCAST)]
    broadcast: String,
    /// Stop after this many seconds.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Subcommand)]
enum Mode {
    /// Serve the clock directly to every session (no relay).
    Server {
        #[arg(long, default_value_t = common::loopback(DEFAULT_PORT))]
        listen: SocketAddr,
        /// The broadcast path.
        #[arg(long, default_value = BROADCAST)]
        broadcast: String,
    },
    /// Publish the clock to a relay.
    Publish(Client),
    /// Print the clock, one line per second.
    Subscribe(Client),
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().mode {
        Mode::Server { listen, broadcast } => {
            let (server, fingerprint) = common::bind(listen)?;
            common::print_ready("clock", server.local_addr(), common::BOTH, &fingerprint, "subscribe");
            serve(server, &broadcast).await;
            Ok(())
        }
        Mode::Publish(c) => {
            let (endpoint, session) = c.connect.connect(&c.url).await?;
            eprintln!("connected: {} over {:?}; publishing {}/{TRACK}", session.version(), session.kind(), c.broadcast);
            publish(&session, &c.broadcast, c.count).await?;
            common::close(&endpoint, &session).await;
            Ok(())
        }
        Mode::Subscribe(c) => {
            let (endpoint, session) = c.connect.connect(&c.url).await?;
            eprintln!("connected: {} over {:?}", session.version(), session.kind());
            subscribe(&session, &c.broadcast, c.count, |line| println!("{line}")).await?;
            common::close(&endpoint, &session).await;
            Ok(())
        }
    }
}
