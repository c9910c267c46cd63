//! `sim:` — a built-in simulator of a small Linux machine's serial line, for demos and tests.
//!
//! Invariant: it never runs host commands; everything it prints comes from [`machine`]. Each
//! `open` gets a fresh machine. Output goes through the bounded channel like any backend's, and
//! input is taken only while little output is waiting, so a flood (`seq 100000`) or a paste
//! cannot grow memory.

mod ldisc;
mod machine;
mod shell;
mod text;

use bytes::{Buf, Bytes};
use tokio::time::Instant;

use crate::console::{Capabilities, Console, ConsoleOptions, Input, TaskEnds, channels};
use machine::Machine;

/// Starts a simulated machine; `name` appears in its getty banner.
pub(crate) fn open(name: &str, opts: &ConsoleOptions) -> Console {
    let capabilities = Capabilities {
        can_break: true,
        kind: "sim",
    };
    let (console, ends) = channels(capabilities, opts);
    let machine = Machine::new(name, Instant::now());
    tokio::spawn(run(machine, ends, opts.chunk()));
    console
}

/// Feeds the machine until the console is dropped (a simulated machine never goes away).
async fn run(mut machine: Machine, ends: TaskEnds, chunk: usize) {
    let TaskEnds { mut input, output } = ends;
    // The rest of the user message being typed; consumed only while output is taken.
    let mut typing = Bytes::new();
    let mut input_open = true;
    loop {
        let now = Instant::now();
        let mut typed = 0;
        for &byte in typing.iter() {
            if machine.backlog() >= chunk {
                break;
            }
            machine.input(byte, now);
            typed += 1;
        }
        typing.advance(typed);
        let want_input = input_open && typing.is_empty() && machine.backlog() < chunk;
        tokio::select! {
            biased;
            () = output.closed() => break,
            permit = output.reserve(), if machine.has_output() => match permit {
                Ok(permit) => {
                    if let Some(bytes) = machine.take_output(chunk) {
                        permit.send(bytes);
                    }
                }
                Err(_) => break,
            },
            message = input.recv(), if want_input => match message {
                None => input_open = false,
                Some(Input::Data(data)) => typing = data,
                Some(Input::Break) => machine.brk(Instant::now()),
            },
        }
    }
    tracing::debug!(breaks = machine.breaks(), "simulated console released");
}
