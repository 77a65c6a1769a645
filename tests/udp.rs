//! UDP handles: bound (`bind`/`listen`) and connected (`connect`) sockets. One datagram is
//! one `on_datagram` with its sender (an empty one is an empty read); `send_to` reaches the
//! address given and `send` the connected peer; datagrams sent in one turn are queued whole,
//! counted by `buflen`, leave in order and end with one `on_sent`. Errors that belong to a
//! single datagram (ECONNREFUSED on a connected socket, reports from the error queue with
//! the Errors option, truncation) reach `on_error` and leave the handle open.
//!
//! Peers are plain `std` sockets: non-blocking ones pumped from `run_until` closures on the
//! test thread, or a blocking one in a thread for the bulk test.

mod util;

use util::udp_peer;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use eventmux::{
    Address, CloseReason, Context, Error, Handler, IntoHandler, Kind, Options, Reactor, Token,
    Transport, Undeliverable,
};
use util::{run_until, DEADLINE};

// ----- helpers ---------------------------------------------------------------------------

/// An error as the test body keeps it (`Error` itself is not `Clone`).
#[derive(Clone, Debug)]
enum Reported {
    Os(Option<i32>, io::ErrorKind),
    Undeliverable(Box<Undeliverable>),
    Truncated {
        size: usize,
        delivered: usize,
    },
    #[allow(dead_code)] // read through `Debug`, in failure messages
    Other(String),
}

impl Reported {
    fn of(error: &Error) -> Reported {
        match error {
            Error::Io(e) => Reported::Os(e.raw_os_error(), e.kind()),
            Error::Undeliverable(u) => Reported::Undeliverable(u.clone()),
            Error::Truncated { size, delivered } => Reported::Truncated {
                size: *size,
                delivered: *delivered,
            },
            other => Reported::Other(other.to_string()),
        }
    }

    fn errno(&self) -> Option<i32> {
        match self {
            Reported::Os(errno, _) => *errno,
            Reported::Undeliverable(u) => Some(u.errno()),
            _ => None,
        }
    }
}

/// What a datagram handler saw, shared with the test body.
#[derive(Default)]
struct Seen {
    datagrams: Vec<(Vec<u8>, Address)>,
    errors: Vec<Reported>,
    /// `buflen` at each `on_sent`.
    sent: Vec<usize>,
    closed: Option<CloseReason>,
}

type Shared = Rc<RefCell<Seen>>;
type DatagramHook = Box<dyn FnMut(&mut Context<'_>, &[u8], &Address)>;

/// Records every callback into a [`Seen`] and runs an optional hook on each datagram.
struct Recorder {
    seen: Shared,
    hook: Option<DatagramHook>,
}

impl Recorder {
    fn new(seen: &Shared) -> Recorder {
        Recorder {
            seen: seen.clone(),
            hook: None,
        }
    }

    fn on_datagram(
        seen: &Shared,
        hook: impl FnMut(&mut Context<'_>, &[u8], &Address) + 'static,
    ) -> Recorder {
        Recorder {
            seen: seen.clone(),
            hook: Some(Box::new(hook)),
        }
    }
}

impl Handler for Recorder {
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        self.seen
            .borrow_mut()
            .datagrams
            .push((data.to_vec(), from.clone()));
        if let Some(hook) = &mut self.hook {
            hook(ctx, data, from);
        }
    }

    fn on_sent(&mut self, ctx: &mut Context<'_>) {
        self.seen.borrow_mut().sent.push(ctx.buflen());
    }

    fn on_error(&mut self, _ctx: &mut Context<'_>, error: &Error) {
        self.seen.borrow_mut().errors.push(Reported::of(error));
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().closed = Some(reason);
    }
}

/// Binds a UDP handle on 127.0.0.1:0 and returns its token and the address it got.
fn bind_local(
    reactor: &mut Reactor,
    options: Options,
    handler: impl IntoHandler,
) -> (Token, SocketAddr) {
    let token = reactor
        .bind("udp://127.0.0.1:0", options, handler)
        .expect("bind a UDP handle on loopback");
    let addr = reactor.handle(token).unwrap().local_addr().unwrap();
    (token, addr)
}

/// Receives whatever has arrived at `socket`.
fn pump(socket: &UdpSocket, into: &mut Vec<(Vec<u8>, SocketAddr)>) {
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

/// Runs until `socket` has received `count` datagrams in all; returns them.
fn receive(reactor: &mut Reactor, socket: &UdpSocket, count: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    run_until(reactor, &format!("{count} datagram(s) at the peer"), |_| {
        pump(socket, &mut got);
        got.len() >= count
    });
    got
}

/// A loopback UDP address nobody is bound to: bound, read back, released.
fn closed_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("find a free UDP port")
}

/// Runs turns for `window`, each waiting up to 50 ms; returns how many turns ran. An idle
/// reactor blocks in its wait, so this stays small (a handful); a loop that spins on a
/// readiness it never clears runs thousands.
fn idle_turns(reactor: &mut Reactor, window: Duration) -> usize {
    let start = Instant::now();
    let mut turns = 0;
    while start.elapsed() < window {
        reactor.run_once(Some(Duration::from_millis(50))).unwrap();
        turns += 1;
    }
    turns
}

// ----- receiving -------------------------------------------------------------------------

#[test]
fn one_datagram_arrives_with_its_sender_address() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (token, addr) = bind_local(&mut reactor, Options::new(), Recorder::new(&seen));
    let handle = reactor.handle(token).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Datagram));
    assert_eq!(handle.transport(), Some(Transport::Udp));

    let peer = udp_peer();
    peer.send_to(b"hello, datagram", addr).unwrap();
    run_until(&mut reactor, "the datagram", |_| {
        !seen.borrow().datagrams.is_empty()
    });

    let seen = seen.borrow();
    assert_eq!(seen.datagrams.len(), 1);
    let (data, from) = &seen.datagrams[0];
    assert_eq!(data, b"hello, datagram");
    assert_eq!(from.as_inet(), Some(peer.local_addr().unwrap()));
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

