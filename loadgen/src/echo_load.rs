//! [`EchoLoad`]: load on a TCP echo server. N connections, each keeping D messages of B
//! bytes in flight (D = 1 is ping-pong) or streaming chunks as fast as the socket takes
//! them ([`Traffic`]); every echoed byte is checked against what was sent ([`Pattern`]).
//!
//! One thread drives every connection with non-blocking sockets and edge-triggered epoll
//! (through mio), as redis-benchmark and wrk do, so the client spends its CPU on the
//! traffic and not on switching between 50 threads; pinned to its own core it can then
//! keep a single-threaded server busy. It is not built on eventmux, so it measures
//! eventmux and its peers alike.
//!
//! A load runs in measured stretches ([`EchoLoad::run_for`], which returns what each
//! connection got back) and ends with [`EchoLoad::finish`], which stops sending and waits
//! for every byte still in flight: a run passes only if everything sent came back, in
//! order, and nothing else did.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::pattern::Pattern;
use crate::LoadError;

/// No echo at all for this long, while echo is owed, means the server stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes per read of a streaming connection (eventmux's default read size).
const STREAM_READ_BUFFER: usize = 64 * 1024;
/// Readiness events taken per `epoll_wait`.
const EVENTS: usize = 1024;

/// What every connection of a load sends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// Keep `depth` messages of `size` bytes in flight: send a new one for each echo that
    /// completes. Depth 1 is ping-pong.
    Messages {
        /// Bytes per message.
        size: usize,
        /// Messages in flight per connection.
        depth: usize,
    },
    /// Write `chunk` bytes at a time whenever the socket takes them, and read the echo
    /// whenever it comes: as much in flight as the socket buffers hold.
    Stream {
        /// Bytes per write, and per counted message.
        chunk: usize,
    },
}

impl Traffic {
    /// Bytes per message, what a count of echoed bytes divides by to count messages.
    pub fn message_size(&self) -> usize {
        match *self {
            Traffic::Messages { size, .. } => size,
            Traffic::Stream { chunk } => chunk,
        }
    }

    /// The most one write sends.
    fn largest_write(&self) -> usize {
        match *self {
            Traffic::Messages { size, depth } => size * depth,
            Traffic::Stream { chunk } => chunk,
        }
    }

    /// The read buffer: for messages, larger than anything that can be in flight, so that
    /// every complete read is short and ends the read loop without a `WouldBlock`.
    fn read_buffer(&self) -> usize {
        match *self {
            Traffic::Messages { .. } => self.largest_write() + 4096,
            Traffic::Stream { chunk } => chunk.max(STREAM_READ_BUFFER),
        }
    }
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Traffic::Messages { size, depth } => write!(f, "{size} B messages, depth {depth}"),
            Traffic::Stream { chunk } => write!(f, "streams of {chunk} B writes"),
        }
    }
}

/// One connection: how far its writes and its checked echo have come.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    /// Bytes written so far.
    written: u64,
    /// Bytes echoed back and checked so far.
    read: u64,
}

/// What one connection needs to be told: the traffic, the pattern, and whether the load is
/// finishing (sending nothing new).
struct Rules<'a> {
    traffic: Traffic,
    pattern: &'a Pattern,
    finishing: bool,
}

impl Connection {
    /// Bytes that should have been written by now.
    fn target(&self, rules: &Rules<'_>) -> u64 {
        if rules.finishing {
            return self.written;
        }
        match rules.traffic {
            Traffic::Messages { size, depth } => {
                let size = size as u64;
                (self.read / size + depth as u64) * size
            }
            Traffic::Stream { .. } => u64::MAX,
        }
    }

