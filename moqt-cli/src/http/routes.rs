//! What the relay's HTTP side answers: the certificate fingerprint for browsers (with CORS, so a
//! page on another origin can fetch and pin it), a health check, Prometheus metrics, and the demo
//! page's static files. GET and HEAD only (OPTIONS for CORS pre-flight).
//!
//! [`route`] is the one entry point. A request that asks for `Upgrade: websocket` goes to the
//! site's [`UpgradeHandler`] when one is mounted (at `/` and `/{path}`, e.g. for moq over
//! WebSocket); without one it is served like any other GET.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

/// The response body type of every route.
pub type Body = Full<Bytes>;

/// Serves the requests that ask to upgrade to WebSocket. The handler gets the whole request:
/// it answers `101 Switching Protocols` itself and takes the connection with
/// `hyper::upgrade::on(req)` (the server enables upgrades on every connection). An upgraded
/// connection no longer counts against the HTTP connection limits: the handler bounds it.
pub trait UpgradeHandler: Send + Sync + 'static {
    /// Answers one upgrade request.
    fn upgrade(&self, req: Request<Incoming>) -> BoxFuture<'static, Response<Body>>;
}

/// Renders `/metrics` on demand.
pub type MetricsFn = Box<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// What the HTTP side serves.
pub struct Site {
    /// The SHA-256 fingerprint of the TLS certificate, hex.
    pub fingerprint: String,
    /// Renders `/metrics`.
    pub metrics: MetricsFn,
    /// Files served under `/` (path → (content type, bytes)), read once at start.
    pub files: Vec<(String, &'static str, Bytes)>,
    /// The handler for `Upgrade: websocket` requests, if one is mounted.
    pub websocket: Option<Arc<dyn UpgradeHandler>>,
    /// Renders `/health` (`ok` and, on a cluster relay, a line per peer); `None`: just `ok`.
    pub health: Option<MetricsFn>,
}

/// Whether a request asks to switch to WebSocket (`Connection: upgrade` and
/// `Upgrade: websocket`, case-insensitively; both headers may list several tokens).
pub fn is_websocket_upgrade<B>(req: &Request<B>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    req.method() == Method::GET && has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

fn response(status: StatusCode, ctype: &'static str, body: Bytes, head: bool) -> Response<Body> {
    let len = body.len();
    let mut res = Response::new(if head { Full::new(Bytes::new()) } else { Full::new(body) });
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Answers one request.
pub async fn route(req: Request<Incoming>, site: Arc<Site>) -> Response<Body> {
    if is_websocket_upgrade(&req) {
        if let Some(handler) = &site.websocket {
            return handler.upgrade(req).await;
        }
    }
    let head = req.method() == Method::HEAD;
    let text = "text/plain";
    match *req.method() {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return response(StatusCode::NO_CONTENT, text, Bytes::new(), false),
        _ => {
            let mut res =
                response(StatusCode::METHOD_NOT_ALLOWED, text, Bytes::from_static(b"method not allowed\n"), false);
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return res;
        }
    }
    match req.uri().path() {
        "/certificate.sha256" => response(StatusCode::OK, text, Bytes::from(site.fingerprint.clone()), head),
        "/health" => {
            let body = match &site.health {
                Some(health) => Bytes::from(health().await),
                None => Bytes::from_static(b"ok\n"),
            };
            response(StatusCode::OK, text, body, head)
        }
        "/metrics" => response(StatusCode::OK, "text/plain; version=0.0.4", Bytes::from((site.metrics)().await), head),
        p => {
            let want = if p == "/" { "/index.html" } else { p };
            match site.files.iter().find(|(f, _, _)| f == want) {
                Some((_, ctype, bytes)) => response(StatusCode::OK, ctype, bytes.clone(), head),
                None => response(StatusCode::NOT_FOUND, text, Bytes::from_static(b"not found\n"), head),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(Method::GET).uri("/room");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn websocket_upgrade_is_recognised_by_its_tokens() {
        assert!(is_websocket_upgrade(&req(&[("connection", "Upgrade"), ("upgrade", "websocket")])));
        assert!(is_websocket_upgrade(&req(&[("connection", "keep-alive, Upgrade"), ("upgrade", "WebSocket")])));
        assert!(!is_websocket_upgrade(&req(&[("upgrade", "websocket")])));
        assert!(!is_websocket_upgrade(&req(&[("connection", "upgrade"), ("upgrade", "h2c")])));
        assert!(!is_websocket_upgrade(&req(&[])));
    }
}
