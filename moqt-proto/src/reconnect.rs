//! When a client connects again, and where to: the reconnection policy as a sans-IO state
//! machine. The driver reports what happened ([`Reconnect::lost`], [`Reconnect::connected`],
//! [`Reconnect::failed`], [`Reconnect::goaway`], [`Reconnect::drained`]) with the time (and a
//! random number for jitter, so the machine itself stays deterministic) and does what it says:
//! dial a URL at a deadline ([`Reconnect::poll_dial`]) or give up.
//!
//! What to resubscribe from and how groups are de-duplicated across the switch is the node's
//! part (see the relay module's route switching): the driver adds each new session to the node
//! and makes it the default upstream, or migrates to it make-before-break after a GOAWAY.
//!
//! - A lost session is dialled again after an exponential backoff with jitter, from
//!   `initial_backoff` doubling up to `max_backoff`; `max_attempts` failures in a row give up.
//! - A GOAWAY with a URI dials that URI at once, while the current session keeps working
//!   (make-before-break). If it cannot be reached, the current session stays until the relay
//!   closes it, and the original URL is dialled then.
//! - A GOAWAY without a URI waits for the relay to close the session, then dials the original
//!   URL at once.

use std::time::{Duration, Instant};

/// How a client reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Reconnect at all.
    pub enabled: bool,
    /// The first delay after a loss.
    pub initial_backoff: Duration,
    /// The longest delay.
    pub max_backoff: Duration,
    /// Jitter as a fraction of the delay, in percent (0–100): the delay is shortened by up to
    /// this much, at random.
    pub jitter_percent: u8,
    /// Failed attempts in a row before giving up (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            jitter_percent: 50,
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// No reconnection: a lost session ends the client.
    pub fn disabled() -> Self {
        Self { enabled: false, ..Self::default() }
    }

    /// The delay before attempt `attempt` (1 = the first retry), with `random` choosing the
    /// jitter.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let base = self.initial_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let base = base.min(self.max_backoff);
        let jitter = base.mul_f64(f64::from(self.jitter_percent.min(100)) / 100.0);
        let cut = if jitter.is_zero() { Duration::ZERO } else { jitter.mul_f64((random % 1000) as f64 / 1000.0) };
        base - cut
    }
}

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing for now.
    Wait,
    /// Dial this URL now; report [`Reconnect::connected`] or [`Reconnect::failed`].
    Dial(String),
    /// Stop: the client is closed.
    GiveUp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// A session is up.
    Connected,
    /// A session is up, a GOAWAY came; dialing the next URI or waiting for the drain.
    Draining { next: Option<String>, dialing: bool },
    /// No session; dial `url` at `at`.
    Backoff { at: Instant, url: String },
    /// Dialing, no session.
    Dialing { url: String },
    /// Closed for good.
    Done,
}

/// The reconnection state machine. See the module docs.
#[derive(Debug, Clone)]
pub struct Reconnect {
    policy: ReconnectPolicy,
    url: String,
    state: State,
    /// Failed attempts in a row.
    failures: u32,
    /// Sessions established after the first.
    reconnects: u64,
}

impl Reconnect {
    /// A client connected to `url`.
    pub fn new(policy: ReconnectPolicy, url: &str) -> Self {
        Self { policy, url: url.to_owned(), state: State::Connected, failures: 0, reconnects: 0 }
    }

    /// Sessions established again so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Whether a session is up.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected | State::Draining { .. })
    }

    /// The session was lost (closed by the peer or the network, not by the application).
    pub fn lost(&mut self, now: Instant, random: u64) -> Action {
        if !self.policy.enabled || self.state == State::Done {
            self.state = State::Done;
            return Action::GiveUp;
        }
        // After a GOAWAY without a reachable next URI: the original URL, at once.
        if let State::Draining { .. } = self.state {
            self.state = State::Dialing { url: self.url.clone() };
            return Action::Dial(self.url.clone());
        }
        self.schedule(now, random)
    }

    /// A dial failed.
    pub fn failed(&mut self, now: Instant, random: u64) -> Action {
        match &self.state {
            // The next URI of a GOAWAY failed: keep the current session until it drains.
            State::Draining { next, .. } => {
                tracing::warn!(
                    uri = next.as_deref().unwrap_or(""),
                    "cannot reach the GOAWAY's next uri: staying until the drain, then reconnecting to {}",
                    self.url
                );
                self.state = State::Draining { next: None, dialing: false };
                Action::Wait
            }
            State::Done => Action::GiveUp,
            _ => {
                self.failures += 1;
                if self.policy.max_attempts.is_some_and(|m| self.failures >= m) {
                    self.state = State::Done;
                    return Action::GiveUp;
                }
                self.schedule(now, random)
            }
        }
    }

    /// A session is up (the first dial, a reconnection, or the GOAWAY's next URI).
    pub fn connected(&mut self) {
        if self.state != State::Done {
            self.state = State::Connected;
            self.failures = 0;
            self.reconnects += 1;
        }
    }

    /// The peer sent GOAWAY (`uri` may be empty). A usable URI is dialled at once.
    pub fn goaway(&mut self, uri: &str) -> Action {
        if !self.policy.enabled || !self.is_connected() {
            return Action::Wait;
        }
        let next = uri.trim();
        if next.is_empty() {
            self.state = State::Draining { next: None, dialing: false };
            return Action::Wait;
        }
        let Some(next) = next_uri(next) else {
            tracing::warn!(
                uri = next,
                "the GOAWAY's next uri is not a URL: staying until the drain, then reconnecting to {}",
                self.url
            );
            self.state = State::Draining { next: None, dialing: false };
            return Action::Wait;
        };
        self.state = State::Draining { next: Some(next.to_owned()), dialing: true };
        Action::Dial(next.to_owned())
    }

    /// The application closed the client.
    pub fn closed(&mut self) {
        self.state = State::Done;
    }

    /// When [`Reconnect::poll_dial`] has something.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Backoff { at, .. } => Some(at),
            _ => None,
        }
    }

    /// A dial that is due at `now`.
    pub fn poll_dial(&mut self, now: Instant) -> Option<String> {
        match &self.state {
            State::Backoff { at, url } if *at <= now => {
                let url = url.clone();
                self.state = State::Dialing { url: url.clone() };
                Some(url)
            }
            _ => None,
        }
    }

    /// Whether the application's session is over for good.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn schedule(&mut self, now: Instant, random: u64) -> Action {
        let delay = self.policy.delay(self.failures + 1, random);
        let at = now.checked_add(delay).unwrap_or(now);
        self.state = State::Backoff { at, url: self.url.clone() };
        Action::Wait
    }
}

