//! moq-dev's clock: publish or subscribe a `seconds` track (one group per minute, frame 0
//! `"YYYY-MM-DD HH:MM:"`, then `"SS"` each second), through a relay or served directly. See
//! `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example clock -- server [--listen 127.0.0.1:4443]
//! cargo run -p moqt-driver-tokio --example clock -- publish [URL] --fingerprint HEX [--broadcast clock]
//! cargo run -p moqt-driver-tokio --example clock -- subscribe [URL] --fingerprint HEX [--count N]
//! ```

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use moqt_driver_tokio::examples::{self, clock, ConnectArgs};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Args)]
struct Client {
    /// https://host:port/path (WebTransport) or moqt://host:port (raw QUIC).
    #[arg(default_value_t = clock::default_url())]
    url: String,
    #[command(flatten)]
    connect: ConnectArgs,
    /// The broadcast path.
    #[arg(long, default_value = clock::BROADCAST)]
    broadcast: String,
    /// Stop after this many seconds.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Subcommand)]
enum Mode {
    /// Serve the clock directly to every session (no relay).
    Server {
        #[arg(long, default_value_t = clock::default_listen())]
        listen: SocketAddr,
        /// The broadcast path.
        #[arg(long, default_value = clock::BROADCAST)]
        broadcast: String,
    },
    /// Publish the clock to a relay.
    Publish(Client),
    /// Print the clock, one line per second.
    Subscribe(Client),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::Server { listen, broadcast } => {
            let (server, fingerprint) = examples::bind(listen)?;
            examples::print_ready("clock", server.local_addr(), &fingerprint, "subscribe");
            clock::serve(server, &broadcast).await
        }
        Mode::Publish(c) => {
            let (client, session) = c.connect.connect(&c.url).await?;
            eprintln!(
                "connected: {} over {:?}; publishing {}/{}",
                session.version(),
                session.kind(),
                c.broadcast,
                clock::TRACK
            );
            clock::publish(&session, &c.broadcast, c.count).await?;
            examples::close(&client, &session).await;
            Ok(())
        }
        Mode::Subscribe(c) => {
            let (client, session) = c.connect.connect(&c.url).await?;
            eprintln!("connected: {} over {:?}", session.version(), session.kind());
            clock::subscribe(&session, &c.broadcast, c.count, |line| println!("{line}")).await?;
            examples::close(&client, &session).await;
            Ok(())
        }
    }
}
