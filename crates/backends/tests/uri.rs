//! Console URI parsing: every accepted form, round trips through Display, and error messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use backends::{ConsoleUri, DEFAULT_BAUD};

fn parse(s: &str) -> ConsoleUri {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn error(s: &str) -> String {
    match s.parse::<ConsoleUri>() {
        Ok(uri) => panic!("{s} parsed as {uri:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn accepted_forms() {
    assert_eq!(
        parse("unix:/run/vm1/ttyS0.sock"),
        ConsoleUri::Unix(PathBuf::from("/run/vm1/ttyS0.sock"))
    );
    assert_eq!(
        parse("tcp:127.0.0.1:7000"),
        ConsoleUri::Tcp("127.0.0.1:7000".into())
    );
    assert_eq!(
        parse("tcp:serial.example:2001"),
        ConsoleUri::Tcp("serial.example:2001".into())
    );
    assert_eq!(
        parse("telnet:[::1]:23"),
        ConsoleUri::Telnet("[::1]:23".into())
    );
    assert_eq!(
        parse("unix+telnet:vm.sock"),
        ConsoleUri::UnixTelnet(PathBuf::from("vm.sock"))
    );
    assert_eq!(
        parse("tty:/dev/ttyS1"),
        ConsoleUri::Tty {
            path: PathBuf::from("/dev/ttyS1"),
            baud: DEFAULT_BAUD
        }
    );
    assert_eq!(
        parse("tty:/dev/ttyUSB0?baud=9600"),
        ConsoleUri::Tty {
            path: PathBuf::from("/dev/ttyUSB0"),
            baud: 9600
        }
    );
    assert_eq!(
        parse("exec:ipmitool -I lanplus -H 'bmc 1' sol activate"),
        ConsoleUri::Exec(
            [
                "ipmitool", "-I", "lanplus", "-H", "bmc 1", "sol", "activate"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    assert_eq!(parse("sim:"), ConsoleUri::Sim);
    assert_eq!(parse("sim:lab-7"), ConsoleUri::SimNamed("lab-7".into()));
    assert_eq!(
        parse("SIM:"),
        ConsoleUri::Sim,
        "schemes are case-insensitive"
    );
}

#[test]
fn display_round_trips() {
    for s in [
        "unix:/run/vm1/ttyS0.sock",
        "tcp:127.0.0.1:7000",
        "telnet:[::1]:23",
        "unix+telnet:/tmp/a b.sock",
        "tty:/dev/ttyS1",
        "tty:/dev/ttyS1?baud=9600",
        "tty:/dev/odd?name?baud=57600",
        "exec:ipmitool -H 'bmc 1' -U \"o'brien\" sol activate",
        "exec:sh -c 'echo $HOME; exit 3'",
        "sim:",
        "sim:box.1",
    ] {
        let uri = parse(s);
        let shown = uri.to_string();
        assert_eq!(parse(&shown), uri, "{s} displayed as {shown}");
    }
    assert_eq!(
        parse("tty:/dev/ttyS1").to_string(),
        "tty:/dev/ttyS1?baud=115200"
    );
    assert_eq!(parse("exec:ls   -l").to_string(), "exec:ls -l");
    assert_eq!(parse("sim:").to_string(), "sim:");
}

#[test]
fn errors_say_what_is_wrong_and_list_the_schemes() {
    let e = error("ftp:host:21");
    assert!(e.contains("unknown scheme `ftp`"), "{e}");
    for scheme in [
        "unix:",
        "tcp:",
        "telnet:",
        "unix+telnet:",
        "tty:",
        "exec:",
        "sim:",
    ] {
        assert!(e.contains(scheme), "{e} lacks {scheme}");
    }
    assert!(error("/dev/ttyS0").contains("missing scheme"));
    assert!(error(":x").contains("missing scheme"));
    assert!(error("unix:").contains("missing path"));
    assert!(error("tcp:localhost").contains("HOST:PORT"));
    assert!(error("tcp::80").contains("missing host"));
    assert!(error("tcp:host:0").contains("port 0"));
    assert!(error("tcp:host:99999").contains("1 to 65535"));
    assert!(error("telnet:::1:23").contains("brackets"));
    assert!(error("tty:/dev/ttyS0?baud=fast").contains("baud `fast`"));
    assert!(error("tty:/dev/ttyS0?baud=0").contains("baud `0`"));
    assert!(error("tty:/dev/ttyS0?parity=even").contains("unknown tty option `parity=even`"));
    assert!(error("exec:").contains("missing command"));
    assert!(error("exec:   ").contains("missing command"));
    assert!(error("exec:echo 'oops").contains("unbalanced quotes"));
    assert!(error("sim:bad name").contains("simulator name"));
    assert!(error("unix:/tmp/x\ny").contains("control character"));
}

#[test]
fn display_never_contains_control_characters() {
    // Hand-built values can hold anything; what is logged must still be one line.
    let uri = ConsoleUri::Exec(vec!["echo".into(), "a\nb\x1b[2J".into()]);
    let shown = uri.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
}
