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

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: echo [ADDR] [--idle-timeout SECS]

  ADDR                  address to listen on (default {DEFAULT_ADDR})
  --idle-timeout SECS   close a connection silent this long, 0 for never (default {})
",
        DEFAULT_IDLE.as_secs()
    )
}

fn main() -> std::io::Result<()> {
    let mut idle = Some(DEFAULT_IDLE);
    let addr = cli::parse("echo", &usage(), DEFAULT_ADDR, |flag, value| {
        match flag {
            "--idle-timeout" => idle = cli::seconds(flag, value.next())?,
            _ => return Ok(false),
        }
        Ok(true)
    });
    let options = Options::new()
        .idle_timeout(idle)
        .watermarks(HIGH_WATER, LOW_WATER);
    let mut reactor = Reactor::new()?;
    // Started by a supervisor (systemd's socket activation): serve the sockets it passed.
    let passed = eventmux::listen_fds()?;
    let listener = match passed.into_iter().next() {
        Some(fd) => reactor.add(fd, options, Server)?,
        None => reactor.listen_with(addr.as_str(), options, Server)?,
    };
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
