//! The serialgate configuration the benchmarks run against: one account whose throttle never
//! bites, N instances on one console socket, teardown 0 (a slot is free again as soon as its
//! session ends) and a key TTL long enough to push 1000 keys before opening their sessions.

use std::fmt::Write as _;

use crate::Res;
use crate::cli::ConfigArgs;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "111122223333";
pub const ACCESS_KEY_ID: &str = "AKIDBENCHSSH";
pub const SECRET_ACCESS_KEY: &str = "bench-ssh-secret-access-key";

/// The `n`th generated instance id: `i-` and 17 lowercase hex digits.
pub fn instance_id(n: usize) -> String {
    format!("i-{:017x}", 0x0be0_0000_0000_0000_u64 + n as u64)
}

/// The SSH username of the `n`th instance's port 0.
pub fn username(n: usize) -> String {
    format!("{}.port0", instance_id(n))
}

pub fn run(args: &ConfigArgs) -> Res<()> {
    let console = args.console.to_str().ok_or("console path is not UTF-8")?;
    let state_dir = args.state_dir.to_str().ok_or("state dir is not UTF-8")?;
    let mut out = String::new();
    writeln!(
        out,
        "# Written by bench-ssh config: {} instances on one console.",
        args.instances
    )?;
    writeln!(out, "region = \"{REGION}\"")?;
    writeln!(out, "state_dir = {}", toml_str(state_dir))?;
    writeln!(out, "\n[api]\nlisten = \"{}\"", args.api_listen)?;
    writeln!(out, "\n[ssh]\nlisten = \"{}\"", args.ssh_listen)?;
    writeln!(out, "\n[keys]\nttl_seconds = 600")?;
    writeln!(out, "\n[sessions]\nteardown_seconds = 0")?;
    writeln!(
        out,
        "\n[throttle]\nrate_per_second = 1000000.0\nburst = 1000000"
    )?;
    writeln!(
        out,
        "\n[[accounts]]\nid = \"{ACCOUNT}\"\nserial_console_access = true"
    )?;
    writeln!(
        out,
        "\n[[accounts.credentials]]\naccess_key_id = \"{ACCESS_KEY_ID}\"\nsecret_access_key = \"{SECRET_ACCESS_KEY}\""
    )?;
    let console = toml_str(&format!("unix:{console}"));
    for n in 0..args.instances {
        writeln!(
            out,
            "\n[[instances]]\nid = \"{}\"\naccount = \"{ACCOUNT}\"\nconsole = {console}",
            instance_id(n)
        )?;
    }
    print!("{out}");
    Ok(())
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
