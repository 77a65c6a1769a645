//! The manual modes (ManualAccept, ManualRead, ManualWrite), the errors for manual
//! operations on the wrong kind of handle, and `Reactor::add` with descriptors opened
//! elsewhere.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use eventmux::{CloseReason, Context, Error, Handler, Incoming, Kind, Options, Reactor};
use util::{listen_local, run_until, Log, DEADLINE};

/// A blocking client that cannot hang a test for longer than the deadline.
fn client(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Echoes what it reads, logging `echo <text>`.
struct Echo {
    log: Log,
}

impl Handler for Echo {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.log
            .push(format!("echo {}", String::from_utf8_lossy(data)));
        ctx.send(data).unwrap();
    }
}

/// Accepts every connection with an [`Echo`].
struct EchoServer {
    log: Log,
}

impl Handler for EchoServer {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        self.log.push("on_accept");
        Some(Box::new(Echo {
            log: self.log.clone(),
        }))
    }
}

/// ManualAccept: accepts with `ctx.accept()` until it says nothing waits; registers each
/// connection as an [`Echo`], or refuses it by dropping the descriptor.
struct ManualListener {
    log: Log,
    refuse: bool,
}

impl Handler for ManualListener {
    fn on_accepting(&mut self, ctx: &mut Context<'_>) {
        self.log.push("accepting");
        loop {
            match ctx.accept() {
                Ok(Some((fd, peer))) => {
                    self.log
                        .push(format!("accepted {}", peer.as_inet().unwrap()));
                    if self.refuse {
                        drop(fd);
                        continue;
                    }
                    let echo = Echo {
                        log: self.log.clone(),
                    };
                    ctx.add(fd, Options::new(), echo).unwrap();
                }
                Ok(None) => {
                    self.log.push("none waiting");
                    return;
                }
                Err(e) => {
                    self.log.push(format!("accept error {e}"));
                    return;
                }
            }
        }
    }

    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        self.log.push("on_accept");
        None
    }
}

#[test]
fn manual_accept_reports_accepting_and_accepts_with_ctx_accept() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let server = ManualListener {
        log: log.clone(),
        refuse: false,
    };
    let options = Options::new().manual_accept(true);
    let (_, addr) = listen_local(&mut reactor, options, server);

    let mut client = client(addr);
    let me = client.local_addr().unwrap();
    run_until(&mut reactor, "the manual accept", |_| {
        log.contains("none waiting")
    });
    let entries = log.entries();
    let accepted = format!("accepted {me}");
    let at = entries.iter().position(|e| *e == accepted);
    let none = entries.iter().position(|e| e == "none waiting");
    assert!(
        entries.first().map(String::as_str) == Some("accepting") && at < none && at.is_some(),
        "log: {entries:?}"
    );

    client.write_all(b"hello").unwrap();
    run_until(&mut reactor, "the echo", |_| log.contains("echo hello"));
    let mut reply = [0; 5];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"hello");
    assert!(
        !log.contains("on_accept"),
        "ManualAccept never calls on_accept"
    );
    assert_eq!(log.count(&accepted), 1);
}

#[test]
fn manual_accept_refuses_by_dropping_the_descriptor() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let server = ManualListener {
        log: log.clone(),
        refuse: true,
    };
    let options = Options::new().manual_accept(true);
    let (listener, addr) = listen_local(&mut reactor, options, server);

    let mut client = client(addr);
    let accepted = format!("accepted {}", client.local_addr().unwrap());
    run_until(&mut reactor, "the refusal", |_| log.contains(&accepted));

    let mut buf = [0; 16];
    assert_eq!(
        client.read(&mut buf).unwrap(),
        0,
        "a refused client sees EOF"
    );
    assert_eq!(reactor.len(), 1, "only the listener is left");
    assert!(reactor.handle(listener).is_some());
}

/// ManualRead: reads with `ctx.read()` in `on_readable` and closes at end of stream.
struct ManualReader {
    log: Log,
    got: Vec<u8>,
}

impl Handler for ManualReader {
    fn on_readable(&mut self, ctx: &mut Context<'_>) {
        let mut buf = [0; 4096];
        match ctx.read(&mut buf) {
            Ok(0) => {
                self.log.push("eof");
                self.log
                    .push(format!("got {}", String::from_utf8_lossy(&self.got)));
                ctx.close();
            }
            Ok(n) => {
                self.log.push("readable");
                self.got.extend_from_slice(&buf[..n]);
            }
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.log.push("would block");
            }
            Err(e) => self.log.push(format!("read error {e}")),
        }
    }

    fn on_read(&mut self, _: &mut Context<'_>, _: &[u8]) {
        self.log.push("on_read");
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.log.push(format!("close {reason:?}"));
    }
}

struct ManualReadServer {
    log: Log,
}

impl Handler for ManualReadServer {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(ManualReader {
            log: self.log.clone(),
            got: Vec::new(),
        }))
    }
}

#[test]
fn manual_read_calls_on_readable_and_never_on_read() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let options = Options::new().manual_read(true);
    let server = ManualReadServer { log: log.clone() };
    let (_, addr) = listen_local(&mut reactor, options, server);

    let mut client = client(addr);
    client.write_all(b"read me by hand").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    run_until(&mut reactor, "end of stream", |_| log.contains("eof"));
    run_until(&mut reactor, "the close", |_| log.contains("close Closed"));

    assert!(
        log.contains("got read me by hand"),
        "log: {:?}",
        log.entries()
    );
    assert!(log.count("readable") >= 1);
    assert!(!log.contains("on_read"), "ManualRead never calls on_read");
    assert_eq!(log.count("eof"), 1, "log: {:?}", log.entries());
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// ManualWrite: writes directly on the first `on_writable` and asks for another, in which
/// it queues with `send`.
struct ManualWriter {
    log: Log,
    writable: usize,
}

