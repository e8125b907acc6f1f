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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use moqt_driver_tokio::tls::{Identity, Verification};
    use moqt_driver_tokio::transport::{Connector, Listener, ServerConfig};
    use moqt_driver_tokio::TransportKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http::{self, HttpLimits, HttpStats, Site};

    /// A QUIC listener with WebTransport off, and the HTTP side with TLS and the WebSocket
    /// handler on the same port number.
    async fn server(identity: &Identity) -> Listener {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), identity.clone());
        config.webtransport = false;
        config.runtime = Some(moqt_driver_tokio::runtime());
        let listener = Listener::bind(config).unwrap();
        let tcp = http::bind(listener.local_addr()).await.unwrap();
        let site = Arc::new(Site {
            fingerprint: identity.fingerprint().to_string(),
            metrics: Box::new(|| Box::pin(async { "moqt_test 1\n".to_string() })),
            files: Vec::new(),
            websocket: Some(Arc::new(WsHandler::new(listener.websocket()))),
            health: None,
        });
        let tls = Arc::new(identity.server_config(&[b"http/1.1"]).unwrap());
        tokio::spawn(http::serve(tcp, site, HttpLimits::default(), Arc::new(HttpStats::default()), Some(tls)));
        listener
    }

    /// GET `path` over TLS (pinned to the certificate) and over plain TCP on the same port.
    async fn get_both(addr: SocketAddr, identity: &Identity, path: &str) -> (String, String) {
        let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let tls = Verification::pinned(identity.fingerprint()).client_config(&[b"http/1.1"]).unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut s = connector.connect(name, tcp).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut secure = Vec::new();
        // A peer closing without close_notify is an error for rustls; the body is complete.
        let _ = s.read_to_end(&mut secure).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut plain = String::new();
        s.read_to_string(&mut plain).await.unwrap();
        (String::from_utf8_lossy(&secure).into_owned(), plain)
    }

    #[tokio::test]
    async fn https_and_http_on_one_port() {
        let identity = Identity::self_signed(&["localhost"]).unwrap();
        let listener = server(&identity).await;
        let addr = listener.local_addr();
        let (s, p) = get_both(addr, &identity, "/health").await;
        assert!(s.starts_with("HTTP/1.0 200") && s.ends_with("ok\n"), "{s}");
        assert!(p.starts_with("HTTP/1.0 200") && p.ends_with("ok\n"), "{p}");
        let (s, p) = get_both(addr, &identity, "/certificate.sha256").await;
        let fp = identity.fingerprint().to_string();
        assert!(s.ends_with(&fp) && p.ends_with(&fp), "{s}\n{p}");
        let (s, p) = get_both(addr, &identity, "/metrics").await;
        assert!(s.ends_with("moqt_test 1\n") && p.ends_with("moqt_test 1\n"), "{s}\n{p}");
    }

    /// An https:// client whose WebTransport is refused (the listener has it off) falls back to
    /// wss:// on the same port; with the fallback off it fails; ws:// and wss:// work directly.
    #[tokio::test]
    async fn https_falls_back_to_wss() {
        let identity = Identity::self_signed(&["localhost"]).unwrap();
        let mut listener = server(&identity).await;
        let addr = listener.local_addr();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(accepted) = listener.accept().await {
                assert_eq!(accepted.kind, TransportKind::WebSocket);
                assert_eq!(accepted.path.as_deref(), Some("/room?jwt=x"));
                held.push(accepted.connection);
            }
        });
        let config = || moqt_driver_tokio::client_config(Verification::pinned(identity.fingerprint()));
        let connector = Connector::new(config()).unwrap();
        for url in [
            format!("https://localhost:{}/room?jwt=x", addr.port()),
            format!("wss://localhost:{}/room?jwt=x", addr.port()),
            format!("ws://localhost:{}/room?jwt=x", addr.port()),
        ] {
            let conn = connector.connect(&url).await.unwrap();
            assert_eq!(conn.kind(), TransportKind::WebSocket, "{url}");
            assert_eq!(conn.version(), moqt_proto::Version::ALL[0], "{url}");
            assert_eq!(conn.wt_protocol(), Some("qmux-01.moq-lite-06"), "{url}");
        }
        let mut off = config();
        off.websocket_fallback = false;
        let err = Connector::new(off).unwrap().connect(&format!("https://localhost:{}/room", addr.port())).await;
        assert!(err.is_err(), "WebTransport is off on the server: without the fallback this fails");
    }
}
