//! `serialgate ssh [USER@]INSTANCE [-- SSH_ARGS…]`: log in to an instance in one step, as
//! `aws ec2-instance-connect ssh` and `mssh` do. Finds the instance's address
//! (DescribeInstances), pushes an ephemeral ed25519 key for USER (SendSSHPublicKey), then runs
//! the system `ssh` with that key only, and exits with its exit code.
//!
//! Invariants: the private key touches no disk (a tmpfs file, 0600, there only while `ssh`
//! runs, removed on every exit path including signals, which are passed on to `ssh`); the
//! user's ssh arguments are passed unchanged; `--print-command` pushes nothing.

pub mod command;
pub mod describe;
pub mod key_file;
pub mod xml;

use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::args::InstanceSshArgs;
use crate::aws;
use crate::errors::{Failure, exit, report};
use crate::push;
use crate::signals::{Event, Signals};
use command::Target;
use key_file::KeyFile;

/// The `--help` text on exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
    ssh's exit code once ssh ran (the remote command's, or 255 for ssh's own errors)
    1    other errors before ssh ran (unexpected responses, local I/O)
    2    usage: bad flags or values, no region configured
    3    the API refused DescribeInstances or the key push, or the instance is unknown
    4    credentials: none found, or not accepted
    5    network: the API could not be reached";

/// Runs the command; returns the exit code.
pub async fn run(args: InstanceSshArgs) -> i32 {
    report(run_inner(args).await)
}

async fn run_inner(args: InstanceSshArgs) -> Result<i32, Failure> {
    let target = command::parse_target(&args.target)?;
    if let Some(address) = &args.address
        && (address.is_empty() || address.starts_with('-'))
    {
        return Err(Failure::usage(format!(
            "--address {address:?} is not a host"
        )));
    }
    let key_path = key_file::new_path(&key_file::directory(std::env::var_os("XDG_RUNTIME_DIR"))?);

    if args.print_command {
        // Nothing is pushed; the address is looked up only when not given.
        let host = match &args.address {
            Some(address) => address.clone(),
            None => {
                let loaded = aws::load(&args.aws).await?;
                let credentials = loaded.credentials().await?;
                lookup_address(&loaded, credentials, &args, &target).await?
            }
        };
        let ssh_args = command::ssh_args(&key_path, args.port, &target.user, &host, &args.ssh_args);
        println!("{}", command::shell_line(&ssh_args));
        return Ok(exit::OK);
    }
    let loaded = aws::load(&args.aws).await?;
    let credentials = loaded.credentials().await?;
    let private_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Failure::other(format!("cannot generate a key: {e}")))?;
    let public_key = private_key
        .public_key()
        .to_openssh()
        .map_err(|e| Failure::other(format!("cannot encode the public key: {e}")))?;
    let api = loaded.clone().client_with(credentials.clone());
    let push = push::os_user_key(&api, &target.instance, &target.user, &public_key, None);
    // The push does not need the address: both calls go out at once (two round trips to two
    // endpoints on AWS). A failed lookup leaves a pushed key that lapses unused.
    let host = match &args.address {
        Some(address) => {
            push.await?;
            address.clone()
        }
        None => {
            let (host, _request_id) =
                tokio::try_join!(lookup_address(&loaded, credentials, &args, &target), push)?;
            host
        }
    };
    let ssh_args = command::ssh_args(&key_path, args.port, &target.user, &host, &args.ssh_args);

    // Signals are taken before the key file exists: from here on none ends the process with
    // the file left behind.
    let signals = Signals::new()
        .map_err(|e| Failure::other(format!("cannot install signal handlers: {e}")))?;
    let pem = private_key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Failure::other(format!("cannot encode the private key: {e}")))?;
    let key = KeyFile::create(key_path, pem.as_bytes())?;
    let code = run_ssh(&ssh_args, signals, &target).await;
    drop(key);
    code
}

/// The instance's address from DescribeInstances: its public IPv4 address, else its private one.
async fn lookup_address(
    loaded: &aws::Loaded,
    credentials: aws_credential_types::Credentials,
    args: &InstanceSshArgs,
    target: &Target,
) -> Result<String, Failure> {
    let endpoint = loaded.ec2_endpoint(args.aws.endpoint_url.as_deref());
    let found = describe::addresses(loaded, credentials, &endpoint, &target.instance).await?;
    command::choose_address(found.public, found.private).ok_or_else(|| {
        Failure::new(
            exit::API_REFUSED,
            format!(
                "{} has neither a public nor a private IP address in DescribeInstances; pass \
                 --address",
                target.instance
            ),
        )
    })
}

/// Runs `ssh` to its end, passing on SIGINT, SIGTERM and SIGHUP; its exit code, or 128 + the
/// signal that ended it.
async fn run_ssh(args: &[String], mut signals: Signals, target: &Target) -> Result<i32, Failure> {
    let mut child = tokio::process::Command::new(command::SSH)
        .args(args)
        .spawn()
        .map_err(|e| Failure::other(format!("cannot run {}: {e}", command::SSH)))?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            event = signals.recv() => {
                if let (Event::Terminate(number), Some(pid)) = (event, pid) {
                    forward(pid, number);
                }
            }
        }
    };
    let status = status
        .map_err(|e| Failure::other(format!("waiting for ssh to {}: {e}", target.instance)))?;
    use std::os::unix::process::ExitStatusExt as _;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| exit::SIGNAL_BASE + s))
        .unwrap_or(exit::OTHER))
}

fn forward(pid: rustix::process::Pid, number: i32) {
    use rustix::process::Signal;
    let signal = match number {
        1 => Signal::HUP,
        2 => Signal::INT,
        _ => Signal::TERM,
    };
    // The child may be gone already; there is nothing else to do then.
    let _ = rustix::process::kill_process(pid, signal);
}
