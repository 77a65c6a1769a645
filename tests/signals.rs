//! Signals as events: `Reactor::signals` blocks them and delivers each to `on_signal` once,
//! with what the kernel recorded. The signals are sent to the test's own thread
//! (`pthread_kill`), which has them blocked, so no other thread of the test binary can get
//! them. `.ci/run` runs them on every backend.

mod util;

use std::cell::RefCell;
use std::rc::Rc;

use eventmux::{Context, Handler, Kind, Reactor, Signal};
use util::{run_until, settle};

/// Keeps every signal it is given.
struct Signals(Rc<RefCell<Vec<Signal>>>);

impl Handler for Signals {
    fn on_signal(&mut self, _ctx: &mut Context<'_>, signal: &Signal) {
        self.0.borrow_mut().push(*signal);
    }
}

fn raise_in_this_thread(signal: i32) {
    // SAFETY: pthread_kill with the calling thread's own id and a valid signal number.
    let rc = unsafe { libc::pthread_kill(libc::pthread_self(), signal) };
    assert_eq!(rc, 0);
}

#[test]
fn each_signal_reaches_on_signal_once_with_its_details() {
    let mut reactor = Reactor::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let token = reactor
        .signals(&[libc::SIGUSR1, libc::SIGUSR2], Signals(got.clone()))
        .unwrap();
    assert_eq!(reactor.handle(token).unwrap().kind(), Some(Kind::Pollable));

    raise_in_this_thread(libc::SIGUSR1);
    run_until(&mut reactor, "SIGUSR1", |_| got.borrow().len() == 1);
    raise_in_this_thread(libc::SIGUSR2);
    run_until(&mut reactor, "SIGUSR2", |_| got.borrow().len() == 2);
    settle(&mut reactor);

    let got = got.borrow();
    let numbers: Vec<i32> = got.iter().map(Signal::number).collect();
    assert_eq!(
        numbers,
        [libc::SIGUSR1, libc::SIGUSR2],
        "each once, in order"
    );
    assert_eq!(
        got[0].sender_pid(),
        std::process::id(),
        "sent by this process"
    );
    assert_eq!(got[0].code(), libc::SI_TKILL);
}

#[test]
fn closing_the_signals_handle_stops_the_delivery() {
    let mut reactor = Reactor::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let token = reactor
        .signals(&[libc::SIGWINCH], Signals(got.clone()))
        .unwrap();
    reactor.handle(token).unwrap().close();
    settle(&mut reactor);
    assert!(reactor.handle(token).is_none());
    // Still blocked: raising it now leaves it pending, harmlessly, and nothing is delivered.
    raise_in_this_thread(libc::SIGWINCH);
    settle(&mut reactor);
    assert!(got.borrow().is_empty());
}
