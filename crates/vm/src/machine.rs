//! One managed VM: a task that owns the QEMU process and derives the instance's EC2 state from
//! what it sees (process alive, console output, exit).
//!
//! States: `pending` from start until the console prints something, then `running`;
//! `stopping` from a stop request until the process is gone, then `stopped`. The process is
//! started without a shell, under `setpriv --pdeathsig KILL` so that it dies with serialgate
//! even when serialgate is killed outright, with `kill_on_drop` as a second guard, and with a
//! minimal environment (see [`QemuSpec::command`]).

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backends::child_env::exit_text;
use console::{Instance, InstanceState};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::qmp;
use crate::spec::{QemuSpec, VmPaths};

type Reply = oneshot::Sender<Result<(), String>>;

/// How long a VM asked to `quit` for serialgate's shutdown may take before it is killed.
const QUIT_TIMEOUT: Duration = Duration::from_secs(3);

/// A started VM process as the task sees it. The seam exists so the state machine can be
/// driven, with paused time, by an in-process fake (`crate::fake`).
#[async_trait]
pub(crate) trait VmProcess: Send {
    /// Waits for the process to end. Cancel safe: the task selects on it.
    async fn wait(&mut self) -> std::io::Result<ExitStatus>;
    /// Sends SIGKILL; returns at once (the exit is seen through `wait`).
    fn start_kill(&mut self);
    fn id(&self) -> Option<u32>;
}

/// Starts the VM process; QEMU itself in production.
pub(crate) trait Launcher: Send + Sync {
    fn launch(&self, spec: &QemuSpec, paths: &VmPaths) -> Result<Box<dyn VmProcess>, String>;
}

/// The real launcher: [`QemuSpec::command`] with its output appended to `paths.log`.
struct Qemu;

impl Launcher for Qemu {
    fn launch(&self, spec: &QemuSpec, paths: &VmPaths) -> Result<Box<dyn VmProcess>, String> {
        let log = std::fs::File::create(&paths.log)
            .map_err(|e| format!("{}: {e}", paths.log.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", paths.log.display()))?;
        let mut cmd = spec.command(paths);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            format!(
                "cannot start {} (through setpriv): {e}",
                spec.binary.display()
            )
        })?;
        Ok(Box::new(child))
    }
}

#[async_trait]
impl VmProcess for Child {
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        Child::wait(self).await
    }

    fn start_kill(&mut self) {
        // Fails only when the process is already reaped, which `wait` reports anyway.
        let _ = Child::start_kill(self);
    }

    fn id(&self) -> Option<u32> {
        Child::id(self)
    }
}

#[derive(Debug)]
enum Cmd {
    Start(Reply),
    Stop { force: bool, reply: Reply },
    Reboot(Reply),
    Shutdown(Reply),
    Kill(Reply),
}

/// A handle on one VM's task.
#[derive(Debug, Clone)]
pub struct Machine {
    tx: mpsc::Sender<Cmd>,
}

impl Machine {
    /// Starts the task (not the VM). `hub` is the console hub that holds the VM's serial
    /// socket: its output makes the instance running, and it is told when the socket appears.
    pub fn spawn(
        instance: Arc<Instance>,
        spec: QemuSpec,
        paths: VmPaths,
        hub: Option<backends::Hub>,
    ) -> Machine {
        Self::spawn_with(instance, spec, paths, hub, Box::new(Qemu)).0
    }

    /// [`Machine::spawn`] with the process launcher given; the receiver holds the latest state
    /// the task set (what tests wait on).
    fn spawn_with(
        instance: Arc<Instance>,
        spec: QemuSpec,
        paths: VmPaths,
        hub: Option<backends::Hub>,
        launcher: Box<dyn Launcher>,
    ) -> (Machine, watch::Receiver<InstanceState>) {
        let activity = hub.as_ref().map(backends::Hub::activity);
        let (states, states_rx) = watch::channel(instance.state());
        let (tx, rx) = mpsc::channel(8);
        let task = MachineTask {
            hub,
            instance,
            spec,
            paths,
            activity,
            launcher,
            states,
            child: None,
            stop_deadline: None,
        };
        tokio::spawn(task.run(rx));
        (Machine { tx }, states_rx)
    }

    async fn ask(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| "VM task stopped".to_owned())?;
        rx.await.map_err(|_| "VM task stopped".to_owned())?
    }

    pub async fn start(&self) -> Result<(), String> {
        self.ask(Cmd::Start).await
    }

    pub async fn stop(&self, force: bool) -> Result<(), String> {
        self.ask(|reply| Cmd::Stop { force, reply }).await
    }

    pub async fn reboot(&self) -> Result<(), String> {
        self.ask(Cmd::Reboot).await
    }

    /// Stops the VM cleanly (QMP `quit`), killing it if it does not go; returns when it is gone.
    pub async fn shutdown(&self) -> Result<(), String> {
        self.ask(Cmd::Shutdown).await
    }

    /// Kills the VM at once (no clean shutdown) and returns when its process is gone: for a
    /// node that must let the VM go before another node may start it.
    pub async fn kill(&self) -> Result<(), String> {
        self.ask(Cmd::Kill).await
    }
}

