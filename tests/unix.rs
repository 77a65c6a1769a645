//! Unix domain sockets: stream listeners and connections named by `unix:///path` URLs, the
//! peer's credentials (`SO_PEERCRED`), datagram sockets bound to a path (`unix_dgram://`)
//! or unbound, the sender's path on every datagram, sending to a path; the socket files a
//! handle binds (removed when it closes, replaced when stale, never stolen while live); and
//! endpoint strings that name the part at fault when they are wrong.
//!
//! Peers are plain `std` sockets, non-blocking and pumped from `run_until` closures. Paths
//! are unique to this process and call, in the temp directory.

mod util;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use eventmux::{
    Address, CloseReason, Context, Credentials, Error, Handler, Incoming, Kind, Options, Reactor,
    Transport, UrlError,
};
use util::run_until;

// ----- helpers ---------------------------------------------------------------------------

/// A socket path in the temp directory, unique to this process and call; removed again
/// when dropped (whoever created the file).
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("eventmux-{}-{n}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }

    /// `unix:///path` or `unix_dgram:///path`.
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.0.display())
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn is_socket_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// What the handlers of a test saw, shared with the test body.
#[derive(Default)]
struct Seen {
    /// Bytes read by stream handlers.
    bytes: Vec<u8>,
    datagrams: Vec<(Vec<u8>, Address)>,
    /// `(kind, transport)` of each connection, as its callbacks see it.
    shapes: Vec<(Option<Kind>, Option<Transport>)>,
    /// `Incoming::credentials`, `address` and `peer_addr` in `on_accept`.
    accepted: Vec<(Option<Credentials>, Address, Option<std::net::SocketAddr>)>,
    /// From `Context::peer_credentials` in `on_connect`.
    connected: Vec<Option<Credentials>>,
    errors: Vec<String>,
    sent: usize,
    closed: Vec<CloseReason>,
}

type Shared = Rc<RefCell<Seen>>;

/// A handler for every kind of handle: records into [`Seen`]; echoes stream reads if asked,
/// replies to datagrams with `reply:` and the data if asked, and accepts connections with
/// a handler like itself.
#[derive(Clone)]
struct Recorder {
    seen: Shared,
    echo: bool,
    greeting: Option<&'static [u8]>,
}

impl Recorder {
    fn new(seen: &Shared) -> Recorder {
        Recorder {
            seen: seen.clone(),
            echo: false,
            greeting: None,
        }
    }

    fn echo(mut self) -> Recorder {
        self.echo = true;
        self
    }

    /// Sends `greeting` from `on_connect`.
    fn greeting(mut self, greeting: &'static [u8]) -> Recorder {
        self.greeting = Some(greeting);
        self
    }

    fn boxed(self) -> Box<dyn Handler> {
        Box::new(self)
    }
}

impl Handler for Recorder {
    fn on_accept(
        &mut self,
        _ctx: &mut Context<'_>,
        incoming: &Incoming,
    ) -> Option<Box<dyn Handler>> {
        self.seen.borrow_mut().accepted.push((
            incoming.credentials(),
            incoming.address().clone(),
            incoming.peer_addr(),
        ));
        Some(self.clone().boxed())
    }

    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        let mut seen = self.seen.borrow_mut();
        seen.shapes.push((ctx.kind(), ctx.transport()));
        seen.connected.push(ctx.peer_credentials().ok());
        drop(seen);
        if let Some(greeting) = self.greeting {
            ctx.send(greeting).unwrap();
        }
    }

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.seen.borrow_mut().bytes.extend_from_slice(data);
        if self.echo {
            ctx.send(data).unwrap();
        }
    }

    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        self.seen
            .borrow_mut()
            .datagrams
            .push((data.to_vec(), from.clone()));
        if self.echo {
            ctx.send_to(from, &[b"reply:", data].concat()).unwrap();
        }
    }

    fn on_sent(&mut self, _ctx: &mut Context<'_>) {
        self.seen.borrow_mut().sent += 1;
    }

    fn on_error(&mut self, _ctx: &mut Context<'_>, error: &Error) {
        self.seen.borrow_mut().errors.push(error.to_string());
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().closed.push(reason);
    }
}

/// A `std` client of a Unix stream listener, non-blocking.
fn client(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("connect to the test listener");
    stream.set_nonblocking(true).unwrap();
    stream
}

