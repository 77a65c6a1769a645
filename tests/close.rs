//! Every way a handle ends: graceful close (with a queue, and its linger bound), kill,
//! remove, errors and panics; each of them from inside any callback, on the handle itself
//! or on another; what a stale token can (not) reach; and when `run` returns.
//!
//! The rule checked throughout: `on_closing` then `on_close`, exactly once per handle, with
//! the reason of the path that ended it, and nothing else disturbed.

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use eventmux::{Context, Error, Handler, Options, PanicPolicy, Reactor, TimerId, Token};
use util::peer::{round_trip, Peer};
use util::probe::{events, serve, Acceptor, Probe};
use util::{
    assert_same_bytes, join_client, listen_local, pattern, run_until, run_until_closed, settle,
    Log, DEADLINE,
};

// ----- helpers ---------------------------------------------------------------------------

/// Exits the test process if `run()` hangs past the deadline: a reactor is not `Send`, so
/// nothing can interrupt a `run` that never returns. Dropping the guard disarms it.
fn watchdog(what: &'static str) -> mpsc::Sender<()> {
    let (guard, disarmed) = mpsc::channel::<()>();
    thread::spawn(move || {
        if disarmed.recv_timeout(DEADLINE) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("timed out waiting for: {what}");
            std::process::exit(1);
        }
    });
    guard
}

/// Checks that a descriptor handed back by `remove` is open and still the connection to
/// `client`: it reads what the client sends and the client reads what is written to it.
fn assert_removed_fd_is_the_connection(reactor: &mut Reactor, fd: OwnedFd, client: &mut Peer) {
    let mut stream = TcpStream::from(fd);
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    client.send(b"to-fd");
    let mut buf = [0u8; 5];
    stream
        .read_exact(&mut buf)
        .expect("read through the removed descriptor");
    assert_eq!(&buf, b"to-fd");
    stream
        .write_all(b"via-fd")
        .expect("write through the removed descriptor");
    let start = client.received.len();
    run_until(reactor, "the bytes written through the descriptor", |_| {
        client.pump();
        client.received.len() >= start + 6
    });
    assert_eq!(&client.received[start..], b"via-fd");
    assert!(
        client.end.is_none(),
        "removing must not close the connection"
    );
    drop(stream);
    run_until(reactor, "the client to see the end", |_| client.pump());
}

// ----- closing with a queue --------------------------------------------------------------

/// A server whose connection `srv` answers a read with `payload` and closes gracefully.
fn serve_payload_then_close(reactor: &mut Reactor, log: &Log, payload: &[u8]) -> SocketAddr {
    let (l, p) = (log.clone(), payload.to_vec());
    serve(reactor, Options::new(), log, move |_, _| {
        let p = p.clone();
        Probe::new("srv", &l)
            .on_read(move |ctx, _| {
                ctx.send(&p).unwrap();
                ctx.close();
            })
            .boxed()
    })
}

#[test]
fn graceful_close_with_queued_data_delivers_everything_then_eof() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let payload = pattern(8 * 1024 * 1024);
    let addr = serve_payload_then_close(&mut reactor, &log, &payload);

    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(b"go").unwrap();
        let mut received = Vec::new();
        stream
            .read_to_end(&mut received)
            .expect("all bytes, then EOF");
        received
    });
    let received = join_client(&mut reactor, client);

    assert_same_bytes(&received, &payload, "bytes before the close");
    run_until_closed(&mut reactor, &log, "srv");
    settle(&mut reactor);
    assert_eq!(
        events(&log, "srv"),
        ["srv:connect", "srv:closing:0", "srv:close:Closed"]
    );
    assert_eq!(reactor.len(), 1);
}

