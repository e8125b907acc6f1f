//! The relay's plain-HTTP side (TCP, same port number as the QUIC listener), served by hyper
//! (HTTP/1.1) on tokio. What it answers is in [`routes`]; this module owns the connections and
//! their bounds:
//!
//! * at most `max_connections` at once and `max_connections_per_address` from one source
//!   (IPv6 per /64); a connection past either is accepted and closed at once, and counted;
//! * a request's head must arrive within `header_timeout` (also between keep-alive requests),
//!   and is at most `max_header_bytes`; request bodies are never read (only GET/HEAD are
//!   served), and hyper closes a connection whose body was left unread;
//! * a connection lives at most [`CONNECTION_LIFETIME`], so a client that never reads its
//!   responses cannot hold a slot;
//! * when `accept` fails (e.g. EMFILE, out of file descriptors) the loop backs off, from 10 ms
//!   doubling to 1 s, instead of spinning.
//!
//! With a TLS config ([`serve`]'s `tls`), a connection whose first byte is a TLS handshake
//! record (0x16) is served as https (and wss), any other as plain http, on the same port; the
//! TLS handshake must finish within `header_timeout`. Requests carry the peer address and
//! whether TLS was used ([`websocket::PeerAddr`], [`websocket::Secure`]) for the WebSocket
//! handler ([`websocket::WsHandler`]).
//!
//! hyper was chosen because it is the HTTP implementation of the tokio ecosystem, kept up by
//! its maintainers, and its HTTP/1 server has the header timeout and buffer bound built in;
//! its upgrade support is where a WebSocket handler plugs in ([`routes::UpgradeHandler`]).

pub mod routes;
pub mod websocket;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use moqt_driver_quinn::limits::address_key;
use moqt_driver_quinn::metrics::Exposition;
use tokio::net::TcpListener;

pub use routes::Site;

/// The longest one HTTP connection is kept (requests on it included).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Bounds of the HTTP side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections at once (default 1024).
    pub max_connections: usize,
    /// Connections at once from one source address (default 64).
    pub max_connections_per_address: usize,
    /// Time for a request head to arrive, also while a keep-alive connection idles (default 10 s).
    pub header_timeout: Duration,
    /// Largest request head in bytes (default 16 KiB; hyper's floor is 8 KiB).
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_address: 64,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 << 10,
        }
    }
}

/// Counters of the HTTP side.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Connections open (gauge).
    pub connections: AtomicU64,
    /// Connections served since start.
    pub connections_total: AtomicU64,
    /// Connections closed at once over `max_connections`.
    pub refused_max: AtomicU64,
    /// Connections closed at once over `max_connections_per_address`.
    pub refused_per_address: AtomicU64,
    /// Connections that ended in an error (header timeout, head too large, reset...).
    pub errors: AtomicU64,
    /// Connections closed at `CONNECTION_LIFETIME`.
    pub lifetime_expired: AtomicU64,
    /// `accept` failures (each followed by a back-off).
    pub accept_errors: AtomicU64,
}

impl HttpStats {
    /// Writes the HTTP families.
    pub fn render(&self, out: &mut Exposition) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.gauge("http_connections", "HTTP connections open (max_connections).", get(&self.connections));
        out.counter("http_connections_total", "HTTP connections served.", get(&self.connections_total));
        out.counters(
            "http_connections_refused_total",
            "HTTP connections closed at once, by limit: max (max_connections), per_address \
             (max_connections_per_address).",
            "reason",
            &[("max", get(&self.refused_max)), ("per_address", get(&self.refused_per_address))],
        );
        out.counter(
            "http_connection_errors_total",
            "HTTP connections ended by an error: header_timeout passed, head over max_header_bytes, reset.",
            get(&self.errors),
        );
        out.counter(
            "http_lifetime_expired_total",
            "HTTP connections closed at the 60 s connection lifetime.",
            get(&self.lifetime_expired),
        );
        out.counter(
            "http_accept_errors_total",
            "HTTP accept failures (e.g. EMFILE), each backed off.",
            get(&self.accept_errors),
        );
    }
}

/// Binds the HTTP listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen for HTTP on tcp {addr}"))
}

