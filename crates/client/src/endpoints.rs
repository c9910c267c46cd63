//! Where the SSH session goes: AWS's serial console host for a region, or a serialgate's SSH
//! endpoint derived from its API URL, and `HOST[:PORT]` parsing.

use std::fmt;

/// AWS's serial console endpoints listen on the SSH default port.
pub const AWS_SSH_PORT: u16 = 22;
/// serialgate's default SSH port (its API is on 4580).
pub const SERIALGATE_SSH_PORT: u16 = 2222;

/// Commercial Regions whose endpoint is `serial-console.ec2-instance-connect.REGION.aws`. Every
/// other commercial Region (the newer ones, and any launched after the reference table) uses
/// `ec2-serial-console.REGION.api.aws`.
const OLDER_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "sa-east-1",
];

/// AWS's EC2 Serial Console SSH host name for `region` (EC2 User Guide, "EC2 Serial Console
/// endpoints and fingerprints").
pub fn aws_ssh_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("ec2-serial-console.{region}.api.amazonwebservices.com.cn")
    } else if region.starts_with("us-gov-") {
        format!("serial-console.ec2-instance-connect.{region}.amazonaws.com")
    } else if OLDER_REGIONS.contains(&region) {
        format!("serial-console.ec2-instance-connect.{region}.aws")
    } else {
        format!("ec2-serial-console.{region}.api.aws")
    }
}

/// AWS's EC2 Instance Connect API endpoint for `region` (what the SDK resolves by default);
/// only used to name it in messages.
pub fn aws_api_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://ec2-instance-connect.{region}.{suffix}")
}

/// AWS's EC2 API endpoint for `region` (for `ssh`'s DescribeInstances).
pub fn aws_ec2_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://ec2.{region}.{suffix}")
}

/// A host (name or IP address, IPv6 without brackets) and a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The name OpenSSH files it under in known_hosts: `host`, or `[host]:port` off port 22.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT` (a bare IPv6 address takes `default_port`).
pub fn parse_host_port(text: &str, default_port: u16) -> Result<HostPort, String> {
    let bad = || format!("invalid SSH endpoint `{text}`: expected HOST or HOST:PORT");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if text.matches(':').count() > 1 {
        (text, None) // a bare IPv6 address
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("invalid port `{p}` in SSH endpoint `{text}`"))?,
    };
    Ok(HostPort::new(host, port))
}

/// The host of an endpoint URL (`http://127.0.0.1:4580` → `127.0.0.1`; IPv6 without brackets).
pub fn url_host(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid endpoint URL `{url}`: {e}"))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("invalid endpoint URL `{url}`: it has no host"))?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_families() {
        assert_eq!(
            aws_ssh_host("us-east-1"),
            "serial-console.ec2-instance-connect.us-east-1.aws"
        );
        assert_eq!(
            aws_ssh_host("eu-south-2"),
            "ec2-serial-console.eu-south-2.api.aws"
        );
        assert_eq!(
            aws_ssh_host("cn-north-1"),
            "ec2-serial-console.cn-north-1.api.amazonwebservices.com.cn"
        );
        assert_eq!(
            aws_ssh_host("us-gov-west-1"),
            "serial-console.ec2-instance-connect.us-gov-west-1.amazonaws.com"
        );
        // A Region newer than the reference table gets the newer scheme.
        assert_eq!(
            aws_ssh_host("ap-east-2"),
            "ec2-serial-console.ap-east-2.api.aws"
        );
    }

    #[test]
    fn api_endpoints() {
        assert_eq!(
            aws_api_endpoint("us-east-1"),
            "https://ec2-instance-connect.us-east-1.amazonaws.com"
        );
        assert_eq!(
            aws_api_endpoint("cn-north-1"),
            "https://ec2-instance-connect.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("example.com", 22),
            Ok(HostPort::new("example.com", 22))
        );
        assert_eq!(
            parse_host_port("127.0.0.1:2222", 22),
            Ok(HostPort::new("127.0.0.1", 2222))
        );
        assert_eq!(
            parse_host_port("[::1]:2200", 22),
            Ok(HostPort::new("::1", 2200))
        );
        assert_eq!(
            parse_host_port("[::1]", 2222),
            Ok(HostPort::new("::1", 2222))
        );
        assert_eq!(parse_host_port("::1", 2222), Ok(HostPort::new("::1", 2222)));
        for bad in [
            "",
            ":22",
            "host:",
            "host:0",
            "host:99999",
            "[::1]x",
            "a b",
            "h/p",
        ] {
            assert!(parse_host_port(bad, 22).is_err(), "{bad}");
        }
    }

    #[test]
    fn known_hosts_names_and_display() {
        assert_eq!(HostPort::new("h", 22).known_hosts_name(), "h");
        assert_eq!(HostPort::new("h", 2222).known_hosts_name(), "[h]:2222");
        assert_eq!(HostPort::new("::1", 2222).to_string(), "[::1]:2222");
        assert_eq!(HostPort::new("h", 2222).to_string(), "h:2222");
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("http://127.0.0.1:4580").as_deref(),
            Ok("127.0.0.1")
        );
        assert_eq!(url_host("https://gw.example/").as_deref(), Ok("gw.example"));
        assert_eq!(url_host("http://[::1]:4580").as_deref(), Ok("::1"));
        assert!(url_host("not a url").is_err());
        assert!(url_host("/relative").is_err());
    }
}
