//! `echo`: the client publishes `client.echo` (track `index`, one group of one frame `"FRAME n"`
//! every 100 ms); the server subscribes back to every broadcast the client announces and
//! republishes it, under the same path, to the same client; the client watches announcements and
//! prints the frames it gets back. See `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example echo -- server [--listen 127.0.0.1:4444]
//! cargo run -p moqt-driver-tokio --example echo -- client [URL] --fingerprint HEX [--count N]
//! ```

pub mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use common::ConnectArgs;
use moqt_driver_tokio::{Announcement, Server, Session};
use tokio::task::{AbortHandle, JoinSet};

/// The port both sides use by default.
pub const DEFAULT_PORT: u16 = 4444;
/// The broadcast the client publishes (and gets back).
pub const BROADCAST: &str = "client.echo";
/// The track echoed.
pub const TRACK: &str = "index";
/// The client publishes one group per this interval.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Serves every session `server` accepts (until the server stops).
pub async fn serve(server: Server) {
    common::serve_each(server, |session| async move {
        if let Err(e) = serve_session(session).await {
            eprintln!("session ended: {e:#}");
        }
    })
    .await
}

/// Echoes every broadcast the peer announces back to it, until the session ends.
pub async fn serve_session(session: Session) -> Result<()> {
    let mut announced = session.announced("/").await.context("cannot ask for announcements")?;
    let mut echoes = JoinSet::new();
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    while let Some(a) = announced.next().await? {
        match a {
            Announcement::Active(path) => {
                let path = path.as_str().to_owned();
                eprintln!("echoing {path}");
                let handle = echoes.spawn(echo(session.clone(), path.clone()));
                if let Some(old) = running.insert(path, handle) {
                    old.abort();
                }
            }
            Announcement::Ended(path) => {
                eprintln!("{path} ended");
                if let Some(old) = running.remove(path.as_str()) {
                    old.abort();
                }
            }
        }
    }
    Ok(())
}

/// Subscribes to `path`/[`TRACK`] and republishes each group (same sequence, same frames) under the
/// same path on the same session.
async fn echo(session: Session, path: String) {
    let mut upstream = match session.subscribe(&path, TRACK, common::subscribe_params()).await {
        Ok(reader) => reader,
        Err(e) => return eprintln!("cannot subscribe to {path}/{TRACK}: {e}"),
    };
    let broadcast = session.publish(&path);
    let track = broadcast.create_track(TRACK);
    while let Ok(Some(mut group)) = upstream.next_group().await {
        let out = track.open_group(group.sequence());
        while let Ok(Some(frame)) = group.next_frame().await {
            // Fails only if the client dropped its copy of the group; keep reading the next one.
            let _ = out.write_frame(frame);
        }
        out.finish();
    }
}

/// Publishes [`BROADCAST`] and prints (through `on_frame`) the frames echoed back; returns after
/// `count` echoed frames if given.
pub async fn client(session: &Session, count: Option<u64>, on_frame: impl FnMut(&common::Frame)) -> Result<u64> {
    let broadcast = session.publish(BROADCAST);
    let generator = tokio::spawn(common::generate(broadcast.create_track(TRACK), INTERVAL, None));
    let result = common::watch(session, TRACK, count, on_frame).await;
    generator.abort();
    drop(broadcast);
    result
}

/// A server echoing back whatever a client announces, and the client.
#[derive(Parser)]
enum Mode {
    /// Echo every broadcast a client announces back to it.
    Server {
        #[arg(long, default_value_t = common::loopback(DEFAULT_PORT))]
        listen: SocketAddr,
    },
    /// Publish `client.echo` and print what comes back.
    Client {
        /// https://host:port/path (WebTransport) or moqt://host:port (raw QUIC).
        #[arg(default_value_t = format!("https://127.0.0.1:{DEFAULT_PORT}/echo"))]
        url: String,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Exit after this many echoed frames.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Mode::parse() {
        Mode::Server { listen } => {
            let (server, fingerprint) = common::bind(listen)?;
            common::print_ready("echo", server.local_addr(), common::BOTH, &fingerprint, "client");
            serve(server).await;
            Ok(())
        }
        Mode::Client { url, connect, count } => {
            let print = |f: &common::Frame| println!("echoed {} group {}: {}", f.broadcast, f.group, f.payload);
            common::run_client(&connect, &url, |session| async move { client(&session, count, print).await }).await?;
            Ok(())
        }
    }
}
