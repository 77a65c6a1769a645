//! Line chat: each line a client sends reaches every other connected client once, in order.
//!
//!     cargo run --release --example chat [ADDR]      # default 127.0.0.1:7009
//!
//! Try it with two or more `nc 127.0.0.1 7009`.

use std::io::Write;

use eventmux::framing::Framing;
use eventmux::{Context, Handler, Incoming, Kind, Options, Reactor, Token};

/// Longest line accepted. A client that sends more without a newline gets
/// `Error::InputLimit` and is disconnected, so no peer can grow the server's memory.
const MAX_LINE: usize = 64 * 1024;

/// One per client. Framing hands it whole lines (without the `\n`, `\r` stripped).
struct Member {
    /// Reused list of the other members, so relaying a line allocates nothing.
    others: Vec<Token>,
}

impl Handler for Member {
    fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
        let me = ctx.token();
        // Every stream handle but this one is a chat member (the other kind is the listener).
        self.others.clear();
        self.others.extend(
            ctx.tokens()
                .filter(|&t| t != me && ctx.kind_of(t) == Some(Kind::Stream)),
        );
        for &other in &self.others {
            if let Some(mut peer) = ctx.handle(other) {
                // A member that stopped reading hits its output bound and is dropped; the
                // others are unaffected.
                let _ = peer.send(line).and_then(|()| peer.send(b"\n"));
            }
        }
    }
}

struct Lobby;

impl Handler for Lobby {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Member { others: Vec::new() }))
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7009".into());
    let mut reactor = Reactor::new()?;
    // Accepted connections inherit these options, each with its own line buffer.
    let options = Options::new().framing(Framing::lines()).max_size(MAX_LINE);
    let listener = reactor.listen_with(addr.as_str(), options, Lobby)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    reactor.run()
}