/// The peer sends more after its request; the closing handle no longer reads it. Closing
/// the socket with that input unread makes the kernel send a reset, which discards output
/// already handed to the kernel but not yet delivered.
#[test]
fn graceful_close_delivers_everything_even_while_the_peer_keeps_sending() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let payload = pattern(8 * 1024 * 1024);
    let addr = serve_payload_then_close(&mut reactor, &log, &payload);

    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(b"go").unwrap();
        let mut received = vec![0u8; 1];
        stream.read_exact(&mut received).unwrap();
        // A pipelined request the closing server will never read.
        stream.write_all(b"and more").unwrap();
        let result = stream.read_to_end(&mut received);
        (received, result.map_err(|e| e.kind()))
    });
    run_until(&mut reactor, "the client thread", |_| client.is_finished());
    let (received, end) = client.join().unwrap();
    run_until_closed(&mut reactor, &log, "srv");

    // The server reports everything sent (nothing missing), so the peer must have it all:
    // unread input must not turn the close into a reset that discards flushed output.
    assert_eq!(
        events(&log, "srv"),
        ["srv:connect", "srv:closing:0", "srv:close:Closed"]
    );
    assert_eq!(
        end.map(|_| ()),
        Ok(()),
        "the client got {} of {} bytes, then an error instead of EOF",
        received.len(),
        payload.len()
    );
    assert_same_bytes(&received, &payload, "bytes before the close");
}

#[test]
fn linger_expiry_kills_with_the_unsent_bytes_reported_missing() {
    const QUEUED: usize = 32 * 1024 * 1024;
    const LINGER: Duration = Duration::from_millis(200);
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let options = Options::new().linger(LINGER).max_output(64 * 1024 * 1024);
    let l = log.clone();
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l)
            .on_connect(|ctx| {
                ctx.send(&vec![0x17; QUEUED]).unwrap();
                ctx.close();
            })
            .boxed()
    });

    let start = Instant::now();
    let client = TcpStream::connect(addr).unwrap(); // and never reads
    run_until_closed(&mut reactor, &log, "srv");
    let waited = start.elapsed();
    settle(&mut reactor);

    let events = events(&log, "srv");
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], "srv:connect");
    let missing: usize = events[1]
        .strip_prefix("srv:closing:")
        .unwrap_or_else(|| panic!("closing expected: {events:?}"))
        .parse()
        .unwrap();
    assert!(
        missing > 0 && missing < QUEUED,
        "missing {missing} of {QUEUED}"
    );
    assert_eq!(events[2], "srv:close:LingerExpired");
    assert!(
        waited >= LINGER,
        "closed after {waited:?}, before the linger"
    );
    drop(client);
}

#[test]
fn kill_drops_the_queue_and_reports_it_missing() {
    const QUEUED: usize = 4 * 1024 * 1024;
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l)
            .on_read(|ctx, _| {
                ctx.send(&vec![1; QUEUED]).unwrap();
                ctx.kill();
            })
            .boxed()
    });

    let mut client = Peer::connect(addr);
    client.send(b"go");
    run_until_closed(&mut reactor, &log, "srv");
    run_until(&mut reactor, "the client to see the end", |_| client.pump());
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect".to_string(),
            format!("srv:closing:{QUEUED}"),
            "srv:close:Killed".to_string(),
        ]
    );
    assert!(
        client.received.is_empty(),
        "a killed queue is never written"
    );
    assert_eq!(reactor.len(), 1);
}

#[test]
fn remove_hands_back_an_open_descriptor_and_stops_its_events() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let removed: Rc<RefCell<Option<OwnedFd>>> = Rc::default();
    let (l, slot) = (log.clone(), removed.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let slot = slot.clone();
        Probe::new("srv", &l)
            .on_read(move |ctx, _| {
                *slot.borrow_mut() = Some(ctx.remove().expect("remove"));
            })
            .boxed()
    });

    let mut client = Peer::connect(addr);
    client.send(b"go");
    run_until_closed(&mut reactor, &log, "srv");
    // The reactor must neither read this nor report anything for the removed handle.
    client.send(b"more");
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        ["srv:connect", "srv:closing:0", "srv:close:Removed"]
    );
    assert_eq!(log.count("srv:read"), 1, "no read after the remove");
    assert_eq!(reactor.len(), 1);
    let fd = removed.borrow_mut().take().expect("the descriptor");
    let mut stream = TcpStream::from(fd);
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut more = [0u8; 4];
    stream
        .read_exact(&mut more)
        .expect("the bytes the reactor left unread");
    assert_eq!(&more, b"more");
    stream.write_all(b"written by the new owner").unwrap();
    run_until(&mut reactor, "the client's read", |_| {
        client.pump();
        client.received.len() >= 24
    });
    assert_eq!(client.received, b"written by the new owner");
    assert!(client.end.is_none(), "the connection is still open");
}

