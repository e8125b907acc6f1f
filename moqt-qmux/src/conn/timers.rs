//! Time: the handshake timeout (peer parameters must arrive), the negotiated idle timeout
//! (qmux-01+), and QX_PING keep-alives when we have been silent.
//!
//! The idle timer restarts on every record received and on the first record sent after a
//! receive (RFC 9000 §10.1 as the qmux draft adapts it): our own keep-alives alone cannot keep
//! a dead peer's connection open.

use std::time::{Duration, Instant};

use super::Connection;
use crate::error::ConnectionError;

impl Connection {
    /// The QX_PING interval in force, if any.
    fn keep_alive(&self) -> Option<Duration> {
        if !self.version.has_records() || !self.is_connected() {
            return None;
        }
        self.config.keep_alive.or_else(|| self.idle_timeout.map(|t| t / 3)).filter(|d| !d.is_zero())
    }

    fn handshake_deadline(&self) -> Option<Instant> {
        (!self.is_connected()).then(|| self.created + self.config.handshake_timeout)
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.idle_timeout.filter(|_| self.is_connected())?;
        Some(self.last_recv.max(self.idle_send) + idle)
    }

    fn ping_deadline(&self) -> Option<Instant> {
        if self.ping_due {
            return None;
        }
        Some(self.last_send + self.keep_alive()?)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called; `None` = no timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        [self.handshake_deadline(), self.idle_deadline(), self.ping_deadline()].into_iter().flatten().min()
    }

    /// Fires the timers due at `now`: a missing handshake or an idle connection closes
    /// silently; a due keep-alive queues a QX_PING for `poll_transmit`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.handshake_deadline().is_some_and(|d| now >= d) {
            self.terminate(ConnectionError::HandshakeTimeout);
            return;
        }
        if self.idle_deadline().is_some_and(|d| now >= d) {
            self.terminate(ConnectionError::IdleTimeout);
            return;
        }
        if self.ping_deadline().is_some_and(|d| now >= d) {
            self.ping_due = true;
        }
    }

    /// Queues a QX_PING now (qmux-01+), to measure [`rtt`](Self::rtt) or wake the peer.
    pub fn ping(&mut self) {
        if !self.closed && self.version.has_records() {
            self.ping_due = true;
        }
    }
}
