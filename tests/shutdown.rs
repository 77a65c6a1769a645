//! Graceful shutdown: listeners close at once, every other handle hears `on_shutdown` (by
//! default a graceful close that flushes), `run()` returns once nothing is left to drain,
//! and what is still open when the grace time ends is killed with `CloseReason::Shutdown`.
//! `.ci/run` runs them on every backend.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use eventmux::{Context, Options, Reactor};
use util::probe::{serve, Probe};
use util::{run_until, Log, DEADLINE};

const CONNECTIONS: usize = 200;
const REPLY: usize = 256 * 1024;

#[test]
fn a_shutdown_delivers_every_queued_byte_before_run_returns() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l)
            .on_read(|ctx, _| ctx.send(&vec![9u8; REPLY]).unwrap())
            .boxed()
    });
    let (go, start_reading) = std::sync::mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        for stream in &mut streams {
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            stream.write_all(b"go").unwrap();
        }
        // Read nothing until told the server has begun its shutdown: the replies are
        // still queued then.
        start_reading.recv().unwrap();
        streams
            .iter_mut()
            .map(|stream| {
                let mut got = Vec::new();
                stream.read_to_end(&mut got).expect("a clean end of stream");
                got.len()
            })
            .collect::<Vec<usize>>()
    });
    run_until(&mut reactor, "every request", |_| {
        log.count("srv:read") == CONNECTIONS
    });
    reactor.shutdown(Duration::from_secs(60));
    go.send(()).unwrap();
    reactor.run().unwrap();
    assert!(
        reactor.is_empty(),
        "run() returned once everything was drained"
    );
    let got = client.join().unwrap();
    assert!(got.iter().all(|&n| n == REPLY), "every queued byte arrived");
    assert_eq!(
        log.count("srv:close:Closed"),
        CONNECTIONS,
        "{:?}",
        log.entries()
    );
    assert!(
        log.contains("lst:close:Shutdown"),
        "the listener closed at once"
    );
}

#[test]
fn after_the_start_of_a_shutdown_new_connections_are_refused() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l).boxed()
    });
    let _open = TcpStream::connect(addr).unwrap();
    run_until(&mut reactor, "the accept", |_| log.contains("srv:connect"));
    reactor.shutdown(Duration::from_secs(60));
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn what_is_still_open_when_the_grace_time_ends_is_killed_with_shutdown() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l)
            .on_read(|ctx, _| ctx.send(&vec![1u8; 8 << 20]).unwrap())
            .boxed()
    });
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"go").unwrap(); // then never reads
    run_until(&mut reactor, "the request", |_| log.contains("srv:read"));
    reactor.shutdown(Duration::from_millis(300));
    reactor.run().unwrap();
    assert!(log.contains("srv:close:Shutdown"), "{:?}", log.entries());
    let closing = log.first_with_prefix("srv:closing:").unwrap();
    assert_ne!(
        closing, "srv:closing:0",
        "what was never written is reported missing"
    );
}

#[test]
fn on_shutdown_can_say_goodbye_before_the_close() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();

    struct Polite;
    impl eventmux::Handler for Polite {
        fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
            let _ = ctx.send(b"bye\n");
            ctx.close();
        }
    }
    let addr = serve(&mut reactor, Options::new(), &log, |_, _| {
        Some(Box::new(Polite))
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    run_until(&mut reactor, "the accept", |reactor| reactor.len() == 2);
    reactor.shutdown(Duration::from_secs(60));
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        got
    });
    reactor.run().unwrap();
    assert_eq!(reader.join().unwrap(), b"bye\n");
}

/// Drains the reactor on SIGTERM.
struct Terminator;

impl eventmux::Handler for Terminator {
    fn on_signal(&mut self, ctx: &mut Context<'_>, signal: &eventmux::Signal) {
        assert_eq!(signal.number(), libc::SIGTERM);
        ctx.shutdown(Duration::from_secs(60));
    }

    /// Stays through the drain (as a server's signal handle does, for a second signal).
    fn on_shutdown(&mut self, _ctx: &mut Context<'_>) {}
}

#[test]
fn sigterm_during_a_thousand_connections_with_queued_output_delivers_every_byte() {
    const CONNECTIONS: usize = 1000;
    const REPLY: usize = 64 * 1024;
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    // The client reads the connections one after another: on a slow machine the last
    // waits longer than the default 10 s linger, which is not what this test is about.
    let options = Options::new().linger(Duration::from_secs(120));
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l)
            .on_connect(|ctx| {
                // Small kernel buffers, so most of each reply waits in the reactor's queue.
                socket2::SockRef::from(&*ctx)
                    .set_send_buffer_size(4096)
                    .unwrap();
            })
            .on_read(|ctx, _| {
                let reply: Vec<u8> = (0..REPLY).map(|i| (i % 251) as u8).collect();
                ctx.send(&reply).unwrap()
            })
            .boxed()
    });
    reactor.signals(&[libc::SIGTERM], Terminator).unwrap();
    let (go, start_reading) = std::sync::mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                        .unwrap();
                socket.set_recv_buffer_size(4096).unwrap();
                socket.connect(&addr.into()).unwrap();
                TcpStream::from(socket)
            })
            .collect();
        for stream in &mut streams {
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            stream.write_all(b"go").unwrap();
        }
        start_reading.recv().unwrap();
        streams
            .iter_mut()
            .map(|stream| {
                let mut got = Vec::new();
                stream.read_to_end(&mut got).expect("a clean end of stream");
                got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8) && got.len() == REPLY
            })
            .filter(|&whole| whole)
            .count()
    });
    run_until(&mut reactor, "every request", |_| {
        log.count("srv:read") == CONNECTIONS
    });
    let queued: usize = reactor
        .tokens()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|t| reactor.handle(t).map(|h| h.buflen()))
        .sum();
    assert!(
        queued > CONNECTIONS * REPLY / 2,
        "most replies wait in the reactor ({queued} bytes)"
    );
    // SIGTERM to this thread, which `signals` made block it: the signalfd takes it.
    // SAFETY: pthread_kill with the calling thread's own id and a valid signal number.
    assert_eq!(
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGTERM) },
        0
    );
    run_until(&mut reactor, "the listener closed by the shutdown", |_| {
        log.contains("lst:close:Shutdown")
    });
    go.send(()).unwrap();
    // The signal handle stays open through the drain; run() returns once the
    // connections are done, and kills it then.
    reactor.run().unwrap();
    assert!(reactor.is_empty());
    assert_eq!(
        client.join().unwrap(),
        CONNECTIONS,
        "every queued byte arrived"
    );
    assert_eq!(log.count("srv:close:Closed"), CONNECTIONS);
}