// ----- closing from inside callbacks -----------------------------------------------------

/// The callback a handler acts from.
#[derive(Copy, Clone, Debug)]
enum When {
    Read,
    Connect,
    Timer,
}

/// What it does to the handle.
#[derive(Copy, Clone, Debug)]
enum Act {
    Close,
    Kill,
    Remove,
}

impl Act {
    fn reason(self) -> &'static str {
        match self {
            Act::Close => "Closed",
            Act::Kill => "Killed",
            Act::Remove => "Removed",
        }
    }

    /// Acts on this callback's own handle; a graceful close first queues a goodbye.
    fn on_itself(self, ctx: &mut Context<'_>, removed: &RefCell<Option<OwnedFd>>) {
        match self {
            Act::Close => {
                ctx.send(b"bye").unwrap();
                ctx.close();
            }
            Act::Kill => ctx.kill(),
            Act::Remove => *removed.borrow_mut() = Some(ctx.remove().expect("remove")),
        }
    }

    /// Acts on another handle, reached through its token.
    fn on_another(self, ctx: &mut Context<'_>, other: Token, removed: &RefCell<Option<OwnedFd>>) {
        let mut handle = ctx.handle(other).expect("the other handle is open");
        match self {
            Act::Close => {
                handle.send(b"bye").unwrap();
                handle.close();
            }
            Act::Kill => handle.kill(),
            Act::Remove => *removed.borrow_mut() = Some(handle.remove().expect("remove")),
        }
    }
}

/// Checks what the client of a handle that was closed, killed or removed sees.
fn assert_client_sees(
    reactor: &mut Reactor,
    act: Act,
    client: &mut Peer,
    removed: &RefCell<Option<OwnedFd>>,
) {
    match act {
        Act::Close => {
            run_until(reactor, "goodbye and EOF", |_| client.pump());
            assert_eq!(client.received, b"bye");
            assert_eq!(client.end, Some(Ok(())), "a graceful close ends with EOF");
        }
        Act::Kill => {
            run_until(reactor, "the end", |_| client.pump());
            assert!(client.received.is_empty());
        }
        Act::Remove => {
            let fd = removed.borrow_mut().take().expect("the removed descriptor");
            assert_removed_fd_is_the_connection(reactor, fd, client);
        }
    }
}

/// A handle closes, kills or removes itself from inside one of its callbacks, while a
/// bystander connection on another listener must not notice.
fn act_on_itself(when: When, act: Act) {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let echo_addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("bystander", &l).echo().boxed()
    });
    let mut bystander = Peer::connect(echo_addr);
    round_trip(&mut reactor, &mut bystander, b"before");

    let removed: Rc<RefCell<Option<OwnedFd>>> = Rc::default();
    let (l, slot) = (log.clone(), removed.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let probe = Probe::new("me", &l);
        let slot = slot.clone();
        let action = move |ctx: &mut Context<'_>| act.on_itself(ctx, &slot);
        match when {
            When::Read => probe.on_read(move |ctx, _| action(ctx)),
            When::Connect => probe.on_connect(action),
            When::Timer => probe
                .on_connect(|ctx| {
                    ctx.set_timer(Duration::from_millis(1)).unwrap();
                })
                .on_timer(action),
        }
        .boxed()
    });
    let mut client = Peer::connect(addr);
    if let When::Read = when {
        client.send(b"go");
    }
    // A graceful close completes when the peer has closed its side too, so the client
    // reads (and, at EOF, closes) meanwhile.
    run_until(&mut reactor, "me:close:", |_| {
        if let Act::Close = act {
            client.pump();
        }
        log.count_prefix("me:close:") > 0
    });
    assert_client_sees(&mut reactor, act, &mut client, &removed);
    settle(&mut reactor);

    let mut expected = vec!["me:connect".to_string()];
    if let When::Timer = when {
        expected.push("me:timer".into());
    }
    expected.push("me:closing:0".into());
    expected.push(format!("me:close:{}", act.reason()));
    assert_eq!(events(&log, "me"), expected, "{act:?} from {when:?}");
    assert_eq!(
        reactor.len(),
        3,
        "{act:?} from {when:?}: two listeners and the bystander"
    );
    round_trip(&mut reactor, &mut bystander, b"after");
    assert_eq!(
        events(&log, "bystander"),
        ["bystander:connect"],
        "{act:?} from {when:?}: the bystander is unaffected"
    );
}

