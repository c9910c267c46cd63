//! Command-line arguments of `connect`, `push`, `push-os-user-key`, `ssh` and
//! `authorized-keys` (clap derive; the binary embeds them as subcommands).

use std::path::PathBuf;

use crate::escape::parse_escape;
use crate::script::Script;

/// Where the API is and whose credentials sign for it (the standard AWS chain otherwise).
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// AWS Region. Default: AWS_REGION / AWS_DEFAULT_REGION, then the profile's `region`.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE, `default`).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// EC2 Instance Connect API endpoint, e.g. a serialgate's http://127.0.0.1:4580. Without
    /// it, AWS's endpoints (or AWS_ENDPOINT_URL[_EC2_INSTANCE_CONNECT]).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// PEM file of the certificate authorities to trust for HTTPS instead of the system's, e.g.
    /// the CA that signed a serialgate's `[api] tls_cert_file`. Default: AWS_CA_BUNDLE (as the
    /// AWS CLI). Applies to the API and to the calls that load credentials (SSO, STS).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
}

/// An escape character or none (`~`, `^]`, `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscapeChar(pub Option<u8>);

fn escape_char(text: &str) -> Result<EscapeChar, String> {
    parse_escape(text).map(EscapeChar)
}

/// The server's escape: as `[ssh] escape` allows, never one of its command letters.
fn remote_escape_char(text: &str) -> Result<EscapeChar, String> {
    match parse_escape(text)? {
        Some(c) if b".B?".contains(&c) => Err(format!(
            "`{text}` cannot be serialgate's escape: `.`, `B` and `?` are its commands"
        )),
        other => Ok(EscapeChar(other)),
    }
}

/// `serialgate connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The instance, e.g. i-0123456789abcdef0.
    #[arg(value_name = "INSTANCE_ID")]
    pub instance_id: String,

    /// Serial port (AWS supports port 0 only).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub port: u8,

    /// First show the last N lines of the console's history (1 to 10000), then live output:
    /// serialgate only (the SSH username gets `.replay-lines=N`; AWS refuses it). Not with
    /// scripted steps, which would take the history for the console's answers.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub replay: Option<u32>,

    /// Watch read-only, beside whoever holds the port (serialgate only: pushes a spectator's
    /// key with SpectateSerialConsole). Shows the last 50 lines first unless --replay says;
    /// what you type is not sent. Not with scripted steps.
    #[arg(long)]
    pub spectate: bool,

    /// Open the console in a browser instead (serialgate only): sign a console link
    /// (`serialgate console-url`) and open it with $BROWSER, else xdg-open (macOS: open).
    #[arg(long, conflicts_with_all = ["spectate", "replay"])]
    pub browser: bool,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// SSH endpoint. Default: AWS's serial console host for the Region on port 22, or with
    /// --endpoint-url the endpoint's host on port 2222.
    #[arg(long, value_name = "HOST[:PORT]", env = "SERIALGATE_SSH_ENDPOINT")]
    pub ssh_endpoint: Option<String>,

    /// known_hosts file to verify the SSH server with (default ~/.ssh/known_hosts). Not used
    /// for AWS's own endpoints, which are checked against AWS's published fingerprints.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// Trust an unknown SSH server on first use and record its key in known_hosts (a changed
    /// key is still refused).
    #[arg(long, conflicts_with = "host_key_fingerprint")]
    pub accept_new: bool,

    /// Trust exactly this SSH host key, e.g. SHA256:… as printed by `serialgate host-key`.
    #[arg(long, value_name = "SHA256:…")]
    pub host_key_fingerprint: Option<String>,

    /// Escape character (after a newline: `.` disconnect, `B` BREAK, `?` help), `^X`, or none
    /// (every byte goes as typed; a serialgate's own escape then applies: Enter ~B, Enter ~.).
    #[arg(long, default_value = "~", value_name = "CHAR|none", value_parser = escape_char)]
    pub escape: EscapeChar,

    /// The server's in-band escape (serialgate's `[ssh] escape`). Default: `~` with
    /// --endpoint-url, none against AWS.
    #[arg(long, value_name = "CHAR|none", value_parser = remote_escape_char)]
    pub remote_escape: Option<EscapeChar>,

    /// Seconds allowed for the SSH connection (resolve, connect, handshake, authenticate).
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub connect_timeout: u64,

    /// When the port is busy (its one session is open, or tearing down after the previous one
    /// ended), wait and connect once it frees: for up to SECONDS (default 60, at most 3600),
    /// with a countdown on stderr. Without it, a busy port ends `connect` with exit code 3.
    #[arg(
        long,
        value_name = "SECONDS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "60",
        value_parser = clap::value_parser!(u64).range(1..=crate::wait::MAX_SECS),
    )]
    pub wait: Option<u64>,

    /// Run the --expect/--send steps instead of attaching the terminal, copying the console
    /// output to stdout; disconnect after the last step.
    #[arg(long)]
    pub non_interactive: bool,

    /// Seconds each --expect may wait.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub timeout: f64,

    #[command(flatten)]
    pub script: Script,
}