struct MachineTask {
    hub: Option<backends::Hub>,
    instance: Arc<Instance>,
    spec: QemuSpec,
    paths: VmPaths,
    activity: Option<watch::Receiver<u64>>,
    launcher: Box<dyn Launcher>,
    /// Every state the task sets, for watchers.
    states: watch::Sender<InstanceState>,
    child: Option<Box<dyn VmProcess>>,
    stop_deadline: Option<Instant>,
}

impl MachineTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        loop {
            let pending = self.instance.state() == InstanceState::Pending;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Start(reply)) => { let _ = reply.send(self.start()); }
                    Some(Cmd::Stop { force, reply }) => { let _ = reply.send(self.stop(force).await); }
                    Some(Cmd::Reboot(reply)) => { let _ = reply.send(self.reboot().await); }
                    Some(Cmd::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(Ok(()));
                    }
                    Some(Cmd::Kill(reply)) => {
                        self.kill_and_wait().await;
                        let _ = reply.send(Ok(()));
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                status = wait_child(&mut self.child) => {
                    let id = &self.instance.id;
                    match status {
                        Ok(s) => tracing::info!(instance = %id, status = exit_text(s).as_str(), "VM process exited"),
                        Err(e) => tracing::warn!(instance = %id, error = %e, "VM process gone; waiting for it failed"),
                    }
                    self.child = None;
                    self.stop_deadline = None;
                    self.set_state(InstanceState::Stopped);
                }
                () = watch_activity(&mut self.activity), if pending && self.child.is_some() => {
                    tracing::info!(instance = %self.instance.id, "console output seen; instance running");
                    self.set_state(InstanceState::Running);
                }
                () = sleep_until_opt(self.stop_deadline) => {
                    tracing::warn!(instance = %self.instance.id, "VM did not stop in time; killing it");
                    self.stop_deadline = None;
                    if let Some(c) = self.child.as_mut() {
                        c.start_kill();
                    }
                }
            }
        }
    }

    fn start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.paths.dir)
            .map_err(|e| format!("{}: {e}", self.paths.dir.display()))?;
        // Stale sockets from a previous run would make QEMU fail to bind.
        for p in [&self.paths.serial, &self.paths.qmp] {
            let _ = std::fs::remove_file(p);
        }
        // Only output from now on makes the instance running.
        if let Some(a) = self.activity.as_mut() {
            a.mark_unchanged();
        }
        let child = self.launcher.launch(&self.spec, &self.paths)?;
        tracing::info!(instance = %self.instance.id, pid = child.id(), accel = self.spec.accel.as_str(), "VM started");
        self.child = Some(child);
        self.set_state(InstanceState::Pending);
        // QEMU waits for the hub before running the VM; have it connect now.
        if let Some(hub) = &self.hub {
            hub.kick();
        }
        Ok(())
    }

    async fn stop(&mut self, force: bool) -> Result<(), String> {
        if self.child.is_none() {
            self.set_state(InstanceState::Stopped);
            return Ok(());
        }
        self.set_state(InstanceState::Stopping);
        if force {
            self.kill();
            return Ok(());
        }
        // ACPI power button: a guest that handles it shuts down cleanly; one that does not is
        // killed when the stop timeout runs out.
        if let Err(e) = qmp::execute(&self.paths.qmp, "system_powerdown").await {
            tracing::warn!(instance = %self.instance.id, error = %e, "powerdown request failed; killing");
            self.kill();
            return Ok(());
        }
        self.stop_deadline =
            Some(Instant::now() + Duration::from_secs(self.spec.stop_timeout_secs));
        Ok(())
    }

    async fn reboot(&mut self) -> Result<(), String> {
        if self.child.is_none() {
            return Err("the instance is not running".to_owned());
        }
        // A hardware reset: the serial socket (and any session on it) stays connected and
        // shows the guest booting again.
        qmp::execute(&self.paths.qmp, "system_reset")
            .await
            .map(|_| ())
    }

    async fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = qmp::execute(&self.paths.qmp, "quit").await;
        if tokio::time::timeout(QUIT_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            child.start_kill();
            let _ = child.wait().await;
        }
        self.stop_deadline = None;
        tracing::info!(instance = %self.instance.id, "VM stopped for shutdown");
    }

    async fn kill_and_wait(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        child.start_kill();
        if let Err(e) = child.wait().await {
            tracing::warn!(instance = %self.instance.id, error = %e, "waiting for the killed VM failed");
        }
        self.stop_deadline = None;
        self.set_state(InstanceState::Stopped);
        tracing::info!(instance = %self.instance.id, "VM killed");
    }

    fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            c.start_kill();
        }
    }

    fn set_state(&self, state: InstanceState) {
        self.instance.set_state(state);
        self.states.send_replace(state);
    }
}

async fn wait_child(
    child: &mut Option<Box<dyn VmProcess>>,
) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

async fn watch_activity(activity: &mut Option<watch::Receiver<u64>>) {
    match activity {
        Some(a) => {
            if a.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
