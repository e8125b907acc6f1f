//! The I/O task of one QMux-over-WebSocket connection: WebSocket binary messages in, records
//! out, timers, keep-alive and the closing handshake. Runtime-agnostic: the socket is any
//! futures-io stream, the timer comes from the driver's [`Runtime`].
//!
//! Each turn, under the state lock: take up to [`READ_BUDGET`] messages (none while the legacy
//! format asks for a pause), fire due timers, then hand records to the WebSocket **only while it
//! takes more** (what stays in the sans-IO connection can still be reordered by priority), and
//! flush. WebSocket Pings go out every `ping_interval`; a peer silent for `idle_timeout` (no
//! message, not even a Pong) is dropped. When the connection has ended and its close frame is
//! out, the WebSocket Close is sent and the task reads until the peer closes too (bounded by
//! [`CLOSE_LINGER`]), so the last records are not lost to a TCP reset.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures::io::{AsyncRead, AsyncWrite};
use futures::{Sink, Stream};

use super::session::Shared;
use crate::rt::{Runtime, Sleep};

/// Messages handled per turn before the task yields to others.
const READ_BUDGET: usize = 64;

/// The longest the closing handshake may take once the close frame is out.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// WebSocket-level keep-alive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeepAlive {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
}

enum Phase {
    Open,
    /// The close frame is queued; until the deadline, the peer may still answer.
    Closing {
        deadline: Instant,
        sent: bool,
    },
}

struct Io<S> {
    shared: Arc<Shared>,
    ws: WebSocketStream<S>,
    keep_alive: KeepAlive,
    timer: Sleep,
    last_rx: Instant,
    next_ping: Instant,
    ping_due: bool,
    /// Unflushed writes.
    dirty: bool,
    /// The stream cannot be written any more (I/O error, closed).
    write_failed: bool,
    /// The status of our WebSocket Close.
    close_code: CloseCode,
    phase: Phase,
}

/// Runs the connection until it has closed.
pub(crate) async fn run<S>(shared: Arc<Shared>, ws: WebSocketStream<S>, keep_alive: KeepAlive, runtime: Runtime)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let now = Instant::now();
    let mut io = Io {
        shared,
        ws,
        keep_alive,
        timer: Sleep::until(&runtime, now + keep_alive.ping_interval),
        last_rx: now,
        next_ping: now + keep_alive.ping_interval,
        ping_due: false,
        dirty: false,
        write_failed: false,
        close_code: CloseCode::Normal,
        phase: Phase::Open,
    };
    poll_fn(|cx| io.poll(cx)).await;
    // Whatever happened, the connection is over for the handles.
    io.shared.with(false, |s| s.conn.handle_transport_closed());
}

