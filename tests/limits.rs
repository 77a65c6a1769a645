//! Connection limits on listeners: past `max_connections` a new connection gets the
//! refusal message and a clean close (never a reset, never a hang), is counted, and the
//! connections already open are unaffected; a freed place is taken by the next one.
//! `.ci/run` runs them on every backend.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use eventmux::{Options, Reactor};
use util::peer::{round_trip, Peer};
use util::probe::{serve, Probe};
use util::{join_client, run_until, Log, DEADLINE};

const REFUSAL: &[u8] = b"-ERR max number of clients reached\r\n";

/// A client in its own thread that sends a request at once (as redis-benchmark does) and
/// returns everything it reads until a clean end of stream; a reset fails it.
fn refused_client(addr: std::net::SocketAddr) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(b"PING\r\n").unwrap();
        let mut got = Vec::new();
        stream
            .read_to_end(&mut got)
            .expect("a clean end of stream, not a reset");
        got
    })
}

#[test]
fn past_the_limit_a_client_gets_the_refusal_and_a_clean_close() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let options = Options::new().max_connections(2).refusal(REFUSAL);
    let (listener, addr) = util::listen_local(
        &mut reactor,
        options,
        util::probe::Acceptor::handler("lst", &log, move |_, _| {
            Probe::new("srv", &l).echo().boxed()
        }),
    );
    let mut first = Peer::connect(addr);
    let mut second = Peer::connect(addr);
    round_trip(&mut reactor, &mut first, b"one");
    round_trip(&mut reactor, &mut second, b"two");

    let refused = join_client(&mut reactor, refused_client(addr));
    assert_eq!(refused, REFUSAL);
    let handle = reactor.handle(listener).unwrap();
    assert_eq!(handle.refused_connections(), Some(1));
    assert_eq!(handle.open_connections(), Some(2));

    // The open connections are unaffected.
    round_trip(&mut reactor, &mut first, b"still here");
    round_trip(&mut reactor, &mut second, b"me too");

    // A freed place is taken by the next connection.
    drop(first);
    run_until(&mut reactor, "the first close", |reactor| {
        reactor.handle(listener).unwrap().open_connections() == Some(1)
    });
    let mut third = Peer::connect(addr);
    round_trip(&mut reactor, &mut third, b"three");
    assert_eq!(
        reactor.handle(listener).unwrap().refused_connections(),
        Some(1)
    );
}

#[test]
fn a_flood_past_the_limit_is_refused_one_by_one_without_a_reset() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let options = Options::new().max_connections(1).refusal(REFUSAL);
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l).boxed()
    });
    let _kept = Peer::connect(addr);
    run_until(&mut reactor, "the first accept", |_| {
        log.contains("srv:connect")
    });
    let clients: Vec<_> = (0..100).map(|_| refused_client(addr)).collect();
    for client in clients {
        assert_eq!(join_client(&mut reactor, client), REFUSAL);
    }
    assert_eq!(log.count("srv:connect"), 1, "only the first was accepted");
}