/// The URI a GOAWAY names, trimmed, if it is one a client follows (a URL with a scheme moqt
/// dials); `None` for an empty or malformed one (the client then waits for the drain).
pub fn next_uri(uri: &str) -> Option<&str> {
    let s = uri.trim();
    ["moqt://", "https://", "http://", "ws://", "wss://"]
        .iter()
        .any(|p| s.starts_with(p) && s.len() > p.len())
        .then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "moqt://relay.example:4443";

    #[test]
    fn backoff_grows_with_jitter_and_resets_on_success() {
        let policy = ReconnectPolicy { jitter_percent: 0, ..ReconnectPolicy::default() };
        assert_eq!(policy.delay(1, 0), Duration::from_millis(100));
        assert_eq!(policy.delay(2, 0), Duration::from_millis(200));
        assert_eq!(policy.delay(30, 0), Duration::from_secs(10), "capped");
        let jittery = ReconnectPolicy::default();
        assert!(
            jittery.delay(1, 999) >= Duration::from_millis(50) && jittery.delay(1, 999) < Duration::from_millis(100)
        );

        let t0 = Instant::now();
        let mut r = Reconnect::new(policy, URL);
        assert_eq!(r.lost(t0, 0), Action::Wait);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        assert_eq!(r.poll_dial(t0), None, "not yet");
        assert_eq!(r.poll_dial(t0 + Duration::from_millis(100)), Some(URL.to_owned()));
        assert_eq!(r.failed(t0, 0), Action::Wait);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(200)), "doubled");
        r.poll_dial(t0 + Duration::from_secs(1));
        r.connected();
        assert!(r.is_connected());
        assert_eq!(r.reconnects(), 1);
        r.lost(t0, 0);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(100)), "reset after a success");
    }

    #[test]
    fn disabled_or_exhausted_gives_up() {
        let t0 = Instant::now();
        let mut r = Reconnect::new(ReconnectPolicy::disabled(), URL);
        assert_eq!(r.lost(t0, 0), Action::GiveUp);
        assert!(r.is_done());
        let mut r = Reconnect::new(ReconnectPolicy { max_attempts: Some(2), ..ReconnectPolicy::default() }, URL);
        r.lost(t0, 0);
        r.poll_dial(t0 + Duration::from_secs(60));
        assert_eq!(r.failed(t0, 0), Action::Wait);
        r.poll_dial(t0 + Duration::from_secs(60));
        assert_eq!(r.failed(t0, 0), Action::GiveUp);
    }

    #[test]
    fn goaway_dials_the_next_uri_and_falls_back_to_the_original_after_the_drain() {
        let t0 = Instant::now();
        let mut r = Reconnect::new(ReconnectPolicy::default(), URL);
        assert_eq!(r.goaway("moqt://next.example:4443"), Action::Dial("moqt://next.example:4443".into()));
        assert!(r.is_connected(), "the current session keeps working");
        // The next relay cannot be reached: stay, then the original URL once the drain closes us.
        assert_eq!(r.failed(t0, 0), Action::Wait);
        assert_eq!(r.lost(t0, 0), Action::Dial(URL.into()));
        r.connected();
        // A malformed URI and an empty one wait for the drain.
        assert_eq!(r.goaway("not a url"), Action::Wait);
        assert_eq!(r.lost(t0, 0), Action::Dial(URL.into()));
        r.connected();
        assert_eq!(r.goaway(""), Action::Wait);
        assert_eq!(r.lost(t0, 0), Action::Dial(URL.into()));
    }
}