/// Implements only `on_read`: the default `on_datagram` passes each datagram on.
struct Reads(Rc<RefCell<Vec<Vec<u8>>>>);

impl Handler for Reads {
    fn on_read(&mut self, _ctx: &mut Context<'_>, data: &[u8]) {
        self.0.borrow_mut().push(data.to_vec());
    }
}

#[test]
fn empty_datagram_is_an_empty_read() {
    let mut reactor = Reactor::new().unwrap();
    let reads = Rc::new(RefCell::new(Vec::new()));
    let (token, addr) = bind_local(&mut reactor, Options::new(), Reads(reads.clone()));

    let peer = udp_peer();
    peer.send_to(b"", addr).unwrap();
    peer.send_to(b"after", addr).unwrap();
    run_until(&mut reactor, "both datagrams", |_| {
        reads.borrow().len() >= 2
    });

    assert_eq!(*reads.borrow(), [b"".to_vec(), b"after".to_vec()]);
    assert!(
        reactor.handle(token).is_some(),
        "an empty datagram is not an end of stream"
    );
}

#[test]
fn truncated_datagram_is_reported() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (token, addr) = bind_local(
        &mut reactor,
        Options::new().read_size(16),
        Recorder::new(&seen),
    );

    let big: Vec<u8> = (0..100u8).collect();
    let peer = udp_peer();
    peer.send_to(&big, addr).unwrap();
    run_until(&mut reactor, "the datagram and its truncation", |_| {
        let seen = seen.borrow();
        !seen.datagrams.is_empty() && !seen.errors.is_empty()
    });
    {
        let seen = seen.borrow();
        assert_eq!(seen.datagrams[0].0, &big[..16]);
        assert!(
            matches!(
                seen.errors[..],
                [Reported::Truncated {
                    size: 100,
                    delivered: 16
                }]
            ),
            "{:?}",
            seen.errors
        );
    }

    // The handle stays open, and a datagram that fits arrives whole and unreported.
    assert!(reactor.handle(token).is_some());
    peer.send_to(b"fits", addr).unwrap();
    run_until(&mut reactor, "the second datagram", |_| {
        seen.borrow().datagrams.len() >= 2
    });
    let seen = seen.borrow();
    assert_eq!(seen.datagrams[1].0, b"fits");
    assert_eq!(seen.errors.len(), 1, "{:?}", seen.errors);
    assert_eq!(seen.closed, None);
}