/// Reads what has arrived on `stream`; returns whether it has ended.
fn pump(stream: &mut UnixStream, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("client read: {e}"),
        }
    }
}

/// Sends `message` from `client` and waits until it has come back.
fn round_trip(reactor: &mut Reactor, client: &mut UnixStream, message: &[u8]) {
    client.write_all(message).unwrap();
    let mut echoed = Vec::new();
    run_until(reactor, "the echo", |_| {
        pump(client, &mut echoed);
        echoed.len() >= message.len()
    });
    assert_eq!(echoed, message);
}

/// Receives whatever has arrived at a non-blocking `std` datagram socket.
fn pump_datagrams(
    socket: &UnixDatagram,
    into: &mut Vec<(Vec<u8>, std::os::unix::net::SocketAddr)>,
) {
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => into.push((buf[..n].to_vec(), from)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("peer receive: {e}"),
        }
    }
}

/// A non-blocking `std` datagram socket bound to a fresh path.
fn bound_datagram_peer(name: &str) -> (UnixDatagram, TempPath) {
    let path = TempPath::new(name);
    let socket = UnixDatagram::bind(&*path).expect("bind the datagram peer");
    socket.set_nonblocking(true).unwrap();
    (socket, path)
}

fn this_process() -> (i32, u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory of ours.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    (std::process::id() as i32, uid, gid)
}

fn ids(credentials: &Credentials) -> (i32, u32, u32) {
    (credentials.pid(), credentials.uid(), credentials.gid())
}

// ----- streams ---------------------------------------------------------------------------

#[test]
fn unix_stream_echo_through_a_url_path() {
    let mut reactor = Reactor::new().unwrap();
    let path = TempPath::new("echo");
    let seen = Shared::default();
    let listener = reactor
        .listen(
            path.url("unix").as_str(),
            Recorder::new(&seen).echo().boxed(),
        )
        .unwrap();
    let handle = reactor.handle(listener).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Listener));
    assert_eq!(handle.transport(), Some(Transport::Unix));
    assert!(
        is_socket_file(&path),
        "the listener binds {}",
        path.display()
    );

    let mut client = client(&path);
    round_trip(&mut reactor, &mut client, b"hello over a unix socket");
    round_trip(&mut reactor, &mut client, b"and again");

    let seen = seen.borrow();
    assert_eq!(seen.accepted.len(), 1);
    assert!(seen.accepted[0].1.is_unnamed(), "{:?}", seen.accepted[0].1);
    assert_eq!(seen.accepted[0].2, None, "a Unix peer has no IP address");
    assert_eq!(seen.shapes, [(Some(Kind::Stream), Some(Transport::Unix))]);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

#[test]
fn reactor_connects_to_a_unix_listener_by_url() {
    let mut reactor = Reactor::new().unwrap();
    let path = TempPath::new("connect");
    let server = Shared::default();
    reactor
        .listen(
            path.url("unix").as_str(),
            Recorder::new(&server).echo().boxed(),
        )
        .unwrap();

    let client = Shared::default();
    let token = reactor
        .connect(
            path.url("unix").as_str(),
            Recorder::new(&client)
                .greeting(b"ping from the reactor")
                .boxed(),
        )
        .unwrap();
    assert_eq!(
        reactor.handle(token).unwrap().transport(),
        Some(Transport::Unix)
    );
    run_until(&mut reactor, "the echo", |_| {
        client.borrow().bytes.len() >= b"ping from the reactor".len()
    });

    let client = client.borrow();
    assert_eq!(client.bytes, b"ping from the reactor");
    assert_eq!(client.shapes, [(Some(Kind::Stream), Some(Transport::Unix))]);
    assert!(client.errors.is_empty(), "{:?}", client.errors);
}

