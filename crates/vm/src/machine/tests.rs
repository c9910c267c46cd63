//! The VM state machine against the in-process fake QEMU (`crate::fake`), and once against a
//! real process started through `setpriv`.
//!
//! Time is paused only for the phases where a timeout is what happens next and nothing is in
//! flight on a socket (see `crate::fake` for why): the clock then jumps straight to the
//! deadline under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backends::{ConsoleOptions, ConsoleUri, Hub};
use console::{AccountId, AvailabilityZone, Instance, InstanceId, InstanceState};
use tokio::sync::watch;

use super::{Machine, QUIT_TIMEOUT};
use crate::fake::{FakeQemu, Guest, Qmp};
use crate::qmp::QMP_TIMEOUT;
use crate::spec::{Accel, QemuSpec, VmPaths};

const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Turns a hang into a failure. Under paused time it is virtual, and it only fires once every
/// task is idle, which means the awaited event can no longer happen.
const GUARD: Duration = Duration::from_secs(600);

struct Vm {
    machine: Machine,
    states: watch::Receiver<InstanceState>,
    instance: Arc<Instance>,
    hub: Option<Hub>,
    paths: VmPaths,
    _dir: tempfile::TempDir,
}

fn spec(binary: &Path) -> QemuSpec {
    QemuSpec {
        kernel: "/k".into(),
        initrd: None,
        disk: None,
        memory_mib: 64,
        cpus: 1,
        append: "console=ttyS0".into(),
        accel: Accel::Tcg,
        stop_timeout_secs: STOP_TIMEOUT.as_secs(),
        binary: binary.to_owned(),
        keys_relay: None,
        ssh_forward: None,
    }
}

fn instance() -> Arc<Instance> {
    Arc::new(Instance::new(
        InstanceId::parse("i-0123456789abcdef0").unwrap(),
        AccountId::parse("111122223333").unwrap(),
        "t3.micro".into(),
        AvailabilityZone::parse("us-east-1a").unwrap(),
        BTreeMap::new(),
        false,
        String::new(),
        InstanceState::Stopped,
    ))
}

impl Vm {
    /// A machine on the fake, with a console hub on its serial socket if `with_hub`.
    fn new(fake: &FakeQemu, with_hub: bool) -> Vm {
        let dir = tempfile::tempdir().unwrap();
        let paths = VmPaths::new(dir.path(), "i-0123456789abcdef0");
        let hub = with_hub.then(|| {
            Hub::start(
                ConsoleUri::UnixTelnet(paths.serial.clone()),
                ConsoleOptions::default(),
                4096,
            )
        });
        let instance = instance();
        let (machine, states) = Machine::spawn_with(
            Arc::clone(&instance),
            spec(Path::new("fake-qemu")),
            paths.clone(),
            hub.clone(),
            fake.launcher(),
        );
        Vm {
            machine,
            states,
            instance,
            hub,
            paths,
            _dir: dir,
        }
    }

    async fn reaches(&mut self, want: InstanceState) {
        let seen = tokio::time::timeout(GUARD, self.states.wait_for(|s| *s == want)).await;
        assert!(
            seen.is_ok(),
            "the instance never became {want:?}; it is {:?}",
            self.instance.state()
        );
    }

    /// Starts the VM and has its console print: running.
    async fn running(&mut self, fake: &FakeQemu) {
        self.machine.start().await.unwrap();
        fake.current().print(b"Linux version 6.1.0\r\n");
        self.reaches(InstanceState::Running).await;
    }
}

#[tokio::test]
async fn pending_until_the_console_prints_then_running() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let mut vm = Vm::new(&fake, true);
    vm.machine.start().await.unwrap();
    assert_eq!(vm.instance.state(), InstanceState::Pending);
    assert_eq!(fake.launches(), 1);

    // The hub is connected and the guest is silent: a minute later it is still pending.
    fake.current().serial_connected().await;
    tokio::time::pause();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(vm.instance.state(), InstanceState::Pending);
    tokio::time::resume();

    fake.current().print(b"SeaBIOS\r\n");
    vm.reaches(InstanceState::Running).await;
    assert_eq!(vm.instance.state(), InstanceState::Running);
}

