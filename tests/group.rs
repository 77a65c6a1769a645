//! A reactor per core (`ReactorGroup`): both ways of spreading connections serve on every
//! worker, the acceptor keeps them even, stopping closes every connection once and joins
//! every thread, churn leaks no descriptor, and a panic stays in its reactor. The tests of
//! this file run one at a time (`serial`), so that the descriptor count sees one test's.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use eventmux::{CloseReason, Context, Handler, Options, PanicPolicy, ReactorGroup, Spread};

/// One test at a time: descriptors are process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which worker thread served how many connections, and how many closed.
#[derive(Default)]
struct Tally {
    served: Mutex<HashMap<String, usize>>,
    closed: AtomicUsize,
}

impl Tally {
    fn count_here(&self) {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        *self.served.lock().unwrap().entry(name).or_default() += 1;
    }

    fn per_worker(&self) -> HashMap<String, usize> {
        self.served.lock().unwrap().clone()
    }
}

/// Echoes; panics on `boom`; counts its close.
struct Echo {
    tally: Arc<Tally>,
}

impl Handler for Echo {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        if data.starts_with(b"boom") {
            panic!("the handler asked to panic");
        }
        let _ = ctx.send(data);
    }

    fn on_close(&mut self, _: &mut Context<'_>, _: CloseReason) {
        self.tally.closed.fetch_add(1, Ordering::SeqCst);
    }
}

fn group(threads: usize, spread: Spread, tally: &Arc<Tally>) -> ReactorGroup {
    let tally = tally.clone();
    ReactorGroup::builder(threads)
        .listen("127.0.0.1:0", spread, Options::new, move |_| {
            tally.count_here();
            Some(Box::new(Echo {
                tally: tally.clone(),
            }))
        })
        .start(|_, _| Ok(()))
        .unwrap()
}

fn round_trip(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).unwrap();
    let mut got = vec![0u8; message.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, message);
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn kernel_balancing_serves_connections_on_every_worker() {
    let _serial = serial();
    let tally = Arc::new(Tally::default());
    let group = group(4, Spread::Kernel, &tally);
    let addr = group.local_addr(0);
    // 400 connections from 400 source ports: the kernel's hash spreads them.
    let mut streams: Vec<TcpStream> = (0..400).map(|_| connect(addr)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        round_trip(stream, format!("hello {i}").as_bytes());
    }
    let served = tally.per_worker();
    assert_eq!(served.values().sum::<usize>(), 400);
    assert_eq!(served.len(), 4, "every worker served some: {served:?}");
    drop(streams);
    group.shutdown(Duration::from_secs(10));
    group.join().unwrap();
}

#[test]
fn the_acceptor_keeps_the_workers_within_ten_percent_of_even() {
    let _serial = serial();
    let tally = Arc::new(Tally::default());
    let group = group(4, Spread::FewestConnections, &tally);
    let addr = group.local_addr(0);
    let mut streams: Vec<TcpStream> = (0..400).map(|_| connect(addr)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        round_trip(stream, format!("hello {i}").as_bytes());
    }
    let served = tally.per_worker();
    assert_eq!(served.len(), 4, "{served:?}");
    for (worker, &n) in &served {
        assert!(
            (90..=110).contains(&n),
            "{worker} has {n} of 400: {served:?}"
        );
    }
    let open: Vec<usize> = (0..4).map(|w| group.connections(w)).collect();
    assert_eq!(open.iter().sum::<usize>(), 400, "{open:?}");
    drop(streams);
    wait_for("every connection closed", || {
        (0..4).all(|w| group.connections(w) == 0)
    });
    group.stop();
    group.join().unwrap();
}

