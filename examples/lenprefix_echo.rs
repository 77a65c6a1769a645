//! Length-prefixed echo: each record (a 4-byte big-endian length, then that many bytes)
//! comes back whole, header included.
//!
//!     cargo run --release --example lenprefix_echo [ADDR]      # default 127.0.0.1:7010
//!
//! Try it with `printf '\0\0\0\5hello' | nc -q1 127.0.0.1 7010 | xxd`.

use std::io::Write;

use eventmux::framing::{Endian, Framing, Size};
use eventmux::{Context, Handler, Incoming, Options, Reactor};

/// Largest record accepted; a bigger announced length closes that connection at the header.
const MAX_RECORD: usize = 16 * 1024 * 1024;
/// Stop reading from a client that has this much echo waiting for it to read.
const HIGH_WATER: usize = 1 << 20;

/// One per connection. Framing hands it each record's payload; it puts the header back.
struct Echo;

impl Handler for Echo {
    fn on_read(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        // Both sends join the turn's single write to this connection.
        let header = (payload.len() as u32).to_be_bytes();
        let _ = ctx.send(&header).and_then(|()| ctx.send(payload));
        if ctx.buflen() > HIGH_WATER {
            let _ = ctx.pause_reading();
        }
    }

    fn on_sent(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx.resume_reading();
    }
}

struct Server;

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Echo))
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7010".into());
    let mut reactor = Reactor::new()?;
    let options = Options::new()
        .framing(Framing::size(Size::new(4, Endian::Big)))
        .max_size(MAX_RECORD + 4);
    let listener = reactor.listen_with(addr.as_str(), options, Server)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    reactor.run()
}