    /// Writes towards the target until done or the socket is full.
    fn flush(&mut self, index: usize, rules: &Rules<'_>) -> Result<(), LoadError> {
        let target = self.target(rules);
        while self.written < target {
            let len = (target - self.written).min(rules.traffic.largest_write() as u64) as usize;
            match self
                .stream
                .write(rules.pattern.window(index, self.written, len))
            {
                Ok(n) => self.written += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(LoadError::Io {
                        connection: Some(index),
                        call: "write",
                        error,
                    })
                }
            }
        }
        Ok(())
    }

    /// Reads what has arrived and checks it, then writes what that makes due; returns the
    /// bytes echoed.
    fn on_ready(
        &mut self,
        index: usize,
        rules: &Rules<'_>,
        buffer: &mut [u8],
    ) -> Result<u64, LoadError> {
        let mut got = 0;
        loop {
            let n = match self.stream.read(buffer) {
                Ok(0) => {
                    return Err(LoadError::ClosedEarly {
                        connection: index,
                        owed: self.written - self.read,
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(LoadError::Io {
                        connection: Some(index),
                        call: "read",
                        error,
                    })
                }
            };
            if self.read + n as u64 > self.written {
                return Err(LoadError::EchoedUnsent {
                    connection: index,
                    echoed: self.read + n as u64,
                    sent: self.written,
                });
            }
            rules
                .pattern
                .check(index, self.read, &buffer[..n])
                .map_err(|mismatch| LoadError::Corrupt {
                    connection: index,
                    mismatch,
                })?;
            self.read += n as u64;
            got += n as u64;
            // A short read drained the socket; epoll reports the next arrival as a new edge.
            if n < buffer.len() {
                break;
            }
        }
        self.flush(index, rules)?;
        Ok(got)
    }
}

/// Connections to one echo server, with their traffic.
///
/// ```no_run
/// use std::time::Duration;
/// use loadgen::{EchoLoad, Traffic};
///
/// # fn main() -> Result<(), loadgen::LoadError> {
/// let traffic = Traffic::Messages { size: 64, depth: 1 };
/// let mut load = EchoLoad::connect("127.0.0.1:7007".parse().unwrap(), 50, traffic)?;
/// load.run_for(Duration::from_millis(500))?; // warm-up
/// let echoed: u64 = load.run_for(Duration::from_secs(5))?.iter().sum();
/// load.finish()?;
/// println!("{} messages/s", echoed / 64 / 5);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EchoLoad {
    poll: Poll,
    events: Events,
    connections: Vec<Connection>,
    traffic: Traffic,
    pattern: Pattern,
    buffer: Vec<u8>,
}

impl EchoLoad {
    /// Opens `connections` connections to `addr` (with `TCP_NODELAY`); nothing is sent
    /// before the first [`EchoLoad::run_for`].
    pub fn connect(
        addr: SocketAddr,
        connections: usize,
        traffic: Traffic,
    ) -> Result<EchoLoad, LoadError> {
        assert!(traffic.largest_write() > 0, "traffic of empty messages");
        let io_error = |call, error| LoadError::Io {
            connection: None,
            call,
            error,
        };
        let poll = Poll::new().map_err(|e| io_error("epoll_create", e))?;
        let connections = (0..connections)
            .map(|index| {
                let stream = std::net::TcpStream::connect(addr)
                    .map_err(|error| LoadError::Connect { addr, error })?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| io_error("setsockopt TCP_NODELAY", e))?;
                stream
                    .set_nonblocking(true)
                    .map_err(|e| io_error("fcntl O_NONBLOCK", e))?;
                let mut stream = TcpStream::from_std(stream);
                poll.registry()
                    .register(
                        &mut stream,
                        Token(index),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map_err(|e| io_error("epoll_ctl", e))?;
                Ok(Connection {
                    stream,
                    written: 0,
                    read: 0,
                })
            })
            .collect::<Result<_, LoadError>>()?;
        let buffer = vec![0; traffic.read_buffer()];
        Ok(EchoLoad {
            poll,
            events: Events::with_capacity(EVENTS),
            connections,
            pattern: Pattern::new(traffic.largest_write().max(buffer.len())),
            traffic,
            buffer,
        })
    }

