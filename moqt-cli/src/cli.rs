//! Command-line arguments and the optional TOML configuration file. Flags override the file;
//! the file overrides the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use moqt_driver_tokio::tls::{Fingerprint, Verification};
use moqt_proto::{Dialect, Version};
use serde::Deserialize;

/// moqt: Media over QUIC (moq-lite 03–06) relay and tools.
#[derive(Debug, Parser)]
#[command(name = "moqt", version, about)]
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a relay: raw QUIC + WebTransport on one UDP port, HTTP on the same TCP port number.
    Relay(RelayArgs),
    /// Publish a broadcast: stdin, a clock track, or a test pattern.
    Pub(PubArgs),
    /// Subscribe to a track and write its frames to stdout (or print stats).
    Sub(SubArgs),
    /// List live broadcasts under a prefix, then their comings and goings.
    Announced(AnnouncedArgs),
    /// gomoqt's interop scenario: `interop server` and `interop client URL`.
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
    Wire {
        #[command(subcommand)]
        command: WireCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WireCommand {
    /// Decode the bytes of one stream direction into one JSON object per message.
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
    /// Another relay to link with (moqt:// or https://); repeatable.
    #[arg(long = "peer")]
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
    /// This relay's hop id (non-zero) [default: random].
    #[arg(long)]
    pub hop_id: Option<u64>,
    /// Only these versions (repeatable) [default: all].
    #[arg(long = "version", value_parser = parse_version)]
    pub versions: Vec<Version>,
}

#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// moqt://host:port (raw QUIC) or https://host:port/path (WebTransport).
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
}

impl ConnectArgs {
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

#[derive(Debug, Args)]
pub struct PubArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
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
}

#[derive(Debug, Args)]
pub struct SubArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
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
}

#[derive(Debug, Args)]
pub struct AnnouncedArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The prefix [default: everything].
    #[arg(default_value = "")]
    pub prefix: String,
    /// Exit after this many announcement events.
    #[arg(long)]
    pub count: Option<u64>,
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
    pub hop_id: Option<u64>,
    #[serde(default)]
    pub versions: Vec<String>,
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
        if self.versions.is_empty() {
            for v in &file.versions {
                self.versions.push(parse_version(v).map_err(|e| anyhow::anyhow!("config file: {e}"))?);
            }
        }
        Ok(self)
    }
}
