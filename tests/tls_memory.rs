//! What a hostile TLS peer can make the server hold, measured (feature `tls`): the live heap
//! of the reactor thread, counted by a global allocator, while peers push far more than
//! any bound. Three attacks, each on several connections at once:
//!
//! - **a reader that stops**: the handler pauses reading after its first record while the
//!   peer keeps sending. What is held is the ciphertext of the read under way, kept for the
//!   resume, and rustls's own buffers; the rest waits in the kernel.
//! - **a record that never ends**: a line framing rule with a 256 KiB limit and a peer that
//!   sends megabytes without a newline. The connection is closed `InputLimit` at the
//!   limit.
//! - **a peer that never reads**: the handler keeps sending to a peer that reads nothing.
//!   The queue stops at `max_output` (1 MiB here) with `OutputLimit`; rustls holds at
//!   most its 64 KiB of records beside it. The queue's buffer, grown by doubling, may be
//!   up to twice what it holds (1.08–1.76 MB per connection measured).
//!
//! It is a test binary of its own because the allocator counts one thread and the figures
//! must not include other tests' reactors. `.ci/run` runs it with `--features tls`.
#![cfg(feature = "tls")]

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use eventmux::framing::Framing;
use eventmux::tls::rustls;
use eventmux::{CloseReason, Context, Error, Handler, Incoming, Options, Reactor, TimerId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use util::run_until;

/// Bytes allocated and not yet freed by threads that opted in, and the most there were.
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted (the reactor thread's only).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

fn add(bytes: isize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// The system allocator, counting the reactor thread's live bytes.
struct Counting;

// SAFETY: every call is passed unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counting beside it touches only atomics and a const-initialised
// thread-local without a destructor, so it never allocates or unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && counted() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && counted() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        if counted() {
            add(-(layout.size() as isize));
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && counted() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Connections per attack.
const PEERS: usize = 16;
/// What each peer tries to push.
const FLOOD: usize = 8 << 20;
const KIB: isize = 1024;

fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
    (made.cert.der().clone(), key)
}

fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let (cert, key) = certificate();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// What the server's handlers saw, shared with the test body.
#[derive(Default)]
struct Seen {
    reads: usize,
    errors: Vec<String>,
    closes: Vec<CloseReason>,
}

type Shared = Rc<RefCell<Seen>>;

#[derive(Clone, Copy)]
enum Attack {
    StopsReading,
    EndlessRecord,
    NeverReads,
}

/// The server side of each attack.
struct Target {
    attack: Attack,
    seen: Shared,
}

impl Handler for Target {
    fn on_read(&mut self, ctx: &mut Context<'_>, _: &[u8]) {
        self.seen.borrow_mut().reads += 1;
        match self.attack {
            Attack::StopsReading => ctx.pause_reading().unwrap(),
            Attack::NeverReads => {
                ctx.set_interval(Duration::from_millis(2)).unwrap();
            }
            Attack::EndlessRecord => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
        let _ = ctx.send(&[7u8; 64 * 1024]);
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        let kind = match error {
            Error::InputLimit { .. } => "InputLimit".to_string(),
            Error::OutputLimit { .. } => "OutputLimit".to_string(),
            other => other.to_string(),
        };
        self.seen.borrow_mut().errors.push(kind);
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().closes.push(reason);
    }
}

struct Listener(Attack, Shared);

impl Handler for Listener {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Target {
            attack: self.0,
            seen: self.1.clone(),
        }))
    }
}

/// A peer: the handshake, a first line, then `FLOOD` bytes without a newline until the
/// server stops taking them (a write blocks for a second) or closes. Returns what it
/// pushed. With `flood` false it sends the line only and then neither reads nor writes.
fn peer(addr: SocketAddr, config: Arc<rustls::ClientConfig>, flood: bool) -> usize {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"hello\n").unwrap();
    tls.flush().unwrap();
    let mut pushed = 0;
    if flood {
        let chunk = [b'x'; 16 * 1024];
        while pushed < FLOOD && tls.write_all(&chunk).is_ok() {
            pushed += chunk.len();
        }
    } else {
        thread::sleep(Duration::from_secs(3));
    }
    pushed
}

