//! A moq-lite relay built from the library API (`transport::Server` + `relay::Relay`). See
//! `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example relay -- [--listen 127.0.0.1:4443]
//! ```

use std::net::SocketAddr;

use clap::Parser;
use moqt_driver_tokio::examples::relay;

#[derive(Parser)]
struct Cli {
    /// UDP address for raw QUIC and WebTransport.
    #[arg(long, default_value_t = relay::default_listen())]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    relay::run(cli.listen, |addr, fingerprint| {
        eprintln!("listening on {addr} (raw QUIC + WebTransport)");
        eprintln!("certificate sha256 {fingerprint}");
        eprintln!(
            "try: cargo run -p moqt-driver-tokio --example clock -- publish --fingerprint {fingerprint}\n\
             \x20    cargo run -p moqt-driver-tokio --example clock -- subscribe --fingerprint {fingerprint}"
        );
    })
    .await
}
