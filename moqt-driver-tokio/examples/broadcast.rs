//! A server publishing one group of one frame every 100 ms, and a client that discovers it by
//! announcement and prints the frames. See `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example broadcast -- server [--listen 127.0.0.1:4469]
//! cargo run -p moqt-driver-tokio --example broadcast -- client [URL] --fingerprint HEX [--count N]
//! ```

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use moqt_driver_tokio::examples::{self, broadcast, ConnectArgs};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Publish `server.broadcast` to every client.
    Server {
        #[arg(long, default_value_t = broadcast::default_listen())]
        listen: SocketAddr,
    },
    /// Discover broadcasts and print their frames.
    Client {
        /// https://host:port/path (WebTransport) or moqt://host:port (raw QUIC).
        #[arg(default_value_t = broadcast::default_url())]
        url: String,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Exit after this many frames.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::Server { listen } => {
            let (server, fingerprint) = examples::bind(listen)?;
            examples::print_ready("broadcast", server.local_addr(), &fingerprint, "client");
            broadcast::serve(server).await
        }
        Mode::Client { url, connect, count } => {
            let (client, session) = connect.connect(&url).await?;
            eprintln!("connected: {} over {:?}", session.version(), session.kind());
            broadcast::client(&session, count, |f| println!("{} group {}: {}", f.broadcast, f.group, f.payload))
                .await?;
            examples::close(&client, &session).await;
            Ok(())
        }
    }
}
