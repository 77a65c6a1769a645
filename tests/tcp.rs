//! TCP behaviour of the reactor: accepting and refusing, connecting (and being refused),
//! reading and writing (drain notification, coalesced sends, large payloads), what a peer
//! can do to a connection (EOF, half-close, reset), the output bound, pausing, reaching
//! another handle's handler, and the same basics on both readiness backends.
//!
//! Clients are plain `std` sockets: non-blocking ones pumped from `run_until` closures on
//! the test thread, or blocking ones in spawned threads for payloads of several MB.

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use eventmux::{Backend, Handler, Options, Reactor};
use util::peer::{round_trip, Peer};
use util::probe::{describe, events, serve, Probe};
use util::{assert_same_bytes, join_client, pattern, run_until, settle, Log, DEADLINE};

// ----- helpers ---------------------------------------------------------------------------

/// A blocking client in its own thread: writes `payload` (while reading), half-closes,
/// and returns everything it read up to end of stream.
fn spawn_client(addr: SocketAddr, payload: Vec<u8>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let writing = thread::spawn(move || {
            writer.write_all(&payload).expect("client write");
            writer.shutdown(Shutdown::Write).expect("client shutdown");
        });
        let mut received = Vec::new();
        (&stream).read_to_end(&mut received).expect("client read");
        writing.join().expect("writer thread");
        received
    })
}

/// A blocking client in its own thread: writes `request`, reads `len` bytes, and returns
/// them, keeping its connection open (no half-close) until the thread ends.
fn spawn_reader(addr: SocketAddr, request: &'static [u8], len: usize) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(request).expect("client write");
        let mut received = vec![0; len];
        stream.read_exact(&mut received).expect("client read");
        received
    })
}

// ----- accepting -------------------------------------------------------------------------

#[test]
fn accepted_connection_reports_peer_then_connect_then_exact_bytes() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let peer_seen: Rc<RefCell<Option<SocketAddr>>> = Rc::default();
    let received: Rc<RefCell<Vec<u8>>> = Rc::default();
    let (seen, got, l) = (peer_seen.clone(), received.clone(), log.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, incoming| {
        *seen.borrow_mut() = incoming.peer_addr();
        Probe::new("srv", &l).keeping(&got).boxed()
    });

    let mut client = Peer::connect(addr).leave_open_at_eof();
    let message = b"exact bytes\x00\xff\r\n";
    client.send(message);
    run_until(&mut reactor, "the message", |_| {
        received.borrow().len() >= message.len()
    });

    assert_eq!(received.borrow().as_slice(), message);
    assert_eq!(
        *peer_seen.borrow(),
        Some(client.stream.local_addr().unwrap()),
        "on_accept must see the client's address"
    );
    let entries = log.entries();
    assert_eq!(entries[..3], ["lst:accept", "srv:connect", "srv:read"]);
    assert!(
        entries[3..].iter().all(|e| e == "srv:read"),
        "nothing but reads after the first: {entries:?}"
    );
}

#[test]
fn echo_of_a_large_payload_arrives_intact_and_in_order() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l).echo().boxed()
    });

    let payload = pattern(6 * 1024 * 1024);
    let echoed = join_client(&mut reactor, spawn_client(addr, payload.clone()));

    assert_same_bytes(&echoed, &payload, "echoed payload");
    run_until(&mut reactor, "the server's close", |_| {
        log.contains("srv:close:PeerClosed")
    });
    assert_eq!(
        events(&log, "srv"),
        ["srv:connect", "srv:closing:0", "srv:close:PeerClosed"],
        "no error, no lost bytes"
    );
}

#[test]
fn refusing_in_on_accept_closes_the_connection_and_adds_no_handle() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve(&mut reactor, Options::new(), &log, |_, _| None);
    assert_eq!(reactor.len(), 1);

    let client = TcpStream::connect(addr).unwrap();
    run_until(&mut reactor, "the accept", |_| log.contains("lst:accept"));
    settle(&mut reactor);

    assert_eq!(
        reactor.len(),
        1,
        "a refused connection must not become a handle"
    );
    assert_eq!(reactor.tokens().count(), 1);
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 16];
    let n = (&client)
        .read(&mut buf)
        .expect("a refused client sees EOF, not an error");
    assert_eq!(n, 0, "a refused client sees end of stream");
    assert_eq!(log.entries(), ["lst:accept"]);
}

