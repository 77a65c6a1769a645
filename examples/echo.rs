//! TCP echo server: everything a client sends comes back.
//!
//!     cargo run --release --example echo -- [ADDR] [--idle-timeout SECS] [--takeover PATH]
//!                                            [--threads N [--pin] [--spread kernel|fewest]]
//!                                            [--tls CERT KEY]
//!
//! ADDR defaults to 127.0.0.1:7007; `--help` lists the options and their defaults. Try it
//! with `nc 127.0.0.1 7007`.
//!
//! `--takeover PATH` restarts without refusing a connection: the server offers its
//! listening socket on the Unix socket PATH, and a second `echo --takeover PATH` started
//! beside it takes the socket over (ADDR is ignored then), starts accepting, and the old
//! one finishes its connections and exits. Run the same command again for the next
//! restart.
//!
//! `--threads N` serves on N reactor threads (a `ReactorGroup`): each with its own
//! `SO_REUSEPORT` listener (`--spread kernel`, the default), or one acceptor that hands
//! each connection to the thread with the fewest (`--spread fewest`, even for long-lived
//! connections). `--pin` pins thread i to the i-th CPU.
//!
//! `--tls CERT KEY` (a build with `--features tls`) serves TLS with the PEM certificate
//! chain and key: `scripts/make_cert.sh` makes a self-signed pair, and
//! `openssl s_client -connect 127.0.0.1:7007 -CAfile cert.pem` talks to it.
//!
//! SIGTERM or SIGINT (or a takeover) stops accepting and lets each client finish: an echo
//! has no goodbye to say, so a connection closes when its client closes it, within 10 s.
//!
//! A client that stays silent for 300 s is disconnected (`--idle-timeout`, 0 for never), so
//! connections abandoned without a close cannot pile up. One that sends faster than it
//! reads is no longer read from while 1 MiB of its echo waits (the output watermarks), so
//! TCP pushes back on it instead of the server queueing without end.

use std::io::Write;
use std::time::Duration;

use eventmux::{Context, Handler, Incoming, Options, Reactor, ReactorGroup, Spread};

const DEFAULT_ADDR: &str = "127.0.0.1:7007";
/// Idle deadline unless `--idle-timeout` says otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);
/// Reading stops while this much echo waits for the client to take it...
const HIGH_WATER: usize = 1 << 20;
/// ...and starts again once the queue is down to this.
const LOW_WATER: usize = 256 << 10;

/// One per connection: sends back what it reads. `send` only queues; the reactor writes
/// everything sent during a turn with one system call.
pub struct Echo;

impl Handler for Echo {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        // On failure (output bound hit) the reactor reports it and kills the connection.
        let _ = ctx.send(data);
    }

    /// The server is draining: the client may be mid-stream, so keep echoing until it
    /// closes (what is still open when the grace time ends is cut off).
    fn on_shutdown(&mut self, _ctx: &mut Context<'_>) {}
}

/// The listener's handler: every accepted connection gets an `Echo`.
pub struct Server;

/// The listener's options (plain TCP): the idle deadline and the output watermarks.
pub fn options(idle: Option<Duration>) -> Options {
    Options::new()
        .idle_timeout(idle)
        .watermarks(HIGH_WATER, LOW_WATER)
}

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Echo))
    }
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: echo [ADDR] [--idle-timeout SECS] [--takeover PATH] [--threads N] [--pin]
            [--spread kernel|fewest]

  ADDR                  address to listen on (default {DEFAULT_ADDR})
  --idle-timeout SECS   close a connection silent this long, 0 for never (default {})
  --takeover PATH       take the listener over from the echo offering it at the Unix
                        socket PATH (if any), then offer it there for the next one
                        (one thread only)
  --spread kernel|fewest
                        with --threads: an SO_REUSEPORT listener per thread, or one
                        acceptor handing connections to the least busy (default kernel)
{}",
        DEFAULT_IDLE.as_secs(),
        cli::cores_usage(24) + &cli::tls_usage(24)
    )
}

#[allow(dead_code)] // benches/instructions.rs includes this file for `options` and `Server`
fn main() -> std::io::Result<()> {
    let mut idle = Some(DEFAULT_IDLE);
    let mut takeover = None;
    let (mut cores, mut spread) = (cli::Cores::default(), Spread::Kernel);
    let mut tls = cli::TlsFiles::default();
    let addr = cli::parse("echo", &usage(), DEFAULT_ADDR, |flag, value| {
        if cores.option(flag, value)? || tls.option(flag, value)? {
            return Ok(true);
        }
        match flag {
            "--spread" => {
                spread = match value.next().as_deref() {
                    Some("kernel") => Spread::Kernel,
                    Some("fewest") => Spread::FewestConnections,
                    _ => return Err("--spread takes kernel or fewest".into()),
                }
            }
            "--idle-timeout" => idle = cli::seconds(flag, value.next())?,
            "--takeover" => {
                takeover = Some(value.next().ok_or("--takeover takes a socket path")?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    });
    let options = move || tls.apply(options(idle));
    if cores.threads > 1 {
        if takeover.is_some() {
            eprint!("echo: --takeover works with one thread\n{}", usage());
            std::process::exit(2);
        }
        let group = ReactorGroup::builder(cores.threads)
            .pin(cores.pin)
            .listen(&addr, spread, options, |_| Some(Box::new(Echo)))
            .start(|_, _| Ok(()))?;
        println!("listening on {}", group.local_addr(0));
        std::io::stdout().flush()?;
        return cli::run_group(group);
    }
    let options = options();
    let mut reactor = Reactor::new()?;
    // Taking over from a running echo, or started by a supervisor (systemd's socket
    // activation): serve the socket passed; otherwise listen afresh.
    let mut taken = match &takeover {
        Some(path) => eventmux::take_over(path)?,
        None => None,
    };
    let passed = match taken.as_mut() {
        Some(taken) => taken.take_listeners(),
        None => eventmux::listen_fds()?,
    };
    let listener = match passed.into_iter().next() {
        Some(fd) => reactor.add(fd, options, Server)?,
        None => reactor.listen_with(addr.as_str(), options, Server)?,
    };
    if let Some(taken) = taken {
        // Accepting here now: the old server finishes its connections and exits.
        taken.ready()?;
        println!("took the listener over");
    }
    if let Some(path) = &takeover {
        reactor.offer_listeners(path, cli::DRAIN_GRACE)?;
    }
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
