//! The few runtime services this crate needs, without depending on any runtime.
//!
//! This module owns the bridge to the executor the driver crate chose: spawning and timers go
//! through [`quinn::Runtime`] (the same object quinn uses), and host-name resolution goes
//! through a [`Resolver`] the driver supplies (tokio's `lookup_host`, smol's `resolve`), with a
//! runtime-free default ([`ThreadResolver`]) that runs the blocking std lookup on a short-lived
//! thread. Nothing here may block the calling task or assume a particular executor.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

/// The executor and timer source: quinn's runtime abstraction.
pub type Runtime = Arc<dyn quinn::Runtime>;

/// The runtime quinn detects for the calling context (tokio if a tokio runtime is current,
/// otherwise smol when quinn's `runtime-smol` feature is enabled).
pub fn default_runtime() -> Option<Runtime> {
    quinn::default_runtime()
}

/// A timer future on a [`quinn::Runtime`], resettable without reallocating.
pub struct Sleep {
    timer: Pin<Box<dyn quinn::AsyncTimer>>,
    deadline: Instant,
}

impl Sleep {
    /// A timer firing at `deadline`.
    pub fn until(runtime: &Runtime, deadline: Instant) -> Sleep {
        Sleep { timer: runtime.new_timer(deadline), deadline }
    }

    /// The current deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (earlier or later).
    pub fn reset(&mut self, deadline: Instant) {
        if deadline != self.deadline {
            self.deadline = deadline;
            self.timer.as_mut().reset(deadline);
        }
    }

    /// Polls the timer.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.timer.as_mut().poll(cx)
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_expired(cx)
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("deadline", &self.deadline).finish()
    }
}

/// The future did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Runs `fut` for at most `duration` on `runtime`'s timer.
pub async fn timeout<T>(runtime: &Runtime, duration: Duration, fut: impl Future<Output = T>) -> Result<T, Elapsed> {
    let mut sleep = Sleep::until(runtime, Instant::now() + duration);
    let mut fut = std::pin::pin!(fut);
    futures::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        sleep.poll_expired(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// Spawns a detached task on `runtime`.
pub fn spawn(runtime: &Runtime, fut: impl Future<Output = ()> + Send + 'static) {
    runtime.spawn(Box::pin(fut));
}

/// Host-name resolution, supplied by the driver.
pub trait Resolver: Send + Sync + fmt::Debug + 'static {
    /// Every address `host:port` resolves to, best first.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>>;
}

/// Resolves with the blocking std resolver on a short-lived thread, so no executor is blocked.
/// IP literals are answered at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadResolver;

impl Resolver for ThreadResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Box::pin(futures::future::ready(Ok(vec![SocketAddr::new(ip, port)])));
        }
        let host = host.to_owned();
        let (tx, rx) = futures::channel::oneshot::channel();
        let spawned = std::thread::Builder::new().name("moqt-resolve".into()).spawn(move || {
            let _ = tx.send((host.as_str(), port).to_socket_addrs().map(|a| a.collect()));
        });
        Box::pin(async move {
            spawned?;
            rx.await.unwrap_or_else(|_| Err(io::Error::other("resolver thread died")))
        })
    }
}

/// A byte stream the WebSocket transport runs over (TCP, or TLS over TCP), as futures-io.
pub trait ByteStream: futures::io::AsyncRead + futures::io::AsyncWrite + Send + Unpin + 'static {}

impl<T: futures::io::AsyncRead + futures::io::AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// A boxed [`ByteStream`].
pub type BoxedStream = Box<dyn ByteStream>;

/// Opens TCP connections (for `ws://` / `wss://` and the WebSocket fallback), supplied by the
/// driver: quinn's runtime abstraction has UDP sockets only.
pub trait TcpConnector: Send + Sync + fmt::Debug + 'static {
    /// Connects to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxedStream>>;
}
