//! `Remote`: other threads feed the reactor. Events pushed from several threads all arrive,
//! once each and in each thread's order; closures run on the reactor thread with a context;
//! bytes sent through a remote reach a stream handle; a command for a handle that is gone
//! is counted and never reaches the handle that reuses its slot; `stop` ends `run`; a remote
//! outliving its reactor reports `Error::Disconnected`; and a burst of commands costs a
//! handful of turns, not one wakeup each.
//!
//! The reactor stays on the test thread. Tests that block in `run` arm a [`Watchdog`],
//! which ends a hung run so that the test fails on its assertions instead of hanging.

mod util;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use eventmux::{Context, Error, Handler, Incoming, Options, Reactor, Remote, Token};
use util::{listen_local, run_until, DEADLINE};

// ----- helpers ---------------------------------------------------------------------------

/// Runs `rescue` through a remote if the test is still going after [`DEADLINE`].
struct Watchdog {
    cancel: mpsc::Sender<()>,
    thread: JoinHandle<bool>,
}

impl Watchdog {
    fn arm(remote: Remote, rescue: impl FnOnce(&Remote) + Send + 'static) -> Watchdog {
        let (cancel, cancelled) = mpsc::channel();
        let thread = thread::spawn(move || match cancelled.recv_timeout(DEADLINE) {
            Err(RecvTimeoutError::Timeout) => {
                rescue(&remote);
                true
            }
            _ => false,
        });
        Watchdog { cancel, thread }
    }

    /// Stops the reactor if the test hangs.
    fn stopping(remote: Remote) -> Watchdog {
        Watchdog::arm(remote, |remote| {
            let _ = remote.stop();
        })
    }

    /// Disarms it; panics if it had fired.
    fn disarm(self) {
        let _ = self.cancel.send(());
        let fired = self.thread.join().expect("the watchdog panicked");
        assert!(
            !fired,
            "the watchdog fired: the reactor hung for {DEADLINE:?}"
        );
    }
}

/// A handle without a descriptor that records the events pushed to it.
struct Events(Rc<RefCell<Vec<Box<dyn Any + Send>>>>);

impl Handler for Events {
    fn on_user_event(&mut self, _ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
        self.0.borrow_mut().push(event);
    }
}

/// The `u32`s among `events`, in order.
fn numbers(events: &[Box<dyn Any + Send>]) -> Vec<u32> {
    events
        .iter()
        .map(|e| *e.downcast_ref::<u32>().expect("a u32 event"))
        .collect()
}

/// A handler that does nothing (the other end of a stream, a placeholder).
struct Quiet;

impl Handler for Quiet {}

/// Reads from a non-blocking `stream` into `into` what has arrived.
fn read_available(stream: &mut impl Read, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

// ----- events ----------------------------------------------------------------------------

/// What the ordering handler saw, shared with the test body.
#[derive(Default)]
struct Ordered {
    /// Per thread, the sequence number expected next.
    next: Vec<u64>,
    total: u64,
    out_of_order: Vec<(usize, u64, u64)>,
}

struct OrderChecker {
    seen: Rc<RefCell<Ordered>>,
    expected_total: u64,
}

impl Handler for OrderChecker {
    fn on_user_event(&mut self, ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
        let (thread, seq) = *event
            .downcast::<(usize, u64)>()
            .expect("a (thread, seq) event");
        let mut seen = self.seen.borrow_mut();
        let expected = seen.next[thread];
        if seq != expected && seen.out_of_order.len() < 10 {
            seen.out_of_order.push((thread, expected, seq));
        }
        seen.next[thread] = seq + 1;
        seen.total += 1;
        if seen.total == self.expected_total {
            ctx.kill(); // the last handle: run returns
        }
    }
}

#[test]
fn four_threads_post_100k_events_each_all_delivered_once_in_per_thread_order() {
    const THREADS: usize = 4;
    const EACH: u64 = 100_000;
    let mut reactor = Reactor::new().unwrap();
    let seen = Rc::new(RefCell::new(Ordered {
        next: vec![0; THREADS],
        ..Ordered::default()
    }));
    let checker = reactor.add_handler(OrderChecker {
        seen: seen.clone(),
        expected_total: THREADS as u64 * EACH,
    });
    let remote = reactor.remote().unwrap();
    let watchdog = Watchdog::stopping(remote.clone());

    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let remote = remote.clone();
            thread::spawn(move || {
                for seq in 0..EACH {
                    remote.push_event(checker, (thread, seq)).unwrap();
                }
            })
        })
        .collect();
    reactor.run().unwrap();
    watchdog.disarm();
    for thread in threads {
        thread.join().expect("a pushing thread failed");
    }

    let seen = seen.borrow();
    assert_eq!(seen.out_of_order, [], "(thread, expected, got)");
    assert_eq!(
        seen.next, [EACH; THREADS],
        "every thread's last event arrived"
    );
    assert_eq!(seen.total, THREADS as u64 * EACH, "nothing arrived twice");
    assert_eq!(remote.undelivered(), 0);
    assert!(reactor.is_empty());
}

