//! Commands and flags. The script passes everything explicitly; the defaults suit a manual run.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{Res, direct, echo, hub_fanout, idle, log_cost, open_rate};

/// The SSH gateway's benchmarks (see scripts/bench-ssh.sh).
#[derive(Debug, Parser)]
#[command(name = "bench-ssh")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the console: a unix-socket echo server that writes a banner on connect.
    Console(ConsoleArgs),
    /// Print a serialgate configuration (TOML) with generated instances on one console.
    Config(ConfigArgs),
    /// Session-open rate and latency, serialgate against sshd.
    OpenRate(OpenRateArgs),
    /// Keystroke echo round trip: through a gateway session against the console directly.
    Echo(EchoArgs),
    /// serialgate's resident memory per idle connected session.
    Idle(IdleArgs),
    /// Run the source console: prints bulk output or a trickle on command.
    SourceConsole(SourceConsoleArgs),
    /// The output side's cost: bulk MB/s, CPU per MB and trickle CPU through one session,
    /// with spectators watching or not.
    LogCost(LogCostArgs),
    /// The baseline: the source console's bulk burst read straight from its socket.
    Direct(DirectArgs),
    /// The hub's own fan-out cost in process, without SSH: the writer alone, recording, and
    /// 1, 8 and 7+1 stalled spectators.
    HubFanout(HubFanoutArgs),
    /// Print N distinct free loopback TCP ports (bound at once, then released).
    FreePorts {
        #[arg(default_value_t = 1)]
        n: usize,
    },
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Unix socket to listen on (replaced if it exists).
    #[arg(long)]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Number of instances to generate (ids from `config::instance_id`).
    #[arg(long, default_value_t = 1000)]
    pub instances: usize,
    /// The console socket every instance points at.
    #[arg(long)]
    pub console: PathBuf,
    #[arg(long)]
    pub api_listen: SocketAddr,
    #[arg(long)]
    pub ssh_listen: SocketAddr,
    #[arg(long)]
    pub state_dir: PathBuf,
}

/// How to reach serialgate: its SSH and API endpoints and its host key.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// serialgate's SSH address.
    #[arg(long)]
    pub gateway_ssh: SocketAddr,
    /// serialgate's API address (keys are pushed there).
    #[arg(long)]
    pub gateway_api: SocketAddr,
    /// serialgate's host key, one OpenSSH public key line (`serialgate host-key --public-key-only`).
    #[arg(long)]
    pub gateway_host_key: PathBuf,
    /// Instances in the configuration (as given to `config --instances`).
    #[arg(long, default_value_t = 1000)]
    pub instances: usize,
}

/// How to reach sshd.
#[derive(Debug, Clone, Args)]
pub struct SshdArgs {
    /// sshd's address.
    #[arg(long)]
    pub sshd: SocketAddr,
    /// sshd's host public key file.
    #[arg(long)]
    pub sshd_host_key: PathBuf,
    /// The user to log in to sshd as.
    #[arg(long, default_value = "root")]
    pub sshd_user: String,
}

/// The client key.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Private key (OpenSSH format); its `.pub` sibling is what gets pushed.
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct OpenRateArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub sshd: SshdArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Sessions opened one at a time, per server.
    #[arg(long, default_value_t = 200)]
    pub sessions: usize,
    /// Parallel workers.
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
    /// Sessions per parallel worker.
    #[arg(long, default_value_t = 25)]
    pub per_worker: usize,
    /// Untimed sessions opened on each server before measuring.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Request a pty before the shell (as an interactive `ssh` does).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pty: bool,
    /// serialgate's process id: its CPU time per session is reported.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// sshd's (listener) process id: its CPU time and its reaped children's per session.
    #[arg(long)]
    pub sshd_pid: Option<u32>,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// sshd as a reference path (sshd + socat); optional.
    #[arg(long, requires = "sshd_host_key")]
    pub sshd: Option<SocketAddr>,
    #[arg(long)]
    pub sshd_host_key: Option<PathBuf>,
    #[arg(long, default_value = "root")]
    pub sshd_user: String,
    /// The console socket, for the direct measurement.
    #[arg(long)]
    pub console: PathBuf,
    /// Round trips measured on each path.
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Unmeasured round trips before measuring.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// serialgate's process id (its /proc/PID/status is read).
    #[arg(long)]
    pub pid: u32,
    /// Idle sessions to open (at most the number of instances).
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Sessions opening at once (the gateway admits 64 unauthenticated per address).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Wait after the last session opened before reading the memory, milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,
    /// VmRSS of a serialgate at rest with `--baseline-instances` instances, KiB: the difference
    /// to this one at rest is what each further configured instance costs.
    #[arg(long)]
    pub baseline_rss_kib: Option<u64>,
    #[arg(long, default_value_t = 1)]
    pub baseline_instances: usize,
}

#[derive(Debug, Clone, Args)]
pub struct SourceConsoleArgs {
    /// Unix socket to listen on (replaced if it exists).
    #[arg(long)]
    pub socket: PathBuf,
    /// Bytes one bulk burst prints.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub bulk_bytes: u64,
    /// Bytes per second of the trickle.
    #[arg(long, default_value_t = 256 * 1024)]
    pub trickle_rate: u64,
    /// How long the trickle lasts, milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub trickle_ms: u64,
}

#[derive(Debug, Args)]
pub struct DirectArgs {
    /// The source console's socket.
    #[arg(long)]
    pub socket: PathBuf,
    /// Bytes of one bulk burst (as given to `source-console`).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub bulk_bytes: u64,
    /// Bulk bursts measured (after one unmeasured).
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
}

#[derive(Debug, Args)]
pub struct HubFanoutArgs {
    /// The source console's socket.
    #[arg(long)]
    pub socket: PathBuf,
    /// Bytes of one bulk burst (as given to `source-console`).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub bulk_bytes: u64,
    /// Bulk bursts measured per set-up (after one unmeasured).
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// The hub's read size (`ConsoleOptions::read_chunk`). Default: serialgate's.
    #[arg(long)]
    pub read_chunk: Option<usize>,
}

#[derive(Debug, Args)]
pub struct LogCostArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// serialgate's process id (its CPU time is read).
    #[arg(long)]
    pub pid: u32,
    /// Bytes of one bulk burst (as given to `source-console`).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub bulk_bytes: u64,
    /// Bulk bursts measured (after one unmeasured).
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// Names the run in the output (`log-on`, `8-spectators`, …).
    #[arg(long)]
    pub label: String,
    /// Read-only spectators draining their own sessions during the measurements.
    #[arg(long, default_value_t = 0)]
    pub spectators: usize,
    /// One more spectator that never reads.
    #[arg(long)]
    pub stalled: bool,
}

pub async fn run_bench(command: Command) -> Res<()> {
    match command {
        Command::LogCost(args) => log_cost::run(args).await,
        Command::Direct(args) => direct::run(args).await,
        Command::HubFanout(args) => hub_fanout::run(args).await,
        Command::OpenRate(args) => open_rate::run(args).await,
        Command::Echo(args) => echo::run(args).await,
        Command::Idle(args) => idle::run(args).await,
        Command::Console(_)
        | Command::SourceConsole(_)
        | Command::Config(_)
        | Command::FreePorts { .. } => Err("not a benchmark".into()),
    }
}
