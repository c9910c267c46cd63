//! Commands and flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::serve;

/// A self-hosted EC2 Instance Connect serial console.
///
/// serialgate answers the AWS `SendSerialConsoleSSHPublicKey` and `SendSSHPublicKey` API (AWS
/// JSON 1.1, SigV4) so that the AWS CLI and SDKs can push a key, then lets the holder of that
/// key open one SSH session onto the instance's serial console within 60 seconds.
#[derive(Debug, Parser)]
#[command(name = "serialgate", version, propagate_version = true)]
pub struct Cli {
    /// Log filter (e.g. `info`, `debug`, `serialgate=debug,russh=info`). Default: `info`, or
    /// `SERIALGATE_LOG` / `RUST_LOG` when set.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and the SSH gateway.
    ///
    /// With no --config, runs the embedded default: API on 127.0.0.1:4580, SSH on
    /// 127.0.0.1:2222, demo account 000000000000 with access key `test` / secret `test`, and
    /// demo instance i-0123456789abcdef0 whose console is the built-in simulator.
    Serve(ServeArgs),
    /// Check a configuration file and print what it defines, or print the embedded default.
    Config(ConfigArgs),
    /// Print the SSH host key (OpenSSH public key) and its SHA256 fingerprint.
    ///
    /// Pin it in known_hosts, e.g.:
    ///   echo "[127.0.0.1]:2222 $(serialgate host-key --public-key-only)" >> ~/.ssh/known_hosts
    /// The key is created in state_dir on first `serve` (or by this command).
    HostKey(HostKeyArgs),
    /// Print the public key that signs the keys instances fetch, as one OpenSSH line.
    ///
    /// Instances pin it (`signer_public_key` of `serialgate authorized-keys`) and trust only
    /// records it signed. The key is created in state_dir on first `serve` (or by this
    /// command); every node of a cluster needs the same file.
    SignerKey(SignerKeyArgs),
    /// Read the audit trail: API calls and SSH sessions, oldest first.
    ///
    /// From `[audit] postgres` when configured, else from state_dir/audit.db. Times are
    /// RFC 3339, e.g. `serialgate audit --since 2026-11-27T21:00:00Z --instance i-0123…`.
    Audit(crate::audit_cmd::AuditArgs),
    /// Print an instance's console log, kept on disk by the node that holds the console.
    ///
    /// Reads state_dir/console/INSTANCE/ directly, so run it on that node (in a cluster, the
    /// console's owner: `serialgate cluster status`). Terminal escape sequences are removed
    /// unless --raw. E.g. `serialgate console-log i-0123… --since 10m --follow`.
    ConsoleLog(crate::console_log_cmd::ConsoleLogArgs),
    /// List, play and export session recordings (asciicast v2), kept by the node that accepted
    /// the session.
    ///
    /// Reads state_dir/recordings directly. E.g. `serialgate recordings list --since 1h`,
    /// `serialgate recordings play 20261202T0330 --speed 4`, `serialgate recordings export ID >
    /// session.cast` (which `asciinema play` replays).
    Recordings(crate::recordings_cmd::RecordingsArgs),
    /// Check the configured IAM policies, or simulate a request against a credential's.
    ///
    /// `serialgate policy check -c FILE` validates every policy and warns about statements
    /// that can never match; `serialgate policy simulate -c FILE --access-key-id ID --action A
    /// --resource ARN [--context KEY=VALUE]…` prints the decision and the deciding statement.
    Policy(crate::policy_cmd::PolicyArgs),
    /// The nodes of a cluster and which one owns each console (`serialgate cluster status`).
    Cluster(crate::cluster_cmd::ClusterArgs),
    /// Open an instance's serial console in one step (AWS or a serialgate).
    ///
    /// Resolves credentials through the standard AWS chain, generates an ephemeral ed25519 key
    /// in memory, pushes it with SendSerialConsoleSSHPublicKey and opens the SSH session onto
    /// the console with the terminal in raw mode. After a newline: ~. disconnects, ~B sends a
    /// BREAK, ~? lists the escapes, ~~ sends a ~.
    ///
    /// Example (the embedded default server):
    ///   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test serialgate connect \
    ///     i-0123456789abcdef0 --region us-east-1 --endpoint-url http://127.0.0.1:4580 \
    ///     --host-key-fingerprint "$(serialgate host-key | tail -n1)"
    /// Scripted: add --non-interactive --login root:x --send 'uname -r' --expect '6\.1'
    ///   (--login logs in only at a login prompt and goes on at a shell prompt). A busy port
    ///   (a session open, or the last one tearing down): --wait waits for it, up to 60 s.
    #[command(after_help = client::EXIT_CODES_HELP, verbatim_doc_comment)]
    Connect(client::ConnectArgs),
    /// Push an SSH public key for an instance's serial console (SendSerialConsoleSSHPublicKey,
    /// or with --spectate a read-only spectator's, SpectateSerialConsole) and print the
    /// RequestId; then connect with any SSH client within 60 seconds.
    #[command(after_help = client::PUSH_EXIT_CODES_HELP)]
    Push(client::PushArgs),
    /// Push an SSH public key for an OS user on an instance (SendSSHPublicKey) and print the
    /// RequestId.
    #[command(after_help = client::PUSH_EXIT_CODES_HELP)]
    PushOsUserKey(client::PushOsUserKeyArgs),
    /// Print a link that opens an instance's serial console in a browser (serialgate only).
    ///
    /// The link is presigned with your AWS credentials (serialgate:OpenSerialConsole), valid
    /// for --expires seconds and good for one session. Open it in a browser on a machine that
    /// reaches the API endpoint:
    ///   serialgate console-url i-0123456789abcdef0 --endpoint-url http://127.0.0.1:4580
    #[command(after_help = client::PUSH_EXIT_CODES_HELP, verbatim_doc_comment)]
    ConsoleUrl(client::ConsoleUrlArgs),
    /// List the live serial console sessions across all nodes, or end one (serialgate only).
    ///
    /// Examples:
    ///   serialgate sessions list --endpoint-url http://127.0.0.1:4580
    ///   serialgate sessions end i-0123456789abcdef0 --reason "kernel update" \
    ///     --endpoint-url http://127.0.0.1:4580
    #[command(after_help = client::SESSIONS_EXIT_CODES_HELP, verbatim_doc_comment)]
    Sessions(client::SessionsArgs),
    /// Log in to an instance with the system's ssh, in one step, like `mssh`.
    ///
    /// As `aws ec2-instance-connect ssh` does: finds the instance's public (else private) IP
    /// address with DescribeInstances, pushes an ephemeral ed25519 key for the OS user with
    /// SendSSHPublicKey, and runs
    ///   ssh -o IdentitiesOnly=yes -i KEY -p PORT USER@ADDRESS [SSH_ARGS…]
    /// The private key lives in $XDG_RUNTIME_DIR (else /dev/shm) only while ssh runs. The
    /// instance's sshd fetches the key with `serialgate authorized-keys`.
    ///
    /// Example:
    ///   serialgate ssh admin@i-0123456789abcdef0 --endpoint-url https://serialgate:4580 \
    ///     -- -L 8080:localhost:80 uptime
    #[command(after_help = client::SSH_EXIT_CODES_HELP, verbatim_doc_comment)]
    Ssh(client::InstanceSshArgs),
    /// sshd's AuthorizedKeysCommand on an instance: print the keys pushed for USER.
    ///
    /// In sshd_config:
    ///   AuthorizedKeysCommand /usr/local/bin/serialgate authorized-keys %u %f
    ///   AuthorizedKeysCommandUser root
    /// Reads /etc/serialgate/authorized-keys.toml (endpoint, instance_id, key_token_file,
    /// signer_public_key, optional ca_file and timeout_ms), fetches the user's signed key
    /// records with the instance's proof, and prints only the keys whose records verify.
    /// Exits 0 when it printed a key, else 255; logs to stderr and syslog (authpriv).
    #[command(verbatim_doc_comment)]
    AuthorizedKeys(client::AuthorizedKeysArgs),
    /// Run by QEMU for each connection a managed VM opens to 169.254.169.254:80: relays it to
    /// the VM's instance keys socket.
    #[command(hide = true)]
    VmKeysRelay(crate::relay_cmd::RelayArgs),
}