// ----- connecting ------------------------------------------------------------------------

#[test]
fn connect_reports_on_connect_and_delivers_sends_queued_before_it() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();

    let probe = Probe::new("cli", &log).on_connect(|ctx| ctx.send(b"+late").unwrap());
    let token = reactor.connect(addr, probe).unwrap();
    {
        let mut handle = reactor.handle(token).expect("a connecting handle is open");
        handle
            .send(b"early")
            .expect("sends before the connect completes are queued");
        assert_eq!(handle.buflen(), 5);
    }
    assert!(
        log.entries().is_empty(),
        "no callback before the reactor runs"
    );

    let (accepted, _) = listener.accept().unwrap();
    let mut server = Peer::from_stream(accepted).leave_open_at_eof();
    run_until(&mut reactor, "both messages at the server", |_| {
        server.pump();
        server.received.len() >= b"early+late".len()
    });

    assert_eq!(server.received, b"early+late");
    assert_eq!(log.entries(), ["cli:connect", "cli:sent:0"]);
    assert_eq!(reactor.handle(token).unwrap().buflen(), 0);
}

#[test]
fn refused_connect_reports_error_then_closing_then_close_once() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    // A port that was just free: bound, then closed, so nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();

    let token = reactor.connect(addr, Probe::new("cli", &log)).unwrap();
    run_until(&mut reactor, "the close", |_| {
        log.contains("cli:close:Error")
    });
    settle(&mut reactor);

    assert_eq!(
        log.entries(),
        [
            "cli:error:io:ConnectionRefused",
            "cli:closing:0",
            "cli:close:Error"
        ]
    );
    assert!(reactor.handle(token).is_none());
    assert!(reactor.is_empty());
}

// ----- writing ---------------------------------------------------------------------------

#[test]
fn on_sent_fires_when_the_queue_drains_with_buflen_zero() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let reply = pattern(2 * 1024 * 1024);
    let (l, r) = (log.clone(), reply.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let (l2, r) = (l.clone(), r.clone());
        Probe::new("srv", &l)
            .on_read(move |ctx, _| {
                ctx.send(&r).unwrap();
                l2.push(format!("srv:queued:{}", ctx.buflen()));
            })
            .boxed()
    });

    let client = spawn_reader(addr, b"?", reply.len());
    run_until(&mut reactor, "on_sent", |_| {
        log.count_prefix("srv:sent:") > 0
    });
    let received = join_client(&mut reactor, client);
    assert_same_bytes(&received, &reply, "reply");
    run_until(&mut reactor, "the close", |_| {
        log.count_prefix("srv:close:") > 0
    });

    let server: Vec<String> = log
        .entries()
        .into_iter()
        .filter(|e| e.starts_with("srv:") && e != "srv:read")
        .collect();
    assert_eq!(
        server,
        [
            "srv:connect".to_string(),
            format!("srv:queued:{}", reply.len()),
            "srv:sent:0".to_string(),
            "srv:closing:0".to_string(),
            "srv:close:PeerClosed".to_string(),
        ],
        "one on_sent, once the whole reply is out, with an empty queue"
    );
}