#[test]
fn credentials_equal_this_processes_pid_uid_gid() {
    let mut reactor = Reactor::new().unwrap();
    let path = TempPath::new("creds");
    let seen = Shared::default();
    reactor
        .listen(
            path.url("unix").as_str(),
            Recorder::new(&seen).echo().boxed(),
        )
        .unwrap();

    // A std client, and the reactor itself as a client (whose peer is the listener's side).
    let mut std_client = client(&path);
    let client_seen = Shared::default();
    reactor
        .connect(
            path.url("unix").as_str(),
            Recorder::new(&client_seen).boxed(),
        )
        .unwrap();
    round_trip(&mut reactor, &mut std_client, b"who am I");
    run_until(&mut reactor, "both accepts and all connects", |_| {
        seen.borrow().connected.len() == 2 && client_seen.borrow().connected.len() == 1
    });

    let me = this_process();
    let seen = seen.borrow();
    assert_eq!(seen.accepted.len(), 2);
    for (credentials, _, _) in &seen.accepted {
        let credentials = credentials.expect("Incoming::credentials on a Unix listener");
        assert_eq!(ids(&credentials), me, "in on_accept");
    }
    for credentials in seen.connected.iter().chain(&client_seen.borrow().connected) {
        let credentials = credentials.expect("Context::peer_credentials");
        assert_eq!(ids(&credentials), me, "from Context::peer_credentials");
    }
}

// ----- datagrams -------------------------------------------------------------------------

#[test]
fn unix_datagram_bound_reports_the_sender_path_and_replies_with_send_to() {
    let mut reactor = Reactor::new().unwrap();
    let path = TempPath::new("dgram-server");
    let seen = Shared::default();
    let token = reactor
        .bind(
            path.url("unix_dgram").as_str(),
            Options::new(),
            Recorder::new(&seen).echo().boxed(),
        )
        .unwrap();
    let handle = reactor.handle(token).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Datagram));
    assert_eq!(handle.transport(), Some(Transport::Unix));
    assert!(is_socket_file(&path));

    let (peer, peer_path) = bound_datagram_peer("dgram-peer");
    peer.send_to(b"first", &*path).unwrap();
    peer.send_to(b"second", &*path).unwrap();
    let mut replies = Vec::new();
    run_until(&mut reactor, "both replies", |_| {
        pump_datagrams(&peer, &mut replies);
        replies.len() >= 2
    });

    let seen = seen.borrow();
    let senders: Vec<_> = seen
        .datagrams
        .iter()
        .map(|(_, from)| from.as_path())
        .collect();
    assert_eq!(senders, [Some(&*peer_path), Some(&*peer_path)]);
    let data: Vec<_> = seen
        .datagrams
        .iter()
        .map(|(data, _)| data.as_slice())
        .collect();
    assert_eq!(data, [&b"first"[..], b"second"]);
    for ((reply, from), want) in replies.iter().zip([&b"reply:first"[..], b"reply:second"]) {
        assert_eq!(reply, want);
        assert_eq!(
            from.as_pathname(),
            Some(&*path),
            "the reply comes from the bound path"
        );
    }
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

#[test]
fn datagram_from_an_unbound_sender_has_an_unnamed_address() {
    let mut reactor = Reactor::new().unwrap();
    let path = TempPath::new("dgram-unnamed");
    let seen = Shared::default();
    reactor
        .bind(
            path.url("unix_dgram").as_str(),
            Options::new(),
            Recorder::new(&seen).boxed(),
        )
        .unwrap();

    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(b"anonymous", &*path).unwrap();
    run_until(&mut reactor, "the datagram", |_| {
        !seen.borrow().datagrams.is_empty()
    });

    let (data, from) = seen.borrow().datagrams[0].clone();
    assert_eq!(data, b"anonymous");
    assert!(
        from.is_unnamed(),
        "{from:?}: the address of an unbound sender (Linux reports it with length 0) is unnamed"
    );
    assert_eq!(from.as_path(), None);
}

#[test]
fn unbound_unix_datagram_sends_to_a_path() {
    let mut reactor = Reactor::new().unwrap();
    let (receiver, receiver_path) = bound_datagram_peer("dgram-receiver");
    let seen = Shared::default();
    let token = reactor
        .add(
            UnixDatagram::unbound().unwrap(),
            Options::new(),
            Recorder::new(&seen).boxed(),
        )
        .unwrap();
    let handle = reactor.handle(token).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Datagram));
    assert_eq!(handle.transport(), Some(Transport::Unix));

    let to = Address::unix(&*receiver_path).unwrap();
    reactor
        .handle(token)
        .unwrap()
        .send_to(&to, b"from-unbound")
        .unwrap();
    reactor
        .handle(token)
        .unwrap()
        .send_to(&to, b"twice")
        .unwrap();
    assert_eq!(
        reactor.handle(token).unwrap().buflen(),
        2,
        "two datagrams queued"
    );
    let mut got = Vec::new();
    run_until(&mut reactor, "both datagrams", |_| {
        pump_datagrams(&receiver, &mut got);
        got.len() >= 2
    });

    assert_eq!(got[0].0, b"from-unbound");
    assert_eq!(got[1].0, b"twice");
    assert!(got.iter().all(|(_, from)| from.is_unnamed()), "{got:?}");
    run_until(&mut reactor, "on_sent", |_| seen.borrow().sent > 0);
    assert_eq!(seen.borrow().sent, 1);
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
}