/// `serialgate push`: SendSerialConsoleSSHPublicKey with your own key.
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// The instance, e.g. i-0123456789abcdef0.
    #[arg(value_name = "INSTANCE_ID")]
    pub instance_id: String,
    /// The public key (OpenSSH `.pub` or RFC 4716), or an unencrypted OpenSSH private key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Serial port (AWS supports port 0 only).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub port: u8,
    /// Push a spectator's key (serialgate's SpectateSerialConsole): it may watch the port
    /// read-only, once, as `ssh INSTANCE.portN.spectate@…`, even while a session holds it.
    #[arg(long)]
    pub spectate: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `serialgate console-url`: a presigned link to the browser console.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleUrlArgs {
    /// The instance, e.g. i-0123456789abcdef0.
    #[arg(value_name = "INSTANCE_ID")]
    pub instance_id: String,
    /// Serial port.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub port: u8,
    /// How long the link is valid, seconds (a server takes at most 60 unless configured
    /// otherwise: [browser] max_link_seconds).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub expires: u64,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `serialgate sessions`: serialgate's session control.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SessionsCommand {
    /// List the live serial console sessions on your instances, on every node
    /// (ListSerialConsoleSessions).
    List(SessionsListArgs),
    /// End the session on an instance's serial port: its user is told who ended it and why,
    /// and the port takes a new key at once (EndSerialConsoleSession).
    End(SessionsEndArgs),
}

/// How `sessions list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListOutput {
    Table,
    Json,
}