#[test]
fn remote_run_executes_on_the_reactor_thread_with_a_context() {
    let mut reactor = Reactor::new().unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let stream = reactor.add(ours, Options::new(), Quiet).unwrap();
    let remote = reactor.remote().unwrap();

    let ran_on = Arc::new(Mutex::new(None));
    let poster = {
        let ran_on = ran_on.clone();
        thread::spawn(move || {
            remote
                .run(move |ctx| {
                    let handle_found = ctx.handle(stream).is_some();
                    *ran_on.lock().unwrap() =
                        Some((thread::current().id(), handle_found, ctx.kind()));
                    ctx.handle(stream)
                        .unwrap()
                        .send(b"sent from a remote closure")
                        .unwrap();
                })
                .unwrap();
        })
    };
    poster.join().unwrap();

    let mut got = Vec::new();
    run_until(&mut reactor, "the closure's bytes", |_| {
        read_available(&mut theirs, &mut got);
        got.len() >= b"sent from a remote closure".len()
    });
    assert_eq!(got, b"sent from a remote closure");
    let (thread_id, handle_found, own_kind) = ran_on.lock().unwrap().expect("the closure ran");
    assert_eq!(
        thread_id,
        thread::current().id(),
        "ran on the reactor's thread"
    );
    assert!(handle_found);
    assert_eq!(own_kind, None, "the closure's own token names no handle");
}

/// A connection that reports its token once established.
struct Connection(Rc<Cell<Option<Token>>>);

impl Handler for Connection {
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        self.0.set(Some(ctx.token()));
    }
}

/// Gives every accepted connection a [`Connection`].
struct Acceptor(Rc<Cell<Option<Token>>>);

impl Handler for Acceptor {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Connection(self.0.clone())))
    }
}

#[test]
fn remote_send_reaches_a_stream_handle() {
    let mut reactor = Reactor::new().unwrap();
    let accepted = Rc::new(Cell::new(None));
    let (_, addr) = listen_local(&mut reactor, Options::new(), Acceptor(accepted.clone()));
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_nonblocking(true).unwrap();
    run_until(&mut reactor, "the accepted connection", |_| {
        accepted.get().is_some()
    });
    let connection = accepted.get().unwrap();

    let remote = reactor.remote().unwrap();
    let sender = {
        let remote = remote.clone();
        thread::spawn(move || {
            remote.send(connection, &b"hello "[..]).unwrap();
            remote
                .send(connection, b"from another thread".to_vec())
                .unwrap();
        })
    };
    sender.join().unwrap();

    let expected = b"hello from another thread";
    let mut got = Vec::new();
    run_until(&mut reactor, "the remote's bytes at the client", |_| {
        read_available(&mut client, &mut got);
        got.len() >= expected.len()
    });
    assert_eq!(got, expected);
    assert_eq!(remote.undelivered(), 0);
}

#[test]
fn stale_token_is_counted_never_misdelivered() {
    let mut reactor = Reactor::new().unwrap();
    let remote = reactor.remote().unwrap();
    let old_events = Rc::new(RefCell::new(Vec::new()));
    let old = reactor.add_handler(Events(old_events.clone()));
    reactor.handle(old).unwrap().kill();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert!(reactor.handle(old).is_none());

    let new_events = Rc::new(RefCell::new(Vec::new()));
    let new = reactor.add_handler(Events(new_events.clone()));
    assert_eq!(new.index(), old.index(), "the slot is reused");
    assert_ne!(new, old);

    let pusher = {
        let remote = remote.clone();
        thread::spawn(move || {
            remote.push_event(old, 1u32).unwrap();
            // Commands from one thread are carried out in order: when this one arrives, the
            // stale one has been dealt with.
            remote.push_event(new, 2u32).unwrap();
        })
    };
    pusher.join().unwrap();
    run_until(&mut reactor, "the event for the new handle", |_| {
        !new_events.borrow().is_empty()
    });

    assert_eq!(numbers(&new_events.borrow()), [2], "only its own event");
    assert!(old_events.borrow().is_empty());
    assert_eq!(remote.undelivered(), 1);
}

#[test]
fn remote_stop_makes_run_return() {
    let mut reactor = Reactor::new().unwrap();
    let events = Rc::new(RefCell::new(Vec::new()));
    let token = reactor.add_handler(Events(events.clone()));
    let remote = reactor.remote().unwrap();
    // If stop is ignored, the watchdog kills the only handle: run then returns because
    // nothing is left, and the handle is missing below.
    let watchdog = Watchdog::arm(remote.clone(), move |remote| {
        let _ = remote.run(move |ctx| {
            if let Some(mut handle) = ctx.handle(token) {
                handle.kill();
            }
        });
    });

    for round in 0..2u32 {
        let stopper = {
            let remote = remote.clone();
            thread::spawn(move || {
                remote.push_event(token, round).unwrap();
                remote.stop().unwrap();
            })
        };
        reactor.run().unwrap();
        stopper.join().unwrap();
        assert!(
            reactor.handle(token).is_some(),
            "round {round}: run returned, but not because of stop"
        );
    }
    watchdog.disarm();
    assert_eq!(numbers(&events.borrow()), [0, 1], "events before each stop");
}

