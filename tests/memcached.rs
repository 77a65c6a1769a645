//! The memcached example against real memcached: a scripted session of storage, retrieval,
//! arithmetic, expiry and error cases must get byte for byte the replies memcached 1.6
//! gives, written in one pipelined burst and written a byte at a time. When `memcached` is
//! installed the test runs it beside the example and compares with it; otherwise it says so
//! and compares with the replies of memcached 1.6.18 recorded in
//! `tests/data/memcached-1.6.18-session.txt`.
// The example includes the examples' shared command line (examples/cli).
#![allow(clippy::duplicate_mod)]

#[path = "../examples/memcached.rs"]
#[allow(dead_code)]
mod memcached;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use eventmux::Reactor;

/// The session: every command the example supports, the edges memcached answers in its own
/// way (a decr padded in place, a block too large for the cache, a negative exptime, cas
/// numbers), and `noreply`.
fn session() -> Vec<u8> {
    let mut s: Vec<u8> = Vec::new();
    for part in [
        &b"set a 5 0 3\r\nabc\r\n"[..],
        b"get a\r\n",
        b"add a 0 0 1\r\nx\r\n",
        b"add b 0 0 1\r\nx\r\n",
        b"replace c 0 0 1\r\ny\r\n",
        b"replace b 1 0 2\r\nyz\r\n",
        b"append b 0 0 2\r\n12\r\n",
        b"prepend b 0 0 2\r\n00\r\n",
        b"get a b c\r\n",
        b"gets a b\r\n",
        b"cas a 0 0 1 999\r\nq\r\n",
        b"cas zz 0 0 1 1\r\nq\r\n",
        b"set n 0 0 2\r\n10\r\n",
        b"incr n 5\r\n",
        b"decr n 100\r\n",
        b"gets n\r\n",
        b"incr a 1\r\n",
        b"incr nope 1\r\n",
        b"touch a 100\r\n",
        b"touch nope 1\r\n",
        b"gets a\r\n",
        b"delete a\r\n",
        b"delete a\r\n",
        b"set q 0 0 1 noreply\r\nz\r\n",
        b"get q\r\n",
    ] {
        s.extend_from_slice(part);
    }
    // Larger than the 1 MiB item limit: refused, and the block swallowed.
    s.extend_from_slice(b"set big 0 0 2000000\r\n");
    s.extend(std::iter::repeat_n(b'x', 2_000_000));
    s.extend_from_slice(b"\r\n");
    for part in [
        &b"get big\r\n"[..],
        b"set neg 0 -1 1\r\nx\r\n",
        b"get neg\r\n",
        b"bogus\r\n",
        b"incr n notanumber\r\n",
        b"flush_all\r\n",
        b"get b n\r\n",
    ] {
        s.extend_from_slice(part);
    }
    s
}

/// The replies memcached gives the session ("END\r\n" last).
fn expected_reply_end() -> &'static [u8] {
    b"OK\r\nEND\r\n"
}

/// Writes `request` (whole, or `piece` bytes at a time) and reads replies until they end
/// the way the session's do.
fn exchange(addr: SocketAddr, request: &[u8], piece: Option<usize>) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    let request = request.to_vec();
    let writer = thread::spawn(move || match piece {
        None => stream.write_all(&request).unwrap(),
        Some(n) => {
            for chunk in request.chunks(n) {
                stream.write_all(chunk).unwrap();
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(expected_reply_end()) {
        let n = reader.read(&mut buf).expect("the replies");
        assert!(n > 0, "closed early after {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    writer.join().unwrap();
    got
}

/// The example, on a reactor on its own thread.
fn start_example() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        let listener = memcached::start(&mut reactor, "127.0.0.1:0").unwrap();
        tx.send(reactor.local_addr(listener).unwrap()).unwrap();
        reactor.run().unwrap();
    });
    rx.recv().unwrap()
}

/// Real memcached on a free port, if it is installed.
struct Real(Child, SocketAddr);

impl Real {
    fn start() -> Option<Real> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("memcached");
        command.args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-t",
            "1",
        ]);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            command.args(["-u", "nobody"]); // memcached refuses to run as root otherwise
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
        Some(Real(child, addr))
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reference() -> Vec<u8> {
    match Real::start() {
        Some(real) => {
            eprintln!("comparing with a running memcached");
            exchange(real.1, &session(), None)
        }
        None => {
            eprintln!(
                "memcached is not installed: comparing with the recorded replies of memcached \
                 1.6.18 (apt-get install memcached to compare with a live one)"
            );
            std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/memcached-1.6.18-session.txt"
            ))
            .unwrap()
        }
    }
}

#[test]
fn the_session_gets_memcached_s_replies_pipelined_and_byte_at_a_time() {
    let want = reference();
    let addr = start_example();
    let whole = exchange(addr, &session(), None);
    assert_eq!(
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&want),
        "pipelined in one write"
    );
    // A byte at a time would take long through 2 MB: 1 byte pieces for the commands, the
    // big block in 64 KiB pieces (the same stream either way).
    let request = session();
    let big = request.windows(4).position(|w| w == b"xxxx").unwrap();
    let end_of_big = big + 2_000_000;
    // A fresh server: cas numbers count every item a server ever stored.
    let mut stream = TcpStream::connect(start_example()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let writer = thread::spawn(move || {
        for &b in &request[..big] {
            stream.write_all(&[b]).unwrap();
        }
        for chunk in request[big..end_of_big].chunks(64 * 1024) {
            stream.write_all(chunk).unwrap();
        }
        for &b in &request[end_of_big..] {
            stream.write_all(&[b]).unwrap();
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(expected_reply_end()) {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    writer.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "byte at a time"
    );
}

#[test]
fn a_command_line_past_2048_bytes_is_refused_as_memcached_refuses_it() {
    let addr = start_example();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut line = b"get ".to_vec();
    line.extend(std::iter::repeat_n(b'k', 3000));
    stream.write_all(&line).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    assert_eq!(got, b"CLIENT_ERROR line too long\r\n");
}

#[test]
fn the_store_survives_between_connections() {
    let addr = start_example();
    let mut first = TcpStream::connect(addr).unwrap();
    first.write_all(b"set k 0 0 5\r\nhello\r\n").unwrap();
    let mut stored = [0u8; 8];
    first.read_exact(&mut stored).unwrap();
    assert_eq!(&stored, b"STORED\r\n");
    let mut second = TcpStream::connect(addr).unwrap();
    second.write_all(b"get k\r\n").unwrap();
    let mut got = vec![0u8; b"VALUE k 0 5\r\nhello\r\nEND\r\n".len()];
    second.read_exact(&mut got).unwrap();
    assert_eq!(got, b"VALUE k 0 5\r\nhello\r\nEND\r\n");
}
