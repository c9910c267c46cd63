//! What `connect` talks to over SSH, decided before any network I/O: the endpoint, how its host
//! key is trusted, and whether the server is AWS or a serialgate (which decides how a BREAK and
//! a literal escape character travel).

use std::path::PathBuf;

use crate::args::ConnectArgs;
use crate::console::Server;
use crate::endpoints::{self, HostPort};
use crate::errors::Failure;
use crate::fingerprints;
use crate::host_key::{PinSource, Trust};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub ssh: HostPort,
    pub trust: Trust,
    pub server: Server,
    /// The server's in-band escape character, if any.
    pub remote_escape: Option<u8>,
}

/// Decides the target from the flags, the Region and the API endpoint in effect (`None`: AWS).
pub fn resolve(
    args: &ConnectArgs,
    region: &str,
    custom_endpoint: Option<&str>,
    home: Option<PathBuf>,
) -> Result<Target, Failure> {
    let server = if custom_endpoint.is_some() {
        Server::Serialgate
    } else {
        Server::Aws
    };
    let aws_host = HostPort::new(endpoints::aws_ssh_host(region), endpoints::AWS_SSH_PORT);
    let ssh = match (&args.ssh_endpoint, custom_endpoint) {
        (Some(text), None) => endpoints::parse_host_port(text, endpoints::AWS_SSH_PORT),
        (Some(text), Some(_)) => endpoints::parse_host_port(text, endpoints::SERIALGATE_SSH_PORT),
        (None, Some(url)) => {
            endpoints::url_host(url).map(|h| HostPort::new(h, endpoints::SERIALGATE_SSH_PORT))
        }
        (None, None) => Ok(aws_host.clone()),
    }
    .map_err(Failure::usage)?;

    let trust = if let Some(fp) = &args.host_key_fingerprint {
        let expected = fingerprints::normalize(fp).ok_or_else(|| {
            Failure::usage(format!(
                "invalid --host-key-fingerprint `{fp}`: expected SHA256:<43 base64 characters>, \
                 as printed by `serialgate host-key` or `ssh-keygen -lf`"
            ))
        })?;
        Trust::Fingerprint {
            expected,
            source: PinSource::Flag,
        }
    } else if let (Server::Aws, Some(fp)) = (server, fingerprints::aws_fingerprint(region))
        && ssh == aws_host
    {
        Trust::Fingerprint {
            expected: fp.to_owned(),
            source: PinSource::AwsTable {
                region: region.to_owned(),
            },
        }
    } else {
        let path = match (&args.known_hosts, home) {
            (Some(p), _) => p.clone(),
            (None, Some(home)) => home.join(".ssh").join("known_hosts"),
            (None, None) => {
                return Err(Failure::usage(
                    "HOME is not set: pass --known-hosts FILE or --host-key-fingerprint",
                ));
            }
        };
        Trust::KnownHosts {
            path,
            accept_new: args.accept_new,
        }
    };

    let remote_escape = match (args.remote_escape, server) {
        (Some(e), _) => e.0,
        (None, Server::Serialgate) => Some(b'~'),
        (None, Server::Aws) => None,
    };
    Ok(Target {
        ssh,
        trust,
        server,
        remote_escape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConnectArgs,
    }

    fn args(extra: &[&str]) -> ConnectArgs {
        let argv = ["t", "i-0123456789abcdef0"]
            .into_iter()
            .chain(extra.iter().copied());
        Cli::try_parse_from(argv).unwrap().args
    }

    fn home() -> Option<PathBuf> {
        Some(PathBuf::from("/home/u"))
    }

    #[test]
    fn aws_uses_the_region_host_and_published_fingerprint() {
        let t = resolve(&args(&[]), "eu-west-1", None, home()).unwrap();
        assert_eq!(
            t.ssh,
            HostPort::new("serial-console.ec2-instance-connect.eu-west-1.aws", 22)
        );
        assert_eq!(t.server, Server::Aws);
        assert_eq!(t.remote_escape, None);
        assert_eq!(
            t.trust,
            Trust::Fingerprint {
                expected: "SHA256:h2AaGAWO4Hathhtm6ezs3Bj7udgUxi2qTrHjZAwCW6E".into(),
                source: PinSource::AwsTable {
                    region: "eu-west-1".into()
                },
            }
        );
    }

    #[test]
    fn aws_region_outside_the_table_falls_back_to_known_hosts() {
        let t = resolve(&args(&[]), "ap-east-2", None, home()).unwrap();
        assert_eq!(t.ssh.host, "ec2-serial-console.ap-east-2.api.aws");
        assert_eq!(
            t.trust,
            Trust::KnownHosts {
                path: "/home/u/.ssh/known_hosts".into(),
                accept_new: false
            }
        );
    }

    #[test]
    fn aws_with_another_ssh_endpoint_uses_known_hosts() {
        let t = resolve(
            &args(&["--ssh-endpoint", "bastion.example"]),
            "us-east-1",
            None,
            home(),
        )
        .unwrap();
        assert_eq!(t.ssh, HostPort::new("bastion.example", 22));
        assert!(matches!(t.trust, Trust::KnownHosts { .. }));
    }

    #[test]
    fn serialgate_defaults() {
        let t = resolve(
            &args(&["--accept-new"]),
            "us-east-1",
            Some("http://10.1.2.3:4580"),
            home(),
        )
        .unwrap();
        assert_eq!(t.ssh, HostPort::new("10.1.2.3", 2222));
        assert_eq!(t.server, Server::Serialgate);
        assert_eq!(t.remote_escape, Some(b'~'));
        assert_eq!(
            t.trust,
            Trust::KnownHosts {
                path: "/home/u/.ssh/known_hosts".into(),
                accept_new: true
            }
        );
        let t = resolve(
            &args(&[
                "--ssh-endpoint",
                "gw:22",
                "--known-hosts",
                "/k",
                "--remote-escape",
                "none",
            ]),
            "us-east-1",
            Some("http://10.1.2.3:4580"),
            None,
        )
        .unwrap();
        assert_eq!(t.ssh, HostPort::new("gw", 22));
        assert_eq!(t.remote_escape, None);
        assert_eq!(
            t.trust,
            Trust::KnownHosts {
                path: "/k".into(),
                accept_new: false
            }
        );
    }

    #[test]
    fn pinned_fingerprint_wins_and_is_checked() {
        let fp = "SHA256:dXwn5ma/xadVMeBZGEru5l2gx+yI5LDiJaLUcz0FMmw";
        let t = resolve(
            &args(&["--host-key-fingerprint", &fp[7..]]),
            "eu-west-1",
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            t.trust,
            Trust::Fingerprint {
                expected: fp.into(),
                source: PinSource::Flag
            }
        );
        let e = resolve(
            &args(&["--host-key-fingerprint", "MD5:aa"]),
            "eu-west-1",
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, crate::errors::exit::USAGE);
        assert!(
            resolve(&args(&[]), "x", Some("http://h:1"), None).is_err(),
            "no HOME"
        );
    }
}
