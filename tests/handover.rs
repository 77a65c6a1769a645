//! Descriptor passing (`send_fds`, `Options::receive_fds`, `on_fds`) and the listener
//! hand-over built on it (`Reactor::offer_listeners`, `take_over`): a hand-over under a
//! steady stream of new connections refuses none and loses no byte, and the connections
//! the old server had finish there.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use eventmux::framing::Framing;
use eventmux::{Context, Handler, Options, Reactor};
use util::{run_until, Log};

/// Echoes what it reads; counts the connections it served. A shutdown (the old server's,
/// after the hand-over) lets each connection run to its natural end: an echo has no
/// goodbye to say, and its client may be mid-stream.
struct Echo {
    served: Option<Arc<AtomicUsize>>,
}

impl Handler for Echo {
    fn on_accept(
        &mut self,
        _: &mut Context<'_>,
        _: &eventmux::Incoming,
    ) -> Option<Box<dyn Handler>> {
        if let Some(served) = &self.served {
            served.fetch_add(1, Ordering::Relaxed);
        }
        Some(Box::new(Echo { served: None }))
    }

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send(data);
    }

    fn on_shutdown(&mut self, _ctx: &mut Context<'_>) {}
}

/// Logs each line and each batch of descriptors in order; adds what it receives as an
/// echoing stream.
struct Receiver {
    log: Log,
}

impl Handler for Receiver {
    fn on_read(&mut self, _: &mut Context<'_>, line: &[u8]) {
        self.log
            .push(format!("read:{}", String::from_utf8_lossy(line)));
    }

    fn on_fds(&mut self, ctx: &mut Context<'_>, fds: Vec<OwnedFd>) {
        self.log.push(format!("fds:{}", fds.len()));
        for fd in fds {
            ctx.add(fd, Options::new(), Echo { served: None }).unwrap();
        }
    }
}

fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn a_descriptor_received_over_scm_rights_can_be_added_and_used() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (sending, receiving) = UnixStream::pair().unwrap();
    let sender = reactor
        .add(sending, Options::new(), Echo { served: None })
        .unwrap();
    let options = Options::new().framing(Framing::lines()).receive_fds(true);
    reactor
        .add(receiving, options, Receiver { log: log.clone() })
        .unwrap();

    let (mut client, server_side) = connected_pair();
    let mut handle = reactor.handle(sender).unwrap();
    handle.send(b"first\n").unwrap();
    handle.send_fds(b"here\n", &[server_side.as_fd()]).unwrap();
    handle.send(b"last\n").unwrap();
    // Ours is a duplicate: closing the original leaves the passed one working.
    drop(server_side);
    run_until(&mut reactor, "the lines and the descriptor", |_| {
        log.contains("read:last")
    });
    let entries = log.entries();
    let fds = entries.iter().position(|e| e == "fds:1").unwrap();
    let here = entries.iter().position(|e| e == "read:here").unwrap();
    assert!(fds < here, "the descriptor before its bytes: {entries:?}");
    assert_eq!(entries.iter().filter(|e| e.starts_with("read:")).count(), 3);

    // The passed connection is served by this reactor now.
    client.write_all(b"ping").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut got = Vec::new();
    run_until(&mut reactor, "the echo over the passed socket", |_| {
        let mut buf = [0u8; 16];
        if let Ok(n) = client.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got == b"ping"
    });
}

