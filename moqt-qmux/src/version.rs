//! QMux wire versions and the `Sec-WebSocket-Protocol` values that select them.
//!
//! On WebSocket there is no version field on the wire: the negotiated subprotocol names the
//! wire format, optionally paired with the application protocol (`qmux-01.moq-lite-05`). See
//! `docs/qmux.md` for what moq-dev's browser libraries offer and what moq-relay accepts.

use std::fmt;

/// A QMux wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// The pre-QMux `webtransport` format: `u8` frame types, STREAM/RESET/STOP/CLOSE only, no
    /// flow control, no transport parameters, no datagrams. WebSocket only.
    WebTransport,
    /// draft-ietf-quic-qmux-00: QUIC frames with transport parameters; exactly one frame per
    /// WebSocket message, at most 16384 bytes.
    Qmux00,
    /// draft-ietf-quic-qmux-01: records of frames bounded by `max_record_size`, QX_PING,
    /// datagrams, idle timeout.
    Qmux01,
    /// draft-ietf-quic-qmux-02: as 01, plus RESET_STREAM_AT and stricter rules (transport
    /// parameters strictly first, increasing QX_PING sequence numbers).
    Qmux02,
}

impl Version {
    /// Every version, newest first.
    pub const ALL: [Version; 4] = [Version::Qmux02, Version::Qmux01, Version::Qmux00, Version::WebTransport];

    /// The QMux drafts (the versions that can prefix an application protocol), newest first.
    pub const QMUX: [Version; 3] = [Version::Qmux02, Version::Qmux01, Version::Qmux00];