/// `serialgate sessions list`.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionsListArgs {
    /// Only this instance's sessions.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: Option<String>,
    /// `table` (default) or `json` (the API's answer).
    #[arg(long, value_enum, default_value_t = ListOutput::Table)]
    pub output: ListOutput,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `serialgate sessions end`.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionsEndArgs {
    /// The instance, e.g. i-0123456789abcdef0.
    #[arg(value_name = "INSTANCE_ID")]
    pub instance_id: String,
    /// Serial port (AWS supports port 0 only).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub port: u8,
    /// Shown to the session's user (at most 256 printable characters).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `serialgate push-os-user-key`: SendSSHPublicKey.
#[derive(Debug, Clone, clap::Args)]
pub struct PushOsUserKeyArgs {
    /// The instance, e.g. i-0123456789abcdef0.
    #[arg(value_name = "INSTANCE_ID")]
    pub instance_id: String,
    /// The OS user the key is for, e.g. ec2-user.
    #[arg(long, value_name = "USER")]
    pub os_user: String,
    /// The public key (OpenSSH `.pub` or RFC 4716), or an unencrypted OpenSSH private key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The instance's Availability Zone (optional, checked by the service when given).
    #[arg(long, value_name = "AZ")]
    pub availability_zone: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `serialgate ssh`: SendSSHPublicKey with an ephemeral key, then the system's `ssh`.
#[derive(Debug, Clone, clap::Args)]
pub struct InstanceSshArgs {
    /// The instance, with the OS user to log in as (default ec2-user), e.g.
    /// admin@i-0123456789abcdef0.
    #[arg(value_name = "[USER@]INSTANCE_ID")]
    pub target: String,
    /// The instance's SSH port.
    #[arg(short = 'p', long, default_value_t = 22, value_name = "PORT")]
    pub port: u16,
    /// Connect to this host name or address instead of the instance's public (else private)
    /// IP address from DescribeInstances, which is then not called.
    #[arg(long, value_name = "HOST")]
    pub address: Option<String>,
    /// Print the ssh command (shell-quoted) and exit, without pushing a key.
    #[arg(long)]
    pub print_command: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Passed to ssh unchanged, after the destination: options (-L, -R, -J, -o …) and a remote
    /// command.
    #[arg(last = true, value_name = "SSH_ARGS")]
    pub ssh_args: Vec<String>,
}

/// `serialgate authorized-keys`: sshd's AuthorizedKeysCommand.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthorizedKeysArgs {
    /// The instance's configuration (endpoint, instance id, key token, signer key).
    #[arg(long, short = 'c', value_name = "FILE", default_value = crate::authorized_keys::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The user logging in (sshd's %u).
    #[arg(value_name = "USER")]
    pub user: String,
    /// The SHA256 fingerprint of the key offered (sshd's %f): print that key only.
    #[arg(value_name = "FINGERPRINT")]
    pub fingerprint: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Push {
        #[command(flatten)]
        push: PushArgs,
    }

    #[derive(Debug, Parser)]
    struct Connect {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    #[derive(Debug, Parser)]
    struct Ssh {
        #[command(flatten)]
        ssh: InstanceSshArgs,
    }

    #[derive(Debug, Parser)]
    struct Keys {
        #[command(flatten)]
        keys: AuthorizedKeysArgs,
    }

    #[test]
    fn ssh_passes_everything_after_the_double_dash() {
        let argv = [
            "ssh",
            "-p",
            "2200",
            "--address",
            "10.0.0.5",
            "root@i-0123456789abcdef0",
            "--",
            "-L",
            "8080:localhost:80",
            "-p",
            "1",
            "uname",
            "-a",
        ];
        let s = Ssh::try_parse_from(argv).unwrap().ssh;
        assert_eq!(s.target, "root@i-0123456789abcdef0");
        assert_eq!(s.port, 2200);
        assert_eq!(s.address.as_deref(), Some("10.0.0.5"));
        assert_eq!(
            s.ssh_args,
            ["-L", "8080:localhost:80", "-p", "1", "uname", "-a"]
        );
        assert!(!s.print_command);

        let s = Ssh::try_parse_from(["ssh", "i-0123456789abcdef0", "--print-command"])
            .unwrap()
            .ssh;
        assert_eq!((s.port, s.print_command), (22, true));
        assert!(s.ssh_args.is_empty() && s.address.is_none());
        // ssh's own options must come after `--`.
        assert!(Ssh::try_parse_from(["ssh", "i-0123456789abcdef0", "-L", "1:h:2"]).is_err());
    }

    #[test]
    fn authorized_keys_takes_sshds_tokens() {
        let k = Keys::try_parse_from(["k", "ec2-user", "SHA256:abc"])
            .unwrap()
            .keys;
        assert_eq!(
            k.config,
            PathBuf::from("/etc/serialgate/authorized-keys.toml")
        );
        assert_eq!(
            (k.user.as_str(), k.fingerprint.as_deref()),
            ("ec2-user", Some("SHA256:abc"))
        );
        let k = Keys::try_parse_from(["k", "--config", "/c.toml", "root"])
            .unwrap()
            .keys;
        assert_eq!((k.config, k.fingerprint), (PathBuf::from("/c.toml"), None));
        assert!(Keys::try_parse_from(["k"]).is_err());
    }

    #[test]
    fn push_takes_ca_bundle() {
        let parse = |extra: &[&str]| {
            let argv = ["push", "i-0123456789abcdef0", "--key", "k.pub"];
            Push::try_parse_from(argv.iter().chain(extra)).map(|p| p.push.aws.ca_bundle)
        };
        assert_eq!(parse(&[]).ok(), Some(None));
        assert_eq!(
            parse(&["--ca-bundle", "/etc/ca.pem"]).ok(),
            Some(Some(PathBuf::from("/etc/ca.pem")))
        );
        assert!(parse(&["--ca-bundle"]).is_err(), "--ca-bundle needs a FILE");
    }

    #[test]
    fn connect_takes_ca_bundle() {
        let argv = [
            "connect",
            "i-0123456789abcdef0",
            "--endpoint-url",
            "https://127.0.0.1:4580",
            "--ca-bundle",
            "ca.pem",
            "--non-interactive",
        ];
        let parsed = Connect::try_parse_from(argv).map(|c| c.connect.aws.ca_bundle);
        assert_eq!(parsed.ok(), Some(Some(PathBuf::from("ca.pem"))));
    }

    #[test]
    fn replay_is_bounded() {
        let parse = |extra: &[&str]| {
            let argv = ["connect", "i-0123456789abcdef0"];
            Connect::try_parse_from(argv.iter().chain(extra)).map(|c| c.connect.replay)
        };
        assert_eq!(parse(&[]).ok(), Some(None));
        assert_eq!(parse(&["--replay", "50"]).ok(), Some(Some(50)));
        assert_eq!(parse(&["--replay", "10000"]).ok(), Some(Some(10_000)));
        for bad in ["0", "10001", "-1", "x"] {
            assert!(parse(&["--replay", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn wait_is_bounded_with_a_default() {
        let parse = |extra: &[&str]| {
            let argv = ["connect", "i-0123456789abcdef0"];
            Connect::try_parse_from(argv.iter().chain(extra)).map(|c| c.connect.wait)
        };
        assert_eq!(parse(&[]).ok(), Some(None));
        assert_eq!(
            parse(&["--wait"]).ok(),
            Some(Some(crate::wait::DEFAULT_SECS))
        );
        assert_eq!(parse(&["--wait=5"]).ok(), Some(Some(5)));
        assert!(parse(&["--wait=0"]).is_err());
        assert!(parse(&["--wait=3601"]).is_err(), "never unbounded");
        assert!(parse(&["--wait=x"]).is_err());
        // `--wait i-…` must not take the instance for its value.
        let argv = ["connect", "--wait", "i-0123456789abcdef0"];
        let parsed = Connect::try_parse_from(argv).map(|c| (c.connect.wait, c.connect.instance_id));
        assert_eq!(
            parsed.ok(),
            Some((Some(60), "i-0123456789abcdef0".to_owned()))
        );
    }
}