#[test]
fn descriptors_sent_to_a_handle_without_receive_fds_are_closed_by_the_kernel() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (sending, receiving) = UnixStream::pair().unwrap();
    let sender = reactor
        .add(sending, Options::new(), Echo { served: None })
        .unwrap();
    reactor
        .add(
            receiving,
            Options::new().framing(Framing::lines()),
            Receiver { log: log.clone() },
        )
        .unwrap();
    let (mut client, server_side) = connected_pair();
    reactor
        .handle(sender)
        .unwrap()
        .send_fds(b"here\n", &[server_side.as_fd()])
        .unwrap();
    drop(server_side);
    run_until(&mut reactor, "the line", |_| log.contains("read:here"));
    assert!(!log.contains("fds:1"));
    // Nobody holds the server side any more: the client sees the end of stream.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(client.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn send_fds_refuses_what_cannot_carry_descriptors() {
    let mut reactor = Reactor::new().unwrap();
    let (tcp, _other) = connected_pair();
    let tcp = reactor
        .add(tcp, Options::new(), Echo { served: None })
        .unwrap();
    let (pipe_end, _) = UnixStream::pair().unwrap();
    let fd = pipe_end.as_fd();
    let error = reactor
        .handle(tcp)
        .unwrap()
        .send_fds(b"x", &[fd])
        .unwrap_err();
    assert!(
        matches!(error, eventmux::Error::WrongKind { .. }),
        "{error}"
    );
    let (unix, _peer) = UnixStream::pair().unwrap();
    let unix = reactor
        .add(unix, Options::new(), Echo { served: None })
        .unwrap();
    let error = reactor
        .handle(unix)
        .unwrap()
        .send_fds(b"", &[fd])
        .unwrap_err();
    assert!(error.to_string().contains("at least one byte"), "{error}");
}

#[test]
fn many_descriptors_queued_behind_a_backlog_all_arrive_in_order() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (sending, receiving) = UnixStream::pair().unwrap();
    let sender = reactor
        .add(sending, Options::new(), Echo { served: None })
        .unwrap();
    let options = Options::new()
        .framing(Framing::lines())
        .receive_fds(true)
        .max_size(1 << 20);
    reactor
        .add(receiving, options, Receiver { log: log.clone() })
        .unwrap();
    // Far more than the socket buffer takes at once, so attachments wait in the queue
    // behind plain bytes and go out over many flushes.
    let filler = vec![b'x'; 100_000];
    let mut peers = Vec::new();
    for i in 0..20 {
        let (client, server_side) = connected_pair();
        let mut handle = reactor.handle(sender).unwrap();
        handle.send(&filler).unwrap();
        handle.send(b"\n").unwrap();
        handle
            .send_fds(format!("fd {i}\n").as_bytes(), &[server_side.as_fd()])
            .unwrap();
        peers.push(client);
    }
    run_until(&mut reactor, "every descriptor", |_| {
        log.contains("read:fd 19")
    });
    let entries = log.entries();
    assert_eq!(entries.iter().filter(|e| *e == "fds:1").count(), 20);
    for i in 0..20 {
        let line = entries
            .iter()
            .position(|e| *e == format!("read:fd {i}"))
            .unwrap();
        let fds_before = entries[..line].iter().filter(|e| *e == "fds:1").count();
        assert_eq!(fds_before, i + 1, "descriptor {i} came with its line");
    }
    // Every passed connection works.
    for (i, peer) in peers.iter_mut().enumerate() {
        peer.write_all(format!("{i}").as_bytes()).unwrap();
    }
    peers
        .iter()
        .for_each(|p| p.set_read_timeout(Some(Duration::from_millis(5))).unwrap());
    let mut answered = vec![false; peers.len()];
    run_until(&mut reactor, "an echo on every passed connection", |_| {
        for (i, peer) in peers.iter_mut().enumerate() {
            let mut buf = [0u8; 8];
            if let Ok(n) = peer.read(&mut buf) {
                answered[i] |= buf[..n] == *format!("{i}").as_bytes();
            }
        }
        answered.iter().all(|&a| a)
    });
}

/// One round trip on a fresh connection; `Err` if the connection was refused or the echo
/// was wrong.
fn round_trip(addr: SocketAddr, n: usize) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {n}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let message = format!("hello {n}\n");
    stream
        .write_all(message.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut got = vec![0u8; message.len()];
    stream
        .read_exact(&mut got)
        .map_err(|e| format!("echo {n}: {e}"))?;
    (got == message.as_bytes())
        .then_some(())
        .ok_or_else(|| format!("echo {n} wrong"))
}