    /// Runs the traffic for `duration`; returns the bytes echoed to each connection
    /// meanwhile, in the order the connections were opened.
    pub fn run_for(&mut self, duration: Duration) -> Result<Vec<u64>, LoadError> {
        let began = Instant::now();
        let deadline = began + duration;
        let before: Vec<u64> = self.connections.iter().map(|c| c.read).collect();
        let rules = Rules {
            traffic: self.traffic,
            pattern: &self.pattern,
            finishing: false,
        };
        for (index, connection) in self.connections.iter_mut().enumerate() {
            connection.flush(index, &rules)?;
        }
        let mut last_progress = began;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let quiet = now - last_progress;
            if quiet >= STALL_TIMEOUT {
                return Err(LoadError::Stalled(quiet));
            }
            let timeout = (deadline - now).min(STALL_TIMEOUT - quiet);
            if self.turn(timeout, false)? > 0 {
                last_progress = Instant::now();
            }
        }
        let echoed = self
            .connections
            .iter()
            .zip(before)
            .map(|(connection, before)| connection.read - before)
            .collect();
        Ok(echoed)
    }

    /// Stops sending and waits until every byte in flight has come back and been checked;
    /// then closes the connections (dropping an `EchoLoad` closes them at once).
    pub fn finish(mut self) -> Result<(), LoadError> {
        let mut last_progress = Instant::now();
        while self.connections.iter().any(|c| c.read < c.written) {
            let quiet = last_progress.elapsed();
            if quiet >= STALL_TIMEOUT {
                return Err(LoadError::Stalled(quiet));
            }
            if self.turn(STALL_TIMEOUT - quiet, true)? > 0 {
                last_progress = Instant::now();
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for readiness and serves the connections that have it; returns
    /// the bytes echoed.
    fn turn(&mut self, timeout: Duration, finishing: bool) -> Result<u64, LoadError> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(error) => {
                return Err(LoadError::Io {
                    connection: None,
                    call: "epoll_wait",
                    error,
                })
            }
        }
        let rules = Rules {
            traffic: self.traffic,
            pattern: &self.pattern,
            finishing,
        };
        let mut got = 0;
        for event in &self.events {
            let index = event.token().0;
            got += self.connections[index].on_ready(index, &rules, &mut self.buffer)?;
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Shutdown, TcpListener};
    use std::thread;

    /// A blocking echo server for one connection that hands each read to `mangle` first.
    fn echo_once(mangle: fn(&mut Vec<u8>, u64)) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buffer = vec![0; 65536];
            let mut offset = 0;
            loop {
                let n = match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut reply = buffer[..n].to_vec();
                mangle(&mut reply, offset);
                offset += n as u64;
                if stream.write_all(&reply).is_err() {
                    return;
                }
                if reply.is_empty() {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
        });
        addr
    }

    const PING_PONG: Traffic = Traffic::Messages { size: 64, depth: 1 };

    /// Runs `load` in short stretches until `bytes` have come back to its first connection;
    /// fails only a hung test.
    fn run_until_echoed(load: &mut EchoLoad, bytes: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut echoed = 0;
        while echoed < bytes {
            assert!(Instant::now() < deadline, "only {echoed} bytes came back");
            let stretch = load.run_for(Duration::from_millis(10)).unwrap();
            assert_eq!(stretch.len(), 1, "one count per connection");
            echoed += stretch[0];
        }
    }

    #[test]
    fn an_honest_echo_passes() {
        let addr = echo_once(|_, _| {});
        let mut load = EchoLoad::connect(addr, 1, PING_PONG).unwrap();
        run_until_echoed(&mut load, 10 * 64);
        load.finish().unwrap();
    }

    #[test]
    fn a_flipped_byte_is_caught_where_it_is() {
        let addr = echo_once(|reply, offset| {
            if (offset..offset + reply.len() as u64).contains(&100) {
                reply[(100 - offset) as usize] ^= 1;
            }
        });
        let mut load = EchoLoad::connect(addr, 1, PING_PONG).unwrap();
        match load.run_for(Duration::from_secs(5)) {
            Err(LoadError::Corrupt {
                connection: 0,
                mismatch,
            }) => assert_eq!(mismatch.position(), 100),
            other => panic!("expected a corrupt byte, got {other:?}"),
        }
    }

    #[test]
    fn a_server_that_hangs_up_is_closed_early() {
        // The server answers the first message with nothing and closes.
        let addr = echo_once(|reply, _| reply.clear());
        let mut load = EchoLoad::connect(addr, 1, PING_PONG).unwrap();
        match load.run_for(Duration::from_secs(5)) {
            Err(LoadError::ClosedEarly { connection: 0, .. }) | Err(LoadError::Io { .. }) => {}
            other => panic!("expected an early close, got {other:?}"),
        }
    }

    #[test]
    fn a_doubled_echo_is_more_than_was_sent() {
        let addr = echo_once(|reply, _| reply.extend_from_within(..));
        let mut load = EchoLoad::connect(addr, 1, PING_PONG).unwrap();
        let error = load.run_for(Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(
                error,
                LoadError::EchoedUnsent { .. } | LoadError::Corrupt { .. }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_stream_comes_back_whole() {
        let addr = echo_once(|_, _| {});
        let mut load = EchoLoad::connect(addr, 1, Traffic::Stream { chunk: 16 * 1024 }).unwrap();
        run_until_echoed(&mut load, 1024 * 1024);
        load.finish().unwrap();
    }
}
