//! IO::EventMux's documented behaviour, which programs ported from it rely on: `sent` after
//! a graceful close's drain, trailing bytes handed to `read` by default, `mux` telling a
//! timeout, the new connection's handle named in `accepted`, a handle's descriptor, and
//! tokens that cannot cross from one reactor to another. `.ci/run` runs them on every
//! backend.

mod util;

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use eventmux::framing::Framing;
use eventmux::{Context, Handler, Options, Reactor, Token};
use util::peer::Peer;
use util::probe::{serve, Probe};
use util::{run_until, run_until_closed, Log};

#[test]
fn a_graceful_close_reports_its_drain_with_on_sent_before_closing() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l)
            .on_read(|ctx, _| {
                ctx.send(b"bye").unwrap();
                ctx.close();
            })
            .boxed()
    });
    let mut client = Peer::connect(addr);
    client.send(b"x");
    run_until(&mut reactor, "the close", |_| {
        client.pump();
        log.count_prefix("srv:close:") > 0
    });
    assert_eq!(client.received, b"bye");
    let events: Vec<String> = log
        .entries()
        .into_iter()
        .filter(|e| e.starts_with("srv:") && e != "srv:read")
        .collect();
    assert_eq!(
        events,
        [
            "srv:connect",
            "srv:sent:0",
            "srv:closing:0",
            "srv:close:Closed"
        ],
        "EventMux's sent comes for the close's drain too"
    );
}

/// Lines, kept; it does not override `on_read_last`.
struct Lines(Rc<RefCell<Vec<Vec<u8>>>>);

impl Handler for Lines {
    fn on_read(&mut self, _ctx: &mut Context<'_>, data: &[u8]) {
        self.0.borrow_mut().push(data.to_vec());
    }
}

#[test]
fn by_default_the_bytes_left_at_end_of_stream_reach_on_read() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let records = Rc::new(RefCell::new(Vec::new()));
    let seen = records.clone();
    let addr = serve(
        &mut reactor,
        Options::new().framing(Framing::lines()),
        &log,
        move |_, _| Some(Box::new(Lines(seen.clone()))),
    );
    let mut client = Peer::connect(addr);
    client.send(b"one\ntwo");
    client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    run_until(&mut reactor, "both records", |_| {
        client.pump();
        records.borrow().len() >= 2
    });
    assert_eq!(*records.borrow(), [b"one".to_vec(), b"two".to_vec()]);
}

#[test]
fn run_once_says_whether_anything_happened() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l).boxed()
    });
    let idle = reactor.run_once(Some(Duration::from_millis(10))).unwrap();
    assert!(!idle, "nothing happened: EventMux's timeout event");

    let _client = Peer::connect(addr);
    let mut happened = false;
    run_until(&mut reactor, "the accept", |reactor| {
        happened |= reactor.run_once(Some(Duration::from_millis(20))).unwrap();
        log.contains("srv:connect")
    });
    assert!(happened, "the accept was something");

    let token = reactor.add_handler(Probe::new("timer", &log));
    reactor
        .handle(token)
        .unwrap()
        .set_timer(Duration::from_millis(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert!(
        reactor.run_once(Some(Duration::ZERO)).unwrap(),
        "a timer fired"
    );
    assert!(log.contains("timer:timer"));
    assert!(
        !reactor.run_once(Some(Duration::ZERO)).unwrap(),
        "and then nothing again"
    );
}

#[test]
fn on_accept_names_the_new_connection_which_can_be_greeted_there() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let named = Rc::new(RefCell::new(Vec::<Token>::new()));
    let (l, n) = (log.clone(), named.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |ctx, incoming| {
        n.borrow_mut().push(incoming.token());
        ctx.handle(incoming.token())
            .expect("the new connection exists during on_accept")
            .send(b"hello\n")
            .unwrap();
        let (l2, n2) = (l.clone(), n.clone());
        Probe::new("srv", &l)
            .on_connect(move |ctx| {
                let same = n2.borrow().last() == Some(&ctx.token());
                l2.push(format!("srv:same-token:{same}"));
            })
            .boxed()
    });
    let mut client = Peer::connect(addr);
    run_until(&mut reactor, "the greeting", |_| {
        client.pump();
        client.received == b"hello\n"
    });
    assert!(log.contains("srv:same-token:true"), "{:?}", log.entries());
}

#[test]
fn a_connection_refused_in_on_accept_leaves_its_token_stale() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let named = Rc::new(RefCell::new(None));
    let n = named.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, incoming| {
        *n.borrow_mut() = Some(incoming.token());
        None
    });
    let mut client = Peer::connect(addr);
    run_until(&mut reactor, "the refusal", |_| client.pump());
    let token = named.borrow().expect("on_accept ran");
    assert!(reactor.handle(token).is_none());
    assert_eq!(reactor.len(), 1, "only the listener is left");
}

/// Records its descriptor number as `AsRawFd` gives it, in `on_connect`.
struct FdProbe(Rc<RefCell<Vec<i32>>>);

impl Handler for FdProbe {
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        self.0.borrow_mut().push(ctx.as_raw_fd());
        let same = ctx.fd().map(|fd| fd.as_raw_fd());
        self.0.borrow_mut().push(same.unwrap_or(-2));
    }
}

