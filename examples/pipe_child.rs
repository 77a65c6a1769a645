//! Runs a command and streams its stdout and stderr, each line labelled with where it came
//! from, then reports how it ended and exits with the command's status (128 + the signal
//! if a signal ended it, as a shell does).
//!
//!     cargo run --release --example pipe_child -- COMMAND [ARGS...]
//!
//! For example `cargo run --example pipe_child -- sh -c 'echo out; echo err >&2; exit 3'`
//! prints `[stdout] out`, `[stderr] err` and `[exit] exit status: 3`, and exits with 3.
//! SIGTERM or SIGINT is passed on to the command (SIGTERM), whose remaining output is still
//! shown; a second one cuts it off.
//!
//! The child is trusted: a line may take as long as it likes to finish (a prompt, a progress
//! bar), so the pipes have no record deadline.

#[path = "cli/mod.rs"]
mod cli;

use std::cell::Cell;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;

use eventmux::framing::Framing;
use eventmux::{ChildStdio, Context, Handler, Options, Reactor};

/// The whole child: whole lines from both pipes (a last line without a newline comes to
/// `on_read_last`), then the exit.
struct Labelled {
    status: Rc<Cell<Option<ExitStatus>>>,
}

impl Labelled {
    fn print(&self, ctx: &Context<'_>, line: &[u8]) {
        let label = match ctx.stdio() {
            Some(ChildStdio::Stderr) => "stderr",
            _ => "stdout",
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{label}] {}", String::from_utf8_lossy(line));
    }
}

impl Handler for Labelled {
    fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
        self.print(ctx, line);
    }

    fn on_read_last(&mut self, ctx: &mut Context<'_>, rest: &[u8]) {
        self.print(ctx, rest);
    }

    fn on_exit(&mut self, _: &mut Context<'_>, status: ExitStatus) {
        println!("[exit] {status}");
        self.status.set(Some(status));
    }

    /// On SIGTERM or SIGINT the process handle closes, which sends the child SIGTERM; the
    /// pipes stay open so that what the child prints as it ends is still shown.
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        if ctx.stdio().is_none() {
            ctx.close();
        }
    }
}

fn main() -> std::io::Result<()> {
    const USAGE: &str = "usage: pipe_child COMMAND [ARGS...]\n";
    let mut args = std::env::args().skip(1);
    let program = match args.next() {
        Some(help) if help == "-h" || help == "--help" => {
            print!("{USAGE}");
            return Ok(());
        }
        Some(program) => program,
        None => {
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // eventmux gives framed streams a 60 s record deadline by default, against peers
    // that trickle; a child's half-written line is no attack.
    let lines = Options::new()
        .framing(Framing::lines())
        .record_timeout(None);
    let status = Rc::new(Cell::new(None));
    let mut reactor = Reactor::new()?;
    cli::drain_on_signals(&mut reactor)?;
    let labelled = Labelled {
        status: status.clone(),
    };
    if let Err(e) = reactor.spawn_with(&mut command, lines, labelled) {
        eprintln!("pipe_child: cannot start the command: {e}");
        std::process::exit(127);
    }
    // The signal handle stays for good; run until the child is done.
    while status.get().is_none() {
        reactor.run_once(None)?;
    }
    let status = status.get().expect("the loop ends with a status");
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    std::process::exit(code);
}
