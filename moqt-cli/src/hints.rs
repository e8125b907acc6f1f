//! What `moqt relay` prints once it listens, so a first-time user knows what to do next: the demo
//! page's URL and a `moqt pub` / `moqt sub` pair, all pointing at a host that reaches the address
//! the relay actually bound (never `localhost` for a relay bound to one address family only, since
//! a browser may resolve `localhost` to the other family and find nothing there).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The broadcast name the suggested commands use.
pub const DEMO_BROADCAST: &str = "demo";
/// The track name the suggested commands use (the demo page's default track).
pub const DEMO_TRACK: &str = "pattern";

/// The `host:port` clients should dial to reach a relay bound to `bound`.
///
/// `dual_stack` says whether an IPv6 wildcard bind (`[::]`) also accepts IPv4; only then is
/// `localhost` safe, whichever family the client resolves it to.
pub fn client_authority(bound: SocketAddr, dual_stack: bool) -> String {
    let port = bound.port();
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("127.0.0.1:{port}"),
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) if ip.is_unspecified() && dual_stack => format!("localhost:{port}"),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("[::1]:{port}"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{port}"),
            None => format!("[{ip}]:{port}"),
        },
    }
}

/// Whether the UDP port of an IPv6 wildcard bind also holds IPv4: binding the IPv4 wildcard on
/// the same port then fails. (Portable: no socket option or `/proc` reading needed.)
pub fn wildcard_is_dual_stack(bound: SocketAddr) -> bool {
    match bound.ip() {
        IpAddr::V6(ip) if ip.is_unspecified() => {
            UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), bound.port())).is_err()
        }
        _ => false,
    }
}

/// How to run this binary again from another terminal: `moqt` when it was found on `PATH`,
/// else its absolute path (for example `cargo run`'s `target/release/moqt`).
pub fn program() -> String {
    let argv0 = std::env::args().next().unwrap_or_else(|| "moqt".into());
    let path = if argv0.contains('/') {
        std::env::current_exe().map(|p| p.display().to_string()).unwrap_or(argv0)
    } else {
        argv0
    };
    shell_quote(&path)
}

/// Quotes a word for POSIX shells when it holds anything but plain path characters.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The lines printed after `listening on …`: the page URL and a ready-to-paste pub/sub pair.
/// `page_built` says whether the demo page was found (otherwise the URL serves a page saying how
/// to build it, and so does an extra line here).
pub fn next_steps(
    program: &str,
    bound: SocketAddr,
    dual_stack: bool,
    fingerprint: &str,
    page_built: bool,
) -> Vec<String> {
    let host = client_authority(bound, dual_stack);
    let (b, t) = (DEMO_BROADCAST, DEMO_TRACK);
    let mut lines = vec![
        "next: open the demo page in Chromium (or another Chromium-based browser):".to_string(),
        format!("  http://{host}/"),
    ];
    if !page_built {
        lines.push("  (not built yet: run (cd web && npm ci && npm run build), then restart the relay)".to_string());
    }
    lines.push("next: publish a test pattern, then measure it from another terminal:".to_string());
    lines.push(format!("  {program} pub moqt://{host} {b} --track {t} --fps 30 --tls-fingerprint {fingerprint}"));
    lines.push(format!("  {program} sub https://{host}/ {b} --track {t} --stats --tls-fingerprint {fingerprint}"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(addr: &str, dual: bool) -> String {
        client_authority(addr.parse().unwrap(), dual)
    }

    #[test]
    fn single_family_binds_never_say_localhost() {
        assert_eq!(auth("127.0.0.1:4443", true), "127.0.0.1:4443");
        assert_eq!(auth("0.0.0.0:4443", true), "127.0.0.1:4443");
        assert_eq!(auth("[::1]:4443", true), "[::1]:4443");
        assert_eq!(auth("[::]:4443", false), "[::1]:4443");
        assert_eq!(auth("192.0.2.7:9", false), "192.0.2.7:9");
        assert_eq!(auth("[2001:db8::7]:9", false), "[2001:db8::7]:9");
        assert_eq!(auth("[::ffff:127.0.0.1]:9", false), "127.0.0.1:9");
    }

    #[test]
    fn a_dual_stack_wildcard_says_localhost() {
        assert_eq!(auth("[::]:4443", true), "localhost:4443");
    }

    #[test]
    fn the_pair_carries_the_fingerprint_and_the_same_host() {
        let lines = next_steps("moqt", "127.0.0.1:5000".parse().unwrap(), false, "ab12", true);
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[1], "  http://127.0.0.1:5000/");
        assert_eq!(lines[3], "  moqt pub moqt://127.0.0.1:5000 demo --track pattern --fps 30 --tls-fingerprint ab12");
        assert_eq!(lines[4], "  moqt sub https://127.0.0.1:5000/ demo --track pattern --stats --tls-fingerprint ab12");
    }

    #[test]
    fn an_unbuilt_page_gets_a_build_line() {
        let lines = next_steps("moqt", "127.0.0.1:5000".parse().unwrap(), false, "ab12", false);
        assert_eq!(lines.len(), 6);
        assert!(lines[2].contains("npm run build"), "{lines:?}");
    }

    #[test]
    fn odd_program_paths_are_quoted() {
        assert_eq!(shell_quote("/usr/bin/moqt"), "/usr/bin/moqt");
        assert_eq!(shell_quote("/my dir/moqt"), "'/my dir/moqt'");
        assert_eq!(shell_quote("/it's/moqt"), r"'/it'\''s/moqt'");
    }
}
