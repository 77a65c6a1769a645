//! UDP echo through a pump: receive threads block in `recvmmsg` and hand batches of packets
//! to the reactor thread, which sends each back to its sender (batched with `sendmmsg`).
//!
//!     cargo run --release --example udp_echo [ADDR] [--threads N] [--reuse-port]
//!
//! Default 127.0.0.1:7008, one thread. Try it with `nc -u 127.0.0.1 7008`.

use std::io::Write;

use eventmux::{Context, Handler, Packet, PumpOptions, Reactor};

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

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:7008".to_string();
    let mut options = PumpOptions::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let n = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
                options = options.threads(n);
            }
            "--reuse-port" => options = options.reuse_port(true),
            other => addr = other.to_string(),
        }
    }
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