impl Handler for ManualWriter {
    fn on_writable(&mut self, ctx: &mut Context<'_>) {
        self.writable += 1;
        self.log.push("writable");
        match self.writable {
            1 => {
                let n = ctx.write(b"direct\n").unwrap();
                self.log.push(format!("wrote {n}"));
                ctx.watch_writable().unwrap();
            }
            2 => ctx.send(b"queued\n").unwrap(),
            _ => {}
        }
    }

    fn on_sent(&mut self, _: &mut Context<'_>) {
        self.log.push("sent");
    }
}

struct ManualWriteServer {
    log: Log,
}

impl Handler for ManualWriteServer {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(ManualWriter {
            log: self.log.clone(),
            writable: 0,
        }))
    }
}

#[test]
fn manual_write_calls_on_writable_on_request_and_send_still_works() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let options = Options::new().manual_write(true);
    let server = ManualWriteServer { log: log.clone() };
    let (_, addr) = listen_local(&mut reactor, options, server);

    let mut client = client(addr);
    run_until(&mut reactor, "the queued output drained", |_| {
        log.contains("sent")
    });
    let mut reply = [0; 14];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"direct\nqueued\n");
    assert!(log.contains("wrote 7"));

    // No further on_writable was asked for: a few more turns bring none.
    for _ in 0..5 {
        reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(log.count("writable"), 2, "log: {:?}", log.entries());
}

/// Runs `probe` in `on_connect` and logs what it returns.
struct ProbeOnConnect {
    log: Log,
    probe: fn(&mut Context<'_>) -> String,
}

impl Handler for ProbeOnConnect {
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        self.log.push((self.probe)(ctx));
    }
}

struct ProbeServer {
    log: Log,
    probe: fn(&mut Context<'_>) -> String,
}

impl Handler for ProbeServer {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(ProbeOnConnect {
            log: self.log.clone(),
            probe: self.probe,
        }))
    }
}

/// Accepts one connection whose `on_connect` runs `probe`; returns what it logged.
fn probe_accepted_stream(probe: fn(&mut Context<'_>) -> String) -> String {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let server = ProbeServer {
        log: log.clone(),
        probe,
    };
    let (_, addr) = listen_local(&mut reactor, Options::new(), server);
    let _client = client(addr);
    run_until(&mut reactor, "the probe", |_| !log.entries().is_empty());
    log.entries().remove(0)
}

#[test]
fn watch_writable_without_manual_write_is_wrong_kind() {
    let outcome = probe_accepted_stream(|ctx| match ctx.watch_writable() {
        Err(Error::WrongKind { kind, .. }) => format!("wrong kind {kind:?}"),
        other => format!("{other:?}"),
    });
    assert_eq!(outcome, "wrong kind Stream");
}

#[test]
fn accept_on_a_stream_is_wrong_kind() {
    let outcome = probe_accepted_stream(|ctx| match ctx.accept() {
        Err(Error::WrongKind { kind, .. }) => format!("wrong kind {kind:?}"),
        other => format!("{:?}", other.map(|a| a.map(|(_, peer)| peer))),
    });
    assert_eq!(outcome, "wrong kind Stream");
}

#[test]
fn add_takes_a_connected_std_stream() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = client(listener.local_addr().unwrap());
    let (server_side, _) = listener.accept().unwrap();

    let echo = Echo { log: log.clone() };
    let token = reactor.add(server_side, Options::new(), echo).unwrap();
    let handle = reactor.handle(token).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Stream));
    assert_eq!(handle.peer_addr().unwrap(), client.local_addr().unwrap());

    client.write_all(b"ping").unwrap();
    run_until(&mut reactor, "the echo", |_| log.contains("echo ping"));
    let mut reply = [0; 4];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ping");
}

#[test]
fn add_takes_a_std_listener() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();

    let server = EchoServer { log: log.clone() };
    let token = reactor.add(listener, Options::new(), server).unwrap();
    assert_eq!(reactor.handle(token).unwrap().kind(), Some(Kind::Listener));
    assert_eq!(reactor.handle(token).unwrap().local_addr().unwrap(), addr);

    let mut client = client(addr);
    client.write_all(b"pong").unwrap();
    run_until(&mut reactor, "the echo", |_| log.contains("echo pong"));
    let mut reply = [0; 4];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"pong");
    assert_eq!(log.count("on_accept"), 1);
}

#[test]
fn add_takes_a_udp_socket_as_a_datagram_handle() {
    let mut reactor = Reactor::new().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let server = EchoServer {
        log: Log::default(),
    };
    let token = reactor.add(socket, Options::new(), server).unwrap();
    let handle = reactor.handle(token).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Datagram));
    assert_eq!(handle.transport(), Some(eventmux::Transport::Udp));
    assert_eq!(handle.local_addr().unwrap(), addr);
}

#[test]
fn add_refuses_a_regular_file() {
    let mut reactor = Reactor::new().unwrap();
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let server = EchoServer {
        log: Log::default(),
    };
    let error = reactor.add(file, Options::new(), server).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
    assert!(reactor.is_empty());
}
