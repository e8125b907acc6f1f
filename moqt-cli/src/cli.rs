//! Command-line arguments and the optional TOML configuration file. Flags override the file;
//! the file overrides the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use moqt_driver_tokio::session::ReconnectPolicy;
use moqt_driver_tokio::tls::{Fingerprint, Verification};
use moqt_proto::{Dialect, Version};
use serde::Deserialize;

use crate::limit_args::LimitArgs;

/// The top-level example screen.
pub const MAIN_EXAMPLES: &str = "\
Examples (HEX is the certificate fingerprint the relay prints at start):
  moqt relay                                  # [::]:4443; prints the page URL and a pub/sub pair to paste
  moqt pub moqt://localhost:4443 demo --track pattern --fps 30 --tls-fingerprint HEX
  moqt sub https://localhost:4443/ demo --track pattern --stats --tls-fingerprint HEX
  moqt announced moqt://localhost:4443 --tls-fingerprint HEX
  moqt wire decode --version lite-04 '00 | 02 01 00 | 05 68 65 6c 6c 6f | 00'

URLs: moqt://host:port is raw QUIC, https://host:port/path is WebTransport (one UDP port serves both;
falls back to WebSocket on the TCP port unless --no-websocket-fallback), ws:// and wss://host:port/path
are moq-lite over WebSocket (QMux) on the relay's TCP port.
`moqt <command> --help` shows each command's own examples.";

/// `moqt relay --help` examples.
pub const RELAY_EXAMPLES: &str = "\
Examples:
  moqt relay                                  # [::]:4443, generated certificate, demo page from web/dist
  moqt relay --listen 127.0.0.1:4443          # loopback only: open http://127.0.0.1:4443/ (not localhost)
  moqt relay --listen [::]:443 --tls-cert cert.pem --tls-key key.pem
  moqt relay --listen 127.0.0.1:4444 --peer moqt://127.0.0.1:4443 --peer-fingerprint HEX
  moqt relay --cluster-id 2 --peer 'moqt://10.0.0.1:4443?cost=5' --peer-list peers.json   # docs/cluster.md
  moqt relay --config relay.toml              # the same settings under [relay]; flags override the file
  moqt relay --auth-key root.jwk --auth-public 'anon/**'   # tokens required, except under anon/
  moqt relay --max-sessions 2000 --idle-timeout 5 --max-recv-buffered 128MiB   # tighter limits

At start it prints `certificate sha256 HEX`, `listening on ADDR`, who may do what (`auth: …`, or a warning
for an open relay), the demo page's URL and a `moqt pub` / `moqt sub` pair with the fingerprint filled in.
HTTP on the same TCP port: /certificate.sha256, /health, /metrics. Ctrl-C or SIGTERM sends GOAWAY
(--next-uri) and drains for up to --drain-timeout seconds: clients move to --next-uri, or reconnect
once the relay closes (docs/reconnect.md). Tokens, keys and public paths: docs/auth.md.
Every limit (memory, sessions, HTTP) has a flag (under Limits) and a key in [relay.limits]: docs/limits.md.";

/// `moqt pub --help` examples.
pub const PUB_EXAMPLES: &str = "\
Examples (HEX: the fingerprint `moqt relay` prints):
  moqt pub moqt://localhost:4443 demo --track pattern --fps 30 --tls-fingerprint HEX    # test pattern
  moqt pub https://localhost:4443/ clock --clock --tls-fingerprint HEX                  # moq-dev's clock
  moqt pub moqt://localhost:4443 big --fps 60 --rate 8000000 --tls-fingerprint HEX      # 8 Mbit/s
  echo hello | moqt pub moqt://localhost:4443 chat --tls-fingerprint HEX                # a group per line
  moqt pub moqt://localhost:4443 film.hang --media film.mp4 --loop --tls-fingerprint HEX    # audio + video
  ffmpeg -re -i in.mp4 $CMAF - | moqt pub moqt://localhost:4443 live.hang --media --tls-fingerprint HEX
  moqt pub https://relay.example/room cam --clock --jwt TOKEN              # a relay that needs a token

Test-pattern frames carry their send time, so `moqt sub --stats` (and the demo page) measure latency.
--media reads fragmented MP4 from a file (paced by its timestamps) or stdin: CMAF as ffmpeg writes it
with CMAF='-f mp4 -movflags cmaf+frag_keyframe+empty_moov'. It publishes moq-dev's hang format (a NAME.hang
broadcast plays in the demo page) or, with --catalog msf, the MSF catalog (draft-ietf-moq-msf-00/01).
The broadcast survives relay restarts and GOAWAY: it is announced again (--no-reconnect: end instead).";