#[test]
fn connected_unix_datagram_send_reaches_the_bound_path() {
    let mut reactor = Reactor::new().unwrap();
    let (receiver, receiver_path) = bound_datagram_peer("dgram-connected");
    let seen = Shared::default();
    let token = reactor
        .connect(
            receiver_path.url("unix_dgram").as_str(),
            Recorder::new(&seen).boxed(),
        )
        .unwrap();
    assert_eq!(reactor.handle(token).unwrap().kind(), Some(Kind::Datagram));

    reactor.handle(token).unwrap().send(b"via send").unwrap();
    let mut got = Vec::new();
    run_until(&mut reactor, "the datagram", |_| {
        pump_datagrams(&receiver, &mut got);
        !got.is_empty()
    });
    assert_eq!(got[0].0, b"via send");
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
}

/// A receiver that does not read fills up (Linux queues `net.unix.max_dgram_qlen`, 10 by
/// default): sends would block, the rest waits in the handle's queue, and all of it goes
/// out in order once the receiver reads.
#[test]
fn datagrams_to_a_receiver_that_is_full_wait_in_the_queue_then_all_arrive_in_order() {
    const COUNT: u32 = 500;
    let mut reactor = Reactor::new().unwrap();
    let (receiver, receiver_path) = bound_datagram_peer("dgram-full");
    let seen = Shared::default();
    let token = reactor
        .add(
            UnixDatagram::unbound().unwrap(),
            Options::new(),
            Recorder::new(&seen).boxed(),
        )
        .unwrap();
    let to = Address::unix(&*receiver_path).unwrap();
    for i in 0..COUNT {
        reactor
            .handle(token)
            .unwrap()
            .send_to(&to, &i.to_be_bytes())
            .unwrap();
    }
    assert_eq!(reactor.handle(token).unwrap().buflen(), COUNT as usize);

    reactor.run_once(Some(std::time::Duration::ZERO)).unwrap();
    let left = reactor.handle(token).unwrap().buflen();
    assert!(
        0 < left && left < COUNT as usize,
        "{left} of {COUNT} datagrams still queued after the first flush"
    );
    assert_eq!(seen.borrow().sent, 0, "no on_sent while datagrams wait");

    let mut got = Vec::new();
    run_until(&mut reactor, "every datagram", |_| {
        pump_datagrams(&receiver, &mut got);
        got.len() >= COUNT as usize
    });
    let numbers: Vec<u32> = got
        .iter()
        .map(|(data, _)| u32::from_be_bytes(data[..].try_into().unwrap()))
        .collect();
    assert_eq!(numbers, (0..COUNT).collect::<Vec<_>>());
    run_until(&mut reactor, "on_sent", |_| seen.borrow().sent > 0);
    assert_eq!(seen.borrow().sent, 1);
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
}

// ----- socket files ----------------------------------------------------------------------

#[test]
fn socket_file_is_removed_when_the_listener_closes() {
    let mut reactor = Reactor::new().unwrap();
    let stream_path = TempPath::new("removed-stream");
    let dgram_path = TempPath::new("removed-dgram");
    let seen = Shared::default();
    let listener = reactor
        .listen(
            stream_path.url("unix").as_str(),
            Recorder::new(&seen).boxed(),
        )
        .unwrap();
    let bound = reactor
        .bind(
            dgram_path.url("unix_dgram").as_str(),
            Options::new(),
            Recorder::new(&seen).boxed(),
        )
        .unwrap();
    assert!(is_socket_file(&stream_path));
    assert!(is_socket_file(&dgram_path));

    reactor.handle(listener).unwrap().close();
    reactor.handle(bound).unwrap().close();
    run_until(&mut reactor, "both closes", |_| {
        seen.borrow().closed.len() == 2
    });

    assert_eq!(
        seen.borrow().closed,
        [CloseReason::Closed, CloseReason::Closed]
    );
    assert!(
        !stream_path.exists(),
        "{} is left behind",
        stream_path.display()
    );
    assert!(
        !dgram_path.exists(),
        "{} is left behind",
        dgram_path.display()
    );
    assert!(reactor.is_empty());
}

