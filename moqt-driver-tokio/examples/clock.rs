//! `clock`: moq-dev's clock. The publisher writes track `seconds` of a broadcast (default
//! `clock`): one group per minute, numbered by minutes since the Unix epoch, whose frame 0 is
//! `"YYYY-MM-DD HH:MM:"` (UTC) followed by one `"SS"` frame per second. The subscriber waits for
//! the broadcast's announcement, subscribes, and prints `"YYYY-MM-DD HH:MM:SS"` per second. The
//! track itself is `moqt-clock`'s (the same code as `moqt-driver-smol`'s `smol_clock` example).
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

use anyhow::Result;
use clap::{Args, Parser};
use common::ConnectArgs;
use moqt_clock::{BROADCAST, TRACK};
use moqt_driver_tokio::Server;

/// The port both sides use by default (the `relay` example's port).
pub const DEFAULT_PORT: u16 = 4443;

/// Serves the clock under `broadcast` to every session `server` accepts (no relay needed).
pub async fn serve(server: Server, broadcast: &str) {
    common::serve_each(server, |session| {
        let broadcast = broadcast.to_owned();
        async move {
            // Ends with the session.
            let _ = moqt_clock::publish(&session, &broadcast, &moqt_driver_tokio::runtime(), None).await;
        }
    })
    .await
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

/// moq-dev's clock: serve it, publish it to a relay, or print it.
#[derive(Parser)]
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
    match Mode::parse() {
        Mode::Server { listen, broadcast } => {
            let (server, fingerprint) = common::bind(listen)?;
            common::print_ready("clock", server.local_addr(), common::BOTH, &fingerprint, "subscribe");
            serve(server, &broadcast).await;
            Ok(())
        }
        Mode::Publish(c) => {
            let runtime = moqt_driver_tokio::runtime();
            common::run_client(&c.connect, &c.url, |session| async move {
                eprintln!("publishing {}/{TRACK}", c.broadcast);
                Ok(moqt_clock::publish(&session, &c.broadcast, &runtime, c.count).await?)
            })
            .await
        }
        Mode::Subscribe(c) => {
            common::run_client(&c.connect, &c.url, |session| async move {
                moqt_clock::subscribe(&session, &c.broadcast, c.count, |line| println!("{line}")).await?;
                Ok(())
            })
            .await
        }
    }
}