#[derive(Debug, clap::Args)]
pub struct HostKeyArgs {
    /// Configuration whose state_dir holds the key. Default: the embedded default's.
    #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print only the public key line (for known_hosts).
    #[arg(long)]
    pub public_key_only: bool,
}

#[derive(Debug, clap::Args)]
pub struct SignerKeyArgs {
    /// Configuration whose state_dir holds the key. Default: the embedded default's.
    #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (see README "Configuration"). Default: the embedded demo setup.
    #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override `[api] listen`.
    #[arg(long, value_name = "ADDR")]
    pub api_listen: Option<SocketAddr>,
    /// Override `[ssh] listen`.
    #[arg(long, value_name = "ADDR")]
    pub ssh_listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// File to check. Without it, the embedded default is printed.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Loads `--config FILE` or the embedded default; returns it with its name for messages.
pub fn load_config(path: Option<&PathBuf>) -> Result<(Config, String), config::ConfigError> {
    match path {
        Some(p) => Ok((Config::load(p)?, p.display().to_string())),
        None => Ok((Config::embedded()?, "<embedded default>".to_owned())),
    }
}

pub async fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::HostKey(args) => {
            let (cfg, _) = load_config(args.config.as_ref())?;
            let (_, key) = serve::host_key(&cfg)?;
            let public = gateway::host_key::public_openssh(&key);
            if args.public_key_only {
                println!("{public}");
            } else {
                println!("{public}");
                println!("{}", gateway::host_key::fingerprint(&key));
            }
            Ok(())
        }
        Command::SignerKey(args) => {
            let (cfg, _) = load_config(args.config.as_ref())?;
            let (_, key) = serve::state_key(&cfg, serve::SIGNER_KEY)?;
            println!("{}", instance_keys::signer_public_line(&key)?);
            Ok(())
        }
        Command::Connect(args) => exit_with(client::connect(args).await),
        Command::Push(args) => exit_with(client::push(args).await),
        Command::PushOsUserKey(args) => exit_with(client::push_os_user_key(args).await),
        Command::Sessions(args) => exit_with(client::sessions(args).await),
        Command::ConsoleUrl(args) => exit_with(client::console_url::run(args).await),
        Command::Ssh(args) => exit_with(client::instance_ssh(args).await),
        // Run before the runtime and logging exist (see `main`); here for completeness.
        Command::AuthorizedKeys(args) => exit_with(client::authorized_keys(&args)),
        Command::VmKeysRelay(args) => Ok(crate::relay_cmd::run(&args.socket)?),
        Command::Audit(args) => crate::audit_cmd::run(args).await,
        Command::ConsoleLog(args) => crate::console_log_cmd::run(args).await,
        Command::Recordings(args) => crate::recordings_cmd::run(args).await,
        Command::Policy(args) => crate::policy_cmd::run(args),
        Command::Cluster(args) => crate::cluster_cmd::run(args).await,
        Command::Config(args) => {
            let Some(path) = &args.config else {
                print!("{}", config::EMBEDDED_DEFAULT);
                return Ok(());
            };
            let (cfg, origin) = load_config(Some(path))?;
            let built = config::build(&cfg, &origin)?;
            println!(
                "{origin}: OK — region {}, {} account(s), {} credential(s), {} instance(s); API {}, SSH {}",
                cfg.region,
                built.registry.accounts().count(),
                built.credentials.len(),
                built.registry.instances().count(),
                cfg.api.listen,
                cfg.ssh.listen
            );
            Ok(())
        }
    }
}

/// The client commands report their own errors and choose their exit codes (see `--help`).
fn exit_with(code: i32) -> Result<(), Box<dyn std::error::Error>> {
    if code == 0 {
        Ok(())
    } else {
        std::process::exit(code)
    }
}
