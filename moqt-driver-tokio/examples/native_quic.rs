//! A raw-QUIC handshake (moq-lite ALPN, no WebTransport) and a clean close. See `README.md` next
//! to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example native_quic -- server [--listen 127.0.0.1:4445] [--count N]
//! cargo run -p moqt-driver-tokio --example native_quic -- client [URL] --fingerprint HEX
//! ```

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use moqt_driver_tokio::examples::{native_quic, ConnectArgs};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Accept raw-QUIC sessions and report how each closed.
    Server {
        #[arg(long, default_value_t = native_quic::default_listen())]
        listen: SocketAddr,
        /// Exit after this many sessions.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Connect, then close cleanly.
    Client {
        /// moqt://host:port/path.
        #[arg(default_value_t = native_quic::default_url())]
        url: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::Server { listen, count } => {
            let (server, fingerprint) = native_quic::bind(listen)?;
            eprintln!("listening on {} (raw QUIC only)", server.local_addr());
            eprintln!("certificate sha256 {fingerprint}");
            eprintln!("connect with: cargo run -p moqt-driver-tokio --example native_quic -- client --fingerprint {fingerprint}");
            native_quic::serve(server, count, |r| {
                println!(
                    "session from {}: {}, closed with code {} {:?}",
                    r.peer, r.version, r.closed.code, r.closed.reason
                )
            })
            .await?;
            Ok(())
        }
        Mode::Client { url, connect } => {
            let (version, closed) = native_quic::client(&url, &connect).await?;
            println!("handshake ok: {version}; closed with code {} {:?}", closed.code, closed.reason);
            Ok(())
        }
    }
}
