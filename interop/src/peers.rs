//! Starting the clients of a cell (our `moqt`, moq-tokio's `clock`, `moq-clock`) and checking the
//! version and transport each one reports when it connects.

use crate::cells::{vname, Cell, Ctx, Transport};
use crate::process::Proc;
use crate::relay::Relay;
use crate::READY;

/// Our binary's `connected to URL (moq-lite-0N, KIND)`: checks the version and transport.
pub fn our_connected(p: &Proc, cell: &Cell) -> Result<String, String> {
    let line = p.wait_err("\"connected to\"", READY, |l| l.starts_with("connected to"))?;
    let inner = line.rsplit_once('(').map(|(_, r)| r.trim_end_matches(')')).unwrap_or("");
    let (got, kind) = inner.split_once(", ").unwrap_or((inner, ""));
    let version_ok =
        if cell.version == 0 { got.starts_with("moq-lite-0") } else { got == format!("moq-{}", vname(cell.version)) };
    if !version_ok || kind != cell.transport.ours() {
        return Err(format!(
            "{}: negotiated {inner:?}, wanted {} over {}",
            p.name,
            vname(cell.version),
            cell.transport.ours()
        ));
    }
    Ok(got.to_string())
}

/// Their `INFO …: connected version=moq-lite-0N` (moq-tokio's client, and moq-native's).
pub fn their_connected(p: &Proc, version: u8) -> Result<String, String> {
    let line = p.wait_err("\"connected\" log line", READY, |l| {
        l.contains(" connected") && l.contains("version=") || l.contains("ERROR")
    })?;
    if line.contains("ERROR") {
        return Err(format!("{}: {}", p.name, line.trim()));
    }
    let v = line.split("version=").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("?").to_string();
    let ok = if version == 0 { v.starts_with("moq-lite-0") } else { v == format!("moq-lite-0{version}") };
    if !ok {
        return Err(format!("{}: negotiated {v}, wanted moq-{}", p.name, vname(version)));
    }
    Ok(v)
}

/// moq-tokio's `clock` against `url`.
pub fn their_clock(ctx: &Ctx, cell: &Cell, relay: &Relay, role: &str, version: u8) -> Result<Proc, String> {
    let url = cell.transport.url(&relay.addr);
    let pinned = format!("moq-lite-0{version}");
    let pin: &[&str] = if version == 0 { &[] } else { &["--connect-version", &pinned] };
    let b = cell.broadcast();
    // No WebSocket race on QUIC / WebTransport cells; WebSocket cells dial ws:// themselves.
    let race: &[&str] = if cell.transport == Transport::Ws { &[] } else { &["--connect-websocket-enabled=false"] };
    let args = [
        &["--connect", &url, "--broadcast", &b][..],
        pin,
        &["--connect-tls-fingerprint", &relay.fingerprint][..],
        race,
        &["--connect-once", role][..],
    ]
    .concat();
    Proc::spawn(&ctx.opts.peers.join("clock"), &args, &cell.dir(&ctx.opts), &format!("clock-{role}"))
}

/// Our `moqt` binary with `args`, logged as `name` in the cell's directory.
pub fn our_moqt(ctx: &Ctx, cell: &Cell, name: &str, args: &[&str]) -> Result<Proc, String> {
    Proc::spawn(&ctx.opts.moqt, args, &cell.dir(&ctx.opts), name)
}

/// `moq-clock` (moq-native 0.14 / moq-net 0.1) against `relay`. It has no fingerprint option, so
/// it skips verification; it always reconnects, so a failure shows as a timeout. Its
/// `--websocket-enabled` is a clap `SetTrue` flag that cannot be turned off on the command line,
/// so the WebSocket race is disabled through its environment variable.
pub fn moq_clock(ctx: &Ctx, cell: &Cell, relay: &Relay, role: &str, version: u8) -> Result<Proc, String> {
    let url = cell.transport.url(&relay.addr);
    let pinned = format!("moq-lite-0{version}");
    let pin: &[&str] = if version == 0 { &[] } else { &["--client-version", &pinned] };
    let b = cell.broadcast();
    let args = [&["--url", &url, "--broadcast", &b][..], pin, &["--tls-disable-verify", role]].concat();
    Proc::spawn_env(
        &ctx.opts.peers.join("moq-clock"),
        &args,
        &[("MOQ_CLIENT_WEBSOCKET_ENABLED", "false")],
        &cell.dir(&ctx.opts),
        &format!("moq-clock-{role}"),
    )
}