#[test]
fn a_hand_over_under_steady_new_connections_refuses_none_and_loses_no_byte() {
    let path = std::env::temp_dir().join(format!("eventmux-handover-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (addr_tx, addr_rx) = mpsc::channel();
    let old_served = Arc::new(AtomicUsize::new(0));
    let new_served = Arc::new(AtomicUsize::new(0));

    // The old server.
    let old = {
        let path = path.clone();
        let served = old_served.clone();
        thread::spawn(move || {
            let mut reactor = Reactor::new().unwrap();
            let listener = reactor
                .listen(
                    "127.0.0.1:0",
                    Echo {
                        served: Some(served),
                    },
                )
                .unwrap();
            addr_tx.send(reactor.local_addr(listener).unwrap()).unwrap();
            reactor
                .offer_listeners(&path, Duration::from_secs(30))
                .unwrap();
            reactor.run().unwrap();
        })
    };
    let addr: SocketAddr = addr_rx.recv().unwrap();
    while !path.exists() {
        thread::sleep(Duration::from_millis(1));
    }

    // Connections the old server holds through the hand-over: they stream on after it.
    let mut long_lived: Vec<TcpStream> = (0..20)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    let old_before = {
        let deadline = Instant::now() + Duration::from_secs(10);
        while old_served.load(Ordering::Relaxed) < 20 {
            assert!(Instant::now() < deadline, "the old server accepts");
            thread::sleep(Duration::from_millis(1));
        }
        old_served.load(Ordering::Relaxed)
    };

    // A steady stream of new connections, before, during and after the hand-over.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut failures = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = round_trip(addr, c * 1_000_000 + n) {
                        failures.push(e);
                    }
                    n += 1;
                }
                (n, failures)
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));

    // The new server takes over.
    let new_stop = Arc::new(AtomicBool::new(false));
    let new = {
        let path = path.clone();
        let served = new_served.clone();
        let new_stop = new_stop.clone();
        thread::spawn(move || {
            let mut reactor = Reactor::new().unwrap();
            let mut taken = eventmux::take_over(&path).unwrap().expect("an offer");
            let listeners = taken.take_listeners();
            assert_eq!(listeners.len(), 1, "the TCP listener, not the offer");
            for listener in listeners {
                reactor
                    .add(
                        listener,
                        Options::new(),
                        Echo {
                            served: Some(served.clone()),
                        },
                    )
                    .unwrap();
            }
            taken.ready().unwrap();
            reactor
                .offer_listeners(&path, Duration::from_secs(30))
                .unwrap();
            while !new_stop.load(Ordering::Relaxed) {
                reactor.run_once(Some(Duration::from_millis(10))).unwrap();
            }
        })
    };

    // The old server goes on with its own connections after the hand-over.
    let deadline = Instant::now() + Duration::from_secs(10);
    while new_served.load(Ordering::Relaxed) < 50 {
        assert!(Instant::now() < deadline, "the new server accepts");
        thread::sleep(Duration::from_millis(5));
    }
    let chunk = util::pattern(64 * 1024);
    for stream in &mut long_lived {
        stream.write_all(&chunk).unwrap();
        let mut got = vec![0u8; chunk.len()];
        stream.read_exact(&mut got).unwrap();
        assert!(got == chunk, "a byte was lost on an old connection");
    }
    assert!(
        !old.is_finished(),
        "the old server waits for its connections"
    );
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut attempts = 0;
    for client in clients {
        let (n, failures) = client.join().unwrap();
        assert!(
            failures.is_empty(),
            "{} of {n} failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        attempts += n;
    }
    // Its connections done, the old server exits.
    drop(long_lived);
    old.join().unwrap();
    let after_old = new_served.load(Ordering::Relaxed);
    round_trip(addr, 0).unwrap();
    assert!(
        new_served.load(Ordering::Relaxed) > after_old,
        "the new server serves alone"
    );
    new_stop.store(true, Ordering::Relaxed);
    new.join().unwrap();
    eprintln!(
        "{attempts} connections during the test, none refused; the old server served {}, \
         {old_before} of them before the hand-over; the new one {}",
        old_served.load(Ordering::Relaxed),
        new_served.load(Ordering::Relaxed)
    );
    let _ = std::fs::remove_file(&path);
}
