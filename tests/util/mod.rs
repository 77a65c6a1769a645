//! Helpers shared by the integration tests: drive a reactor until something has happened
//! (with a generous deadline that only fails a hung test), record callbacks in order, and
//! open loopback listeners on port 0.
#![allow(dead_code)] // each test file uses its own subset

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use eventmux::{Handler, Options, Reactor, Token};

/// How long any single wait may take before the test is declared hung.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs turns until `done` returns true; panics naming `what` if the deadline passes.
pub fn run_until(reactor: &mut Reactor, what: &str, mut done: impl FnMut(&mut Reactor) -> bool) {
    let start = Instant::now();
    while !done(reactor) {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        reactor
            .run_once(Some(Duration::from_millis(20)))
            .expect("run_once failed");
    }
}

/// An ordered log of what handlers saw, shared between handlers and the test body.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.borrow_mut().push(entry.into());
    }
    pub fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
    pub fn contains(&self, entry: &str) -> bool {
        self.0.borrow().iter().any(|e| e == entry)
    }
    pub fn count(&self, entry: &str) -> usize {
        self.0.borrow().iter().filter(|e| *e == entry).count()
    }
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.0
            .borrow()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }
}

/// Opens a listener on 127.0.0.1:0 and returns its token and the address it got.
pub fn listen_local(
    reactor: &mut Reactor,
    options: Options,
    handler: Box<dyn Handler>,
) -> (Token, SocketAddr) {
    let token = reactor
        .listen_with("127.0.0.1:0", options, handler)
        .expect("listen on loopback");
    let addr = reactor.handle(token).unwrap().local_addr().unwrap();
    (token, addr)
}
