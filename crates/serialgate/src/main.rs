//! `serialgate`: the command line. Thin: parse arguments, load configuration, call the libraries.

mod audit_cmd;
mod cli;
mod cluster;
mod cluster_cmd;
mod config;
mod console_log_cmd;
mod instances;
mod limits;
mod listen;
mod policy_cmd;
mod ready;
mod recordings_cmd;
mod relay_cmd;
mod serve;
mod stores;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // sshd runs this on every public key login: it sets up only what it uses (its own
    // current-thread runtime, no log subscriber).
    if let cli::Command::AuthorizedKeys(args) = &cli.command {
        return ExitCode::from(u8::try_from(client::authorized_keys(args)).unwrap_or(u8::MAX));
    }
    // QEMU runs this once per guest connection: no runtime, no logging set up.
    if let cli::Command::VmKeysRelay(args) = &cli.command {
        return match relay_cmd::run(&args.socket) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("serialgate vm-keys-relay: {}: {e}", args.socket.display());
                ExitCode::FAILURE
            }
        };
    }
    init_logging(cli.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serialgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serialgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// clap's message and exit code (2, or 0 for `--help`), except for sshd's helper: as AWS's
/// `eic_run_authorized_keys`, `authorized-keys` exits 255 on every failure, a mistyped
/// `AuthorizedKeysCommand` line included.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    let helper = std::env::args_os()
        .skip(1)
        .take(3)
        .any(|a| a == "authorized-keys");
    if helper && e.use_stderr() {
        ExitCode::from(255)
    } else {
        ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
    }
}

/// Logs go to stderr. `--log-level` or `SERIALGATE_LOG` / `RUST_LOG` take tracing filter syntax.
fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = level
        .map(str::to_owned)
        .or_else(|| std::env::var("SERIALGATE_LOG").ok())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,russh=warn".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
