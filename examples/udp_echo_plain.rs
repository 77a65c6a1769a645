//! UDP echo on the reactor thread: every datagram goes back to its sender.
//!
//!     cargo run --release --example udp_echo_plain -- [ADDR]      # default 127.0.0.1:7011
//!
//! Try it with `nc -u 127.0.0.1 7011`. (`udp_echo`, with pump threads, is the fast one.)

use std::io::Write;

use eventmux::{Address, Context, Handler, Options, Reactor};

const DEFAULT_ADDR: &str = "127.0.0.1:7011";

/// The bound socket's handler: replies go out batched, one `sendmmsg` per turn.
struct Echo;

impl Handler for Echo {
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        // A full queue (a peer flooding us faster than the socket drains) drops the handle
        // with Error::OutputLimit; datagram senders are expected to cope with loss anyway.
        let _ = ctx.send_to(from, data);
    }
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: udp_echo_plain [ADDR]

  ADDR   address to listen on (default {DEFAULT_ADDR})
"
    )
}

fn main() -> std::io::Result<()> {
    let addr = cli::parse("udp_echo_plain", &usage(), DEFAULT_ADDR, |_, _| Ok(false));
    let url = if addr.contains("://") {
        addr
    } else {
        format!("udp://{addr}")
    };
    let mut reactor = Reactor::new()?;
    let socket = reactor.bind(url.as_str(), Options::new(), Echo)?;
    let bound = reactor.handle(socket).expect("just opened").local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
