//! The moq clock on smol, compatible with moq-dev's clock: track `seconds`, one group per minute,
//! frame 0 is `"YYYY-MM-DD HH:MM:"` (UTC), then one `"SS"` frame per second. The track is
//! `moqt-clock`'s, the same code as `moqt-driver-tokio`'s `clock` example, here on smol's runtime.
//!
//! ```text
//! cargo run -p moqt-driver-smol --example smol_clock -- publish|subscribe URL BROADCAST \
//!     [--tls-fingerprint HEX | --tls-disable-verify] [--version lite-0N] [--count N]
//! ```
//!
//! `URL` is `moqt://host:port` (raw QUIC) or `https://host:port/path` (WebTransport). The
//! subscriber prints one `YYYY-MM-DD HH:MM:SS` line per second; `--count` stops either side after
//! that many seconds.

use moqt_clock::TRACK;
use moqt_driver_smol::{Client, Session, Verification};
use moqt_proto::Version;

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
        const USAGE: &str = "usage: smol_clock publish|subscribe URL BROADCAST \
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

    /// Publishes the clock on `session`, or subscribes to it and hands each line to `line`.
    pub async fn run(&self, session: &Session, line: impl FnMut(&str)) -> anyhow::Result<()> {
        if self.publish {
            eprintln!("publishing {}/{TRACK}", self.broadcast);
            moqt_clock::publish(session, &self.broadcast, &moqt_driver_smol::runtime(), self.count).await?;
        } else {
            moqt_clock::subscribe(session, &self.broadcast, self.count, line).await?;
        }
        Ok(())
    }
}

#[allow(dead_code)] // the tests include this file for `Options`
fn main() -> anyhow::Result<()> {
    let options = Options::parse(std::env::args().skip(1))?;
    smol::block_on(async {
        let session = options.connect().await?;
        eprintln!("connected to {} ({}, {:?})", options.url, session.version(), session.kind());
        options.run(&session, |l| println!("{l}")).await?;
        session.close(0, "");
        Ok(())
    })
}
