//! moq-relay 0.15+'s external auth server (`--auth-url`, answered by `moq auth serve`): one JSON
//! POST per session event (`connect`, `revalidate`, `end`), and the gatekeeper that applies the
//! answers with moqt-auth's decisions (`admit`, `recheck`, `backoff`).
//!
//! The HTTP side is a minimal HTTP/1.1 client over tokio: one request per connection
//! (`Connection: close`), a JSON body with `Content-Length`, and a reply read to its end
//! (`Content-Length`, chunked, or until the server closes), at most [`MAX_REPLY`] bytes, all within
//! moqt-auth's `REQUEST_TIMEOUT`. `http://` (loopback only), `unix://` (the socket at the URL's
//! path) and `https://` (system roots, TLS 1.3) are supported. Why not hyper: one small POST per
//! session event needs no pooling, HTTP/2 or streaming bodies; `httparse` (hyper's own parser)
//! reads the reply head, and the rest is a few dozen lines with no extra runtime glue.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use moqt_auth::server::{self, Event, Recheck, Request, ServerError, Transport, REQUEST_TIMEOUT};
use moqt_driver_quinn::relay::{AccessHandle, AdmissionRequest, Decision, Gatekeeper};
use moqt_proto::access::Access;
use moqt_proto::session::session_code;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use url::Url;

use crate::auth_cmd::{unix_now, AuthMetrics};

/// The largest reply read.
pub const MAX_REPLY: usize = 1 << 20;

/// Posts JSON to one URL.
#[derive(Clone)]
pub struct HttpClient {
    url: Url,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl HttpClient {
    /// A client for `url` (refused unless https://, unix://, or http:// to a loopback host).
    pub fn new(url: &str) -> Result<HttpClient> {
        Self::for_flag(url, "--auth-url")
    }

    /// [`HttpClient::new`], naming `flag` in its errors.
    pub fn for_flag(url: &str, flag: &str) -> Result<HttpClient> {
        let url = Url::parse(url).with_context(|| format!("{flag} {url:?}"))?;
        server::check_url(&url).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        let tls = if url.scheme() == "https" {
            let config = moqt_driver_tokio::tls::Verification::SystemRoots.client_config(&[b"http/1.1"])?;
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(HttpClient { url, tls })
    }

    /// POSTs `body` (JSON) and returns the status and the reply body.
    pub async fn post_json(&self, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange("POST", body)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no reply within {REQUEST_TIMEOUT:?}")),
        }
    }

    /// GETs the URL (a JSON document, such as a cluster's peer list) and returns the status and
    /// the reply body.
    pub async fn get(&self) -> Result<(u16, Vec<u8>), String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange("GET", &[])).await {
            Ok(result) => result,
            Err(_) => Err(format!("no reply within {REQUEST_TIMEOUT:?}")),
        }
    }

    async fn exchange(&self, method: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let url = &self.url;
        let (host, target) = match url.scheme() {
            "unix" => ("localhost".to_string(), "/".to_string()),
            _ => {
                let host = url.host_str().unwrap_or("localhost");
                let host = match url.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                };
                let target = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                };
                (host, target)
            }
        };
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\nUser-Agent: moqt/{}\r\n\r\n",
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        let err = |e: std::io::Error| e.to_string();
        match url.scheme() {
            #[cfg(unix)]
            "unix" => {
                let stream = tokio::net::UnixStream::connect(url.path()).await.map_err(err)?;
                exchange(stream, &head, body).await
            }
            "https" => {
                let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("server name {host:?}: {e}"))?;
                let tcp = tokio::net::TcpStream::connect((host, url.port().unwrap_or(443))).await.map_err(err)?;
                let tls = self.tls.as_ref().ok_or("no TLS configuration")?;
                let stream = tls.connect(name, tcp).await.map_err(err)?;
                exchange(stream, &head, body).await
            }
            _ => {
                let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                let tcp = tokio::net::TcpStream::connect((host, url.port().unwrap_or(80))).await.map_err(err)?;
                exchange(tcp, &head, body).await
            }
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let err = |e: std::io::Error| e.to_string();
    stream.write_all(head.as_bytes()).await.map_err(err)?;
    stream.write_all(body).await.map_err(err)?;
    stream.flush().await.map_err(err)?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // The reply may be complete before the server closes (a kept-alive connection).
        if let Some(done) = parse_reply(&reply, false)? {
            return Ok(done);
        }
        let n = stream.read(&mut chunk).await.map_err(err)?;
        if n == 0 {
            return parse_reply(&reply, true)?.ok_or_else(|| "the reply ended early".to_string());
        }
        if reply.len() + n > MAX_REPLY {
            return Err(format!("the reply is larger than {MAX_REPLY} bytes"));
        }
        reply.extend_from_slice(&chunk[..n]);
    }
}

