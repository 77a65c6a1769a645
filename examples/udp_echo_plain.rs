//! UDP echo on the reactor thread: every datagram goes back to its sender.
//!
//!     cargo run --release --example udp_echo_plain [ADDR]      # default 127.0.0.1:7011
//!
//! Try it with `nc -u 127.0.0.1 7011`. (`udp_echo`, with pump threads, is the fast one.)

use std::io::Write;

use eventmux::{Address, Context, Handler, Options, Reactor};

/// The bound socket's handler: replies go out batched, one `sendmmsg` per turn.
struct Echo;

impl Handler for Echo {
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        // A full queue (a peer flooding us faster than the socket drains) drops the handle
        // with Error::OutputLimit; datagram senders are expected to cope with loss anyway.
        let _ = ctx.send_to(from, data);
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7011".into());
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
    reactor.run()
}
