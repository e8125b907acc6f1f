//! The relay's plain-HTTP side (TCP, same port number as the QUIC listener): the certificate
//! fingerprint for browsers (with CORS, so a page on another origin can fetch and pin it),
//! a health check, Prometheus metrics, and static files for the demo page. A deliberately tiny
//! HTTP/1.1 server: GET and HEAD only, one request per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the HTTP side serves; `metrics` renders the Prometheus text on demand.
pub struct Site {
    /// The SHA-256 fingerprint of the TLS certificate, hex.
    pub fingerprint: String,
    /// Renders `/metrics`.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// Files served under `/` (path → (content type, bytes)).
    pub files: Vec<(String, &'static str, Vec<u8>)>,
}

/// Serves HTTP on `addr` until the task is dropped.
pub async fn serve(listener: TcpListener, site: Arc<Site>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let site = site.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &site).await {
                tracing::debug!(%peer, "http: {e:#}");
            }
        });
    }
}

/// Binds the HTTP listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen for HTTP on tcp {addr}"))
}

async fn handle(mut stream: TcpStream, site: &Site) -> Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    let (status, ctype, body): (&str, &str, Vec<u8>) = match (method, path) {
        ("GET" | "HEAD", "/certificate.sha256") => ("200 OK", "text/plain", site.fingerprint.clone().into_bytes()),
        ("GET" | "HEAD", "/health") => ("200 OK", "text/plain", b"ok\n".to_vec()),
        ("GET" | "HEAD", "/metrics") => ("200 OK", "text/plain; version=0.0.4", (site.metrics)().into_bytes()),
        ("GET" | "HEAD", p) => {
            let want = if p == "/" { "/index.html" } else { p };
            match site.files.iter().find(|(f, _, _)| f == want) {
                Some((_, ctype, bytes)) => ("200 OK", *ctype, bytes.clone()),
                None => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
            }
        }
        ("OPTIONS", _) => ("204 No Content", "text/plain", Vec::new()),
        _ => ("405 Method Not Allowed", "text/plain", b"method not allowed\n".to_vec()),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\n\
         Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await.ok();
    Ok(())
}