/// Reads a whole reply: `Ok(None)` while more bytes are needed (`eof`: none will come).
pub fn parse_reply(buf: &[u8], eof: bool) -> Result<Option<(u16, Vec<u8>)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let start = match response.parse(buf).map_err(|e| format!("bad reply: {e}"))? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if eof => return Err("the reply ended inside its head".into()),
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let rest = &buf[start..];
    if header("transfer-encoding").is_some_and(|t| t.ends_with("chunked")) {
        return dechunk(rest, eof).map(|b| b.map(|b| (status, b)));
    }
    if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| format!("bad Content-Length {len:?}"))?;
        if rest.len() >= len {
            return Ok(Some((status, rest[..len].to_vec())));
        }
        return if eof { Err("the reply body ended early".into()) } else { Ok(None) };
    }
    // No length: the body runs to the end of the connection (or is empty for these statuses).
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Some((status, Vec::new())));
    }
    Ok(eof.then(|| (status, rest.to_vec())))
}

/// Decodes a chunked body: `Ok(None)` while more bytes are needed.
fn dechunk(mut rest: &[u8], eof: bool) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return if eof { Err("a chunk header ended early".into()) } else { Ok(None) };
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if size.checked_add(2).is_none_or(|n| rest.len() < n) {
            return if eof { Err("a chunk ended early".into()) } else { Ok(None) };
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Admits sessions by asking the auth server, re-checks them on the grant's cadence, and reports
/// their end.
pub struct ServerGate {
    inner: Arc<ServerInner>,
}

struct ServerInner {
    http: HttpClient,
    node: String,
    metrics: Arc<AuthMetrics>,
    /// Sessions being asked about (`None`) or admitted: their request (for `revalidate` and
    /// `end`) and the stop for their re-check loop. A session that ends while asked about is
    /// removed, so its grant, when it comes, is reported ended at once.
    sessions: Mutex<HashMap<u64, Option<Admitted>>>,
}

struct Admitted {
    request: Request,
    stop: Option<oneshot::Sender<()>>,
}

impl ServerGate {
    /// A gatekeeper asking `url`, naming this relay `node`.
    pub fn new(url: &str, node: &str, metrics: Arc<AuthMetrics>) -> Result<ServerGate> {
        let http = HttpClient::new(url)?;
        Ok(ServerGate {
            inner: Arc::new(ServerInner { http, node: node.to_string(), metrics, sessions: Mutex::default() }),
        })
    }
}

impl ServerInner {
    async fn post(&self, request: &Request) -> (u16, Vec<u8>) {
        let body = serde_json::to_vec(request).unwrap_or_default();
        match self.http.post_json(&body).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(id = request.id, "auth server: {e}");
                // Not a status: reads as an outage.
                (0, Vec::new())
            }
        }
    }

    /// Posts the `end` of a session in the background (its reply is not used).
    fn report_end(self: &Arc<Self>, request: &Request, reason: String, duration: Duration) {
        // Byte totals are not tracked per session by the relay driver.
        let bytes = server::Bytes::default();
        let end = request.with_event(Event::End { reason, duration: duration.as_secs_f64(), bytes });
        let inner = self.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let (status, _) = inner.post(&end).await;
            tracing::debug!(id = end.id, status, took = ?started.elapsed(), "auth server: end reported");
        });
    }

    async fn connect(self: Arc<Self>, asked: AdmissionRequest, handle: AccessHandle) -> Decision {
        let (path, query) = moqt_auth::split_path_query(asked.target.as_deref().unwrap_or("/"));
        let mut request = Request::connect(rand::random(), &self.node, Transport::Quic, path, query);
        request.remote = asked.remote;
        request.alpn = Some(asked.version.alpn().to_string());
        let (status, body) = self.post(&request).await;
        let answer = server::read_reply(status, &body, unix_now()).and_then(|a| a.access(path).map(|x| (a, x)));
        let (answer, access) = match answer {
            Ok(ok) => ok,
            Err(e) => {
                let (kind, code) = match &e {
                    ServerError::Refused => ("server_refused", session_code::UNAUTHORIZED),
                    ServerError::Unavailable(_) => ("server_unavailable", session_code::INTERNAL),
                    ServerError::Invalid(_) => ("server_invalid", session_code::INTERNAL),
                };
                self.metrics.refused(kind);
                self.sessions.lock().expect("sessions lock").remove(&asked.session);
                return Decision::Refuse { code, reason: format!("{kind}: {e}") };
            }
        };
        self.metrics.admitted("server");
        let (stop, stopped) = oneshot::channel();
        let admitted = Admitted { request: request.clone(), stop: Some(stop) };
        match self.sessions.lock().expect("sessions lock").get_mut(&asked.session) {
            Some(slot) => *slot = Some(admitted),
            None => {
                // The session ended while the server answered: it is over for the server too.
                self.report_end(&request, "dropped".into(), Duration::ZERO);
                return Decision::Admit(access);
            }
        }
        if let Some(cadence) = answer.revalidate {
            let inner = self.clone();
            let held = Some(access.clone());
            let path = path.to_string();
            tokio::spawn(async move { inner.recheck_loop(request, path, held, cadence, handle, stopped).await });
        }
        Decision::Admit(access)
    }

    /// Re-checks a session every `cadence` seconds until it ends, applying each reply.
    async fn recheck_loop(
        &self,
        request: Request,
        path: String,
        mut current: Option<Access>,
        cadence: u64,
        handle: AccessHandle,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let request = request.with_event(Event::Revalidate);
        let mut cadence = Duration::from_secs(cadence);
        let mut wait = cadence;
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let (status, body) = self.post(&request).await;
            let Some(held) = current.as_ref() else { return };
            match server::recheck(held, status, &body, &path, unix_now()) {
                Recheck::Keep(fresh) => {
                    failures = 0;
                    if let Some(next) = server::read_reply(status, &body, unix_now()).ok().and_then(|a| a.revalidate) {
                        cadence = Duration::from_secs(next);
                    }
                    wait = cadence;
                    current = Some(fresh.clone());
                    if !handle.update(Decision::Admit(fresh)) {
                        return;
                    }
                }
                Recheck::End(reason) => {
                    handle.update(Decision::Refuse { code: session_code::UNAUTHORIZED, reason });
                    return;
                }
                Recheck::Retry => {
                    failures += 1;
                    wait = server::backoff(failures, cadence, rand::random::<f64>() * 0.5 + 0.75);
                    tracing::warn!(id = request.id, ?wait, "auth server re-check failed; keeping the grant");
                }
            }
        }
    }
}

impl Gatekeeper for ServerGate {
    fn admit(&self, request: AdmissionRequest, handle: AccessHandle) -> Pin<Box<dyn Future<Output = Decision> + Send>> {
        self.inner.sessions.lock().expect("sessions lock").insert(request.session, None);
        Box::pin(self.inner.clone().connect(request, handle))
    }

    fn ended(&self, session: u64, reason: &str, admitted: Option<Duration>) {
        let Some(Some(mut state)) = self.inner.sessions.lock().expect("sessions lock").remove(&session) else { return };
        if let Some(stop) = state.stop.take() {
            let _ = stop.send(());
        }
        let reason = match reason {
            "access expired" => "expired".to_string(),
            "" => "dropped".to_string(),
            other => other.to_string(),
        };
        self.inner.report_end(&state.request, reason, admitted.unwrap_or_default());
    }
}

#[cfg(test)]
#[path = "auth_server_tests.rs"]
mod tests;