    /// The bare subprotocol / ALPN token for this version.
    pub const fn token(self) -> &'static str {
        match self {
            Version::WebTransport => "webtransport",
            Version::Qmux00 => "qmux-00",
            Version::Qmux01 => "qmux-01",
            Version::Qmux02 => "qmux-02",
        }
    }

    /// Whether this is a QMux draft (QUIC varint frames, transport parameters, flow control).
    pub const fn is_qmux(self) -> bool {
        !matches!(self, Version::WebTransport)
    }

    /// Whether the version has the record layer (qmux-01 and later): several frames per
    /// record, `max_record_size`, QX_PING, datagrams, idle timeout.
    pub const fn has_records(self) -> bool {
        matches!(self, Version::Qmux01 | Version::Qmux02)
    }

    /// The `Sec-WebSocket-Protocol` value pairing this version with an application protocol,
    /// e.g. `qmux-01.moq-lite-05`. `None` for the legacy format, which is only offered bare.
    pub fn subprotocol(self, alpn: &str) -> Option<String> {
        self.is_qmux().then(|| format!("{}.{alpn}", self.token()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// A negotiated `Sec-WebSocket-Protocol` value, split into wire version and application
/// protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subprotocol<'a> {
    /// The wire format.
    pub version: Version,
    /// The application protocol (ALPN) after the `qmux-0N.` prefix; `None` for a bare token.
    pub alpn: Option<&'a str>,
}

impl<'a> Subprotocol<'a> {
    /// Parses `qmux-0N.<alpn>`, a bare `qmux-0N`, or `webtransport`. Anything else is `None`.
    pub fn parse(value: &'a str) -> Option<Self> {
        let value = value.trim();
        if value == Version::WebTransport.token() {
            return Some(Self { version: Version::WebTransport, alpn: None });
        }
        for version in Version::QMUX {
            let Some(rest) = value.strip_prefix(version.token()) else { continue };
            if rest.is_empty() {
                return Some(Self { version, alpn: None });
            }
            if let Some(alpn) = rest.strip_prefix('.') {
                return (!alpn.is_empty()).then_some(Self { version, alpn: Some(alpn) });
            }
        }
        None
    }
}

/// The subprotocols a server accepts, in its order of preference: for each application
/// protocol (in the given order) one `<version>.<alpn>` entry per version in `versions`, then
/// the bare tokens `qmux-02, qmux-01, qmux-00, webtransport`.
///
/// moq-relay 0.17 uses `versions = [Qmux01, Qmux00]` (and leaves out `qmux-00.` for `moqt-18`
/// and later, which this crate does not run).
pub fn server_subprotocols(alpns: &[&str], versions: &[Version]) -> Vec<String> {
    let mut out: Vec<String> =
        alpns.iter().flat_map(|alpn| versions.iter().filter_map(move |v| v.subprotocol(alpn))).collect();
    out.extend(Version::ALL.iter().map(|v| v.token().to_string()));
    out
}

/// The subprotocols a client offers, in its order of preference: for each application
/// protocol one entry per QMux draft, newest first, then the bare tokens. This is what
/// @moq/net does for moq-lite.
pub fn client_subprotocols(alpns: &[&str]) -> Vec<String> {
    server_subprotocols(alpns, &Version::QMUX)
}

/// The outcome of matching a client's `Sec-WebSocket-Protocol` offer against a server list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Accept and echo this value (an entry of the server list).
    Accept(String),
    /// The client offered nothing: accept without a subprotocol, which means the legacy
    /// `webtransport` format with no application protocol.
    Legacy,
    /// The client offered only values the server does not support: fail the upgrade (HTTP 400).
    Reject,
}

/// Picks the first entry of `supported` (server preference) that the client offered.
/// `offered` is the list of request header values, each possibly comma-separated.
pub fn select_subprotocol<'a>(offered: impl IntoIterator<Item = &'a str>, supported: &[String]) -> Selection {
    let offered: Vec<&str> =
        offered.into_iter().flat_map(|h| h.split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
    if offered.is_empty() {
        return Selection::Legacy;
    }
    match supported.iter().find(|s| offered.contains(&s.as_str())) {
        Some(s) => Selection::Accept(s.clone()),
        None => Selection::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_values() {
        let p = Subprotocol::parse("qmux-01.moq-lite-05").unwrap();
        assert_eq!((p.version, p.alpn), (Version::Qmux01, Some("moq-lite-05")));
        assert_eq!(Subprotocol::parse("qmux-02").unwrap().alpn, None);
        assert_eq!(Subprotocol::parse("webtransport").unwrap().version, Version::WebTransport);
        assert_eq!(Subprotocol::parse("qmux-03.x"), None);
        assert_eq!(Subprotocol::parse("qmux-01."), None);
        assert_eq!(Subprotocol::parse("qmux-01x"), None);
        assert_eq!(Subprotocol::parse("webtransport.moq-lite-05"), None);
    }

    #[test]
    fn relay_order_and_selection() {
        let list = server_subprotocols(&["moq-lite-06", "moq-lite-05"], &[Version::Qmux01, Version::Qmux00]);
        assert_eq!(
            list,
            [
                "qmux-01.moq-lite-06",
                "qmux-00.moq-lite-06",
                "qmux-01.moq-lite-05",
                "qmux-00.moq-lite-05",
                "qmux-02",
                "qmux-01",
                "qmux-00",
                "webtransport"
            ]
        );
        // @moq/net 0.3.4 offers qmux-02.moq-lite-05 first, but the server's order wins.
        let offer = "qmux-02.moq-lite-05, qmux-01.moq-lite-05, qmux-00.moq-lite-05, qmux-02, webtransport";
        assert_eq!(select_subprotocol([offer], &list), Selection::Accept("qmux-01.moq-lite-05".into()));
        assert_eq!(select_subprotocol([] as [&str; 0], &list), Selection::Legacy);
        assert_eq!(select_subprotocol([" , "], &list), Selection::Legacy);
        assert_eq!(select_subprotocol(["chat"], &list), Selection::Reject);
        assert_eq!(select_subprotocol(["chat", "webtransport"], &list), Selection::Accept("webtransport".into()));
    }

    #[test]
    fn client_offer_matches_moq_net() {
        let list = client_subprotocols(&["moq-lite-05"]);
        assert_eq!(
            list,
            [
                "qmux-02.moq-lite-05",
                "qmux-01.moq-lite-05",
                "qmux-00.moq-lite-05",
                "qmux-02",
                "qmux-01",
                "qmux-00",
                "webtransport"
            ]
        );
    }
}
