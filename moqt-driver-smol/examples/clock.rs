//! The moq clock on smol, compatible with moq-dev's clock: track `seconds`, one group per minute,
//! frame 0 is `"YYYY-MM-DD HH:MM:"` (UTC), then one `"SS"` frame per second.
//!
//! ```text
//! cargo run -p moqt-driver-smol --example clock -- publish|subscribe URL BROADCAST \
//!     [--tls-fingerprint HEX | --tls-disable-verify] [--version lite-0N] [--count N]
//! ```
//!
//! `URL` is `moqt://host:port` (raw QUIC) or `https://host:port/path` (WebTransport). The
//! subscriber prints one `YYYY-MM-DD HH:MM:SS` line per second; `--count` stops either side after
//! that many seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use moqt_driver_smol::Verification;
use moqt_driver_smol::{Announcement, Client, Session, SubscribeParams};
use moqt_proto::Version;

/// The track name moq-dev's clock uses.
pub const TRACK: &str = "seconds";

/// Command-line options shared by both sides.
#[derive(Debug, Clone)]
pub struct Options {
    pub publish: bool,
    pub url: String,
    pub broadcast: String,
    pub verification: Verification,
    pub version: Option<Version>,
    pub count: Option<u64>,
}

impl Options {
    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Options> {
        const USAGE: &str = "usage: clock publish|subscribe URL BROADCAST \
                             [--tls-fingerprint HEX | --tls-disable-verify] [--version lite-0N] [--count N]";
        let mut positional = Vec::new();
        let (mut verification, mut version, mut count) = (Verification::SystemRoots, None, None);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value\n{USAGE}"));
            match arg.as_str() {
                "--tls-fingerprint" => {
                    let fp = value()?.parse().map_err(|e| anyhow::anyhow!("--tls-fingerprint: {e}"))?;
                    verification = Verification::pinned(fp);
                }
                "--tls-disable-verify" => verification = Verification::InsecureNoVerification,
                "--version" => version = Some(value()?.parse().map_err(|e| anyhow::anyhow!("--version: {e}"))?),
                "--count" => count = Some(value()?.parse()?),
                s if s.starts_with("--") => anyhow::bail!("unknown option {s}\n{USAGE}"),
                _ => positional.push(arg),
            }
        }
        let [mode, url, broadcast]: [String; 3] = positional.try_into().map_err(|_| anyhow::anyhow!(USAGE))?;
        let publish = match mode.as_str() {
            "publish" => true,
            "subscribe" => false,
            _ => anyhow::bail!(USAGE),
        };
        Ok(Options { publish, url, broadcast, verification, version, count })
    }

    /// Connects on smol.
    pub async fn connect(&self) -> anyhow::Result<Session> {
        let mut config = moqt_driver_smol::client_config(self.verification.clone());
        if let Some(v) = self.version {
            config = config.with_version(v);
        }
        Ok(Client::new(config)?.connect(&self.url).await?)
    }
}

/// `(group base "YYYY-MM-DD HH:MM:", "SS", minutes since the epoch)` for a UTC time.
pub fn clock_parts(at: SystemTime) -> (String, String, u64) {
    let t = time::OffsetDateTime::from(at);
    let base = format!("{:04}-{:02}-{:02} {:02}:{:02}:", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute());
    let minute = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60);
    (base, format!("{:02}", t.second()), minute)
}

/// Publishes the clock on `session` under `broadcast`; stops after `count` seconds if given.
pub async fn publish(session: &Session, broadcast: &str, count: Option<u64>) -> anyhow::Result<()> {
    let broadcast = session.publish(broadcast);
    let track = broadcast.create_track(TRACK);
    let mut group = None;
    let mut sent = 0;
    while count.is_none_or(|c| sent < c) {
        let now = SystemTime::now();
        let (base, seconds, minute) = clock_parts(now);
        // A new minute: finish the old group and start one whose first frame is the date.
        if group.as_ref().is_none_or(|(m, _)| *m != minute) {
            if let Some((_, old)) = group.take() {
                moqt_driver_smol::GroupPublisher::finish(old);
            }
            let g = track.open_group(minute);
            g.write_frame(Bytes::from(base))?;
            group = Some((minute, g));
        }
        group.as_ref().expect("a group is open").1.write_frame(Bytes::from(seconds))?;
        sent += 1;
        // Sleep to the start of the next second.
        let into =
            now.duration_since(UNIX_EPOCH).map_or(Duration::ZERO, |d| Duration::from_nanos(d.subsec_nanos().into()));
        smol::Timer::after(Duration::from_secs(1) - into).await;
    }
    if let Some((_, g)) = group {
        g.finish();
    }
    Ok(())
}

/// Subscribes to the clock in `broadcast` once it is announced and hands each
/// `YYYY-MM-DD HH:MM:SS` line to `line`; stops after `count` lines if given.
pub async fn subscribe(
    session: &Session,
    broadcast: &str,
    count: Option<u64>,
    mut line: impl FnMut(String),
) -> anyhow::Result<()> {
    let mut announced = session.announced("").await?;
    loop {
        match announced.next().await? {
            Some(Announcement::Active(path)) if path.as_str() == broadcast => break,
            Some(_) => {}
            None => anyhow::bail!("announcements ended before {broadcast} appeared"),
        }
    }
    let params = SubscribeParams { ordered: true, max_latency: 60_000, ..SubscribeParams::default() };
    let mut track = session.subscribe(broadcast, TRACK, params).await?;
    let mut printed = 0;
    while let Some(mut group) = track.next_group().await? {
        let Some(base) = group.next_frame().await? else { continue };
        let base = String::from_utf8_lossy(&base).into_owned();
        while let Some(seconds) = group.next_frame().await? {
            line(format!("{base}{}", String::from_utf8_lossy(&seconds)));
            printed += 1;
            if count.is_some_and(|c| printed >= c) {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[allow(dead_code)] // the tests include this file for its functions
fn main() -> anyhow::Result<()> {
    let options = Options::parse(std::env::args().skip(1))?;
    smol::block_on(async {
        let session = options.connect().await?;
        eprintln!("connected to {} ({}, {:?})", options.url, session.version(), session.kind());
        if options.publish {
            eprintln!("publishing {}/{TRACK}", options.broadcast);
            publish(&session, &options.broadcast, options.count).await?;
        } else {
            subscribe(&session, &options.broadcast, options.count, |l| println!("{l}")).await?;
        }
        session.close(0, "");
        Ok(())
    })
}
