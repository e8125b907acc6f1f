//! A small moq-lite relay on smol: raw QUIC and WebTransport on one UDP port, a freshly generated
//! certificate, and the shared relay driver (`moqt_driver_quinn::relay::Relay`).
//!
//! ```text
//! cargo run -p moqt-driver-smol --example smol_relay -- [--listen ADDR]
//! ```
//!
//! It prints `certificate sha256 HEX` and `listening on ADDR` on stderr once ready; clients pin
//! the fingerprint (`--tls-fingerprint HEX`). It runs until killed.

use std::net::SocketAddr;

use moqt_driver_smol::relay::{Relay, RelayConfig};
use moqt_driver_smol::{Fingerprint, Identity, Listener};
use moqt_proto::relay::NodeConfig;
use moqt_proto::session::Perspective;
use moqt_proto::Dialect;

/// Binds `listen`, reports the bound address and certificate through `ready`, then relays every
/// session it accepts until the server stops.
pub async fn run(listen: SocketAddr, ready: impl FnOnce(SocketAddr, Fingerprint)) -> anyhow::Result<()> {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1", "::1"])?;
    let fingerprint = identity.fingerprint();
    let mut server = Listener::bind(moqt_driver_smol::server_config(listen, identity))?;

    // The hop id only has to differ between relays that may link to each other: take it from
    // this relay's own (random) certificate.
    let hop_id = fingerprint.as_bytes()[..8].iter().fold(0u64, |h, b| h << 8 | u64::from(*b)) >> 11;
    let relay = Relay::start(
        RelayConfig { node: NodeConfig { hop_id: hop_id.max(1), ..NodeConfig::default() }, ..RelayConfig::default() },
        moqt_driver_smol::runtime(),
    );

    ready(server.local_addr(), fingerprint);
    while let Some(accepted) = server.accept().await {
        let relay = relay.clone();
        smol::spawn(async move {
            relay.serve(accepted.connection, accepted.version, Perspective::Server, Dialect::Draft).await;
        })
        .detach();
    }
    Ok(())
}

#[allow(dead_code)] // the tests include this file for `run`
fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut listen: SocketAddr = "[::]:4443".parse()?;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or_else(|| anyhow::anyhow!("--listen needs ADDR"))?.parse()?,
            _ => anyhow::bail!("usage: smol_relay [--listen ADDR]"),
        }
    }
    smol::block_on(run(listen, |addr, fingerprint| {
        eprintln!("certificate sha256 {fingerprint}");
        eprintln!("listening on {addr}");
    }))
}
