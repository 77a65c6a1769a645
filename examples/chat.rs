//! Line chat: each line a client sends reaches every other connected client once, in order.
//!
//!     cargo run --release --example chat -- [ADDR] [--idle-timeout SECS]
//!
//! ADDR defaults to 127.0.0.1:7009; `--help` lists the options and their defaults. Try it
//! with two or more `nc 127.0.0.1 7009`.
//!
//! A member silent for 300 s is disconnected (`--idle-timeout`, 0 for never). A line longer
//! than 64 KiB, or one still unfinished 60 s after it began (eventmux's record deadline),
//! disconnects its sender without reaching anyone; a member that stops reading is dropped
//! once its backlog passes the output bound, or when it has taken nothing for 60 s.

use std::io::Write;
use std::time::Duration;

use eventmux::framing::Framing;
use eventmux::{Context, Error, Handler, Incoming, Kind, Options, Reactor, Token};

const DEFAULT_ADDR: &str = "127.0.0.1:7009";
/// Idle deadline unless `--idle-timeout` says otherwise.
const DEFAULT_IDLE: Duration = Duration::from_secs(300);
/// Longest line accepted. A client that sends more without a newline gets
/// `Error::InputLimit` and is disconnected, so no peer can grow the server's memory.
const MAX_LINE: usize = 64 * 1024;

/// One per client. Framing hands it whole lines (without the `\n`, `\r` stripped).
struct Member {
    /// Reused list of the other members, so relaying a line allocates nothing.
    others: Vec<Token>,
    /// Something went wrong (a line too long or too slow, a reset): what the member left
    /// unfinished is not relayed.
    failed: bool,
}

impl Member {
    fn relay(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
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

impl Handler for Member {
    fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
        self.relay(ctx, line);
    }

    fn on_read_last(&mut self, ctx: &mut Context<'_>, rest: &[u8]) {
        // A last line without its newline still counts when the member just hung up.
        if !self.failed {
            self.relay(ctx, rest);
        }
    }

    fn on_error(&mut self, _: &mut Context<'_>, _: &Error) {
        self.failed = true;
    }
}

struct Lobby;

impl Handler for Lobby {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Member {
            others: Vec::new(),
            failed: false,
        }))
    }
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: chat [ADDR] [--idle-timeout SECS]

  ADDR                  address to listen on (default {DEFAULT_ADDR})
  --idle-timeout SECS   disconnect a member silent this long, 0 for never (default {})
",
        DEFAULT_IDLE.as_secs()
    )
}

fn main() -> std::io::Result<()> {
    let mut idle = Some(DEFAULT_IDLE);
    let addr = cli::parse("chat", &usage(), DEFAULT_ADDR, |flag, value| {
        match flag {
            "--idle-timeout" => idle = cli::seconds(flag, value.next())?,
            _ => return Ok(false),
        }
        Ok(true)
    });
    let mut reactor = Reactor::new()?;
    // Accepted connections inherit these options, each with its own line buffer.
    let options = Options::new()
        .framing(Framing::lines())
        .max_size(MAX_LINE)
        .idle_timeout(idle);
    let listener = reactor.listen_with(addr.as_str(), options, Lobby)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