#[test]
fn close_of_itself_from_read_connect_and_timer_flushes_and_closes_once() {
    for when in [When::Read, When::Connect, When::Timer] {
        act_on_itself(when, Act::Close);
    }
}

#[test]
fn kill_of_itself_from_read_connect_and_timer_closes_once() {
    for when in [When::Read, When::Connect, When::Timer] {
        act_on_itself(when, Act::Kill);
    }
}

#[test]
fn remove_of_itself_from_read_connect_and_timer_hands_back_the_descriptor() {
    for when in [When::Read, When::Connect, When::Timer] {
        act_on_itself(when, Act::Remove);
    }
}

/// Handle `a` acts on handle `b` from inside its `on_read`; `a` must not notice.
fn act_on_another(act: Act) {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let tokens: Rc<RefCell<Vec<Token>>> = Rc::default();
    let removed: Rc<RefCell<Option<OwnedFd>>> = Rc::default();
    let (l, t, slot) = (log.clone(), tokens.clone(), removed.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let name = ["a", "b"][t.borrow().len()];
        let (t, t2, slot) = (t.clone(), t.clone(), slot.clone());
        Probe::new(name, &l)
            .echo()
            .on_connect(move |ctx| t.borrow_mut().push(ctx.token()))
            .on_read(move |ctx, data| {
                if data == b"act" {
                    let b = t2.borrow()[1];
                    act.on_another(ctx, b, &slot);
                }
            })
            .boxed()
    });

    let mut a = Peer::connect(addr);
    run_until(&mut reactor, "a's connect", |_| log.contains("a:connect"));
    let mut b = Peer::connect(addr);
    run_until(&mut reactor, "b's connect", |_| log.contains("b:connect"));

    round_trip(&mut reactor, &mut a, b"act");
    // A graceful close completes when b's client has closed its side too.
    run_until(&mut reactor, "b:close:", |_| {
        if let Act::Close = act {
            b.pump();
        }
        log.count_prefix("b:close:") > 0
    });
    assert_client_sees(&mut reactor, act, &mut b, &removed);
    settle(&mut reactor);

    assert_eq!(
        events(&log, "b"),
        [
            "b:connect".to_string(),
            "b:closing:0".to_string(),
            format!("b:close:{}", act.reason()),
        ],
        "{act:?}"
    );
    round_trip(&mut reactor, &mut a, b"still here");
    assert_eq!(events(&log, "a"), ["a:connect"], "{act:?}: a is unaffected");
    assert_eq!(reactor.len(), 2, "{act:?}: the listener and a");
}

#[test]
fn closing_another_handle_from_a_callback_flushes_and_closes_it_once() {
    act_on_another(Act::Close);
}

#[test]
fn killing_another_handle_from_a_callback_closes_only_that_handle() {
    act_on_another(Act::Kill);
}

#[test]
fn removing_another_handle_from_a_callback_hands_back_its_descriptor() {
    act_on_another(Act::Remove);
}

#[test]
fn listen_and_connect_from_inside_a_callback_open_working_handles() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let greeting: Rc<RefCell<Vec<u8>>> = Rc::default();
    let (l, got) = (log.clone(), greeting.clone());
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let (l2, got) = (l.clone(), got.clone());
        Probe::new("srv", &l)
            .echo()
            .on_read(move |ctx, data| {
                if data != b"open" {
                    return;
                }
                let l3 = l2.clone();
                let inner = Acceptor::handler("inner-lst", &l2, move |_, _| {
                    Probe::new("inner-srv", &l3).echo().boxed()
                });
                let listener = ctx.listen("127.0.0.1:0", inner).unwrap();
                let addr = ctx.handle(listener).unwrap().local_addr().unwrap();
                let client = Probe::new("inner-cli", &l2)
                    .keeping(&got)
                    .on_connect(|ctx| ctx.send(b"hello").unwrap());
                ctx.connect(addr, client).unwrap();
            })
            .boxed()
    });

    let mut client = Peer::connect(addr);
    round_trip(&mut reactor, &mut client, b"open");
    run_until(&mut reactor, "the inner echo", |_| {
        greeting.borrow().len() >= 5
    });
    settle(&mut reactor);

    assert_eq!(greeting.borrow().as_slice(), b"hello");
    assert!(log.contains("inner-lst:accept"));
    assert_eq!(events(&log, "inner-srv"), ["inner-srv:connect"]);
    assert_eq!(events(&log, "inner-cli"), ["inner-cli:connect"]);
    assert_eq!(
        reactor.len(),
        5,
        "listener, srv, inner listener, both inner ends"
    );
    round_trip(&mut reactor, &mut client, b"still echoing");
    assert_eq!(events(&log, "srv"), ["srv:connect"]);
}

