//! Deadlines per handle: each fires with its own typed reason, does not fire while traffic
//! flows, and is reset by activity (record, idle, send, connect). The handler hears which
//! one fired in `on_error` and can still answer there before the close. `.ci/run` runs
//! them on every backend.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use eventmux::framing::Framing;
use eventmux::{Deadline, Error, Options, Reactor};
use util::peer::Peer;
use util::probe::{events, serve, Probe};
use util::{run_until, settle, Log};

const SHORT: Duration = Duration::from_millis(300);

/// Runs the reactor for `time`, calling `step` every turn.
fn run_for(reactor: &mut Reactor, time: Duration, mut step: impl FnMut()) {
    let start = Instant::now();
    while start.elapsed() < time {
        reactor.run_once(Some(Duration::from_millis(10))).unwrap();
        step();
    }
}

fn framed_server(reactor: &mut Reactor, log: &Log, options: Options) -> std::net::SocketAddr {
    let l = log.clone();
    serve(
        reactor,
        options.framing(Framing::lines()),
        log,
        move |_, _| {
            Probe::new("srv", &l)
                .framed()
                .on_error(|ctx, error| {
                    if let Error::Timeout(Deadline::Record) = error {
                        let _ = ctx.send(b"408 too slow\n");
                    }
                })
                .boxed()
        },
    )
}

#[test]
fn a_record_that_does_not_arrive_in_time_is_answered_then_closed() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = framed_server(
        &mut reactor,
        &log,
        Options::new().record_timeout(Some(SHORT)),
    );
    let mut client = Peer::connect(addr);
    client.send(b"GET / HTT"); // and never the end of the line
    let start = Instant::now();
    run_until(&mut reactor, "the close", |_| {
        client.pump();
        log.count_prefix("srv:close:") > 0
    });
    assert!(start.elapsed() >= SHORT, "not before the deadline");
    run_until(&mut reactor, "the client's end", |_| client.pump());
    assert_eq!(
        client.received, b"408 too slow\n",
        "the answer from on_error arrives"
    );
    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect",
            "srv:error:Timeout(Record)",
            "srv:read_last:GET / HTT",
            "srv:closing:0",
            "srv:close:Timeout(Record)"
        ]
    );
}

#[test]
fn records_that_keep_completing_never_time_out_and_each_starts_its_own_clock() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = framed_server(
        &mut reactor,
        &log,
        Options::new().record_timeout(Some(SHORT)),
    );
    let mut client = Peer::connect(addr);
    // Each record takes a sixth of the deadline to complete (a margin against a busy
    // machine pausing the test); together they take ten times the deadline.
    let mut sent = 0;
    let start = Instant::now();
    let mut next = Instant::now();
    run_for(&mut reactor, SHORT * 10, || {
        client.pump();
        if Instant::now() >= next {
            client.send(if sent % 2 == 0 { b"half" } else { b"-line\n" });
            sent += 1;
            next += SHORT / 6;
        }
    });
    assert!(start.elapsed() >= SHORT * 10);
    assert_eq!(log.count_prefix("srv:close:"), 0, "{:?}", log.entries());
    assert!(log.count("srv:read:half-line") >= 10, "{:?}", log.entries());
}

#[test]
fn a_silent_connection_is_closed_when_idle_and_not_while_it_talks() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let options = Options::new().idle_timeout(Some(SHORT));
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l).echo().boxed()
    });
    let mut client = Peer::connect(addr);
    let mut next = Instant::now();
    run_for(&mut reactor, SHORT * 5, || {
        client.pump();
        if Instant::now() >= next {
            client.send(b"ping");
            next += SHORT / 6;
        }
    });
    assert_eq!(log.count_prefix("srv:close:"), 0, "talking keeps it open");

    let quiet_since = Instant::now();
    run_until(&mut reactor, "the idle close", |_| {
        client.pump();
        log.count_prefix("srv:close:") > 0
    });
    assert!(
        quiet_since.elapsed() >= SHORT * 9 / 10,
        "counted from the last byte"
    );
    assert!(log.contains("srv:error:Timeout(Idle)"));
    assert!(log.contains("srv:close:Timeout(Idle)"));
}