#[test]
fn sends_within_one_callback_arrive_as_one_ordered_stream() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let expected: Vec<u8> = (0..2000)
        .flat_map(|i| format!("{i},").into_bytes())
        .collect();
    let (l, total) = (log.clone(), expected.len());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let l2 = l.clone();
        Probe::new("srv", &l)
            .on_read(move |ctx, _| {
                for i in 0..2000 {
                    ctx.send(format!("{i},").as_bytes()).unwrap();
                }
                // Nothing is written during the callback: it is all queued for one flush.
                l2.push(format!("srv:queued:{}", ctx.buflen()));
            })
            .boxed()
    });

    let mut client = Peer::connect(addr).leave_open_at_eof();
    client.send(b"go");
    run_until(&mut reactor, "all the pieces", |_| {
        client.pump();
        client.received.len() >= total
    });

    assert_same_bytes(&client.received, &expected, "concatenated sends");
    assert!(
        log.contains(&format!("srv:queued:{total}")),
        "{:?}",
        log.entries()
    );
}

/// One `sendmsg` offers at most 64 buffers. A queue of more than 64 (here 200, alternating
/// copied and zero-copy sends) used to lose its writability after the first write took all
/// 64, and the rest waited for an EPOLLOUT edge that never came while the peer was silent.
#[test]
fn more_queued_chunks_than_one_write_offers_all_arrive_without_more_input() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let mut expected = Vec::new();
    for i in 0..200 {
        expected.extend_from_slice(format!("{:05}|", i).as_bytes());
    }
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l)
            .on_read(move |ctx, _| {
                for i in 0..200 {
                    let piece = format!("{:05}|", i);
                    if i % 2 == 0 {
                        ctx.send(piece.as_bytes()).unwrap();
                    } else {
                        ctx.send_bytes(bytes::Bytes::from(piece)).unwrap();
                    }
                }
            })
            .boxed()
    });

    let mut client = Peer::connect(addr).leave_open_at_eof();
    client.send(b"go"); // and nothing more: only writability can move the rest
    run_until(&mut reactor, "all 1,200 bytes", |_| {
        client.pump();
        client.received.len() >= expected.len()
    });
    assert_same_bytes(&client.received, &expected, "200 alternating sends");
}

// ----- what the peer does ----------------------------------------------------------------

#[test]
fn peer_reset_mid_write_reports_error_and_closes_without_sigpipe() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let options = Options::new().max_output(64 * 1024 * 1024);
    let conn: Rc<RefCell<Option<eventmux::Token>>> = Rc::default();
    let (l, c) = (log.clone(), conn.clone());
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        let c = c.clone();
        Probe::new("srv", &l)
            .on_connect(move |ctx| {
                *c.borrow_mut() = Some(ctx.token());
                ctx.send(&vec![0x42; 16 * 1024 * 1024]).unwrap();
            })
            .boxed()
    });

    let client = TcpStream::connect(addr).unwrap();
    run_until(&mut reactor, "the server's connect", |_| {
        log.contains("srv:connect")
    });
    let token = conn.borrow().expect("token recorded");
    let queued = reactor.handle(token).unwrap().buflen();
    assert!(queued > 0, "precondition: the write is under way, not done");

    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client); // an RST, with the server's data unread

    run_until(&mut reactor, "the server's close", |_| {
        log.count_prefix("srv:close:") > 0
    });
    settle(&mut reactor);

    let events = events(&log, "srv");
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0], "srv:connect");
    assert!(
        events[1] == "srv:error:io:ConnectionReset" || events[1] == "srv:error:io:BrokenPipe",
        "{events:?}"
    );
    let missing: usize = events[2]
        .strip_prefix("srv:closing:")
        .unwrap_or_else(|| panic!("closing expected: {events:?}"))
        .parse()
        .unwrap();
    assert!(
        missing > 0 && missing <= queued,
        "missing {missing} of {queued}"
    );
    assert_eq!(events[3], "srv:close:Error");
    assert_eq!(reactor.len(), 1);
}

#[test]
fn peer_eof_delivers_closing_zero_then_close_peer_closed() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l).boxed()
    });

    let mut client = Peer::connect(addr).leave_open_at_eof();
    client.send(b"last words");
    drop(client);
    run_until(&mut reactor, "the server's close", |_| {
        log.count_prefix("srv:close:") > 0
    });
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        ["srv:connect", "srv:closing:0", "srv:close:PeerClosed"]
    );
    assert!(
        log.count("srv:read") >= 1,
        "the data before the EOF is read"
    );
    assert_eq!(reactor.len(), 1);
}

