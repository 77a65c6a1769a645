//! Line chat: each line a client sends reaches every other connected client once, in order.
//!
//!     cargo run --release --example chat [ADDR]      # default 127.0.0.1:7009
//!
//! Try it with two or more `nc 127.0.0.1 7009`.

use std::io::Write;

use eventmux::{Context, Handler, Incoming, Kind, Reactor, Token};

/// Longest line accepted; a client that sends more without a newline is disconnected, so a
/// peer cannot grow the server's memory.
const MAX_LINE: usize = 64 * 1024;

/// One per client: collects bytes into lines and relays each whole line to the others.
struct Member {
    partial: Vec<u8>,
    /// Reused list of the other members, so relaying a line allocates nothing.
    others: Vec<Token>,
}

impl Handler for Member {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let me = ctx.token();
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(end + 1);
            rest = tail;
            let whole: &[u8] = if self.partial.is_empty() {
                line
            } else {
                self.partial.extend_from_slice(line);
                &self.partial
            };
            // Every stream handle but this one is a chat member (the other kind is the listener).
            self.others.clear();
            self.others.extend(
                ctx.tokens()
                    .filter(|&t| t != me && ctx.kind_of(t) == Some(Kind::Stream)),
            );
            for &other in &self.others {
                if let Some(mut peer) = ctx.handle(other) {
                    // A member that stopped reading hits its output bound and is dropped;
                    // the others are unaffected.
                    let _ = peer.send(whole);
                }
            }
            self.partial.clear();
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE {
            ctx.kill();
        }
    }
}

struct Lobby;

impl Handler for Lobby {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Member {
            partial: Vec::new(),
            others: Vec::new(),
        }))
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7009".into());
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen(addr.as_str(), Box::new(Lobby))?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    reactor.run()
}
