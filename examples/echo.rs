//! TCP echo server: everything a client sends comes back.
//!
//!     cargo run --release --example echo -- [ADDR] [--idle-timeout SECS]
//!
//! ADDR defaults to 127.0.0.1:7007; `--help` lists the options and their defaults. Try it
//! with `nc 127.0.0.1 7007`.
//!
//! A client that stays silent for 300 s is disconnected (`--idle-timeout`, 0 for never), so
//! connections abandoned without a close cannot pile up. One that sends faster than it
//! reads is no longer read from while 1 MiB of its echo waits (the output watermarks), so
//! TCP pushes back on it instead of the server queueing without end.

use std::io::Write;
use std::time::Duration;

use eventmux::{Context, Handler, Incoming, Options, Reactor};

const DEFAULT_ADDR: &str = "127.0.0.1:7007";
/// Idle deadline unless `--idle-timeout` says otherwise.
const DEFAULT_IDLE: Duration = Duration::from_secs(300);
/// Reading stops while this much echo waits for the client to take it...
const HIGH_WATER: usize = 1 << 20;
/// ...and starts again once the queue is down to this.
const LOW_WATER: usize = 256 << 10;

/// One per connection: sends back what it reads. `send` only queues; the reactor writes
/// everything sent during a turn with one system call.
struct Echo;

impl Handler for Echo {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        // On failure (output bound hit) the reactor reports it and kills the connection.
        let _ = ctx.send(data);
    }
}

/// The listener's handler: every accepted connection gets an `Echo`.
struct Server;

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Echo))
    }
}

fn usage() -> String {
    format!(
        "usage: echo [ADDR] [--idle-timeout SECS]

  ADDR                  address to listen on (default {DEFAULT_ADDR})
  --idle-timeout SECS   close a connection silent this long, 0 for never (default {})
",
        DEFAULT_IDLE.as_secs()
    )
}

/// A number of seconds (fractions allowed) for `flag`; 0 means no deadline.
fn seconds(flag: &str, value: Option<String>) -> Result<Option<Duration>, String> {
    value
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(|d| (!d.is_zero()).then_some(d))
        .ok_or_else(|| format!("{flag} takes a number of seconds"))
}

/// The listen address and the idle deadline, from the command line.
fn parse_args() -> Result<(String, Option<Duration>), String> {
    let (mut addr, mut idle) = (None, Some(DEFAULT_IDLE));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{}", usage());
                std::process::exit(0);
            }
            "--idle-timeout" => idle = seconds(&arg, args.next())?,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok((addr.unwrap_or_else(|| DEFAULT_ADDR.into()), idle))
}

fn main() -> std::io::Result<()> {
    let (addr, idle) = parse_args().unwrap_or_else(|why| {
        eprint!("echo: {why}\n{}", usage());
        std::process::exit(2);
    });
    let options = Options::new()
        .idle_timeout(idle)
        .watermarks(HIGH_WATER, LOW_WATER);
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen_with(addr.as_str(), options, Server)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    reactor.run()
}