/// Output from a previous boot must not make the next boot running: only output after the
/// start counts.
#[tokio::test]
async fn output_before_a_start_does_not_make_it_running() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let mut vm = Vm::new(&fake, true);
    vm.running(&fake).await;
    let mut activity = vm.hub.as_ref().unwrap().activity();
    let before = *activity.borrow_and_update();
    // Running: further output is not watched by the machine, but the hub takes it in.
    fake.current().print(b"reboot: Power down\r\n");
    activity.wait_for(|n| *n > before).await.unwrap();
    fake.current().exit();
    vm.reaches(InstanceState::Stopped).await;

    vm.machine.start().await.unwrap();
    assert_eq!(fake.launches(), 2);
    fake.current().serial_connected().await;
    tokio::time::pause();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(vm.instance.state(), InstanceState::Pending);
}

#[tokio::test]
async fn starting_a_started_vm_starts_nothing() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let vm = Vm::new(&fake, false);
    vm.machine.start().await.unwrap();
    vm.machine.start().await.unwrap();
    assert_eq!(fake.launches(), 1);
    assert_eq!(vm.instance.state(), InstanceState::Pending);
}

#[tokio::test]
async fn a_vm_that_cannot_be_launched_is_an_error_and_stays_stopped() {
    let fake = FakeQemu::unstartable();
    let vm = Vm::new(&fake, false);
    let err = vm.machine.start().await.unwrap_err();
    assert!(err.contains("cannot start"), "{err}");
    assert_eq!(vm.instance.state(), InstanceState::Stopped);
    // The directory for its sockets was created all the same.
    assert!(vm.paths.dir.is_dir());
}

#[tokio::test]
async fn a_guest_that_powers_off_by_itself_is_stopped_and_can_start_again() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let mut vm = Vm::new(&fake, true);
    vm.running(&fake).await;
    fake.current().exit();
    vm.reaches(InstanceState::Stopped).await;
    assert!(!fake.current().killed());

    vm.machine.start().await.unwrap();
    assert_eq!(fake.launches(), 2);
    assert_eq!(vm.instance.state(), InstanceState::Pending);
    fake.current().print(b"Linux version 6.1.0\r\n");
    vm.reaches(InstanceState::Running).await;
}

/// A clean stop presses the ACPI power button; a guest that honours it exits and is never
/// killed.
#[tokio::test]
async fn stop_powers_down_and_a_guest_that_obeys_exits_unkilled() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let mut vm = Vm::new(&fake, true);
    vm.running(&fake).await;
    vm.machine.stop(false).await.unwrap();
    assert_eq!(fake.commands(), ["system_powerdown"]);
    vm.reaches(InstanceState::Stopped).await;
    assert!(!fake.current().killed());
}

/// A guest that ignores the power button stays `stopping` for the whole stop timeout and is
/// killed when it runs out.
#[tokio::test]
async fn a_guest_that_ignores_powerdown_is_killed_at_the_stop_timeout() {
    let fake = FakeQemu::new(Guest::Ignores, Qmp::Answers);
    let mut vm = Vm::new(&fake, true);
    vm.running(&fake).await;
    vm.machine.stop(false).await.unwrap();
    assert_eq!(fake.commands(), ["system_powerdown"]);
    assert_eq!(vm.instance.state(), InstanceState::Stopping);

    // Nothing is in flight now: the stop deadline is the next thing to happen.
    tokio::time::pause();
    tokio::time::sleep(STOP_TIMEOUT - Duration::from_secs(1)).await;
    assert!(!fake.current().killed(), "killed before the stop timeout");
    assert_eq!(vm.instance.state(), InstanceState::Stopping);
    vm.reaches(InstanceState::Stopped).await;
    assert!(fake.current().killed());
}

