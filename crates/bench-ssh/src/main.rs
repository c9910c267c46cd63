//! `bench-ssh`: the SSH gateway's benchmarks, driven by `scripts/bench-ssh.sh`.
//!
//! Subcommands:
//! - `console`: the console every benchmark talks to, a unix-socket echo server that writes a
//!   banner (`ok\r\n`) on connect, so "the first console byte" is defined.
//! - `config`: writes a serialgate configuration with N generated instances on that console.
//! - `open-rate`: session-open rate and latency (TCP connect to first console byte), one at a
//!   time and in parallel, serialgate against OpenSSH's sshd, with the same russh client code.
//! - `echo`: keystroke echo round trip through a gateway session against a direct connection to
//!   the console socket (and, for reference, through sshd + socat).
//! - `idle`: serialgate's resident memory per idle connected session.
//! - `source-console`, `log-cost`: the output side's cost (scripts/bench-fanout.sh): bulk
//!   throughput and CPU per MB, and CPU for a trickle, through one session, with the console
//!   log on or off and 0, 1 or 8 spectators (and one that never reads).
//! - `direct`: the baseline of the output benchmarks, the bulk burst read straight from the
//!   source console's socket.
//! - `hub-fanout`: the same bursts through an in-process hub, without SSH: the fan-out's own
//!   cost (writer alone, recording, 1 / 8 / 7+1 stalled spectators).
//! - `free-ports`: N free loopback ports for the script.
//!
//! Every benchmark prints its own section and `SUMMARY\t…` lines the script collects into one
//! table. Nothing is asserted: targets are printed as met / NOT met.

mod cli;
mod config;
mod console;
mod direct;
mod echo;
mod hub_fanout;
mod idle;
mod log_cost;
mod open_rate;
mod procfs;
mod push;
mod source;
mod ssh;
mod stats;

use std::process::ExitCode;

use clap::Parser;

/// Errors of the benchmarks: anything, with its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Results of the benchmarks.
pub type Res<T> = Result<T, BoxError>;

/// Binds `n` loopback ports at once (so they differ), prints them, releases them.
fn free_ports(n: usize) -> Res<()> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    println!("{}", ports.join(" "));
    Ok(())
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        // The console runs on one thread: its work is trivial, and it should not compete with
        // the servers and the client for the machine's CPUs more than it must.
        cli::Command::Console(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BoxError::from)
            .and_then(|rt| rt.block_on(console::run(args))),
        cli::Command::SourceConsole(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BoxError::from)
            .and_then(|rt| rt.block_on(source::run(args))),
        cli::Command::Config(args) => config::run(&args),
        cli::Command::FreePorts { n } => free_ports(n),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(BoxError::from)
            .and_then(|rt| rt.block_on(cli::run_bench(command))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-ssh: {e}");
            ExitCode::FAILURE
        }
    }
}
