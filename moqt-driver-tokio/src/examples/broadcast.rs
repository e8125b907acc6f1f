//! `broadcast`: the server publishes the broadcast `server.broadcast` on every session; every
//! track of it carries one group of one frame (`"FRAME n"`, n = 1, 2, 3, …) every 100 ms. The
//! client discovers broadcasts by announcement under the root, subscribes to track `index` of
//! each and prints the frames.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use tokio::task::JoinSet;

use crate::{BroadcastRequest, Server, Session};

/// The port both sides use by default.
pub const DEFAULT_PORT: u16 = 4469;
/// The broadcast the server publishes.
pub const BROADCAST: &str = "server.broadcast";
/// The track the client subscribes to (the server answers any track name).
pub const TRACK: &str = "index";
/// One group per this interval.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// The server's default listen address.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
}

/// The client's default URL (WebTransport; `moqt://127.0.0.1:4469` for raw QUIC).
pub fn default_url() -> String {
    format!("https://127.0.0.1:{DEFAULT_PORT}/broadcast")
}

/// Serves every session `server` accepts (until the server stops).
pub async fn serve(mut server: Server) -> Result<()> {
    let mut sessions = JoinSet::new();
    while let Some(session) = server.accept().await {
        eprintln!("session: {} over {:?}, path {:?}", session.version(), session.kind(), session.path());
        sessions.spawn(serve_session(session));
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
    }
    Ok(())
}

/// Publishes [`BROADCAST`] on `session` until the session ends: each track the peer subscribes to
/// gets its own 100 ms generator, starting at group 1.
pub async fn serve_session(session: Session) {
    let broadcast = session.publish(BROADCAST);
    let mut generators = JoinSet::new();
    // Create the usual track up front; other names are created when asked for.
    generators.spawn(super::generate(broadcast.create_track(TRACK), INTERVAL, None));
    loop {
        tokio::select! {
            request = broadcast.next_request() => match request {
                Some(BroadcastRequest::Track(name)) => {
                    generators.spawn(super::generate(broadcast.create_track(&name), INTERVAL, None));
                }
                // No history is kept beyond the session's cache: dropping the request refuses it
                // (NOT_FOUND).
                Some(BroadcastRequest::Fetch(_) | BroadcastRequest::FetchServed { .. }) => {}
                None => break,
            },
            _ = session.closed() => break,
        }
    }
}

/// Prints (through `on_frame`) every frame of track [`TRACK`] of every announced broadcast;
/// returns after `count` frames if given.
pub async fn client(session: &Session, count: Option<u64>, on_frame: impl FnMut(&super::Frame)) -> Result<u64> {
    super::watch(session, TRACK, count, on_frame).await
}
