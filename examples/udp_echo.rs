//! UDP echo through a pump: receive threads block in `recvmmsg` and hand batches of packets
//! to the reactor thread, which sends each back to its sender (batched with `sendmmsg`).
//!
//!     cargo run --release --example udp_echo -- [ADDR] [--pump-threads N] [--reuse-port]
//!                                                [--threads N] [--pin]
//!
//! ADDR defaults to 127.0.0.1:7008, with one reactor and one receive thread; `--help` lists
//! the options. Try it with `nc -u 127.0.0.1 7008`.
//!
//! `--threads N` runs N reactors (a `ReactorGroup`), each with its own pump on the same
//! address through `SO_REUSEPORT` sockets, so the kernel spreads senders over them.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use eventmux::{Context, Handler, Packet, PumpOptions, Reactor, ReactorGroup};

const DEFAULT_ADDR: &str = "127.0.0.1:7008";

/// The pump's handler, on the reactor thread.
struct Echo;

impl Handler for Echo {
    fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
        if let Some(from) = packet.from() {
            // Replies queued during a turn leave together in one sendmmsg.
            let _ = ctx.send_to(from, packet.data());
        }
    }
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: udp_echo [ADDR] [--pump-threads N] [--reuse-port] [--threads N] [--pin]

  ADDR                address to listen on (default {DEFAULT_ADDR})
  --pump-threads N    receive threads per reactor (default 1)
  --reuse-port        one SO_REUSEPORT socket per receive thread, so the kernel spreads
                      senders over them (default off: a reactor's threads share one
                      socket; always on with --threads)
{}",
        cli::cores_usage(22)
    )
}

fn main() -> std::io::Result<()> {
    let (mut pump_threads, mut reuse_port) = (1, false);
    let mut cores = cli::Cores::default();
    let addr = cli::parse("udp_echo", &usage(), DEFAULT_ADDR, |flag, value| {
        if cores.option(flag, value)? {
            return Ok(true);
        }
        match flag {
            "--pump-threads" => pump_threads = cli::count(flag, value.next())?,
            "--reuse-port" => reuse_port = true,
            _ => return Ok(false),
        }
        Ok(true)
    });
    let url = if addr.contains("://") {
        addr
    } else {
        format!("udp://{addr}")
    };
    let options = PumpOptions::new()
        .threads(pump_threads)
        .reuse_port(reuse_port || cores.threads > 1);
    if cores.threads > 1 {
        // The first reactor binds (port 0 picks a port); the others bind the same one.
        let bound: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let first = bound.clone();
        let group =
            ReactorGroup::builder(cores.threads)
                .pin(cores.pin)
                .start(move |reactor, _| {
                    let mut bound = first.lock().expect("not poisoned");
                    let at = bound.map_or(url.clone(), |addr| format!("udp://{addr}"));
                    let pump = reactor.pump(at.as_str(), options, Echo)?;
                    let here = reactor.handle(pump).expect("just opened").local_addr()?;
                    bound.get_or_insert(here);
                    Ok(())
                })?;
        let addr = bound
            .lock()
            .expect("not poisoned")
            .expect("bound by worker 0");
        println!("listening on {addr}");
        std::io::stdout().flush()?;
        return cli::run_group(group);
    }
    let mut reactor = Reactor::new()?;
    let pump = reactor.pump(url.as_str(), options, Echo)?;
    let bound = reactor.handle(pump).expect("just opened").local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