#[test]
fn a_handle_s_descriptor_is_reachable() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let fds = Rc::new(RefCell::new(Vec::new()));
    let f = fds.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Some(Box::new(FdProbe(f.clone())))
    });
    let _client = std::net::TcpStream::connect(addr).unwrap();
    run_until(&mut reactor, "on_connect", |_| fds.borrow().len() == 2);
    let fds = fds.borrow();
    assert!(fds[0] >= 0 && fds[0] == fds[1], "{fds:?}");

    let virtual_handle = reactor.add_handler(Probe::new("v", &log));
    let handle = reactor.handle(virtual_handle).unwrap();
    assert_eq!(handle.as_raw_fd(), -1, "a virtual handle has no descriptor");
    assert!(handle.fd().is_none());
}

#[test]
fn a_token_from_another_reactor_is_refused_not_applied() {
    let mut first = Reactor::new().unwrap();
    let mut second = Reactor::new().unwrap();
    let log = Log::default();
    // The same slot and generation in both: only the reactor tells them apart.
    let theirs = first.add_handler(Probe::new("first", &log));
    let ours = second.add_handler(Probe::new("second", &log));
    assert_eq!(
        (theirs.index(), theirs.generation()),
        (ours.index(), ours.generation())
    );
    assert_ne!(theirs, ours);
    assert!(second.handle(theirs).is_none());
    assert!(second.handler_mut::<Probe>(theirs).is_none());

    // From inside a callback of the second reactor, too.
    let outcome = Rc::new(RefCell::new(String::new()));
    let o = outcome.clone();
    let prober = second.add_handler(Probe::new("p", &log).on_timer(move |ctx| {
        let kill = ctx.handle(theirs).map(|mut h| h.kill());
        let timer = ctx
            .handle(ours)
            .map(|mut h| h.set_timer(Duration::from_secs(60)).is_ok());
        *o.borrow_mut() = format!("{kill:?} {timer:?}");
    }));
    second
        .handle(prober)
        .unwrap()
        .set_timer(Duration::ZERO)
        .unwrap();
    run_until(&mut second, "the probe", |_| !outcome.borrow().is_empty());
    assert_eq!(*outcome.borrow(), "None Some(true)");
    second.handle(ours).unwrap().kill();
    second.handle(prober).unwrap().kill();
    run_until_closed(&mut second, &log, "second");
    assert!(
        first.handle(theirs).is_some(),
        "the first reactor's handle is untouched"
    );
    assert!(!log.contains("first:close:Killed"));
}

#[test]
fn an_added_connected_socket_gets_on_connect_once() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    reactor
        .add(stream, Options::new(), Probe::new("added", &log))
        .unwrap();
    run_until(&mut reactor, "on_connect", |_| {
        log.contains("added:connect")
    });
    std::io::Write::write_all(&mut accepted, b"after").unwrap();
    run_until(&mut reactor, "a read", |_| log.contains("added:read"));
    assert_eq!(log.count("added:connect"), 1);
}

#[test]
fn an_added_socket_mid_connect_gets_on_connect_when_it_completes() {
    use socket2::{Domain, Socket, Type};
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l).echo().boxed()
    });
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_nonblocking(true).unwrap();
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINPROGRESS)),
    }
    let probe = Probe::new("cli", &log).on_connect(|ctx| ctx.send(b"ping").unwrap());
    reactor
        .add(std::os::fd::OwnedFd::from(socket), Options::new(), probe)
        .unwrap();
    run_until(&mut reactor, "the echo", |_| log.contains("cli:read"));
    assert_eq!(log.count("cli:connect"), 1);
}

/// Keeps the errors a datagram handle reports.
struct Errors(Rc<RefCell<Vec<eventmux::Error>>>);

impl Handler for Errors {
    fn on_error(&mut self, _ctx: &mut Context<'_>, error: &eventmux::Error) {
        let kept = match error {
            eventmux::Error::Undeliverable(u) => eventmux::Error::Undeliverable(u.clone()),
            other => eventmux::Error::Io(std::io::Error::other(other.to_string())),
        };
        self.0.borrow_mut().push(kept);
    }
}

#[test]
fn a_failed_datagram_send_names_its_destination_and_payload() {
    let mut reactor = Reactor::new().unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let token = reactor
        .bind("udp://127.0.0.1:0", Options::new(), Errors(errors.clone()))
        .unwrap();
    let peer = util::udp_peer();
    let to: eventmux::Address = peer.local_addr().unwrap().into();
    let too_big = vec![7u8; 70_000]; // past UDP's 65,507-byte payload: EMSGSIZE
    reactor
        .handle(token)
        .unwrap()
        .send_to(&to, &too_big)
        .unwrap();
    run_until(&mut reactor, "the failure", |_| !errors.borrow().is_empty());
    let errors = errors.borrow();
    let eventmux::Error::Undeliverable(report) = &errors[0] else {
        panic!("want Undeliverable, got {:?}", errors[0]);
    };
    assert_eq!(report.errno(), libc::EMSGSIZE);
    assert_eq!(report.to(), Some(&to));
    assert_eq!(report.payload().len(), too_big.len());
    assert!(reactor.handle(token).is_some(), "the handle stays open");
    assert_eq!(reactor.handle(token).unwrap().buflen(), 0);
}