/// `moqt sub --help` examples.
pub const SUB_EXAMPLES: &str = "\
Examples (HEX: the fingerprint `moqt relay` prints):
  moqt sub https://localhost:4443/ demo --track pattern --stats --tls-fingerprint HEX   # rate, loss, latency
  moqt sub moqt://localhost:4443 clock --track seconds --count 3 --tls-fingerprint HEX
  moqt sub moqt://localhost:4443 chat --tls-fingerprint HEX                             # frames to stdout
  moqt sub moqt://relay.example.com:443 demo --track pattern --stats                    # system roots
  moqt sub moqt://localhost:4443 film.hang --media copy.mp4 --tls-fingerprint HEX        # record to MP4
  moqt sub moqt://localhost:4443 film.hang --media - --tls-fingerprint HEX | ffplay -    # watch it

Subscribe after the broadcast is announced (`moqt announced URL NAME --count 1` waits for it);
--media waits for the announcement itself, then records every rendition until the broadcast ends.
A lost connection is dialled again and a relay's GOAWAY followed (--no-reconnect: end instead); the
subscription resumes at the next group, and --stats counts reconnects and the groups missed.";

/// `moqt announced --help` examples.
pub const ANNOUNCED_EXAMPLES: &str = "\
Examples (HEX: the fingerprint `moqt relay` prints):
  moqt announced moqt://localhost:4443 --tls-fingerprint HEX              # `+ name` / `- name` lines
  moqt announced https://localhost:4443/ demo --count 1 --tls-fingerprint HEX   # wait until demo is live";

/// `moqt bench --help` examples.
pub const BENCH_EXAMPLES: &str = "\
Examples (HEX: the fingerprint `moqt relay` prints):
  moqt bench moqt://localhost:4443 --subscribers 100 --tls-fingerprint HEX        # 30 fps of 8 KiB, 30 s
  moqt bench https://localhost:4443/ --subscribers 1000 --ramp 20 --duration 60 --tls-fingerprint HEX
  moqt bench moqt://localhost:4443 --publishers 4 --subscribers 400 --fps 60 --size 1200 --json --tls-fingerprint HEX
  taskset -c 1 moqt bench moqt://localhost:4443 --subscribers 500 --tls-fingerprint HEX   # pinned to core 1

One line a second (and a `total` line): delivered frames/s, Mbit/s, groups lost, latency p50/p90/p99/max from
an HDR histogram, connection failures, and the generator's own CPU use.";

/// `moqt interop --help` examples.
pub const INTEROP_EXAMPLES: &str = "\
Examples:
  moqt interop server --listen 127.0.0.1:4469
  moqt interop client https://127.0.0.1:4469/ --tls-fingerprint HEX
  moqt interop client moqt://127.0.0.1:4469 --version lite-04 --tls-disable-verify

Each step prints `ok` or a reason; the client exits non-zero if any step failed.";

/// `moqt wire --help` examples.
pub const WIRE_EXAMPLES: &str = "\
Examples:
  moqt wire decode --version lite-04 '00 | 02 01 00 | 05 68 65 6c 6c 6f | 00'    # a group stream
  moqt wire decode --version lite-04 --dialect gomoqt --responder subscribe 01 03 06 08 00
  xxd -p capture.bin | moqt wire decode --version lite-05                        # hex from stdin

One JSON object per message, in stream order.";

/// moqt: Media over QUIC (moq-lite 03–06) relay and tools.
#[derive(Debug, Parser)]
#[command(name = "moqt", version, about, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    /// A TOML configuration file (flags override it).
    #[arg(long, global = true, env = "MOQT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, global = true, default_value = "info", env = "MOQT_LOG")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