/// A burst is taken in one `recvmmsg`; a handler that pauses part-way through it gets the
/// rest, in order, once it resumes, and nothing while paused.
#[test]
fn pausing_mid_batch_holds_the_rest_of_the_batch_until_resume() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let count = Rc::new(Cell::new(0));
    let counted = count.clone();
    let handler = Recorder::on_datagram(&seen, move |ctx, _data, _from| {
        counted.set(counted.get() + 1);
        if counted.get() == 3 {
            ctx.pause_reading().unwrap();
        }
    });
    let (token, addr) = bind_local(&mut reactor, Options::new(), handler);
    let peer = udp_peer();
    // All ten wait in the socket before the first turn: one batch.
    for i in 0..10u8 {
        peer.send_to(&[i], addr).unwrap();
    }
    run_until(&mut reactor, "three datagrams", |_| count.get() >= 3);
    for _ in 0..3 {
        reactor.run_once(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(count.get(), 3, "datagrams delivered while paused");

    reactor.handle(token).unwrap().resume_reading().unwrap();
    peer.send_to(&[10], addr).unwrap();
    run_until(&mut reactor, "the rest and one more", |_| count.get() >= 11);
    let got: Vec<u8> = seen.borrow().datagrams.iter().map(|(d, _)| d[0]).collect();
    assert_eq!(got, (0..11).collect::<Vec<u8>>());
    let from = peer.local_addr().unwrap();
    assert!(seen
        .borrow()
        .datagrams
        .iter()
        .all(|(_, sender)| sender.as_inet() == Some(from)));
}

/// A handler that closes its handle part-way through a batch hears of no datagram after.
#[test]
fn closing_mid_batch_delivers_nothing_after_the_close() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let handler = Recorder::on_datagram(&seen, |ctx, data, _from| {
        if data == [1] {
            ctx.close();
        }
    });
    let (_, addr) = bind_local(&mut reactor, Options::new(), handler);
    let peer = udp_peer();
    for i in 0..10u8 {
        peer.send_to(&[i], addr).unwrap();
    }
    run_until(&mut reactor, "the close", |_| {
        seen.borrow().closed.is_some()
    });
    let got: Vec<u8> = seen.borrow().datagrams.iter().map(|(d, _)| d[0]).collect();
    assert_eq!(got, [0, 1]);
}

// ----- sending ---------------------------------------------------------------------------

#[test]
fn send_to_reaches_the_given_address_and_send_reaches_the_connected_peer() {
    let mut reactor = Reactor::new().unwrap();
    let peer = udp_peer();
    let peer_addr = peer.local_addr().unwrap();

    // An unconnected handle: send_to names the destination.
    let bound_seen = Shared::default();
    let (bound, bound_addr) = bind_local(&mut reactor, Options::new(), Recorder::new(&bound_seen));
    reactor
        .handle(bound)
        .unwrap()
        .send_to(&Address::from(peer_addr), b"to the given address")
        .unwrap();
    let got = receive(&mut reactor, &peer, 1);
    assert_eq!(got, [(b"to the given address".to_vec(), bound_addr)]);

    // A connected handle: send goes to the peer it was connected to.
    let connected_seen = Shared::default();
    let connected = reactor
        .connect(format!("udp://{peer_addr}"), Recorder::new(&connected_seen))
        .unwrap();
    let handle = reactor.handle(connected).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Datagram));
    assert_eq!(handle.transport(), Some(Transport::Udp));
    assert_eq!(handle.peer_addr().unwrap(), peer_addr);
    let connected_addr = handle.local_addr().unwrap();
    reactor
        .handle(connected)
        .unwrap()
        .send(b"to the connected peer")
        .unwrap();
    let got = receive(&mut reactor, &peer, 1);
    assert_eq!(got, [(b"to the connected peer".to_vec(), connected_addr)]);

    // What the peer sends back arrives with the peer's address.
    peer.send_to(b"reply", connected_addr).unwrap();
    run_until(&mut reactor, "the reply", |_| {
        !connected_seen.borrow().datagrams.is_empty()
    });
    let (data, from) = connected_seen.borrow().datagrams[0].clone();
    assert_eq!(data, b"reply");
    assert_eq!(from.as_inet(), Some(peer_addr));

    for seen in [&bound_seen, &connected_seen] {
        let seen = seen.borrow();
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        assert_eq!(seen.sent, [0], "one on_sent, with the queue empty");
    }
}

