//! `relay`: a moq-lite relay from the library API: one UDP port for raw QUIC and WebTransport
//! (`transport::Listener`), a generated certificate, and the relay driver (`relay::Relay`), which
//! routes announcements, subscriptions and fetches between every session it serves. See
//! `README.md` next to this file.
//!
//! ```text
//! cargo run -p moqt-driver-tokio --example relay -- [--listen 127.0.0.1:4443]
//! ```

pub mod common;

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Parser;
use moqt_driver_tokio::relay::{Relay, RelayConfig};
use moqt_driver_tokio::tls::Fingerprint;
use moqt_driver_tokio::transport::Listener;
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::Perspective;
use moqt_proto::Dialect;

/// The port the relay listens on by default (also the `clock` example's default).
pub const DEFAULT_PORT: u16 = 4443;

/// Binds `listen`, reports the bound address and certificate through `ready`, then relays every
/// session until the server stops.
pub async fn run(listen: SocketAddr, ready: impl FnOnce(SocketAddr, Fingerprint)) -> Result<()> {
    let (config, fingerprint) = common::server_config(listen)?;
    let mut server = Listener::bind(config).with_context(|| format!("cannot listen on {listen}"))?;
    // A relay's hop id only needs to differ from the relays it may link with.
    let hop_id = u64::from_be_bytes(fingerprint.as_bytes()[..8].try_into().expect("8 bytes")) >> 11;
    let node = NodeConfig { hop_id: hop_id.max(1), ..NodeConfig::default() };
    let relay = Relay::start(RelayConfig { node, ..RelayConfig::default() }, moqt_driver_tokio::runtime());
    ready(server.local_addr(), fingerprint);
    while let Some(accepted) = server.accept().await {
        eprintln!("session from {}: {} over {:?}", accepted.peer, accepted.version, accepted.kind);
        let relay = relay.clone();
        tokio::spawn(async move {
            relay.serve(accepted.connection, accepted.version, Perspective::Server, Dialect::Draft).await;
        });
    }
    Ok(())
}

#[derive(Parser)]
struct Cli {
    /// UDP address for raw QUIC and WebTransport.
    #[arg(long, default_value_t = common::loopback(DEFAULT_PORT))]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    run(cli.listen, |addr, fingerprint| {
        eprintln!("listening on {addr} ({})", common::BOTH);
        eprintln!("certificate sha256 {fingerprint}");
        eprintln!(
            "try: cargo run -p moqt-driver-tokio --example clock -- publish --fingerprint {fingerprint}\n\
             \x20    cargo run -p moqt-driver-tokio --example clock -- subscribe --fingerprint {fingerprint}"
        );
    })
    .await
}
