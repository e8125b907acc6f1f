//! `echo`: the client publishes `client.echo` (track `index`, one group of one frame
//! `"FRAME n"` every 100 ms); the server subscribes back to every broadcast the client announces
//! and republishes it, under the same path, to the same client; the client watches announcements
//! and prints the frames it gets back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::task::{AbortHandle, JoinSet};

use crate::{Announcement, Server, Session};

/// The port both sides use by default.
pub const DEFAULT_PORT: u16 = 4444;
/// The broadcast the client publishes (and gets back).
pub const BROADCAST: &str = "client.echo";
/// The track echoed.
pub const TRACK: &str = "index";
/// The client publishes one group per this interval.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// The server's default listen address.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
}

/// The client's default URL (WebTransport; `moqt://127.0.0.1:4444` for raw QUIC).
pub fn default_url() -> String {
    format!("https://127.0.0.1:{DEFAULT_PORT}/echo")
}

/// Serves every session `server` accepts (until the server stops).
pub async fn serve(mut server: Server) -> Result<()> {
    let mut sessions = JoinSet::new();
    while let Some(session) = server.accept().await {
        eprintln!("session: {} over {:?}, path {:?}", session.version(), session.kind(), session.path());
        sessions.spawn(async move {
            if let Err(e) = serve_session(session).await {
                eprintln!("session ended: {e:#}");
            }
        });
        while sessions.try_join_next().is_some() {}
    }
    Ok(())
}

/// Echoes every broadcast the peer announces back to it, until the session ends.
pub async fn serve_session(session: Session) -> Result<()> {
    let mut announced = session.announced("/").await.context("cannot ask for announcements")?;
    let mut echoes = JoinSet::new();
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    while let Some(a) = announced.next().await? {
        match a {
            Announcement::Active(path) => {
                let path = path.as_str().to_owned();
                eprintln!("echoing {path}");
                let handle = echoes.spawn(echo(session.clone(), path.clone()));
                if let Some(old) = running.insert(path, handle) {
                    old.abort();
                }
            }
            Announcement::Ended(path) => {
                eprintln!("{path} ended");
                if let Some(old) = running.remove(path.as_str()) {
                    old.abort();
                }
            }
        }
    }
    Ok(())
}

/// Subscribes to `path`/[`TRACK`] and republishes each group (same sequence, same frames) under the
/// same path on the same session.
async fn echo(session: Session, path: String) {
    let mut upstream = match session.subscribe(&path, TRACK, super::subscribe_params()).await {
        Ok(reader) => reader,
        Err(e) => return eprintln!("cannot subscribe to {path}/{TRACK}: {e}"),
    };
    let broadcast = session.publish(&path);
    let track = broadcast.create_track(TRACK);
    while let Ok(Some(mut group)) = upstream.next_group().await {
        let out = track.open_group(group.sequence());
        while let Ok(Some(frame)) = group.next_frame().await {
            // Fails only if the client dropped its copy of the group; keep reading the next one.
            let _ = out.write_frame(frame);
        }
        out.finish();
    }
}

/// Publishes [`BROADCAST`] and prints (through `on_frame`) the frames echoed back; returns after
/// `count` echoed frames if given.
pub async fn client(session: &Session, count: Option<u64>, on_frame: impl FnMut(&super::Frame)) -> Result<u64> {
    let broadcast = session.publish(BROADCAST);
    let generator = tokio::spawn(super::generate(broadcast.create_track(TRACK), INTERVAL, None));
    let result = super::watch(session, TRACK, count, on_frame).await;
    generator.abort();
    drop(broadcast);
    result
}
