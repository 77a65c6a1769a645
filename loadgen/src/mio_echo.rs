//! [`MioEcho`]: the TCP echo server written by hand on mio, for comparison with eventmux's
//! `echo` example: one thread, edge-triggered readiness (mio's only mode), one 64 KiB
//! buffer per connection, `TCP_NODELAY` on (eventmux's default). This is the loop a user
//! would write without a framework, following mio's rules: read until `WouldBlock`, echo
//! each read at once, and while a write is short, stop reading until the socket is writable
//! again (the buffer doubles as the backpressure bound). The `mio_echo` binary runs it as a
//! process for `scripts/compare.sh`; `benches/instructions.rs` counts its instructions.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
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

/// A bound mio echo server; it serves on the thread that calls [`MioEcho::serve_until`].
///
/// ```
/// use std::io::{Read, Write};
/// use loadgen::MioEcho;
///
/// let mut server = MioEcho::bind("127.0.0.1:0")?;
/// let addr = server.local_addr()?;
/// let waker = server.waker();
/// let (echoed, got) = std::sync::mpsc::channel();
/// std::thread::spawn(move || {
///     let mut client = std::net::TcpStream::connect(addr).unwrap();
///     client.write_all(b"ping").unwrap();
///     let mut echo = [0; 4];
///     client.read_exact(&mut echo).unwrap();
///     // Said before the wake, so the woken server sees it.
///     echoed.send(echo).unwrap();
///     waker.wake().unwrap();
/// });
/// let mut echo = None;
/// server.serve_until(|| {
///     echo = got.try_recv().ok();
///     echo.is_some()
/// })?;
/// assert_eq!(&echo.unwrap(), b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MioEcho {
    poll: Poll,
    listener: TcpListener,
    waker: Arc<Waker>,
    connections: Slab<Connection>,
    events: Events,
}

impl MioEcho {
    /// Binds the listener (the first address `addr` resolves to).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<MioEcho> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(MioEcho {
            poll,
            listener,
            waker,
            connections: Slab::new(),
            events: Events::with_capacity(1024),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Wakes [`MioEcho::serve_until`] from another thread, to look at its condition.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Serves until a wake-up finds `done()` true. Connections stay open between calls.
    pub fn serve_until(&mut self, mut done: impl FnMut() -> bool) -> io::Result<()> {
        loop {
            match self.poll.poll(&mut self.events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut woken = false;
            for event in &self.events {
                match event.token() {
                    LISTENER => accept_all(&self.listener, &self.poll, &mut self.connections)?,
                    WAKER => woken = true,
                    Token(key) => {
                        let Some(connection) = self.connections.get_mut(key) else {
                            continue;
                        };
                        if !matches!(connection.drive(), Ok(true)) {
                            let mut connection = self.connections.remove(key);
                            self.poll.registry().deregister(&mut connection.stream)?;
                        }
                    }
                }
            }
            if woken && done() {
                return Ok(());
            }
        }
    }
}

/// Edge-triggered: accepts until the backlog is empty.
fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    connections: &mut Slab<Connection>,
) -> io::Result<()> {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                eprintln!("accept: {e}");
                return Ok(());
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
}
