//! `broadcast`: the server publishes the broadcast `server.broadcast` on every session; every
//! track of it carries one group of one frame (`"FRAME n"`, n = 1, 2, 3, …) every 100 ms. The
//! client discovers broadcasts by announcement under the root, subscribes to track `index` of
//! each and prints the frames. See `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example broadcast -- server [--listen 127.0.0.1:4469]
//! cargo run -p moqt-driver-tokio --example broadcast -- client [URL] --fingerprint HEX [--count N]
//! ```

pub mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use common::ConnectArgs;
use moqt_driver_tokio::{BroadcastRequest, Server, Session};
use tokio::task::JoinSet;

/// The port both sides use by default.
pub const DEFAULT_PORT: u16 = 4469;
/// The broadcast the server publishes.
pub const BROADCAST: &str = "server.broadcast";
/// The track the client subscribes to (the server answers any track name).
pub const TRACK: &str = "index";
/// One group per this interval.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Serves every session `server` accepts (until the server stops).
pub async fn serve(server: Server) {
    common::serve_each(server, serve_session).await
}

/// Publishes [`BROADCAST`] on `session` until the session ends: each track the peer subscribes to
/// gets its own 100 ms generator, starting at group 1.
pub async fn serve_session(session: Session) {
    let broadcast = session.publish(BROADCAST);
    let mut generators = JoinSet::new();
    // Create the usual track up front; other names are created when asked for.
    generators.spawn(common::generate(broadcast.create_track(TRACK), INTERVAL, None));
    loop {
        tokio::select! {
            request = broadcast.next_request() => match request {
                Some(BroadcastRequest::Track(name)) => {
                    generators.spawn(common::generate(broadcast.create_track(&name), INTERVAL, None));
                }
                // No history is kept beyond the session's cache: dropping the request refuses it
                // (NOT_FOUND).
                Some(BroadcastRequest::Fetch(_) | BroadcastRequest::FetchServed { .. }) => {}
                None => break,
            },
            _ = session.closed() => break,
        }
    }
}

/// Prints (through `on_frame`) every frame of track [`TRACK`] of every announced broadcast;
/// returns after `count` frames if given.
pub async fn client(session: &Session, count: Option<u64>, on_frame: impl FnMut(&common::Frame)) -> Result<u64> {
    common::watch(session, TRACK, count, on_frame).await
}

/// A server publishing one frame every 100 ms, and a client that finds it by announcement.
#[derive(Parser)]
enum Mode {
    /// Publish `server.broadcast` to every client.
    Server {
        #[arg(long, default_value_t = common::loopback(DEFAULT_PORT))]
        listen: SocketAddr,
    },
    /// Discover broadcasts and print their frames.
    Client {
        /// https://host:port/path (WebTransport) or moqt://host:port (raw QUIC).
        #[arg(default_value_t = format!("https://127.0.0.1:{DEFAULT_PORT}/broadcast"))]
        url: String,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Exit after this many frames.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Mode::parse() {
        Mode::Server { listen } => {
            let (server, fingerprint) = common::bind(listen)?;
            common::print_ready("broadcast", server.local_addr(), common::BOTH, &fingerprint, "client");
            serve(server).await;
            Ok(())
        }
        Mode::Client { url, connect, count } => {
            let print = |f: &common::Frame| println!("{} group {}: {}", f.broadcast, f.group, f.payload);
            common::run_client(&connect, &url, |session| async move { client(&session, count, print).await }).await?;
            Ok(())
        }
    }
}
