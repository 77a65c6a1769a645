//! Busy polling (`Reactor::set_busy_poll`): after a turn with events, the next wait polls
//! without blocking for up to the window, then blocks; an idle reactor does not spin again;
//! the window never holds a due timer back.
//!
//! Spinning shows as CPU time of the test thread (`CLOCK_THREAD_CPUTIME_ID`), blocking as
//! its absence. The bounds are loose on purpose: a loaded machine gives the spinning thread
//! less CPU than wall time, never more.

mod util;

use std::cell::Cell;
use std::net::UdpSocket;
use std::rc::Rc;
use std::time::{Duration, Instant};

use eventmux::{Address, Context, Handler, Options, Reactor, TimerId};
use util::run_until;

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which is valid for writes.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// CPU time `f` used on this thread.
fn cpu_of<T>(f: impl FnOnce() -> T) -> Duration {
    let before = thread_cpu();
    f();
    thread_cpu() - before
}

/// Counts datagrams and timer firings.
#[derive(Default)]
struct Counter {
    datagrams: Rc<Cell<usize>>,
    timers: Rc<Cell<usize>>,
}

impl Handler for Counter {
    fn on_datagram(&mut self, _: &mut Context<'_>, _: &[u8], _: &Address) {
        self.datagrams.set(self.datagrams.get() + 1);
    }

    fn on_timer(&mut self, _: &mut Context<'_>, _: TimerId) {
        self.timers.set(self.timers.get() + 1);
    }
}

/// A reactor busy-polling for `window`, with a UDP handle; returns the datagram and timer
/// counters, the handle's token and its address.
fn busy_reactor(
    window: Duration,
) -> (
    Reactor,
    Rc<Cell<usize>>,
    Rc<Cell<usize>>,
    eventmux::Token,
    std::net::SocketAddr,
) {
    let mut reactor = Reactor::new().unwrap();
    reactor.set_busy_poll(window);
    let counter = Counter::default();
    let (datagrams, timers) = (counter.datagrams.clone(), counter.timers.clone());
    let token = reactor
        .bind("udp://127.0.0.1:0", Options::new(), counter)
        .unwrap();
    let addr = reactor.handle(token).unwrap().local_addr().unwrap();
    (reactor, datagrams, timers, token, addr)
}

#[test]
fn the_wait_after_a_busy_turn_spins_and_an_idle_reactor_blocks() {
    let window = Duration::from_millis(200);
    let (mut reactor, datagrams, _, _, addr) = busy_reactor(window);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();

    // Nothing has happened yet: the first wait blocks.
    let idle = cpu_of(|| reactor.run_once(Some(Duration::from_millis(300))).unwrap());
    assert!(
        idle < Duration::from_millis(50),
        "an idle wait used {idle:?} of CPU"
    );

    sender.send_to(b"x", addr).unwrap();
    run_until(&mut reactor, "the datagram", |_| datagrams.get() == 1);

    // The turn had events: the next wait spins through the window (then blocks the rest).
    let spun = cpu_of(|| reactor.run_once(Some(Duration::from_millis(400))).unwrap());
    assert!(
        spun >= Duration::from_millis(20),
        "the wait after a busy turn used only {spun:?} of CPU; it should have polled"
    );
    // That wait found nothing: the reactor is idle and blocks again.
    let idle = cpu_of(|| reactor.run_once(Some(Duration::from_millis(300))).unwrap());
    assert!(
        idle < Duration::from_millis(50),
        "an idle wait used {idle:?} of CPU"
    );

    // A datagram sent while the reactor spins is taken within the same call.
    sender.send_to(b"x", addr).unwrap();
    run_until(&mut reactor, "the second datagram", |_| {
        datagrams.get() == 2
    });
    let later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        sender.send_to(b"x", addr).unwrap();
    });
    while datagrams.get() < 3 {
        reactor.run_once(Some(Duration::from_secs(5))).unwrap();
    }
    later.join().unwrap();
}

#[test]
fn a_long_window_does_not_hold_a_due_timer_back() {
    let (mut reactor, datagrams, timers, token, addr) = busy_reactor(Duration::from_secs(30));
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"x", addr)
        .unwrap();
    run_until(&mut reactor, "the datagram", |_| datagrams.get() == 1);

    reactor
        .handle(token)
        .unwrap()
        .set_timer(Duration::from_millis(20))
        .unwrap();
    let start = Instant::now();
    // No timeout of its own: the wait is bounded by the timer, spin included.
    reactor.run_once(None).unwrap();
    if timers.get() == 0 {
        // The timer came due exactly as the wait ended; the next turn fires it.
        reactor.run_once(Some(Duration::ZERO)).unwrap();
    }
    assert_eq!(timers.get(), 1);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the turn ran {:?}: the 30 s window held the timer back",
        start.elapsed()
    );
}