#[test]
fn send_without_a_destination_on_an_unconnected_socket_is_reported_and_the_handle_stays_open() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (token, addr) = bind_local(&mut reactor, Options::new(), Recorder::new(&seen));

    reactor.handle(token).unwrap().send(b"to nobody").unwrap();
    run_until(&mut reactor, "the error", |_| {
        !seen.borrow().errors.is_empty()
    });
    assert_eq!(
        seen.borrow().errors[0].errno(),
        Some(libc::EDESTADDRREQ),
        "{:?}",
        seen.borrow().errors
    );
    assert_eq!(
        reactor.handle(token).unwrap().buflen(),
        0,
        "the datagram was dropped"
    );

    let peer = udp_peer();
    reactor
        .handle(token)
        .unwrap()
        .send_to(&Address::from(peer.local_addr().unwrap()), b"still works")
        .unwrap();
    assert_eq!(
        receive(&mut reactor, &peer, 1),
        [(b"still works".to_vec(), addr)]
    );
    assert_eq!(seen.borrow().errors.len(), 1);
    assert_eq!(seen.borrow().closed, None);
}

#[test]
fn many_datagrams_queued_in_one_turn_all_arrive_in_order_and_on_sent_fires() {
    const COUNT: u32 = 500;
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let buflen_after_sends = Rc::new(Cell::new(None));
    let recorded = buflen_after_sends.clone();
    let handler = Recorder::on_datagram(&seen, move |ctx, _data, from| {
        // All in one callback: nothing is written before the end of the turn.
        for i in 0..COUNT {
            ctx.send_to(from, &i.to_be_bytes()).unwrap();
        }
        recorded.set(Some(ctx.buflen()));
    });
    let (_, addr) = bind_local(&mut reactor, Options::new(), handler);

    // The reader must hold a burst of 500 datagrams: ask for a receive buffer well above the
    // default (the kernel caps it at twice net.core.rmem_max), and read concurrently.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(8 << 20).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let reader = UdpSocket::from(socket);
    let reader = thread::spawn(move || {
        reader.set_read_timeout(Some(DEADLINE / 2)).unwrap();
        reader.send_to(b"go", addr).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < COUNT as usize {
            let (n, from) = reader
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {} of {COUNT}: {e}", got.len()));
            assert_eq!(from, addr, "a datagram from elsewhere");
            assert_eq!(n, 4, "datagram {} has the wrong size", got.len());
            got.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
        }
        got
    });
    run_until(&mut reactor, "the reader thread", |_| reader.is_finished());
    let got = reader.join().expect("reader thread");

    assert_eq!(
        got,
        (0..COUNT).collect::<Vec<_>>(),
        "all datagrams, in order"
    );
    assert_eq!(
        buflen_after_sends.get(),
        Some(COUNT as usize),
        "buflen counts queued datagrams"
    );
    run_until(&mut reactor, "on_sent", |_| !seen.borrow().sent.is_empty());
    let seen = seen.borrow();
    assert_eq!(seen.sent, [0], "one on_sent, once the queue is empty");
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

/// A peer socket with an 8 MiB receive buffer (capped by the kernel) that reads in a thread
/// of its own, so that a burst of hundreds of datagrams is not dropped before it is read.
fn reading_peer(expected: usize) -> (SocketAddr, thread::JoinHandle<Vec<Vec<u8>>>) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(8 << 20).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let socket = UdpSocket::from(socket);
    let addr = socket.local_addr().unwrap();
    let reader = thread::spawn(move || {
        socket.set_read_timeout(Some(DEADLINE / 2)).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < expected {
            let (n, _) = socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {} of {expected}: {e}", got.len()));
            got.push(buf[..n].to_vec());
        }
        got
    });
    (addr, reader)
}

