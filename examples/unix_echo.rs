//! Unix stream echo: greets each client with the credentials the kernel recorded for it
//! (SO_PEERCRED), then echoes.
//!
//!     cargo run --release --example unix_echo -- [PATH]      # default /tmp/eventmux.sock
//!
//! Try it with `socat - UNIX-CONNECT:/tmp/eventmux.sock`. The socket file is removed when
//! the server's listener closes, and a stale one left by a crash is replaced at start.

use std::io::Write;
use std::path::PathBuf;

use eventmux::{Context, Credentials, Handler, Incoming, Reactor};

const DEFAULT_PATH: &str = "/tmp/eventmux.sock";

/// One per client: the greeting names who connected; then everything read comes back.
struct Echo {
    credentials: Option<Credentials>,
}

impl Handler for Echo {
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        let greeting = match self.credentials {
            Some(c) => format!("hello pid={} uid={} gid={}\n", c.pid(), c.uid(), c.gid()),
            None => "hello (no credentials)\n".to_string(),
        };
        let _ = ctx.send(greeting.as_bytes());
    }

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send(data);
    }
}

struct Server;

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, incoming: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Echo {
            credentials: incoming.credentials(),
        }))
    }
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: unix_echo [PATH]

  PATH   socket file to listen on, or unix://PATH (default {DEFAULT_PATH})
"
    )
}

fn main() -> std::io::Result<()> {
    let path = cli::parse("unix_echo", &usage(), DEFAULT_PATH, |_, _| Ok(false));
    let path = PathBuf::from(path.strip_prefix("unix://").unwrap_or(&path));
    let mut reactor = Reactor::new()?;
    reactor.listen(path.clone(), Server)?;
    println!("listening on {}", path.display());
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
