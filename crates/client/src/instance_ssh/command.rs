//! What `serialgate ssh` runs: the target (`[USER@]INSTANCE`), the address to connect to, and
//! the system `ssh`'s arguments.

use std::path::Path;

use crate::errors::Failure;

/// The OS user when none is given, as `aws ec2-instance-connect ssh` and `mssh`.
pub const DEFAULT_USER: &str = "ec2-user";
/// The client run.
pub const SSH: &str = "ssh";

/// Who to log in as, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub instance: String,
}

/// `[USER@]INSTANCE`.
pub fn parse_target(text: &str) -> Result<Target, Failure> {
    let (user, instance) = match text.rsplit_once('@') {
        Some((user, instance)) => (user, instance),
        None => (DEFAULT_USER, text),
    };
    if user.is_empty() || user.starts_with('-') {
        return Err(Failure::usage(format!(
            "{text:?}: the user before @ is not a user name"
        )));
    }
    let hex = instance.strip_prefix("i-").unwrap_or_default();
    if !(8..=30).contains(&hex.len())
        || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(Failure::usage(format!(
            "{instance:?} is not an instance id (i- and 8 to 30 lowercase hex digits)"
        )));
    }
    Ok(Target {
        user: user.to_owned(),
        instance: instance.to_owned(),
    })
}

/// The address to connect to: the public one when the instance has it, else the private one.
pub fn choose_address(public: Option<String>, private: Option<String>) -> Option<String> {
    public.or(private)
}

/// `ssh`'s argument vector (without the program): the pushed key only, the port, the
/// destination, then the user's arguments unchanged. OpenSSH reads options after the
/// destination too, so `-L`, `-R`, `-J`, `-o` work there, and the first other word starts
/// the remote command.
pub fn ssh_args(key: &Path, port: u16, user: &str, host: &str, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "-o".to_owned(),
        "IdentitiesOnly=yes".to_owned(),
        "-i".to_owned(),
        key.display().to_string(),
        "-p".to_owned(),
        port.to_string(),
        format!("{user}@{host}"),
    ];
    args.extend(extra.iter().cloned());
    args
}

/// The command line as a POSIX shell would take it back.
pub fn shell_line(args: &[String]) -> String {
    std::iter::once(SSH)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as is when it is made of characters no shell treats specially (as Python's
/// `shlex.quote`), else in single quotes, each `'` written `'\''`.
fn quote(word: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b);
    if !word.is_empty() && word.bytes().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("i-0123456789abcdef0").unwrap();
        assert_eq!(
            (t.user.as_str(), t.instance.as_str()),
            ("ec2-user", "i-0123456789abcdef0")
        );
        let t = parse_target("root@i-0123456789abcdef0").unwrap();
        assert_eq!(t.user, "root");
        let t = parse_target("me@corp@i-01234567").unwrap();
        assert_eq!(
            (t.user.as_str(), t.instance.as_str()),
            ("me@corp", "i-01234567")
        );
        for bad in [
            "@i-0123456789abcdef0",
            "-x@i-0123456789abcdef0",
            "i-XYZ",
            "host",
            "i-0123",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("root@10.0.0.5"), "root@10.0.0.5");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("x;rm"), "'x;rm'");
        // A real shell reads every word back as it was.
        let words = ["a b", "it's", "$HOME", "`id`", "\\n", "", "'", "-L", "é"];
        let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {}", line.join(" ")))
            .output()
            .unwrap();
        let back: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_terminator('\0')
            .collect();
        assert_eq!(back, words);
    }

    #[test]
    fn public_address_first() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(choose_address(s("3.3.3.3"), s("10.0.0.1")), s("3.3.3.3"));
        assert_eq!(choose_address(None, s("10.0.0.1")), s("10.0.0.1"));
        assert_eq!(choose_address(None, None), None);
    }

    #[test]
    fn the_users_arguments_follow_the_destination_unchanged() {
        let extra: Vec<String> = ["-L", "8080:localhost:80", "sh", "-c", "echo 'a b'"]
            .map(String::from)
            .to_vec();
        let args = ssh_args(Path::new("/run/user/0/k"), 2200, "root", "10.0.0.5", &extra);
        assert_eq!(
            args,
            [
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                "/run/user/0/k",
                "-p",
                "2200",
                "root@10.0.0.5",
                "-L",
                "8080:localhost:80",
                "sh",
                "-c",
                "echo 'a b'"
            ]
        );
        assert_eq!(
            shell_line(&args),
            "ssh -o IdentitiesOnly=yes -i /run/user/0/k -p 2200 root@10.0.0.5 -L \
             8080:localhost:80 sh -c 'echo '\\''a b'\\'''"
        );
    }
}
