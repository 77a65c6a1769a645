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

/// The listen address and the pump's options, from the command line.
fn parse_args() -> Result<(String, PumpOptions), String> {
    let (mut addr, mut options) = (None, PumpOptions::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{}", usage());
                std::process::exit(0);
            }
            "--threads" => {
                let n = args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0);
                options = options.threads(n.ok_or("--threads takes a number above 0")?);
            }
            "--reuse-port" => options = options.reuse_port(true),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok((addr.unwrap_or_else(|| DEFAULT_ADDR.into()), options))
}

fn main() -> std::io::Result<()> {
    let (addr, options) = parse_args().unwrap_or_else(|why| {
        eprint!("udp_echo: {why}\n{}", usage());
        std::process::exit(2);
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
    reactor.run()
}
