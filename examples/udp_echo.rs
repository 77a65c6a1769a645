//! UDP echo through a pump: receive threads block in `recvmmsg` and hand batches of packets
//! to the reactor thread, which sends each back to its sender (batched with `sendmmsg`).
//!
//!     cargo run --release --example udp_echo -- [ADDR] [--threads N] [--reuse-port]
//!
//! ADDR defaults to 127.0.0.1:7008, with one thread; `--help` lists the options. Try it
//! with `nc -u 127.0.0.1 7008`.

use std::io::Write;

use eventmux::{Context, Handler, Packet, PumpOptions, Reactor};

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
        "usage: udp_echo [ADDR] [--threads N] [--reuse-port]

  ADDR           address to listen on (default {DEFAULT_ADDR})
  --threads N    receive threads (default 1)
  --reuse-port   one SO_REUSEPORT socket per thread, so the kernel spreads senders
                 over them (default off: the threads share one socket)
"
    )
}

fn main() -> std::io::Result<()> {
    let mut options = PumpOptions::new();
    let addr = cli::parse("udp_echo", &usage(), DEFAULT_ADDR, |flag, value| {
        match flag {
            "--threads" => options = options.threads(cli::count(flag, value.next())?),
            "--reuse-port" => options = options.reuse_port(true),
            _ => return Ok(false),
        }
        Ok(true)
    });
    let url = if addr.contains("://") {
        addr
    } else {
        format!("udp://{addr}")
    };
    let mut reactor = Reactor::new()?;
    let pump = reactor.pump(url.as_str(), options, Echo)?;
    let bound = reactor.handle(pump).expect("just opened").local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
