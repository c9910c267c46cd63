//! Test doubles: an in-process QEMU (process, QMP socket, serial socket) that tests script.
//!
//! Everything runs on the test's runtime and talks over real unix sockets, so the code under
//! test is unchanged while `tokio::time::pause` makes its timeouts deterministic: with paused
//! time the clock only jumps when every task is idle, and an in-process peer never leaves the
//! runtime idle while an answer is on its way (a real child process would).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

use crate::machine::{Launcher, VmProcess};
use crate::spec::{QemuSpec, VmPaths};

/// QEMU's greeting, as QEMU 8 sends it.
pub const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}, "package": ""}, "capabilities": ["oob"]}}"#;

/// Serves one QMP connection: sends `greeting` (if any), then answers each command line with
/// the lines `respond` returns, until the client closes. Returns the commands received.
pub async fn qmp_connection(
    stream: UnixStream,
    greeting: Option<&str>,
    mut respond: impl FnMut(&str) -> Vec<String>,
) -> Vec<String> {
    let (read, mut write) = stream.into_split();
    if let Some(g) = greeting {
        write.write_all(format!("{g}\n").as_bytes()).await.unwrap();
    }
    let mut lines = BufReader::new(read).lines();
    let mut seen = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let v: Value = serde_json::from_str(&line).unwrap();
        let cmd = v["execute"].as_str().unwrap().to_owned();
        seen.push(cmd.clone());
        for answer in respond(&cmd) {
            if write
                .write_all(format!("{answer}\n").as_bytes())
                .await
                .is_err()
            {
                return seen;
            }
        }
    }
    seen
}

/// `{"return": {}}`.
pub fn ok() -> Vec<String> {
    vec![json!({ "return": {} }).to_string()]
}

/// What the fake guest does with the ACPI power button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guest {
    /// Shuts down: the process exits right after QMP answers.
    Obeys,
    /// Ignores it, as a guest without ACPI support does.
    Ignores,
}

/// How the fake's QMP socket behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qmp {
    /// Greets and answers every command.
    Answers,
    /// Accepts connections and never writes a byte.
    Silent,
    /// Greets, accepts `qmp_capabilities`, and fails every command after it.
    Fails,
}

/// One launch of the fake: its process and what the test can do to it.
#[derive(Debug)]
pub struct Launch {
    exit: watch::Sender<Option<ExitStatus>>,
    killed: Mutex<bool>,
    console: mpsc::UnboundedSender<Vec<u8>>,
    /// Serial connections accepted so far (the hub's).
    serial_clients: watch::Sender<usize>,
}

impl Launch {
    /// Whether the machine killed this process (SIGKILL), as opposed to it exiting.
    pub fn killed(&self) -> bool {
        *self.killed.lock().unwrap()
    }

    /// Whether the process has ended, either way.
    pub fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Returns once the process has ended.
    pub async fn wait_exit(&self) {
        let mut rx = self.exit.subscribe();
        rx.wait_for(Option::is_some).await.unwrap();
    }

    /// The guest powers off by itself (`poweroff` inside the VM): the process exits 0.
    pub fn exit(&self) {
        self.exit.send_replace(Some(ExitStatus::from_raw(0)));
    }

    /// The guest writes to its serial port (queued until the hub is connected).
    pub fn print(&self, bytes: &[u8]) {
        self.console.send(bytes.to_vec()).unwrap();
    }

    /// Returns once something (the hub) has connected to the serial socket.
    pub async fn serial_connected(&self) {
        let mut rx = self.serial_clients.subscribe();
        rx.wait_for(|n| *n > 0).await.unwrap();
    }
}

#[derive(Debug)]
struct State {
    guest: Guest,
    qmp: Qmp,
    quit_exits: bool,
    fail_launch: bool,
    commands: Mutex<Vec<String>>,
    launches: Mutex<Vec<Arc<Launch>>>,
}

/// The fake QEMU: a [`Launcher`] whose every launch binds the QMP and serial sockets QEMU
/// would, and a process that lives until the guest exits or the machine kills it.
#[derive(Debug, Clone)]
pub struct FakeQemu {
    state: Arc<State>,
}