#[test]
fn half_closed_peer_receives_the_whole_reply_before_close() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let reply = pattern(4 * 1024 * 1024);
    let (l, r) = (log.clone(), reply.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let r = r.clone();
        Probe::new("srv", &l)
            .on_read(move |ctx, data| {
                if data.ends_with(b"\n") {
                    ctx.send(&r).unwrap();
                }
            })
            .boxed()
    });

    // The client sends its request, shuts down its writing side, then reads everything.
    let received = join_client(&mut reactor, spawn_client(addr, b"request\n".to_vec()));

    assert_same_bytes(&received, &reply, "reply to a half-closed peer");
    run_until(&mut reactor, "the server's close", |_| {
        log.count_prefix("srv:close:") > 0
    });
    assert_eq!(
        events(&log, "srv"),
        ["srv:connect", "srv:closing:0", "srv:close:PeerClosed"]
    );
}

// ----- reaching other handles ------------------------------------------------------------

/// Shared state living in a handle of its own.
struct Counter {
    bytes: usize,
}

impl Handler for Counter {}

#[test]
fn handler_mut_reaches_another_handles_state_and_checks_the_type() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let counter = reactor.add_handler(Counter { bytes: 0 });
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let l2 = l.clone();
        Probe::new("srv", &l)
            .on_read(move |ctx, data| {
                ctx.handler_mut::<Counter>(counter)
                    .expect("the counter, by type")
                    .bytes += data.len();
                let own = ctx.token();
                l2.push(format!(
                    "srv:wrong-type:{} own:{}",
                    ctx.handler_mut::<Probe>(counter).is_none(),
                    ctx.handler_mut::<Probe>(own).is_none()
                ));
            })
            .boxed()
    });

    let mut client = Peer::connect(addr).leave_open_at_eof();
    client.send(b"12345");
    run_until(&mut reactor, "the count", |r| {
        r.handler_mut::<Counter>(counter).unwrap().bytes >= 5
    });
    client.send(b"678");
    run_until(&mut reactor, "the second count", |r| {
        r.handler_mut::<Counter>(counter).unwrap().bytes >= 8
    });

    assert_eq!(reactor.handler_mut::<Counter>(counter).unwrap().bytes, 8);
    assert!(
        reactor.handler_mut::<Probe>(counter).is_none(),
        "wrong type"
    );
    assert!(
        log.count("srv:wrong-type:true own:true") >= 2,
        "{:?}",
        log.entries()
    );
    assert_eq!(log.count_prefix("srv:wrong-type:false"), 0);
}

// ----- backends --------------------------------------------------------------------------

/// An echo round trip, an EOF close, and a large echo, on the given backend.
fn echo_and_eof_close(backend: Backend) {
    let mut reactor = Reactor::with_backend(backend).unwrap();
    let log = Log::default();
    let names = ["a", "b"];
    let mut accepted = 0;
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        accepted += 1;
        Probe::new(names[accepted - 1], &l).echo().boxed()
    });

    let mut client = Peer::connect(addr).leave_open_at_eof();
    round_trip(&mut reactor, &mut client, b"ping");
    round_trip(&mut reactor, &mut client, b"pong");
    drop(client);
    run_until(&mut reactor, "the close on EOF", |_| {
        log.count_prefix("a:close:") > 0
    });
    assert_eq!(
        events(&log, "a"),
        ["a:connect", "a:closing:0", "a:close:PeerClosed"],
        "{backend:?}"
    );

    let payload = pattern(2 * 1024 * 1024);
    let echoed = join_client(&mut reactor, spawn_client(addr, payload.clone()));
    assert_same_bytes(&echoed, &payload, "large echo");
    run_until(&mut reactor, "the second close", |_| {
        log.count_prefix("b:close:") > 0
    });
    assert!(
        log.contains("b:close:PeerClosed"),
        "{backend:?}: {:?}",
        log.entries()
    );
    assert_eq!(reactor.len(), 1, "{backend:?}: only the listener is left");
}