#[test]
fn remote_after_the_reactor_is_dropped_reports_disconnected() {
    let mut reactor = Reactor::new().unwrap();
    let token = reactor.add_handler(Quiet);
    let remote = reactor.remote().unwrap();
    let clone = remote.clone();
    drop(reactor);

    assert!(matches!(
        remote.push_event(token, 1u32),
        Err(Error::Disconnected)
    ));
    assert!(matches!(remote.run(|_| {}), Err(Error::Disconnected)));
    assert!(matches!(
        remote.send(token, &b"x"[..]),
        Err(Error::Disconnected)
    ));
    assert!(matches!(remote.stop(), Err(Error::Disconnected)));
    let from_a_thread = thread::spawn(move || clone.push_event(token, 2u32))
        .join()
        .unwrap();
    assert!(matches!(from_a_thread, Err(Error::Disconnected)));
}

// ----- wakeups ---------------------------------------------------------------------------

/// Holds the reactor thread in its first event until `burst_sent`, then counts.
struct Busy {
    started: Arc<AtomicBool>,
    burst_sent: Arc<AtomicBool>,
    seen: Rc<RefCell<Vec<u32>>>,
}

impl Handler for Busy {
    fn on_user_event(&mut self, _ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
        let n = *event.downcast::<u32>().expect("a u32 event");
        if n == 0 {
            self.started.store(true, Ordering::SeqCst);
            let start = Instant::now();
            while !self.burst_sent.load(Ordering::SeqCst) {
                assert!(start.elapsed() < DEADLINE, "the burst was never sent");
                thread::yield_now();
            }
        }
        self.seen.borrow_mut().push(n);
    }
}

#[test]
fn wakeups_are_coalesced() {
    const BURST: u32 = 10_000;
    let mut reactor = Reactor::new().unwrap();
    let (started, burst_sent) = (Arc::default(), Arc::<AtomicBool>::default());
    let seen = Rc::new(RefCell::new(Vec::new()));
    let busy = reactor.add_handler(Busy {
        started: Arc::clone(&started),
        burst_sent: burst_sent.clone(),
        seen: seen.clone(),
    });
    let remote = reactor.remote().unwrap();

    // Event 0 keeps the reactor thread busy while events 1..=BURST are pushed.
    let pusher = {
        let (remote, started, burst_sent) = (remote.clone(), started.clone(), burst_sent.clone());
        thread::spawn(move || {
            remote.push_event(busy, 0u32).unwrap();
            let start = Instant::now();
            while !started.load(Ordering::SeqCst) {
                assert!(start.elapsed() < DEADLINE, "the reactor never took event 0");
                thread::yield_now();
            }
            let before = remote.wakeups();
            for n in 1..=BURST {
                remote.push_event(busy, n).unwrap();
            }
            let during = remote.wakeups() - before;
            burst_sent.store(true, Ordering::SeqCst);
            during
        })
    };
    // Turns counted from the one that took event 0 (earlier ones only waited for it).
    let mut turns = 0;
    run_until(&mut reactor, "the whole burst", |_| {
        let seen = seen.borrow();
        if !seen.is_empty() {
            turns += 1;
        }
        seen.len() == BURST as usize + 1
    });
    let wakeups_during_burst = pusher.join().unwrap();
    assert_eq!(
        wakeups_during_burst, 0,
        "the reactor was awake (in a callback) the whole time: nobody had to wake it"
    );
    assert!(
        turns <= 10,
        "{turns} turns for {BURST} events pushed while the reactor was busy"
    );
    assert!(
        seen.borrow().iter().copied().eq(0..=BURST),
        "all delivered, once, in order"
    );

    // The reactor is idle now, and one more event still wakes it: a single wait delivers it.
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    let before_late = remote.wakeups();
    let late = {
        let remote = remote.clone();
        thread::spawn(move || remote.push_event(busy, BURST + 1).unwrap())
    };
    reactor.run_once(Some(DEADLINE)).unwrap();
    late.join().unwrap();
    assert_eq!(
        seen.borrow().last(),
        Some(&(BURST + 1)),
        "woken by one event"
    );
    // One write if the event came while the reactor was asleep; none if it came just
    // before the reactor lowered its flag, when the last look before the wait finds it.
    assert!(
        remote.wakeups() - before_late <= 1,
        "at most one eventfd write"
    );
    assert_eq!(remote.undelivered(), 0);
}