impl FakeQemu {
    pub fn new(guest: Guest, qmp: Qmp) -> Self {
        Self {
            state: Arc::new(State {
                guest,
                qmp,
                quit_exits: true,
                fail_launch: false,
                commands: Mutex::new(Vec::new()),
                launches: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A fake on which QMP `quit` is answered but the process keeps running.
    pub fn ignoring_quit(guest: Guest) -> Self {
        let f = Self::new(guest, Qmp::Answers);
        let mut state = Arc::try_unwrap(f.state).unwrap();
        state.quit_exits = false;
        Self {
            state: Arc::new(state),
        }
    }

    /// A fake whose binary cannot be started.
    pub fn unstartable() -> Self {
        let f = Self::new(Guest::Obeys, Qmp::Answers);
        let mut state = Arc::try_unwrap(f.state).unwrap();
        state.fail_launch = true;
        Self {
            state: Arc::new(state),
        }
    }

    /// QMP commands received so far, over every launch, capabilities negotiation excluded.
    pub fn commands(&self) -> Vec<String> {
        self.state.commands.lock().unwrap().clone()
    }

    pub fn launches(&self) -> usize {
        self.state.launches.lock().unwrap().len()
    }

    /// The latest launch.
    pub fn current(&self) -> Arc<Launch> {
        Arc::clone(self.state.launches.lock().unwrap().last().unwrap())
    }

    pub fn launcher(&self) -> Box<dyn Launcher> {
        Box::new(self.clone())
    }
}

impl Launcher for FakeQemu {
    fn launch(&self, _spec: &QemuSpec, paths: &VmPaths) -> Result<Box<dyn VmProcess>, String> {
        if self.state.fail_launch {
            return Err("cannot start fake-qemu: No such file or directory".to_owned());
        }
        let qmp = UnixListener::bind(&paths.qmp).map_err(|e| e.to_string())?;
        let serial = UnixListener::bind(&paths.serial).map_err(|e| e.to_string())?;
        let (exit, exit_rx) = watch::channel(None);
        let (console, console_rx) = mpsc::unbounded_channel();
        let launch = Arc::new(Launch {
            exit,
            killed: Mutex::new(false),
            console,
            serial_clients: watch::Sender::new(0),
        });
        self.state
            .launches
            .lock()
            .unwrap()
            .push(Arc::clone(&launch));
        tokio::spawn(serve_qmp(Arc::clone(&self.state), Arc::clone(&launch), qmp));
        tokio::spawn(serve_serial(Arc::clone(&launch), serial, console_rx));
        Ok(Box::new(FakeProcess {
            launch,
            exit: exit_rx,
        }))
    }
}

#[derive(Debug)]
struct FakeProcess {
    launch: Arc<Launch>,
    exit: watch::Receiver<Option<ExitStatus>>,
}

#[async_trait]
impl VmProcess for FakeProcess {
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self
            .exit
            .wait_for(Option::is_some)
            .await
            .map_err(std::io::Error::other)?;
        Ok(status.unwrap_or_else(|| ExitStatus::from_raw(0)))
    }

    fn start_kill(&mut self) {
        if self.launch.exited() {
            return;
        }
        *self.launch.killed.lock().unwrap() = true;
        self.launch.exit.send_replace(Some(ExitStatus::from_raw(9)));
    }

    fn id(&self) -> Option<u32> {
        None
    }
}

/// QMP for one launch; stops listening when the process ends, as QEMU's socket goes with it.
async fn serve_qmp(state: Arc<State>, launch: Arc<Launch>, listener: UnixListener) {
    let mut exit = launch.exit.subscribe();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted.unwrap().0,
            () = exited(&mut exit) => return,
        };
        let state = Arc::clone(&state);
        let launch = Arc::clone(&launch);
        tokio::spawn(async move {
            if state.qmp == Qmp::Silent {
                // Hold the connection open and say nothing.
                let mut sink = Vec::new();
                let mut stream = stream;
                let _ = stream.read_to_end(&mut sink).await;
                return;
            }
            qmp_connection(stream, Some(GREETING), |cmd| {
                if cmd == "qmp_capabilities" {
                    return ok();
                }
                state.commands.lock().unwrap().push(cmd.to_owned());
                if state.qmp == Qmp::Fails {
                    return vec![
                        json!({"error": {"class": "GenericError", "desc": "fake failure"}})
                            .to_string(),
                    ];
                }
                match cmd {
                    "system_powerdown" => {
                        // QEMU reports the button press as an event; the client skips it.
                        let answers =
                            vec![json!({"event": "POWERDOWN"}).to_string(), ok().remove(0)];
                        if state.guest == Guest::Obeys {
                            launch.exit();
                        }
                        answers
                    }
                    "quit" => {
                        if state.quit_exits {
                            launch.exit();
                        }
                        ok()
                    }
                    "system_reset" => ok(),
                    other => vec![
                        json!({"error": {"class": "CommandNotFound",
                                         "desc": format!("The command {other} has not been found")}})
                        .to_string(),
                    ],
                }
            })
            .await;
        });
    }
}

/// The serial port: what the guest prints goes to whoever is connected (the hub); input is
/// read and dropped. Closes when the process ends.
async fn serve_serial(
    launch: Arc<Launch>,
    listener: UnixListener,
    mut console: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut exit = launch.exit.subscribe();
    loop {
        let mut stream = tokio::select! {
            accepted = listener.accept() => accepted.unwrap().0,
            () = exited(&mut exit) => return,
        };
        launch.serial_clients.send_modify(|n| *n += 1);
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                bytes = console.recv() => match bytes {
                    Some(b) => {
                        if stream.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    None => return,
                },
                n = stream.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
                () = exited(&mut exit) => return,
            }
        }
    }
}

/// Returns once the process has ended (the guard `wait_for` yields is not `Send`).
async fn exited(exit: &mut watch::Receiver<Option<ExitStatus>>) {
    let _ = exit.wait_for(Option::is_some).await;
}
