//! The server subscribes back to whatever the client announces and republishes it to the client.
//! See `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example echo -- server [--listen 127.0.0.1:4444]
//! cargo run -p moqt-driver-tokio --example echo -- client [URL] --fingerprint HEX [--count N]
//! ```

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use moqt_driver_tokio::examples::{self, echo, ConnectArgs};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Echo every broadcast a client announces back to it.
    Server {
        #[arg(long, default_value_t = echo::default_listen())]
        listen: SocketAddr,
    },
    /// Publish `client.echo` and print what comes back.
    Client {
        /// https://host:port/path (WebTransport) or moqt://host:port (raw QUIC).
        #[arg(default_value_t = echo::default_url())]
        url: String,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Exit after this many echoed frames.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::Server { listen } => {
            let (server, fingerprint) = examples::bind(listen)?;
            examples::print_ready("echo", server.local_addr(), &fingerprint, "client");
            echo::serve(server).await
        }
        Mode::Client { url, connect, count } => {
            let (client, session) = connect.connect(&url).await?;
            eprintln!("connected: {} over {:?}", session.version(), session.kind());
            echo::client(&session, count, |f| println!("echoed {} group {}: {}", f.broadcast, f.group, f.payload))
                .await?;
            examples::close(&client, &session).await;
            Ok(())
        }
    }
}