#[tokio::test]
async fn a_forced_stop_kills_at_once_without_asking_the_guest() {
    let fake = FakeQemu::new(Guest::Ignores, Qmp::Answers);
    let mut vm = Vm::new(&fake, true);
    vm.running(&fake).await;
    vm.machine.stop(true).await.unwrap();
    assert!(fake.current().killed());
    assert!(fake.commands().is_empty(), "{:?}", fake.commands());
    vm.reaches(InstanceState::Stopped).await;
}

/// A QMP socket that never answers cannot hold the stop up for longer than the QMP timeout:
/// the VM is killed.
#[tokio::test(start_paused = true)]
async fn stop_kills_a_vm_whose_qmp_never_answers() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Silent);
    let mut vm = Vm::new(&fake, false);
    vm.machine.start().await.unwrap();
    let t0 = tokio::time::Instant::now();
    vm.machine.stop(false).await.unwrap();
    assert!(
        t0.elapsed() >= QMP_TIMEOUT,
        "stop returned before the QMP timeout"
    );
    assert!(fake.current().killed());
    vm.reaches(InstanceState::Stopped).await;
}

#[tokio::test]
async fn stopping_a_stopped_vm_is_a_no_op() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let mut vm = Vm::new(&fake, false);
    vm.instance.set_state(InstanceState::Running);
    vm.machine.stop(false).await.unwrap();
    vm.reaches(InstanceState::Stopped).await;
    assert_eq!(fake.launches(), 0);
}

/// A reboot is a hardware reset over QMP: same process, still running.
#[tokio::test]
async fn reboot_resets_the_running_vm_in_place() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let mut vm = Vm::new(&fake, true);
    vm.running(&fake).await;
    vm.machine.reboot().await.unwrap();
    assert_eq!(fake.commands(), ["system_reset"]);
    assert_eq!(fake.launches(), 1);
    assert!(!fake.current().exited());
    assert_eq!(vm.instance.state(), InstanceState::Running);
}

#[tokio::test]
async fn reboot_of_a_stopped_vm_is_refused() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Answers);
    let vm = Vm::new(&fake, false);
    let err = vm.machine.reboot().await.unwrap_err();
    assert!(err.contains("not running"), "{err}");
    assert!(fake.commands().is_empty());
}

#[tokio::test]
async fn a_failed_reset_is_reported() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Fails);
    let vm = Vm::new(&fake, false);
    vm.machine.start().await.unwrap();
    let err = vm.machine.reboot().await.unwrap_err();
    assert!(
        err.contains("system_reset") && err.contains("fake failure"),
        "{err}"
    );
}

/// A powerdown that QMP refuses is not retried for the whole stop timeout: the VM is killed.
#[tokio::test]
async fn a_refused_powerdown_means_kill() {
    let fake = FakeQemu::new(Guest::Obeys, Qmp::Fails);
    let mut vm = Vm::new(&fake, false);
    vm.machine.start().await.unwrap();
    vm.machine.stop(false).await.unwrap();
    assert_eq!(fake.commands(), ["system_powerdown"]);
    assert!(fake.current().killed());
    vm.reaches(InstanceState::Stopped).await;
}

#[tokio::test]
async fn shutdown_quits_qemu_cleanly() {
    let fake = FakeQemu::new(Guest::Ignores, Qmp::Answers);
    let vm = Vm::new(&fake, false);
    vm.machine.start().await.unwrap();
    vm.machine.shutdown().await.unwrap();
    assert_eq!(fake.commands(), ["quit"]);
    assert!(fake.current().exited());
    assert!(!fake.current().killed());
}