// ----- tokens ----------------------------------------------------------------------------

/// Holds a token after its handle is gone, and tries to use it when its timer fires.
struct Keeper {
    log: Log,
    stale: Rc<RefCell<Option<Token>>>,
}

impl Handler for Keeper {
    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: TimerId) {
        let stale = self.stale.borrow().expect("a stale token");
        let sent = ctx.handle(stale).map(|mut h| h.send(b"intruder").is_ok());
        let handler = ctx.handler_mut::<Probe>(stale).is_some();
        let kind = ctx.kind_of(stale);
        self.log.push(format!(
            "keeper:handle:{sent:?} handler:{handler} kind:{kind:?}"
        ));
    }
}

#[test]
fn stale_token_reaches_nothing_after_its_slot_is_reused() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let stale: Rc<RefCell<Option<Token>>> = Rc::default();
    let keeper = reactor.add_handler(Keeper {
        log: log.clone(),
        stale: stale.clone(),
    });
    let tokens: Rc<RefCell<Vec<Token>>> = Rc::default();
    let (l, t) = (log.clone(), tokens.clone());
    // a's client never closes, so a's graceful close waits out a (short) linger.
    let options = Options::new().linger(Duration::from_millis(100));
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        let name = ["a", "b"][t.borrow().len()];
        let t = t.clone();
        Probe::new(name, &l)
            .on_connect(move |ctx| {
                t.borrow_mut().push(ctx.token());
                if t.borrow().len() == 1 {
                    // A timer that must die with `a`, not reach whoever gets its slot.
                    ctx.set_timer(Duration::from_millis(50)).unwrap();
                }
            })
            .boxed()
    });

    let _client_a = Peer::connect(addr);
    run_until(&mut reactor, "a's connect", |_| log.contains("a:connect"));
    let a = tokens.borrow()[0];
    reactor.handle(a).expect("a is open").close();
    run_until_closed(&mut reactor, &log, "a");

    let mut client_b = Peer::connect(addr);
    run_until(&mut reactor, "b's connect", |_| log.contains("b:connect"));
    let b = tokens.borrow()[1];
    assert_eq!(b.index(), a.index(), "precondition: b reuses a's slot");
    assert_ne!(b.generation(), a.generation());
    assert_ne!(b, a);

    assert!(
        reactor.handle(a).is_none(),
        "a stale token reaches no handle"
    );
    assert!(reactor.handler_mut::<Probe>(a).is_none());
    assert!(reactor.handle(b).is_some());
    assert!(reactor.handler_mut::<Probe>(b).is_some());

    // Well after a's timer would have fired, the keeper tries the stale token.
    *stale.borrow_mut() = Some(a);
    reactor
        .handle(keeper)
        .unwrap()
        .set_timer(Duration::from_millis(300))
        .unwrap();
    run_until(&mut reactor, "the keeper's timer", |_| {
        log.count_prefix("keeper:") > 0
    });
    settle(&mut reactor);
    client_b.pump();

    assert_eq!(
        log.entries()
            .into_iter()
            .filter(|e| e.starts_with("keeper:"))
            .collect::<Vec<_>>(),
        ["keeper:handle:None handler:false kind:None"]
    );
    assert_eq!(
        events(&log, "a"),
        ["a:connect", "a:closing:0", "a:close:Closed"]
    );
    assert_eq!(events(&log, "b"), ["b:connect"], "nothing of a's reaches b");
    assert_eq!(reactor.handle(b).unwrap().buflen(), 0);
    assert!(client_b.received.is_empty(), "nothing was written into b");
    assert!(client_b.end.is_none());
}

