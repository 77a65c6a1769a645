//! TCP echo server: everything a client sends comes back.
//!
//!     cargo run --release --example echo [ADDR]      # default 127.0.0.1:7007
//!
//! Try it with `nc 127.0.0.1 7007`.

use std::io::Write;

use eventmux::{Context, Handler, Incoming, Reactor};

/// Stop reading from a client that has this much echo waiting for it to read.
const HIGH_WATER: usize = 1 << 20;

/// One per connection: sends back what it reads. `send` only queues; the reactor writes
/// everything sent during a turn with one system call.
struct Echo;

impl Handler for Echo {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        // On failure (output bound hit) the reactor reports it and kills the connection.
        let _ = ctx.send(data);
        if ctx.buflen() > HIGH_WATER {
            // A client that sends faster than it reads: let TCP push back on it instead of
            // queueing without end.
            let _ = ctx.pause_reading();
        }
    }

    fn on_sent(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx.resume_reading();
    }
}

/// The listener's handler: every accepted connection gets an `Echo`.
struct Server;

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Echo))
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7007".into());
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen(addr.as_str(), Server)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    reactor.run()
}
