//! Runs a command and streams its stdout and stderr, each line labelled with where it came
//! from, until both end; exits with the command's status.
//!
//!     cargo run --release --example pipe_child -- COMMAND [ARGS...]
//!
//! For example `cargo run --example pipe_child -- sh -c 'echo out; echo err >&2'`. The
//! child is trusted: a line may take as long as it likes to finish (a prompt, a progress
//! bar), so the pipes have no record deadline.

use std::io::Write;
use std::process::{Command, Stdio};

use eventmux::framing::Framing;
use eventmux::{Context, Handler, Options, Reactor};

/// One per pipe: framing hands it whole lines; a last line without a newline comes to
/// `on_read_last`.
struct Labelled {
    label: &'static str,
}

impl Labelled {
    fn print(&self, line: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{}] {}", self.label, String::from_utf8_lossy(line));
    }
}

impl Handler for Labelled {
    fn on_read(&mut self, _: &mut Context<'_>, line: &[u8]) {
        self.print(line);
    }

    fn on_read_last(&mut self, _: &mut Context<'_>, rest: &[u8]) {
        self.print(rest);
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
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // eventmux gives framed streams a 60 s record deadline by default, against peers
    // that trickle; a child's half-written line is no attack.
    let lines = || {
        Options::new()
            .framing(Framing::lines())
            .record_timeout(None)
    };
    let mut reactor = Reactor::new()?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    reactor.add(stdout, lines(), Labelled { label: "stdout" })?;
    reactor.add(stderr, lines(), Labelled { label: "stderr" })?;
    // Returns when both pipes have reached end of file.
    reactor.run()?;
    let status = child.wait()?;
    std::process::exit(status.code().unwrap_or(1));
}
