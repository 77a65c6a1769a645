//! Length-prefixed echo: each record (a 4-byte big-endian length, then that many bytes)
//! comes back whole, header included.
//!
//!     cargo run --release --example lenprefix_echo -- [ADDR]      # default 127.0.0.1:7010
//!
//! Try it with `printf '\0\0\0\5hello' | nc -q1 127.0.0.1 7010 | xxd`. A record must be
//! complete within 60 s of its first byte (eventmux's default record deadline), so a
//! client that announces a large record and trickles it cannot hold its buffer for ever.

use std::io::Write;

use eventmux::framing::{Endian, Framing, Size};
use eventmux::{Context, Handler, Incoming, Options, Reactor, DEFAULT_RECORD_TIMEOUT};

const DEFAULT_ADDR: &str = "127.0.0.1:7010";
/// Largest record accepted; a bigger announced length closes that connection at the header.
const MAX_RECORD: usize = 16 * 1024 * 1024;
/// Reading stops while this much echo waits for the client to take it...
const HIGH_WATER: usize = 1 << 20;
/// ...and starts again once the queue is down to this.
const LOW_WATER: usize = 256 << 10;

/// One per connection. Framing hands it each record's payload; it puts the header back.
pub struct Echo;

impl Handler for Echo {
    fn on_read(&mut self, ctx: &mut Context<'_>, payload: &[u8]) {
        // Both sends join the turn's single write to this connection.
        let header = (payload.len() as u32).to_be_bytes();
        let _ = ctx.send(&header).and_then(|()| ctx.send(payload));
    }
}

/// The listener's handler: every accepted connection gets an `Echo`.
pub struct Server;

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Echo))
    }
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: lenprefix_echo [ADDR]

  ADDR   address to listen on (default {DEFAULT_ADDR})

Records of up to {} MiB, each complete within {} s of its first byte.
",
        MAX_RECORD >> 20,
        DEFAULT_RECORD_TIMEOUT.as_secs()
    )
}

/// The listener's options: the length-prefix rule, its bound and the output watermarks.
pub fn options() -> Options {
    Options::new()
        .framing(Framing::size(Size::new(4, Endian::Big)))
        .max_size(MAX_RECORD + 4)
        .watermarks(HIGH_WATER, LOW_WATER)
        // Reading stops past the high mark, but the record that took the queue there is
        // echoed whole: the bound must hold the largest one on top of the mark.
        .max_output(HIGH_WATER + MAX_RECORD + 4)
}

#[allow(dead_code)] // benches/instructions.rs includes this file for `options` and `Server`
fn main() -> std::io::Result<()> {
    let addr = cli::parse("lenprefix_echo", &usage(), DEFAULT_ADDR, |_, _| Ok(false));
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen_with(addr.as_str(), options(), Server)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