// ----- exactly once ----------------------------------------------------------------------

#[test]
fn repeated_close_kill_and_remove_deliver_on_close_once() {
    const QUEUED: usize = 1024 * 1024;
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        let l2 = l.clone();
        Probe::new("srv", &l)
            .on_read(move |ctx, _| {
                ctx.send(&vec![2; QUEUED]).unwrap();
                ctx.close(); // closing: the queue would be flushed...
                ctx.kill(); // ...but this kill wins and drops it
                let removed = ctx.remove();
                l2.push(format!(
                    "srv:remove-refused:{}",
                    matches!(removed, Err(Error::Closing(_)))
                ));
                ctx.close();
                ctx.kill();
            })
            .boxed()
    });

    let mut client = Peer::connect(addr);
    client.send(b"go");
    client.stream.shutdown(Shutdown::Write).unwrap(); // and an EOF racing the kill
    run_until_closed(&mut reactor, &log, "srv");
    run_until(&mut reactor, "the client to see the end", |_| client.pump());
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect".to_string(),
            "srv:remove-refused:true".to_string(),
            format!("srv:closing:{QUEUED}"),
            "srv:close:Killed".to_string(),
        ]
    );
    assert_eq!(log.count_prefix("srv:closing:"), 1);
    assert_eq!(log.count_prefix("srv:close:"), 1);
}

// ----- run and stop ----------------------------------------------------------------------

#[test]
fn run_returns_once_the_last_handle_has_closed() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let listener = Rc::new(RefCell::new(None::<Token>));
    let lst = listener.clone();
    let (token, addr) = listen_local(
        &mut reactor,
        Options::new(),
        Acceptor::handler("lst", &log, move |_, _| {
            let lst = lst.clone();
            Probe::new("srv", &l)
                .on_read(move |ctx, _| {
                    ctx.send(b"bye").unwrap();
                    ctx.close();
                    let listener = lst.borrow().expect("the listener's token");
                    ctx.handle(listener).expect("the listener").close();
                })
                .boxed()
        }),
    );
    *listener.borrow_mut() = Some(token);

    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(b"hello").unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        received
    });
    let _watchdog = watchdog("run() to return");
    reactor.run().expect("run");

    assert!(
        reactor.is_empty(),
        "run returned with {} handles",
        reactor.len()
    );
    assert_eq!(client.join().unwrap(), b"bye");
    assert_eq!(
        events(&log, "srv"),
        ["srv:connect", "srv:closing:0", "srv:close:Closed"]
    );
    assert!(log.contains("lst:close:Closed"), "{:?}", log.entries());
    assert_eq!(log.count_prefix("lst:close:"), 1);
}

#[test]
fn stop_from_a_callback_makes_run_return_with_handles_left() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l)
            .echo()
            .on_read(|ctx, data| {
                if data == b"stop" {
                    ctx.stop();
                }
            })
            .boxed()
    });

    let mut client = Peer::connect(addr);
    client.send(b"stop");
    let watchdog = watchdog("run() to return after stop()");
    reactor.run().expect("run");
    assert_eq!(log.count("srv:read"), 1);
    assert_eq!(reactor.len(), 2, "the listener and the connection remain");

    // The reactor goes on serving, and stops again on request.
    run_until(&mut reactor, "the echo of stop", |_| {
        client.pump();
        client.received.len() >= 4
    });
    assert_eq!(client.received, b"stop");
    round_trip(&mut reactor, &mut client, b"ping");
    client.send(b"stop");
    reactor.run().expect("run");
    drop(watchdog);
    assert_eq!(log.count("srv:read"), 3);
    assert_eq!(events(&log, "srv"), ["srv:connect"]);
}

// ----- panics ----------------------------------------------------------------------------

/// A server whose connections echo, except that `boom` makes the handler panic.
fn serve_fragile(reactor: &mut Reactor, log: &Log) -> SocketAddr {
    let names = ["a", "b", "c"];
    let mut accepted = 0;
    let l = log.clone();
    serve(reactor, Options::new(), log, move |_, _| {
        accepted += 1;
        Probe::new(names[accepted - 1], &l)
            .on_read(|ctx, data| {
                if data == b"boom" {
                    panic!("boom");
                }
                ctx.send(data).unwrap();
            })
            .boxed()
    })
}