#[test]
fn epoll_backend_echoes_and_closes_on_eof() {
    echo_and_eof_close(Backend::Epoll);
}

#[test]
fn polling_backend_echoes_and_closes_on_eof() {
    echo_and_eof_close(Backend::Polling);
}

// ----- bounds and flow control -----------------------------------------------------------

#[test]
fn output_bound_refuses_the_send_and_kills_only_that_connection() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let names = ["a", "b"];
    let mut accepted = 0;
    let l = log.clone();
    let addr = serve(
        &mut reactor,
        Options::new().max_output(1024),
        &log,
        move |_, _| {
            accepted += 1;
            let name = names[accepted - 1];
            let l2 = l.clone();
            Probe::new(name, &l)
                .on_read(move |ctx, data| {
                    let result = if data == b"big" {
                        ctx.send(&[7; 2048])
                    } else {
                        ctx.send(data)
                    };
                    if let Err(e) = result {
                        l2.push(format!("{name}:send-refused:{}", describe(&e)));
                    }
                })
                .boxed()
        },
    );

    let mut a = Peer::connect(addr).leave_open_at_eof();
    run_until(&mut reactor, "a's connect", |_| log.contains("a:connect"));
    let mut b = Peer::connect(addr).leave_open_at_eof();
    run_until(&mut reactor, "b's connect", |_| log.contains("b:connect"));
    round_trip(&mut reactor, &mut b, b"before");

    a.send(b"big");
    run_until(&mut reactor, "a's close", |_| {
        log.count_prefix("a:close:") > 0
    });
    run_until(&mut reactor, "a's client to see the end", |_| a.pump());
    settle(&mut reactor);

    assert_eq!(
        events(&log, "a"),
        [
            "a:connect",
            "a:send-refused:output_limit:1024/0/2048",
            "a:error:output_limit:1024/0/2048",
            "a:closing:0",
            "a:close:OutputLimit",
        ]
    );
    assert!(
        a.received.is_empty(),
        "nothing of the refused send went out"
    );
    round_trip(&mut reactor, &mut b, b"after");
    assert_eq!(log.count_prefix("b:close:"), 0, "b is unaffected");
    assert_eq!(log.count_prefix("b:error:"), 0, "b is unaffected");
}

#[test]
fn paused_handle_gets_no_reads_until_resumed_then_the_data_once() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let received: Rc<RefCell<Vec<u8>>> = Rc::default();
    let (l, got) = (log.clone(), received.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l)
            .keeping(&got)
            .on_connect(|ctx| {
                ctx.pause_reading().unwrap();
                ctx.set_timer(Duration::from_millis(200)).unwrap();
            })
            .on_timer(|ctx| ctx.resume_reading().unwrap())
            .boxed()
    });

    // The data is in the server's socket before the server even accepts.
    let mut client = Peer::connect(addr).leave_open_at_eof();
    client.send(b"data");
    run_until(&mut reactor, "the resume", |_| log.contains("srv:timer"));
    assert_eq!(
        log.entries(),
        ["lst:accept", "srv:connect", "srv:timer"],
        "no read while paused"
    );

    run_until(&mut reactor, "the data", |_| received.borrow().len() >= 4);
    settle(&mut reactor);
    assert_eq!(
        received.borrow().as_slice(),
        b"data",
        "delivered exactly once"
    );
    assert_eq!(log.count("srv:read"), 1);
}

#[cfg(not(feature = "tls"))]
#[test]
fn a_tls_url_without_the_tls_feature_is_refused_with_the_reason() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let error = reactor
        .connect("tls://127.0.0.1:1", Probe::new("cli", &log))
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
    assert!(error.to_string().contains("`tls` feature"), "{error}");
    let error = reactor
        .listen("tls://127.0.0.1:0", Probe::new("lst", &log))
        .unwrap_err();
    assert!(error.to_string().contains("Options::tls"), "{error}");
}