/// Datagram `i` of a script: `len` bytes that tell it apart from every other.
fn scripted(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

/// On UDP sockets, runs of equal-sized datagrams to one destination leave as segmented
/// messages (`UDP_SEGMENT`). Whatever the grouping (runs longer than a message takes, a
/// shorter datagram ending a run, a longer one starting the next, empty datagrams, sizes
/// above the segmentation limit, destinations alternating), each peer gets exactly the
/// datagrams sent to it, each whole, in order.
#[test]
fn runs_of_datagrams_to_one_peer_arrive_as_the_datagrams_sent() {
    let sizes: Vec<usize> = [
        vec![100; 70],       // more than one segmented message holds
        vec![30],            // shorter: the last of the run
        vec![100, 100, 100], // a new run
        vec![0, 0],          // empty datagrams are never joined
        vec![1400; 3],       // the largest size that is segmented
        vec![1401; 2],       // above it: one per message
        vec![5000],          // a large one alone
        vec![8; 200],        // beyond one sendmmsg's datagrams
    ]
    .concat();
    let alternating = 40;
    let to_a = sizes.len() + alternating / 2;
    let to_b = alternating / 2 + 1;
    let (a, reader_a) = reading_peer(to_a);
    let (b, reader_b) = reading_peer(to_b);

    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let script = sizes.clone();
    let handler = Recorder::on_datagram(&seen, move |ctx, _data, _from| {
        let (a, b) = (Address::from(a), Address::from(b));
        for (i, &len) in script.iter().enumerate() {
            ctx.send_to(&a, &scripted(i, len)).unwrap();
        }
        for i in 0..alternating {
            let to = if i % 2 == 0 { &a } else { &b };
            ctx.send_to(to, &scripted(1000 + i, 64)).unwrap();
        }
        ctx.send_to(&b, &scripted(2000, 64)).unwrap();
    });
    let (_, addr) = bind_local(&mut reactor, Options::new(), handler);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"go", addr)
        .unwrap();
    run_until(&mut reactor, "both readers", |_| {
        reader_a.is_finished() && reader_b.is_finished()
    });

    let mut want_a: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| scripted(i, len))
        .collect();
    let mut want_b = Vec::new();
    for i in 0..alternating {
        let datagram = scripted(1000 + i, 64);
        if i % 2 == 0 {
            want_a.push(datagram);
        } else {
            want_b.push(datagram);
        }
    }
    want_b.push(scripted(2000, 64));
    let got_a = reader_a.join().expect("reader a");
    let got_b = reader_b.join().expect("reader b");
    assert_eq!(got_a.len(), want_a.len());
    for (i, (got, want)) in got_a.iter().zip(&want_a).enumerate() {
        assert_eq!(got, want, "datagram {i} to peer a");
    }
    assert_eq!(got_b, want_b, "the datagrams to peer b");
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
}

/// A socket that cannot send segmented messages (here: `SO_NO_CHECK`, which the kernel
/// refuses segmentation on with `EINVAL`) still sends every datagram: the handle falls back
/// to one datagram per message and reports nothing.
#[test]
fn a_refused_segmented_send_falls_back_without_losing_a_datagram() {
    const COUNT: usize = 50;
    let (peer, reader) = reading_peer(COUNT);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let on: libc::c_int = 1;
    // SAFETY: SO_NO_CHECK reads one c_int from a pointer valid for its size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_NO_CHECK: {}", io::Error::last_os_error());
    let addr = socket.local_addr().unwrap().as_socket().unwrap();

    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let handler = Recorder::on_datagram(&seen, move |ctx, _data, _from| {
        let peer = Address::from(peer);
        for i in 0..COUNT {
            ctx.send_to(&peer, &scripted(i, 64)).unwrap();
        }
    });
    reactor.add(socket, Options::new(), handler).unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"go", addr)
        .unwrap();
    run_until(&mut reactor, "the reader", |_| reader.is_finished());
    let got = reader.join().expect("reader");
    let want: Vec<Vec<u8>> = (0..COUNT).map(|i| scripted(i, 64)).collect();
    assert_eq!(got, want);
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
}

// ----- errors ----------------------------------------------------------------------------

#[test]
fn connected_send_to_a_closed_port_reports_econnrefused_without_closing() {
    let mut reactor = Reactor::new().unwrap();
    let closed = closed_port();
    let seen = Shared::default();
    let token = reactor
        .connect(format!("udp://{closed}"), Recorder::new(&seen))
        .unwrap();
    let refused = |seen: &Shared| {
        seen.borrow()
            .errors
            .iter()
            .filter(|e| e.errno() == Some(libc::ECONNREFUSED))
            .count()
    };

    reactor.handle(token).unwrap().send(b"one").unwrap();
    run_until(&mut reactor, "ECONNREFUSED for the first datagram", |_| {
        refused(&seen) >= 1
    });
    assert!(reactor.handle(token).is_some(), "the handle stays open");

    // Still usable: a second datagram is sent and refused again.
    reactor.handle(token).unwrap().send(b"two").unwrap();
    run_until(&mut reactor, "ECONNREFUSED for the second datagram", |_| {
        refused(&seen) >= 2
    });
    {
        let seen = seen.borrow();
        assert!(
            seen.errors.iter().all(|e| matches!(
                e,
                Reported::Os(Some(libc::ECONNREFUSED), io::ErrorKind::ConnectionRefused)
            )),
            "{:?}",
            seen.errors
        );
        assert_eq!(seen.closed, None);
    }
    assert!(reactor.tokens().any(|t| t == token));
    assert_eq!(reactor.handle(token).unwrap().buflen(), 0);

    // Other handles are unaffected: a new connected handle reaches a live peer.
    let peer = udp_peer();
    let live = reactor
        .connect(
            format!("udp://{}", peer.local_addr().unwrap()),
            Recorder::new(&Shared::default()),
        )
        .unwrap();
    let live_addr = reactor.handle(live).unwrap().local_addr().unwrap();
    reactor.handle(live).unwrap().send(b"alive").unwrap();
    assert_eq!(
        receive(&mut reactor, &peer, 1),
        [(b"alive".to_vec(), live_addr)]
    );
    assert!(reactor.tokens().any(|t| t == token));
}