// `relay`'s arguments are large (every limit); the enum is built once per run.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a relay: raw QUIC + WebTransport on one UDP port, HTTP on the same TCP port number.
    #[command(after_help = RELAY_EXAMPLES)]
    Relay(RelayArgs),
    /// Publish a broadcast: stdin, a clock track, a test pattern, or audio/video from fragmented MP4.
    #[command(after_help = PUB_EXAMPLES)]
    Pub(PubArgs),
    /// Subscribe to a track and write its frames to stdout (or print stats), or record a media broadcast.
    #[command(after_help = SUB_EXAMPLES)]
    Sub(SubArgs),
    /// List live broadcasts under a prefix, then their comings and goings.
    #[command(after_help = ANNOUNCED_EXAMPLES)]
    Announced(AnnouncedArgs),
    /// A load generator: M test-pattern publishers and N subscribers in one process.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(crate::bench::BenchArgs),
    /// gomoqt's interop scenario: `interop server` and `interop client URL`.
    #[command(after_help = INTEROP_EXAMPLES)]
    Interop {
        #[command(subcommand)]
        command: crate::interop::InteropCommand,
    },
    /// Keys and tokens compatible with moq-token: generate, sign, verify.
    Token {
        #[command(subcommand)]
        command: crate::token::TokenCommand,
    },
    /// Wire tools.
    #[command(after_help = WIRE_EXAMPLES)]
    Wire {
        #[command(subcommand)]
        command: WireCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WireCommand {
    /// Decode the bytes of one stream direction into one JSON object per message.
    #[command(after_help = WIRE_EXAMPLES)]
    Decode(DecodeArgs),
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The version: lite-03, lite-04, lite-05 or lite-06.
    #[arg(long, value_parser = parse_version)]
    pub version: Version,
    /// The lite-04 dialect: draft (moq-net) or gomoqt.
    #[arg(long, default_value = "draft", value_parser = parse_dialect)]
    pub dialect: Dialect,
    /// Decode the responder's direction of this stream type (announce, subscribe, fetch, probe,
    /// goaway, track) instead of an opener's stream (which starts with its type).
    #[arg(long)]
    pub responder: Option<String>,
    /// The bytes, in hex (spaces, `:` and `|` allowed).
    pub hex: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct RelayArgs {
    /// UDP address for QUIC/WebTransport; HTTP listens on TCP at the same address [default: [::]:4443].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain (with --tls-key).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Generate a 14-day ECDSA P-256 certificate for these names [default: localhost].
    #[arg(long, value_delimiter = ',')]
    pub tls_generate: Vec<String>,
    /// Another relay to link with (moqt:// or https://; `?cost=N` prices the link, `?jwt=`
    /// carries a token); repeatable. See docs/cluster.md.
    #[arg(long = "peer", alias = "cluster-connect")]
    pub peers: Vec<String>,
    /// Verification for --peer connections: a pinned SHA-256 fingerprint.
    #[arg(long)]
    pub peer_fingerprint: Option<String>,
    /// Do not verify --peer certificates (development only).
    #[arg(long)]
    pub peer_disable_verify: bool,
    /// URI sent in GOAWAY on shutdown.
    #[arg(long)]
    pub next_uri: Option<String>,
    /// Seconds to wait for sessions to leave after GOAWAY [default: 5].
    #[arg(long)]
    pub drain_timeout: Option<f64>,
    /// Directory of the demo page served over HTTP [default: web/dist if it exists].
    #[arg(long)]
    pub web_root: Option<PathBuf>,
    /// Also serve https and wss on the TCP port, with the QUIC certificate (plain http/ws keeps
    /// working on the same port: TLS connections are told apart by their first byte).
    #[arg(long)]
    pub http_tls: bool,
    /// Do not accept moq-lite over WebSocket on the TCP port.
    #[arg(long)]
    pub no_websocket: bool,
    /// This relay's hop id, its identity in hop chains (non-zero) [default: random].
    #[arg(long, alias = "cluster-id")]
    pub hop_id: Option<u64>,
    /// Only these versions (repeatable) [default: all].
    #[arg(long = "version", value_parser = parse_version)]
    pub versions: Vec<Version>,
    /// Relay workers, each with its own node, linked to the others [default: 1; the runtime has a
    /// thread per core either way; a relay with cluster peers runs one].
    #[arg(long, env = "MOQT_RELAY_WORKERS")]
    pub workers: Option<usize>,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
    #[command(flatten)]
    pub auth: crate::auth_cmd::AuthArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// moqt://host:port (raw QUIC), https://host:port/path (WebTransport, falling back to
    /// WebSocket) or ws:// / wss://host:port/path (WebSocket on the TCP port).
    pub url: String,
    /// Offer only this version.
    #[arg(long = "version", value_parser = parse_version)]
    pub version: Option<Version>,
    /// Accept only a server certificate with this SHA-256 fingerprint (hex).
    #[arg(long)]
    pub tls_fingerprint: Option<String>,
    /// Trust this PEM root instead of the system roots.
    #[arg(long)]
    pub tls_root: Option<PathBuf>,
    /// Do not verify the server certificate (development only).
    #[arg(long)]
    pub tls_disable_verify: bool,
    /// A token for the relay (sent as `?jwt=` in the URL; the URL may carry it instead).
    #[arg(long)]
    pub jwt: Option<String>,
    /// With an https:// URL, use WebTransport only: do not fall back to WebSocket (wss:// on the
    /// same host and port) when QUIC is slow (500 ms) or fails.
    #[arg(long)]
    pub no_websocket_fallback: bool,
}

impl ConnectArgs {
    /// The URL to dial: `url` with `--jwt` added to its query (replacing a `jwt` already there).
    pub fn url(&self) -> Result<String> {
        let Some(jwt) = &self.jwt else { return Ok(self.url.clone()) };
        with_jwt(&self.url, jwt)
    }

    pub fn verification(&self) -> Result<Verification> {
        Ok(if self.tls_disable_verify {
            Verification::InsecureNoVerification
        } else if let Some(fp) = &self.tls_fingerprint {
            Verification::pinned(fp.parse::<Fingerprint>().map_err(|e| anyhow::anyhow!("--tls-fingerprint: {e}"))?)
        } else if let Some(root) = &self.tls_root {
            Verification::RootFile(root.clone())
        } else {
            Verification::SystemRoots
        })
    }
}

/// How `moqt pub`, `sub` and `announced` survive a lost connection or a relay's GOAWAY.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Reconnection")]
pub struct ReconnectArgs {
    /// Do not reconnect: a lost connection ends the command, a GOAWAY is only reported.
    #[arg(long)]
    pub no_reconnect: bool,
    /// The first delay before dialling again after a loss, in ms (doubling, with up to 50%
    /// jitter off, up to --reconnect-max-delay).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub reconnect_delay: u64,
    /// The longest delay between attempts, in ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub reconnect_max_delay: u64,
    /// Give up after this many failed attempts in a row [default: never].
    #[arg(long, value_name = "N")]
    pub reconnect_attempts: Option<u32>,
}

impl ReconnectArgs {
    /// The policy these flags describe.
    pub fn policy(&self) -> ReconnectPolicy {
        if self.no_reconnect {
            return ReconnectPolicy::disabled();
        }
        let initial = Duration::from_millis(self.reconnect_delay.max(1));
        ReconnectPolicy {
            enabled: true,
            initial_backoff: initial,
            max_backoff: Duration::from_millis(self.reconnect_max_delay).max(initial),
            max_attempts: self.reconnect_attempts.filter(|n| *n > 0),
            ..ReconnectPolicy::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct PubArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    /// The broadcast path.
    pub broadcast: String,
    /// The track name [default: "seconds" with --clock, else "data"].
    #[arg(long)]
    pub track: Option<String>,
    /// Publish a clock: one group per minute, frame 0 "YYYY-MM-DD HH:MM:", then "SS" each second.
    #[arg(long)]
    pub clock: bool,
    /// Test pattern: frames per second.
    #[arg(long)]
    pub fps: Option<f64>,
    /// Test pattern: bits per second (sets the frame size from --fps).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Test pattern: frame size in bytes (at least 16) [default: 1024].
    #[arg(long)]
    pub size: Option<usize>,
    /// Test pattern: frames per group [default: one group per second].
    #[arg(long)]
    pub group: Option<u64>,
    /// Stdin: fixed frame size in bytes (one group per frame) instead of one group per line.
    #[arg(long)]
    pub frame_size: Option<usize>,
    /// Stop after this many frames (test pattern and clock).
    #[arg(long)]
    pub count: Option<u64>,
    /// Start publishing only once a subscriber is there (with --media: to every rendition).
    #[arg(long)]
    pub wait_subscriber: bool,
    #[command(flatten)]
    pub media: crate::media::MediaPubArgs,
}

#[derive(Debug, Args)]
pub struct SubArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    /// The broadcast path.
    pub broadcast: String,
    /// The track name [default: "data"].
    #[arg(long)]
    pub track: Option<String>,
    /// Print received rate, groups lost and test-pattern latency instead of the frames.
    #[arg(long)]
    pub stats: bool,
    /// Write frames without a newline after each.
    #[arg(long)]
    pub raw: bool,
    /// Exit after this many frames.
    #[arg(long)]
    pub count: Option<u64>,
    /// Subscriber priority (0–255).
    #[arg(long, default_value_t = 128)]
    pub priority: u8,
    /// Max latency in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub max_latency: u64,
    #[command(flatten)]
    pub media: crate::media::MediaSubArgs,
}

#[derive(Debug, Args)]
pub struct AnnouncedArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    /// The prefix [default: everything].
    #[arg(default_value = "")]
    pub prefix: String,
    /// Exit after this many announcement events.
    #[arg(long)]
    pub count: Option<u64>,
}

/// `url` with its `jwt` query parameter set to `jwt` (other parameters kept).
pub fn with_jwt(url: &str, jwt: &str) -> Result<String> {
    let mut parsed = url::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
    let kept: Vec<(String, String)> =
        parsed.query_pairs().filter(|(k, _)| k != "jwt").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    parsed.query_pairs_mut().clear().extend_pairs(kept).append_pair("jwt", jwt);
    Ok(parsed.to_string())
}

pub fn parse_version(s: &str) -> Result<Version, String> {
    s.parse::<Version>().map_err(|e| e.to_string())
}

pub fn parse_dialect(s: &str) -> Result<Dialect, String> {
    s.parse::<Dialect>().map_err(|_| format!("unknown dialect {s:?} (draft, gomoqt)"))
}

/// The `[relay]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayFile {
    pub listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub tls_generate: Vec<String>,
    #[serde(default)]
    pub peers: Vec<String>,
    pub peer_fingerprint: Option<String>,
    #[serde(default)]
    pub peer_disable_verify: bool,
    pub next_uri: Option<String>,
    pub drain_timeout: Option<f64>,
    pub web_root: Option<PathBuf>,
    #[serde(alias = "cluster_id")]
    pub hop_id: Option<u64>,
    #[serde(default)]
    pub versions: Vec<String>,
    /// The cluster keys (the flags of the same names).
    pub peer_list: Option<String>,
    pub peer_list_interval: Option<f64>,
    pub peer_token: Option<PathBuf>,
    #[serde(alias = "cluster_max_hops")]
    pub max_hops: Option<usize>,
    #[serde(default)]
    pub auth: crate::auth_cmd::AuthFile,
    /// `[relay.limits]`: the same keys as the limit flags, with underscores.
    #[serde(default)]
    pub limits: LimitArgs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub relay: RelayFile,
}

/// Reads the configuration file, if any.
pub fn load(path: Option<&PathBuf>) -> Result<File> {
    let Some(path) = path else { return Ok(File::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl RelayArgs {
    /// Fills unset flags from the file.
    pub fn merge(mut self, file: RelayFile) -> Result<RelayArgs> {
        self.listen = self.listen.or(file.listen);
        self.tls_cert = self.tls_cert.or(file.tls_cert);
        self.tls_key = self.tls_key.or(file.tls_key);
        if self.tls_generate.is_empty() {
            self.tls_generate = file.tls_generate;
        }
        if self.peers.is_empty() {
            self.peers = file.peers;
        }
        self.peer_fingerprint = self.peer_fingerprint.or(file.peer_fingerprint);
        self.peer_disable_verify |= file.peer_disable_verify;
        self.next_uri = self.next_uri.or(file.next_uri);
        self.drain_timeout = self.drain_timeout.or(file.drain_timeout);
        self.web_root = self.web_root.or(file.web_root);
        self.hop_id = self.hop_id.or(file.hop_id);
        self.cluster = self.cluster.merge(crate::cluster::ClusterArgs {
            peer_list: file.peer_list,
            peer_list_interval: file.peer_list_interval,
            peer_token: file.peer_token,
            max_hops: file.max_hops,
        });
        self.auth = self.auth.merge(file.auth);
        self.limits = self.limits.merge(file.limits);
        if self.versions.is_empty() {
            for v in &file.versions {
                self.versions.push(parse_version(v).map_err(|e| anyhow::anyhow!("config file: {e}"))?);
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Splits a shell line into words: spaces separate, single quotes group, `#` starts a comment.
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut word, mut quoted, mut in_word) = (Vec::new(), String::new(), false, false);
        for c in line.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    in_word = true;
                }
                '#' if !quoted && !in_word => break,
                c if c.is_whitespace() && !quoted => {
                    if in_word {
                        out.push(std::mem::take(&mut word));
                    }
                    in_word = false;
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            out.push(word);
        }
        out
    }

    const ALL: [&str; 8] = [
        MAIN_EXAMPLES,
        RELAY_EXAMPLES,
        PUB_EXAMPLES,
        SUB_EXAMPLES,
        ANNOUNCED_EXAMPLES,
        INTEROP_EXAMPLES,
        WIRE_EXAMPLES,
        WIRE_EXAMPLES,
    ];

    #[test]
    fn every_help_example_parses() {
        let mut checked = 0;
        for text in ALL {
            for line in text.lines().filter(|l| l.starts_with("  ")) {
                // The moqt part of a pipeline (`echo hello | moqt …`, `moqt … | ffplay -`).
                let command = line.split("| ").map(str::trim).find(|part| part.starts_with("moqt ")).unwrap_or(line);
                let argv = words(&command.replace("HEX", &"ab".repeat(32)));
                assert_eq!(argv.first().map(String::as_str), Some("moqt"), "{line}");
                if let Err(e) = Cli::try_parse_from(&argv) {
                    panic!("help example does not parse: {line}\n{e}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "{checked} examples");
    }

    #[test]
    fn every_command_shows_its_examples_on_one_screen() {
        let mut root = Cli::command();
        let main = root.render_long_help().to_string();
        assert!(main.contains("moqt relay") && main.contains("Examples"), "{main}");
        for path in [
            vec!["relay"],
            vec!["pub"],
            vec!["sub"],
            vec!["announced"],
            vec!["interop", "server"],
            vec!["interop", "client"],
            vec!["wire", "decode"],
        ] {
            let mut cmd = root.clone();
            for name in &path {
                cmd = cmd.find_subcommand(name).unwrap().clone();
            }
            let help = cmd.render_long_help().to_string();
            let examples = help.split("Examples").nth(1).unwrap_or_else(|| panic!("{path:?} has no examples"));
            let lines = examples.lines().count();
            assert!(lines <= 20, "{path:?}: {lines} lines of examples");
            assert!(examples.contains(&format!("moqt {}", path.join(" "))), "{path:?}: {examples}");
        }
        for text in ALL {
            assert!(text.lines().all(|l| l.chars().count() <= 110), "{text}");
        }
    }

    #[test]
    fn cluster_keys_in_the_relay_table() {
        let file: File = toml::from_str(
            "[relay]\ncluster_id = 7\npeers = [\"moqt://a:1?cost=2\"]\npeer_list = \"peers.json\"\n\
             peer_list_interval = 2.5\ncluster_max_hops = 8\n",
        )
        .unwrap();
        let args = RelayArgs::default().merge(file.relay).unwrap();
        assert_eq!(args.hop_id, Some(7));
        assert_eq!(args.peers, ["moqt://a:1?cost=2"]);
        assert_eq!(args.cluster.peer_list.as_deref(), Some("peers.json"));
        assert_eq!(args.cluster.peer_list_interval, Some(2.5));
        assert_eq!(args.cluster.max_hops().unwrap(), Some(8));
        // Flags win over the file.
        let flags = RelayArgs {
            cluster: crate::cluster::ClusterArgs { max_hops: Some(33), ..Default::default() },
            ..RelayArgs::default()
        };
        let args = flags.merge(RelayFile { max_hops: Some(8), ..RelayFile::default() }).unwrap();
        assert!(args.cluster.max_hops().is_err(), "33 is out of range");
        let parsed =
            Cli::try_parse_from(["moqt", "relay", "--cluster-connect", "moqt://b:2", "--cluster-max-hops", "4"]);
        let Command::Relay(args) = parsed.unwrap().command else { panic!("relay") };
        assert_eq!((args.peers.len(), args.cluster.max_hops), (1, Some(4)));
    }

    /// A relay with cluster peers runs one node worker (its links, routes and failover live in
    /// one node); the runtime still gets a thread per core. Without peers `--workers` decides.
    #[test]
    fn a_cluster_relay_runs_one_worker() {
        let relay = |argv: &[&str]| {
            let Command::Relay(args) = Cli::try_parse_from(argv).unwrap().command else { panic!("relay") };
            args
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let plain = relay(&["moqt", "relay", "--workers", "3"]);
        assert_eq!((crate::relay_cmd::workers(&plain), crate::relay_cmd::threads(&plain)), (3, cores.max(3)));
        let peered = relay(&["moqt", "relay", "--peer", "moqt://b:2"]);
        assert_eq!((crate::relay_cmd::workers(&peered), crate::relay_cmd::threads(&peered)), (1, cores));
        let listed = relay(&["moqt", "relay", "--peer-list", "peers.json"]);
        assert_eq!(crate::relay_cmd::workers(&listed), 1);
    }
}
