//! Helpers shared by the integration tests: drive a reactor until something has happened
//! (with a generous deadline that only fails a hung test), record callbacks in order, and
//! open loopback listeners on port 0. Submodules: `probe`, a logging stream handler and a
//! listener that builds them; `peer`, a non-blocking TCP client pumped from the test thread.
#![allow(dead_code)] // each test file uses its own subset

pub mod peer;
pub mod probe;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eventmux::{IntoHandler, Options, Reactor, Token};

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

/// Runs turns until handler `name` has received `on_close` (logged as `name:close:...`).
pub fn run_until_closed(reactor: &mut Reactor, log: &Log, name: &str) {
    let prefix = format!("{name}:close:");
    run_until(reactor, &prefix.clone(), |_| log.count_prefix(&prefix) > 0);
}

/// Runs a few turns that wait for nothing, so that anything wrongly pending shows up.
pub fn settle(reactor: &mut Reactor) {
    for _ in 0..5 {
        reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    }
}

/// Runs the reactor until the client thread is done, and returns its result.
pub fn join_client<T>(reactor: &mut Reactor, client: JoinHandle<T>) -> T {
    run_until(reactor, "the client thread", |_| client.is_finished());
    client.join().expect("client thread panicked")
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
    /// The first entry that starts with `prefix`.
    pub fn first_with_prefix(&self, prefix: &str) -> Option<String> {
        self.0
            .borrow()
            .iter()
            .find(|e| e.starts_with(prefix))
            .cloned()
    }
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.0
            .borrow()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }
}

/// A non-blocking `std` UDP socket on loopback, read from `run_until` closures.
pub fn udp_peer() -> std::net::UdpSocket {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the peer");
    socket.set_nonblocking(true).unwrap();
    socket
}

/// Opens a listener on 127.0.0.1:0 and returns its token and the address it got.
pub fn listen_local(
    reactor: &mut Reactor,
    options: Options,
    handler: impl IntoHandler,
) -> (Token, SocketAddr) {
    let token = reactor
        .listen_with("127.0.0.1:0", options, handler)
        .expect("listen on loopback");
    let addr = reactor.handle(token).unwrap().local_addr().unwrap();
    (token, addr)
}

/// Deterministic, non-periodic bytes, so that a lost, duplicated or reordered chunk shows.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Compares big buffers without printing megabytes on failure.
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    let first_difference = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "{what}: got {} bytes, want {}; first difference at {first_difference:?}",
        got.len(),
        want.len(),
    );
}