/// Runs one attack on `PEERS` connections; returns the peak of the reactor thread's live
/// heap during it, above where it started, per connection, and what each peer pushed.
fn attack(attack: Attack, options: Options, client: &Arc<rustls::ClientConfig>) -> (isize, usize) {
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let listener = reactor
        .listen_with("127.0.0.1:0", options, Listener(attack, seen.clone()))
        .unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let flood = !matches!(attack, Attack::NeverReads);
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let peers: Vec<_> = (0..PEERS)
        .map(|_| {
            let config = client.clone();
            thread::spawn(move || peer(addr, config, flood))
        })
        .collect();
    match attack {
        // The peers stop when the server stops taking bytes.
        Attack::StopsReading => run_until(&mut reactor, "every peer stalled", |_| {
            peers.iter().all(|p| p.is_finished())
        }),
        // The server closes each connection at its bound.
        Attack::EndlessRecord | Attack::NeverReads => {
            run_until(&mut reactor, "every connection closed at its bound", |_| {
                seen.borrow().closes.len() == PEERS
            })
        }
    }
    let peak = PEAK.load(Ordering::Relaxed) - start;
    let pushed = peers.into_iter().map(|p| p.join().unwrap()).min().unwrap();
    let seen = seen.borrow();
    assert!(seen.reads >= PEERS, "every connection got its first line");
    match attack {
        Attack::StopsReading => assert!(seen.closes.is_empty(), "{:?}", seen.closes),
        Attack::EndlessRecord => assert_eq!(seen.errors, vec!["InputLimit"; PEERS]),
        Attack::NeverReads => assert_eq!(seen.errors, vec!["OutputLimit"; PEERS]),
    }
    (peak / PEERS as isize, pushed)
}

#[test]
fn what_a_hostile_tls_peer_makes_the_server_hold_is_bounded_by_the_plain_options() {
    COUNTED.with(|c| c.set(true));
    let (server, client) = configs();
    // A TLS record carries at most 16 KiB of plaintext; rustls keeps up to 64 KiB of
    // records to send, and a session is a few KiB. Slack covers the slot, timers, and
    // buffers growing in powers of two.
    let record = 16 * KIB;
    let rustls_output = 64 * KIB;
    let session = 16 * KIB;

    let read_size = eventmux::DEFAULT_READ_SIZE as isize;
    let (held, pushed) = attack(
        Attack::StopsReading,
        Options::new().tls(server.clone()),
        &client,
    );
    let bound = read_size + 3 * record + session + 32 * KIB;
    eprintln!("a reader that stops: {held} B held per connection (bound {bound}), {pushed} B pushed by the least");
    assert!(held <= bound, "{held} > {bound}");
    assert!(
        pushed as isize >= 4 * bound,
        "the peers pushed past the bound: {pushed}"
    );

    let max_size = 256 * KIB;
    let (held, pushed) = attack(
        Attack::EndlessRecord,
        Options::new()
            .tls(server.clone())
            .framing(Framing::lines())
            .max_size(max_size as usize),
        &client,
    );
    let bound = 2 * max_size + read_size + 3 * record + session;
    eprintln!("a record that never ends: {held} B held per connection (bound {bound}), {pushed} B pushed by the least");
    assert!(held <= bound, "{held} > {bound}");
    assert!(
        pushed as isize >= 2 * bound,
        "the peers pushed past the bound: {pushed}"
    );

    let max_output = 1024 * KIB;
    let (held, _) = attack(
        Attack::NeverReads,
        Options::new().tls(server).max_output(max_output as usize),
        &client,
    );
    // The queue's buffer grows by doubling, so up to twice what it holds (as the input
    // buffer above); the bound is max_output's, not the peer's.
    let bound = 2 * max_output + rustls_output + 2 * record + session + 64 * KIB;
    eprintln!("a peer that never reads: {held} B held per connection (bound {bound})");
    assert!(held <= bound, "{held} > {bound}");
}