/// Whether a connection starts with a TLS handshake record (waits for its first byte, at most
/// `timeout`).
async fn is_tls(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    let mut first = [0u8; 1];
    matches!(tokio::time::timeout(timeout, stream.peek(&mut first)).await, Ok(Ok(1)) if first[0] == 0x16)
}

/// A served connection, plain or TLS.
enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Open connections, in total and per source.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per: HashMap<IpAddr, usize>,
}

/// Releases a connection's slot when dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    key: IpAddr,
    stats: Arc<HttpStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total -= 1;
        if let Some(n) = c.per.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.per.remove(&self.key);
            }
        }
        self.stats.connections.store(c.total as u64, Ordering::Relaxed);
    }
}

/// Serves HTTP (and https, with `tls`) on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    limits: HttpLimits,
    stats: Arc<HttpStats>,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let counts = Arc::new(Mutex::new(Counts::default()));
    let mut backoff = Duration::from_millis(10);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                accepted
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS leave the connection queued: retrying at once would spin.
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("http accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let key = address_key(peer);
        let slot = {
            let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
            if c.total >= limits.max_connections {
                stats.refused_max.fetch_add(1, Ordering::Relaxed);
                None
            } else if c.per.get(&key).copied().unwrap_or(0) >= limits.max_connections_per_address {
                stats.refused_per_address.fetch_add(1, Ordering::Relaxed);
                None
            } else {
                c.total += 1;
                *c.per.entry(key).or_default() += 1;
                stats.connections.store(c.total as u64, Ordering::Relaxed);
                Some(Slot { counts: counts.clone(), key, stats: stats.clone() })
            }
        };
        let Some(slot) = slot else {
            tracing::debug!(%peer, "http connection refused: limit reached");
            drop(stream);
            continue;
        };
        stats.connections_total.fetch_add(1, Ordering::Relaxed);
        let site = site.clone();
        let stats = stats.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let stream = match tls {
                Some(tls) if is_tls(&stream, limits.header_timeout).await => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "https: TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                _ => Stream::Plain(stream),
            };
            let secure = matches!(stream, Stream::Tls(_));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192))
                .keep_alive(true);
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(websocket::PeerAddr(peer));
                req.extensions_mut().insert(websocket::Secure(secure));
                let site = site.clone();
                async move { Ok::<_, std::convert::Infallible>(routes::route(req, site).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
            match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "http: {e}");
                }
                Err(_) => {
                    stats.lifetime_expired.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use futures::future::BoxFuture;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::{Request, Response, StatusCode};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http::routes::Body;

    /// Answers 101 and echoes one message over the upgraded connection.
    struct Echo(Arc<AtomicUsize>);

    impl routes::UpgradeHandler for Echo {
        fn upgrade(&self, req: Request<Incoming>) -> BoxFuture<'static, Response<Body>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                tokio::spawn(async move {
                    if let Ok(upgraded) = hyper::upgrade::on(req).await {
                        let mut io = TokioIo::new(upgraded);
                        let mut buf = [0u8; 5];
                        if io.read_exact(&mut buf).await.is_ok() {
                            let _ = io.write_all(&buf).await;
                        }
                    }
                });
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                res.headers_mut().insert(hyper::header::CONNECTION, "upgrade".parse().unwrap());
                res.headers_mut().insert(hyper::header::UPGRADE, "websocket".parse().unwrap());
                res
            })
        }
    }

    /// A mounted handler gets `Upgrade: websocket` requests on any path and takes the connection.
    #[tokio::test]
    async fn the_websocket_hook_takes_upgrade_requests() {
        let calls = Arc::new(AtomicUsize::new(0));
        let site = Arc::new(Site {
            fingerprint: "ab".into(),
            metrics: Box::new(|| Box::pin(async { String::new() })),
            files: Vec::new(),
            websocket: Some(Arc::new(Echo(calls.clone()))),
            health: None,
        });
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, site, HttpLimits::default(), Arc::new(HttpStats::default()), None));

        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /room/a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        s.write_all(b"hello").await.unwrap();
        let mut echo = [0u8; 5];
        s.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"hello");
        assert_eq!(calls.load(Ordering::Relaxed), 1);

        // A plain GET on the same server is not sent to the handler.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.0\r\n\r\n").await.unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.0 200") && text.ends_with("ok\n"), "{text}");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
