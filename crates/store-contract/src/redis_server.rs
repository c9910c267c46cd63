//! A throwaway `redis-server` for a test binary: started once on a free loopback port, without
//! persistence, and stopped when the test process exits.
//!
//! Tests that need Redis fail (never skip) when `redis-server` is not installed: CI installs it.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running server.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    /// The server's process id (it is a child of a watchdog shell, not of this process).
    pub pid: u32,
}

impl RedisServer {
    /// Kills the server at once (SIGKILL), as a crash or an operator would.
    pub fn kill(&self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// The server shared by every test of this binary, started on first use.
pub fn shared() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// Starts a new server on a free port. It dies with this process: a watchdog shell polls this process id and
/// kills the server once it is gone, so no test run leaves a server behind, even when killed.
pub fn start() -> RedisServer {
    let mut last = String::new();
    for _ in 0..5 {
        match start_on(free_port()) {
            Ok(server) => return server,
            Err(e) => last = e,
        }
    }
    panic!("{last} (5 attempts)");
}

/// Starts a new server on `port` (e.g. again after [`RedisServer::kill`]).
pub fn start_on(port: u16) -> Result<RedisServer, String> {
    let available = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        panic!(
            "redis-server is not installed, and these tests need a real one (they do not skip). \
             Install it: apt-get install --no-install-recommends redis-server"
        );
    }
    {
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
             --daemonize no --loglevel warning >/dev/null 2>&1 & rp=$!; echo $rp; \
             while kill -0 {parent} 2>/dev/null && kill -0 $rp 2>/dev/null; do sleep 0.2; done; \
             kill $rp 2>/dev/null",
            parent = std::process::id()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh");
        let pid = read_pid(&mut child);
        if wait_listening(port, Duration::from_secs(10)) {
            // The watchdog runs on; it is reaped when this process exits.
            std::mem::forget(child);
            return Ok(RedisServer { port, pid });
        }
        let _ = child.kill();
        Err(format!("redis-server did not listen on 127.0.0.1:{port}"))
    }
}

fn read_pid(child: &mut std::process::Child) -> u32 {
    use std::io::BufRead as _;
    let out = child.stdout.take().expect("watchdog stdout");
    let mut line = String::new();
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .expect("watchdog pid");
    line.trim().parse().expect("redis-server pid")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn wait_listening(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