#[test]
fn a_peer_that_stops_reading_is_cut_off_after_the_send_deadline() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let options = Options::new().send_timeout(Some(SHORT));
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l)
            .on_read(|ctx, _| {
                // Far more than the socket buffers hold.
                ctx.send(&vec![7u8; 8 << 20]).unwrap();
            })
            .boxed()
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"go").unwrap(); // then never reads
    let start = Instant::now();
    run_until(&mut reactor, "the send deadline", |_| {
        log.count_prefix("srv:close:") > 0
    });
    assert!(start.elapsed() >= SHORT);
    assert!(
        log.contains("srv:error:Timeout(Send)"),
        "{:?}",
        log.entries()
    );
    assert!(log.contains("srv:close:Timeout(Send)"));
    let closing = log.first_with_prefix("srv:closing:").unwrap();
    assert_ne!(
        closing, "srv:closing:0",
        "the unsent rest is reported missing"
    );
}

#[test]
fn a_slow_reader_that_keeps_taking_output_is_not_cut_off() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let total = 4 << 20;
    let options = Options::new().send_timeout(Some(SHORT));
    let addr = serve(&mut reactor, options, &log, move |_, _| {
        Probe::new("srv", &l)
            .on_read(move |ctx, _| ctx.send(&vec![7u8; total]).unwrap())
            .boxed()
    });
    let reader = thread::spawn(move || {
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"go").unwrap();
        let mut got = 0;
        let mut buf = vec![0; 256 * 1024];
        // Reads in bursts with pauses shorter than the deadline: it takes several
        // deadlines in all.
        while got < total {
            got += client.read(&mut buf).unwrap();
            thread::sleep(SHORT / 4);
        }
        got
    });
    run_until(&mut reactor, "the slow reader", |_| reader.is_finished());
    assert_eq!(reader.join().unwrap(), total);
    settle(&mut reactor);
    assert!(
        !log.contains("srv:error:Timeout(Send)"),
        "{:?}",
        log.entries()
    );
}

#[test]
fn a_connect_that_does_not_complete_in_time_fails_with_the_connect_deadline() {
    use socket2::{Domain, Socket, Type};
    // A listener whose accept queue is full drops further SYNs: connects to it hang.
    let full = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    full.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    full.listen(0).unwrap();
    let addr = full.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        filler.set_nonblocking(true).unwrap();
        let _ = filler.connect(&addr.into());
        fillers.push(filler);
    }
    thread::sleep(Duration::from_millis(100)); // let the handshakes that can complete do so

    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let options = Options::new().connect_timeout(Some(SHORT));
    let start = Instant::now();
    reactor
        .connect_with(addr, options, Probe::new("cli", &log))
        .unwrap();
    run_until(&mut reactor, "the connect deadline", |_| {
        log.count_prefix("cli:close:") > 0
    });
    assert!(start.elapsed() >= SHORT);
    assert_eq!(
        events(&log, "cli"),
        [
            "cli:error:Timeout(Connect)",
            "cli:closing:0",
            "cli:close:Timeout(Connect)"
        ]
    );
}

#[test]
fn a_connect_that_completes_is_not_timed_out_later() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let addr = serve(&mut reactor, Options::new(), &log, move |_, _| {
        Probe::new("srv", &l).boxed()
    });
    let options = Options::new().connect_timeout(Some(SHORT));
    reactor
        .connect_with(addr, options, Probe::new("cli", &log))
        .unwrap();
    run_for(&mut reactor, SHORT * 3, || {});
    assert!(log.contains("cli:connect"));
    assert_eq!(log.count_prefix("cli:close:"), 0, "{:?}", log.entries());
}

#[test]
fn the_defaults_bound_records_sends_and_connects_but_not_silence() {
    let defaults = format!("{:?}", Options::new());
    assert!(defaults.contains("record_timeout: Some(60s)"), "{defaults}");
    assert!(defaults.contains("send_timeout: Some(60s)"), "{defaults}");
    assert!(
        defaults.contains("connect_timeout: Some(30s)"),
        "{defaults}"
    );
    assert!(defaults.contains("idle_timeout: None"), "{defaults}");
}