#[test]
fn error_queue_reports_errno_111_and_the_payload_for_a_send_to_a_closed_port() {
    let mut reactor = Reactor::new().unwrap();
    let closed = closed_port();
    let seen = Shared::default();
    let (token, addr) = bind_local(
        &mut reactor,
        Options::new().errors(true),
        Recorder::new(&seen),
    );

    reactor
        .handle(token)
        .unwrap()
        .send_to(&Address::from(closed), b"probe-123")
        .unwrap();
    run_until(&mut reactor, "the error report", |_| {
        !seen.borrow().errors.is_empty()
    });

    let report = match &seen.borrow().errors[..] {
        [Reported::Undeliverable(u)] => (**u).clone(),
        other => panic!("want one Undeliverable, got {other:?}"),
    };
    assert_eq!(report.errno(), libc::ECONNREFUSED);
    assert_eq!(report.errno(), 111);
    assert_eq!(report.payload(), b"probe-123");
    assert_eq!(report.to().and_then(Address::as_inet), Some(closed));
    assert_eq!(
        report.from().and_then(Address::as_inet).map(|a| a.ip()),
        Some(closed.ip()),
        "the ICMP message came from loopback"
    );
    assert_eq!(
        report.message(),
        "Connection refused",
        "strerror's text, as the doc says"
    );
    let error = io::Error::from(Error::Undeliverable(Box::new(report.clone())));
    assert_eq!(error.raw_os_error(), Some(111));
    let text = Error::Undeliverable(Box::new(report)).to_string();
    assert!(text.contains(&closed.to_string()), "{text}");

    // Drained: the report is not delivered again and the loop waits instead of spinning.
    let turns = idle_turns(&mut reactor, Duration::from_millis(300));
    assert_eq!(seen.borrow().errors.len(), 1, "{:?}", seen.borrow().errors);
    assert!(
        turns < 100,
        "{turns} turns in 300 ms: the loop spins on the error"
    );
    assert!(reactor.handle(token).is_some(), "the handle stays open");

    // And the handle still works.
    let peer = udp_peer();
    reactor
        .handle(token)
        .unwrap()
        .send_to(&Address::from(peer.local_addr().unwrap()), b"after")
        .unwrap();
    assert_eq!(receive(&mut reactor, &peer, 1), [(b"after".to_vec(), addr)]);
    assert_eq!(seen.borrow().errors.len(), 1);
}

// ----- IPv6 ------------------------------------------------------------------------------

#[test]
fn ipv6_udp_round_trip() {
    let peer = match UdpSocket::bind("[::1]:0") {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("skipped: [::1] is unavailable here ({e})");
            return;
        }
    };
    peer.set_nonblocking(true).unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let echo = Recorder::on_datagram(&seen, |ctx, data, from| {
        ctx.send_to(from, data).unwrap();
    });
    let token = reactor
        .listen_with("udp://[::1]:0", Options::new(), echo)
        .unwrap();
    let addr = reactor.handle(token).unwrap().local_addr().unwrap();
    assert!(addr.is_ipv6(), "{addr}");
    assert_eq!(
        reactor.handle(token).unwrap().transport(),
        Some(Transport::Udp)
    );

    peer.send_to(b"over IPv6", addr).unwrap();
    assert_eq!(
        receive(&mut reactor, &peer, 1),
        [(b"over IPv6".to_vec(), addr)]
    );
    assert_eq!(seen.borrow().datagrams[0].1.as_inet(), Some(peer_addr));
}
