//! moq-lite over WebSocket on the relay's HTTP port: answers `Upgrade: websocket` requests at
//! `/` and `/{path}` and hands the upgraded connection to the QUIC listener's accept loop
//! ([`WsAcceptor`]), which applies the same admission limits and delivers the session to the
//! relay like a WebTransport one (the request's path and query are its scope and token).
//!
//! `Sec-WebSocket-Protocol` is chosen as moq-relay does: the first entry of the server's list
//! (`qmux-01.<alpn>`, `qmux-00.<alpn>`, `qmux-02.<alpn>` for each version, newest first) that
//! the client offered. A request offering none of them (nothing, only bare `qmux-0N`, only
//! `webtransport`, or unknown values) gets `400`: those mean lite-01/02's SETUP negotiation,
//! which this relay does not speak. A request with a `Sec-WebSocket-Version` other than 13 gets
//! `426` naming 13 (RFC 6455 §4.4).

use std::net::SocketAddr;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use moqt_driver_quinn::websocket;
use moqt_driver_tokio::transport::WsAcceptor;
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::routes::{Body, UpgradeHandler};

/// The TCP peer of an HTTP request (a request extension set by the server loop).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Whether the HTTP connection is TLS (a request extension set by the server loop).
#[derive(Debug, Clone, Copy)]
pub struct Secure(pub bool);

/// The relay's WebSocket upgrade handler.
pub struct WsHandler {
    acceptor: WsAcceptor,
}

impl WsHandler {
    /// Hands upgrades to `acceptor` (from `Listener::websocket`).
    pub fn new(acceptor: WsAcceptor) -> WsHandler {
        WsHandler { acceptor }
    }
}

fn refuse(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

impl UpgradeHandler for WsHandler {
    fn upgrade(&self, req: Request<Incoming>) -> BoxFuture<'static, Response<Body>> {
        let res = self.answer(req);
        Box::pin(async move { res })
    }
}

impl WsHandler {
    fn answer(&self, mut req: Request<Incoming>) -> Response<Body> {
        let headers = req.headers();
        if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()).map(str::trim) != Some("13") {
            let mut res = refuse(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
            res.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            return res;
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()) else {
            return refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
        };
        let accept = websocket::accept_key(key);
        let offered = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok());
        let Some(negotiated) = websocket::select(offered, self.acceptor.versions()) else {
            let offered: Vec<&str> =
                headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok()).collect();
            tracing::debug!(?offered, "refusing WebSocket upgrade: no supported subprotocol");
            return refuse(StatusCode::BAD_REQUEST, "no supported Sec-WebSocket-Protocol (qmux-0N.moq-lite-0M)\n");
        };
        let Some(PeerAddr(peer)) = req.extensions().get::<PeerAddr>().copied() else {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "no peer address\n");
        };
        let secure = req.extensions().get::<Secure>().is_some_and(|s| s.0);
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let scheme = if secure { "wss" } else { "ws" };
        let Ok(url) = url::Url::parse(&format!("{scheme}://{host}{target}")) else {
            return refuse(StatusCode::BAD_REQUEST, "bad Host or path\n");
        };
        let Ok(protocol) = HeaderValue::from_str(&negotiated.subprotocol) else {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "bad subprotocol\n");
        };
        let Ok(accept) = HeaderValue::from_str(&accept) else {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "bad accept key\n");
        };
        let acceptor = self.acceptor.clone();
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let stream = Box::new(TokioIo::new(upgraded).compat());
                    acceptor.accept(stream, negotiated, peer, url);
                }
                Err(e) => tracing::debug!(%peer, "WebSocket upgrade failed: {e}"),
            }
        });
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = res.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        res
    }
}
