//! A TCP client on the test thread (`Peer`): non-blocking, pumped from `run_until`
//! closures, with the waits built on it.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use eventmux::Reactor;

use super::{run_until, Log};

/// A socket on the test thread: non-blocking, pumped from `run_until` closures.
pub struct Peer {
    pub stream: TcpStream,
    pub received: Vec<u8>,
    /// `Ok` for end of stream, `Err` for a reset or other error.
    pub end: Option<Result<(), io::ErrorKind>>,
    /// Whether to shut down our writing side when the stream ends.
    close_at_eof: bool,
}

impl Peer {
    /// Connects to `addr`. At end of stream it closes its side too, like a real client.
    pub fn connect(addr: SocketAddr) -> Peer {
        Peer::from_stream(TcpStream::connect(addr).expect("connect to the test listener"))
    }

    /// Wraps a connected socket (made non-blocking here).
    pub fn from_stream(stream: TcpStream) -> Peer {
        stream.set_nonblocking(true).unwrap();
        Peer {
            stream,
            received: Vec::new(),
            end: None,
            close_at_eof: true,
        }
    }

    /// Sets `TCP_NODELAY`, so that small pieces leave as they are written.
    pub fn nodelay(self) -> Peer {
        self.stream.set_nodelay(true).unwrap();
        self
    }

    /// Leaves our writing side open when the stream ends.
    pub fn leave_open_at_eof(mut self) -> Peer {
        self.close_at_eof = false;
        self
    }

    /// Writes a small message (it fits the empty socket buffer at once).
    pub fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).expect("client write");
    }

    /// Reads what has arrived; returns whether the stream has ended.
    pub fn pump(&mut self) -> bool {
        let mut buf = [0u8; 64 * 1024];
        while self.end.is_none() {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    if self.close_at_eof {
                        // Like a real client: the server is done, so close our side too,
                        // which lets the server's lingering close finish.
                        let _ = self.stream.shutdown(Shutdown::Write);
                    }
                    self.end = Some(Ok(()));
                }
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.end = Some(Err(e.kind())),
            }
        }
        true
    }
}

/// Sends `message` from `peer` and waits until it has come back.
pub fn round_trip(reactor: &mut Reactor, peer: &mut Peer, message: &[u8]) {
    let start = peer.received.len();
    peer.send(message);
    run_until(reactor, "the echo", |_| {
        peer.pump();
        peer.received.len() >= start + message.len()
    });
    assert_eq!(&peer.received[start..], message, "the echo differs");
}

/// Runs turns until handler `name` has received `on_close` and `peer` has seen the end of
/// the stream (pumping it meanwhile: its end of stream completes a graceful close).
pub fn run_until_closed_with(reactor: &mut Reactor, log: &Log, name: &str, peer: &mut Peer) {
    let prefix = format!("{name}:close:");
    run_until(reactor, &format!("{prefix} and the client's end"), |_| {
        peer.pump() && log.count_prefix(&prefix) > 0
    });
}