#[test]
fn stale_socket_file_is_replaced_on_listen() {
    let mut reactor = Reactor::new().unwrap();
    let path = TempPath::new("stale");
    drop(UnixListener::bind(&*path).unwrap());
    assert!(
        is_socket_file(&path),
        "a dropped std listener leaves its file"
    );

    let seen = Shared::default();
    let listener = reactor
        .listen(
            path.url("unix").as_str(),
            Recorder::new(&seen).echo().boxed(),
        )
        .expect("listen replaces a stale socket file");
    let mut client = client(&path);
    round_trip(&mut reactor, &mut client, b"served by the new listener");

    reactor.handle(listener).unwrap().kill();
    run_until(&mut reactor, "the listener's close", |_| {
        seen.borrow().closed.contains(&CloseReason::Killed)
    });
    assert!(!path.exists());
}

#[test]
fn listen_leaves_a_live_socket_and_a_regular_file_alone() {
    let mut reactor = Reactor::new().unwrap();

    // Someone is listening there: not stale, so not ours to replace.
    let live_path = TempPath::new("live");
    let live = UnixListener::bind(&*live_path).unwrap();
    let error = reactor
        .listen(
            live_path.url("unix").as_str(),
            Recorder::new(&Shared::default()).boxed(),
        )
        .expect_err("listening on a live socket's path");
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
    let mut client = UnixStream::connect(&*live_path).expect("the live listener still listens");
    client.write_all(b"x").unwrap();
    drop(client);
    // The staleness check connected once too (and hung up): skip that connection.
    let mut received = Vec::new();
    for _ in 0..2 {
        let (mut accepted, _) = live.accept().unwrap();
        accepted.read_to_end(&mut received).unwrap();
        if !received.is_empty() {
            break;
        }
    }
    assert_eq!(received, b"x", "the live listener serves its own clients");

    // Not a socket at all.
    let file_path = TempPath::new("regular");
    std::fs::write(&*file_path, b"keep me").unwrap();
    let error = reactor
        .bind(
            file_path.url("unix_dgram").as_str(),
            Options::new(),
            Recorder::new(&Shared::default()).boxed(),
        )
        .expect_err("binding over a regular file");
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
    assert_eq!(std::fs::read(&*file_path).unwrap(), b"keep me");
    assert!(reactor.is_empty());
}

// ----- endpoint strings ------------------------------------------------------------------

#[test]
fn bad_urls_name_the_part_at_fault() {
    let mut reactor = Reactor::new().unwrap();
    type Case = (&'static str, &'static str, fn(&UrlError) -> bool);
    let cases: [Case; 5] = [
        ("sctp://x:1", "scheme", |e| matches!(e, UrlError::Scheme(_))),
        ("tcp://127.0.0.1", "port", |e| {
            matches!(e, UrlError::Port(_))
        }),
        ("tcp://127.0.0.1:99999", "port", |e| {
            matches!(e, UrlError::Port(_))
        }),
        ("unix://", "path", |e| matches!(e, UrlError::Path(_))),
        ("udp://:53", "host", |e| matches!(e, UrlError::Host(_))),
    ];
    for (url, part, is_part) in cases {
        let seen = Shared::default();
        let attempts = [
            ("listen", reactor.listen(url, Recorder::new(&seen).boxed())),
            (
                "connect",
                reactor.connect(url, Recorder::new(&seen).boxed()),
            ),
            (
                "bind",
                reactor.bind(url, Options::new(), Recorder::new(&seen).boxed()),
            ),
        ];
        for (operation, result) in attempts {
            let error = result.expect_err(url);
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidInput,
                "{operation} {url}: {error}"
            );
            let message = error.to_string();
            assert!(
                message.contains(part),
                "{operation} {url}: {message:?} should name the {part}"
            );
            assert!(
                message.contains(url),
                "{operation} {url}: {message:?} should quote the URL"
            );
            let inner = error.get_ref().and_then(|e| e.downcast_ref::<UrlError>());
            assert!(inner.is_some_and(is_part), "{operation} {url}: {inner:?}");
        }
        assert!(seen.borrow().closed.is_empty());
    }
    assert!(reactor.is_empty(), "no handle is left behind by a bad URL");
}
