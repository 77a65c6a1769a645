//! TCP echo server written by hand on mio, for comparison with eventmux's `echo` example:
//! one thread, edge-triggered readiness (mio's only mode), one 64 KiB buffer per
//! connection, `TCP_NODELAY` on (eventmux's default). This is the loop a user would write
//! without a framework, following mio's rules: read until `WouldBlock`, echo each read at
//! once, and while a write is short, stop reading until the socket is writable again (the
//! buffer doubles as the backpressure bound).
//!
//!     cargo run --release -p loadgen --bin mio_echo [ADDR]      # default 127.0.0.1:7013
//!
//! `scripts/compare.sh` runs it beside `echo` and `tokio_echo` under `loadgen`.

use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
/// The same as eventmux's default read size.
const BUFFER: usize = 64 * 1024;

struct Connection {
    stream: TcpStream,
    buffer: Box<[u8]>,
    /// `buffer[start..end]` was read and is not yet written back.
    start: usize,
    end: usize,
}

impl Connection {
    /// Echoes until the socket has nothing to read or no room to write. `Ok(false)` when
    /// the connection is over (end of stream or an error).
    fn drive(&mut self) -> io::Result<bool> {
        loop {
            while self.start < self.end {
                match self.stream.write(&self.buffer[self.start..self.end]) {
                    Ok(n) => self.start += n,
                    // Wait for the writable edge; reading waits too.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            match self.stream.read(&mut self.buffer) {
                Ok(0) => return Ok(false),
                Ok(n) => (self.start, self.end) = (0, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7013".into());
    let addr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    let mut connections: Slab<Connection> = Slab::new();
    let mut events = Events::with_capacity(1024);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            if event.token() == LISTENER {
                // Edge-triggered: accept until the backlog is empty.
                loop {
                    let (mut stream, _) = match listener.accept() {
                        Ok(accepted) => accepted,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    };
                    stream.set_nodelay(true)?;
                    let entry = connections.vacant_entry();
                    poll.registry().register(
                        &mut stream,
                        Token(entry.key()),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    entry.insert(Connection {
                        stream,
                        buffer: vec![0; BUFFER].into_boxed_slice(),
                        start: 0,
                        end: 0,
                    });
                }
                continue;
            }
            let key = event.token().0;
            let Some(connection) = connections.get_mut(key) else {
                continue;
            };
            if !matches!(connection.drive(), Ok(true)) {
                let mut connection = connections.remove(key);
                poll.registry().deregister(&mut connection.stream)?;
            }
        }
    }
}