impl<S> Io<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let now = Instant::now();
            let deadline = match self.phase {
                Phase::Open => match self.turn(cx, now) {
                    Some(deadline) => deadline,
                    None => continue,
                },
                Phase::Closing { deadline, .. } => {
                    if self.closing(cx, now) {
                        return Poll::Ready(());
                    }
                    deadline
                }
            };
            self.timer.reset(deadline);
            if self.timer.poll_expired(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// One turn while open: the next deadline, or `None` when the phase changed.
    fn turn(&mut self, cx: &mut Context<'_>, now: Instant) -> Option<Instant> {
        let shared = self.shared.clone();
        let mut wake = Vec::new();
        let mut state = shared.lock();
        state.set_driver(cx.waker());

        // 1. What arrived.
        let mut budget = READ_BUDGET;
        while budget > 0 && !state.conn.is_closed() && !state.conn.receive_paused() {
            match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    budget -= 1;
                    self.last_rx = now;
                    match message {
                        Message::Binary(record) => state.conn.handle_record(now, record),
                        Message::Text(_) => {
                            state.conn.handle_text_message();
                            self.close_code = CloseCode::Unsupported;
                        }
                        // The peer closes: tungstenite queued the reply.
                        Message::Close(_) => state.conn.handle_transport_closed(),
                        // tungstenite answers Pings itself.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                    state.dispatch();
                }
                Poll::Ready(Some(Err(WsError::Capacity(e)))) => {
                    tracing::debug!(peer = %shared.peer, "WebSocket message refused: {e}");
                    state.conn.handle_oversized_record();
                    self.close_code = CloseCode::Size;
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!(peer = %shared.peer, "WebSocket read failed: {e}");
                    if !matches!(e, WsError::Protocol(_) | WsError::Utf8(_)) {
                        self.write_failed = true;
                    }
                    self.close_code = CloseCode::Protocol;
                    state.conn.handle_transport_closed();
                }
                Poll::Ready(None) => {
                    self.write_failed = true;
                    state.conn.handle_transport_closed();
                }
                Poll::Pending => break,
            }
        }
        if budget == 0 {
            cx.waker().wake_by_ref();
        }

        // 2. Timers.
        if state.conn.poll_timeout().is_some_and(|t| t <= now) {
            state.conn.handle_timeout(now);
        }
        if !state.conn.is_closed() && now >= self.last_rx + self.keep_alive.idle_timeout {
            tracing::debug!(peer = %shared.peer, "WebSocket silent for {:?}: dropping it", self.keep_alive.idle_timeout);
            state.conn.handle_transport_closed();
            self.write_failed = true;
        }
        if now >= self.next_ping {
            self.ping_due = true;
            self.next_ping = now + self.keep_alive.ping_interval;
        }
        state.dispatch();

        // 3. What to send, while the WebSocket takes more.
        while !self.write_failed {
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    self.write_error(&e);
                    break;
                }
                Poll::Pending => break,
            }
            let message = if std::mem::take(&mut self.ping_due) {
                Message::Ping(Bytes::new())
            } else if let Some(record) = state.conn.poll_transmit(now) {
                Message::Binary(record)
            } else {
                break;
            };
            if let Err(e) = Pin::new(&mut self.ws).start_send(message) {
                self.write_error(&e);
                break;
            }
            self.dirty = true;
        }
        if self.dirty && !self.write_failed {
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.dirty = false,
                Poll::Ready(Err(e)) => self.write_error(&e),
                Poll::Pending => {}
            }
        }
        if self.write_failed && !state.conn.is_closed() {
            state.conn.handle_transport_closed();
        }
        state.dispatch();
        state.check_watchers();
        let drained = state.conn.is_drained() || (self.write_failed && state.conn.is_closed());
        let deadline =
            [state.conn.poll_timeout(), Some(self.next_ping), Some(self.last_rx + self.keep_alive.idle_timeout)]
                .into_iter()
                .flatten()
                .min();
        if drained && self.close_code == CloseCode::Normal {
            if let Some(err) = state.closed_reason() {
                if matches!(err, crate::connection::ConnectionError::Transport(_)) {
                    self.close_code = CloseCode::Protocol;
                }
            }
        }
        wake.append(&mut state.take_wakers());
        drop(state);
        for w in wake {
            w.wake();
        }
        if drained {
            self.phase = Phase::Closing { deadline: now + CLOSE_LINGER, sent: false };
            return None;
        }
        deadline
    }

    fn write_error(&mut self, e: &WsError) {
        tracing::debug!(peer = %self.shared.peer, "WebSocket write failed: {e}");
        self.write_failed = true;
    }

    /// The closing handshake: true when done.
    fn closing(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Phase::Closing { deadline, sent } = &mut self.phase else { return true };
        if now >= *deadline {
            return true;
        }
        if !self.write_failed {
            if !*sent {
                match Pin::new(&mut self.ws).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let frame = CloseFrame { code: self.close_code, reason: "".into() };
                        // Fails when the peer closed first: tungstenite already answered.
                        let _ = Pin::new(&mut self.ws).start_send(Message::Close(Some(frame)));
                        *sent = true;
                    }
                    Poll::Ready(Err(_)) => self.write_failed = true,
                    Poll::Pending => return false,
                }
            }
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => self.write_failed = true,
                Poll::Pending => return false,
            }
        }
        // Read (and drop) until the peer closes too.
        for _ in 0..READ_BUDGET {
            match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(_)) | None) => return true,
                Poll::Pending => return false,
            }
        }
        cx.waker().wake_by_ref();
        false
    }
}
