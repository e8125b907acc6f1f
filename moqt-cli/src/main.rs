//! The `moqt` command-line tool: relay, publish, subscribe, list announcements, decode wire bytes.

mod auth_cmd;
mod auth_server;
mod bench;
mod cli;
mod client_cmd;
mod cluster;
mod hints;
mod http;
mod interop;
mod limit_args;
mod link;
mod media;
mod relay_cmd;
mod stats;
mod sub_cmd;
mod token;
mod wire;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, WireCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: logs piped to a file or a journal stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The relay runs a thread per worker (`--workers`) and per core.
    if let Command::Relay(args) = &cli.command {
        builder.worker_threads(relay_cmd::threads(args));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = cli::load(cli.config.as_ref())?;
    match cli.command {
        Command::Relay(args) => relay_cmd::run(args.merge(file.relay)?).await,
        Command::Pub(args) => client_cmd::publish(args).await,
        Command::Sub(args) => sub_cmd::subscribe(args).await,
        Command::Announced(args) => client_cmd::announced(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Interop { command: interop::InteropCommand::Server(args) } => interop::server(args).await,
        Command::Interop { command: interop::InteropCommand::Client(args) } => interop::client(args).await,
        Command::Token { command } => token::run(command),
        Command::Wire { command: WireCommand::Decode(args) } => {
            let hex = args.hex.join(" ");
            let hex = if hex.trim().is_empty() {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                hex
            };
            for line in wire::decode(args.version, args.dialect, args.responder.as_deref(), &hex)? {
                println!("{line}");
            }
            Ok(())
        }
    }
}