/// A QEMU that does not go on `quit` is killed after the quit timeout; shutdown returns once it
/// is gone.
#[tokio::test]
async fn shutdown_kills_a_qemu_that_ignores_quit() {
    let fake = FakeQemu::ignoring_quit(Guest::Ignores);
    let vm = Vm::new(&fake, false);
    vm.machine.start().await.unwrap();
    tokio::time::pause();
    let t0 = tokio::time::Instant::now();
    vm.machine.shutdown().await.unwrap();
    assert!(t0.elapsed() >= QUIT_TIMEOUT);
    assert!(fake.current().killed());
}

/// A kill asks the guest and QEMU nothing, and returns only once the process is gone: the VM
/// is stopped when the call returns.
#[tokio::test]
async fn kill_returns_once_the_vm_is_gone_without_asking_anyone() {
    let fake = FakeQemu::ignoring_quit(Guest::Ignores);
    let mut vm = Vm::new(&fake, true);
    vm.running(&fake).await;
    vm.machine.kill().await.unwrap();
    assert!(fake.current().killed());
    assert_eq!(vm.instance.state(), InstanceState::Stopped);
    assert!(fake.commands().is_empty(), "{:?}", fake.commands());
    // A VM that is not running is killed at once too.
    vm.machine.kill().await.unwrap();
    vm.reaches(InstanceState::Stopped).await;
}

/// When the last handle goes, the task shuts its VM down rather than leaving it behind.
#[tokio::test]
async fn dropping_every_handle_shuts_the_vm_down() {
    let fake = FakeQemu::new(Guest::Ignores, Qmp::Answers);
    let vm = Vm::new(&fake, false);
    vm.machine.start().await.unwrap();
    let launch = fake.current();
    drop(vm.machine);
    let gone = tokio::time::timeout(GUARD, launch.wait_exit()).await;
    assert!(gone.is_ok(), "the VM outlived its machine");
    assert_eq!(fake.commands(), ["quit"]);
}

fn script(dir: &Path, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("fake-qemu.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The real launcher: the binary runs under `setpriv` with QEMU's argument vector and its
/// output goes to the log file; its exit makes the instance stopped.
#[tokio::test]
async fn a_real_process_gets_the_arguments_and_the_log_and_its_exit_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args");
    let binary = script(
        dir.path(),
        &format!(
            "printf '%s\\n' \"$@\" > '{}'\necho fake-qemu up",
            args_file.display()
        ),
    );
    let paths = VmPaths::new(dir.path(), "i-0123456789abcdef0");
    let instance = instance();
    let (machine, mut states) = Machine::spawn_with(
        Arc::clone(&instance),
        spec(&binary),
        paths.clone(),
        None,
        Box::new(super::Qemu),
    );
    machine.start().await.unwrap();
    let stopped = tokio::time::timeout(GUARD, states.wait_for(|s| *s == InstanceState::Stopped));
    assert!(stopped.await.is_ok(), "the process exit was not seen");
    let args = std::fs::read_to_string(&args_file).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args,
        spec(&binary)
            .args(&paths)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let log = std::fs::read_to_string(&paths.log).unwrap();
    assert!(log.contains("fake-qemu up"), "{log}");
}

/// A forced stop kills a real process that would otherwise run for ten minutes.
#[tokio::test]
async fn a_forced_stop_kills_a_real_process() {
    let dir = tempfile::tempdir().unwrap();
    let binary = script(dir.path(), "exec sleep 600");
    let instance = instance();
    let (machine, mut states) = Machine::spawn_with(
        Arc::clone(&instance),
        spec(&binary),
        VmPaths::new(dir.path(), "i-0123456789abcdef0"),
        None,
        Box::new(super::Qemu),
    );
    machine.start().await.unwrap();
    assert_eq!(instance.state(), InstanceState::Pending);
    machine.stop(true).await.unwrap();
    let stopped = tokio::time::timeout(GUARD, states.wait_for(|s| *s == InstanceState::Stopped));
    assert!(stopped.await.is_ok(), "the process was not killed");
}
