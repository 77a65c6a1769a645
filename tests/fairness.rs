//! Fairness between handles: a peer that floods cannot starve a peer doing round trips
//! (reads are budgeted per handle per turn), and a handle that pauses reading leaves the
//! others served.

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use eventmux::{Context, Handler, Incoming, Options, Reactor, Token};
use util::{listen_local, run_until, Log, DEADLINE};

/// Round trips the interactive client makes.
const ROUNDS: usize = 200;
const PING: &[u8] = b"ping\n";

/// What the server saw, shared with the test body.
#[derive(Default)]
struct Stats {
    /// Bytes read from the bulk connection (the flooding or the paused one).
    bulk_bytes: usize,
    /// Bulk bytes read when the bulk handler paused itself.
    bulk_bytes_at_pause: Option<usize>,
    bulk_token: Option<Token>,
    /// Round trips echoed to the interactive connection.
    rounds: usize,
}

type Shared = Rc<RefCell<Stats>>;

/// Tells the connections apart by their first byte: `a` is bulk, anything else
/// interactive. Logs `A` or `B` for each read, in order.
struct Conn {
    log: Log,
    stats: Shared,
    bulk: Option<bool>,
    pause_bulk: bool,
}

impl Handler for Conn {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let bulk = *self.bulk.get_or_insert(data[0] == b'a');
        let mut stats = self.stats.borrow_mut();
        if bulk {
            self.log.push("A");
            stats.bulk_bytes += data.len();
            stats.bulk_token = Some(ctx.token());
            if self.pause_bulk && stats.bulk_bytes_at_pause.is_none() {
                ctx.pause_reading().unwrap();
                stats.bulk_bytes_at_pause = Some(stats.bulk_bytes);
            }
        } else {
            self.log.push("B");
            stats.rounds += data.iter().filter(|&&b| b == b'\n').count();
            ctx.send(data).unwrap();
        }
    }
}

struct Server {
    log: Log,
    stats: Shared,
    pause_bulk: bool,
}

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Conn {
            log: self.log.clone(),
            stats: self.stats.clone(),
            bulk: None,
            pause_bulk: self.pause_bulk,
        }))
    }
}

/// Writes `a`s in 64 KiB chunks until `stop` is set or `limit` bytes are written (or the
/// server goes away).
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>, limit: usize) -> JoinHandle<usize> {
    let mut stream = TcpStream::connect(addr).unwrap();
    thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < limit && !stop.load(Ordering::Relaxed) {
            let n = chunk.len().min(limit - sent);
            if stream.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
        sent
    })
}

/// Makes `rounds` blocking round trips: a line out, its echo back.
fn ping_pong(addr: SocketAddr, rounds: usize) -> JoinHandle<()> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    thread::spawn(move || {
        let mut reply = [0; PING.len()];
        for _ in 0..rounds {
            stream.write_all(PING).unwrap();
            stream.read_exact(&mut reply).unwrap();
            assert_eq!(reply, PING);
        }
    })
}

fn server(reactor: &mut Reactor, pause_bulk: bool) -> (SocketAddr, Log, Shared) {
    let log = Log::default();
    let stats = Shared::default();
    let server = Server {
        log: log.clone(),
        stats: stats.clone(),
        pause_bulk,
    };
    let options = Options::new().read_size(4096);
    let (_, addr) = listen_local(reactor, options, server);
    (addr, log, stats)
}

#[test]
fn flooding_peer_does_not_starve_round_trips() {
    let mut reactor = Reactor::new().unwrap();
    let (addr, log, stats) = server(&mut reactor, false);

    // The flood never ends by itself: B can only finish if it is served while A floods.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(addr, stop.clone(), usize::MAX);
    run_until(&mut reactor, "the flood under way", |_| {
        stats.borrow().bulk_bytes >= 1 << 20
    });
    let pinger = ping_pong(addr, ROUNDS);
    run_until(&mut reactor, "the round trips", |_| {
        stats.borrow().rounds == ROUNDS
    });
    let reads = log.entries();

    stop.store(true, Ordering::Relaxed);
    run_until(&mut reactor, "the flood stopped", |_| flooder.is_finished());
    pinger.join().unwrap();
    assert!(flooder.join().unwrap() > 1 << 20);

    let first_b = reads.iter().position(|e| e == "B").unwrap();
    let last_b = reads.iter().rposition(|e| e == "B").unwrap();
    let a_between = reads[first_b..last_b].iter().filter(|e| *e == "A").count();
    assert!(
        a_between > 0,
        "A was not read while B made its round trips ({} reads of A before B's first)",
        first_b
    );
}

#[test]
fn backlogged_peer_yields_to_another_within_a_few_reads() {
    let mut reactor = Reactor::new().unwrap();
    let (addr, log, stats) = server(&mut reactor, false);
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    a.write_all(b"a").unwrap();
    b.write_all(b"b").unwrap();
    run_until(&mut reactor, "both connections identified", |_| {
        log.contains("A") && log.contains("B")
    });

    // Megabytes wait for A in the kernel, a ping for B.
    a.set_nonblocking(true).unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut backlog = 0;
    while let Ok(n) = a.write(&chunk) {
        backlog += n;
    }
    assert!(backlog >= 256 << 10, "only {backlog} bytes buffered");
    b.write_all(PING).unwrap();
    let seen = log.entries().len();
    run_until(&mut reactor, "B's ping", |_| stats.borrow().rounds == 1);

    // A gets a bounded budget of reads per turn (a few of them, each of read_size), not
    // everything that is waiting.
    let reads = log.entries().split_off(seen);
    let a_first = reads.iter().take_while(|e| *e == "A").count();
    assert!(
        a_first <= 16,
        "B waited behind {a_first} reads of A ({backlog} bytes were waiting)"
    );
}

#[test]
fn paused_handle_does_not_block_others() {
    const BULK: usize = 8 << 20;
    let mut reactor = Reactor::new().unwrap();
    let (addr, _log, stats) = server(&mut reactor, true);

    let stop = Arc::new(AtomicBool::new(false));
    let bulk = flood(addr, stop, BULK);
    run_until(&mut reactor, "the bulk handle paused", |_| {
        stats.borrow().bulk_bytes_at_pause.is_some()
    });
    let pinger = ping_pong(addr, ROUNDS / 4);
    run_until(&mut reactor, "the round trips", |_| {
        stats.borrow().rounds == ROUNDS / 4
    });
    pinger.join().unwrap();

    let (at_pause, bulk_token) = {
        let stats = stats.borrow();
        (
            stats.bulk_bytes_at_pause.unwrap(),
            stats.bulk_token.unwrap(),
        )
    };
    assert_eq!(stats.borrow().bulk_bytes, at_pause, "read while paused");
    assert!(at_pause < BULK);

    reactor
        .handle(bulk_token)
        .unwrap()
        .resume_reading()
        .unwrap();
    run_until(&mut reactor, "the bulk data after resuming", |_| {
        stats.borrow().bulk_bytes == BULK
    });
    assert_eq!(bulk.join().unwrap(), BULK);
}