#[test]
fn stopping_the_group_closes_every_connection_once_and_joins_every_thread() {
    let _serial = serial();
    for spread in [Spread::Kernel, Spread::FewestConnections] {
        let tally = Arc::new(Tally::default());
        let group = group(4, spread, &tally);
        let addr = group.local_addr(0);
        let mut streams: Vec<TcpStream> = (0..100).map(|_| connect(addr)).collect();
        for stream in &mut streams {
            round_trip(stream, b"hi");
        }
        group.stop();
        group.join().unwrap(); // every thread ended
        assert_eq!(
            tally.closed.load(Ordering::SeqCst),
            100,
            "{spread:?}: each connection's on_close exactly once"
        );
        for stream in &mut streams {
            let mut rest = Vec::new();
            // The server side is gone: end of stream (or a reset, if it closed unread).
            let _ = stream.read_to_end(&mut rest);
            assert!(rest.is_empty());
        }
    }
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_connections_churned_across_the_group_leak_no_descriptor() {
    let _serial = serial();
    let before = open_descriptors();
    let tally = Arc::new(Tally::default());
    let group = group(4, Spread::FewestConnections, &tally);
    let kernel_tally = Arc::new(Tally::default());
    let kernel = self::group(2, Spread::Kernel, &kernel_tally);
    let (addr, kernel_addr) = (group.local_addr(0), kernel.local_addr(0));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                for i in 0..2_500 {
                    let to = if i % 2 == 0 { addr } else { kernel_addr };
                    let mut stream = connect(to);
                    round_trip(&mut stream, format!("{c}:{i}").as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    wait_for("every connection closed", || {
        tally.closed.load(Ordering::SeqCst) == 5_000
            && kernel_tally.closed.load(Ordering::SeqCst) == 5_000
    });
    group.stop();
    group.join().unwrap();
    kernel.stop();
    kernel.join().unwrap();
    assert_eq!(open_descriptors(), before, "descriptors leaked");
}

#[test]
fn a_panic_in_one_workers_handler_touches_no_other_connection() {
    let _serial = serial();
    let tally = Arc::new(Tally::default());
    let group = group(4, Spread::FewestConnections, &tally);
    let addr = group.local_addr(0);
    let mut streams: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    for stream in &mut streams {
        round_trip(stream, b"before");
    }
    // The default policy: the panicking handle is killed, its reactor goes on.
    streams[0].write_all(b"boom").unwrap();
    let mut rest = Vec::new();
    let _ = streams[0].read_to_end(&mut rest);
    for stream in &mut streams[1..] {
        round_trip(stream, b"after");
    }
    // The worker that served the panicking connection still accepts.
    let mut more: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    for stream in &mut more {
        round_trip(stream, b"new");
    }
    group.stop();
    group.join().unwrap();
}

#[test]
fn under_propagate_a_panic_ends_its_reactor_only_and_join_reports_it() {
    let _serial = serial();
    let tally = Arc::new(Tally::default());
    let t = tally.clone();
    let group = ReactorGroup::builder(2)
        .panic_policy(PanicPolicy::Propagate)
        .listen(
            "127.0.0.1:0",
            Spread::FewestConnections,
            Options::new,
            move |_| Some(Box::new(Echo { tally: t.clone() })),
        )
        .start(|_, _| Ok(()))
        .unwrap();
    let addr = group.local_addr(0);
    let mut a = connect(addr);
    let mut b = connect(addr);
    round_trip(&mut a, b"x");
    round_trip(&mut b, b"y");
    a.write_all(b"boom").unwrap();
    let mut rest = Vec::new();
    let _ = a.read_to_end(&mut rest); // its reactor is gone
    round_trip(&mut b, b"still here");
    group.stop();
    let error = group.join().unwrap_err();
    assert!(error.to_string().contains("panicked"), "{error}");
}

#[test]
fn a_setup_that_fails_stops_the_group_and_returns_its_error() {
    let _serial = serial();
    let result = ReactorGroup::builder(3).start(|_, index| {
        if index == 2 {
            Err(std::io::Error::other("worker 2 cannot start"))
        } else {
            Ok(())
        }
    });
    assert_eq!(result.unwrap_err().to_string(), "worker 2 cannot start");
}

#[test]
fn each_worker_is_set_up_on_its_own_thread_and_can_be_reached_by_its_remote() {
    let _serial = serial();
    let group = ReactorGroup::builder(3)
        .pin(true)
        .start(|reactor, index| {
            assert_eq!(
                std::thread::current().name(),
                Some(format!("eventmux-worker-{index}").as_str())
            );
            reactor.add_handler(Echo {
                tally: Arc::new(Tally::default()),
            });
            Ok(())
        })
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for worker in 0..group.len() {
        let tx = tx.clone();
        group
            .remote(worker)
            .run(move |ctx| {
                let name = std::thread::current().name().unwrap().to_string();
                tx.send((name, ctx.tokens().count())).unwrap();
            })
            .unwrap();
    }
    let mut got: Vec<(String, usize)> = (0..3).map(|_| rx.recv().unwrap()).collect();
    got.sort();
    // The handler the setup added, and the group's own anchor of each worker.
    assert_eq!(
        got,
        (0..3)
            .map(|i| (format!("eventmux-worker-{i}"), 2))
            .collect::<Vec<_>>()
    );
    group.stop();
    group.join().unwrap();
}
