//! How `moqt pub`, `sub` and `announced` report their connection: one stderr line per change
//! of the session's connection (connected again, lost, moving on a GOAWAY, closed), and the
//! reconnect count `sub --stats` prints. The reconnecting itself is the session's (the async
//! API's `ReconnectPolicy`); this module only tells the user what happens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use moqt_driver_tokio::session::ConnectionState;
use moqt_driver_tokio::Session;

/// What a command knows about its session's connections.
#[derive(Debug)]
pub struct Link {
    /// The URL given on the command line (dialled again after a loss or a drain).
    url: String,
    /// Whether the session reconnects.
    reconnect: bool,
    /// Connections established after the first.
    reconnects: AtomicU64,
    /// Whether the first `Connected` state (reported by `connected to …`) was seen.
    first_seen: std::sync::atomic::AtomicBool,
}

impl Link {
    /// The link of a session dialled to `url`.
    pub fn new(url: &str, reconnect: bool) -> Arc<Link> {
        Arc::new(Link {
            url: url.to_owned(),
            reconnect,
            reconnects: AtomicU64::new(0),
            first_seen: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Connections established again so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Reports one state change on stderr (and counts reconnections).
    pub fn report(&self, session: &Session, state: &ConnectionState) {
        if let Some(line) = self.describe(state, session) {
            eprintln!("{line}");
        }
    }

    /// The line for a state change (`None`: the first connection, already announced).
    fn describe(&self, state: &ConnectionState, session: &Session) -> Option<String> {
        let url = &self.url;
        Some(match state {
            ConnectionState::Connected { url: dialled, version } => {
                if !self.first_seen.swap(true, Ordering::Relaxed) {
                    return None;
                }
                let n = self.reconnects.fetch_add(1, Ordering::Relaxed) + 1;
                format!("reconnected to {dialled} ({version}, {:?}; reconnect {n})", session.kind())
            }
            ConnectionState::Lost { code, reason } => {
                format!("connection lost (code {code:#x}: {reason}); reconnecting to {url}")
            }
            ConnectionState::Moving { uri } if !self.reconnect => {
                format!("goaway received (next uri {uri:?}); not following it (--no-reconnect)")
            }
            ConnectionState::Moving { uri } => match moqt_proto::reconnect::next_uri(uri) {
                Some(next) => format!("goaway received: moving to {next} (make-before-break)"),
                None if uri.trim().is_empty() => {
                    format!("goaway received without a next uri: reconnecting to {url} once the relay closes")
                }
                None => format!(
                    "goaway received with an unusable next uri {uri:?}: staying until the relay closes, \
                     then reconnecting to {url}"
                ),
            },
            ConnectionState::Closed(info) => format!("session closed (code {:#x}: {})", info.code, info.reason),
        })
    }

    /// Reports every state change of `session` from a task of its own (for commands whose
    /// data does not depend on them). Holds a session handle until the session is over.
    pub fn spawn(self: &Arc<Self>, session: &Session) {
        let (link, session) = (self.clone(), session.clone());
        tokio::spawn(async move {
            while let Some(state) = session.next_state().await {
                link.report(&session, &state);
            }
        });
    }
}