#[test]
fn panicking_handler_is_killed_and_other_connections_keep_working() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve_fragile(&mut reactor, &log);
    let mut a = Peer::connect(addr);
    run_until(&mut reactor, "a's connect", |_| log.contains("a:connect"));
    let mut b = Peer::connect(addr);
    round_trip(&mut reactor, &mut b, b"before");

    a.send(b"boom");
    run_until_closed(&mut reactor, &log, "a");
    run_until(&mut reactor, "a's client to see the end", |_| a.pump());
    settle(&mut reactor);

    assert_eq!(
        events(&log, "a"),
        ["a:connect", "a:closing:0", "a:close:Panicked"]
    );
    assert!(a.received.is_empty());
    round_trip(&mut reactor, &mut b, b"after");
    assert_eq!(events(&log, "b"), ["b:connect"], "b is unaffected");
    assert_eq!(reactor.len(), 2);
}

#[test]
fn propagated_panic_leaves_the_reactor_usable() {
    let mut reactor = Reactor::new().unwrap();
    reactor.set_panic_policy(PanicPolicy::Propagate);
    let log = Log::default();
    let addr = serve_fragile(&mut reactor, &log);
    let mut a = Peer::connect(addr);
    run_until(&mut reactor, "a's connect", |_| log.contains("a:connect"));
    let mut b = Peer::connect(addr);
    round_trip(&mut reactor, &mut b, b"before");

    a.send(b"boom");
    let start = Instant::now();
    let payload = loop {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for the panic"
        );
        let turn = panic::catch_unwind(AssertUnwindSafe(|| {
            reactor.run_once(Some(Duration::from_millis(20)))
        }));
        match turn {
            Ok(result) => {
                result.expect("run_once");
            }
            Err(payload) => break payload,
        }
    };
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));

    // After the panic: the panicking handle is gone, the others are served.
    run_until_closed(&mut reactor, &log, "a");
    run_until(&mut reactor, "a's client to see the end", |_| a.pump());
    assert_eq!(
        events(&log, "a"),
        ["a:connect", "a:closing:0", "a:close:Panicked"]
    );
    round_trip(&mut reactor, &mut b, b"after");
    let mut c = Peer::connect(addr);
    round_trip(&mut reactor, &mut c, b"newcomer");
    assert_eq!(events(&log, "b"), ["b:connect"]);
    assert_eq!(events(&log, "c"), ["c:connect"]);
    assert_eq!(reactor.len(), 3);
}

// ----- bounded lingering close ------------------------------------------------------------

#[test]
fn a_refused_peer_that_keeps_sending_is_read_only_up_to_the_discard_limit() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    // A linger far longer than the test's deadline: only the discard limit can end it.
    let options = Options::new()
        .framing(eventmux::framing::Framing::lines())
        .max_size(1024)
        .discard_limit(64 * 1024)
        .linger(Duration::from_secs(600));
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l)
            .framed()
            .on_error(|ctx, _| {
                let _ = ctx.send(b"-ERR too big\n");
            })
            .boxed()
    });
    let flood = thread::spawn(move || {
        let mut client = TcpStream::connect(addr).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        // No newline ever: one endless record. Stops when the server has gone.
        while client.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    util::run_until_closed(&mut reactor, &log, "srv");
    assert!(
        log.contains("srv:error:input_limit:1024"),
        "{:?}",
        log.entries()
    );
    assert!(log.contains("srv:close:InputLimit"), "{:?}", log.entries());
    let sent = util::join_client(&mut reactor, flood);
    assert!(sent > 64 * 1024, "the peer kept sending: {sent} bytes");
}

#[test]
fn a_close_that_wrote_nothing_does_not_linger() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let options = Options::new().linger(Duration::from_secs(600));
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l).on_read(|ctx, _| ctx.close()).boxed()
    });
    // Sends, then keeps its side open: a lingering close would wait 600 s for its EOF.
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    util::run_until_closed(&mut reactor, &log, "srv");
    assert!(log.contains("srv:close:Closed"), "{:?}", log.entries());
    let mut rest = Vec::new();
    client.set_read_timeout(Some(util::DEADLINE)).unwrap();
    let _ = client.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing was ever sent");
}
